"""Merge a llama.cpp-format LoRA adapter GGUF into a base GGUF.
Touched tensors are dequantized, W += scale*(alpha/r)*B@A, and re-stored as out_qtype (Q8_0 default);
all other tensors and all metadata are copied raw. Requires: gguf, numpy."""
import sys, numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as QT, GGUFValueType as VT
from gguf.quants import dequantize, quantize

def merge(base_path, adapter_path, out_path, scale=1.0, out_qtype=QT.Q8_0):
    base, ad = GGUFReader(base_path), GGUFReader(adapter_path)
    alpha = float(ad.fields["adapter.lora.alpha"].contents())
    pairs = {}
    for t in ad.tensors:
        nm, ab = t.name.rsplit(".", 1)                      # 'blk.0.attn_q.weight', 'lora_a'
        pairs.setdefault(nm, {})[ab] = np.asarray(t.data, np.float32)   # adapter stored as F32/F16
    arch = base.fields["general.architecture"].contents()
    w = GGUFWriter(out_path, arch=arch)                     # writes general.architecture itself
    if "general.alignment" in base.fields:
        w.data_alignment = int(base.fields["general.alignment"].contents())
    for key, f in base.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue                                        # header pseudo-fields / already written
        vt = f.types[0]
        w.add_key_value(key, f.contents(), vt, f.types[-1] if vt == VT.ARRAY else None)
    for t in base.tensors:
        if t.name not in pairs:                             # untouched: copy raw bytes + type
            w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
            continue
        ab = pairs.pop(t.name); a, b = ab["lora_a"], ab["lora_b"]   # a (r,in), b (out,r)
        W = dequantize(t.data, t.tensor_type)               # numpy (out, in) float32
        W = W + scale * (alpha / a.shape[0]) * (b @ a)
        w.add_tensor(t.name, quantize(W, out_qtype), raw_dtype=out_qtype)
    assert not pairs, f"adapter tensors not in base: {list(pairs)[:3]}"
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
