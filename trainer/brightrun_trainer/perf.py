"""Throughput accounting: model FLOPs, MFU against the device's peak, NVML stats."""

from __future__ import annotations

import os

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched on the CUDA
# device name (first match wins). Override with BRIGHTRUN_PEAK_TFLOPS.
BF16_PEAKS = [
    ("H100 PCIe", "NVIDIA H100 PCIe bf16 dense", 756.0),
    ("H100 NVL", "NVIDIA H100 NVL bf16 dense", 835.0),
    ("H100", "NVIDIA H100 SXM bf16 dense", 989.4),
    ("H200", "NVIDIA H200 bf16 dense", 989.4),
    ("H800", "NVIDIA H800 SXM bf16 dense", 989.4),
    ("GH200", "NVIDIA GH200 bf16 dense", 989.4),
    ("B200", "NVIDIA B200 bf16 dense", 2250.0),
    ("A100", "NVIDIA A100 bf16 dense", 312.0),
    ("A800", "NVIDIA A800 bf16 dense", 312.0),
    ("L40S", "NVIDIA L40S bf16 dense", 362.05),
    ("L40", "NVIDIA L40 bf16 dense", 181.0),
    ("L4", "NVIDIA L4 bf16 dense", 121.0),
    ("A10G", "NVIDIA A10G bf16 dense", 70.0),
    ("A10", "NVIDIA A10 bf16 dense", 125.0),
    ("RTX 4090", "NVIDIA RTX 4090 bf16 dense (fp32 accumulate)", 165.2),
]


def device_peak(device: str) -> tuple[str | None, float | None]:
    """(peak name, peak FLOP/s) for the device; (None, None) when unknown/CPU."""
    env = os.environ.get("BRIGHTRUN_PEAK_TFLOPS")
    if env:
        return ("BRIGHTRUN_PEAK_TFLOPS", float(env) * 1e12)
    if device != "cuda":
        return (None, None)
    import torch

    name = torch.cuda.get_device_name()
    for key, label, tflops in BF16_PEAKS:
        if key in name:
            return (label, tflops * 1e12)
    return (None, None)


def count_matmul_params(model) -> tuple[int, int]:
    """(frozen parameters of linear layers incl. the output head, trainable parameters)."""
    import torch

    frozen = 0
    seen = set()
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Linear) and w is not None and not w.requires_grad:
            if id(w) in seen:
                continue
            seen.add(id(w))
            frozen += w.numel()
        elif type(module).__name__.startswith("Linear4bit") and w is not None and id(w) not in seen:
            seen.add(id(w))
            frozen += module.in_features * module.out_features
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return frozen, trainable


def attention_dims(config) -> tuple[int, int]:
    """(layers, query width = heads * head_dim)."""
    cfg = getattr(config, "text_config", None) or config
    layers = getattr(cfg, "num_hidden_layers", 0) or 0
    heads = getattr(cfg, "num_attention_heads", 0) or 0
    head_dim = getattr(cfg, "head_dim", None) or ((getattr(cfg, "hidden_size", 0) or 0) // max(heads, 1))
    return layers, heads * head_dim


class FlopCounter:
    """Model FLOPs of a LoRA training step.

    Per token: 4N (forward + input-gradient of the frozen linear weights N; frozen
    weights need no weight gradient) + 6P (trainable LoRA weights P: forward,
    input gradient and weight gradient). Attention scores and weighted sums add,
    per example of length L: 6 * layers * width * L^2 (forward 2 L^2 width, causal
    half counted; backward twice the forward).
    """

    def __init__(self, model) -> None:
        self.frozen, self.trainable = count_matmul_params(model)
        self.layers, self.width = attention_dims(model.config)

    def per_token_dense(self) -> int:
        return 4 * self.frozen + 6 * self.trainable

    def batch_flops(self, lengths: list[int]) -> float:
        n = sum(lengths)
        attn = 6 * self.layers * self.width * sum(L * L for L in lengths)
        return float(self.per_token_dense() * n + attn)


class GpuStats:
    """Utilization and memory from NVML when present, else torch's counters."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.handle = None
        if device != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            import torch

            idx = torch.cuda.current_device()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible:
                parts = [p.strip() for p in visible.split(",")]
                if parts[idx].isdigit():
                    idx = int(parts[idx])
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(idx)
            self._nvml = pynvml
        except Exception:
            self.handle = None

    def sample(self) -> dict:
        if self.device != "cuda":
            return {}
        import torch

        out = {
            "gpu_memory_allocated_gb": round(torch.cuda.memory_allocated() / 2**30, 3),
            "gpu_memory_peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        }
        if self.handle is not None:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(self.handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(self.handle)
                out["gpu_utilization"] = float(util.gpu)
                out["gpu_memory_used_gb"] = round(mem.used / 2**30, 3)
                out["gpu_memory_total_gb"] = round(mem.total / 2**30, 3)
            except Exception:
                pass
        return out
