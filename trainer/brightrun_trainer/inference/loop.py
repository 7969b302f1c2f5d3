"""The agent's inference loop (docs/agent-protocol.md, "Inference").

One thread long-polls ``POST /api/agent/inference/claim`` whenever a slot is
free; each claimed request runs on its own worker thread: fetch the adapter
through the cache, generate with the engine, and stream the text with
``POST /api/agent/inference/{id}/stream``. A :class:`StreamPoster` per request
keeps one post in flight and sends, in the next post, whatever was generated
meanwhile; the answer's ``cancel`` stops the generation. Failures end the
stream with ``done: true, error: {class, message}``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import InternalError, TrainerError, classify
from ..httpreporter import Api, AttemptLost, Rejected, Stopped, retry
from .adapters import AdapterCache
from .engine import FINISH_CANCELLED, Engine, GenParams

log = logging.getLogger("brightrun.inference")

FINAL_POST_SECONDS = 60.0   # how long the final post of a stream is retried
KEEPALIVE_SECONDS = 5.0     # an empty post while nothing was generated, to learn about cancellation


def error_class(e: BaseException) -> tuple[str, str]:
    """The protocol's error class (oom, config, internal) and message for a failure."""
    err = classify(e)
    cls = {"oom": "oom", "config": "config", "data": "config"}.get(err.error_class, "internal")
    return cls, err.message


class StreamPoster:
    """Posts one request's text in batches, one post in flight at a time."""

    def __init__(self, api: Api, token: str, request_id: str, cancel: threading.Event, *,
                 keepalive: float = KEEPALIVE_SECONDS):
        self.api, self.token, self.rid = api, token, request_id
        self.cancel = cancel              # set when the server answers {"cancel": true} or drops the request
        self.keepalive = keepalive
        self.seq = 0
        self.posts: list[dict] = []       # bodies posted (tests, logs)
        self.dropped: str | None = None   # why the server does not want more posts
        self._buf: list[str] = []
        self._final: dict | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"stream-{request_id}", daemon=True)
        self._thread.start()

    def append(self, text: str) -> None:
        if text:
            with self._cond:
                self._buf.append(text)
                self._cond.notify()

    def finish(self, fields: dict, timeout: float = FINAL_POST_SECONDS + 5) -> None:
        """Send the rest with ``done: true`` and ``fields``; waits for the final post."""
        with self._cond:
            self._final = dict(fields, done=True)
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buf and self._final is None:
                    if not self._cond.wait(self.keepalive):
                        break   # keepalive: an empty post to learn about a cancellation
                text = "".join(self._buf)
                self._buf.clear()
                final = self._final
            body = {"seq": self.seq, "text": text, "done": False}
            if final is not None:
                body.update(final)
            ok = self._post(body, final is not None)
            self.seq += 1
            if not ok or final is not None:
                return

    def _post(self, body: dict, final: bool) -> bool:
        path = f"/api/agent/inference/{self.rid}/stream"
        deadline = time.monotonic() + FINAL_POST_SECONDS
        try:
            ans = retry(lambda: self.api.post(path, self.token, body, timeout=30), what=f"stream {self.rid}",
                        deadline=deadline, cap=5.0)
        except (AttemptLost, Rejected, Stopped) as e:
            self.dropped = str(e)
            self.cancel.set()
            log.warning("inference %s: the server dropped the stream: %s", self.rid, e)
            return False
        self.posts.append(body)
        if ans.get("cancel") and not final:
            self.cancel.set()
        return True


class InferenceLoop:
    """Claims inference requests and serves them (a thread beside the training loop)."""

    def __init__(self, server: str, token: str, *, engine: Engine, cache_dir: str | Path,
                 cache_bytes: int = 2 << 30, base_models: list[str], caps: dict, name: str | None = None,
                 slots: int = 4, wait_seconds: float = 20.0, stopping: threading.Event | None = None,
                 keepalive: float = KEEPALIVE_SECONDS, on_claim: Callable[[dict], None] | None = None):
        self.api = Api(server)
        self.token = token
        self.engine = engine
        self.cache = AdapterCache(cache_dir, self.api, limit_bytes=cache_bytes)
        self.base_models = list(base_models)
        self.caps = dict(caps)
        self.name = name or socket.gethostname()
        self.slots = threading.Semaphore(max(1, slots))
        self.wait_seconds = max(0.0, min(25.0, float(wait_seconds)))
        self.stopping = stopping or threading.Event()
        self.keepalive = keepalive
        self.on_claim = on_claim
        self.results: list[dict] = []          # one per request served (tests, logs)
        self.disabled: str | None = None       # why the loop stopped serving
        self._active: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "InferenceLoop":
        self._thread = threading.Thread(target=self.run, name="inference-claim", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; running generations end with an error saying the agent stopped."""
        self.stopping.set()
        with self._lock:
            for ev in self._active.values():
                ev.set()
        # Workers end their streams (an error saying the agent stopped); the claim thread may be
        # in a long-poll: it is a daemon and sees ``stopping`` when the poll returns.
        for w in list(self._workers):
            w.join(timeout)
        if self._thread is not None:
            self._thread.join(0.5)

    def run(self) -> None:
        log.info("serving inference for %s", ", ".join(self.base_models) or "no model")
        while not self.stopping.is_set():
            if not self.slots.acquire(timeout=0.5):
                continue
            try:
                req = self.claim()
            except Exception:  # noqa: BLE001 - a malformed answer must not end serving
                log.exception("inference claim failed")
                self.slots.release()
                self.stopping.wait(5.0)
                continue
            if req is None:
                self.slots.release()
                if self.disabled:
                    return
                continue
            w = threading.Thread(target=self._work, args=(req, time.monotonic()), name=f"inference-{req.get('id')}",
                                 daemon=True)
            self._workers = [t for t in self._workers if t.is_alive()] + [w]
            w.start()

    def claim(self) -> dict | None:
        body = {"agent": {"name": self.name, "version": __version__, "hostname": socket.gethostname()},
                "capabilities": self.caps, "base_models": self.base_models,
                "loaded": self.engine.loaded_models(), "wait_seconds": self.wait_seconds}
        try:
            ans = retry(lambda: self.api.post("/api/agent/inference/claim", self.token, body,
                                              timeout=self.wait_seconds + 30),
                        what="inference claim", stop=self.stopping, cap=30.0)
        except Stopped:
            return None
        except (AttemptLost, Rejected) as e:
            # 404/405: a server without inference; 401/403: a wrong token; 400: a claim it refuses.
            self.disabled = str(e)
            log.error("inference is off: the server refused the inference claim: %s", e)
            return None
        req = ans.get("request")
        if req and self.on_claim:
            self.on_claim(req)
        return req or None

    # -- one request ------------------------------------------------------------------------

    def _work(self, req: dict, t_claim: float) -> None:
        try:
            self.results.append(self.serve(req, t_claim))
        except Exception:  # noqa: BLE001 - a worker must never take the loop down
            log.exception("inference %s: unexpected failure", req.get("id"))
        finally:
            self.slots.release()

    def serve(self, req: dict, t_claim: float | None = None) -> dict:
        t_claim = t_claim if t_claim is not None else time.monotonic()
        rid = str(req.get("id") or "")
        cancel = threading.Event()
        with self._lock:
            self._active[rid] = cancel
        poster = StreamPoster(self.api, self.token, rid, cancel, keepalive=self.keepalive)
        outcome: dict = {"id": rid}
        pinned = None
        try:
            params = GenParams.from_dict(req.get("params"))
            timeout = float(req.get("timeout_seconds") or 300)
            deadline = t_claim + timeout
            adapter = None
            t_load = time.monotonic()
            if req.get("adapter"):
                cached = self.cache.get(req["adapter"], stop=cancel)
                pinned = cached.name
                adapter = (cached.name, cached.path)
            fetch_s = time.monotonic() - t_load
            res = self.engine.generate(str(req.get("base_model") or ""), list(req.get("messages") or []), params,
                                       adapter=adapter, on_text=poster.append, cancel=cancel, deadline=deadline)
            if self.stopping.is_set() and res.finish_reason == FINISH_CANCELLED and not poster.dropped:
                raise InternalError("the agent is shutting down; send the request again")
            load_s = fetch_s + res.timings["load_seconds"]
            total = time.monotonic() - t_claim
            timings = {"queue_seconds": round(max(0.0, total - load_s - res.timings["generate_seconds"]), 4),
                       "load_seconds": round(load_s, 4), "first_token_seconds": res.timings["first_token_seconds"],
                       "generate_seconds": res.timings["generate_seconds"]}
            final = {"finish_reason": res.finish_reason, "usage": res.usage(), "timings": timings}
            outcome.update(final, text=res.text)
        except BaseException as e:  # noqa: BLE001 - every failure ends the stream with a class
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            cls, msg = error_class(e)
            if not isinstance(e, TrainerError):
                log.exception("inference %s failed", rid)
            final = {"error": {"class": cls, "message": msg}}
            outcome.update(final)
        finally:
            if pinned:
                self.cache.release(pinned)
            with self._lock:
                self._active.pop(rid, None)
        if not poster.dropped:
            poster.finish(final)
        outcome.update(posts=poster.posts, dropped=poster.dropped)
        log.info("inference %s: %s", rid, outcome.get("finish_reason") or outcome.get("error"))
        return outcome


def local_models() -> list[str]:
    """Base model ids this machine can load without the Hub: the models directory
    (``<org>--<name>`` or ``<org>/<name>`` with a config.json) and packaged GGUF models."""
    from ..models import PACKAGED_GGUF, find_packaged_gguf, models_dir

    out: list[str] = []
    root = models_dir()
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.name.startswith("."):
                continue
            if (p / "config.json").is_file():
                out.append(p.name.replace("--", "/", 1))
            elif p.is_dir():
                out.extend(f"{p.name}/{q.name}" for q in sorted(p.iterdir()) if (q / "config.json").is_file())
    for mid in PACKAGED_GGUF:
        if mid not in out and find_packaged_gguf(mid) is not None:
            out.append(mid)
    return out
