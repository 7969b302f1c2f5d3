"""mixedsteps.MixedDecoder: the evaluation's decode steps in fewer operators, bit-identical to the modules'."""

from __future__ import annotations

import pytest
import torch

from brightrun_trainer import decoding
from brightrun_trainer.mixedsteps import MixedDecoder


def _peft(tiny_model, dtype, **lora):
    from peft import LoraConfig, get_peft_model

    from brightrun_trainer.models import load_model, resolve_model

    base = load_model(resolve_model(str(tiny_model)), device="cpu", dtype=dtype)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=lora.pop("target_modules", "all-linear"),
                                            lora_dropout=0.0, **lora))
    gen = torch.Generator().manual_seed(7)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter: B is zero at init, so the answers would be the base's
            p.data = (torch.randn(p.shape, generator=gen) * 0.5).to(p.dtype)
    model.eval()
    model.config.use_cache = True
    return model


PROMPTS = [[5, 17, 29, 41, 53, 65, 77] * 3, [9, 8, 7, 6, 5], [100, 200, 300, 400] * 6]


def _decode(model, names, monkeypatch, mixed: bool, max_new=16):
    """greedy_tokens' tokens and the logits of every decode step, through MixedDecoder or the modules."""
    seen = []
    if mixed:
        step = MixedDecoder.step

        def spy(self, *args):
            out = step(self, *args)
            seen.append(out.clone())
            return out

        monkeypatch.setattr(MixedDecoder, "step", spy)
        monkeypatch.delenv("BRIGHTRUN_MIXED_STEPS", raising=False)
    else:
        monkeypatch.setenv("BRIGHTRUN_MIXED_STEPS", "0")
        hook = model.register_forward_hook(
            lambda m, a, kw, out: seen.append(out.logits[:, -1, :].float().clone())
            if kw.get("input_ids") is not None and kw["input_ids"].shape[1] == 1 else None, with_kwargs=True)
    rows = PROMPTS * (len(names) // len(PROMPTS))
    try:
        tokens = decoding.greedy_tokens(model, rows, max_new, None, 0, "cpu", adapter_names=names)
    finally:
        monkeypatch.undo()
        if not mixed:
            hook.remove()
    return tokens, seen


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_every_decode_step_has_the_modules_logits_bit_for_bit(tiny_model, monkeypatch, dtype):
    """Adapter rows and base rows of left-padded prompts of different lengths: each of the 15
    decode steps gives exactly the modules' logits, so the answers are the same tokens."""
    model = _peft(tiny_model, dtype)
    names = [model.active_adapter] * 3 + ["__base__"] * 3
    fused_tokens, fused_logits = _decode(model, names, monkeypatch, mixed=True)
    module_tokens, module_logits = _decode(model, names, monkeypatch, mixed=False)
    assert len(fused_logits) == len(module_logits) == 15  # every step went through MixedDecoder
    assert all(torch.equal(a, b) for a, b in zip(fused_logits, module_logits))
    assert fused_tokens == module_tokens
    assert fused_tokens[:3] != fused_tokens[3:]  # the adapter rows are not the base rows


def test_adapter_rows_anywhere_in_the_batch(tiny_model, monkeypatch):
    """Adapter and base rows interleaved (an index, not a slice, selects the adapter's rows)."""
    model = _peft(tiny_model, torch.bfloat16)
    names = [model.active_adapter, "__base__"] * 3
    fused_tokens, fused_logits = _decode(model, names, monkeypatch, mixed=True)
    module_tokens, module_logits = _decode(model, names, monkeypatch, mixed=False)
    assert len(fused_logits) == 15 and all(torch.equal(a, b) for a, b in zip(fused_logits, module_logits))
    assert fused_tokens == module_tokens


def test_lora_on_some_projections_only(tiny_model, monkeypatch):
    """An adapter on q and v only: k, o and the MLP are base products, q/v get their LoRA."""
    model = _peft(tiny_model, torch.bfloat16, target_modules=["q_proj", "v_proj"])
    names = [model.active_adapter] * 3 + ["__base__"] * 3
    fused_tokens, fused_logits = _decode(model, names, monkeypatch, mixed=True)
    module_tokens, module_logits = _decode(model, names, monkeypatch, mixed=False)
    assert len(fused_logits) == 15 and all(torch.equal(a, b) for a, b in zip(fused_logits, module_logits))
    assert fused_tokens == module_tokens


def test_a_first_step_that_differs_hands_decoding_back_to_the_modules(tiny_model, monkeypatch):
    """The first decode step is computed both ways; logits that differ in any bit keep the
    modules for the whole loop, and the answers are theirs."""
    model = _peft(tiny_model, torch.bfloat16)
    names = [model.active_adapter] * 3 + ["__base__"] * 3
    module_tokens, _ = _decode(model, names, monkeypatch, mixed=False)
    calls = []
    step = MixedDecoder.step

    def off_by_a_bit(self, *args):
        calls.append(1)
        out = step(self, *args)
        return out + torch.finfo(out.dtype).eps * out.abs().clamp(min=1.0)

    monkeypatch.setattr(MixedDecoder, "step", off_by_a_bit)
    tokens = decoding.greedy_tokens(model, PROMPTS * 2, 16, None, 0, "cpu", adapter_names=names)
    assert len(calls) == 1
    assert tokens == module_tokens


def test_what_the_steps_do_not_cover_is_left_to_the_modules(tiny_model):
    """DoRA, LoRA on the LM head and a GPU device: no MixedDecoder (the modules decode)."""
    dora = _peft(tiny_model, torch.bfloat16, use_dora=True)
    assert MixedDecoder.build(dora, dora.active_adapter, 2) is None
    head = _peft(tiny_model, torch.bfloat16, target_modules=["q_proj", "lm_head"])
    assert MixedDecoder.build(head, head.active_adapter, 2) is None
    plain = _peft(tiny_model, torch.bfloat16)
    assert MixedDecoder.build(plain, plain.active_adapter, 2) is not None
    assert decoding._mixed_decoder(plain, [plain.active_adapter, "__base__"], 2, "cuda") is None
    assert decoding._mixed_decoder(plain, None, 2, "cpu") is None  # a PEFT model without per-row names
