"""LoRA dropout whose random mask is cheap on the CPU (issue 14).

Why: PyTorch's CPU dropout draws every element's Bernoulli sample from its
mt19937 generator one at a time (``bernoulli_``; 23 ms for a 1024 x 576 bf16
input on the 2-core development CPU). PEFT applies LoRA dropout to the input
of every adapted projection (7 per Llama layer), so at ``lora_dropout`` 0.05
the quick-demo model's training ran at about half the tokens/s of dropout 0
(bench/trainer/README.md): most of a step was drawing random numbers.

What: the same dropout (each element kept with probability 1 - p and scaled
by 1 / (1 - p), a fresh mask per call, identity in eval mode), with the mask
drawn from numpy's PCG64 generator 64 bits at a time: four 16-bit uniforms
per draw, an element dropped when its uniform is below round(p * 65536)
(p = 0.05 becomes 3277 / 65536 = 0.050003). About 10x faster per mask.
PCG64 is seeded per call from PyTorch's own generator, so ``set_seed`` makes
runs repeatable and a checkpoint's saved RNG state resumes the same masks.
Other devices (CUDA's dropout is fast) use ``F.dropout``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16


class FastDropout(nn.Module):
    """``nn.Dropout(p)`` with a fast mask on the CPU."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * _LEVELS)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return x * (keep_mask(x.shape, self.threshold).to(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(shape, threshold: int):
    """A bool tensor of ``shape``: True with probability 1 - threshold / 65536 per element."""
    n = math.prod(shape)
    seed = int(torch.randint(0, 2**62, (1,)).item())   # PyTorch's generator decides the mask
    raw = np.random.PCG64(seed).random_raw((n + 3) // 4)
    uniforms = raw.view(np.uint16)[:n]
    return torch.from_numpy(uniforms >= threshold).view(shape)


def use_fast_dropout(model) -> int:
    """Replace the ``nn.Dropout`` modules of every LoRA layer of a PEFT model with
    :class:`FastDropout`; returns how many were replaced."""
    n = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, d in list(drops.items()):
            if type(d) is nn.Dropout and d.p > 0:
                drops[name] = FastDropout(d.p)
                n += 1
    return n
