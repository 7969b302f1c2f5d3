"""The agent's work loops: agent work that is not a training job
(docs/agent-protocol.md, "Agent work" and "Exports").

A loop long-polls ``POST /api/agent/work/claim`` for the kinds it does and runs
one item at a time. The agent runs two of them, each in a thread of its own:

* **preflight**: download the dataset through its signed URL, compute the exact
  token profile with the base model's tokenizer and chat template
  (:func:`preflight.exact_profile`, the trainer's own encoding; no model
  weights are loaded, no GPU is used) and post it with ``/complete``.
* **export**: download the adapter files through their signed URLs, merge the
  adapter into its base model (:func:`export.export_merged`), for a GGUF export
  convert the merged model with llama.cpp's converter and write an Ollama
  ``Modelfile`` (:func:`export.export_gguf`), and the adapter itself to a LoRA
  GGUF where llama.cpp supports it (:func:`export.export_lora_gguf`), pack the result as one ``.tar.gz``,
  ask ``/upload`` for a signed PUT URL, upload it, and ``/complete`` with its
  size and sha256 (the server reads the object back and checks both). The loop
  claims GGUF work only when llama.cpp's converter is installed
  (``export_formats`` in the claim).

Either posts ``/fail`` with the reason when the work cannot be done.

Sharing the agent: both loops run beside the training loop and the inference
loop and never wait for them; a queued training job is claimed by the training
loop whatever these threads do. A preflight costs a few seconds of one CPU core
per dataset and model (the tokenizer's Rust code), so a training job on the same
agent slows down for those seconds at most. An export is heavier: it loads the
base model **in float32 on the CPU** (the merge is exact there; no GPU memory is
used, so a GPU training job keeps its device), which takes 4 bytes per parameter
of RAM (0.5 GB for SmolLM2-135M, about 28 GB for a 7B model) on top of what
training and serving use, plus a copy while saving, and disk for the merged
model, the GGUF file and the archive in the work directory (removed afterwards).
Exports run one at a time (one loop), in their own loop so a long export never
holds up a preflight. An agent without the RAM for a model's export should not
list that model for exports (``--export-models``), or run with ``--no-exports``.
(The first use of a model the agent only has as a packaged GGUF file converts it
once, under the same file lock training and serving use, and caches it for all.)
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
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
UPLOAD_SECONDS = 1800.0


class WorkLoop:
    def __init__(self, server: str, token: str, *, base_models: list[str], name: str | None = None,
                 work_dir: str | Path | None = None, wait_seconds: float = 20.0,
                 stopping: threading.Event | None = None, kinds: list[str] | None = None,
                 export_formats: list[str] | None = None):
        self.api = Api(server)
        self.kinds = list(kinds or KINDS)
        # The export formats this agent makes: GGUF only with llama.cpp's converter installed.
        if export_formats is None and "export" in self.kinds:
            from .export import has_converter

            export_formats = ["merged", "gguf"] if has_converter() else ["merged"]
        self.export_formats = list(export_formats or [])
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
        self._thread = threading.Thread(target=self.run, name="work-" + "-".join(self.kinds), daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)   # a daemon: a long-poll in flight ends with the process

    def run(self) -> None:
        extra = f" (formats {', '.join(self.export_formats)})" if self.export_formats else ""
        log.info("doing %s work%s for %s", ", ".join(self.kinds), extra, ", ".join(self.base_models))
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
                "kinds": self.kinds, "base_models": self.base_models, "wait_seconds": self.wait_seconds}
        if "export" in self.kinds:
            body["export_formats"] = self.export_formats
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
            if kind not in self.kinds or not isinstance(item.get(kind), dict):
                raise ValueError(f"this agent does not do {kind!r} work")
            if kind == "export":
                result = {"export": self.export(wid, item["export"], d)}
            else:
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

    def export(self, wid: str, order: dict, d: Path) -> dict:
        """Make the export, upload its archive, and return its size and sha256."""
        from .export import converter_dir, export_gguf, export_lora_gguf, export_merged

        fmt = order.get("format")
        if fmt not in self.export_formats:
            raise ValueError(f"this agent does not make {fmt!r} exports (it makes {self.export_formats})")
        if fmt == "gguf":
            converter_dir()   # fail before the merge when the converter is missing
        adapter = d / "adapter"
        adapter.mkdir()
        for f in order.get("adapter") or []:
            name = safe_relative(str(f.get("name") or ""))
            dest = adapter / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            retry(lambda f=f, dest=dest: self.api.download(f["url"], dest, size=f.get("size"), stop=self.stopping),
                  what=f"download {name}", stop=self.stopping, deadline=time.monotonic() + FINAL_POST_SECONDS)
        file_name = Path(str(order.get("file_name") or "export.tar.gz")).name
        top = file_name.removesuffix(".tar.gz")
        merged = d / top if fmt == "merged" else d / "merged"
        info = export_merged(str(order["base_model"]), adapter, merged, dtype=str(order.get("dtype") or "bfloat16"))
        packed = merged
        if fmt == "gguf":
            gtype = str(order.get("gguf_type") or "f16")
            packed = d / top
            info = export_gguf(merged, packed / f"model-{gtype}.gguf", outtype=gtype)
            try:   # the adapter as a LoRA GGUF too, where llama.cpp supports it (best effort)
                export_lora_gguf(adapter, merged, packed / f"adapter-{gtype}.gguf", outtype=gtype)
            except Exception as e:  # noqa: BLE001 - the merged GGUF is the export; this is an extra
                log.warning("export %s: no LoRA GGUF: %s", wid, e)
            shutil.rmtree(merged, ignore_errors=True)   # disk: only the GGUF files are shipped
        archive = d / file_name
        size, digest = pack(packed, archive)
        log.info("export %s: %s packed, %d bytes", wid, fmt, size)
        up = retry(lambda: self.api.post(f"/api/agent/work/{wid}/upload", self.token, {"size": size}, timeout=60),
                   what=f"work {wid} upload URL", stop=self.stopping, deadline=time.monotonic() + FINAL_POST_SECONDS)["upload"]
        retry(lambda: self.api.put_file(up["url"], archive, size, headers=up.get("headers"), method=up.get("method") or "PUT"),
              what=f"upload {file_name}", stop=self.stopping, deadline=time.monotonic() + UPLOAD_SECONDS)
        log.info("export %s: %s made in %.1f s", wid, fmt, info.get("seconds", 0.0))
        return {"size": size, "sha256": digest}

    def _dir(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir


def pack(src: Path, archive: Path) -> tuple[int, str]:
    """A .tar.gz of the directory src (its files under src's name); its size and sha256.
    gzip level 1: safetensors and GGUF weights barely compress, so a higher level only costs time."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                tar.add(p, arcname=f"{src.name}/{p.relative_to(src).as_posix()}", recursive=False)
    h = hashlib.sha256()
    with open(archive, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return archive.stat().st_size, h.hexdigest()
