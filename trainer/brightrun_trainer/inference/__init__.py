"""Inference on the agent: a base model served with any number of LoRA adapters.

- :mod:`.engine`: transformers + PEFT with a KV cache (the CPU default): one
  loaded base model per id, adapters loaded into it by name, the base answer
  from the same weights with the adapter layers disabled; a manual decode loop
  (sampling, seed, stop strings, cancellation, usage and timings).
- :mod:`.adapters`: the on-disk adapter cache (signed-URL downloads, size
  checks, LRU eviction under a byte limit).
- :mod:`.loop`: the agent's inference loop (``/api/agent/inference/claim`` and
  ``/stream``, docs/agent-protocol.md "Inference").
- :mod:`.vllm_engine`: vLLM multi-LoRA for GPU agents when ``vllm`` is
  installed (untested here: no GPU and no vLLM on the development machine).
"""
