#!/usr/bin/env python3
"""One training step per variant in ONE process, interleaved over rounds (after a
warm-up round): a quick, load-robust ratio between the CPU compute paths.

  .venv/bin/python bench/trainer/cpu_step.py today,packed_no,single_no,single_ac,bf16w_single_no 0,1 2

variants: today (packed rows, full fp32 logits), {packed|single}_{no|ac} (the
trainer's ComputePath without/with bf16 autocast), bf16w_{packed|single}_no
(frozen weights in bf16, LoRA fp32, no autocast); then training-split example
indices and the number of timed rounds. Prints one JSON line per timed step and
a summary of tokens/s per variant.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "trainer"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from brightrun_trainer.config import JobConfig  # noqa: E402
from brightrun_trainer.data import load_dataset, split_examples  # noqa: E402
from brightrun_trainer.encoding import collate_packed, encode_all, ensure_chat_template  # noqa: E402
from brightrun_trainer.models import load_model, load_tokenizer, resolve_model  # noqa: E402
from brightrun_trainer.train import ComputePath, set_seed, token_loss_sum, train_micro_batch, wrap_lora  # noqa: E402
variants = sys.argv[1].split(",")
idx = [int(x) for x in sys.argv[2].split(",")]
rounds = int(sys.argv[3])
cfg = JobConfig(base_model="HuggingFaceTB/SmolLM2-135M-Instruct", lora_rank=8, lora_alpha=16, lora_dropout=0.05, device="cpu")
set_seed(0)
r = resolve_model(cfg.base_model)
tok = load_tokenizer(r)
ensure_chat_template(tok)
m32 = wrap_lora(load_model(r, device="cpu"), cfg)
m32.train()
m16 = None
if any(v.startswith("bf16w") for v in variants):
    m16 = wrap_lora(load_model(r, device="cpu").to(torch.bfloat16), cfg)
    m16.train()
    print("lora dtype", next(p for n, p in m16.named_parameters() if "lora_A" in n).dtype)
ds = load_dataset(str(Path(os.environ.get("BRIGHTRUN_DATASETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data") / "eq-12-conversations.v4.json"))
tr, va = split_examples(ds.examples, cfg.validation_share)
enc, _, _ = encode_all(tok, [tr[i] for i in idx], 1024)
n = sum(e.n_assistant for e in enc)
ntok = sum(e.n_tokens for e in enc)
def today(model):
    t = collate_packed(enc, 1024, tok.pad_token_id)
    lg = model(input_ids=t["input_ids"], position_ids=t["position_ids"], use_cache=False).logits
    loss, _ = token_loss_sum(lg, t["labels"])
    (loss / n).backward()
    return float(loss.detach())
res = {}
for rd in range(rounds + 1):
    for v in variants:
        model = m16 if v.startswith("bf16w") else m32
        model.zero_grad()
        t0 = time.perf_counter()
        if v == "today":
            loss = today(model)
        else:
            rows, ac = v.split("_")[-2:]
            loss = train_micro_batch(model, ComputePath(rows, ac == "ac"), enc, n, 1024, tok.pad_token_id, "cpu")
        dt = time.perf_counter() - t0
        if rd:  # round 0 warms up
            res.setdefault(v, []).append(dt)
            print(json.dumps({"v": v, "round": rd, "tokens": ntok, "s": round(dt, 2), "tok_s": round(ntok / dt, 1), "loss": round(loss / n, 4)}), flush=True)
print(json.dumps({v: round(ntok * len(t) / sum(t), 1) for v, t in res.items()}))
