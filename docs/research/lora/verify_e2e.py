import sys, time, os, ctypes, numpy as np, torch
sys.path.insert(0, "/tmp/lora_research")
from export_lora import export_lora_gguf
import transformers; transformers.logging.set_verbosity_error()
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
torch.manual_seed(0); torch.set_num_threads(2)
folder, fname, arch, outdir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
gpath = os.path.join(folder, fname)
t0 = time.time()
tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
from transformers import GgufConfig
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True))
print(f"[hf] loaded in {time.time()-t0:.1f}s hf_quantizer={getattr(model, 'hf_quantizer', None)} is_quantized={getattr(model, 'is_quantized', None)} qcfg={getattr(model.config, 'quantization_config', None)}")
cfg = model.config
R, ALPHA = 8, 16
lcfg = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"])
pm = get_peft_model(model, lcfg)
with torch.no_grad():   # simulate a trained adapter: random non-zero B
    for n, p in pm.named_parameters():
        if "lora_B" in n: p.normal_(0, 0.02)
        if "lora_A" in n: p.normal_(0, 0.05)
from transformers.trainer_utils import validate_quantization_for_training
validate_quantization_for_training(pm); print("[hf] Trainer quantization validation passes with GgufConfig(dequantize=True)")
ids = tok("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", return_tensors="pt")["input_ids"]
ids_list = ids[0].tolist()
with torch.no_grad():
    with pm.disable_adapter():
        hf_base = pm(ids).logits[0].numpy()
    hf_lora = pm(ids).logits[0].numpy()
sd = get_peft_model_state_dict(pm)
print("[peft] sample keys:", list(sd)[:2], "shapes", [tuple(v.shape) for v in list(sd.values())[:2]])
nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
p_ok = f"{outdir}/{arch}_lora_ok.gguf"; p_noperm = f"{outdir}/{arch}_lora_noperm.gguf"
p_zero = f"{outdir}/{arch}_lora_zeroB.gguf"; p_f16 = f"{outdir}/{arch}_lora_f16.gguf"
export_lora_gguf(sd, p_ok, arch=arch, alpha=ALPHA, n_head=nh, n_head_kv=nkv)
export_lora_gguf(sd, p_f16, arch=arch, alpha=ALPHA, n_head=nh, n_head_kv=nkv, dtype=np.float16)
export_lora_gguf(sd, p_noperm, arch=arch, alpha=ALPHA, n_head=nh, n_head_kv=nkv, permute_qk=(arch != "llama"))  # deliberately wrong for llama
export_lora_gguf({k: (v*0 if "lora_B" in k else v) for k, v in sd.items()}, p_zero, arch=arch, alpha=ALPHA, n_head=nh, n_head_kv=nkv)
np.savez(f'{outdir}/{arch}_hf.npz', hf_base=hf_base, hf_lora=hf_lora, ids=np.array(ids_list))
del pm, model
print(f'[hf] done {time.time()-t0:.1f}s', flush=True)
from llama_cpp import Llama
def lc_logits(lora=None, scale=1.0, gen=False):
    kw = dict(lora_path=lora, lora_scale=scale) if lora else {}
    llm = Llama(model_path=gpath, n_ctx=256, n_threads=2, logits_all=True, verbose=False, **kw)
    llm.eval(ids_list); sc = np.array(llm.scores[:len(ids_list)], dtype=np.float32)
    out = []
    if gen:
        llm.reset(); g = llm.generate(ids_list, temp=0.0)
        for i, t in enumerate(g):
            if i >= 12: break
            out.append(t)
    llm.close() if hasattr(llm, "close") else None
    return sc, out
base, gbase = lc_logits(gen=True)
def rep(name, lc, gen=None):
    d_lc, d_hf = (lc - base).ravel(), (hf_lora - hf_base).ravel()
    corr = np.corrcoef(d_lc, d_hf)[0,1] if d_lc.std() > 0 else float("nan")
    print(f"[{name:9s}] max|lc-base|={np.abs(d_lc).max():.4f} corr(delta_lc, delta_hf)={corr:.4f} "
          f"max|lc - (base+delta_hf)|={np.abs(lc-(base+(hf_lora-hf_base))).max():.4f} argmax_eq_hf={np.mean(lc.argmax(-1)==hf_lora.argmax(-1)):.2f}"
          + (f" greedy_same_as_base={gen==gbase}" if gen is not None else ""))
print(f"[base] max|lc_base - hf_base|={np.abs(base-hf_base).max():.4f} argmax agree={np.mean(base.argmax(-1)==hf_base.argmax(-1)):.2f}  hf lora delta max={np.abs(hf_lora-hf_base).max():.4f}")
for name, p in [("zeroB", p_zero), ("ok_f32", p_ok), ("ok_f16", p_f16), ("noperm", p_noperm)]:
    lc, gen = lc_logits(p, gen=(name == 'zeroB')); rep(name, lc, gen if name == "zeroB" else None); sys.stdout.flush()
lc, _ = lc_logits(p_ok, 0.5); d = (lc-base).ravel(); print(f"[scale0.5 ] corr with 0.5*delta_hf={np.corrcoef(d, 0.5*(hf_lora-hf_base).ravel())[0,1]:.4f} ratio={np.abs(d).mean()/np.abs(hf_lora-hf_base).mean():.3f}")
print(f"total {time.time()-t0:.1f}s")
