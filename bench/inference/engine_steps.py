"""The engine's own decode loop, step by step: SmolLM2-135M-Instruct + a rank-16 adapter, greedy.

Runs ``Engine.generate`` a few times (engine defaults: int8 decode weights, fused decode steps, the
threads policy with its guard) and prints, per generation, the median time of a decode step (inside
the model lock), the time between streamed texts (what a client sees), the thread counts the guard
used, and at the end the guard's moving averages and the load average. The gap between texts minus
the step is the loop's own cost (sampling, detokenizing, stop strings).

    PYTHONPATH=trainer BRIGHTRUN_MODELS_DIR=/tmp/models nice -n 10 .venv/bin/python bench/inference/engine_steps.py [--runs 3] [--tokens 64]
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    import torch

    from brightrun_trainer.inference.engine import Engine, GenParams, adapter_name
    from brightrun_trainer.models import resolve_model

    resolved = resolve_model(MODEL)
    adapter = (adapter_name("bench-adapter", 1),
               make_adapter(resolved.path, Path(tempfile.mkdtemp(prefix="brightrun-steps-")) / "adapter"))
    engine = Engine(device="cpu")
    lb, _ = engine.base(MODEL)
    msgs = prompt_messages(lb.tokenizer)
    steps: list[tuple[int, float]] = []
    real_step = lb.step

    def timed_step(*a, **kw):
        t = time.perf_counter()
        out = real_step(*a, **kw)
        steps.append((torch.get_num_threads(), time.perf_counter() - t))
        return out

    lb.step = timed_step
    print(f"load average {loadavg()}")
    for i in range(args.runs):
        steps.clear()
        stamps: list[float] = []
        res = engine.generate(MODEL, msgs, GenParams(max_tokens=args.tokens, temperature=0.0), adapter=adapter,
                              on_text=lambda _: stamps.append(time.perf_counter()))
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        step_ms = 1000 * statistics.median(s for _, s in steps) if steps else float("nan")
        gap_ms = 1000 * statistics.median(gaps) if gaps else float("nan")
        print(f"generation {i}: {res.completion_tokens} tokens, first after {res.timings['first_token_seconds']} s; "
              f"decode step {step_ms:.1f} ms median ({1000 / step_ms:.1f} tok/s), between texts {gap_ms:.1f} ms; "
              f"threads used {sorted({n for n, _ in steps})}")
    avgs = {f"{k} {n} threads": round(v * 1000, 1) for (k, n), v in sorted(engine.guard.averages().items())}
    print(f"guard's averages (ms per step): {avgs}; load average {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
