#!/usr/bin/env python3
"""Overhead of the distributed (multi-process) training path against the plain one.

Runs the SAME job through brightrun-trainer twice per round:
  plain        run_training in this process (what a 1-GPU job does)
  distributed  run_distributed with --world-size processes (what an N-GPU job
               does; with 1 it is the 1-GPU job sent through the distributed
               path: spawn, rendezvous, queue relay, one all-reduce and one stop
               broadcast per optimizer step)
and prints one JSON line per run and a summary line. Throughput is the trainer's
own training-loop figure (summary.json tokens_per_second: steps only, no model
load or evaluation), so the comparison is the per-step cost; the wall time,
which includes the workers' start-up, is printed too.

overhead = 1 - distributed tokens/s / plain tokens/s        (--world-size 1)
eff(n)   = distributed tokens/s / (n x plain tokens/s)      (--world-size n > 1;
           the estimate's scaling efficiency, docs/estimates.md)

No weights or internet needed: the default model is a random Llama of
--hidden/--layers with a BPE tokenizer trained on the data (tinymodel.py);
--model takes a local model directory instead. The data is --data, else
$BRIGHTRUN_DATASETS_DIR's (or ../shared/data's) EQ-18 when present, else synthetic chats.

Run from the repo root on a GPU machine (the trainer's venv, PYTHONPATH=trainer):
  PYTHONPATH=trainer python3 bench/trainer/ddp_overhead.py                  # ~3-4 min on one H100
  PYTHONPATH=trainer python3 bench/trainer/ddp_overhead.py --world-size 2   # scaling on 2 GPUs
  PYTHONPATH=trainer python3 bench/trainer/ddp_overhead.py --smoke          # CPU self-check (gloo)

Status: written and checked on the CPU with --smoke only; NOT run on a GPU yet.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "trainer"))

from brightrun_trainer.config import JobConfig  # noqa: E402
from brightrun_trainer.distributed import run_distributed  # noqa: E402
from brightrun_trainer.reporting import MemoryReporter  # noqa: E402
from brightrun_trainer.tinymodel import build_tiny_model, corpus_from_files  # noqa: E402
from brightrun_trainer.train import run_training  # noqa: E402

WORDS = ("the model learns to answer questions about gradients adapters schedules tokens batches "
         "memory throughput rank alpha dropout warmup cosine linear checkpoint resume evaluation").split()


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def synthetic_chats(path: Path, n: int, seed: int = 0) -> Path:
    rnd = random.Random(seed)

    def text(lo, hi):
        return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))

    with open(path, "w") as fh:
        for _ in range(n):
            msgs = [{"role": "system", "content": "You are a helpful assistant."}]
            for _ in range(rnd.randint(1, 3)):
                msgs += [{"role": "user", "content": text(10, 60)}, {"role": "assistant", "content": text(40, 300)}]
            fh.write(json.dumps({"messages": msgs}) + "\n")
    return path


def pick_data(arg: str | None, tmp: Path) -> Path:
    if arg:
        return Path(arg)
    name = "eq-18-conversations.v4.json"
    env = os.environ.get("BRIGHTRUN_DATASETS_DIR")
    # On the device machine the datasets travel inside the checkout (shared/).
    for p in ([Path(env) / name] if env else []) + [ROOT.parent / "shared" / "data" / name, ROOT / "shared" / "data" / name]:
        if p.is_file():
            return p
    return synthetic_chats(tmp / "synthetic.jsonl", 400)


def one_run(variant: str, cfg: JobConfig, data: Path, out: Path, world: int) -> dict:
    rep = MemoryReporter()
    t0 = time.perf_counter()
    if variant == "plain":
        res = run_training(cfg, data, out, reporter=rep)
    else:
        res = run_distributed(cfg, data, out, reporter=rep, world_size=world, work_dir=out.parent / (out.name + "-ranks"))
    wall = time.perf_counter() - t0
    s = res.summary
    losses = [r["training_loss"] for r in rep.records if r.get("type") == "metrics"]
    return {"variant": variant, "world_size": s.get("world_size", 1), "steps": s["steps_completed"],
            "tokens": s["tokens_trained"], "train_seconds": round(s["train_seconds"], 3),
            "tokens_per_second": round(s["tokens_per_second"], 1), "wall_seconds": round(wall, 2),
            "final_training_loss": round(losses[-1], 5) if losses else None,
            "gpu_memory_peak_gb": s.get("gpu_memory_peak_gb")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="a local model directory (default: a random Llama of --hidden/--layers)")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--data", default=None)
    ap.add_argument("--world-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--max-seq-length", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2, help="each round runs both variants (order alternates)")
    ap.add_argument("--smoke", action="store_true", help="CPU self-check: tiny model, 4 steps, 1 round, gloo")
    a = ap.parse_args()

    device = "cuda"
    if a.smoke:
        device, a.hidden, a.layers, a.steps, a.rounds, a.max_seq_length = "cpu", 64, 2, 4, 1, 512
        a.batch_size = min(a.batch_size, 4)
    tmp = Path(tempfile.mkdtemp(prefix="ddp-overhead-"))
    data = pick_data(a.data, tmp)
    model = a.model
    if model is None:
        log(f"building a random Llama (hidden {a.hidden}, {a.layers} layers) with a tokenizer trained on {data.name}")
        texts = corpus_from_files([data]) if data.suffix in (".json", ".jsonl") else None
        model = str(build_tiny_model(tmp / "model", texts, vocab_size=8000, hidden=a.hidden, layers=a.layers,
                                     heads=max(4, a.hidden // 64)))
    cfg = JobConfig.from_dict({"base_model": model, "device": device, "max_steps": a.steps, "num_epochs": 50,
                               "batch_size": a.batch_size, "gradient_accumulation_steps": a.grad_accum,
                               "max_seq_length": a.max_seq_length, "lora_rank": 16, "lora_alpha": 32,
                               "lora_dropout": 0.0, "learning_rate": 1e-4, "warmup_steps": 0,
                               "eval_samples": 0, "validation_share": 0.05, "logging_steps": 1})
    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(json.dumps({"bench": "ddp_overhead", "device": name, "world_size": a.world_size, "model": model,
                      "data": str(data), "steps": a.steps, "batch_size": a.batch_size,
                      "max_seq_length": a.max_seq_length, "torch": torch.__version__}), flush=True)
    runs: dict[str, list[dict]] = {"plain": [], "distributed": []}
    for r in range(a.rounds):
        order = ["plain", "distributed"] if r % 2 == 0 else ["distributed", "plain"]
        for v in order:
            log(f"round {r + 1}: {v}")
            rec = one_run(v, cfg, data, tmp / f"out-{v}-{r}", a.world_size)
            rec["round"] = r + 1
            print(json.dumps(rec), flush=True)
            runs[v].append(rec)
    tps = {v: sum(x["tokens_per_second"] for x in rs) / len(rs) for v, rs in runs.items()}
    summary = {"summary": True, "plain_tokens_per_second": round(tps["plain"], 1),
               "distributed_tokens_per_second": round(tps["distributed"], 1), "world_size": a.world_size,
               "same_final_loss": all(abs(p["final_training_loss"] - d["final_training_loss"]) < 1e-3
                                      for p, d in zip(runs["plain"], runs["distributed"]))}
    if a.world_size == 1:
        summary["overhead"] = round(1 - tps["distributed"] / tps["plain"], 4)
    else:
        summary["scaling_efficiency"] = round(tps["distributed"] / (a.world_size * tps["plain"]), 4)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
