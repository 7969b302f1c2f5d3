"""The fused decode steps (brightrun_trainer/inference/fastdecode.py): the same logits as the model's
own modules (PEFT on top of the int8 layers) on the tiny Llama, base and adapters, and the engine
falling back to the modules for what the fused path does not cover."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from brightrun_trainer.inference import int8
from brightrun_trainer.inference.engine import Engine, GenParams, adapter_name

pytestmark = pytest.mark.skipif(not int8.kernel_available(), reason="this PyTorch has no _weight_int8pack_mm")

MESSAGES = [{"role": "user", "content": "How do I fine-tune a language model with LoRA?"}]


def lora_adapter(base: Path, dest: Path, *, seed: int, targets, scale: float = 20.0, **cfg) -> Path:
    """A real PEFT adapter with non-zero weights on ``targets``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(target_modules=targets, init_lora_weights=False,
                                                  task_type="CAUSAL_LM", **cfg))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(scale)
    peft_model.save_pretrained(str(dest))
    return dest


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model) -> dict[str, tuple[str, Path]]:
    d = tmp_path_factory.mktemp("fast-adapters")
    made = {
        # the trainer's default shape: every linear projection, one rank
        "all": lora_adapter(tiny_model, d / "all", seed=1, targets="all-linear", r=8, lora_alpha=16),
        # part of a fused group (q and v, not k; up, not gate) and per-module ranks
        "some": lora_adapter(tiny_model, d / "some", seed=2, targets=["q_proj", "v_proj", "up_proj", "o_proj"],
                             r=4, lora_alpha=8, rank_pattern={"v_proj": 2}),
        # what the fused path does not compute: DoRA, and a LoRA on the LM head
        "dora": lora_adapter(tiny_model, d / "dora", seed=3, targets=["q_proj", "v_proj"], r=4, use_dora=True),
        "head": lora_adapter(tiny_model, d / "head", seed=4, targets=["q_proj", "lm_head"], r=4),
    }
    return {k: (adapter_name(str(p), 1), p) for k, p in made.items()}


def _steps(lb, adapter: str | None, n: int, fast: bool) -> tuple[list[torch.Tensor], list[int]]:
    """Prefill the prompt, then ``n`` greedy decode steps on the fused path or through the modules."""
    from transformers import DynamicCache

    from brightrun_trainer.encoding import render

    ids = lb.tokenizer(render(lb.tokenizer, MESSAGES, True), add_special_tokens=False,
                       return_tensors="pt")["input_ids"]
    cache = DynamicCache()
    logits = lb.forward(adapter, ids, cache)
    toks, out = [int(logits.argmax(-1))], []
    state = lb.start_fast(cache, ids.shape[1], ids.shape[1] + n) if fast else None
    for _ in range(n):
        if fast:
            logits = lb.step(adapter, toks[-1], state)
        else:
            logits = lb.forward(adapter, torch.tensor([[toks[-1]]]), cache)
        out.append(logits)
        toks.append(int(logits.argmax(-1)))
    return out, toks


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_steps_give_the_modules_logits(tiny_model, adapters, dtype):
    engine = Engine(device="cpu", quantize="int8", dtype=dtype)
    lb, _ = engine.base(str(tiny_model))
    assert lb.fast is not None
    lb.fast.lora_int8 = False   # LoRA as PEFT computes it (int8 LoRA: the next test)
    for key in (None, "all", "some"):
        name = None
        if key is not None:
            name = adapters[key][0]
            lb.ensure_adapter(name, adapters[key][1], 8)
        assert lb.fast_ok(name)
        ref, ref_toks = _steps(lb, name, 12, fast=False)
        got, got_toks = _steps(lb, name, 12, fast=True)
        for r, g in zip(ref, got):
            assert g.shape == r.shape and g.dtype == torch.float32
            if dtype == "float32":   # the same products in another order: fp32 rounding only
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
            else:                    # bf16: roundings in another order; the tiny model's logits are ~1
                assert F.cosine_similarity(g.flatten(), r.flatten(), dim=0).item() > 0.999
                assert (g - r).abs().max().item() < 0.05
        if dtype == "float32":
            assert got_toks == ref_toks
    # the adapters really change the answer on the fused path (base ≠ adapter on the same weights)
    base, _ = _steps(lb, None, 3, fast=True)
    withad, _ = _steps(lb, adapters["all"][0], 3, fast=True)
    assert not torch.allclose(base[0], withad[0], atol=1e-3)


def test_int8_lora_is_close_to_the_fp32_lora(tiny_model, adapters):
    """bf16 models take the LoRA products on the int8 kernel too: close to fp32 LoRA, which is
    what PEFT computes (the fp32 test above checks that path is the modules' to 1e-4)."""
    engine = Engine(device="cpu", quantize="int8", dtype="bfloat16")
    lb, _ = engine.base(str(tiny_model))
    assert lb.fast.lora_int8
    name = adapters["all"][0]
    lb.ensure_adapter(name, adapters["all"][1], 8)
    got, _ = _steps(lb, name, 6, fast=True)
    assert any(type(v).__name__ == "_Int8LoRA" for v in lb.fast._lora[name][0].values())
    lb.fast.lora_int8 = False
    lb.fast.forget(name)
    ref, _ = _steps(lb, name, 6, fast=True)
    base, _ = _steps(lb, None, 6, fast=True)
    for g, r, b in zip(got, ref, base):
        delta = (r - b).norm()                      # what the adapter changes ...
        assert delta > 0.1
        assert (g - r).norm() < 0.1 * delta         # ... int8 LoRA gets within 10 % of it


def test_fused_groups_share_the_layers_int8_weights(tiny_model):
    from transformers import AutoModelForCausalLM

    from brightrun_trainer.inference.fastdecode import FastDecoder

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    int8.quantize_for_decode(model)
    att = model.model.layers[0].self_attn
    x = torch.randn(1, 1, model.config.hidden_size)
    before = [getattr(att, n)(x) for n in ("q_proj", "k_proj", "v_proj")]
    dec = FastDecoder.build(model)
    assert dec is not None
    g = dec.layers[0]["qkv"]
    assert g.w.shape[0] == sum(getattr(att, n).out_features for n in ("q_proj", "k_proj", "v_proj"))
    for n in ("q_proj", "k_proj", "v_proj"):   # views of the fused copy: no second int8 copy in memory
        assert getattr(att, n).w_int8.untyped_storage().data_ptr() == g.w.untyped_storage().data_ptr()
    after = [getattr(att, n)(x) for n in ("q_proj", "k_proj", "v_proj")]
    for b, a in zip(before, after):
        assert torch.equal(a, b)


def test_the_engine_answers_the_same_on_the_fused_path(tiny_model, adapters):
    """Whole answers (fp32, greedy): the fused path and the modules give the same text."""
    fast, slow = Engine(device="cpu", quantize="int8", dtype="float32"), Engine(device="cpu", quantize="int8",
                                                                               dtype="float32")
    slow_lb, _ = slow.base(str(tiny_model))
    slow_lb.fast = None
    p = GenParams(max_tokens=16, temperature=0.0)
    for ad in (None, adapters["all"], adapters["some"]):
        a = fast.generate(str(tiny_model), MESSAGES, p, adapter=ad)
        b = slow.generate(str(tiny_model), MESSAGES, p, adapter=ad)
        assert a.text == b.text and a.completion_tokens == b.completion_tokens
    lb, _ = fast.base(str(tiny_model))
    assert set(lb.fast._lora) == {adapters["all"][0], adapters["some"][0]}   # the fused path ran


def test_unsupported_adapters_and_exact_weights_use_the_modules(tiny_model, adapters):
    engine = Engine(device="cpu", quantize="int8", dtype="float32")
    lb, _ = engine.base(str(tiny_model))
    p = GenParams(max_tokens=6, temperature=0.0)
    for key in ("dora", "head"):
        name, path = adapters[key]
        lb.ensure_adapter(name, path, 8)
        assert not lb.fast_ok(name)
        r = engine.generate(str(tiny_model), MESSAGES, p, adapter=adapters[key])
        assert r.completion_tokens > 0 and name not in lb.fast._lora
    assert lb.fast_ok(None)
    with lb.lock:
        int8.set_enabled(lb.model, False)    # exact weights: the fused path (int8 only) is off
    try:
        assert not lb.fast_ok(None)
    finally:
        with lb.lock:
            int8.set_enabled(lb.model, True)
    assert Engine(device="cpu", quantize="none").base(str(tiny_model))[0].fast is None


def test_unloading_an_adapter_drops_its_fused_matrices(tiny_model, adapters):
    engine = Engine(device="cpu", quantize="int8", max_loaded_adapters=1)
    p = GenParams(max_tokens=3, temperature=0.0)
    engine.generate(str(tiny_model), MESSAGES, p, adapter=adapters["all"])
    lb, _ = engine.base(str(tiny_model))
    assert adapters["all"][0] in lb.fast._lora
    engine.generate(str(tiny_model), MESSAGES, p, adapter=adapters["some"])
    assert list(lb.adapters) == [adapters["some"][0]]
    assert set(lb.fast._lora) == {adapters["some"][0]}


def test_a_full_state_is_an_error_not_a_write_past_the_cache(tiny_model):
    engine = Engine(device="cpu", quantize="int8")
    lb, _ = engine.base(str(tiny_model))
    from transformers import DynamicCache

    ids = torch.tensor([[1, 2, 3]])
    cache = DynamicCache()
    lb.forward(None, ids, cache)
    state = lb.start_fast(cache, 3, 4)
    lb.step(None, 5, state)
    with pytest.raises(ValueError, match="full"):
        lb.step(None, 6, state)
