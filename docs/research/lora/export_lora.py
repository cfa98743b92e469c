"""Minimal PEFT-LoRA -> llama.cpp adapter GGUF exporter (reference for smallfleet).
Requires: gguf (pip), numpy, torch. No llama.cpp checkout needed."""
import re, numpy as np, gguf

HF_TO_GGUF = {  # HF module suffix -> GGUF tensor base name (per block)
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_RX = re.compile(r"(?:.*\.)?layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])(?:\.default)?\.weight$")

def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Same row permutation convert_hf_to_gguf.py LlamaModel.permute applies to q/k weights
    (HF half-split rotary layout -> ggml interleaved layout). Works on any (out, ...) array."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
              .swapaxes(1, 2).reshape(w.shape))

def export_lora_gguf(state_dict, out_path, *, arch, alpha, n_head=None, n_head_kv=None,
                     dtype=np.float32, permute_qk=None):
    """state_dict: PEFT names -> tensors (e.g. get_peft_model_state_dict(model) or model.state_dict()).
    arch: 'llama' | 'qwen2' (must equal base GGUF general.architecture).
    permute_qk: default True for arch=='llama' (rope layout), False otherwise."""
    if permute_qk is None:
        permute_qk = arch == "llama"
    pairs = {}
    for k, v in state_dict.items():
        m = _RX.match(k)
        if not m:
            continue
        bid, mod, ab = int(m.group(1)), m.group(2), m.group(3)
        pairs.setdefault((bid, mod), {})[ab] = v.detach().float().cpu().numpy() if hasattr(v, "detach") else np.asarray(v, np.float32)
    w = gguf.GGUFWriter(str(out_path), arch=arch)          # writes general.architecture
    w.add_type(gguf.GGUFType.ADAPTER)                       # general.type = "adapter"
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")            # adapter.type = "lora"
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))  # adapter.lora.alpha (scale = alpha/r)
    for (bid, mod), ab in sorted(pairs.items()):
        a, b = ab["A"], ab["B"]          # a: (r, in)  b: (out, r)  -- numpy/torch order, written as-is
        if permute_qk and mod == "self_attn.q_proj":
            b = llama_permute(b, n_head)
        elif permute_qk and mod == "self_attn.k_proj":
            b = llama_permute(b, n_head_kv)
        base = f"blk.{bid}.{HF_TO_GGUF[mod]}.weight"
        w.add_tensor(base + ".lora_a", np.ascontiguousarray(a, dtype=dtype))
        w.add_tensor(base + ".lora_b", np.ascontiguousarray(b, dtype=dtype))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
