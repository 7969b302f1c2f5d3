"""The evaluation decoder's attention: grouped-query heads kept grouped inside SDPA."""

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from brightrun_trainer.decoding import _sdpa_gqa


class _Attn(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def _qkv(dtype, q_len, kv_len):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 9, q_len, 16, generator=g).to(dtype)
    k = torch.randn(4, 3, kv_len, 16, generator=g).to(dtype)
    v = torch.randn(4, 3, kv_len, 16, generator=g).to(dtype)
    return q, k, v


def test_grouped_heads_give_transformers_sdpa_results_bit_for_bit():
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v = _qkv(dtype, 1, 40)  # a decoding step over a left-padded cache
        visible = torch.ones(4, 1, 1, 40, dtype=torch.bool)
        visible[0, ..., :25] = False
        visible[2, ..., :7] = False
        want, _ = sdpa_attention_forward(_Attn(), q, k, v, visible, scaling=0.25)
        got, _ = _sdpa_gqa(_Attn(), q, k, v, visible, scaling=0.25)
        assert got.shape == want.shape == (4, 1, 9, 16)
        assert torch.equal(got, want)


def test_without_a_mask_it_is_transformers_sdpa():
    q, k, v = _qkv(torch.float32, 12, 12)  # a prefill: causal, no mask
    want, _ = sdpa_attention_forward(_Attn(), q, k, v, None, scaling=0.25)
    got, _ = _sdpa_gqa(_Attn(), q, k, v, None, scaling=0.25)
    assert torch.equal(got, want)
