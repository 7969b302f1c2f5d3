"""Inference on the agent: SmolLM2-135M-Instruct + a LoRA adapter with the serving engine.

Measures, in one process (see README.md for the numbers and how to read them):

1. cold start: the first load of the base model (from the models directory;
   the one-time GGUF conversion is timed separately) + loading the adapter;
2. time to first token with a warm model and a ~200-token prompt (base and adapter);
3. generated tokens/s of one stream (decode only, and end to end);
4. four concurrent streams (2 base, 2 adapter) on the one loaded model: no errors,
   tokens/s per stream and in total;
5. the baseline in the same run: transformers' own ``generate()`` on the same
   loaded weights (greedy, KV cache) — the ratio shows what the engine's decode
   loop costs or saves.

Usage (from the repository root):
    PYTHONPATH=trainer nice -n 10 .venv/bin/python bench/inference/bench.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def make_adapter(model_dir: str, dest: Path) -> Path:
    """A LoRA adapter with the trainer's default shape (rank 16, all linear layers) and non-zero
    weights. Serving cost does not depend on what the weights learned."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                     task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(0.01)
    peft_model.save_pretrained(str(dest))
    return dest


def prompt_messages(tok, target: int = 200) -> list[dict]:
    """A real conversation from the EQ dataset, its user turn cut so the rendered prompt has ~target tokens."""
    from brightrun_trainer.data import load_dataset
    from brightrun_trainer.encoding import render

    data = Path(os.environ.get("BRIGHTRUN_DATASETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data") / "eq-12-conversations.v4.jsonl"
    ex = load_dataset(data).examples[0]
    msgs = [m for m in ex.prompt_messages() if m["role"] in ("system", "user")]
    system = next((m["content"] for m in msgs if m["role"] == "system"), "You are a helpful assistant.")
    user = " ".join(m["content"] for m in msgs if m["role"] == "user") * 4
    words = user.split()
    lo, hi = 1, len(words)
    while lo < hi:   # the most words whose rendered prompt stays within target tokens
        mid = (lo + hi + 1) // 2
        m = [{"role": "system", "content": system}, {"role": "user", "content": " ".join(words[:mid])}]
        n = len(tok(render(tok, m, True), add_special_tokens=False)["input_ids"])
        lo, hi = (mid, hi) if n <= target else (lo, mid - 1)
    return [{"role": "system", "content": system}, {"role": "user", "content": " ".join(words[:lo])}]


def int8_vs_exact(engine, lb, msgs, greedy, adapter, runs: int) -> dict:
    """Decode tokens/s (wall and per CPU-second) with the int8 copies and with the exact weights,
    alternating on the same loaded model, and how much of the greedy answer they share."""
    from brightrun_trainer.inference.int8 import set_enabled

    rates: dict[str, list[float]] = {"int8": [], "exact": []}
    cpu_rates: dict[str, list[float]] = {"int8": [], "exact": []}
    texts: dict[str, list[int]] = {}
    try:
        for _ in range(runs):
            for mode in ("exact", "int8"):
                with lb.lock:
                    set_enabled(lb.model, mode == "int8")
                cpu0 = time.process_time()
                r = engine.generate(MODEL, msgs, greedy, adapter=adapter)
                cpu = time.process_time() - cpu0
                dec = r.timings["generate_seconds"] - r.timings["first_token_seconds"]
                rates[mode].append((r.completion_tokens - 1) / dec if dec > 0 else 0.0)
                cpu_rates[mode].append(r.completion_tokens / cpu if cpu > 0 else 0.0)
                texts[mode] = lb.tokenizer(r.text, add_special_tokens=False)["input_ids"]
    finally:
        with lb.lock:
            set_enabled(lb.model, True)
    a, b = texts["int8"], texts["exact"]
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    med = {k: statistics.median(v) for k, v in rates.items()}
    cmed = {k: statistics.median(v) for k, v in cpu_rates.items()}
    return {"decode_exact_tokens_per_second": round(med["exact"], 1),
            "decode_int8_tokens_per_second": round(med["int8"], 1),
            "decode_int8_vs_exact_ratio": round(med["int8"] / med["exact"], 2) if med["exact"] else None,
            "decode_exact_tokens_per_cpu_second": round(cmed["exact"], 1),
            "decode_int8_tokens_per_cpu_second": round(cmed["int8"], 1),
            "greedy_tokens_equal_before_first_difference": same,
            "greedy_tokens_compared": min(len(a), len(b)),
            "greedy_int8_text": lb.tokenizer.decode(a)[:200],
            "greedy_exact_text": lb.tokenizer.decode(b)[:200]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    ap.add_argument("--quantize", default="auto", choices=("auto", "int8", "none"),
                    help="the engine's decode weights (auto: int8 on CPU); the same-run comparison of int8 "
                         "and exact decoding runs whenever int8 is on")
    ap.add_argument("--threads", type=int, help="CPU threads for a lone generation (default: the engine's, all the cores)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import torch

    from brightrun_trainer.encoding import render
    from brightrun_trainer.inference.engine import Engine, GenParams, adapter_name
    from brightrun_trainer.models import models_dir, resolve_model

    from brightrun_trainer.inference.engine import torch_threads_for

    out: dict = {"model": MODEL, "torch_threads_policy": torch_threads_for("cpu", False, configured=args.threads),
                 "cpu_count": os.cpu_count(),
                 "loadavg_start": loadavg()}
    t0 = time.monotonic()
    resolved = resolve_model(MODEL)   # converts the packaged GGUF once into the models directory
    out["resolve_seconds"] = round(time.monotonic() - t0, 2)
    out["model_source"] = resolved.source
    work = Path(tempfile.mkdtemp(prefix="brightrun-bench-inf-"))
    adapter_dir = make_adapter(resolved.path, work / "adapter")
    adapter = (adapter_name("bench-adapter", 1), adapter_dir)

    # 1. cold start: first load of the base model in this process + the adapter
    engine = Engine(device="cpu", dtype=args.dtype, threads=args.threads, quantize=args.quantize)
    t0, cpu0 = time.monotonic(), time.process_time()
    lb, base_s = engine.base(MODEL)
    ad_s = lb.ensure_adapter(adapter[0], adapter_dir, 16)
    out["cold_start_seconds"] = round(time.monotonic() - t0, 3)
    out["cold_start_cpu_seconds"] = round(time.process_time() - cpu0, 3)
    out["cold_start_base_seconds"] = round(base_s, 3)
    out["cold_start_adapter_seconds"] = round(ad_s, 3)
    out["dtype"] = str(engine.torch_dtype()).replace("torch.", "")
    out["decode_int8"] = engine.decode_int8()

    msgs = prompt_messages(lb.tokenizer)
    greedy = GenParams(max_tokens=args.tokens, temperature=0.0)
    engine.generate(MODEL, msgs, GenParams(max_tokens=4, temperature=0.0), adapter=adapter)   # warm-up

    # 2. time to first token, warm (the callback's clock: what a stream would post)
    def ttft(ad) -> tuple[float, int]:
        t = time.monotonic()
        first: list[float] = []
        res = engine.generate(MODEL, msgs, GenParams(max_tokens=2, temperature=0.0), adapter=ad,
                              on_text=lambda s: first or first.append(time.monotonic() - t))
        return (first[0] if first else res.timings["total_seconds"]), res.prompt_tokens

    for label, ad in (("adapter", adapter), ("base", None)):
        vals = []
        cpu0 = time.process_time()
        for _ in range(args.runs):
            v, n_prompt = ttft(ad)
            vals.append(v)
        out[f"ttft_{label}_seconds_median"] = round(statistics.median(vals), 3)
        out[f"ttft_{label}_seconds_all"] = [round(v, 3) for v in vals]
        out[f"ttft_{label}_cpu_seconds_mean"] = round((time.process_time() - cpu0) / len(vals), 3)
        out["prompt_tokens"] = n_prompt

    # 3. one stream's tokens/s (adapter), and the transformers generate() baseline on the same weights
    rates, e2e = [], []
    cpu0, wall0, ntok = time.process_time(), time.monotonic(), 0
    for _ in range(max(1, args.runs // 2)):
        r = engine.generate(MODEL, msgs, greedy, adapter=adapter)
        dec = r.timings["generate_seconds"] - r.timings["first_token_seconds"]
        rates.append((r.completion_tokens - 1) / dec if dec > 0 else 0.0)
        e2e.append(r.completion_tokens / r.timings["generate_seconds"])
        ntok += r.completion_tokens
    # On a shared machine wall-clock rates measure the share of the CPU we got; tokens per CPU-second
    # (this process, all threads) is what one otherwise idle core would give.
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    out["stream_cpu_share"] = round(cpu / wall, 2)
    out["stream_tokens_per_cpu_second"] = round(ntok / cpu, 1) if cpu > 0 else None
    out["stream_completion_tokens"] = r.completion_tokens
    out["stream_decode_tokens_per_second"] = round(statistics.median(rates), 1)
    out["stream_end_to_end_tokens_per_second"] = round(statistics.median(e2e), 1)
    out["stream_thread_guard_ms_per_step"] = {f"{kind} {n} threads": round(v * 1000, 1)
                                              for (kind, n), v in sorted(engine.guard.averages().items())}

    # The baseline runs on this thread with the thread count the engine's last generation here left
    # set (the policy's count, or 1 where the engine's thread guard measured 1 faster).
    out["baseline_threads"] = torch.get_num_threads()
    with lb.lock:
        lb._activate(adapter[0])
        ids = lb.tokenizer(render(lb.tokenizer, msgs, True), add_special_tokens=False,
                           return_tensors="pt")["input_ids"]
        base_rates = []
        for _ in range(max(1, args.runs // 2)):
            t = time.monotonic()
            with torch.inference_mode():
                g = lb.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens,
                                      min_new_tokens=args.tokens, do_sample=False,
                                      pad_token_id=lb.tokenizer.pad_token_id)
            base_rates.append((g.shape[1] - ids.shape[1]) / (time.monotonic() - t))
    out["baseline_hf_generate_tokens_per_second"] = round(statistics.median(base_rates), 1)
    out["engine_vs_hf_generate_ratio"] = round(out["stream_end_to_end_tokens_per_second"]
                                               / out["baseline_hf_generate_tokens_per_second"], 2)

    # 3b. int8 vs exact decode weights, same loaded model, same run, alternating (inference/int8.py)
    if engine.decode_int8():
        out.update(int8_vs_exact(engine, lb, msgs, greedy, adapter, max(2, args.runs // 2)))

    # 4. four concurrent streams on the one loaded model
    results: list = [None] * 4
    errors: list[str] = []

    def run(i):
        try:
            results[i] = engine.generate(MODEL, msgs, GenParams(max_tokens=64, temperature=0.7, seed=i),
                                         adapter=adapter if i % 2 else None)
        except Exception as e:  # noqa: BLE001 - counted as an error
            errors.append(f"{type(e).__name__}: {e}")

    t, cpu0 = time.monotonic(), time.process_time()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    wall = time.monotonic() - t
    ok = [r for r in results if r is not None]
    out["concurrent_streams"] = 4
    out["concurrent_errors"] = errors
    out["concurrent_wall_seconds"] = round(wall, 2)
    out["concurrent_cpu_share"] = round((time.process_time() - cpu0) / wall, 2)
    out["concurrent_total_tokens_per_second"] = round(sum(r.completion_tokens for r in ok) / wall, 1)
    out["concurrent_per_stream_tokens_per_second"] = [round(r.completion_tokens / r.timings["generate_seconds"], 1)
                                                      for r in ok]
    out["concurrent_ttft_seconds"] = [r.timings["first_token_seconds"] for r in ok]
    out["loadavg_end"] = loadavg()
    out["models_dir"] = str(models_dir())
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
