"""A decode step for Llama-shaped models in far fewer operators (CPU serving with int8 weights).

Why: with int8 decode weights (``int8.py``) the int8 products are under half of a
decode step of SmolLM2-135M on a CPU core; the rest was per-operator overhead
of ~1,800 small operators per token under transformers' and PEFT's modules:
one product per projection, the LoRA pairs in fp32 with casts around them,
the KV cache's ``cat``, norms, rotary. This module computes the same step
directly on the same loaded weights:

- q/k/v of a layer are ONE int8 product (their int8 rows are concatenated once
  at load; the per-projection ``w_int8`` buffers become views of it, so no
  memory is added) and so are gate/up; the per-channel scales make the fused
  product equal to the separate ones;
- the active adapter's LoRA matrices of a fused group become one ``A`` (the
  A's stacked) and one block-diagonal ``B`` (the B's, scaling folded in): two
  small products per group instead of two per projection plus casts; on bf16
  models they are per-row int8 copies for the same int8 kernel (half the
  LoRA time of fp32; small bf16 products are slower still on CPU), on fp32
  models fp32 as PEFT computes them; built once per adapter and cached until
  it is unloaded (PEFT still wraps every projection: adapters load normally,
  and prefill and every unsupported case run through PEFT);
- a preallocated KV cache per request (no ``cat``), rotary tables computed once
  per request, one ``scaled_dot_product_attention`` per layer.

It covers decode steps (one new token) only; the prompt's prefill runs through
the model as before (exact weights) and its KV cache is copied in once. The
base answer is the same weights with no LoRA added. Supported: the
``llama`` architecture (SmolLM2, Llama) with vanilla LoRA on its linear
projections; anything else (other architectures, DoRA, LoRA bias,
``modules_to_save``, adapters on embeddings or the LM head, int8 turned off)
makes :meth:`FastDecoder.adapter_ok` false and the engine uses the modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..mixedsteps import llama_problem, lora_config_problem
from . import int8
from .int8 import DecodeInt8Linear

ATTN = ("q_proj", "k_proj", "v_proj")
MLP = ("gate_proj", "up_proj")
PROJECTIONS = ATTN + ("o_proj",) + MLP + ("down_proj",)


def _int8mm(x, w, s):
    return torch.ops.aten._weight_int8pack_mm(x, w, s)


class _Group:
    """Projections that read the same input and become one int8 product (q/k/v, gate/up, or one)."""

    def __init__(self, parent, names: tuple[str, ...]):
        self.parent, self.names = parent, names
        mods = [getattr(parent, n) for n in names]
        base = [_base(m) for m in mods]
        if not all(isinstance(b, DecodeInt8Linear) and b.bias is None for b in base):
            raise _Unsupported("projections are not int8 decode layers without bias")
        self.sizes = [b.out_features for b in base]
        if len(base) == 1:
            self.w, self.s = base[0].w_int8, base[0].w_scale
        else:
            self.w = torch.cat([b.w_int8 for b in base]).contiguous()
            self.s = torch.cat([b.w_scale for b in base]).contiguous()
            off = 0
            for b, n in zip(base, self.sizes):   # the separate layers read views of the fused copy
                b.w_int8 = self.w[off:off + n]
                b.w_scale = self.s[off:off + n]
                off += n
        self.base = base

    def lora(self, adapter: str, int8_dtype=None):
        """The adapter's LoRA on this group: A (the A's stacked) and B (block-diagonal, scaling folded
        in), or None when the adapter does not touch it. fp32 (as PEFT computes it), or with
        ``int8_dtype`` per-row int8 copies with scales in that dtype for the int8 kernel (the rank
        padded with zeros to the kernel's input multiple)."""
        parts = []
        for name, n_out in zip(self.names, self.sizes):
            m = getattr(self.parent, name)
            if adapter in getattr(m, "lora_A", {}):
                a = m.lora_A[adapter].weight.detach()
                b = m.lora_B[adapter].weight.detach() * m.scaling[adapter]
                parts.append((a, b))
            else:
                parts.append((None, n_out))
        if all(a is None for a, _ in parts):
            return None
        r_total = sum(a.shape[0] for a, _ in parts if a is not None)
        if int8_dtype is not None:
            r_total = -(-r_total // int8.K_MULTIPLE) * int8.K_MULTIPLE
        k = self.base[0].in_features
        dtype = torch.float32
        A = torch.zeros(r_total, k, dtype=dtype)
        B = torch.zeros(sum(self.sizes), r_total, dtype=dtype)
        r0 = o0 = 0
        for (a, b), n_out in zip(parts, self.sizes):
            if a is not None:
                r = a.shape[0]
                A[r0:r0 + r] = a.to(dtype)
                B[o0:o0 + n_out, r0:r0 + r] = b.to(dtype)
                r0 += r
            o0 += n_out
        if int8_dtype is not None:
            return _Int8LoRA(*int8.quantize_rows(A, int8_dtype), *int8.quantize_rows(B, int8_dtype))
        return A.contiguous(), B.contiguous()


class _Unsupported(Exception):
    pass


class _Int8LoRA(tuple):
    """(A int8, A scales, B int8, B scales) of a group's LoRA for the int8 kernel."""

    def __new__(cls, a, sa, b, sb):
        return super().__new__(cls, (a, sa, b, sb))


def _base(m):
    return m.get_base_layer() if hasattr(m, "get_base_layer") else m


class DecodeState:
    """One request's preallocated KV cache and rotary tables."""

    def __init__(self, keys, values, cos, sin, pos: int):
        self.keys, self.values = keys, values   # per layer: [1, kv_heads, capacity, head_dim]
        self.cos, self.sin = cos, sin           # [capacity, head_dim]
        self.pos = pos                          # the next position to write

    @property
    def capacity(self) -> int:
        return self.cos.shape[0]


class FastDecoder:
    """Decode steps of one loaded Llama-shaped model with int8 decode weights."""

    def __init__(self, model, lora_int8: bool = True):
        cfg = model.config
        problem = llama_problem(cfg)
        if problem:
            raise _Unsupported(problem)
        inner = model.model
        self.model = model
        self.embed = inner.embed_tokens.weight
        self.dtype = self.embed.dtype
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim ** -0.5
        self.rotary = inner.rotary_emb
        self.layers = []
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "ln1": layer.input_layernorm, "ln2": layer.post_attention_layernorm,
                "qkv": _Group(att, ATTN), "o": _Group(att, ("o_proj",)),
                "gu": _Group(mlp, MLP), "down": _Group(mlp, ("down_proj",)),
            })
        self.norm = inner.norm
        head = _base(model.lm_head)
        if not isinstance(head, DecodeInt8Linear) or head.bias is not None:
            raise _Unsupported("LM head is not an int8 decode layer")
        self.head = head
        self.eps = float(self.norm.variance_epsilon)
        self.intermediate = self.layers[0]["gu"].sizes[0]
        self._lora: dict[str, list] = {}
        # LoRA products on the int8 kernel too (bf16 models: half the step's LoRA time; their
        # rounding adds ~1 % to the low-rank update, far less than the base weights' int8 rounding),
        # in fp32 otherwise (the kernel's fp32 path is slow; exactly what PEFT computes)
        self.lora_int8 = lora_int8 and self.dtype == torch.bfloat16

    @classmethod
    def build(cls, model) -> "FastDecoder | None":
        """The fast decoder for ``model`` (after ``int8.quantize_for_decode``), or None when the
        model is not supported (its decode steps then run through its modules)."""
        try:
            return cls(model)
        except (_Unsupported, AttributeError) as e:
            import logging

            logging.getLogger("brightrun.inference").info("fast decode steps off: %s", e)
            return None

    # -- adapters -----------------------------------------------------------------------

    def enabled(self) -> bool:
        return self.head.enabled   # int8.set_enabled turns every layer (and so this path) off

    def adapter_ok(self, peft_model, name: str | None) -> bool:
        """Whether this path computes the adapter exactly as PEFT would (vanilla LoRA on the
        projections it fuses, nothing else)."""
        if name is None:
            return True
        if name in self._lora:
            return True
        if lora_config_problem(peft_model, name):
            return False
        handled = set()
        for layer in self.layers:
            for key in ("qkv", "o", "gu", "down"):
                g = layer[key]
                handled.update(id(getattr(g.parent, n)) for n in g.names)
        for m in self.model.modules():
            touched = name in getattr(m, "lora_A", {}) or name in getattr(m, "lora_embedding_A", {})
            if not touched:
                continue
            if id(m) not in handled:
                return False
            if name in getattr(m, "lora_variant", {}) or getattr(m, "lora_bias", {}).get(name):
                return False
        return True

    def forget(self, name: str) -> None:
        """Drop the cached LoRA matrices of an adapter (it was unloaded or reloaded)."""
        self._lora.pop(name, None)

    def _lora_for(self, name: str | None) -> list | None:
        if name is None:
            return None
        got = self._lora.get(name)
        if got is None:
            dt = self.dtype if self.lora_int8 else None
            got = [{k: layer[k].lora(name, dt) for k in ("qkv", "o", "gu", "down")}
                   for layer in self.layers]
            self._lora[name] = got
        return got

    # -- requests -----------------------------------------------------------------------

    def start(self, cache, prompt_len: int, capacity: int) -> DecodeState:
        """A request's state after its prefill: the prefill's KV cache (a transformers
        ``DynamicCache``) copied into preallocated tensors of ``capacity`` positions."""
        keys, values = [], []
        for i in range(len(self.layers)):
            k, v = _cache_layer(cache, i)
            kc = torch.empty(1, self.n_kv, capacity, self.head_dim, dtype=k.dtype)
            vc = torch.empty_like(kc)
            kc[:, :, :prompt_len] = k
            vc[:, :, :prompt_len] = v
            keys.append(kc)
            values.append(vc)
        pos = torch.arange(capacity).unsqueeze(0)
        cos, sin = self.rotary(keys[0], pos)
        return DecodeState(keys, values, cos[0].contiguous(), sin[0].contiguous(), prompt_len)

    def step(self, token: int, state: DecodeState, adapter: str | None):
        """Logits (fp32, [1, vocab]) of the next position after ``token``; advances ``state``."""
        p = state.pos
        if p >= state.capacity:
            raise ValueError(f"decode state is full ({state.capacity} positions)")
        lora = self._lora_for(adapter)
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        nq, nk = nh * hd, nkv * hd
        half = hd // 2
        cos, sin = state.cos[p], state.sin[p]
        h = self.embed[token].unsqueeze(0)   # [1, hidden]
        for i, layer in enumerate(self.layers):
            lw = lora[i] if lora is not None else None
            x = self._rms(h, layer["ln1"])
            qkv = _proj(x, layer["qkv"], lw and lw["qkv"])
            qk = qkv[:, :nq + nk].view(nh + nkv, hd)
            rot = torch.cat((-qk[:, half:], qk[:, :half]), dim=-1)
            qk = qk * cos + rot * sin
            q = qk[:nh].view(1, nh, 1, hd)
            kc, vc = state.keys[i], state.values[i]
            kc[0, :, p] = qk[nh:]
            vc[0, :, p] = qkv[0, nq + nk:].view(nkv, hd)
            a = F.scaled_dot_product_attention(q, kc[:, :, :p + 1], vc[:, :, :p + 1], scale=self.scale,
                                               enable_gqa=nh != nkv)
            h = h + _proj(a.view(1, nq), layer["o"], lw and lw["o"])
            x = self._rms(h, layer["ln2"])
            gu = _proj(x, layer["gu"], lw and lw["gu"])
            m = F.silu(gu[:, :self.intermediate]) * gu[:, self.intermediate:]
            h = h + _proj(m, layer["down"], lw and lw["down"])
        h = self._rms(h, self.norm)
        state.pos = p + 1
        return _int8mm(h, self.head.w_int8, self.head.w_scale).float()

    def _rms(self, h, norm):
        # LlamaRMSNorm: in fp32, then back to the model's dtype, times the weight
        return norm.weight * F.rms_norm(h.float(), (h.shape[-1],), eps=norm.variance_epsilon).to(h.dtype)


def _proj(x, group: _Group, lora):
    y = _int8mm(x, group.w, group.s)
    if isinstance(lora, _Int8LoRA):
        a, sa, b, sb = lora
        y.add_(_int8mm(_int8mm(x, a, sa), b, sb))
    elif lora is not None:
        # in fp32, as PEFT computes it: small bf16 products are several times slower on CPU
        # (oneDNN's per-call cost), and y += (fp32) rounds once, like PEFT's result.to(dtype)
        a, b = lora
        y.add_(F.linear(F.linear(x.float(), a), b))
    return y


def _cache_layer(cache, i: int):
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return layers[i].keys, layers[i].values
    return cache[i]
