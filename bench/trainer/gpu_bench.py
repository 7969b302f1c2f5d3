#!/usr/bin/env python3
"""GPU benchmark: LoRA r16 on every linear layer of a Mistral-7B-shaped model.

Standalone: needs only torch, transformers and peft (no internet, no weights:
the model is random-initialised in bf16 directly on the GPU). Packed rows of
2048 tokens made of random-length examples (position ids restart per example,
so attention is block-diagonal causal, exactly as in brightrun-trainer), no
gradient checkpointing, loss on every real token, AdamW on the LoRA weights.

Variants (one JSON line each, then a summary line):
  baseline     SDPA attention (transformers builds the block-diagonal mask from
               the position ids), PEFT LoRA as is, torch AdamW (foreach)
  flex         flex_attention: block-sparse kernel that skips cross-example blocks
  compiled     baseline + torch.compile of each decoder layer (regional
               compilation: one graph reused by all 32 layers) + fused AdamW
  flex_compiled  flex attention + regional compile + fused AdamW

MFU = model FLOPs / s / peak, model FLOPs per token = 4N + 6P + attention, with
N the frozen linear weights (incl. the output head), P the LoRA weights and
attention 6 * layers * width * sum(L_i^2) / tokens (causal half counted),
against the device's dense bf16 peak (H100 SXM: 989.4 TFLOP/s).

Run from the repo root on the GPU machine:
  python3 bench/trainer/gpu_bench.py                # all variants, ~3-5 min on one H100
  python3 bench/trainer/gpu_bench.py --variants baseline --steps 5
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sys
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PEAKS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H200", 989.4), ("H800", 989.4),
         ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.05), ("L4", 121.0)]


DEVICE = "cuda"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def device_peak():
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    env = os.environ.get("BRIGHTRUN_PEAK_TFLOPS")
    if env:
        return name, "BRIGHTRUN_PEAK_TFLOPS", float(env) * 1e12
    for key, tf in PEAKS:
        if key in name:
            return name, f"{key} bf16 dense {tf} TFLOP/s", tf * 1e12
    return name, "unknown (assumed H100 SXM 989.4)", 989.4e12


SHAPES = {
    # Mistral-7B-v0.1
    "mistral7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8),
    # for checking the script itself on a CPU (--smoke)
    "smoke": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2),
}


def build_model(attn: str, shape: str, device: str):
    from transformers import AutoModelForCausalLM, MistralConfig

    cfg = MistralConfig(**SHAPES[shape], max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=10000.0,
                        sliding_window=None, tie_word_embeddings=False)
    t0 = time.time()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=torch.bfloat16)
    finally:
        torch.set_default_dtype(prev)
    model.config.use_cache = False
    log(f"built {shape} model in {time.time() - t0:.1f}s "
        f"({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params)")
    return model


def add_lora(model, rank: int, dropout: float):
    from peft import LoraConfig, get_peft_model

    lcfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=dropout, target_modules="all-linear",
                      bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg)


def count_flops(model):
    frozen = trainable = 0
    seen = set()
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, torch.nn.Linear) and w is not None and not w.requires_grad and id(w) not in seen:
            seen.add(id(w))
            frozen += w.numel()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return frozen, trainable


def make_batches(n_batches, rows, seq, vocab, min_len, max_len, seed):
    """Rows of `seq` tokens packed from random-length examples (no padding)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_batches):
        pos = torch.empty(rows, seq, dtype=torch.long)
        lengths = []
        for r in range(rows):
            at = 0
            while at < seq:
                n = min(rng.randint(min_len, max_len), seq - at)
                pos[r, at:at + n] = torch.arange(n)
                lengths.append(n)
                at += n
        ids = torch.randint(0, vocab, (rows, seq), generator=torch.Generator().manual_seed(rng.randint(0, 1 << 30)))
        out.append({"input_ids": ids.to(DEVICE), "position_ids": pos.to(DEVICE), "lengths": lengths})
    return out


def loss_fn(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))


def regional_compile(model):
    import torch._dynamo

    # All 32 layers share one graph; allow re-compiles (e.g. attention switch) without falling back to eager.
    for knob in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit", "accumulated_recompile_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, max(getattr(torch._dynamo.config, knob), 256))
    base = model.get_base_model()
    for layer in base.model.layers:
        layer.compile(dynamic=False)


def run_variant(name, model, batches, args, *, fused, peak, flops_frozen, flops_trainable, layers, width):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=fused, foreach=None if fused else True)
    model.train()

    def one(b):
        out = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False)
        loss = loss_fn(out.logits, b["input_ids"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_warm = time.time()
    for i in range(args.warmup):
        one(batches[i % len(batches)])
    sync()
    warm_s = time.time() - t_warm
    t_start = time.perf_counter()
    tokens = 0
    attn_sq = 0
    last = None
    for i in range(args.steps):
        b = batches[(args.warmup + i) % len(batches)]
        last = one(b)
        tokens += b["input_ids"].numel()
        attn_sq += sum(L * L for L in b["lengths"])
    sync()
    secs = time.perf_counter() - t_start
    flops = (4 * flops_frozen + 6 * flops_trainable) * tokens + 6 * layers * width * attn_sq
    res = {
        "variant": name,
        "tokens_per_second": round(tokens / secs, 1),
        "mfu": round(flops / secs / peak, 4),
        "model_tflops_per_second": round(flops / secs / 1e12, 1),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEVICE == "cuda" else None,
        "step_seconds": round(secs / args.steps, 4),
        "tokens_per_step": tokens // args.steps,
        "steps": args.steps,
        "warmup_seconds": round(warm_s, 1),
        "final_loss": round(float(last.detach()), 4),
    }
    del opt
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="baseline,flex,compiled,flex_compiled")
    ap.add_argument("--rows", type=int, default=2, help="packed 2048-token rows per step")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--min-len", type=int, default=128)
    ap.add_argument("--max-len", type=int, default=1536)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU: checks the script, not the GPU")
    args = ap.parse_args()
    global DEVICE
    if args.smoke:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        sys.exit(2)
    import peft
    import transformers

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    gpu, peak_name, peak = device_peak()
    header = {"gpu": gpu, "peak": peak_name, "torch": torch.__version__, "transformers": transformers.__version__,
              "peft": peft.__version__, "rows": args.rows, "seq": args.seq, "lora_rank": args.rank,
              "lora_dropout": args.dropout, "gradient_checkpointing": False}
    print(json.dumps(header), flush=True)

    shape = SHAPES["smoke" if args.smoke else "mistral7b"]
    model = add_lora(build_model("sdpa", "smoke" if args.smoke else "mistral7b", DEVICE), args.rank, args.dropout)
    frozen, trainable = count_flops(model)
    layers, width = shape["num_hidden_layers"], shape["hidden_size"]
    batches = make_batches(4, args.rows, args.seq, shape["vocab_size"], args.min_len, args.max_len, 0)
    results = {}
    compiled = False
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        attn = "flex_attention" if name.startswith("flex") else "sdpa"
        try:
            model.get_base_model().set_attn_implementation(attn)
            if name.endswith("compiled") and not compiled:
                regional_compile(model)
                compiled = True
            if not name.endswith("compiled") and compiled:
                raise RuntimeError("uncompiled variants must run before compiled ones")
            t0 = time.time()
            res = run_variant(name, model, batches, args, fused=name.endswith("compiled"), peak=peak,
                              flops_frozen=frozen, flops_trainable=trainable, layers=layers, width=width)
            res["attn_implementation"] = attn
            res["wall_seconds"] = round(time.time() - t0, 1)
        except torch.OutOfMemoryError as e:
            res = {"variant": name, "error": "oom", "message": str(e).splitlines()[0][:300]}
        except Exception as e:  # report and go on with the next variant
            traceback.print_exc(file=sys.stderr)
            res = {"variant": name, "error": type(e).__name__, "message": str(e)[:300]}
        results[name] = res
        print(json.dumps(res), flush=True)
        gc.collect()
        if DEVICE == "cuda":
            torch.cuda.empty_cache()

    ok = {k: v for k, v in results.items() if "tokens_per_second" in v}
    summary = {"summary": True, "model_flops_per_token_dense": 4 * frozen + 6 * trainable,
               "frozen_linear_params": frozen, "lora_params": trainable}
    if "baseline" in ok:
        summary["baseline_tokens_per_second"] = ok["baseline"]["tokens_per_second"]
        summary["baseline_mfu"] = ok["baseline"]["mfu"]
        summary["baseline_target_met"] = ok["baseline"]["tokens_per_second"] >= 9500
    if ok:
        best = max(ok.values(), key=lambda v: v["tokens_per_second"])
        summary["best_variant"] = best["variant"]
        summary["best_tokens_per_second"] = best["tokens_per_second"]
        summary["best_mfu"] = best["mfu"]
        summary["optimised_target_met"] = best["tokens_per_second"] >= 12500
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
