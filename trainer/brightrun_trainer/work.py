"""The agent's work loop: agent work that is not a training job
(docs/agent-protocol.md, "Agent work").

One thread long-polls ``POST /api/agent/work/claim`` for the kinds this agent
does (today ``preflight``) and runs one item at a time: download the dataset
through its signed URL, compute the exact token profile with the base model's
tokenizer and chat template (:func:`preflight.exact_profile`, the trainer's own
encoding; no model weights are loaded, no GPU is used) and post it with
``/complete``, or post ``/fail`` with the reason.

It runs beside the training loop and the inference loop and never waits for
either: a preflight costs a few seconds of one CPU core per dataset and model
(the tokenizer's Rust code), so a training job on the same agent slows down for
those seconds at most, and a queued training job is claimed by the training
loop whatever this thread does. (The first use of a model the agent only has as
a packaged GGUF file converts it once, under the same file lock training and
serving use, and caches it for all three.)
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from . import __version__
from .errors import classify
from .httpreporter import Api, AttemptLost, Rejected, Stopped, retry, safe_relative

log = logging.getLogger("brightrun.work")

KINDS = ["preflight"]
FINAL_POST_SECONDS = 120.0


class WorkLoop:
    def __init__(self, server: str, token: str, *, base_models: list[str], name: str | None = None,
                 work_dir: str | Path | None = None, wait_seconds: float = 20.0,
                 stopping: threading.Event | None = None):
        self.api = Api(server)
        self.token = token
        self.base_models = list(base_models)
        self.name = name or socket.gethostname()
        self.work_dir = Path(work_dir or tempfile.gettempdir()) / "work"
        self.wait_seconds = max(0.0, min(25.0, float(wait_seconds)))
        self.stopping = stopping or threading.Event()
        self.results: list[dict] = []        # one per item handled (tests, logs)
        self.disabled: str | None = None     # why the loop stopped claiming
        self._thread: threading.Thread | None = None

    def start(self) -> "WorkLoop":
        self._thread = threading.Thread(target=self.run, name="work-claim", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)   # a daemon: a long-poll in flight ends with the process

    def run(self) -> None:
        log.info("doing %s work for %s", ", ".join(KINDS), ", ".join(self.base_models))
        while not self.stopping.is_set():
            try:
                item = self.claim()
            except Exception:  # noqa: BLE001 - a malformed answer must not end the loop
                log.exception("work claim failed")
                self.stopping.wait(5.0)
                continue
            if item is None:
                if self.disabled:
                    return
                continue
            self.results.append(self.handle(item))

    def claim(self) -> dict | None:
        body = {"agent": {"name": self.name, "version": __version__, "hostname": socket.gethostname()},
                "kinds": KINDS, "base_models": self.base_models, "wait_seconds": self.wait_seconds}
        try:
            ans = retry(lambda: self.api.post("/api/agent/work/claim", self.token, body, timeout=self.wait_seconds + 30),
                        what="work claim", stop=self.stopping, cap=30.0)
        except Stopped:
            return None
        except (AttemptLost, Rejected) as e:
            # 404/405: a server without agent work; 401/403: a wrong token; 400: a claim it refuses.
            self.disabled = str(e)
            log.error("agent work is off: the server refused the work claim: %s", e)
            return None
        return ans.get("work") or None

    def handle(self, item: dict) -> dict:
        wid, kind = str(item.get("id")), item.get("kind")
        t0 = time.monotonic()
        d = Path(tempfile.mkdtemp(prefix="work-", dir=self._dir()))
        try:
            if kind != "preflight" or not isinstance(item.get("preflight"), dict):
                raise ValueError(f"this agent does not do {kind!r} work")
            result = {"preflight": self.preflight(item["preflight"], d)}
            path, outcome = f"/api/agent/work/{wid}/complete", "completed"
        except Exception as e:  # noqa: BLE001 - every failure is reported to the server
            err = classify(e)
            log.warning("work %s (%s) failed: %s", wid, kind, err.message)
            result = {"message": f"{err.error_class}: {err.message}"}
            path, outcome = f"/api/agent/work/{wid}/fail", "failed"
        finally:
            shutil.rmtree(d, ignore_errors=True)
        try:
            retry(lambda: self.api.post(path, self.token, result, timeout=60), what=f"work {wid} {outcome}",
                  stop=self.stopping, deadline=time.monotonic() + FINAL_POST_SECONDS)
        except (Stopped, AttemptLost, Rejected) as e:
            log.error("work %s: could not report %s: %s", wid, outcome, e)
            outcome = "unreported"
        secs = time.monotonic() - t0
        log.info("work %s (%s): %s in %.1f s", wid, kind, outcome, secs)
        return {"id": wid, "kind": kind, "outcome": outcome, "seconds": secs}

    def preflight(self, order: dict, d: Path) -> dict:
        from .preflight import exact_profile

        ds = order.get("dataset") or {}
        name = safe_relative(Path(str(ds.get("name") or "dataset.jsonl")).name or "dataset.jsonl")
        dest = d / name
        retry(lambda: self.api.download(ds["url"], dest, size=ds.get("size"), stop=self.stopping),
              what=f"download {name}", stop=self.stopping, deadline=time.monotonic() + FINAL_POST_SECONDS)
        share = float(order.get("validation_share", 0.1))
        return exact_profile(dest, str(order["base_model"]), validation_share=share)

    def _dir(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir
