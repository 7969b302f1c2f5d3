#!/usr/bin/env python3
"""GPU benchmark: LoRA r16 on every linear layer of a Mistral-7B- or Llama-3.1-8B-shaped model.

Uses the trainer's own model setup (brightrun_trainer.train.wrap_lora, the
trainer's forward_loss with logits only where a label follows; the header names
the compute path the trainer picks), on a random-initialised bf16 model built on the GPU (no internet,
no weights). Packed rows of 2048 tokens made of random-length examples
(position ids restart per example, so attention is block-diagonal causal,
exactly as in brightrun-trainer), no gradient checkpointing, loss on the last
--assistant-share of each example (the trainer's assistant-only loss), AdamW
on the LoRA weights.

Variants (one JSON line each, then a summary line):
  baseline     SDPA attention (transformers builds the block-diagonal mask from
               the position ids), PEFT LoRA as is, torch AdamW (foreach)
  flex         flex_attention: block-sparse kernel that skips cross-example blocks
  compiled     baseline + torch.compile of each decoder layer (regional
               compilation: one graph reused by all 32 layers) + fused AdamW
  flex_compiled  flex attention + regional compile + fused AdamW
  varlen       flash_attention_2 (variable-length kernel fed by the packed
               position ids; needs the flash-attn package)
  liger        baseline + liger-kernel's fused linear cross-entropy (the
               output head and the loss in chunks, never the full logits;
               needs liger-kernel): the Llama-3.1 128k vocabulary makes the
               loss the bottleneck there
  liger_compiled liger + regional compile + fused AdamW
Shapes (--shape): mistral7b (default), llama8b (Llama-3.1-8B: vocab 128,256,
rope theta 500k), smoke (tiny, CPU self-check).

MFU = model FLOPs / s / peak, model FLOPs per token = 4N + 6P + attention, with
N the frozen linear weights (incl. the output head), P the LoRA weights and
attention 6 * layers * width * sum(L_i^2) / tokens (causal half counted),
against the device's dense bf16 peak (H100 SXM: 989.4 TFLOP/s).

Run from the repo root on the GPU machine (optional packages: pip install
liger-kernel flash-attn, pinned in bench/trainer/requirements-bench.txt):
  PYTHONPATH=trainer python3 bench/trainer/gpu_bench.py --shape mistral7b
  PYTHONPATH=trainer python3 bench/trainer/gpu_bench.py --shape llama8b --variants baseline,liger,liger_compiled
Variants whose package is missing print {"variant", "error": "missing", ...} and the others go on.
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "trainer"))
from brightrun_trainer.config import JobConfig  # noqa: E402
from brightrun_trainer.encoding import IGNORE_INDEX  # noqa: E402
from brightrun_trainer.train import forward_loss, pick_compute_path, wrap_lora  # noqa: E402

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
    # Llama-3.1-8B
    "llama8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0),
    # for checking the script itself on a CPU (--smoke)
    "smoke": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2),
}


def build_model(attn: str, shape: str, device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    dims = dict(SHAPES[shape])
    if shape == "llama8b":
        cfg = LlamaConfig(**dims, max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False)
    else:
        cfg = MistralConfig(**dims, max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=10000.0,
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
    """The trainer's own LoRA wrapping (all linear layers, its checks)."""
    return wrap_lora(model, JobConfig(lora_rank=rank, lora_alpha=2 * rank, lora_dropout=dropout,
                                      target_modules="all-linear", device=DEVICE))


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


def make_batches(n_batches, rows, seq, vocab, min_len, max_len, seed, share=1.0):
    """Rows of `seq` tokens packed from random-length examples (no padding);
    labels on the last `share` of each example (the assistant's answer)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_batches):
        pos = torch.empty(rows, seq, dtype=torch.long)
        ids = torch.randint(0, vocab, (rows, seq), generator=torch.Generator().manual_seed(rng.randint(0, 1 << 30)))
        labels = torch.full((rows, seq), IGNORE_INDEX, dtype=torch.long)
        lengths = []
        for r in range(rows):
            at = 0
            while at < seq:
                n = min(rng.randint(min_len, max_len), seq - at)
                pos[r, at:at + n] = torch.arange(n)
                k = max(1, int(round(n * share)))
                labels[r, at + n - k:at + n] = ids[r, at + n - k:at + n]
                lengths.append(n)
                at += n
        out.append({"input_ids": ids.to(DEVICE), "position_ids": pos.to(DEVICE), "labels": labels.to(DEVICE),
                    "lengths": lengths})
    return out


def trainer_loss(model, b):
    """The trainer's forward_loss: logits only at labelled positions, mean over them."""
    batch = {k: b[k] for k in ("input_ids", "position_ids", "labels")}
    loss_sum, n = forward_loss(model, batch)
    return loss_sum / max(n, 1)


def liger_loss(model, b):
    """Fused linear cross-entropy (liger-kernel): the head and the loss in
    chunks from the last hidden states; the [tokens, vocab] logits never exist."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    base = model.get_base_model()
    hidden = base.model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).last_hidden_state
    labels = b["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    h = hidden[:, :-1][mask]
    return LigerFusedLinearCrossEntropyLoss()(base.lm_head.weight, h, labels[mask])


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

    loss_of = liger_loss if name.startswith("liger") else trainer_loss

    def one(b):
        loss = loss_of(model, b)
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


def _missing_package(variant: str) -> str | None:
    import importlib.util

    need = {"liger": "liger_kernel", "varlen": "flash_attn"}.get(variant.split("_")[0])
    if need and importlib.util.find_spec(need) is None:
        return need.replace("_", "-")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="baseline,flex,varlen,liger,compiled,flex_compiled,liger_compiled")
    ap.add_argument("--shape", default="mistral7b", choices=["mistral7b", "llama8b"])
    ap.add_argument("--assistant-share", type=float, default=0.5,
                    help="share of each example's tokens that carry a loss (assistant-only loss)")
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
              "lora_dropout": args.dropout, "gradient_checkpointing": False,
              "shape": "smoke" if args.smoke else args.shape, "assistant_share": args.assistant_share,
              "trainer_compute_path": pick_compute_path(DEVICE).describe()}
    print(json.dumps(header), flush=True)

    shape_name = "smoke" if args.smoke else args.shape
    shape = SHAPES[shape_name]
    model = add_lora(build_model("sdpa", shape_name, DEVICE), args.rank, args.dropout)
    frozen, trainable = count_flops(model)
    layers, width = shape["num_hidden_layers"], shape["hidden_size"]
    batches = make_batches(4, args.rows, args.seq, shape["vocab_size"], args.min_len, args.max_len, 0,
                           args.assistant_share)
    results = {}
    compiled = False
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        attn = {"flex": "flex_attention", "varlen": "flash_attention_2"}.get(name.split("_")[0], "sdpa")
        try:
            missing = _missing_package(name)
            if missing:
                res = {"variant": name, "error": "missing", "message": f"pip install {missing} (not installed)"}
                results[name] = res
                print(json.dumps(res), flush=True)
                continue
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
