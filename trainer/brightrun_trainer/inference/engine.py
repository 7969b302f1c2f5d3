"""The transformers + PEFT inference engine (CPU default; works on one CUDA GPU too).

One :class:`LoadedBase` per base model id holds the model, its tokenizer (with
the chat template training used: :func:`encoding.ensure_chat_template`) and
the adapters loaded into it (PEFT ``load_adapter`` by name). A request picks
its adapter (or none: the base answer, with the adapter layers disabled on the
same weights) for every forward pass, so concurrent requests for different
adapters interleave decode step by decode step under one fair lock per model.
Each request keeps its own KV cache.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..encoding import ensure_chat_template, render
from ..errors import ConfigError
from .threads import ThreadGuard, torch_threads_for  # noqa: F401 - torch_threads_for: imported from here

log = logging.getLogger("brightrun.inference")

FINISH_STOP, FINISH_LENGTH, FINISH_CANCELLED = "stop", "length", "cancelled"


@dataclass
class GenParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | None) -> "GenParams":
        d = d or {}
        p = cls()
        if d.get("max_tokens") is not None:
            p.max_tokens = int(d["max_tokens"])
        if d.get("temperature") is not None:
            p.temperature = float(d["temperature"])
        if d.get("top_p") is not None:
            p.top_p = float(d["top_p"])
        if d.get("seed") is not None:
            p.seed = int(d["seed"])
        stop = d.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        p.stop = [s for s in (stop or []) if isinstance(s, str) and s]
        p.validate()
        return p

    def validate(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if not (0 <= self.temperature <= 2) or not math.isfinite(self.temperature):
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature}")
        if not (0 < self.top_p <= 1):
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class GenResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    timings: dict

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class FairLock:
    """A FIFO lock: waiters get it in arrival order, so interleaved decode steps
    of concurrent requests take turns instead of one request hogging the model."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    def __enter__(self):
        me = object()
        with self._cond:
            self._queue.append(me)
            while self._held or self._queue[0] is not me:
                self._cond.wait()
            self._queue.popleft()
            self._held = True
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._held = False
            self._cond.notify_all()


def adapter_name(model_id: str, version) -> str:
    """A PEFT adapter name (a module-dict key: no dots) for a model id + version."""
    return "a" + hashlib.sha256(f"{model_id}\x00{version}".encode()).hexdigest()[:20]


class LoadedBase:
    """One base model in memory with its tokenizer and loaded adapters."""

    def __init__(self, model_id: str, model, tokenizer, device: str, load_seconds: float, fast=None):
        self.model_id = model_id
        self.fast = fast              # a fastdecode.FastDecoder for decode steps, or None
        self.model = model            # a PreTrainedModel, or a PeftModel once an adapter is loaded
        self.tokenizer = tokenizer
        self.device = device
        self.load_seconds = load_seconds
        self.lock = FairLock()        # held for every forward pass and every adapter change
        self.tok_lock = threading.Lock()  # fast tokenizers are not safe to call from threads at once
        self.adapters: OrderedDict[str, str] = OrderedDict()   # name -> directory, LRU order
        self.in_use: dict[str, int] = {}                       # adapter name -> running requests
        self.active: str | None = None                         # adapter the layers use now (None: disabled)
        self.busy = 0                                          # running requests on this base
        cfg = model.config
        self.max_positions = int(getattr(cfg, "max_position_embeddings", 0) or 0) or None
        self.stop_ids = _stop_ids(model, tokenizer)

    def _activate(self, name: str | None) -> None:
        """Called with the lock held."""
        if name == self.active:
            return
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            if name is None:
                self.model.base_model.disable_adapter_layers()
            else:
                if self.active is None:
                    self.model.base_model.enable_adapter_layers()
                self.model.set_adapter(name)
        self.active = name

    def ensure_adapter(self, name: str, path: Path, max_loaded: int) -> float:
        """Load the adapter at ``path`` under ``name`` unless it is loaded; returns seconds spent."""
        with self.lock:
            if name in self.adapters:
                self.adapters.move_to_end(name)
                return 0.0
            t0 = time.monotonic()
            from peft import PeftModel

            if self.fast is not None:
                self.fast.forget(name)
            if not isinstance(self.model, PeftModel):
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=False)
                self.active = name
            else:
                self.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
                # load_adapter leaves the active adapter as it was; re-apply our view of it.
                cur, self.active = self.active, object()  # force _activate to act
                self._activate(cur)
            self.model.eval()
            self.adapters[name] = str(path)
            self._evict(max_loaded, keep=name)
            return time.monotonic() - t0

    def _evict(self, max_loaded: int, keep: str) -> None:
        for old in list(self.adapters):
            if len(self.adapters) <= max_loaded:
                break
            if old == keep or self.in_use.get(old):
                continue
            if self.active == old:
                self._activate(None)
            self.model.delete_adapter(old)
            if self.fast is not None:
                self.fast.forget(old)
            del self.adapters[old]
            log.info("unloaded adapter %s from %s (more than %d loaded)", old, self.model_id, max_loaded)

    def forward(self, adapter: str | None, input_ids, cache, clock: list | None = None):
        """The last position's logits (fp32) through the model's modules; appends the seconds spent
        computing (not waiting for the lock) to ``clock``."""
        import torch

        with self.lock:
            t0 = time.perf_counter()
            self._activate(adapter)
            with torch.inference_mode():
                out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1, :].float()
            if clock is not None:
                clock.append(time.perf_counter() - t0)
        return logits

    def fast_ok(self, adapter: str | None) -> bool:
        """Whether this request's decode steps can take the fast path (fastdecode.py)."""
        if self.fast is None or not self.fast.enabled():
            return False
        with self.lock:
            return self.fast.adapter_ok(self.model, adapter)

    def start_fast(self, cache, prompt_len: int, capacity: int):
        """The fast path's state for a request after its prefill (its KV cache copied in)."""
        import torch

        with self.lock, torch.inference_mode():
            return self.fast.start(cache, prompt_len, capacity)

    def step(self, adapter: str | None, token: int, state, clock: list | None = None):
        """One decode step on the fast path: the next position's logits (fp32, [1, vocab])."""
        import torch

        with self.lock:
            t0 = time.perf_counter()
            with torch.inference_mode():
                logits = self.fast.step(token, state, adapter)
            if clock is not None:
                clock.append(time.perf_counter() - t0)
        return logits


def _stop_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        v = getattr(src, "eos_token_id", None) if src is not None else None
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v if x is not None)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    # Chat templates end turns with a special token that may not be the EOS (e.g. <|im_end|>, <|eot_id|>).
    for t in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(t) if t in tokenizer.get_vocab() else None
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return ids


def sample(logits, temperature: float, top_p: float, generator) -> int:
    """One token id from the last position's logits (greedy when temperature is 0)."""
    import torch

    if temperature <= 1e-5:
        return int(torch.argmax(logits, dim=-1)[0])
    probs = torch.softmax(logits[0] / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, idx = torch.sort(probs, descending=True)
        cum = torch.cumsum(sorted_p, dim=-1)
        drop = (cum - sorted_p) > top_p   # keep the smallest prefix whose mass reaches top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)
        return int(idx[choice])
    return int(torch.multinomial(probs, 1, generator=generator))


class StopText:
    """Incremental detokenization with stop strings.

    ``push(text)`` takes the decoding of all generated tokens so far and returns
    the new text that is safe to send: text that could still become the start
    of a stop string (or an unfinished UTF-8 sequence) is held back.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.sent = ""
        self.stopped = False

    def push(self, full: str) -> str:
        if self.stopped:
            return ""
        if full.endswith("\ufffd"):
            return ""
        cut = len(full)
        hit = None
        for s in self.stops:
            i = full.find(s, max(0, len(self.sent) - len(s) + 1))
            if i >= 0 and (hit is None or i < hit):
                hit = i
        if hit is not None:
            self.stopped = True
            cut = hit
        else:
            for s in self.stops:   # hold back a suffix that is a prefix of a stop string
                for k in range(min(len(s) - 1, len(full)), 0, -1):
                    if full.endswith(s[:k]):
                        cut = min(cut, len(full) - k)
                        break
        if cut <= len(self.sent) or not full.startswith(self.sent):
            return ""
        new = full[len(self.sent):cut]
        self.sent = full[:cut]
        return new

    def flush(self, full: str) -> str:
        """At the end (not stopped): everything that was held back."""
        if self.stopped or not full.startswith(self.sent):
            return ""
        new = full[len(self.sent):].rstrip("\ufffd")
        self.sent += new
        return new


class Engine:
    """Serves base models and adapters; thread-safe."""

    def __init__(self, *, device: str = "cpu", max_bases: int = 1, max_loaded_adapters: int = 16,
                 training_active: Callable[[], bool] | None = None, dtype: str = "auto",
                 threads: int | None = None, quantize: str = "auto"):
        if quantize not in ("auto", "int8", "none"):
            raise ConfigError(f"quantize must be auto, int8 or none, got {quantize!r}")
        self.device = device
        # auto: int8 weights for the decode steps on CPU (inference/int8.py), exact weights elsewhere
        self.quantize = quantize
        self.threads = threads   # CPU threads for inference (None: all cores; see torch_threads_for)
        self.dtype = dtype   # auto: bf16 on GPUs and on CPUs with bf16 units (AMX/AVX512-BF16), else fp32
        self.max_bases = max(1, max_bases)
        self.max_loaded_adapters = max(1, max_loaded_adapters)
        self.training_active = training_active or (lambda: False)
        self.bases: OrderedDict[str, LoadedBase] = OrderedDict()
        self.generations = 0   # running generate() calls, all bases (the threads policy shares the cores)
        self.guard = ThreadGuard()   # one thread instead of the policy's count while that is faster
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def loaded_models(self) -> list[str]:
        with self._lock:
            return list(self.bases)

    # -- loading ----------------------------------------------------------------------

    def base(self, model_id: str) -> tuple[LoadedBase, float]:
        """The loaded base model (loading it once); returns it and the seconds spent loading."""
        with self._lock:
            lb = self.bases.get(model_id)
            if lb is not None:
                self.bases.move_to_end(model_id)
                return lb, 0.0
            lk = self._loading.setdefault(model_id, threading.Lock())
        with lk:
            with self._lock:
                lb = self.bases.get(model_id)
                if lb is not None:
                    return lb, 0.0
            lb = self._load(model_id)
            with self._lock:
                self.bases[model_id] = lb
                self._evict_bases(keep=model_id)
            return lb, lb.load_seconds

    def _load(self, model_id: str) -> LoadedBase:
        """Loads on one CPU thread: the load is a file read plus casts and int8 copies, and on a busy
        2-core machine two threads made the int8 copies 20x slower (0.6 s vs 11.8 s for SmolLM2-135M
        at load average 5; bench/inference/README.md), for little gain on an idle one."""
        import torch

        before = torch.get_num_threads()
        if self.device == "cpu":
            torch.set_num_threads(1)
        try:
            return self._load_model(model_id)
        finally:
            if self.device == "cpu":
                torch.set_num_threads(before)

    def _load_model(self, model_id: str) -> LoadedBase:
        from ..models import load_model, load_tokenizer, resolve_model

        t0 = time.monotonic()
        resolved = resolve_model(model_id)
        tok = load_tokenizer(resolved)
        ensure_chat_template(tok)
        model = load_model(resolved, device=self.device)
        dtype = self.torch_dtype()
        if model.dtype != dtype:
            model.to(dtype)
        model.eval()
        decode, fast = "exact", None
        if self.decode_int8():
            from .fastdecode import FastDecoder
            from .int8 import quantize_for_decode

            decode = f"int8 ({quantize_for_decode(model)} layers)"
            fast = FastDecoder.build(model)
            if fast is not None:
                decode += ", fused decode steps"
        secs = time.monotonic() - t0
        log.info("loaded base model %s (%s, %s, decode %s) in %.1f s", model_id, resolved.source, dtype, decode, secs)
        return LoadedBase(model_id, model, tok, self.device, secs, fast=fast)

    def decode_int8(self) -> bool:
        """Whether decode steps use int8 weights: on CPU unless turned off (``--serve-quantize none``),
        when this PyTorch has the kernel. Never on a GPU (memory-bound there too, but vLLM or bf16
        tensor cores are the better answer)."""
        if self.quantize == "none" or self.device != "cpu":
            return False
        from .int8 import kernel_available

        if not kernel_available():
            if self.quantize == "int8":
                log.warning("--serve-quantize int8: this PyTorch has no _weight_int8pack_mm; decoding with exact weights")
            return False
        return True

    def torch_dtype(self):
        """The dtype served: halving the bytes read per token matters most on CPUs, where decoding is
        memory-bound; bf16 is only fast there with bf16 matrix units."""
        import torch

        from ..models import cpu_bf16_supported

        if self.dtype == "float32":
            return torch.float32
        if self.dtype == "bfloat16":
            return torch.bfloat16
        if self.device == "cpu":
            return torch.bfloat16 if cpu_bf16_supported() else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def threads_now(self) -> int | None:
        """This generation's intra-op threads now (torch_threads_for with the running generations)."""
        with self._lock:
            n = self.generations
        return torch_threads_for(self.device, self.training_active(), configured=self.threads, generations=n)

    def _evict_bases(self, keep: str) -> None:
        for mid in list(self.bases):
            if len(self.bases) <= self.max_bases:
                break
            if mid != keep and self.bases[mid].busy == 0:
                del self.bases[mid]
                log.info("unloaded base model %s (more than %d loaded)", mid, self.max_bases)

    # -- generation -------------------------------------------------------------------

    def generate(self, base_model: str, messages: list[dict], params: GenParams, *,
                 adapter: tuple[str, Path] | None = None, on_text: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None, deadline: float | None = None) -> GenResult:
        """Generate one answer. ``adapter`` is (name, directory) or None for the base model.

        ``on_text`` receives the text as it becomes final (stop strings held back);
        ``cancel`` (or passing ``deadline``, a monotonic time) ends it with
        finish_reason ``cancelled``.
        """
        import torch

        params.validate()
        t_start = time.monotonic()
        lb, load_s = self.base(base_model)
        name = None
        with self._lock:
            lb.busy += 1
            self.generations += 1
        try:
            if adapter is not None:
                name = adapter[0]
                with lb.lock:
                    lb.in_use[name] = lb.in_use.get(name, 0) + 1
                load_s += lb.ensure_adapter(name, Path(adapter[1]), self.max_loaded_adapters)
            return self._decode(lb, name, messages, params, on_text, cancel, deadline, t_start, load_s)
        finally:
            with self._lock:
                lb.busy -= 1
                self.generations -= 1
            if name is not None:
                with lb.lock:
                    lb.in_use[name] -= 1

    def _decode(self, lb: LoadedBase, name, messages, params, on_text, cancel, deadline, t_start, load_s) -> GenResult:
        import torch
        from transformers import DynamicCache

        tok = lb.tokenizer
        with lb.tok_lock:
            prompt = render(tok, messages, True)
            ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        n_prompt = int(ids.shape[1])
        if lb.max_positions and n_prompt + params.max_tokens > lb.max_positions:
            raise ConfigError(f"the prompt has {n_prompt} tokens; with max_tokens {params.max_tokens} it exceeds "
                              f"the context of {lb.model_id} ({lb.max_positions} tokens): shorten the conversation "
                              f"or lower max_tokens")
        gen = torch.Generator(device="cpu")
        gen.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))
        stop = StopText(params.stop)
        out_ids: list[int] = []
        cache = DynamicCache()
        fast = lb.fast_ok(name)   # decode steps on the fused path (fastdecode.py) after the prefill
        state = None
        t_gen = time.monotonic()
        first = None
        finish = FINISH_LENGTH
        next_input = ids.to(lb.device)
        text = ""

        def cancelled() -> bool:
            return (cancel is not None and cancel.is_set()) or (deadline is not None and time.monotonic() > deadline)

        threads, kind, clock = None, ("fast" if fast else "modules"), []
        while len(out_ids) < params.max_tokens:
            if cancelled():
                finish = FINISH_CANCELLED
                break
            # Re-read before every step: a stream that started alone shrinks its team as soon as
            # another generation (or a training job) starts, and the guard drops to one thread while
            # that measures faster. Set only on a change: set_num_threads also clears oneDNN's
            # primitive cache.
            want = self.guard.choose(self.threads_now(), kind, prefill=not out_ids)
            warm = want == threads
            if want and want != threads:
                torch.set_num_threads(want)   # this thread's team (PyTorch's OpenMP backend)
                threads = want
            clock.clear()
            if state is not None:
                logits = lb.step(name, out_ids[-1], state, clock)
            else:
                logits = lb.forward(name, next_input, cache, clock)
                if fast:
                    state, cache = lb.start_fast(cache, n_prompt, n_prompt + params.max_tokens), None
            if out_ids and clock:   # a decode step (not the prefill); warm: on an unchanged team
                self.guard.record(kind, threads, clock[0], warm)
            t = sample(logits.cpu(), params.temperature, params.top_p, gen)
            if first is None:
                first = time.monotonic() - t_gen
            out_ids.append(t)
            if t in lb.stop_ids:
                finish = FINISH_STOP
                break
            with lb.tok_lock:
                text = tok.decode(out_ids, skip_special_tokens=True)
            new = stop.push(text)
            if new and on_text:
                on_text(new)
            if stop.stopped:
                finish = FINISH_STOP
                break
            next_input = torch.tensor([[t]], device=lb.device)
        if finish != FINISH_CANCELLED and not stop.stopped:
            with lb.tok_lock:
                text = tok.decode(out_ids, skip_special_tokens=True)
            rest = stop.flush(text)
            if rest and on_text:
                on_text(rest)
        now = time.monotonic()
        timings = {"load_seconds": round(load_s, 4), "first_token_seconds": round(first or 0.0, 4),
                   "generate_seconds": round(now - t_gen, 4), "total_seconds": round(now - t_start, 4)}
        return GenResult(stop.sent, finish, n_prompt, len(out_ids), timings)
