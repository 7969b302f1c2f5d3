"""An in-memory BrightRun agent-protocol server for tests (docs/agent-protocol.md).

This is a test double at the protocol boundary: the real server is Go (internal/agentapi),
and the Go side's own tests and e2e tests run the real agent against it.

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
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STAGES = {"downloading", "preparing", "loading_model", "training", "evaluating", "saving", "uploading"}

# Allowed keys of every body come from the golden examples the Go server's
# wire types are tested against (testdata/golden/agent-protocol.json), so the
# agent is checked against the same definition as the server.
GOLDEN = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "golden" / "agent-protocol.json").read_text())


def _request(call: str) -> dict:
    return GOLDEN[call]["request"]


SCHEMAS = {call: {k: (set(v) if isinstance(v, dict) else None) for k, v in ex["request"].items()}
           for call, ex in GOLDEN.items() if not call.startswith("_")}
POINT_KEYS = set(_request("metrics")["points"][0])
EVENT_KEYS = set(_request("events")["events"][0])
FILE_KEYS = set(_request("checkpoint")["files"][0])
EVAL_KEYS = set(_request("complete")["eval"])
SAMPLE_KEYS = set(_request("complete")["eval"]["samples"][0])
SUMMARY_KEYS = set(_request("complete")["summary"])
SPLIT_STATS_KEYS = set(_request("complete")["summary"]["truncation"]["train"])
LOSS_KEYS = set(_request("complete")["eval"]["base"])
TIMING_KEYS = set(_request("inference_stream")["timings"])
FINISH_REASONS = {"stop", "length", "cancelled"}
INFERENCE_ERROR_CLASSES = {"oom", "config", "internal"}
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


class InferenceRequest:
    """A queued inference request and everything the agent streamed for it."""

    def __init__(self, base_model: str, messages: list[dict], params: dict, adapter: dict | None,
                 timeout_seconds: float = 300):
        self.id = "inf_" + uuid.uuid4().hex[:12]
        self.base_model = base_model
        self.messages = messages
        self.params = params
        self.adapter = adapter            # {"model_id", "version", "files": [{"name", "key"}]}
        self.timeout_seconds = timeout_seconds
        self.posts: list[dict] = []       # accepted stream bodies, in order (repeated seqs are not kept)
        self.repeats = 0                  # posts with a seq already seen
        self.cancel = False
        self.done = threading.Event()
        self.claimed_by: str | None = None

    @property
    def text(self) -> str:
        return "".join(p.get("text") or "" for p in self.posts)

    @property
    def final(self) -> dict | None:
        return self.posts[-1] if self.posts and self.posts[-1].get("done") else None


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
        self.inference_queue: list[InferenceRequest] = []
        self.inference: dict[str, InferenceRequest] = {}
        self.inference_claims: list[dict] = []
        self.stream_hooks: list[callable] = []   # fn(request, body) after a stream post is stored (under the lock)
        self.work_queue: list[dict] = []         # agent work items ({"id", "kind", "preflight": {...}})
        self.work_claimed: dict[str, dict] = {}  # id -> item, while an agent holds it
        self.work_results: dict[str, tuple[str, dict]] = {}  # id -> ("complete"|"fail", body)
        self.work_done = threading.Event()
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

    def add_inference(self, base_model: str, messages: list[dict], params: dict | None = None,
                      adapter: dict | None = None, **kw) -> InferenceRequest:
        with self.lock:
            r = InferenceRequest(base_model, messages, params or {}, adapter, **kw)
            self.inference[r.id] = r
            self.inference_queue.append(r)
            return r

    def add_preflight(self, base_model: str, dataset: bytes, dataset_name: str = "data.jsonl") -> str:
        with self.lock:
            wid = str(uuid.uuid4())
            key = f"datasets/work-{wid}/{dataset_name}"
            self.objects[key] = dataset
            self.work_queue.append({"id": wid, "kind": "preflight", "key": key, "name": dataset_name,
                                    "base_model": base_model})
            return wid

    def add_export(self, base_model: str, adapter: dict[str, bytes], fmt: str = "merged", *, dtype: str = "bfloat16",
                   gguf_type: str = "", file_name: str = "model-export.tar.gz") -> str:
        """Queue an export of an adapter (file name -> bytes) made on base_model."""
        with self.lock:
            wid = str(uuid.uuid4())
            keys = {}
            for name, data in adapter.items():
                keys[name] = f"models/adapter-{wid}/{name}"
                self.objects[keys[name]] = data
            self.work_queue.append({"id": wid, "kind": "export", "base_model": base_model, "format": fmt, "dtype": dtype,
                                    "gguf_type": gguf_type, "file_name": file_name, "adapter": keys,
                                    "key": f"models/exports/{wid}/{file_name}"})
            return wid

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

    def _injected(self, h, call: str) -> bool:
        """Answer the next failure injected for call, if any (under the lock):
        an HTTP status, or "drop" to close the connection unanswered."""
        inj = self.inject.get(call)
        if not inj:
            return False
        what = inj.pop(0)
        if what == "drop":
            h.close_connection = True
            try:
                h.connection.shutdown(2)
            except OSError:
                pass
        else:
            self._err(h, what, "injected failure")
        return True

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
        if path == "/api/agent/inference/claim":
            return self._inference_claim(h, tok, body)
        if path == "/api/agent/work/claim":
            return self._work_claim(h, tok, body)
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "agent", "work"] and parts[4] in ("complete", "fail"):
            return self._work_result(h, tok, parts[3], parts[4], body)
        if len(parts) == 5 and parts[:3] == ["api", "agent", "work"] and parts[4] == "upload":
            return self._work_upload(h, tok, parts[3], body)
        if len(parts) == 5 and parts[:3] == ["api", "agent", "inference"] and parts[4] == "stream":
            return self._stream(h, tok, parts[3], body)
        if len(parts) != 5 or parts[:3] != ["api", "agent", "jobs"]:
            return self._err(h, 404, "not found")
        jid, call = parts[3], parts[4]
        with self.lock:
            job = self.jobs.get(jid)
            if job is not None:
                job.calls.append(call)
            if self._injected(h, call):
                return
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
            for s in body["eval"].get("samples") or []:
                _check_keys(s, SAMPLE_KEYS, "eval.samples[]")
        if call == "complete":
            # The server keeps the summary as a typed document (internal/jobdoc.Summary):
            # a key it does not know would be dropped.
            summary = body.get("summary") or {}
            _check_keys(summary, SUMMARY_KEYS, "summary")
            for split, stats in (summary.get("truncation") or {}).items():
                _check_keys(stats, SPLIT_STATS_KEYS, f"summary.truncation.{split}")

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

    # -- agent work ------------------------------------------------------------------------

    def _work_claim(self, h, tok, body) -> None:
        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        try:
            kinds = body.get("kinds") if isinstance(body, dict) else None
            call = "work_claim_export" if kinds == ["export"] else "work_claim"
            _check_keys(body, SCHEMAS[call], "work claim")
            _check_keys(body["agent"], SCHEMAS[call]["agent"], "work claim.agent")
            if kinds not in (["preflight"], ["export"]) or not isinstance(body.get("base_models"), list) or not body["base_models"]:
                raise BadRequest("kinds must be [\"preflight\"] or [\"export\"] and base_models a non-empty list")
            formats = body.get("export_formats") or []
            if kinds == ["export"] and (not formats or not set(formats) <= {"merged", "gguf"}):
                raise BadRequest("an export agent lists export_formats: merged and/or gguf")
        except BadRequest as e:
            self.errors.append(str(e))
            return self._err(h, 400, str(e))
        models = set(body["base_models"])
        deadline = time.monotonic() + min(float(body.get("wait_seconds") or 0), self.max_wait)
        while True:
            with self.lock:
                for w in self.work_queue:
                    if w["kind"] != kinds[0] or not ("*" in models or w["base_model"] in models):
                        continue
                    if w["kind"] == "export" and w["format"] not in formats:
                        continue
                    self.work_queue.remove(w)
                    self.work_claimed[w["id"]] = w
                    return self._ok(h, {"work": self._work_order(w)})
            if time.monotonic() >= deadline:
                return self._ok(h, {"work": None})
            time.sleep(0.05)  # the long-poll, as the real server does it (it polls its database)

    def _work_order(self, w: dict) -> dict:
        out = {"id": w["id"], "kind": w["kind"], "attempt": 1, "lease_seconds": 900, "preflight": None}
        if w["kind"] == "preflight":
            out["preflight"] = {"base_model": w["base_model"], "trust_remote_code": False, "validation_share": 0.1,
                                "dataset": {"name": w["name"], "url": self.signed(w["key"]),
                                            "size": len(self.objects[w["key"]])}}
        else:
            out["export"] = {"export_id": w["id"], "model_name": "test model", "base_model": w["base_model"],
                             "trust_remote_code": False, "format": w["format"],
                             "dtype": "float32" if w["format"] == "gguf" else w["dtype"], "gguf_type": w["gguf_type"],
                             "file_name": w["file_name"],
                             "adapter": [{"name": n, "url": self.signed(k), "size": len(self.objects[k])}
                                         for n, k in w["adapter"].items()]}
        return out

    def _work_upload(self, h, tok, wid, body) -> None:
        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        try:
            _check_keys(body, SCHEMAS["work_upload"], "work upload")
            if not _is_int(body.get("size")) or body["size"] <= 0:
                raise BadRequest("size must be a positive integer")
        except BadRequest as e:
            self.errors.append(str(e))
            return self._err(h, 400, str(e))
        with self.lock:
            w = self.work_claimed.get(wid)
            if w is None or w["kind"] != "export":
                return self._err(h, 404, "agent work not found")
            w["size"] = body["size"]
            url = self.signed(w["key"], "PUT") + f"&max={body['size']}"
        return self._ok(h, {"upload": {"name": w["file_name"], "url": url, "method": "PUT",
                                       "headers": {"Content-Type": "application/gzip"}, "size": body["size"]}})

    def _work_result(self, h, tok, wid, call, body) -> None:
        import hashlib

        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        with self.lock:
            w = self.work_claimed.get(wid)
        try:
            if call == "complete" and w is not None and w["kind"] == "export":
                _check_keys(body, SCHEMAS["work_complete_export"], "work complete")
                x = body.get("export")
                _check_keys(x, SCHEMAS["work_complete_export"]["export"], "work complete.export")
                data = self.objects.get(w["key"])
                if data is None:
                    return self._err(h, 409, "the archive was not uploaded")
                if len(data) != x.get("size") or hashlib.sha256(data).hexdigest() != x.get("sha256"):
                    return self._err(h, 409, "the stored archive's size or sha256 differs from the declared one")
            else:
                _check_keys(body, SCHEMAS["work_" + call], f"work {call}")
            if call == "complete" and (w is None or w["kind"] == "preflight"):
                p = body.get("preflight")
                _check_keys(p, SCHEMAS["work_complete"]["preflight"], "work complete.preflight")
                rows = p.get("rows")
                if not isinstance(rows, list) or len(rows) != p.get("examples") or \
                        not all(isinstance(r, list) and len(r) == 4 and all(_is_int(x) for x in r) for r in rows):
                    raise BadRequest("preflight.rows must hold one [total, prompt, target, validation] per example")
        except BadRequest as e:
            self.errors.append(str(e))
            return self._err(h, 400, str(e))
        with self.lock:
            if self.work_claimed.pop(wid, None) is None:
                return self._err(h, 404, "agent work not found")
            self.work_results[wid] = (call, body)
            self.work_done.set()
        return self._ok(h, {"status": "completed" if call == "complete" else "failed"})

    # -- inference -------------------------------------------------------------------------

    def _inference_claim(self, h, tok, body) -> None:
        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        try:
            _check_keys(body, SCHEMAS["inference_claim"], "inference claim")
            _check_keys(body["agent"], SCHEMAS["inference_claim"]["agent"], "inference claim.agent")
            _check_keys(body["capabilities"], SCHEMAS["inference_claim"]["capabilities"], "inference claim.capabilities")
            if not isinstance(body.get("base_models"), list) or not isinstance(body.get("loaded"), list):
                raise BadRequest("base_models and loaded must be lists")
        except BadRequest as e:
            self.errors.append(str(e))
            return self._err(h, 400, str(e))
        with self.lock:
            if self._injected(h, "inference_claim"):
                return
            self.inference_claims.append(body)
        models = set(body["base_models"])
        deadline = time.monotonic() + min(float(body.get("wait_seconds") or 0), self.max_wait)
        while True:
            with self.lock:
                for r in self.inference_queue:
                    if "*" in models or r.base_model in models:
                        self.inference_queue.remove(r)
                        r.claimed_by = body["agent"]["name"]
                        return self._ok(h, {"request": self._inference_assignment(r)})
            if time.monotonic() >= deadline:
                return self._ok(h, {"request": None})
            time.sleep(0.05)  # the long-poll, as the real server does it (it waits on a signal or polls)

    def _inference_assignment(self, r: InferenceRequest) -> dict:
        adapter = None
        if r.adapter:
            adapter = {"model_id": r.adapter["model_id"], "version": r.adapter["version"],
                       "files": [{"name": f["name"], "url": self.signed(f["key"]),
                                  "size": f.get("size", len(self.objects[f["key"]]))}
                                 for f in r.adapter["files"]]}
        return {"id": r.id, "base_model": r.base_model, "adapter": adapter, "messages": r.messages,
                "params": r.params, "timeout_seconds": r.timeout_seconds}

    def _stream(self, h, tok, rid, body) -> None:
        if tok != self.agent_token:
            return self._err(h, 401, "send the agent token")
        with self.lock:
            if self._injected(h, "stream"):
                return
            r = self.inference.get(rid)
            if r is None or r.claimed_by is None:
                return self._err(h, 404, "inference request not found")
            try:
                self._validate_stream(body)
            except BadRequest as e:
                self.errors.append(f"stream: {e}")
                return self._err(h, 400, str(e))
            seen = {p["seq"] for p in r.posts}
            if body["seq"] in seen:
                r.repeats += 1
                return self._ok(h, {"cancel": r.cancel})
            if r.done.is_set():
                return self._err(h, 404, "inference request already finished")
            if body["seq"] != len(r.posts):
                self.errors.append(f"stream: seq {body['seq']} after {len(r.posts)} posts")
                return self._err(h, 400, f"seq {body['seq']} out of order")
            r.posts.append(body)
            for hook in self.stream_hooks:
                hook(r, body)
            if body["done"]:
                r.done.set()
            return self._ok(h, {"cancel": r.cancel})

    @staticmethod
    def _validate_stream(b) -> None:
        _check_keys(b, SCHEMAS["inference_stream"], "stream")
        if not _is_int(b.get("seq")) or b["seq"] < 0:
            raise BadRequest(f"seq must be a non-negative integer, got {b.get('seq')!r}")
        if not isinstance(b.get("text"), str) or not isinstance(b.get("done"), bool):
            raise BadRequest("text must be a string and done a boolean")
        if not b["done"]:
            if set(b) - {"seq", "text", "done"}:
                raise BadRequest("only a final post carries finish_reason, usage, timings or error")
            return
        if b.get("error") is not None:
            _check_keys(b["error"], {"class", "message"}, "stream.error")
            if b["error"].get("class") not in INFERENCE_ERROR_CLASSES:
                raise BadRequest(f"error.class {b['error'].get('class')!r}")
            return
        if b.get("finish_reason") not in FINISH_REASONS:
            raise BadRequest(f"finish_reason {b.get('finish_reason')!r}")
        _check_keys(b.get("usage"), {"prompt_tokens", "completion_tokens"}, "stream.usage")
        if not all(_is_int(b["usage"].get(k)) and b["usage"][k] >= 0 for k in ("prompt_tokens", "completion_tokens")):
            raise BadRequest("usage counts must be non-negative integers")
        if b.get("timings") is not None:
            _check_keys(b["timings"], TIMING_KEYS, "stream.timings")
