"""int8 decode weights for CPU serving (brightrun_trainer/inference/int8.py): exact prefill, close
decode steps, PEFT on top, and the engine's switch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from brightrun_trainer.inference import int8
from brightrun_trainer.inference.engine import Engine, GenParams, adapter_name

pytestmark = pytest.mark.skipif(not int8.kernel_available(), reason="this PyTorch has no _weight_int8pack_mm")

MESSAGES = [{"role": "user", "content": "How do I fine-tune a language model with LoRA?"}]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_rows_use_int8_and_prefill_rows_stay_exact(dtype):
    torch.manual_seed(0)
    lin = nn.Linear(96, 160, bias=True).to(dtype)
    q = int8.DecodeInt8Linear.wrap(lin)
    assert q.weight is lin.weight and q.w_int8.dtype == torch.int8
    long_x = torch.randn(2, 5, 96, dtype=dtype)           # 10 rows: the exact weight
    assert torch.equal(q(long_x), F.linear(long_x, lin.weight, lin.bias))
    x = torch.randn(1, 1, 96, dtype=dtype)                # one decode row: the int8 copy
    exact, got = F.linear(x, lin.weight, lin.bias).float(), q(x).float()
    assert got.shape == exact.shape
    assert not torch.equal(got, exact)                    # it really took the int8 path ...
    rel = ((got - exact).norm() / exact.norm()).item()
    assert rel < 0.02                                     # ... and stayed within per-channel rounding
    q.enabled = False
    assert torch.equal(q(x), F.linear(x, lin.weight, lin.bias))


def test_widths_the_kernel_does_not_compute_stay_exact():
    """The kernel returns NaN (or crashes) for input widths that are not a multiple of 16."""
    model = nn.Sequential(nn.Linear(40, 16), nn.Linear(16, 24), nn.Linear(24, 8))
    assert int8.quantize_for_decode(model) == 1
    assert [type(m) for m in model] == [nn.Linear, int8.DecodeInt8Linear, nn.Linear]
    x = torch.randn(1, 40)
    assert torch.isfinite(model(x)).all()


def test_quantize_keeps_tied_weights_and_peft_wraps_the_layers(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    assert int8.quantize_for_decode(model) == n_linear > 0
    assert not any(type(m) is nn.Linear for m in model.modules())
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight is model.get_input_embeddings().weight
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    wrapped = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(wrapped.base_layer, int8.DecodeInt8Linear)
    assert isinstance(wrapped.lora_A["default"], nn.Linear) and type(wrapped.lora_A["default"]) is nn.Linear


def _step_logits(engine: Engine, model_id: str, adapter) -> torch.Tensor:
    """Logits of the first decode step after a prompt (prefill, one sampled token, one step)."""
    from transformers import DynamicCache

    from brightrun_trainer.encoding import render

    lb, _ = engine.base(model_id)
    if adapter is not None:
        lb.ensure_adapter(adapter[0], adapter[1], 4)
    ids = lb.tokenizer(render(lb.tokenizer, MESSAGES, True), add_special_tokens=False,
                       return_tensors="pt")["input_ids"]
    cache = DynamicCache()
    first = lb.forward(adapter[0] if adapter else None, ids, cache)
    nxt = first.argmax(-1, keepdim=True)
    return first, lb.forward(adapter[0] if adapter else None, nxt, cache)


def test_engine_decodes_with_int8_close_to_exact_weights(tiny_model, tmp_path):
    from test_inference import make_adapter

    ad_dir = make_adapter(tiny_model, tmp_path / "a", seed=3)
    ad = (adapter_name(str(ad_dir), 1), ad_dir)
    exact, quant = Engine(device="cpu", quantize="none"), Engine(device="cpu", quantize="int8")
    assert not exact.decode_int8() and quant.decode_int8()
    for adapter in (None, ad):
        pre_e, step_e = _step_logits(exact, str(tiny_model), adapter)
        pre_q, step_q = _step_logits(quant, str(tiny_model), adapter)
        # The prompt's layers run on the exact weights; its last position's LM head (one row) and the
        # decode step run on the int8 copies: close to the exact logits, not equal to them.
        assert not torch.equal(pre_e, pre_q)
        for e, q in ((pre_e, pre_q), (step_e, step_q)):
            cos = F.cosine_similarity(e.flatten(), q.flatten(), dim=0).item()
            assert cos > 0.995, cos
    # The engine's answers stay deterministic, and base ≠ adapter on the same int8 weights.
    p = GenParams(max_tokens=8, temperature=0.0)
    a1 = quant.generate(str(tiny_model), MESSAGES, p, adapter=ad)
    b1 = quant.generate(str(tiny_model), MESSAGES, p)
    assert quant.generate(str(tiny_model), MESSAGES, p, adapter=ad).text == a1.text
    assert quant.generate(str(tiny_model), MESSAGES, p).text == b1.text and a1.text != b1.text


def test_engine_rejects_an_unknown_quantize_setting():
    from brightrun_trainer.errors import ConfigError

    with pytest.raises(ConfigError, match="quantize"):
        Engine(device="cpu", quantize="int4")
