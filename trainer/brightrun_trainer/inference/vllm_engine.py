"""vLLM multi-LoRA engine for GPU agents (used when ``vllm`` is importable and the agent has a GPU).

UNTESTED: the development machine has no GPU and no vLLM; no test exercises this
module. It has the interface of :class:`.engine.Engine` (``generate``,
``loaded_models``) so the inference loop uses either.

One ``vllm.LLMEngine`` per base model (``enable_lora``); a request with an
adapter passes a ``LoRARequest`` (vLLM loads the adapter directory once and
keeps up to ``max_loras`` on the GPU); the base answer passes none. A stepper
thread runs ``engine.step()`` while requests are unfinished and hands each
request its outputs; concurrent requests are batched by vLLM. Cancellation
aborts the request.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from ..encoding import ensure_chat_template, render
from ..errors import ConfigError
from .engine import FINISH_CANCELLED, FINISH_LENGTH, FINISH_STOP, GenParams, GenResult

log = logging.getLogger("brightrun.inference")


def available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class _Base:
    def __init__(self, model_id: str, llm_engine, tokenizer, load_seconds: float):
        self.model_id = model_id
        self.engine = llm_engine
        self.tokenizer = tokenizer
        self.load_seconds = load_seconds
        self.lock = threading.Lock()            # LLMEngine is not thread-safe: add/abort/step under it
        self.outputs: dict[str, queue.Queue] = {}
        self.wake = threading.Event()
        self.lora_ids: dict[str, int] = {}
        self.thread = threading.Thread(target=self._step_loop, name=f"vllm-{model_id}", daemon=True)
        self.thread.start()

    def _step_loop(self) -> None:
        while True:
            self.wake.wait()
            with self.lock:
                if not self.engine.has_unfinished_requests():
                    self.wake.clear()
                    continue
                outs = self.engine.step()
            for o in outs:
                q = self.outputs.get(o.request_id)
                if q is not None:
                    q.put(o)


class VllmEngine:
    def __init__(self, *, gpu_memory_utilization: float = 0.5, max_loras: int = 8, max_lora_rank: int = 64,
                 max_model_len: int | None = None):
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_loras = max_loras
        self.max_lora_rank = max_lora_rank
        self.max_model_len = max_model_len
        self.bases: dict[str, _Base] = {}
        self._lock = threading.Lock()

    def loaded_models(self) -> list[str]:
        with self._lock:
            return list(self.bases)

    def _base(self, model_id: str) -> tuple[_Base, float]:
        with self._lock:
            if model_id in self.bases:
                return self.bases[model_id], 0.0
            from vllm import EngineArgs, LLMEngine

            from ..models import load_tokenizer, resolve_model

            t0 = time.monotonic()
            resolved = resolve_model(model_id)
            if resolved.gguf_file:
                raise ConfigError(f"{model_id}: the vLLM engine serves safetensors models, not GGUF files")
            tok = load_tokenizer(resolved)
            ensure_chat_template(tok)
            kw = {"model": resolved.path, "enable_lora": True, "max_loras": self.max_loras,
                  "max_lora_rank": self.max_lora_rank, "gpu_memory_utilization": self.gpu_memory_utilization}
            if self.max_model_len:
                kw["max_model_len"] = self.max_model_len
            eng = LLMEngine.from_engine_args(EngineArgs(**kw))
            b = _Base(model_id, eng, tok, time.monotonic() - t0)
            self.bases[model_id] = b
            return b, b.load_seconds

    def generate(self, base_model: str, messages: list[dict], params: GenParams, *,
                 adapter: tuple[str, Path] | None = None, on_text: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None, deadline: float | None = None) -> GenResult:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        params.validate()
        t_start = time.monotonic()
        b, load_s = self._base(base_model)
        prompt = render(b.tokenizer, messages, True)
        lora = None
        if adapter is not None:
            with b.lock:
                lid = b.lora_ids.setdefault(adapter[0], len(b.lora_ids) + 1)
            lora = LoRARequest(adapter[0], lid, str(adapter[1]))
        sp = SamplingParams(max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
                            seed=params.seed, stop=params.stop or None)
        rid = uuid.uuid4().hex
        q: queue.Queue = queue.Queue()
        b.outputs[rid] = q
        t_gen = time.monotonic()
        with b.lock:
            b.engine.add_request(rid, prompt, sp, lora_request=lora)
        b.wake.set()
        sent, first, finish, n_prompt, n_out = "", None, FINISH_LENGTH, 0, 0
        try:
            while True:
                if (cancel is not None and cancel.is_set()) or (deadline is not None and time.monotonic() > deadline):
                    with b.lock:
                        b.engine.abort_request([rid])
                    finish = FINISH_CANCELLED
                    break
                try:
                    o = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                c = o.outputs[0]
                n_prompt = len(o.prompt_token_ids or [])
                n_out = len(c.token_ids)
                if first is None and n_out:
                    first = time.monotonic() - t_gen
                if c.text.startswith(sent) and len(c.text) > len(sent):
                    new, sent = c.text[len(sent):], c.text
                    if on_text:
                        on_text(new)
                if o.finished:
                    finish = FINISH_LENGTH if c.finish_reason == "length" else FINISH_STOP
                    break
        finally:
            b.outputs.pop(rid, None)
        now = time.monotonic()
        timings = {"load_seconds": round(load_s, 4), "first_token_seconds": round(first or 0.0, 4),
                   "generate_seconds": round(now - t_gen, 4), "total_seconds": round(now - t_start, 4)}
        return GenResult(sent, finish, n_prompt, n_out, timings)
