#!/usr/bin/env python3
"""CPU benchmark: packed assistant-only batches vs naive padded batches.

Same model (LoRA-wrapped), same examples (EQ-18 training split), same order and
micro-batch composition, in one process. Each variant runs a full training step
per micro-batch (forward, backward, AdamW). Throughput counts real (non-padding)
tokens only.

Variants:
  packed        the trainer's path: examples of a micro-batch first-fit packed into
                rows of max_seq_length, position ids restart per example (block-
                diagonal causal attention), loss on assistant tokens only
  padded        naive: one example per row, right-padded to the longest example of
                the micro-batch, attention mask, loss on every non-padding token
  padded_max    naive fixed shape: every row padded to max_seq_length

Usage (from the repo root, after scripts/trainer-setup.sh):
  .venv/bin/python bench/trainer/cpu_packing.py [--model HuggingFaceTB/SmolLM2-135M-Instruct]
      [--data ../shared/data/eq-18-conversations.v4.json] [--max-seq-length 1024] [--batch-size 4]
Prints one JSON line per variant and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "trainer"))

import torch  # noqa: E402

from brightrun_trainer.config import JobConfig  # noqa: E402
from brightrun_trainer.data import load_dataset, split_examples  # noqa: E402
from brightrun_trainer.encoding import (IGNORE_INDEX, collate_packed, collate_padded, encode_all,  # noqa: E402
                                        ensure_chat_template)
from brightrun_trainer.models import load_model, load_tokenizer, resolve_model  # noqa: E402
from brightrun_trainer.train import token_loss_sum, wrap_lora  # noqa: E402


def batches_of(encs, bs, seed):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(encs), generator=g).tolist()
    return [[encs[i] for i in perm[j:j + bs]] for j in range(0, len(perm), bs)]


def run_variant(name, model, opt, batches, make, loss_on_all):
    real = padded_total = 0
    # one warm-up step, not timed
    warm = make(batches[0])
    step(model, opt, warm, loss_on_all)
    t0 = time.perf_counter()
    losses = []
    for b in batches:
        t = make(b)
        losses.append(step(model, opt, t, loss_on_all))
        real += sum(e.n_tokens for e in b)
        padded_total += t["input_ids"].numel()
    dt = time.perf_counter() - t0
    return {"variant": name, "seconds": round(dt, 3), "real_tokens": real, "tensor_tokens": padded_total,
            "padding_fraction": round(1 - real / padded_total, 4), "tokens_per_second": round(real / dt, 1),
            "micro_batches": len(batches), "mean_loss": round(sum(losses) / len(losses), 4)}


def step(model, opt, t, loss_on_all):
    kwargs = {"input_ids": t["input_ids"], "use_cache": False}
    if "position_ids" in t:
        kwargs["position_ids"] = t["position_ids"]
    if "attention_mask" in t:
        kwargs["attention_mask"] = t["attention_mask"]
    labels = t["labels"]
    if loss_on_all:
        labels = torch.where(t["attention_mask"].bool(), t["input_ids"], torch.full_like(labels, IGNORE_INDEX))
    logits = model(**kwargs).logits
    loss, n = token_loss_sum(logits, labels)
    (loss / max(n, 1)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach()) / max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny",
                    help="'tiny' (random Llama, hidden 256, 4 layers, BPE tokenizer trained on the data; "
                         "the default: SmolLM2 runs ~70 tok/s on 2 CPU cores) or a model id/path")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eq-18-conversations.v4.json"))
    ap.add_argument("--max-seq-length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N micro-batches")
    ap.add_argument("--skip-padded-max", action="store_true")
    args = ap.parse_args()

    torch.manual_seed(0)
    model_id = args.model
    if model_id == "tiny":
        import tempfile

        sys.path.insert(0, str(ROOT / "trainer" / "tests"))
        from conftest import build_tiny_model

        texts = [m["content"] for ex in load_dataset(args.data).examples for m in ex.messages]
        model_id = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny", texts, hidden=256, layers=4,
                                        vocab_size=8000))
    resolved = resolve_model(model_id)
    tok = load_tokenizer(resolved)
    ensure_chat_template(tok)
    model = load_model(resolved, device="cpu")
    model.config.use_cache = False
    cfg = JobConfig(base_model=args.model, lora_rank=args.lora_rank, lora_alpha=2 * args.lora_rank,
                    lora_dropout=0.0, max_seq_length=args.max_seq_length)
    model = wrap_lora(model, cfg)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    ds = load_dataset(args.data)
    train, _ = split_examples(ds.examples, 0.10)
    encs, _, stats = encode_all(tok, train, args.max_seq_length)
    batches = batches_of(encs, args.batch_size, 0)
    if args.limit:
        batches = batches[: args.limit]
    pad = tok.pad_token_id
    L = args.max_seq_length
    print(json.dumps({"model": args.model, "data": Path(args.data).name, "train_examples": len(encs),
                      "max_seq_length": L, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                      "tokens": stats.tokens, "truncated_examples": stats.truncated_examples}), flush=True)

    results = {}
    results["packed"] = run_variant("packed", model, opt, batches, lambda b: collate_packed(b, L, pad), False)
    print(json.dumps(results["packed"]), flush=True)
    results["padded"] = run_variant("padded", model, opt, batches, lambda b: collate_padded(b, pad), True)
    print(json.dumps(results["padded"]), flush=True)
    if not args.skip_padded_max:
        def pad_max(b):
            t = collate_padded(b, pad)
            extra = L - t["input_ids"].shape[1]
            if extra > 0:
                t["input_ids"] = torch.nn.functional.pad(t["input_ids"], (0, extra), value=pad)
                t["labels"] = torch.nn.functional.pad(t["labels"], (0, extra), value=IGNORE_INDEX)
                t["attention_mask"] = torch.nn.functional.pad(t["attention_mask"], (0, extra), value=0)
            return t
        results["padded_max"] = run_variant("padded_max", model, opt, batches, pad_max, True)
        print(json.dumps(results["padded_max"]), flush=True)
    summary = {
        "summary": True,
        "packed_vs_padded": round(results["packed"]["tokens_per_second"] / results["padded"]["tokens_per_second"], 3),
        "padded_padding_fraction": results["padded"]["padding_fraction"],
    }
    if "padded_max" in results:
        summary["packed_vs_padded_max"] = round(
            results["packed"]["tokens_per_second"] / results["padded_max"]["tokens_per_second"], 3)
        summary["padded_max_padding_fraction"] = results["padded_max"]["padding_fraction"]
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
