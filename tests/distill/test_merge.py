"""Merging a LoRA adapter into its base GGUF: the merged file answers like base + adapter; bad adapters are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.specialists.lora_gguf import write_adapter
from smallfleet.specialists.merge_gguf import merge_adapter

pytestmark = pytest.mark.model

PROMPT = b"<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"


def _adapter(path: Path, blocks: range, arch: str = "llama", scale: float = 0.05) -> Path:
    rng = np.random.default_rng(0)
    state = {}
    for i in blocks:
        for module, (out, inp) in {"self_attn.q_proj": (576, 576), "mlp.down_proj": (576, 1536)}.items():
            state[f"base_model.model.model.layers.{i}.{module}.lora_A.weight"] = rng.normal(0, scale, (8, inp))
            state[f"base_model.model.model.layers.{i}.{module}.lora_B.weight"] = rng.normal(0, scale, (out, 8))
    write_adapter(state, path, arch=arch, alpha=16, n_head=9, n_head_kv=3)
    return path


def _greedy(**kwargs: object) -> list[int]:
    from llama_cpp import Llama

    llm = Llama(n_ctx=256, n_threads=2, verbose=False, **kwargs)  # type: ignore[arg-type]
    prompt = llm.tokenize(PROMPT, add_bos=False, special=True)
    out: list[int] = []
    for token in llm.generate(prompt, temp=0.0, top_k=1):
        if token == llm.token_eos() or len(out) >= 16:
            break
        out.append(token)
    llm.close()
    return out


def test_the_merged_model_answers_like_base_plus_adapter(tmp_path: Path) -> None:
    base = embedded_gguf_path()
    adapter = _adapter(tmp_path / "adapter.gguf", range(30))
    result = merge_adapter(base, adapter, tmp_path / "merged.gguf", qtype="q8_0")
    assert result.merged_tensors == 60 and result.types == {"Q8_0": 60} and result.path.is_file()
    plain, with_adapter = _greedy(model_path=str(base)), _greedy(model_path=str(base), lora_path=str(adapter))
    assert with_adapter != plain  # the adapter changes the answer, so the comparison below means something
    assert _greedy(model_path=str(result.path)) == with_adapter


def test_adapters_that_do_not_fit_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    base = embedded_gguf_path()
    out = tmp_path / "merged.gguf"
    with pytest.raises(ValueError, match="adapter is for 'qwen2'"):
        merge_adapter(base, _adapter(tmp_path / "q.gguf", range(1), arch="qwen2"), out)
    with pytest.raises(ValueError, match="not in the base model"):
        merge_adapter(base, _adapter(tmp_path / "far.gguf", range(29, 31)), out)
    with pytest.raises(ValueError, match="qtype"):
        merge_adapter(base, _adapter(tmp_path / "a.gguf", range(1)), out, qtype="q2_k")
    with pytest.raises(ValueError, match="overwrite"):
        merge_adapter(base, tmp_path / "a.gguf", tmp_path / "a.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "far.gguf", "q.gguf"]
