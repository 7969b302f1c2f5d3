"""Experiment: torch.compile (inductor, CPU) of one layer of the fused decode step. Not used by the engine.

Compiles a per-layer function (the same graph serves all 30 layers of SmolLM2-135M: the weights are
inputs) with a static KV cache (writes by ``index_copy_`` at a position tensor, attention over the
whole cache with a mask, so the shapes do not change per step), then times the eager fused path
(``fastdecode.FastDecoder.step``), the same layer function eager, and compiled, alternating in one
process, and prints their greedy tokens (they must agree).

Measured on the shared 2-core machine (load average 3.8, 1 thread, 2026-12-06 09:25): compile 45-120 s
cold (24 s with inductor's on-disk cache), fused eager 49.7 ms/step, compiled 46.5 ms/step (1.07x),
the same greedy tokens. Not worth compiling off the request path per cache size for 7 %: the int8
products (an extern kernel for inductor too) are ~65 % of the step. See README.md.

    PYTHONPATH=trainer BRIGHTRUN_MODELS_DIR=/tmp/models nice -n 10 .venv/bin/python bench/inference/compile_try.py
"""
import os, sys, time, tempfile, statistics
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE","1")
import torch, torch.nn.functional as F
from transformers.utils import logging as hf_logging; hf_logging.set_verbosity_error()
from transformers import DynamicCache
from bench import MODEL, make_adapter, prompt_messages
from brightrun_trainer.encoding import render
from brightrun_trainer.inference.engine import Engine, adapter_name
from brightrun_trainer.inference import fastdecode as fd
from brightrun_trainer.models import resolve_model
torch.set_num_threads(1)
resolved = resolve_model(MODEL)
ad = make_adapter(resolved.path, __import__("pathlib").Path(tempfile.mkdtemp())/"a")
eng = Engine(device="cpu"); lb,_ = eng.base(MODEL); name=adapter_name("x",1); lb.ensure_adapter(name, ad, 4)
ids = lb.tokenizer(render(lb.tokenizer, prompt_messages(lb.tokenizer), True), add_special_tokens=False, return_tensors="pt")["input_ids"]
dec = lb.fast
def int8mm(x,w,s): return torch.ops.aten._weight_int8pack_mm(x,w,s)
def layer(h, ln1, eps, wqkv, sqkv, aqkv, bqkv, wo, so, ao, bo, ln2, wgu, sgu, agu, bgu, wd, sd, ad_, bd, kc, vc, cos, sin, p: int, nh: int, nkv: int, hd: int, inter: int, scale: float):
    nq, nk = nh*hd, nkv*hd; half = hd//2
    x = ln1 * F.rms_norm(h.float(), (h.shape[-1],), eps=eps).to(h.dtype)
    qkv = int8mm(x, wqkv, sqkv) + F.linear(F.linear(x.float(), aqkv), bqkv)
    qkv = qkv.to(h.dtype)
    qk = qkv[:, :nq+nk].view(nh+nkv, hd)
    rot = torch.cat((-qk[:, half:], qk[:, :half]), dim=-1)
    qk = qk*cos + rot*sin
    q = qk[:nh].view(1, nh, 1, hd)
    kc.index_copy_(2, p, qk[nh:].view(1, nkv, 1, hd))
    vc.index_copy_(2, p, qkv[:, nq+nk:].view(1, nkv, 1, hd))
    mask = (torch.arange(kc.shape[2]) <= p).view(1, 1, 1, -1)
    a = F.scaled_dot_product_attention(q, kc.repeat_interleave(nh // nkv, dim=1), vc.repeat_interleave(nh // nkv, dim=1), attn_mask=mask, scale=scale)
    h = h + (int8mm(a.view(1, nq), wo, so) + F.linear(F.linear(a.view(1,nq).float(), ao), bo)).to(h.dtype)
    x = ln2 * F.rms_norm(h.float(), (h.shape[-1],), eps=eps).to(h.dtype)
    gu = (int8mm(x, wgu, sgu) + F.linear(F.linear(x.float(), agu), bgu)).to(h.dtype)
    m = F.silu(gu[:, :inter]) * gu[:, inter:]
    h = h + (int8mm(m, wd, sd) + F.linear(F.linear(m.float(), ad_), bd)).to(h.dtype)
    return h
clayer = torch.compile(layer, dynamic=False)
def step(fn, tok, st, lora):
    p = st.pos; cos, sin = st.cos[p].clone(), st.sin[p].clone()
    h = dec.embed[tok].unsqueeze(0).clone()
    pt = torch.tensor([p])
    for i, L in enumerate(dec.layers):
        lw = lora[i]
        h = fn(h, L["ln1"].weight, dec.eps, L["qkv"].w, L["qkv"].s, *lw["qkv"], L["o"].w, L["o"].s, *lw["o"], L["ln2"].weight, L["gu"].w, L["gu"].s, *lw["gu"], L["down"].w, L["down"].s, *lw["down"], st.keys[i], st.values[i], cos, sin, pt, dec.n_heads, dec.n_kv, dec.head_dim, dec.intermediate, dec.scale)
    h = dec._rms(h, dec.norm); st.pos = p+1
    return int8mm(h, dec.head.w_int8, dec.head.w_scale).float()
lora = dec._lora_for(name)
def run(fn, steps):
    cache = DynamicCache(); lg = lb.forward(name, ids, cache); tok = int(lg.argmax(-1)); toks=[tok]
    st = dec.start(cache, ids.shape[1], ids.shape[1]+steps+1)
    for k in st.keys + st.values: k[:, :, ids.shape[1]:] = 0
    t0=time.perf_counter()
    with torch.inference_mode():
        for _ in range(steps):
            lg = fn(tok, st) ; tok=int(lg.argmax(-1)); toks.append(tok)
    return (time.perf_counter()-t0)/steps, toks
t0=time.time()
with torch.inference_mode():
    try:
        r = run(lambda t, st: step(clayer, t, st, lora), 3)
    except Exception as e:
        import traceback; traceback.print_exc(); sys.exit(1)
print("compile+3 steps", time.time()-t0, flush=True)
if os.environ.get("ONLY_COMPILE"): sys.exit(0)
res = {"fast":[], "eager_layer":[], "compiled":[]}
for _ in range(3):
    res["fast"].append(run(lambda t, st: dec.step(t, st, name), 24))
    res["eager_layer"].append(run(lambda t, st: step(layer, t, st, lora), 24))
    res["compiled"].append(run(lambda t, st: step(clayer, t, st, lora), 24))
for k,v in res.items(): print(k, "ms/step %.1f" % (1000*statistics.median(x[0] for x in v)), v[-1][1][:12])
print(open("/proc/loadavg").read())
