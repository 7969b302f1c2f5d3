"""Weight-only int8 for the decode steps of CPU serving.

Why: one decode step of a small model on a CPU core is bound by reading the
weights, not by arithmetic (SmolLM2-135M: 270 MB of bf16 weights per token,
~85 ms on one core of the development machine, i.e. ~3 GB/s), and PyTorch's
bf16 matrix-vector product on CPU is no faster than fp32. PyTorch's own
``aten._weight_int8pack_mm`` kernel (per-output-channel int8 weights, bf16/fp32
activations; the kernel gpt-fast and torchao use on CPU) reads a quarter of
fp32's bytes; in the development machine's measurements it multiplies a
1 × 576 vector by SmolLM2's weights 3–4.5× faster than bf16 (bench/inference).

What: each frozen ``nn.Linear`` of the base model (and the LM head) becomes a
:class:`DecodeInt8Linear`: it keeps its original weight *and* an int8 copy
with one scale per output channel. Inputs of at most ``ROWS_MAX`` rows (decode
steps, the LM head on the last position) use the int8 copy; longer ones (the
prompt's prefill, where the int8 kernel is slower than bf16's matrix units)
use the original weight, so prompt processing is exact. LoRA matrices are not
touched: PEFT wraps a :class:`DecodeInt8Linear` like any ``nn.Linear`` and adds
its low-rank update in full precision, and "adapter disabled" still means the
same weights without the update. The cost is memory (one more byte per
weight: 135 MB for SmolLM2-135M) and a per-channel rounding of the weights
used while decoding (relative error ≈ 0.8% per product; bench/inference
reports how often greedy decoding still picks the same tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Imported lazily (by Engine._load), so importing the agent does not import torch.

ROWS_MAX = 4   # inputs with more rows than this (prefill) use the exact weight
K_MULTIPLE = 16   # the kernel returns NaN or crashes for other input widths (measured, PyTorch 2.11 CPU)


def kernel_available() -> bool:
    return hasattr(torch.ops.aten, "_weight_int8pack_mm")


class DecodeInt8Linear(nn.Linear):
    """An ``nn.Linear`` (so PEFT wraps it) that decodes with an int8 copy of its weight."""

    @classmethod
    def wrap(cls, lin: nn.Linear) -> "DecodeInt8Linear":
        m = cls.__new__(cls)
        nn.Module.__init__(m)
        m.in_features, m.out_features = lin.in_features, lin.out_features
        m.weight, m.bias = lin.weight, lin.bias   # shared, not copied (tied embeddings stay tied)
        m.enabled = True
        q, scale = quantize_rows(lin.weight, lin.weight.dtype)
        m.register_buffer("w_int8", q, persistent=False)
        m.register_buffer("w_scale", scale, persistent=False)
        return m

    def forward(self, x):
        k = x.shape[-1]
        rows = x.numel() // k if k else 0
        if not self.enabled or rows == 0 or rows > ROWS_MAX or x.dtype != self.w_scale.dtype or x.is_cuda:
            return F.linear(x, self.weight, self.bias)
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(rows, k).contiguous(), self.w_int8, self.w_scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def supported(in_features: int) -> bool:
    """Whether ``_weight_int8pack_mm`` computes products of this input width (others stay exact)."""
    return in_features > 0 and in_features % K_MULTIPLE == 0


def quantize_rows(w: torch.Tensor, scale_dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (output channel) symmetric int8 of a 2-D weight: (int8 [N, K], scales [N])."""
    w = w.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
    q = torch.round(w / scale[:, None]).clamp_(-128, 127).to(torch.int8).contiguous()
    return q, scale.to(scale_dtype)


def quantize_for_decode(model) -> int:
    """Replace every plain ``nn.Linear`` of ``model`` (before PEFT wraps it) whose input width the
    kernel supports with a :class:`DecodeInt8Linear`; returns how many were replaced."""
    n = 0
    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if type(child) is nn.Linear and supported(child.in_features):
                setattr(mod, name, DecodeInt8Linear.wrap(child))
                n += 1
    return n


def set_enabled(model, on: bool) -> None:
    """Turn the int8 decode path on or off for every wrapped layer (the bench compares both on
    the same loaded weights)."""
    for m in model.modules():
        if isinstance(m, DecodeInt8Linear):
            m.enabled = on
