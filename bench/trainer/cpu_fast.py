#!/usr/bin/env python3
"""CPU benchmark for issue 14: today's training path vs the trainer's fast path (and TRL).

Every variant trains the same LoRA (SmolLM2-135M-Instruct by default, r8 / alpha 16 /
dropout 0.05 on all linear layers, AdamW lr 1e-4 cosine, batch 4) on the same
EQ-12 training split, in the trainer's own micro-batch order (Plan.micro_batches),
for one epoch (or --steps). Each variant runs in its own child process so that its
peak RSS is its own (os.wait4); variants run one after another, and --rounds N
repeats the whole list interleaved (A B C A B C) so that the ratios see the same
machine load. After training, every variant's adapter is scored with the same
evaluator (fp32, single rows, exact) on the held-out split, so "held-out loss no
worse" compares like with like.

Variants:
  today        the trainer before issue 14: packed rows (block-diagonal mask from
               position ids), fp32, full-length logits + token_loss_sum
  packed_keep  packed rows, fp32, logits only where a label follows
  single       one example per forward (no mask, fused causal SDPA), fp32, kept logits
  packed_bf16  packed rows, bf16 autocast, kept logits
  autocast     single rows, fp32 frozen weights, bf16 autocast, kept logits (the fast path before
               bf16 frozen weights)
  fast         what the trainer now does on this CPU (pick_compute_path("cpu"): single rows, bf16
               frozen weights, fp32 LoRA weights, bf16 autocast, LoRA dropout masks from dropout.py)
  fast_torch_dropout  the same with PyTorch's nn.Dropout (the fast path before dropout.py; every
               variant but fast uses nn.Dropout)
  trl          TRL SFTTrainer (bench/trainer/requirements-bench.txt), same tokens and
               loss masks (assistant_masks), padded batches of 4, fp32
  trl_bf16     the same with bf16=True

Usage (repo root):
  .venv/bin/python bench/trainer/cpu_fast.py --variants today,fast --max-seq-length 256
  PYTHONPATH=/tmp/brightrun-bench-pkgs .venv/bin/python bench/trainer/cpu_fast.py --variants fast,trl
Prints one JSON line per variant run and a summary line (ratios against the first variant).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "trainer"))

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def child(args) -> dict:
    import torch

    from brightrun_trainer.config import JobConfig
    from brightrun_trainer.data import load_dataset, split_examples
    from brightrun_trainer.encoding import collate_packed, encode_all, ensure_chat_template
    from brightrun_trainer.models import load_model, load_tokenizer, resolve_model
    from brightrun_trainer.train import (ComputePath, Plan, evaluate_loss, make_scheduler, pick_compute_path,
                                         set_seed, token_loss_sum, train_micro_batch, wrap_lora)

    cfg = JobConfig(base_model=args.model, lora_rank=8, lora_alpha=16, lora_dropout=args.lora_dropout, learning_rate=1e-4,
                    batch_size=args.batch_size, num_epochs=1, max_seq_length=args.max_seq_length, device="cpu",
                    max_steps=args.steps)
    set_seed(cfg.seed)
    resolved = resolve_model(cfg.base_model)
    tok = load_tokenizer(resolved)
    ensure_chat_template(tok)
    paths = {"packed_keep": ComputePath("packed", False), "single": ComputePath("single", False),
             "packed_bf16": ComputePath("packed", True), "autocast": ComputePath("single", True),
             "fast": pick_compute_path("cpu", env={}), "fast_torch_dropout": pick_compute_path("cpu", env={})}
    path = paths.get(args.variant)
    model = load_model(resolved, device="cpu", dtype=path.weights_dtype("cpu") if path else None)
    model.config.use_cache = False
    ds = load_dataset(args.data)
    train_ex, val_ex = split_examples(ds.examples, cfg.validation_share)
    if args.limit:
        train_ex = train_ex[: args.limit]
    train_enc, _, stats = encode_all(tok, train_ex, cfg.max_seq_length)
    if args.longest:  # the peak memory is set by the longest examples: a short run that still meets it
        train_enc = sorted(train_enc, key=lambda e: -e.n_tokens)[: args.longest]
    val_enc, _, _ = encode_all(tok, val_ex, cfg.max_seq_length)
    pad = tok.pad_token_id
    model = wrap_lora(model, cfg)
    if args.variant != "fast":  # every other variant is a path before issue 14 or a peer: PyTorch's dropout
        _torch_dropout(model)
    plan = Plan(len(train_enc), cfg.batch_size, 1, 1, cfg.max_steps)
    exact = ComputePath(rows="single", autocast=False)
    v = args.variant
    out = {"variant": v, "threads": torch.get_num_threads(), "train_examples": len(train_enc),
           "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
           "max_seq_length": cfg.max_seq_length, "steps": plan.total_steps}
    if v.startswith("trl"):
        out.update(run_trl(args, model, tok, train_enc, plan, cfg, bf16=v == "trl_bf16"))
    else:
        out["path"] = path.describe() if path else "packed rows, full logits (before issue 14)"
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        sched = make_scheduler(opt, cfg, plan.total_steps)
        model.train()
        tokens, step_times, losses, cpu_times = 0, [], [], []
        for step in range(plan.total_steps):
            t0, c0 = time.perf_counter(), time.process_time()
            _, micro = plan.micro_batches(step, cfg.seed)
            batch = [train_enc[i] for i in micro[0]]
            n_loss = sum(e.n_assistant for e in batch)
            step_loss = 0.0
            if path is None:
                t = collate_packed(batch, cfg.max_seq_length, pad)
                logits = model(input_ids=t["input_ids"], position_ids=t["position_ids"], use_cache=False).logits
                loss, _ = token_loss_sum(logits, t["labels"])
                (loss / n_loss).backward()
                step_loss += float(loss)
                del logits, loss
            else:  # the trainer's own micro-batch step
                step_loss += train_micro_batch(model, path, batch, n_loss, cfg.max_seq_length, pad, "cpu")
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step_times.append(time.perf_counter() - t0)
            tokens += sum(e.n_tokens for e in batch)
            cpu_times.append(time.process_time() - c0)
            losses.append(step_loss / n_loss)
        secs = sum(step_times)
        steady = sum(step_times[1:])
        steady_tokens = tokens - sum(train_enc[i].n_tokens for i in plan.micro_batches(0, cfg.seed)[1][0])
        out.update({"tokens": tokens, "train_seconds": round(secs, 2), "tokens_per_second": round(tokens / secs, 1),
                    "steady_tokens_per_second": round(steady_tokens / steady, 1) if steady else None,
                    "first_step_seconds": round(step_times[0], 2),
                    "train_cpu_seconds": round(sum(cpu_times), 2),
                    "tokens_per_cpu_second": round(tokens / sum(cpu_times), 1),
                    "mean_train_loss": round(sum(losses) / len(losses), 4)})
    out["load_average_after_training"] = [round(x, 2) for x in os.getloadavg()]
    if path is not None and path.bf16_weights:
        # Score the adapter on the fp32 base like every other variant (the exact evaluator).
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        lora = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
        del model
        model = wrap_lora(load_model(resolved, device="cpu"), cfg)
        set_peft_model_state_dict(model, lora)
    t0 = time.perf_counter()
    out["heldout_loss"] = round(evaluate_loss(model, val_enc, cfg.batch_size, cfg.max_seq_length, pad, "cpu", exact), 4)
    if args.base:
        with model.disable_adapter():
            out["base_heldout_loss"] = round(
                evaluate_loss(model, val_enc, cfg.batch_size, cfg.max_seq_length, pad, "cpu", exact), 4)
    out["eval_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _torch_dropout(model) -> None:
    """Put back nn.Dropout where wrap_lora installed the trainer's FastDropout (dropout.py)."""
    from torch import nn

    from brightrun_trainer.dropout import FastDropout

    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if isinstance(drops, nn.ModuleDict):
            for name, d in list(drops.items()):
                if isinstance(d, FastDropout):
                    drops[name] = nn.Dropout(d.p)


def run_trl(args, model, tok, train_enc, plan, cfg, bf16: bool) -> dict:
    """TRL SFTTrainer on the same token ids and assistant masks."""
    import tempfile

    from trl import SFTConfig, SFTTrainer

    # The same examples in the same order as the trainer's first epoch.
    order = [i for s in range(plan.total_steps) for i in plan.micro_batches(s, cfg.seed)[1][0]]
    rows = [{"input_ids": train_enc[i].input_ids,
             "labels": list(train_enc[i].labels)} for i in order]   # -100 off the assistant turns
    # datasets 5.2 cannot hash a pyarrow 26 table for its cache fingerprint (dill: "Can't pickle
    # MonthDayNano"); nothing here is cached, so the table gets a random fingerprint instead.
    # The rows are already tokenized with their masks: TRL skips its preparation.
    import datasets.arrow_dataset as arrow_dataset
    from datasets import Dataset
    from datasets.fingerprint import generate_random_fingerprint

    arrow_dataset.generate_fingerprint = lambda _ds: generate_random_fingerprint()
    ds = Dataset.from_list(rows)
    targs = SFTConfig(dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
                      output_dir=tempfile.mkdtemp(), per_device_train_batch_size=cfg.batch_size, num_train_epochs=1,
                      max_steps=plan.total_steps, learning_rate=cfg.learning_rate, lr_scheduler_type="cosine",
                      warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", logging_steps=1,
                      save_strategy="no", report_to=[], use_cpu=True, bf16=bf16, seed=cfg.seed,
                      assistant_only_loss=False, max_length=cfg.max_seq_length, dataloader_num_workers=0,
                      disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=targs, train_dataset=ds, processing_class=tok)
    # keep the trainer's order: no shuffling sampler
    trainer._get_train_sampler = lambda *a, **k: __import__("torch").utils.data.SequentialSampler(trainer.train_dataset)
    res = trainer.train()
    tokens = sum(len(r["input_ids"]) for r in rows)
    secs = res.metrics["train_runtime"]
    import trl

    return {"path": f"TRL {trl.__version__} SFTTrainer (padded batches, {'bf16' if bf16 else 'fp32'})",
            "tokens": tokens, "train_seconds": round(secs, 2), "tokens_per_second": round(tokens / secs, 1),
            "mean_train_loss": round(res.metrics.get("train_loss", float("nan")), 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="today,fast")
    ap.add_argument("--model", default=MODEL)
    data_dir = Path(os.environ.get("BRIGHTRUN_DATASETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--data", default=str(data_dir / "eq-12-conversations.v4.json"))
    ap.add_argument("--max-seq-length", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=0, help="0: one epoch")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training examples")
    ap.add_argument("--longest", type=int, default=0, help="use only the N longest training examples (peak memory)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--lora-dropout", type=float, default=0.05, help="the quick-demo preset uses 0")
    ap.add_argument("--base", action="store_true", help="also score the base model (adapter disabled)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.variant = args.child
        print("RESULT " + json.dumps(child(args)), flush=True)
        return

    results: dict[str, list] = {}
    for r in range(args.rounds):
        for v in args.variants.split(","):
            cmd = [sys.executable, __file__, "--child", v, "--model", args.model, "--data", args.data,
                   "--max-seq-length", str(args.max_seq_length), "--batch-size", str(args.batch_size),
                   "--steps", str(args.steps), "--limit", str(args.limit), "--longest", str(args.longest),
                   "--lora-dropout", str(args.lora_dropout)] + (["--base"] if args.base else [])
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stdout, stderr = proc.communicate()
            line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                res = {"variant": v, "error": stderr.strip().splitlines()[-3:] if stderr.strip() else "no output"}
            else:
                res = json.loads(line[7:])
            res["round"] = r + 1
            res["wall_seconds"] = round(time.perf_counter() - t0, 1)
            res["peak_rss_gb"] = _peak_rss_gb(stderr)
            results.setdefault(v, []).append(res)
            print(json.dumps(res), flush=True)
    first = args.variants.split(",")[0]
    summary = {"summary": True, "ratio_vs": first}
    for v, rs in results.items():
        ok = [x for x in rs if "tokens_per_second" in x]
        if ok:
            summary[v] = {"tokens_per_second": round(sum(x["tokens_per_second"] for x in ok) / len(ok), 1),
                          "peak_rss_gb": max(x["peak_rss_gb"] or 0 for x in ok),
                          "heldout_loss": ok[-1].get("heldout_loss")}
    base = summary.get(first, {}).get("tokens_per_second")
    for v in results:
        if base and v in summary:
            summary[v]["speedup"] = round(summary[v]["tokens_per_second"] / base, 2)
    print(json.dumps(summary), flush=True)


def _peak_rss_gb(stderr: str):
    for line in stderr.splitlines():
        if line.startswith("PEAK_RSS_KB "):
            return round(int(line.split()[1]) / 2**20, 3)
    return None


if __name__ == "__main__":
    if "--child" in sys.argv:
        import atexit
        import resource

        # Report this process's own peak RSS (max resident set, KiB) on exit.
        atexit.register(lambda: print(f"PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
                                      file=sys.stderr, flush=True))
    main()
