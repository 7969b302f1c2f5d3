"""An in-memory BrightRun agent-protocol server for tests (docs/agent-protocol.md).

It checks what the Go server checks where an agent could get it wrong: bearer
tokens per job and attempt (404 for another job, 409 once superseded), JSON
bodies with no unknown fields and integer fields that are integers, stages,
progress 0-100, upload names and sizes, checkpoint/complete files present in
storage with their sizes. Failures can be injected per call.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STAGES = {"downloading", "preparing", "loading_model", "training", "evaluating", "saving", "uploading"}

# Allowed keys of every body (the Go server decodes with DisallowUnknownFields).
SCHEMAS = {
    "claim": {"agent": {"name", "version", "hostname"}, "capabilities": {"gpu_type", "gpu_count", "gpu_memory_gb", "distributed"},
              "wait_seconds": None},
    "heartbeat": {"stage": None, "progress": None, "epoch": None, "step": None, "total_steps": None,
                  "tokens_per_second": None, "eta_seconds": None},
    "metrics": {"points": None},
    "events": {"events": None},
    "uploads": {"kind": None, "step": None, "files": None},
    "checkpoint": {"step": None, "files": None},
    "complete": {"files": None, "summary": None, "eval": None},
    "fail": {"error_class": None, "message": None, "retryable": None, "traceback": None},
    "cancelled": {"step": None},
}
POINT_KEYS = {"step", "epoch", "training_loss", "validation_loss", "learning_rate", "gradient_norm",
              "tokens_per_second", "gpu_utilization", "gpu_memory_gb", "mfu", "timestamp"}
EVENT_KEYS = {"level", "message", "stage", "timestamp"}
FILE_KEYS = {"name", "size", "storage_path"}
EVAL_KEYS = {"base", "adapter", "samples"}
LOSS_KEYS = {"validation_loss", "perplexity"}
INT_FIELDS = {"heartbeat": ("epoch", "step", "total_steps"), "uploads": ("step",), "checkpoint": ("step",),
              "cancelled": ("step",)}


class BadRequest(Exception):
    pass


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        raise BadRequest(f"{where}: not an object")
    extra = set(obj) - set(allowed)
    if extra:
        raise BadRequest(f"{where}: unknown fields {sorted(extra)}")


class Job:
    def __init__(self, server: "FakeServer", config: dict, dataset: bytes, dataset_name: str, *, resume=None,
                 attempt: int = 1, job_id: str | None = None):
        self.id = job_id or str(uuid.uuid4())
        self.attempt = attempt
        self.token = f"brj_{self.id}_{attempt}_{uuid.uuid4().hex[:8]}"
        self.config = config
        self.dataset_key = f"datasets/{self.id}/{dataset_name}"
        self.dataset_name = dataset_name
        server.objects[self.dataset_key] = dataset
        self.resume = resume  # {"step": N, "files": [{"name", "key"}]}
        self.status = "queued"
        self.superseded = False
        self.cancel = False
        self.points: dict[int, dict] = {}
        self.point_posts: list[list[int]] = []     # steps of every stored batch, in order
        self.events: list[dict] = []
        self.heartbeats: list[dict] = []
        self.checkpoints: list[dict] = []
        self.uploads: list[dict] = []
        self.complete: dict | None = None
        self.fail: dict | None = None
        self.cancelled: dict | None = None
        self.calls: list[str] = []                 # every job call, accepted or not
        self.cancel_answered_at: int | None = None


class FakeServer:
    def __init__(self, port: int = 0, *, agent_token: str = "bra_test", lease_seconds: float = 60,
                 heartbeat_seconds: float = 0.3, max_wait: float = 2.0):
        self.agent_token = agent_token
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.max_wait = max_wait
        self.lock = threading.RLock()
        self.queue: list[Job] = []
        self.jobs: dict[str, Job] = {}
        self.objects: dict[str, bytes] = {}
        self.claims: list[dict] = []
        self.inject: dict[str, list] = {}     # call -> list of 503/500/429/"drop" consumed in order
        self.hooks: dict[str, callable] = {}  # call -> fn(job, body) run before the answer (under the lock)
        self.errors: list[str] = []           # 400s we answered (the agent sent something wrong)
        self.puts_without_length = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._storage_get(self)

            def do_PUT(self):
                outer._storage_put(self)

            def do_POST(self):
                outer._post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- control -------------------------------------------------------------------

    def start(self) -> "FakeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_job(self, config: dict, dataset: bytes, dataset_name: str = "data.jsonl", **kw) -> Job:
        with self.lock:
            j = Job(self, config, dataset, dataset_name, **kw)
            self.jobs[j.id] = j
            self.queue.append(j)
            return j

    def signed(self, key: str, method: str = "GET") -> str:
        return f"{self.url}/storage/{key}?m={method}&sig=ok"

    # -- HTTP helpers --------------------------------------------------------------

    @staticmethod
    def _send(h, status: int, obj) -> None:
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _ok(self, h, data) -> None:
        self._send(h, 200, {"success": True, "data": data})

    def _err(self, h, status: int, msg: str) -> None:
        self._send(h, status, {"error": msg})

    def _storage_get(self, h) -> None:
        u = urlparse(h.path)
        key = u.path[len("/storage/"):]
        data = self.objects.get(key)
        if not u.path.startswith("/storage/") or data is None:
            return self._err(h, 404, "no such object")
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _storage_put(self, h) -> None:
        u = urlparse(h.path)
        key = u.path[len("/storage/"):]
        q = parse_qs(u.query)
        if q.get("m") != ["PUT"]:
            return self._err(h, 403, "not a signed upload URL")
        length = h.headers.get("Content-Length")
        if length is None:
            self.puts_without_length += 1
            return self._err(h, 411, "Content-Length required")
        n = int(length)
        if n > int(q["max"][0]):
            return self._err(h, 413, "too large")
        data = h.rfile.read(n)
        with self.lock:
            self.objects[key] = data
        h.send_response(200)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _post(self, h) -> None:
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n)
        path = urlparse(h.path).path
        auth = h.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return self._err(h, 400, "malformed JSON")
        if h.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self._err(h, 415, "send JSON")
        if path == "/api/agent/claim":
            return self._claim(h, tok, body)
        parts = path.strip("/").split("/")
        if len(parts) != 5 or parts[:3] != ["api", "agent", "jobs"]:
            return self._err(h, 404, "not found")
        jid, call = parts[3], parts[4]
        with self.lock:
            job = self.jobs.get(jid)
            if job is not None:
                job.calls.append(call)
            inj = self.inject.get(call)
            if inj:
                what = inj.pop(0)
                if what == "drop":
                    h.close_connection = True
                    try:
                        h.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                return self._err(h, what, "injected failure")
        if not tok.startswith("brj_"):
            return self._err(h, 401, "send the job token")
        tjid = tok[4:].split("_")[0]
        if job is None or tjid != jid:
            return self._err(h, 404, "training job not found")
        with self.lock:
            if job.superseded or tok != job.token:
                return self._err(h, 409, "this attempt was superseded: stop working on it")
            try:
                self._validate(call, body)
                if call in self.hooks:
                    self.hooks[call](job, body)
                    if job.superseded:
                        return self._err(h, 409, "this attempt was superseded: stop working on it")
                data = getattr(self, "_call_" + call)(job, body)
            except BadRequest as e:
                self.errors.append(f"{call}: {e}")
                return self._err(h, 400, str(e))
        return self._ok(h, data)

    def _validate(self, call: str, body) -> None:
        if call not in SCHEMAS:
            raise BadRequest(f"unknown call {call}")
        _check_keys(body, SCHEMAS[call], call)
        for k in INT_FIELDS.get(call, ()):
            if k in body and not _is_int(body[k]):
                raise BadRequest(f"{call}.{k} must be an integer, got {body[k]!r}")
        if call == "metrics":
            for p in body["points"]:
                _check_keys(p, POINT_KEYS, "point")
                if not _is_int(p.get("step")):
                    raise BadRequest("point.step must be an integer")
        if call == "events":
            for e in body["events"]:
                _check_keys(e, EVENT_KEYS, "event")
        if call in ("uploads", "checkpoint", "complete"):
            for f in body.get("files") or []:
                _check_keys(f, FILE_KEYS, "file")
                if not _is_int(f.get("size")) or f["size"] <= 0:
                    raise BadRequest(f"file size {f.get('size')!r}")
                if f["name"].startswith("/") or ".." in f["name"].split("/"):
                    raise BadRequest(f"bad name {f['name']}")
        if call == "complete" and body.get("eval") is not None:
            _check_keys(body["eval"], EVAL_KEYS, "eval")
            for side in ("base", "adapter"):
                _check_keys(body["eval"].get(side) or {}, LOSS_KEYS, f"eval.{side}")

    # -- calls ---------------------------------------------------------------------------

    def _claim(self, h, tok, body) -> None:
        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        try:
            _check_keys(body, SCHEMAS["claim"], "claim")
            _check_keys(body["agent"], SCHEMAS["claim"]["agent"], "claim.agent")
            _check_keys(body["capabilities"], SCHEMAS["claim"]["capabilities"], "claim.capabilities")
        except BadRequest as e:
            self.errors.append(str(e))
            return self._err(h, 400, str(e))
        self.claims.append(body)
        deadline = time.monotonic() + min(float(body.get("wait_seconds") or 0), self.max_wait)
        while True:
            with self.lock:
                if self.queue:
                    job = self.queue.pop(0)
                    job.status = "initializing"
                    return self._ok(h, {"job": self._assignment(job)})
            if time.monotonic() >= deadline:
                return self._ok(h, {"job": None})
            time.sleep(0.05)  # the long-poll claim, as the real server does it (it polls its database)

    def _assignment(self, job: Job) -> dict:
        a = {"id": job.id, "attempt": job.attempt, "token": job.token, "lease_seconds": self.lease_seconds,
             "heartbeat_seconds": self.heartbeat_seconds, "config": job.config,
             "dataset": {"url": self.signed(job.dataset_key), "name": job.dataset_name,
                         "size": len(self.objects[job.dataset_key])},
             "dataset_format": "brightrun_lora_v4_jsonl", "resume": None}
        if job.resume:
            a["resume"] = {"step": job.resume["step"],
                           "files": [{"name": f["name"], "url": self.signed(f["key"]), "size": len(self.objects[f["key"]])}
                                     for f in job.resume["files"]]}
        return a

    def _call_heartbeat(self, job: Job, b: dict):
        if b["stage"] not in STAGES:
            raise BadRequest(f"stage {b['stage']!r}")
        if not (0 <= b["progress"] <= 100):
            raise BadRequest("progress must be 0-100")
        job.heartbeats.append(dict(b, t=time.monotonic()))
        if b["stage"] in ("training", "evaluating", "saving", "uploading"):
            job.status = "running"
        if job.cancel and job.cancel_answered_at is None:
            job.cancel_answered_at = b["step"]
        return {"cancel": job.cancel, "lease_seconds": self.lease_seconds}

    def _call_metrics(self, job: Job, b: dict):
        for p in b["points"]:
            cur = job.points.setdefault(p["step"], {})
            cur.update({k: v for k, v in p.items() if v is not None})
        job.point_posts.append([p["step"] for p in b["points"]])
        return {"stored": len(b["points"])}

    def _call_events(self, job: Job, b: dict):
        job.events.extend(b["events"])
        return {"stored": len(b["events"])}

    def _prefix(self, job: Job, kind: str, step: int) -> str:
        if kind == "checkpoint":
            return f"models/{job.id}/checkpoints/step-{step}/"
        if kind == "final":
            return f"models/{job.id}/adapter/"
        raise BadRequest("kind")

    def _call_uploads(self, job: Job, b: dict):
        prefix = self._prefix(job, b["kind"], b.get("step") or 0)
        job.uploads.append(b)
        out = []
        for f in b["files"]:
            key = prefix + f["name"]
            out.append({"name": f["name"], "url": f"{self.url}/storage/{key}?m=PUT&max={f['size']}&sig=ok",
                        "method": "PUT", "headers": {"Content-Type": "application/octet-stream"},
                        "size": f["size"], "storage_path": key})
        return {"uploads": out}

    def _verify(self, job, kind, step, files) -> list[dict]:
        if not files:
            raise BadRequest("list the uploaded files")
        out = []
        for f in files:
            key = self._prefix(job, kind, step) + f["name"]
            if key not in self.objects:
                raise BadRequest(f"{f['name']} was not uploaded")
            if len(self.objects[key]) != f["size"]:
                raise BadRequest(f"{f['name']}: {len(self.objects[key])} bytes stored, {f['size']} declared")
            out.append({"name": f["name"], "size": f["size"], "key": key})
        return out

    def _call_checkpoint(self, job: Job, b: dict):
        files = self._verify(job, "checkpoint", b["step"], b["files"])
        job.checkpoints.append({"step": b["step"], "files": files})
        return {"step": b["step"]}

    def _call_complete(self, job: Job, b: dict):
        files = self._verify(job, "final", 0, b["files"])
        names = {f["name"] for f in files}
        for need in ("adapter_config.json", "adapter_model.safetensors"):
            if need not in names:
                raise BadRequest(f"{need} missing")
        job.complete = dict(b, stored=files)
        job.status = "completed"
        return {"status": "completed", "final_cost": 0, "artifact_id": "a1"}

    def _call_fail(self, job: Job, b: dict):
        job.fail = b
        job.status = "failed"
        return {"status": "failed"}

    def _call_cancelled(self, job: Job, b: dict):
        job.cancelled = b
        job.status = "cancelled"
        return {"status": "cancelled"}
