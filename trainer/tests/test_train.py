"""End-to-end LoRA training of a tiny random Llama on the real EQ-12 data (CPU)."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from brightrun_trainer.config import JobConfig
from brightrun_trainer.reporting import JsonlFileReporter, MemoryReporter, MultiReporter
from brightrun_trainer.train import run_training

from conftest import write_config

TRAIN_OVERRIDES = dict(max_seq_length=512, lora_alpha=64, num_epochs=2, eval_steps=5, checkpoint_steps=5,
                       checkpoint_keep=10)


def run(cfg_path, data, out, resume=None):
    mem = MemoryReporter()
    rep = MultiReporter(JsonlFileReporter(out / "metrics.jsonl"), mem)
    try:
        res = run_training(JobConfig.load(cfg_path), data, out, reporter=rep, resume=resume)
    finally:
        rep.close()
    return res, mem.records


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, real_data):
    root = tmp_path_factory.mktemp("train")
    cfg = write_config(root / "job.json", base_model=str(tiny_model), **TRAIN_OVERRIDES)
    res, records = run(cfg, real_data["eq12_jsonl"], root / "out")
    return {"root": root, "cfg": cfg, "res": res, "records": records, "out": root / "out"}


def test_training_loss_falls(trained):
    losses = [l for _, l in trained["res"].losses]
    assert len(losses) == trained["res"].summary["total_steps"] == 20
    assert all(math.isfinite(l) for l in losses)
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < first - 0.05, (first, last)
    evals = [r["validation_loss"] for r in trained["records"] if r["type"] == "eval" and not r.get("final")]
    assert len(evals) == 3 and evals[-1] < evals[0]


def test_metrics_records(trained):
    lines = [json.loads(l) for l in (trained["out"] / "metrics.jsonl").read_text().splitlines()]
    metrics = [r for r in lines if r["type"] == "metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 21))
    for m in metrics:
        for k in ("step", "epoch", "training_loss", "learning_rate", "grad_norm", "tokens_per_second"):
            assert isinstance(m[k], (int, float)), k
        assert m["tokens_per_second"] > 0 and m["grad_norm"] > 0
        assert 0.0 <= m["train_mean_token_accuracy"] <= 1.0
    # Token accuracy rises as the loss falls (the tiny model learns the data's frequent tokens).
    acc = [m["train_mean_token_accuracy"] for m in metrics]
    assert sum(acc[-5:]) / 5 > sum(acc[:3]) / 3, acc
    evals = [r for r in lines if r["type"] == "eval"]
    assert evals and all(0.0 <= r["valid_mean_token_accuracy"] <= 1.0 for r in evals)
    ev = json.loads((trained["out"] / "eval.json").read_text())
    assert 0.0 <= ev["adapter"]["mean_token_accuracy"] <= 1.0 and 0.0 <= ev["base"]["mean_token_accuracy"] <= 1.0
    assert trained["res"].summary["final_validation_mean_token_accuracy"] == ev["adapter"]["mean_token_accuracy"]
    # Warmup then cosine decay.
    lrs = [m["learning_rate"] for m in metrics]
    assert lrs[0] < lrs[2] and lrs[-1] < lrs[3]
    stages = [r["stage"] for r in lines if r["type"] == "stage"]
    for s in ("preparing", "loading_model", "training", "evaluating", "saving"):
        assert s in stages
    progress = [r for r in lines if r["type"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total_steps"] == 20
    assert lines[-1]["type"] == "status" and lines[-1]["status"] == "completed"


def test_output_directory(trained):
    out = trained["out"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "training_config.json", "metrics.jsonl", "eval.json", "README.md", "summary.json"):
        assert (out / name).is_file(), name
    ev = json.loads((out / "eval.json").read_text())
    for side in ("base", "adapter"):
        assert ev[side]["validation_loss"] > 0
        assert ev[side]["perplexity"] == pytest.approx(math.exp(ev[side]["validation_loss"]))
    assert ev["adapter"]["validation_loss"] < ev["base"]["validation_loss"]
    assert len(ev["samples"]) == 2
    for s in ev["samples"]:
        assert set(s) >= {"prompt", "reference", "base", "adapter"}
    summ = json.loads((out / "summary.json").read_text())
    assert summ["status"] == "completed" and summ["steps_completed"] == 20
    assert summ["tokens_trained"] == 2 * summ["train_tokens_per_epoch"]
    assert summ["tokens_per_second"] > 0 and summ["train_seconds"] > 0
    assert summ["train_examples"] + summ["validation_examples"] == 44
    tc = json.loads((out / "training_config.json").read_text())
    assert tc["config"]["lora_rank"] == 8 and tc["resolved"]["chat_template"] == "model"
    bf16 = "bf16 frozen weights" in tc["resolved"]["compute_path"]  # CPUs with bf16 units
    assert tc["resolved"]["dtype"] == ("bfloat16" if bf16 else "float32") and tc["resolved"]["device"] == "cpu"
    keys = load_file(str(out / "adapter_model.safetensors")).keys()
    assert keys and all("lora_" in k for k in keys)


def test_lora_weights_change_and_base_weights_do_not(trained, tiny_model):
    from transformers import AutoModelForCausalLM

    model = trained["res"].model
    dtype = model.get_base_model().model.embed_tokens.weight.dtype  # bf16 on the CPU's bf16-weights path
    fresh = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=dtype)
    fresh_sd = fresh.state_dict()
    n_base = 0
    for name, p in model.get_base_model().named_parameters():
        if "lora_" in name:
            continue
        key = name.replace(".base_layer", "")
        assert torch.equal(p.detach().cpu(), fresh_sd[key]), name
        n_base += 1
    assert n_base == len(fresh_sd)
    lora_b = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # zero-initialised, so trained
    early = load_file(str(trained["out"] / "checkpoints" / "step-000005" / "adapter_model.safetensors"))
    final = load_file(str(trained["out"] / "adapter_model.safetensors"))
    a_keys = [k for k in final if "lora_A" in k]
    assert a_keys and any(not torch.equal(early[k], final[k]) for k in a_keys)


def test_adapter_reloads_with_peft_and_changes_output(trained, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    live_model = trained["res"].model
    dtype = live_model.get_base_model().model.embed_tokens.weight.dtype  # the weights the run trained on
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=dtype)
    ids = torch.tensor([[1, 50, 60, 70, 80, 90, 100]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        model = PeftModel.from_pretrained(base, str(trained["out"]))
        model.eval()
        after = model(input_ids=ids).logits
        live = live_model.eval()(input_ids=ids).logits
    assert (after - before).abs().max() > 1e-3
    assert torch.allclose(after, live, atol=1e-5)
    assert all(p.dtype == torch.float32 for n, p in live_model.named_parameters() if "lora_" in n)
    cfg = json.loads((trained["out"] / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 64 and cfg["base_model_name_or_path"] == str(tiny_model)


def test_resume_reproduces_uninterrupted_losses(trained):
    ckpt = trained["out"] / "checkpoints" / "step-000010"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 10
    for f in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "training_config.json"):
        assert (ckpt / f).is_file()
    out2 = trained["root"] / "resumed"
    res, records = run(trained["cfg"], _data(trained), out2, resume=ckpt)
    full = dict((s, l) for s, l in trained["res"].losses)
    resumed = dict((s, l) for s, l in res.losses)
    assert sorted(resumed) == list(range(1, 21))  # history carried over from the checkpoint
    first_new = [r["step"] for r in records if r["type"] == "metrics"][0]
    assert first_new == 11
    for s in range(11, 21):
        assert resumed[s] == pytest.approx(full[s], rel=1e-3, abs=1e-4), s
    assert res.summary["tokens_trained"] == trained["res"].summary["tokens_trained"]


def _data(trained):
    tc = json.loads((trained["out"] / "training_config.json").read_text())
    return tc["resolved"]["data_file"]


def test_resume_refuses_a_changed_config(trained, tmp_path):
    from brightrun_trainer.errors import ConfigError

    cfg = json.loads(trained["cfg"].read_text())
    cfg["learning_rate"] = 5e-4
    p = tmp_path / "job.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="learning_rate"):
        run(p, _data(trained), tmp_path / "o", resume=trained["out"])


def test_final_evaluation_reports_its_parts(trained):
    parts = [r for r in trained["records"] if r["type"] == "eval_progress"]
    # two losses, then the answers (adapter and base in one decoding loop) in 4 steps of generated tokens
    assert {r["total"] for r in parts} == {6}
    done = [r["done"] for r in parts]
    assert done[:3] == [0, 1, 2] and done[-1] == 6 and done == sorted(set(done))
    assert [r["part"] for r in parts[1:3]] == ["adapter validation loss", "base validation loss"]
    assert all(r["part"].startswith("answers") for r in parts[3:])
    stages = [r for r in trained["records"] if r["type"] in ("stage", "eval_progress")]
    first = stages.index(parts[0])
    assert stages[first - 1]["stage"] == "evaluating"  # reported inside the evaluating stage
    ev = json.loads((trained["out"] / "eval.json").read_text())
    assert len(ev["samples"]) == 2 and all(s["base"] is not None and s["adapter"] is not None for s in ev["samples"])


def test_batched_generation_gives_the_one_at_a_time_answers(trained):
    """Left-padded batched greedy decoding answers as each prompt alone does,
    for the adapter and for the base (the same weights, adapter disabled)."""
    from brightrun_trainer.train import generate, generate_batch

    cfg, tok, model, examples = _tiny_generation(trained, 4)
    assert len({len(e.prompt_messages()[-1]["content"]) for e in examples}) > 1  # prompts of different lengths
    for adapter in (True, False):
        ctx = model.disable_adapter() if not adapter else torch.no_grad()
        with ctx:
            batched = generate_batch(model, tok, examples, 12, cfg.max_seq_length, "cpu")
            alone = [generate(model, tok, e, 12, cfg.max_seq_length, "cpu") for e in examples]
        assert batched == alone
        assert any(batched)


def test_one_decoding_loop_gives_the_separate_adapter_and_base_answers(trained):
    """generate_pairs (adapter and base rows in one PEFT mixed batch) answers
    exactly as two loops do: one with the adapter, one with it disabled."""
    from brightrun_trainer.train import generate_batch, generate_pairs

    cfg, tok, model, examples = _tiny_generation(trained)
    steps = []
    adapter, base = generate_pairs(model, tok, examples, 24, cfg.max_seq_length, "cpu", on_token=steps.append)
    assert adapter == generate_batch(model, tok, examples, 24, cfg.max_seq_length, "cpu")
    with model.disable_adapter():
        assert base == generate_batch(model, tok, examples, 24, cfg.max_seq_length, "cpu")
    assert adapter != base  # the adapter is trained, so its rows differ from the base rows
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] <= 24


def _tiny_generation(trained, n=3):
    from brightrun_trainer.data import load_dataset
    from brightrun_trainer.encoding import ensure_chat_template
    from brightrun_trainer.models import load_tokenizer, resolve_model

    cfg = JobConfig.load(trained["cfg"])
    tok = load_tokenizer(resolve_model(cfg.base_model))
    ensure_chat_template(tok)
    model = trained["res"].model
    model.eval()
    model.config.use_cache = True
    return cfg, tok, model, load_dataset(_data(trained)).examples[:n]


def _hf_generate(model, rows, max_new, eos, pad, names):
    """model.generate on the left-padded batch (the path before the slot decoder), cut after each row's ``eos``."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                             pad_token_id=pad, eos_token_id=eos, use_cache=True, adapter_names=names)
    cut = []
    for row in out[:, width:].tolist():
        cut.append(row[:row.index(eos) + 1] if eos in row else row)
    return cut


def test_slot_decoder_generates_the_left_padded_tokens_and_stops_rows_at_their_end(trained):
    """decoding.greedy_tokens (each prompt prefilled alone, left-padded slot
    cache, grouped GQA heads) gives model.generate's tokens on the left-padded
    mixed batch, token for token, also when rows end at different steps."""
    from brightrun_trainer.decoding import greedy_tokens
    from brightrun_trainer.train import prompt_ids

    cfg, tok, model, examples = _tiny_generation(trained)
    n, new = len(examples), 20
    rows = [prompt_ids(tok, e, new, cfg.max_seq_length) for e in examples] * 2
    assert len({len(r) for r in rows}) > 1  # left padding is exercised
    names = [model.active_adapter] * n + ["__base__"] * n
    pad = tok.pad_token_id
    free = greedy_tokens(model, rows, new, None, pad, "cpu", adapter_names=names)
    assert free == _hf_generate(model, rows, new, -1, pad, names)  # no end token: all 20 tokens
    end = free[0][4]  # a token row 0 emits 5th: it ends there, other rows elsewhere or not at all
    steps = []
    got = greedy_tokens(model, rows, new, end, pad, "cpu", adapter_names=names, on_token=steps.append)
    assert got == _hf_generate(model, rows, new, end, pad, names)
    assert len(got[0]) <= 5 and got[0][-1] == end
    assert len({len(g) for g in got}) > 1  # rows stopped at different steps
    assert steps == list(range(1, max(len(g) for g in got) + 1))


def test_slot_decoder_without_an_adapter_gives_generate_batch_answers(trained, tiny_model):
    """A plain model (no PEFT wrapper): generate_pairs' two answers are both generate_batch's."""
    from brightrun_trainer.models import load_model, resolve_model
    from brightrun_trainer.train import generate_batch, generate_pairs

    cfg, tok, _, examples = _tiny_generation(trained)
    model = load_model(resolve_model(str(tiny_model)), device="cpu")
    model.eval()
    model.config.use_cache = True
    a, b = generate_pairs(model, tok, examples, 16, cfg.max_seq_length, "cpu")
    assert a == b == generate_batch(model, tok, examples, 16, cfg.max_seq_length, "cpu")
    assert model.config._attn_implementation == "sdpa"  # the grouped-heads attention was only for the loop
