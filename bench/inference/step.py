"""One decode step of SmolLM2-135M-Instruct + a rank-16 adapter: the module path vs the fast path.

Loads the model as the engine does (bf16 on CPUs with bf16 units, int8 decode weights), runs a
~200-token prefill, then times decode steps of each variant, alternating variant by variant in one
process (so load on a shared machine hits both alike), and prints milliseconds per step, tokens/s,
the ratio and the load average. ``--profile`` prints torch.profiler's top operators of each.

    PYTHONPATH=trainer BRIGHTRUN_MODELS_DIR=/tmp/models nice -n 10 .venv/bin/python bench/inference/step.py \
        [--threads 1,2] [--steps 32] [--rounds 5] [--profile] [--base]

``--threads 1,2`` times every variant with 1 and with 2 intra-op threads, alternating too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import MODEL, loadavg, make_adapter, prompt_messages  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1", help="comma-separated thread counts to compare, e.g. 1,2")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--base", action="store_true", help="the base model (adapter disabled) instead of the adapter")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    import torch
    from transformers import DynamicCache

    from brightrun_trainer.encoding import render
    from brightrun_trainer.inference.engine import Engine, adapter_name
    from brightrun_trainer.models import resolve_model

    thread_counts = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(thread_counts[0])
    resolved = resolve_model(MODEL)
    adapter_dir = make_adapter(resolved.path, Path(tempfile.mkdtemp(prefix="brightrun-step-")) / "adapter")
    engine = Engine(device="cpu")
    lb, _ = engine.base(MODEL)
    name = adapter_name("bench-adapter", 1)
    lb.ensure_adapter(name, adapter_dir, 16)
    use = None if args.base else name
    ids = lb.tokenizer(render(lb.tokenizer, prompt_messages(lb.tokenizer), True), add_special_tokens=False,
                       return_tensors="pt")["input_ids"]
    fast = lb.fast
    out = {"threads": thread_counts, "prompt_tokens": int(ids.shape[1]), "loadavg_start": loadavg(),
           "fast_available": fast is not None, "adapter": use is not None}

    lora_caches: dict[bool, dict] = {}

    def run(variant: str, steps: int, prof=None) -> tuple[float, list[int]]:
        """Prefill, then ``steps`` decode steps (timed; profiled when ``prof`` is a profiler)."""
        cache = DynamicCache()
        logits = lb.forward(use, ids, cache)
        tok = int(logits.argmax(-1))
        toks = [tok]
        on_fast = variant.startswith("fast")
        if on_fast and fast.lora_int8 != (variant == "fast"):   # fast: int8 LoRA (bf16); fast_lora_fp32
            lora_caches[fast.lora_int8] = fast._lora         # keep each variant's built matrices
            fast.lora_int8 = variant == "fast"
            fast._lora = lora_caches.get(fast.lora_int8, {})
        state = fast.start(cache, ids.shape[1], ids.shape[1] + steps + 1) if on_fast else None
        if prof is not None:
            prof.start()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(steps):
                if on_fast:
                    with lb.lock:
                        lb._activate(use)
                        logits = fast.step(tok, state, use)
                else:
                    logits = lb.forward(use, torch.tensor([[tok]]), cache)
                tok = int(logits.argmax(-1))
                toks.append(tok)
        if prof is not None:
            prof.stop()
        return (time.perf_counter() - t0) / steps, toks

    paths = ["modules"]
    if fast is not None:
        paths += ["fast", "fast_lora_fp32"] if fast.lora_int8 and use else ["fast"]
    variants = [(p, n) for n in thread_counts for p in paths]
    for p in paths:
        run(p, 4)   # warm-up
    times: dict[tuple, list[float]] = {v: [] for v in variants}
    tokens: dict[str, list[int]] = {}
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    for _ in range(args.rounds):
        for p, n in variants:
            torch.set_num_threads(n)
            t, tokens[p] = run(p, args.steps)
            times[(p, n)].append(t)
    out["cpu_share"] = round((time.process_time() - cpu0) / (time.monotonic() - wall0), 2)
    for p, n in variants:
        ms = statistics.median(times[(p, n)]) * 1000
        out[f"{p}_{n}t_ms_per_step"] = round(ms, 2)
        out[f"{p}_{n}t_tokens_per_second"] = round(1000 / ms, 1)
    for n in thread_counts:
        if fast is not None:
            out[f"fast_vs_modules_{n}t_ratio"] = round(out[f"modules_{n}t_ms_per_step"] / out[f"fast_{n}t_ms_per_step"], 2)
        if n != thread_counts[0]:
            for p in paths:
                out[f"{p}_{n}t_vs_{thread_counts[0]}t_ratio"] = round(
                    out[f"{p}_{thread_counts[0]}t_ms_per_step"] / out[f"{p}_{n}t_ms_per_step"], 2)
    if "fast_lora_fp32" in paths:
        for n in thread_counts:
            out[f"fast_vs_fast_lora_fp32_{n}t_ratio"] = round(
                out[f"fast_lora_fp32_{n}t_ms_per_step"] / out[f"fast_{n}t_ms_per_step"], 2)
    if fast is not None:
        a, b = tokens["fast"], tokens["modules"]
        out["greedy_tokens_equal_before_first_difference"] = next(
            (i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
        out["greedy_tokens_compared"] = len(a)
    out["loadavg_end"] = loadavg()
    print(json.dumps(out, indent=2))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        torch.set_num_threads(thread_counts[0])
        for v in paths:
            prof = profile(activities=[ProfilerActivity.CPU])
            run(v, 8, prof)
            print(f"\n== {v}: top operators over 8 decode steps (after the prefill) ==")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    return 0


if __name__ == "__main__":
    sys.exit(main())
