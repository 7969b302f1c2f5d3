#!/usr/bin/env python3
"""CPU benchmark for issue 14: the final evaluation's side-by-side answers.

One process, one trained adapter (e.g. a quick-demo job's output directory),
the held-out prompts the trainer uses (EQ-12 split, ``eval_samples`` of them,
128 new tokens, greedy). Variants, interleaved over --rounds so they see the
same machine load:

  two_loops       the path before: adapter answers in one batched loop, then
                  base answers in a second loop (adapter disabled), fp32 weights
  one_loop        train.generate_pairs: adapter and base rows in ONE batched
                  decoding loop (PEFT mixed batch, "__base__"), fp32 weights
  one_loop_bf16   the same on bf16 frozen weights (the CPU training path where
                  the CPU has bf16 units; also what the inference engine serves)

  hf_bf16         one_loop_bf16 through ``model.generate`` (the path before the
                  slot decoder: left-padded prefill, DynamicCache, repeated
                  GQA heads); hf_fp32 the same on fp32 weights
  slots_bf16      train.generate_pairs now (decoding.greedy_tokens: each prompt
                  prefilled alone, left-padded slot cache, grouped GQA heads)
                  on bf16 weights; slots_fp32 the same on fp32 weights

  modules_bf16    slots_bf16 with every decode step through the model's modules
                  (BRIGHTRUN_MIXED_STEPS=0, the path before mixedsteps.py)
  mixed_bf16      slots_bf16 with the decode steps of mixedsteps.MixedDecoder
                  (the default where its first step equals the modules' bit
                  for bit); modules_fp32 / mixed_fp32 the same on fp32 weights

one_loop and one_loop_bf16 run train.generate_pairs, i.e. the slot decoder
since it landed. Each line reports wall and process CPU seconds, the load
average, whether the answers equal the first variant's of the same weights'
dtype (and, with --reference, a previous eval.json's).

  PYTHONPATH=trainer .venv/bin/python bench/trainer/cpu_eval.py --adapter OUT_DIR \
      --variants hf_bf16,slots_bf16,hf_bf16,slots_bf16 --threads 2
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
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "trainer"))


def main():
    import torch
    from peft import PeftModel

    from brightrun_trainer.config import JobConfig
    from brightrun_trainer.data import load_dataset, split_examples
    from brightrun_trainer.encoding import encode_all, ensure_chat_template
    from brightrun_trainer.models import load_model, load_tokenizer, resolve_model
    from brightrun_trainer.train import generate_batch, generate_pairs

    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", required=True, help="a trained adapter directory (a job's output)")
    data_dir = Path(os.environ.get("BRIGHTRUN_DATASETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--data", default=str(data_dir / "eq-12-conversations.v4.json"))
    ap.add_argument("--variants", default="two_loops,one_loop,one_loop_bf16")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--reference", help="an eval.json whose answers the fp32 variants should reproduce")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tcfg = json.loads((Path(args.adapter) / "training_config.json").read_text())["config"]
    cfg = JobConfig.from_dict(tcfg)
    resolved = resolve_model(cfg.base_model)
    tok = load_tokenizer(resolved)
    ensure_chat_template(tok)
    ds = load_dataset(args.data)
    _, val_ex = split_examples(ds.examples, cfg.validation_share)
    _, val_kept, _ = encode_all(tok, val_ex, cfg.max_seq_length)
    pool = val_kept[: cfg.eval_samples]

    models = {}

    def model_for(dtype):
        if dtype not in models:
            m = PeftModel.from_pretrained(load_model(resolved, device="cpu", dtype=dtype), args.adapter)
            m.eval()
            m.config.use_cache = True
            models[dtype] = m
        return models[dtype]

    def two_loops(m, cb):
        a = generate_batch(m, tok, pool, args.max_new_tokens, cfg.max_seq_length, "cpu")
        with m.disable_adapter():
            b = generate_batch(m, tok, pool, args.max_new_tokens, cfg.max_seq_length, "cpu")
        return a, b

    def one_loop(m, cb):
        return generate_pairs(m, tok, pool, args.max_new_tokens, cfg.max_seq_length, "cpu", on_token=cb)

    def hf_loop(m, cb):  # generate_pairs before the slot decoder: one model.generate over the mixed batch
        n = len(pool)
        out = generate_batch(m, tok, pool * 2, args.max_new_tokens, cfg.max_seq_length, "cpu",
                             adapter_names=[m.active_adapter] * n + ["__base__"] * n, on_token=cb)
        return out[:n], out[n:]

    def steps(mixed: bool):
        def run(m, cb):
            os.environ["BRIGHTRUN_MIXED_STEPS"] = "1" if mixed else "0"
            try:
                return one_loop(m, cb)
            finally:
                os.environ.pop("BRIGHTRUN_MIXED_STEPS", None)
        return run

    variants = {"two_loops": (torch.float32, two_loops), "one_loop": (torch.float32, one_loop),
                "modules_bf16": (torch.bfloat16, steps(False)), "mixed_bf16": (torch.bfloat16, steps(True)),
                "modules_fp32": (torch.float32, steps(False)), "mixed_fp32": (torch.float32, steps(True)),
                "one_loop_bf16": (torch.bfloat16, one_loop),
                "hf_fp32": (torch.float32, hf_loop), "hf_bf16": (torch.bfloat16, hf_loop),
                "slots_fp32": (torch.float32, one_loop), "slots_bf16": (torch.bfloat16, one_loop)}
    ref = None
    if args.reference:
        samples = json.loads(Path(args.reference).read_text())["samples"]
        ref = ([s["adapter"] for s in samples], [s["base"] for s in samples])
    first = {}
    for r in range(args.rounds):
        for v in args.variants.split(","):
            dtype, fn = variants[v]
            m = model_for(dtype)
            load0 = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            first_token = []
            answers = fn(m, lambda k: first_token.append(time.perf_counter() - t0))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            steps_ms = (1000 * (first_token[-1] - first_token[0]) / (len(first_token) - 1)
                        if len(first_token) > 1 else None)
            first.setdefault(dtype, answers)
            rec = {"variant": v, "round": r + 1, "threads": torch.get_num_threads(), "wall_seconds": round(wall, 2),
                   "cpu_seconds": round(cpu, 2),
                   "prefill_seconds": round(first_token[0], 2) if first_token else None,
                   "decode_step_ms": round(steps_ms, 1) if steps_ms else None, "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
                   "prompts": len(pool), "max_new_tokens": args.max_new_tokens,
                   "dtype": str(dtype).replace("torch.", ""),
                   "same_answers_as_first_variant_of_its_dtype": answers == first[dtype]}
            if ref is not None:
                rec["same_answers_as_reference"] = [answers[0] == ref[0], answers[1] == ref[1]]
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
