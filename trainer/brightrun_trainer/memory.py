"""Will this job fit in memory? Checked before the model is loaded.

A job that needs more memory than the machine has free is refused with a
clear message (error class ``oom``, not retried) instead of being killed by
the OS half-way through (issue 14: a 22 GB peak on a 24 GB machine).

The model is the estimator's (internal/training/estimate, docs/estimates.md):

    weights      = parameters x (4 bytes fp32 on the CPU, 2 bf16 on a GPU)
    lora         = P x 16 (fp32 weights, gradients and AdamW's two moments)
    activations  = tokens of the largest forward x bytes_per_token
    overhead     = runtime (1 GiB) + 5 % of the above

    bytes_per_token = 1.12 * layers * (19h + 8i [+ 18h + 3i with lora_dropout > 0]) + 17 * vocab

in bf16; x 2.2 for fp32 activations on the CPU, x 1.65 with bf16 autocast on
fp32 weights on the CPU (fp32 residual stream and norms, bf16 matmul inputs),
x CPU_BF16_WEIGHTS_FACTOR with bf16 frozen weights and autocast (the CPU's
default where it has bf16 units; weights then take 2 bytes a parameter): fitted
to the peak RSS of bench/trainer/cpu_fast.py. "The largest forward" depends on the
compute path: one example (the longest) on the single-rows path, the largest
packed micro-batch (rows x widest row) on the packed path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GIB = float(1 << 30)
LAYER_FACTOR, ACT_H, ACT_I, DROP_H, DROP_I, ACT_VOCAB = 1.12, 19.0, 8.0, 18.0, 3.0, 17.0
CPU_FP32_FACTOR = 2.2
CPU_AUTOCAST_FACTOR = 1.65
CPU_BF16_WEIGHTS_FACTOR = 1.2  # fit: 3.64 GiB peak RSS, 966-token longest example, r8, dropout 0.05
RUNTIME_GB = 1.0
FRAGMENTATION = 0.05


@dataclass
class Arch:
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool

    @classmethod
    def from_config(cls, config) -> "Arch":
        c = getattr(config, "text_config", None) or config
        heads = int(getattr(c, "num_attention_heads", 1) or 1)
        return cls(layers=int(c.num_hidden_layers), hidden=int(c.hidden_size),
                   intermediate=int(getattr(c, "intermediate_size", 4 * c.hidden_size)),
                   vocab=int(c.vocab_size), heads=heads,
                   kv_heads=int(getattr(c, "num_key_value_heads", heads) or heads),
                   tied=bool(getattr(c, "tie_word_embeddings", False)))

    def parameters(self) -> int:
        h, i = self.hidden, self.intermediate
        kv = self.kv_heads * (h // self.heads)
        layer = 2 * h * h + 2 * h * kv + 3 * h * i
        return self.layers * layer + self.vocab * h * (1 if self.tied else 2)

    def lora_parameters(self, rank: int) -> int:
        h, i = self.hidden, self.intermediate
        kv = self.kv_heads * (h // self.heads)
        return rank * self.layers * (2 * h + 2 * (h + kv) + 2 * h + 2 * (h + i) + (i + h))

    def bytes_per_token(self, dropout: float, device: str, autocast: bool, bf16_weights: bool = False) -> float:
        h, i = float(self.hidden), float(self.intermediate)
        layer = ACT_H * h + ACT_I * i
        if dropout > 0:
            layer += DROP_H * h + DROP_I * i
        b = LAYER_FACTOR * layer * self.layers + ACT_VOCAB * self.vocab
        if device == "cpu":
            if bf16_weights:
                b *= CPU_BF16_WEIGHTS_FACTOR
            else:
                b *= CPU_AUTOCAST_FACTOR if autocast else CPU_FP32_FACTOR
        return b


@dataclass
class Need:
    weights_gb: float
    lora_gb: float
    activations_gb: float
    overhead_gb: float
    tokens: int

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.lora_gb + self.activations_gb + self.overhead_gb


def estimate(arch: Arch, *, rank: int, dropout: float, device: str, autocast: bool, tokens: int,
             load_in_4bit: bool = False, gradient_checkpointing: bool = False, bf16_weights: bool = False) -> Need:
    wb = (2.0 if bf16_weights else 4.0) if device == "cpu" else (0.6 if load_in_4bit else 2.0)
    per = arch.bytes_per_token(dropout, device, autocast, bf16_weights)
    if gradient_checkpointing:  # each layer's input, plus one layer recomputed (or the logits) at the peak
        layer = per / max(arch.layers, 1)
        per = 2.0 * arch.hidden * arch.layers + max(layer, ACT_VOCAB * arch.vocab)
    weights = arch.parameters() * wb / GIB
    lora = arch.lora_parameters(rank) * 16.0 / GIB
    acts = tokens * per / GIB
    return Need(weights, lora, acts, RUNTIME_GB + FRAGMENTATION * (weights + lora + acts), tokens)


def release_free_heap(device: str, env: dict | None = None) -> bool:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim(0)``) on the CPU.

    On the CPU every tensor comes from malloc. With single rows of a different
    length at every forward, the freed activations of one step fragment the heap
    and glibc keeps them: in the quick-demo job the RSS between steps climbed
    from 1.0 to 3.6 GiB over 10 steps while the live tensors stayed ~1 GiB, and
    the whole job's peak (3.99-4.07 GiB) was that retained heap plus one step's
    activations. Trimming after each forward/backward brings the RSS back to
    the live tensors (the job's first 17 examples: peak 3.69 -> 2.88 GiB;
    trimming only every 4 examples, once per optimizer step: 3.47 GiB, the
    heap fragments within a step; bench/trainer/README.md). The cost
    is re-faulting the released pages in the next forward (up to 1.2x the CPU
    time per example, measured under load). BRIGHTRUN_MALLOC_TRIM=0 turns it
    off. Returns whether a trim ran (False off the CPU or without glibc).
    """
    import ctypes

    env = os.environ if env is None else env
    if device != "cpu" or env.get("BRIGHTRUN_MALLOC_TRIM") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    trim(0)
    return True


def available_gb(device: str) -> float | None:
    """Memory free for this job now: CUDA free memory, or on the CPU the
    smaller of MemAvailable and the cgroup's remaining limit (containers)."""
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free / GIB
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024 / GIB
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            left = (int(limit) - used) / GIB
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError):
        pass
    return avail


def check(need: Need, device: str, *, batch_size: int, max_seq_length: int, single_rows: bool,
          env: dict | None = None) -> None:
    """Raise OOMError when ``need`` exceeds the memory free now.

    BRIGHTRUN_SKIP_MEMORY_CHECK=1 skips the check (an operator who knows better).
    """
    from .errors import OOMError

    env = os.environ if env is None else env
    if env.get("BRIGHTRUN_SKIP_MEMORY_CHECK") == "1":
        return
    free = available_gb(device)
    if free is None or need.total_gb <= free:
        return
    where = "GPU memory free" if device == "cuda" else "RAM available"
    hint = ("a shorter max_seq_length (on the CPU one example is in memory at a time, so batch_size does not "
            "change it)" if single_rows else
            f"a smaller batch_size (with gradient_accumulation_steps to keep the effective batch), a shorter "
            f"max_seq_length or gradient_checkpointing")
    raise OOMError(
        f"not started: this job needs about {need.total_gb:.1f} GB (weights {need.weights_gb:.1f}, activations "
        f"{need.activations_gb:.1f} for its largest forward of {need.tokens} tokens, LoRA and optimizer "
        f"{need.lora_gb:.2f}, runtime {need.overhead_gb:.1f}) but this machine has {free:.1f} GB of {where}; "
        f"use {hint}, or a machine with more memory",
        details={"needed_gb": round(need.total_gb, 2), "available_gb": round(free, 2),
                 "batch_size": batch_size, "max_seq_length": max_seq_length})
