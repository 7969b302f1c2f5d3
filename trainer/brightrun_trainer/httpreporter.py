"""The agent protocol client (docs/agent-protocol.md) and the HTTP reporter.

:class:`Api` wraps the JSON calls (envelopes, bearer tokens, error kinds).
:class:`HttpReporter` turns trainer records into protocol calls from
background threads, so training never waits on the network:

- ``metrics``/``eval`` records become metric points keyed by step, posted in
  arrival order in batches (every ``flush_seconds`` or ``batch_points``
  points). A batch that fails with a network error, 5xx or 429 is retried
  as is with exponential backoff (capped at 10 s) until it is stored, so no
  point is lost and none is posted twice. A batch the server rejects (other
  4xx) is dropped and reported as an error event.
- ``stage``/``progress``/``metrics`` feed the heartbeat thread, which posts
  every ``heartbeat_seconds`` (and at once on a stage change); a
  ``{"cancel": true}`` answer sets the cancel flag the trainer polls after
  every optimizer step.
- ``checkpoint`` records: the checkpoint's files are hard-linked into a
  staging directory (so the trainer may rotate the original) and uploaded in
  order by a third thread (``/uploads`` kind checkpoint, PUT to the signed
  URLs, ``/checkpoint``). A failed upload is logged as an event, not fatal.
- important records become events (``/events``, batched).

409 (the attempt was superseded) or 401/403/404 (the job token is not valid
for this job) on any call means the attempt is dead: the cancel flag is set,
``dead`` holds the reason and nothing more is sent.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import shutil
import threading
import time
from pathlib import Path

from .reporting import Reporter, _clean

log = logging.getLogger("brightrun.agent")

STAGES = ("downloading", "preparing", "loading_model", "training", "evaluating", "saving", "uploading")

# Fields of a metric point (the server refuses unknown fields).
_POINT_FLOATS = ("training_loss", "validation_loss", "train_mean_token_accuracy", "valid_mean_token_accuracy",
                 "learning_rate", "gradient_norm", "tokens_per_second",
                 "gpu_utilization", "gpu_memory_gb", "mfu")


# ----------------------------------------------------------------------------
# HTTP


class ApiError(Exception):
    """A call that did not succeed."""

    retryable = False

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableError(ApiError):
    """Network error, 5xx or 429: the same call may succeed later."""

    retryable = True


class AttemptLost(ApiError):
    """409 (superseded) or 401/403/404 on a job call: stop working on the attempt."""


class Rejected(ApiError):
    """Any other 4xx: the request itself is wrong; retrying will not help."""


class Stopped(Exception):
    """A retry loop gave up because it was told to stop or ran out of time."""


def utc_iso(ts: float | None = None) -> str:
    t = _dt.datetime.fromtimestamp(time.time() if ts is None else ts, _dt.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_from(status: int, body: bytes, what: str) -> ApiError:
    msg = ""
    try:
        j = json.loads(body or b"{}")
        msg = j.get("error") or ""
        if j.get("details"):
            msg += f" {json.dumps(j['details'])}"
    except Exception:
        msg = (body or b"")[:300].decode("utf-8", "replace")
    text = f"{what}: HTTP {status}: {msg}".strip()
    if status >= 500 or status in (408, 429):
        return RetryableError(text, status)
    if status in (401, 403, 404, 409):
        return AttemptLost(text, status)
    return Rejected(text, status)


class Api:
    """JSON calls to the BrightRun server and transfers to signed URLs."""

    def __init__(self, server: str, *, timeout: float = 30.0, client=None):
        import httpx

        self.server = server.rstrip("/")
        self.http = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
                                           headers={"User-Agent": "brightrun-trainer-agent"})
        self._lock = threading.Lock()

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.server + "/" + path_or_url.lstrip("/")

    def post(self, path: str, token: str, body: dict, *, timeout: float | None = None) -> dict:
        """POST JSON; returns the envelope's ``data`` or raises an :class:`ApiError`."""
        import httpx

        content = json.dumps(_clean(body), ensure_ascii=False, allow_nan=False).encode("utf-8")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        kw = {} if timeout is None else {"timeout": timeout}
        try:
            r = self.http.post(self.url(path), content=content, headers=headers, **kw)
        except httpx.TransportError as e:
            raise RetryableError(f"POST {path}: {type(e).__name__}: {e}") from None
        if r.status_code // 100 != 2:
            raise _error_from(r.status_code, r.content, f"POST {path}")
        try:
            j = r.json()
        except ValueError:
            raise RetryableError(f"POST {path}: the answer is not JSON") from None
        if isinstance(j, dict) and "data" in j:
            return j["data"] if j["data"] is not None else {}
        return j if isinstance(j, dict) else {}

    def download(self, url: str, dest: Path, *, size: int | None = None, stop: threading.Event | None = None) -> int:
        """Stream a signed GET URL to ``dest`` (via ``dest.part``); returns the byte count."""
        import httpx

        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        n = 0
        try:
            with self.http.stream("GET", self.url(url), timeout=httpx.Timeout(60.0, connect=10.0)) as r:
                if r.status_code // 100 != 2:
                    r.read()
                    err = _error_from(r.status_code, r.content, f"GET {dest.name}")
                    # An expired or refused signed URL is not the attempt's fault.
                    raise err if isinstance(err, RetryableError) else Rejected(str(err), r.status_code)
                with open(part, "wb") as fh:
                    for chunk in r.iter_bytes(1 << 20):
                        if stop is not None and stop.is_set():
                            raise Stopped("download stopped")
                        fh.write(chunk)
                        n += len(chunk)
        except httpx.TransportError as e:
            raise RetryableError(f"GET {dest.name}: {type(e).__name__}: {e}") from None
        if size is not None and size > 0 and n != size:
            raise RetryableError(f"GET {dest.name}: got {n} bytes, expected {size}")
        os.replace(part, dest)
        return n

    def put_file(self, url: str, path: Path, size: int, headers: dict | None = None, method: str = "PUT") -> None:
        """Stream a file to a signed upload URL with an exact Content-Length."""
        import httpx

        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() not in ("content-length", "host")}
        hdrs["Content-Length"] = str(size)  # signed by S3; set explicitly so the body is not chunked

        def body():
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    yield chunk

        try:
            r = self.http.request(method or "PUT", self.url(url), content=body(), headers=hdrs,
                                  timeout=httpx.Timeout(300.0, connect=10.0))
        except httpx.TransportError as e:
            raise RetryableError(f"PUT {path.name}: {type(e).__name__}: {e}") from None
        if r.status_code // 100 != 2:
            err = _error_from(r.status_code, r.content, f"PUT {path.name}")
            raise err if isinstance(err, RetryableError) else Rejected(str(err), r.status_code)

    def close(self) -> None:
        self.http.close()


def retry(fn, *, what: str, stop: threading.Event | None = None, deadline: float | None = None,
          first: float = 0.5, cap: float = 10.0, on_retry=None):
    """Call ``fn`` until it succeeds or fails with a non-retryable error.

    Retries :class:`RetryableError` with exponential backoff (``first``,
    doubling, capped at ``cap``); raises :class:`Stopped` when ``stop`` is set
    or ``deadline`` (a ``time.monotonic()`` value) would pass.
    """
    delay = first
    attempt = 0
    while True:
        if stop is not None and stop.is_set():
            raise Stopped(f"{what}: stopped")
        try:
            return fn()
        except RetryableError as e:
            attempt += 1
            if deadline is not None and time.monotonic() + delay > deadline:
                raise Stopped(f"{what}: gave up after {attempt} tries: {e}") from None
            if attempt == 1 or attempt % 10 == 0:
                log.warning("%s failed (%s); retrying in %.1f s", what, e, delay)
            if on_retry:
                on_retry(e)
            if stop is not None:
                if stop.wait(delay):
                    raise Stopped(f"{what}: stopped") from None
            else:
                time.sleep(delay)
            delay = min(cap, delay * 2)


# ----------------------------------------------------------------------------
# Files


def dir_files(root: Path, *, exclude_dirs: tuple[str, ...] = ()) -> list[tuple[str, Path, int]]:
    """(relative name with '/', path, size) of every regular file under ``root``, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in exclude_dirs]
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink() and not f.endswith(".part"):
                out.append(((rel_dir / f).as_posix(), p, p.stat().st_size))
    return sorted(out)


def safe_relative(name: str) -> Path:
    """A server-given relative file name as a safe relative path."""
    p = Path(name.replace("\\", "/"))
    if not name or p.is_absolute() or any(part in ("..", "") for part in p.parts) or name.startswith("/"):
        raise ValueError(f"unsafe file name {name!r}")
    return p


def stage_copy(src: Path, dest: Path) -> Path:
    """Hard-link (or copy) every file of ``src`` into ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    for rel, path, _ in dir_files(src):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return dest


# ----------------------------------------------------------------------------
# The reporter


def _finite(v, limit: float = 1e6):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    if not math.isfinite(v) or abs(v) > limit:
        return None
    return v


def _fraction(v):
    """A token accuracy: a number in [0, 1], else None (the server refuses others)."""
    v = _finite(v)
    return v if v is not None and 0.0 <= v <= 1.0 else None


class HttpReporter(Reporter):
    """Reports one job attempt to the server (see the module docstring)."""

    def __init__(self, api: Api, job_id: str, token: str, *, heartbeat_seconds: float = 10.0,
                 flush_seconds: float = 2.0, batch_points: int = 50, staging_dir: str | Path | None = None,
                 start: bool = True):
        super().__init__()
        self.api, self.job_id, self.token = api, job_id, token
        self.heartbeat_seconds = max(0.05, float(heartbeat_seconds or 10.0))
        self.flush_seconds = flush_seconds
        self.batch_points = batch_points
        self.staging_dir = Path(staging_dir) if staging_dir else None
        self.dead: str | None = None          # why the attempt is lost (409/401/404)
        self.server_cancel = threading.Event()
        self.cancel_step: int | None = None   # last step known when the cancel arrived
        self.sent_points = 0
        self.dropped_points = 0
        self.checkpoints_registered: list[int] = []

        self._cond = threading.Condition()
        self._points: dict[int, dict] = {}   # pending, by step, in arrival order
        self._inflight: list[dict] = []
        self._events: list[dict] = []
        self._events_inflight: list[dict] = []
        self._flush_now = False
        self._closing = threading.Event()    # senders: send what is left, then exit
        self._abandon = threading.Event()    # stop retrying (dead, or out of time)
        self._hb_stop = threading.Event()
        self._hb_wake = threading.Event()
        self._ckpt_abort = threading.Event()
        self._ckpts: list[tuple[int, Path]] = []
        self._ckpt_busy = False

        self._state = {"stage": "downloading", "progress": 0.0, "epoch": 0, "step": 0, "total_steps": 0,
                       "tokens_per_second": 0.0, "eta_seconds": 0.0}
        self._stage_since = time.monotonic()
        self._rate: tuple[float, int] | None = None  # (monotonic time, step) of the first step seen
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        for name, fn in (("metrics", self._sender), ("heartbeat", self._heartbeat), ("checkpoints", self._uploader)):
            t = threading.Thread(target=fn, name=f"brightrun-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _path(self, call: str) -> str:
        return f"/api/agent/jobs/{self.job_id}/{call}"

    def post(self, call: str, body: dict, **kw) -> dict:
        """One job call; marks the attempt dead on 409/401/403/404."""
        try:
            return self.api.post(self._path(call), self.token, body, **kw)
        except AttemptLost as e:
            self._die(str(e))
            raise

    def _die(self, reason: str) -> None:
        if self.dead is None:
            self.dead = reason
            log.error("attempt lost: %s; stopping", reason)
        self.request_cancel()
        self._abandon.set()
        self._hb_stop.set()
        self._hb_wake.set()
        with self._cond:
            self._cond.notify_all()

    def request_cancel(self) -> None:
        if not self.cancel_requested():
            self.cancel_step = self._state["step"]
        super().request_cancel()

    # -- records ---------------------------------------------------------------

    def emit(self, record: dict) -> None:
        t = record.get("type")
        if t == "stage":
            self._on_stage(record)
        elif t == "progress":
            self._on_progress(record)
        elif t == "metrics":
            self._on_metrics(record)
        elif t == "eval":
            self._on_eval(record)
        elif t == "eval_progress":
            self._on_eval_progress(record)
        elif t == "checkpoint":
            self._on_checkpoint(record)
        elif t == "plan":
            start = record.get("start_step") or 0
            self._set(total_steps=int(record.get("total_steps") or 0))
            self.log("info", f"plan: {record.get('train_examples')} training / {record.get('validation_examples')} "
                             f"validation examples, {record.get('total_steps')} steps "
                             f"({record.get('steps_per_epoch')} per epoch)"
                             + (f", resuming after step {start}" if start else "")
                             + _world_note(record))
        elif t == "status":
            st = record.get("status")
            if st == "failed":
                self.log("error", f"failed ({record.get('error_class')}): {record.get('message')}")
            elif st == "cancelled":
                self.log("info", f"stopped at step {record.get('step')}")
            elif st == "completed":
                self.log("info", f"training completed at step {record.get('step')}")

    def _set(self, **kw) -> None:
        with self._cond:
            self._state.update(kw)

    def _on_stage(self, r: dict) -> None:
        stage = r.get("stage")
        if stage not in STAGES:
            return
        prev = self._state["stage"]
        now = time.monotonic()
        if prev == "loading_model" and stage != "loading_model":
            self.log("info", f"loaded the model in {now - self._stage_since:.1f} s", stage=prev)
        if stage != prev:
            self._stage_since = now
        self._set(stage=stage)
        msg = {"loading_model": f"loading {r.get('model')} on {r.get('device')}",
               "training": f"training {r.get('total_steps')} steps"
                           + (f" from step {r.get('start_step')}" if r.get("start_step") else ""),
               "evaluating": f"evaluating at step {r.get('step')}" if r.get("step") is not None else "evaluating",
               "saving": "saving the adapter", "uploading": "uploading the adapter",
               "downloading": "downloading the dataset"}.get(stage, stage)
        if stage == "preparing" and r.get("detail"):
            msg = f"preparing: {r['detail']}"
        if stage != prev or stage == "preparing":
            self.log("info", msg, stage=stage)
        if stage != prev:
            self._hb_wake.set()

    def _on_progress(self, r: dict) -> None:
        step, total = int(r.get("step") or 0), int(r.get("total_steps") or 0)
        now = time.monotonic()
        if self._rate is None:
            self._rate = (now, step)
            eta = 0.0
        else:
            t0, s0 = self._rate
            eta = (total - step) * (now - t0) / (step - s0) if step > s0 else 0.0
        epoch = r.get("epoch") or 0.0
        self._set(step=step, total_steps=total, epoch=int(math.floor(float(epoch) + 1e-9)),
                  progress=min(100.0, max(0.0, 100.0 * step / total)) if total else 0.0, eta_seconds=max(0.0, eta))

    def _point(self, step: int, fields: dict) -> None:
        with self._cond:
            p = self._points.get(step)
            if p is None:
                self._points[step] = dict(fields, step=step)
            else:
                p.update({k: v for k, v in fields.items() if v is not None})
            if len(self._points) >= self.batch_points:
                self._cond.notify_all()

    def _on_metrics(self, r: dict) -> None:
        step = int(r["step"])
        tps = _finite(r.get("tokens_per_second"), 1e12)
        if tps is not None:
            self._set(tokens_per_second=tps)
        gpu_mem = r.get("gpu_memory_used_gb", r.get("gpu_memory_allocated_gb"))
        self._point(step, {
            "epoch": _finite(r.get("epoch")) or 0.0,
            "training_loss": _finite(r.get("training_loss")),
            "train_mean_token_accuracy": _fraction(r.get("train_mean_token_accuracy")),
            "learning_rate": _finite(r.get("learning_rate")),
            "gradient_norm": _finite(r.get("grad_norm"), 1e12),
            "tokens_per_second": tps,
            "gpu_utilization": _finite(r.get("gpu_utilization")),
            "gpu_memory_gb": _finite(gpu_mem),
            "mfu": _finite(r.get("mfu")),
            "timestamp": utc_iso(r.get("time")),
        })

    def _on_eval(self, r: dict) -> None:
        if r.get("step") is None:
            return
        step = int(r["step"])
        vl = _finite(r.get("validation_loss"))
        if vl is not None:
            self._point(step, {"epoch": _finite(r.get("epoch")) or 0.0, "validation_loss": vl,
                               "valid_mean_token_accuracy": _fraction(r.get("valid_mean_token_accuracy")),
                               "timestamp": utc_iso(r.get("time"))})
        if r.get("final"):
            self.log("info", f"final evaluation: validation loss {_fmt(vl)} (base model {_fmt(r.get('base_validation_loss'))})",
                     stage="evaluating")
        else:
            self.log("info", f"validation loss {_fmt(vl)} at step {step}", stage="evaluating")

    def _on_eval_progress(self, r: dict) -> None:
        """The final evaluation's parts: during the evaluating stage the
        heartbeat's progress is the share of evaluation done and its ETA the
        time the remaining parts should take at the pace so far, so the page
        does not sit at "100 %, ETA —" while answers are generated."""
        done, total = int(r.get("done") or 0), int(r.get("total") or 0)
        if total <= 0:
            return
        elapsed = time.monotonic() - self._stage_since
        eta = elapsed / done * (total - done) if done else 0.0
        self._set(progress=min(100.0, 100.0 * done / total), eta_seconds=eta)
        if done:
            self.log("info", f"evaluating {done}/{total}: {r.get('part')}", stage="evaluating")
        self._hb_wake.set()

    def _on_checkpoint(self, r: dict) -> None:
        if self.cancel_requested() or self.staging_dir is None or self._ckpt_abort.is_set():
            return  # the checkpoint written on a stop is not uploaded
        step, src = int(r["step"]), Path(r["path"])
        try:
            staged = stage_copy(src, self.staging_dir / f"step-{step:06d}")
        except OSError as e:
            self.log("warn", f"checkpoint at step {step} not uploaded: cannot stage {src}: {e}")
            return
        with self._cond:
            self._ckpts.append((step, staged))
            self._cond.notify_all()

    def log(self, level: str, message: str, *, stage: str | None = None) -> None:
        """Queue an event for the job's log (and write it to the agent's log)."""
        getattr(log, {"warn": "warning"}.get(level, level), log.info)("[%s] %s", self.job_id[:8], message)
        with self._cond:
            self._events.append({"level": level, "message": message[:4000], "stage": stage or self._state["stage"],
                                 "timestamp": utc_iso()})

    # -- metrics and events sender ---------------------------------------------

    def _take(self) -> list[dict]:
        steps = list(self._points)[: self.batch_points]
        return [self._points.pop(s) for s in steps]

    def _sender(self) -> None:
        last = time.monotonic()
        while True:
            with self._cond:
                while True:
                    if self._abandon.is_set():
                        return
                    due = time.monotonic() - last >= self.flush_seconds
                    have = bool(self._inflight or self._points or self._events_inflight or self._events)
                    if have and (due or self._flush_now or self._closing.is_set()
                                 or len(self._points) >= self.batch_points):
                        break
                    if not have and self._closing.is_set():
                        return
                    self._cond.wait(0.2)
                if not self._inflight:
                    self._inflight = self._take()
            last = time.monotonic()
            try:
                if self._inflight:
                    batch = self._inflight
                    ans = retry(lambda: self.post("metrics", {"points": batch}), what="metrics", stop=self._abandon)
                    with self._cond:
                        self.sent_points += len(batch)
                        self._inflight = []
                    log.debug("stored %s metric points", ans.get("stored"))
                    continue  # more points first, in order
                with self._cond:
                    if not self._events_inflight:
                        self._events_inflight, self._events = self._events[:500], self._events[500:]
                evs = self._events_inflight
                if evs:
                    retry(lambda: self.post("events", {"events": evs}), what="events", stop=self._abandon)
                with self._cond:
                    self._events_inflight = []
                    if not (self._points or self._events):
                        self._flush_now = False
                        self._cond.notify_all()
            except Rejected as e:
                with self._cond:
                    if self._inflight:
                        n = len(self._inflight)
                        self.dropped_points += n
                        self._inflight = []
                        self._events.append({"level": "error", "stage": self._state["stage"], "timestamp": utc_iso(),
                                             "message": f"{n} metric points were rejected by the server: {e}"[:4000]})
                        log.error("dropped %d metric points: %s", n, e)
                    else:
                        log.error("dropped %d events: %s", len(self._events_inflight), e)
                        self._events_inflight = []
            except (Stopped, AttemptLost):
                return
            except Exception:  # noqa: BLE001 - keep the sender alive
                log.exception("metrics sender")
                time.sleep(1.0)

    def pending(self) -> int:
        with self._cond:
            return len(self._points) + len(self._inflight) + len(self._events) + len(self._events_inflight)

    def flush(self, timeout: float = 60.0) -> bool:
        """Send every queued point and event now; True when all were stored."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_now = True
            self._cond.notify_all()
            while self.pending() and not self._abandon.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return self.pending() == 0

    # -- heartbeats --------------------------------------------------------------

    def heartbeat_body(self) -> dict:
        with self._cond:
            s = dict(self._state)
        return {"stage": s["stage"], "progress": round(float(s["progress"]), 3), "epoch": int(s["epoch"]),
                "step": int(s["step"]), "total_steps": int(s["total_steps"]),
                "tokens_per_second": round(float(s["tokens_per_second"] or 0.0), 3),
                "eta_seconds": round(float(s["eta_seconds"] or 0.0), 1)}

    def _heartbeat(self) -> None:
        failures = 0
        while not self._hb_stop.is_set():
            self._hb_wake.clear()
            wait = self.heartbeat_seconds
            try:
                ans = self.post("heartbeat", self.heartbeat_body(), timeout=max(10.0, self.heartbeat_seconds))
                failures = 0
                if ans.get("cancel"):
                    if not self.server_cancel.is_set():
                        # reason "pause": stop the same way; the server keeps the job paused at its last checkpoint
                        log.warning("[%s] the server asked to %s; stopping after this step", self.job_id[:8],
                                    ans.get("reason") or "cancel")
                    self.server_cancel.set()
                    self.request_cancel()
            except RetryableError as e:
                failures += 1
                wait = min(self.heartbeat_seconds, 0.5 * 2 ** min(failures, 5))
                if failures == 1 or failures % 10 == 0:
                    log.warning("heartbeat failed (%s); retrying in %.1f s", e, wait)
            except AttemptLost:
                return
            except Rejected as e:
                log.error("heartbeat rejected: %s", e)
            except Exception:  # noqa: BLE001
                log.exception("heartbeat")
            if self._hb_stop.is_set():
                return
            self._hb_wake.wait(wait)

    def stop_heartbeat(self) -> None:
        self._hb_stop.set()
        self._hb_wake.set()
        for t in self._threads:
            if t.name == "brightrun-heartbeat":
                t.join(timeout=15)

    # -- checkpoint uploads -------------------------------------------------------

    def _uploader(self) -> None:
        while True:
            with self._cond:
                while not self._ckpts:
                    if self._ckpt_abort.is_set() or self._abandon.is_set() or self._closing.is_set():
                        return
                    self._cond.wait(0.2)
                # Only the newest pending checkpoint matters.
                stale, (step, staged) = self._ckpts[:-1], self._ckpts[-1]
                self._ckpts = []
                self._ckpt_busy = True
            for _, d in stale:
                shutil.rmtree(d, ignore_errors=True)
            try:
                if not (self._ckpt_abort.is_set() or self._abandon.is_set()):
                    files = self.upload_dir("checkpoint", staged, step=step, stop=self._ckpt_abort,
                                            deadline=time.monotonic() + 600)
                    retry(lambda: self.post("checkpoint", {"step": step, "files": files}), what="checkpoint",
                          stop=self._ckpt_abort, deadline=time.monotonic() + 120)
                    self.checkpoints_registered.append(step)
                    log.info("[%s] checkpoint at step %d uploaded (%d files)", self.job_id[:8], step, len(files))
            except (Stopped, AttemptLost):
                pass
            except Exception as e:  # noqa: BLE001 - a lost checkpoint is not fatal
                self.log("warn", f"checkpoint at step {step} was not uploaded: {e}")
            finally:
                shutil.rmtree(staged, ignore_errors=True)
                with self._cond:
                    self._ckpt_busy = False
                    self._cond.notify_all()

    def abort_checkpoints(self) -> None:
        """Skip queued checkpoint uploads and stop the one in progress."""
        self._ckpt_abort.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            if t.name == "brightrun-checkpoints":
                t.join(timeout=30)

    def wait_checkpoints(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ckpts or self._ckpt_busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def upload_dir(self, kind: str, root: Path, *, step: int = 0, stop: threading.Event | None = None,
                   deadline: float | None = None, exclude_dirs: tuple[str, ...] = ()) -> list[dict]:
        """Upload every file under ``root`` (names relative to it); returns the [{name, size}] list."""
        files = []
        for rel, path, size in dir_files(root, exclude_dirs=exclude_dirs):
            if size <= 0:
                self.log("warn", f"{rel} is empty; not uploaded")
                continue
            files.append((rel, path, size))
        if not files:
            raise Rejected(f"{root}: no files to upload")
        out = []
        for i in range(0, len(files), 200):
            chunk = files[i:i + 200]
            body = {"kind": kind, "step": step, "files": [{"name": rel, "size": size} for rel, _, size in chunk]}
            ans = retry(lambda: self.post("uploads", body), what=f"{kind} upload URLs", stop=stop, deadline=deadline)
            by_name = {u["name"]: u for u in ans.get("uploads") or []}
            for rel, path, size in chunk:
                u = by_name.get(rel)
                if u is None:
                    raise Rejected(f"the server gave no upload URL for {rel}")
                retry(lambda: self.api.put_file(u["url"], path, size, u.get("headers"), u.get("method") or "PUT"),
                      what=f"upload {rel}", stop=stop, deadline=deadline)
                out.append({"name": rel, "size": size})
        return out

    # -- the end -----------------------------------------------------------------

    def close(self, timeout: float = 120.0) -> None:
        """Flush what is queued (bounded), then stop every thread."""
        if not self._abandon.is_set():
            self.flush(timeout)
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every thread now; queued points and events are not sent."""
        self._closing.set()
        self._ckpt_abort.set()
        self._hb_stop.set()
        self._hb_wake.set()
        self._abandon.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
        if self.staging_dir is not None:
            shutil.rmtree(self.staging_dir, ignore_errors=True)


def _world_note(plan: dict) -> str:
    """The plan event's words on the number of training processes (distributed jobs)."""
    ws, old = int(plan.get("world_size") or 1), plan.get("resumed_world_size")
    note = f", {ws} training processes (one per GPU)" if ws > 1 else ""
    if old and int(old) != ws:
        note += (f"; the checkpoint was written by {old} process(es): each step's examples are re-split "
                 f"between {ws}")
    return note


def _fmt(v) -> str:
    return "n/a" if not isinstance(v, (int, float)) else f"{v:.4f}"
