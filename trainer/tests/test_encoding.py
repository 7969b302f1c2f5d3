"""Chat rendering, assistant-only masks, truncation and packing."""

import pytest
import torch

from brightrun_trainer.data import Example, load_dataset
from brightrun_trainer.encoding import (FALLBACK_CHAT_TEMPLATE, IGNORE_INDEX, collate_packed, encode_all,
                                        encode_example, encode_messages, ensure_chat_template, pack_rows)
from brightrun_trainer.models import load_tokenizer, resolve_model
from brightrun_trainer.train import forward_loss


@pytest.fixture(scope="module")
def tok(tiny_model):
    t = load_tokenizer(resolve_model(str(tiny_model)))
    assert ensure_chat_template(t) == "model"
    return t


@pytest.fixture(scope="module")
def tok_fallback(tiny_model_no_template):
    t = load_tokenizer(resolve_model(str(tiny_model_no_template)))
    assert ensure_chat_template(t) == "fallback"
    assert t.chat_template == FALLBACK_CHAT_TEMPLATE
    return t


def trained_segments(enc):
    """Contiguous runs of trained token ids."""
    segs, cur = [], []
    for i, l in zip(enc.input_ids, enc.labels):
        if l != IGNORE_INDEX:
            assert l == i
            cur.append(i)
        elif cur:
            segs.append(cur)
            cur = []
    if cur:
        segs.append(cur)
    return segs


def test_mask_is_exactly_the_assistant_tokens(tok, real_data):
    ds = load_dataset(real_data["eq18_json"])
    for ex in ds.examples[:12]:
        enc = encode_messages(tok, ex.messages, ex.train)
        segs = trained_segments(enc)
        assert len(segs) == 1
        # The trained tokens are the target response plus the end-of-turn marker, nothing else.
        assert tok.decode(segs[0]) == ex.messages[-1]["content"] + "<|im_end|>"
        # Everything before is the prompt rendered with the generation header.
        prompt = tok.apply_chat_template(ex.messages[:-1], tokenize=False, add_generation_prompt=True)
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        assert all(l == IGNORE_INDEX for l in enc.labels[:n_prompt])
        assert enc.labels[n_prompt] != IGNORE_INDEX


def test_mask_multi_turn_openai(tok):
    msgs = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "General Kenobi"},
            {"role": "user", "content": "How are you?"}, {"role": "assistant", "content": "Fine, thanks."}]
    enc = encode_messages(tok, msgs, [False, True, False, True])
    assert [tok.decode(s) for s in trained_segments(enc)] == ["General Kenobi<|im_end|>", "Fine, thanks.<|im_end|>"]
    enc = encode_messages(tok, msgs, [False, False, False, True])
    assert [tok.decode(s) for s in trained_segments(enc)] == ["Fine, thanks.<|im_end|>"]


def test_fallback_template_mask(tok_fallback, real_data):
    ex = load_dataset(real_data["eq12_json"]).examples[3]
    enc = encode_messages(tok_fallback, ex.messages, ex.train)
    segs = trained_segments(enc)
    assert len(segs) == 1
    assert tok_fallback.decode(segs[0]) == ex.messages[-1]["content"] + tok_fallback.eos_token
    text = tok_fallback.decode(enc.input_ids)
    assert text.startswith("<s>### System:\n") and "### User:\n" in text and "### Assistant:\n" in text


def test_truncation_drops_oldest_history_then_cuts(tok, real_data):
    ds = load_dataset(real_data["eq12_json"])
    ex = max(ds.examples, key=lambda e: len(e.messages))
    full = encode_example(tok, ex, 100000)
    assert not full.truncated
    limit = full.n_tokens - 50
    enc = encode_example(tok, ex, limit)
    assert enc.n_tokens <= limit and enc.truncated
    assert enc.dropped_messages >= 2
    # The target survives whole when history could be dropped.
    assert tok.decode(trained_segments(enc)[-1]) == ex.messages[-1]["content"] + "<|im_end|>"
    tiny = encode_example(tok, ex, 64)
    assert tiny.n_tokens == 64


def test_encode_all_reports_truncation(tok, real_data):
    ds = load_dataset(real_data["eq12_jsonl"])
    encs, kept, stats = encode_all(tok, ds.examples, 96)
    js = stats.to_json(per_example=True)
    assert js["examples"] == 44
    assert js["truncated_examples"] > 0
    assert js["kept_examples"] + js["dropped_examples"] == 44
    assert js["assistant_tokens_cut"] == js["assistant_tokens_before_truncation"] - js["assistant_tokens"]
    assert sum(js["tokens_per_example"]) == js["tokens"]
    assert all(e.n_tokens <= 96 and e.n_assistant > 0 for e in encs)


def test_pack_rows():
    rows = pack_rows([5, 3, 8, 2, 7], 10)
    assert sorted(i for r in rows for i in r) == [0, 1, 2, 3, 4]
    lens = [5, 3, 8, 2, 7]
    assert all(sum(lens[i] for i in r) <= 10 for r in rows)
    assert len(rows) == 3


def test_packed_loss_equals_per_example_loss(tiny_model, tok, real_data):
    from transformers import AutoModelForCausalLM

    from brightrun_trainer.encoding import pack_rows
    from brightrun_trainer.train import token_loss_sum

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    ds = load_dataset(real_data["eq18_json"])
    encs, _, _ = encode_all(tok, ds.examples[:5], 300)
    capacity = 1000
    batch = collate_packed(encs, capacity, tok.pad_token_id)
    assert batch["input_ids"].shape[0] < len(encs)  # several examples share a row
    rows = pack_rows([e.n_tokens for e in encs], capacity)
    with torch.no_grad():
        packed, n = forward_loss(model, batch)
        packed_logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        leaky_logits = model(input_ids=batch["input_ids"], use_cache=False).logits  # one causal sequence per row
        separate, m = 0.0, 0
        worst_packed = worst_leaky = 0.0
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                e = encs[i]
                single = collate_packed([e], capacity, tok.pad_token_id)
                l, k = forward_loss(model, single)
                separate += float(l)
                m += k
                ref = model(input_ids=single["input_ids"]).logits[0]
                worst_packed = max(worst_packed, (packed_logits[r, at:at + e.n_tokens] - ref).abs().max().item())
                worst_leaky = max(worst_leaky, (leaky_logits[r, at:at + e.n_tokens] - ref).abs().max().item())
                at += e.n_tokens
    assert n == m == sum(e.n_assistant for e in encs)
    assert abs(float(packed) - separate) / separate < 1e-5
    assert worst_packed < 1e-4
    # Control: without per-example position ids the rows leak attention across examples.
    assert worst_leaky > 100 * max(worst_packed, 1e-6)


@pytest.mark.parametrize("rows,autocast,bf16_weights", [
    ("packed", False, False), ("single", False, False), ("packed", True, False), ("single", True, False),
    ("single", True, True), ("packed", True, True)])
def test_every_compute_path_matches_full_logits(tiny_model, tok, real_data, rows, autocast, bf16_weights):
    """Every layout/precision the trainer may pick gives the loss and LoRA
    gradients of the reference: full-length logits, one example at a time, fp32."""
    from transformers import AutoModelForCausalLM

    from brightrun_trainer.config import JobConfig
    from brightrun_trainer.models import cpu_bf16_supported
    from brightrun_trainer.train import ComputePath, token_loss_sum, train_micro_batch, wrap_lora

    if autocast and not cpu_bf16_supported():
        pytest.skip("this CPU has no bf16 units (AMX / AVX-512 BF16): the trainer never picks bf16 autocast here")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32, attn_implementation="sdpa")
    model = wrap_lora(model, JobConfig(lora_rank=8, lora_dropout=0.0, device="cpu"))
    for n, p in model.named_parameters():
        if "lora_B" in n:  # non-zero B so that every LoRA weight gets a gradient
            torch.nn.init.normal_(p, std=0.02)
    ds = load_dataset(real_data["eq18_json"])
    encs, _, _ = encode_all(tok, ds.examples[:5], 300)
    n_loss = sum(e.n_assistant for e in encs)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    ref_loss = 0.0
    for e in encs:
        single = collate_packed([e], 1000, tok.pad_token_id)
        loss, _ = token_loss_sum(model(input_ids=single["input_ids"], use_cache=False).logits, single["labels"])
        (loss / n_loss).backward()
        ref_loss += float(loss.detach())
    ref_grad = {n: p.grad.clone() for n, p in params.items()}
    model.zero_grad(set_to_none=True)

    if bf16_weights:  # the frozen weights in bf16, the LoRA weights (and so their gradients) stay fp32
        for n, p in model.named_parameters():
            if not p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
        assert all(p.dtype == torch.float32 for p in params.values())
    got = train_micro_batch(model, ComputePath(rows, autocast, bf16_weights), encs, n_loss, 1000,
                            tok.pad_token_id, "cpu")
    tol = 2e-2 if autocast else 1e-5  # bf16 matmuls keep 8 bits of mantissa
    assert abs(got - ref_loss) / ref_loss < tol
    worst = max((params[n].grad - g).norm().item() / max(g.norm().item(), 1e-12) for n, g in ref_grad.items())
    assert worst < (5e-2 if autocast else 1e-4)


@pytest.mark.parametrize("rows", ["packed", "single"])
def test_token_accuracy_equals_a_direct_computation(tiny_model, tok, real_data, rows):
    """The trainer's token accuracy (argmax == label over the assistant tokens,
    from the kept logits of the loss's own forward) equals one computed
    directly from full-length logits, in training (train_micro_batch) and in
    evaluation (evaluate). Half of the targets are set to the model's own
    argmax first, so that the accuracy is far from 0 and a wrong count shows."""
    from dataclasses import replace

    from transformers import AutoModelForCausalLM

    from brightrun_trainer.train import ComputePath, TokenCounts, evaluate, train_micro_batch

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32, attn_implementation="sdpa")
    ds = load_dataset(real_data["eq18_json"])
    encs, _, _ = encode_all(tok, ds.examples[:4], 300)
    correct = total = 0
    rigged = []
    with torch.no_grad():
        for e in encs:
            logits = model(input_ids=torch.tensor([e.input_ids]), use_cache=False).logits[0]
            pred = logits.argmax(-1).tolist()  # pred[p] is the prediction for token p + 1
            labels = list(e.labels)
            k = 0
            for p in range(len(labels) - 1):
                if labels[p + 1] == IGNORE_INDEX:
                    continue
                if k % 2 == 0:  # a label is only a target: the inputs (and so the logits) stay the same
                    labels[p + 1] = pred[p]
                k += 1
                total += 1
                correct += int(pred[p] == labels[p + 1])
            rigged.append(replace(e, labels=labels))
    direct = correct / total
    assert 0.5 <= direct < 1.0

    path = ComputePath(rows, False)
    loss, acc = evaluate(model, rigged, 2, 1000, tok.pad_token_id, "cpu", path)
    assert loss is not None and 0.0 <= acc <= 1.0
    assert acc == pytest.approx(direct, abs=1e-9)

    counts = TokenCounts()
    model.train()
    train_micro_batch(model, path, rigged, total, 1000, tok.pad_token_id, "cpu", counts)
    assert counts.total == total and counts.accuracy == pytest.approx(direct, abs=1e-9)
