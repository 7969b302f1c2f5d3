"""Decode steps of the evaluation's mixed batch in far fewer operators (issue 14).

Why: after the slot decoder (``decoding.py``), the final evaluation of the
quick-demo job still spent ~128 decode steps of ~120-166 ms on 6 rows
(3 prompts, each through the adapter and through the base) of SmolLM2-135M
in bf16 on the 2-core CPU. The profile of a step: per-call weight reorders
inside oneDNN's bf16 products (F.linear re-lays out the weight on every call;
about half of each product), ~2,500 small operators under transformers' and
PEFT's modules (PEFT's mixed batch indexes and casts every projection's input),
and the Python around them.

What: the same step computed directly on the same loaded weights, operation
for operation as the modules compute it, so the logits are bit-identical:

- bf16 base weights are laid out once for oneDNN (``mkldnn._reorder_linear_weight``)
  and multiplied with ``mkldnn._linear_pointwise``: the same kernel as F.linear
  without the per-call reorder. q/k/v become one product and gate/up another
  (each output column is the same dot product). fp32 weights keep F.linear
  (MKL), one product per projection;
- LoRA is PEFT's vanilla mixed-batch arithmetic: the adapter rows' input in
  the LoRA weights' dtype, ``B(A(x)) * scaling``, cast to the result's dtype
  and added to those rows;
- norms are the model's own modules; rotary, attention and residuals are the
  same operations in the same order as ``modeling_llama``;
- attention is the modules' own SDPA call on the same slot cache and mask
  (a call per prompt group without the mask was faster, but SDPA's blocks
  then fall elsewhere and the sums differ in the last bit).

Bit-identity is not assumed: ``decoding.greedy_tokens`` runs the first decode
step both ways and keeps this path only when the logits are equal (else the
modules decode as before), and the tests hold whole answers to
``model.generate``. Covered: CPU, the ``llama`` architecture (SmolLM2,
Llama) with vanilla LoRA on its linear projections; anything else makes
:meth:`MixedDecoder.build` return None.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ATTN = ("q_proj", "k_proj", "v_proj")
MLP = ("gate_proj", "up_proj")


class Unsupported(Exception):
    pass


def llama_problem(cfg) -> str | None:
    """Why a model config is not the plain Llama layer these decode steps compute
    (also inference/fastdecode.py's), or None."""
    if getattr(cfg, "model_type", None) != "llama":
        return f"architecture {getattr(cfg, 'model_type', None)!r}"
    if getattr(cfg, "mlp_bias", False) or getattr(cfg, "attention_bias", False):
        return "biases"
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "pretraining_tp", 1) != 1:
        return "activation / tensor-parallel layout"
    return None


def lora_config_problem(peft_model, name: str) -> str | None:
    """Why adapter ``name``'s config is not plain LoRA on projections (these decode steps and
    inference/fastdecode.py's compute nothing else), or None."""
    cfg = getattr(peft_model, "peft_config", {}).get(name)
    if cfg is None or str(getattr(cfg, "peft_type", "")) not in ("LORA", "PeftType.LORA"):
        return "not a LoRA adapter"
    if getattr(cfg, "modules_to_save", None) or getattr(cfg, "trainable_token_indices", None):
        return "modules_to_save / trainable tokens"
    return None


def _base(m):
    return m.get_base_layer() if hasattr(m, "get_base_layer") else m


class _Product:
    """The base product of projections that read the same input (q/k/v, gate/up, or one)."""

    def __init__(self, mods, packed: bool, rows: int):
        bases = [_base(m) for m in mods]
        if any(not isinstance(b, torch.nn.Linear) or b.bias is not None for b in bases):
            raise Unsupported("projections are not linear layers without bias")
        self.sizes = [b.out_features for b in bases]
        if packed:
            w = torch.cat([b.weight.detach() for b in bases]) if len(bases) > 1 else bases[0].weight.detach()
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w, rows)
            self.weights = None
        else:
            self.packed, self.weights = None, [b.weight.detach() for b in bases]

    def __call__(self, x):
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")
        outs = [F.linear(x, w) for w in self.weights]
        return outs[0] if len(outs) == 1 else torch.cat(outs, -1)


def _check_lora(m, adapter: str) -> bool:
    """Whether ``m`` carries ``adapter`` as vanilla LoRA (False: it does not carry it)."""
    if adapter not in getattr(m, "lora_A", {}):
        if adapter in getattr(m, "lora_embedding_A", {}):
            raise Unsupported("LoRA on embeddings")
        return False
    if adapter in getattr(m, "lora_variant", {}) or getattr(m, "lora_bias", {}).get(adapter):
        raise Unsupported("DoRA / LoRA bias")
    if getattr(m, "merged", False):
        raise Unsupported("merged adapter")
    if m.lora_B[adapter].bias is not None or m.lora_A[adapter].bias is not None:
        raise Unsupported("LoRA bias")
    return True


class _Group:
    """Projections read together: one base product and their LoRAs.

    LoRA is PEFT's mixed-batch arithmetic, per projection
    ``y[rows] += (B(A(x[rows].to(lora dtype))) * scaling).to(y.dtype)``, with
    the A's of a group stacked into one product (each output column is the
    same dot product) and, where every projection of the group has LoRA with
    one scaling, the scaling, cast and add done once over the group's width.
    """

    def __init__(self, parent, names, adapter: str | None, packed: bool, rows: int):
        mods = [getattr(parent, n) for n in names]
        self.product = _Product(mods, packed, rows)
        self.a = None
        with_lora = [m for m in mods if adapter is not None and _check_lora(m, adapter)]
        if not with_lora:
            return
        if {m.lora_A[adapter].weight.dtype for m in with_lora} != {m.lora_B[adapter].weight.dtype for m in with_lora} \
                or len({m.lora_A[adapter].weight.dtype for m in with_lora}) != 1:
            raise Unsupported("LoRA weights of mixed dtypes")
        self.a = torch.cat([m.lora_A[adapter].weight.detach() for m in with_lora])
        self.lora_dtype = self.a.dtype
        offsets = [sum(self.product.sizes[:i]) for i in range(len(mods) + 1)]
        self.parts, r0 = [], 0   # (A output columns, B, scaling, output columns) per projection with LoRA
        for i, m in enumerate(mods):
            if m in with_lora:
                r = m.lora_A[adapter].weight.shape[0]
                self.parts.append((slice(r0, r0 + r), m.lora_B[adapter].weight.detach(), m.scaling[adapter],
                                   slice(offsets[i], offsets[i + 1])))
                r0 += r
        self.whole = len(with_lora) == len(mods) and len({p[2] for p in self.parts}) == 1

    def __call__(self, x, rows):
        y = self.product(x)
        if rows is None or self.a is None:
            return y
        xa = F.linear(x[rows].to(self.lora_dtype), self.a)
        outs = [F.linear(xa[..., ra], b) for ra, b, _, _ in self.parts]
        if self.whole:
            out = (outs[0] if len(outs) == 1 else torch.cat(outs, -1)) * self.parts[0][2]
            y[rows] += out.to(y.dtype)
        else:
            for out, (_, _, scaling, cols) in zip(outs, self.parts):
                y[..., cols][rows] += (out * scaling).to(y.dtype)
        return y


class MixedDecoder:
    """Decode steps of a Llama-shaped model (optionally a PEFT model) for a batch whose
    ``adapter_rows`` slice goes through the active adapter and the other rows through the base."""

    def __init__(self, model, adapter: str | None, rows: int):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        cfg = base.config
        problem = llama_problem(cfg)
        if problem:
            raise Unsupported(problem)
        if adapter is not None:
            self._check_adapter(model, adapter)
        inner = base.model
        self.embed = inner.embed_tokens
        self.dtype = self.embed.weight.dtype
        if self.embed.weight.device.type != "cpu" or self.dtype not in (torch.bfloat16, torch.float32):
            raise Unsupported("not a CPU model in bf16 or fp32")
        packed = self.dtype == torch.bfloat16   # fp32 keeps MKL's F.linear (oneDNN's fp32 kernel differs)
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.rotary, self.norm = inner.rotary_emb, inner.norm
        self.layers = []
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "ln1": layer.input_layernorm, "ln2": layer.post_attention_layernorm, "scaling": att.scaling,
                "qkv": _Group(att, ATTN, adapter, packed, rows), "o": _Group(att, ("o_proj",), adapter, packed, rows),
                "gu": _Group(mlp, MLP, adapter, packed, rows), "down": _Group(mlp, ("down_proj",), adapter, packed, rows),
            })
        self.head = _Group(base, ("lm_head",), None, packed, rows)
        self.intermediate = self.layers[0]["gu"].product.sizes[0]

    @staticmethod
    def _check_adapter(model, adapter: str) -> None:
        problem = lora_config_problem(model, adapter)
        if problem:
            raise Unsupported(problem)
        handled = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        for name, m in model.named_modules():
            if (adapter in getattr(m, "lora_A", {}) or adapter in getattr(m, "lora_embedding_A", {})) \
                    and name.rsplit(".", 1)[-1] not in handled:
                raise Unsupported(f"LoRA on {name}")

    @classmethod
    def build(cls, model, adapter: str | None, rows: int) -> "MixedDecoder | None":
        try:
            return cls(model, adapter, rows)
        except (Unsupported, AttributeError, RuntimeError):
            return None

    def step(self, tokens, positions, keys, values, mask, adapter_rows):
        """The fp32 logits [rows, vocab] of the next token after ``tokens`` [rows].

        ``positions`` [rows]: each row's position (rotary); ``keys``/``values``: per layer
        [rows, kv heads, capacity, head dim] slot buffers, where this step's keys go at slot
        ``mask.shape[-1] - 1``; ``mask`` [rows, 1, 1, slots]: the slots each row attends to
        (the modules' attention mask, so SDPA computes exactly what they compute);
        ``adapter_rows``: the rows of the active adapter (an index tensor) or None.
        """
        n, end = tokens.shape[0], mask.shape[-1]
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        nq, nk = nh * hd, nkv * hd
        h = self.embed(tokens[:, None])                                   # [n, 1, hidden]
        cos, sin = self.rotary(h, positions[:, None])                      # [n, 1, hd]
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)                      # [n, 1, 1, hd]
        # the mask as SDPA makes it from a boolean one (0 / -inf in the query's dtype), once per step
        # instead of once per layer: the same values, so the same attention
        bias = torch.zeros(mask.shape, dtype=h.dtype).masked_fill_(~mask, float("-inf"))
        for i, layer in enumerate(self.layers):
            x = layer["ln1"](h)
            qkv = layer["qkv"](x, adapter_rows)                            # [n, 1, nq + 2 nk]
            qk = qkv[..., :nq + nk].view(n, 1, nh + nkv, hd).transpose(1, 2)
            qk = (qk * cos) + (_rotate_half(qk) * sin)
            kb, vb = keys[i], values[i]
            kb[:, :, end - 1:end] = qk[:, nh:]
            vb[:, :, end - 1:end] = qkv[..., nq + nk:].view(n, 1, nkv, hd).transpose(1, 2)
            a = F.scaled_dot_product_attention(qk[:, :nh], kb[:, :, :end], vb[:, :, :end], attn_mask=bias,
                                               scale=layer["scaling"], enable_gqa=nh != nkv)
            h = h + layer["o"](a.transpose(1, 2).reshape(n, 1, nq), adapter_rows)
            x = layer["ln2"](h)
            gu = layer["gu"](x, adapter_rows)
            h = h + layer["down"](F.silu(gu[..., :self.intermediate]) * gu[..., self.intermediate:], adapter_rows)
        return self.head(self.norm(h), None)[:, -1, :].float()


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)
