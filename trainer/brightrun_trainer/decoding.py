"""Greedy decoding for the final evaluation's side-by-side answers (issue 14).

The answers are the same as ``model.generate`` (greedy, left-padded batch,
KV cache) gives; what changes is the work done to get them:

1. **Each prompt is prefilled alone**, with no padding and no mask, so SDPA
   takes its fused causal kernel and no padding tokens are computed. The rows
   that share a prompt (the adapter row and the base row of PEFT's mixed
   batch) share one prefill of the same length.
2. **The prefilled keys and values are laid out left-padded in preallocated
   buffers** (one per layer, room for every new token), so one batched
   decoding loop serves all rows; a step writes its new token in place and
   attends over a view of the filled part. ``DynamicCache`` concatenates the
   whole cache every step instead (a copy of every layer's keys and values
   per token).
3. **Grouped-query heads stay grouped inside SDPA** during decoding.
   transformers repeats the keys and values to the query heads' count
   whenever there is a mask (``repeat_kv``: a copy of the whole cache per
   layer per step, x3 for SmolLM2), because CUDA's kernels fall back to the
   math path with a mask and GQA; on the CPU, SDPA's ``enable_gqa`` with a mask
   gives bit-identical results without the copy.

On the quick-demo job of issue 14 (SmolLM2-135M, 3 prompts of 269, 789 and 896
tokens, adapter and base rows, 128 new tokens) the copies and concatenations
were about 40 % of each decoding step and 27 % of the prefill was padding
(bench/trainer/cpu_eval.py, bench/trainer/README.md).
"""

from __future__ import annotations

import contextlib

GQA_SDPA = "brightrun_sdpa_gqa"


def _sdpa_gqa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' SDPA attention, except that with a mask the key/value
    heads are not repeated for each query group (``enable_gqa`` instead)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is None or getattr(module, "num_key_value_groups", 1) == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def grouped_kv_attention(model, device: str):
    """Within the block, a CPU model on SDPA attention uses :func:`_sdpa_gqa`.

    Other devices and attention implementations are left as they are (on CUDA
    a mask with GQA would push SDPA to its math kernel, so transformers'
    repeat is the better choice there)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if device != "cpu" or getattr(base.config, "_attn_implementation", None) != "sdpa":
        yield
        return
    from transformers import AttentionInterface

    AttentionInterface.register(GQA_SDPA, _sdpa_gqa)  # idempotent: the same function under the same name
    base.set_attn_implementation(GQA_SDPA)
    try:
        yield
    finally:
        base.set_attn_implementation("sdpa")


def _slot_layer_class():
    from transformers.cache_utils import CacheLayerMixin

    class SlotLayer(CacheLayerMixin):
        """One layer's keys and values in buffers of [rows, kv heads, capacity,
        head dim]: ``update`` writes the new tokens in place and returns a view
        of the filled part (no concatenation, no copy of the cache)."""

        is_sliding = False

        def __init__(self, keys, values, length: int):
            super().__init__()
            self._k, self._v, self.length = keys, values, length
            self.dtype, self.device = keys.dtype, keys.device
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]
            self.is_initialized = True

        def lazy_initialization(self, key_states, value_states) -> None:  # built initialised
            return None

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.length + key_states.shape[-2]
            self._k[:, :, self.length:end] = key_states
            self._v[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.length + query_length, 0

        def get_seq_length(self) -> int:
            return self.length

        def get_max_length(self) -> int:
            return self._k.shape[-2]

    return SlotLayer


def _prefill(model, ids: list[int], names: list[str] | None, rows: int, device: str):
    """One prompt's forward for ``rows`` rows (one per adapter name): the
    last position's logits and the prompt's DynamicCache."""
    import torch

    kwargs = {"adapter_names": list(names)} if names is not None else {}
    x = torch.tensor([ids] * rows, dtype=torch.long, device=device)
    # the last position as an index, not ``logits_to_keep=1``: the slice of several rows is not
    # contiguous, and torch.matmul then copies the LM head's weight once per row (0.2 s for
    # SmolLM2's 49k x 576 head and two rows; the gathered row gives bit-identical logits)
    last = torch.tensor([len(ids) - 1], device=device)
    out = model(input_ids=x, use_cache=True, logits_to_keep=last, **kwargs)
    return out.logits[:, -1, :], out.past_key_values


def greedy_tokens(model, prompts: list[list[int]], max_new_tokens: int, eos_id: int | None, pad_id: int,
                  device: str, adapter_names: list[str] | None = None, on_token=None) -> list[list[int]] | None:
    """Greedy new tokens for each row (``prompts[i]``, through
    ``adapter_names[i]`` in a PEFT mixed batch), up to and including the
    first ``eos_id``; the same tokens as ``model.generate`` on the left-padded
    batch. ``on_token(n)`` is called after each step with the number of new
    tokens so far. Returns None for models whose cache is not one plain
    full-attention layer per decoder layer (sliding windows, linear attention):
    the caller falls back to ``generate``.

    On CPU Llama-shaped models the decode steps are :mod:`mixedsteps`' when
    its first step's logits equal the modules' (bit for bit).
    """
    import torch
    from transformers.cache_utils import Cache, DynamicLayer

    n = len(prompts)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(tuple(p), []).append(i)
    width = max(len(p) for p in prompts)
    capacity = width + max_new_tokens
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    first = torch.empty(n, dtype=torch.long, device=device)
    SlotLayer = _slot_layer_class()
    buffers = None
    with torch.inference_mode(), grouped_kv_attention(model, device):
        for ids, rows in groups.items():
            names = [adapter_names[r] for r in rows] if adapter_names is not None else None
            logits, cache = _prefill(model, list(ids), names, len(rows), device)
            if any(type(layer) is not DynamicLayer for layer in cache.layers):
                return None
            if buffers is None:
                buffers = [(l.keys.new_zeros((n, *l.keys.shape[1:2], capacity, l.keys.shape[-1])),
                            l.values.new_zeros((n, *l.values.shape[1:2], capacity, l.values.shape[-1])))
                           for l in cache.layers]
            idx = torch.tensor(rows, device=device)
            for (kb, vb), layer in zip(buffers, cache.layers):
                kb[idx, :, width - len(ids):width] = layer.keys
                vb[idx, :, width - len(ids):width] = layer.values
            first[idx] = logits.float().argmax(-1)
            del cache, logits
        cache = Cache(layers=[SlotLayer(kb, vb, width) for kb, vb in buffers])
        slots = torch.arange(capacity, device=device)
        visible = (slots[None, :] >= (width - lengths)[:, None])[:, None, None, :]  # left padding hidden
        kwargs = {"adapter_names": list(adapter_names)} if adapter_names is not None else {}

        def module_step(feed, t):
            out = model(input_ids=feed[:, None], position_ids=(lengths + t - 1)[:, None],
                        attention_mask=visible[..., :width + t], past_key_values=cache, use_cache=True,
                        logits_to_keep=1, **kwargs)
            return out.logits[:, -1, :].float()

        fused = _mixed_decoder(model, adapter_names, n, device)
        adapter_rows = _adapter_rows(adapter_names, device)
        keys, values = [kb for kb, _ in buffers], [vb for _, vb in buffers]
        tokens = [first]
        done = first == eos_id if eos_id is not None else torch.zeros_like(first, dtype=torch.bool)
        if on_token is not None:
            on_token(1)
        for t in range(1, max_new_tokens):
            if bool(done.all()):
                break
            feed = torch.where(done, torch.full_like(tokens[-1], pad_id), tokens[-1])
            if fused is None:
                logits = module_step(feed, t)
            else:
                logits = fused.step(feed, lengths + t - 1, keys, values, visible[..., :width + t], adapter_rows)
                if t == 1:   # the check: the modules' step (it rewrites the same cache slots) gives the same logits
                    reference = module_step(feed, t)
                    if not torch.equal(logits, reference):
                        logits, fused = reference, None
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            tokens.append(nxt)
            if eos_id is not None:
                done = done | (nxt == eos_id)
            if on_token is not None:
                on_token(t + 1)
    out_ids = torch.stack(tokens, 1).tolist()
    answers = []
    for row in out_ids:
        if eos_id is not None and eos_id in row:
            row = row[:row.index(eos_id) + 1]
        answers.append(row)
    return answers


def _mixed_decoder(model, adapter_names, rows: int, device: str):
    """:class:`mixedsteps.MixedDecoder` for this batch, or None (not CPU, not covered, or off:
    BRIGHTRUN_MIXED_STEPS=0)."""
    import os

    if device != "cpu" or os.environ.get("BRIGHTRUN_MIXED_STEPS") == "0":
        return None
    if adapter_names is None and hasattr(model, "peft_config"):
        return None   # a PEFT model without names: the modules decide what is active
    from .mixedsteps import MixedDecoder

    active = {a for a in adapter_names or () if a != "__base__"}
    if len(active) > 1:
        return None
    return MixedDecoder.build(model, active.pop() if active else None, rows)


def _adapter_rows(adapter_names, device: str):
    """The rows the active adapter applies to: a slice where they are consecutive (the
    evaluation's batch: adapter rows first), else an index tensor; None for none."""
    import torch

    if adapter_names is None:
        return None
    rows = [i for i, a in enumerate(adapter_names) if a != "__base__"]
    if not rows:
        return None
    if rows == list(range(rows[0], rows[-1] + 1)):
        return slice(rows[0], rows[-1] + 1)
    return torch.tensor(rows, dtype=torch.long, device=device)
