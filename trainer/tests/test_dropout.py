"""dropout.FastDropout: PEFT's LoRA dropout with a cheap mask on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from brightrun_trainer.dropout import FastDropout, use_fast_dropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drops_about_p_and_scales_the_rest_like_nn_dropout(dtype):
    x = torch.full((1000, 1000), 2.0, dtype=dtype)
    d = FastDropout(0.05).train()
    y = d(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.05) < 0.002, dropped  # 1M samples: 5 standard deviations is 0.0011
    kept = y[y != 0]
    assert torch.equal(kept, torch.full_like(kept, 2.0) * (1.0 / 0.95))
    assert y.dtype == dtype and y.shape == x.shape


def test_a_fresh_mask_per_call_and_the_same_masks_after_the_same_seed():
    d = FastDropout(0.3).train()
    x = torch.ones(64, 64)
    torch.manual_seed(5)
    a, b = d(x), d(x)
    assert not torch.equal(a, b)
    torch.manual_seed(5)
    assert torch.equal(d(x), a) and torch.equal(d(x), b)
    state = torch.get_rng_state()  # what a checkpoint saves and a resume restores
    c = d(x)
    torch.set_rng_state(state)
    assert torch.equal(d(x), c)


def test_identity_in_eval_mode_and_gradients_through_the_mask():
    d = FastDropout(0.5)
    x = torch.randn(8, 16, requires_grad=True)
    assert d.eval()(x) is x
    y = d.train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)  # d y / d x = mask / (1 - p)
    with pytest.raises(ValueError):
        FastDropout(1.0)


def test_wrap_lora_uses_it_for_every_lora_dropout(tiny_model):
    from brightrun_trainer.config import JobConfig
    from brightrun_trainer.models import load_model, resolve_model
    from brightrun_trainer.train import wrap_lora

    def wrapped(p):
        cfg = JobConfig.from_dict({"base_model": str(tiny_model), "lora_rank": 4, "lora_alpha": 8, "lora_dropout": p})
        return wrap_lora(load_model(resolve_model(str(tiny_model)), device="cpu"), cfg)

    m = wrapped(0.1)
    drops = [d for mod in m.modules() if isinstance(getattr(mod, "lora_dropout", None), nn.ModuleDict)
             for d in mod.lora_dropout.values()]
    assert drops and all(isinstance(d, FastDropout) and d.p == 0.1 for d in drops)
    assert use_fast_dropout(m) == 0  # nothing left to replace
    m0 = wrapped(0.0)
    assert not any(isinstance(d, FastDropout) for d in m0.modules())
