"""Write a PEFT LoRA as a llama.cpp adapter GGUF (served with `LlamaCppOptions(lora_path=...)`).

Format, as llama.cpp's `convert_lora_to_gguf.py` writes it and `llama-adapter.cpp` reads it (see
docs/research/lora/NOTES.md): `general.architecture` equal to the base model's, `general.type =
adapter`, `adapter.type = lora`, `adapter.lora.alpha` (llama.cpp scales by alpha / rank, as PEFT
does); per block `blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>.weight.lora_a`
(numpy shape (rank, in)) and `.lora_b` ((out, rank)), written as they are. For the llama
architecture the GGUF conversion permutes the rows of Q and K (rotary layout), so `lora_b` of q_proj
and k_proj gets the same permutation (with the head and the key-value head counts); qwen2 has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

HF_TO_GGUF = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_NAME = re.compile(r"(?:.*\.)?layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
                   r"\.lora_([AB])(?:\.default)?\.weight$")


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """The row permutation convert_hf_to_gguf applies to llama's q/k weights (HF rotary halves -> interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_adapter(state: Mapping[str, Any], path: Path, *, arch: str, alpha: float, n_head: int,
                  n_head_kv: int) -> int:
    """Write `state` (PEFT names -> tensors) as an adapter GGUF; the number of adapted matrices."""
    import gguf

    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for key, value in state.items():
        match = _NAME.match(key)
        if match:
            array = value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            pairs.setdefault((int(match.group(1)), match.group(2)), {})[match.group(3)] = array
    if not pairs:
        raise ValueError("no LoRA matrices of the supported modules in the state dict")
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for (block, module), ab in sorted(pairs.items()):
        a, b = ab["A"], ab["B"]
        if arch == "llama" and module == "self_attn.q_proj":
            b = llama_permute(b, n_head)
        elif arch == "llama" and module == "self_attn.k_proj":
            b = llama_permute(b, n_head_kv)
        name = f"blk.{block}.{HF_TO_GGUF[module]}.weight"
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(pairs)
