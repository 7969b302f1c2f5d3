#!/usr/bin/env python3
"""Cost of the token accuracy in the training step: the trainer's
train_micro_batch without (counts=None) and with a TokenCounts (one argmax
over the kept assistant-position logits of the same forward), interleaved in
ONE process over rounds after a warm-up round, on SmolLM2-135M (49k vocab:
the head is where an argmax costs most) and real EQ-12 examples.

  nice .venv/bin/python bench/trainer/token_accuracy.py [single|packed] [rounds]

(on CUDA when there is a GPU; the trainer uses packed rows there)

Prints one JSON line per timed step and a summary with the ratio
with/without (1.0 = free).
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "trainer"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from brightrun_trainer.config import JobConfig  # noqa: E402
from brightrun_trainer.data import load_dataset, split_examples  # noqa: E402
from brightrun_trainer.encoding import encode_all, ensure_chat_template  # noqa: E402
from brightrun_trainer.models import load_model, load_tokenizer, resolve_model  # noqa: E402
from brightrun_trainer.train import ComputePath, TokenCounts, set_seed, train_micro_batch, wrap_lora  # noqa: E402

rows = sys.argv[1] if len(sys.argv) > 1 else "single"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
device = "cuda" if torch.cuda.is_available() else "cpu"
cfg = JobConfig(base_model="HuggingFaceTB/SmolLM2-135M-Instruct", lora_rank=8, lora_alpha=16, lora_dropout=0.0, device=device)
set_seed(0)
r = resolve_model(cfg.base_model)
tok = load_tokenizer(r)
ensure_chat_template(tok)
model = wrap_lora(load_model(r, device=device), cfg)
model.train()
data = Path(os.environ.get("BRIGHTRUN_DATASETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
tr, _ = split_examples(load_dataset(str(data / "eq-12-conversations.v4.json")).examples, cfg.validation_share)
enc, _, _ = encode_all(tok, tr[:2], 1024)
n = sum(e.n_assistant for e in enc)
path = ComputePath(rows, False)
times = {"without": [], "with": []}
for rd in range(rounds + 1):
    for variant in ("without", "with"):
        model.zero_grad()
        counts = TokenCounts() if variant == "with" else None
        t0 = time.perf_counter()
        train_micro_batch(model, path, enc, n, 1024, tok.pad_token_id, device, counts)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if rd > 0:
            times[variant].append(dt)
            print(json.dumps({"round": rd, "variant": variant, "seconds": round(dt, 4),
                              "accuracy": counts.accuracy if counts else None}), flush=True)
med = {k: statistics.median(v) for k, v in times.items()}
print(json.dumps({"device": device, "rows": rows, "assistant_tokens": n, "tokens": sum(e.n_tokens for e in enc),
                  "median_seconds": med, "ratio_with_over_without": round(med["with"] / med["without"], 4)}))
