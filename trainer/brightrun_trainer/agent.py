"""The trainer agent: claims jobs from a BrightRun server and runs them.

``brightrun-trainer agent --server URL --token T`` loops: long-poll
``POST /api/agent/claim`` → download the dataset (and the checkpoint to resume
from) → run the training in-process with an :class:`HttpReporter` (metrics,
heartbeats, events, checkpoint uploads) → upload the adapter and call
``complete``, or report ``cancelled`` / ``fail``. See docs/agent-protocol.md
and docs/trainer.md ("Agent").

SIGTERM/SIGINT stop the agent: an idle agent exits at once; a running job
stops after the current optimizer step, the agent sends the metric points it
still holds (bounded), stops heartbeating and exits without reporting the
job: the server's lease expires, the job is requeued and the next attempt
resumes from the last checkpoint the agent uploaded. A second signal exits
immediately.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from . import __version__
from .errors import Cancelled, ConfigError, InternalError, TrainerError, classify
from .httpreporter import Api, ApiError, AttemptLost, HttpReporter, Rejected, Stopped, retry, safe_relative

log = logging.getLogger("brightrun.agent")

# Whether a failure class is worth another attempt (the server never retries data/config).
RETRYABLE = {"oom": False, "data": False, "config": False, "model_load": True, "internal": True, "network": True}

FINAL_CALL_SECONDS = 120.0   # how long complete/fail/cancelled are retried while the server is unreachable
SHUTDOWN_FLUSH_SECONDS = 5.0


class AgentShutdown(BaseException):
    """Raised from the signal handler to leave an idle long-poll at once."""


class DownloadError(Exception):
    pass


def job_config(raw: dict, *, device: str) -> "JobConfig":  # noqa: F821
    """The trainer's JobConfig from a claim's ``config`` (unknown keys ignored)."""
    from .config import JobConfig

    if not isinstance(raw, dict):
        raise ConfigError("the job's config is not an object")
    data = dict(raw)
    if isinstance(data.get("hyperparameters"), dict):
        data.update({k: v for k, v in data.pop("hyperparameters").items()})
    every = data.pop("checkpoint_every_steps", None)
    if every is not None and "checkpoint_steps" not in data:
        data["checkpoint_steps"] = every
    data["device"] = device
    return JobConfig.from_dict(data)


def world_size_for(raw: dict, gpu_count: int) -> int:
    """The number of training processes for a claim's config: its num_gpus (absent: 1)."""
    n = raw.get("num_gpus", 1) if isinstance(raw, dict) else 1
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) or n < 1:
        raise ConfigError(f"num_gpus must be a whole number of 1 or more, got {n!r}")
    n = int(n)
    if n > gpu_count:
        # The server matched the job to a smaller agent: not the job's fault, so retryable.
        raise InternalError(f"the job asks for {n} GPUs but this agent declared {gpu_count} (--gpu-count)")
    return n


def _detect_cuda() -> tuple[bool, int, float, str]:
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return True, torch.cuda.device_count(), round(props.total_memory / 2**30, 1), props.name
    except Exception:  # noqa: BLE001
        pass
    return False, 0, 0.0, ""


class ServeSettings:
    """What the agent's inference loop serves (docs/trainer.md, "Serving")."""

    def __init__(self, *, base_models: list[str] | None = None, cache_dir: str | Path | None = None,
                 cache_bytes: int = 2 << 30, slots: int = 4, max_loaded_adapters: int = 16, max_bases: int = 1,
                 keepalive: float = 5.0, engine: str = "auto", threads: int | None = None,
                 quantize: str = "auto"):
        self.threads = threads
        self.quantize = quantize            # auto: int8 weights for CPU decode steps (inference/int8.py)
        self.engine = engine                # auto: vLLM on a GPU agent when installed, else transformers+PEFT
        self.base_models = base_models      # None: the models this machine can load (CPU) or ["*"] (GPU)
        self.cache_dir = cache_dir
        self.cache_bytes = cache_bytes
        self.slots = slots
        self.max_loaded_adapters = max_loaded_adapters
        self.max_bases = max_bases
        self.keepalive = keepalive


class Agent:
    def __init__(self, server: str, token: str, *, gpu_type: str, gpu_count: int = 1, gpu_memory_gb: float = 0.0,
                 name: str | None = None, work_dir: str | Path | None = None, wait_seconds: float = 20.0,
                 once: bool = False, keep_work: bool = False, flush_seconds: float = 2.0,
                 serve: ServeSettings | None = None, exit_after_job: bool = False,
                 idle_exit_seconds: float = 0.0, preflight_models: list[str] | None = None,
                 export_models: list[str] | None = None):
        self.api = Api(server)
        self.token = token
        # distributed: this agent runs an N-GPU job as N processes (older agents, without the field, are
        # only given 1-GPU jobs, so a job is never billed for GPUs it did not use).
        self.caps = {"gpu_type": gpu_type, "gpu_count": int(gpu_count), "gpu_memory_gb": float(gpu_memory_gb),
                     "distributed": True}
        self.device = "cpu" if gpu_type.upper() == "CPU" else "cuda"
        self.name = name or socket.gethostname()
        self.work_dir = Path(work_dir or Path.home() / ".cache" / "brightrun" / "agent").expanduser()
        self.wait_seconds = max(0.0, min(30.0, float(wait_seconds)))
        self.once = once
        # A launched (ephemeral) agent runs one job, then exits; it also gives
        # up after idle_exit_seconds without a job (0: never).
        self.exit_after_job = exit_after_job
        self.idle_exit_seconds = max(0.0, float(idle_exit_seconds))
        self.keep_work = keep_work
        self.flush_seconds = flush_seconds
        self.stopping = threading.Event()
        self.reporter: HttpReporter | None = None
        self.results: list[dict] = []   # one entry per job handled (for tests and logs)
        self._idle = False
        self._signals = 0
        self.serve = serve
        self.inference = None   # the InferenceLoop while serving
        # Base models this agent computes exact preflights for (None: no agent work).
        self.preflight_models = preflight_models
        self.work = None        # the WorkLoop while doing agent work
        # Base models this agent makes exports of (None: no exports; []: what it can load).
        self.export_models = export_models
        self.exports = None     # the export WorkLoop

    # -- signals -------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def on_signal(signum, frame):
            self._signals += 1
            if self._signals > 1:
                sys.stderr.write("brightrun-agent: second signal, exiting now\n")
                os._exit(130)
            log.warning("signal %d: stopping the agent", signum)
            self.stop()
            if self._idle:
                raise AgentShutdown()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def stop(self) -> None:
        self.stopping.set()
        if self.reporter is not None:
            self.reporter.request_cancel()

    # -- the loop --------------------------------------------------------------------

    def training_active(self) -> bool:
        return self.reporter is not None

    def start_serving(self):
        """Start the inference loop beside the training loop (a thread of its own)."""
        from .inference.engine import Engine
        from .inference.loop import InferenceLoop, local_models

        s = self.serve
        models = s.base_models if s.base_models is not None else (local_models() if self.device == "cpu" else ["*"])
        if not models:
            log.warning("serving is on but this CPU agent can load no base model locally "
                        "(put one in $BRIGHTRUN_MODELS_DIR or pass --serve-models); inference is off")
            return None
        engine = None
        if self.device == "cuda" and s.engine in ("auto", "vllm"):
            from .inference import vllm_engine

            if vllm_engine.available():
                log.info("serving with vLLM (multi-LoRA)")
                engine = vllm_engine.VllmEngine()
            elif s.engine == "vllm":
                log.warning("--serve-engine vllm: the vllm package is not installed; serving with transformers+PEFT")
        if engine is None:
            engine = Engine(device=self.device, max_bases=s.max_bases, max_loaded_adapters=s.max_loaded_adapters,
                            training_active=self.training_active, threads=s.threads, quantize=s.quantize)
        cache = Path(s.cache_dir).expanduser() if s.cache_dir else self.work_dir / "adapters"
        self.inference = InferenceLoop(self.api.server, self.token, engine=engine, cache_dir=cache,
                                       cache_bytes=s.cache_bytes, base_models=models, caps=self.caps, name=self.name,
                                       slots=s.slots, wait_seconds=self.wait_seconds, stopping=self.stopping,
                                       keepalive=s.keepalive)
        return self.inference.start()

    def start_work(self):
        """Start the agent-work loop (exact preflights) beside the training loop (a thread of its own)."""
        from .inference.loop import local_models
        from .work import WorkLoop

        if self.preflight_models is None:
            return None
        models = self.preflight_models or (local_models() if self.device == "cpu" else ["*"])
        if not models:
            log.warning("preflight is on but this CPU agent can load no tokenizer locally; no preflights")
            return None
        self.work = WorkLoop(self.api.server, self.token, base_models=models, name=self.name, work_dir=self.work_dir,
                             wait_seconds=self.wait_seconds, stopping=self.stopping)
        return self.work.start()

    def start_exports(self):
        """Start the export loop (merged and GGUF exports) in a thread of its own (work.py says how it
        shares the machine: the base model is loaded in float32 on the CPU)."""
        from .inference.loop import local_models
        from .work import WorkLoop

        if self.export_models is None:
            return None
        models = self.export_models or (local_models() if self.device == "cpu" else ["*"])
        if not models:
            log.warning("exports are on but this CPU agent can load no model locally; no exports")
            return None
        self.exports = WorkLoop(self.api.server, self.token, base_models=models, name=self.name,
                                work_dir=self.work_dir, wait_seconds=self.wait_seconds, stopping=self.stopping,
                                kinds=["export"])
        return self.exports.start()

    def run(self) -> int:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log.info("agent %s (brightrun-trainer %s) polling %s for %s jobs; work dir %s", self.name, __version__,
                 self.api.server, self.caps["gpu_type"], self.work_dir)
        if self.serve is not None:
            self.start_serving()
        self.start_work()
        self.start_exports()
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    self._idle = True
                    job = self.claim()
                finally:
                    self._idle = False
                if job is None:
                    if self.once:
                        log.info("no job (--once): exiting")
                        return 0
                    if self.idle_exit_seconds and time.monotonic() - idle_since >= self.idle_exit_seconds:
                        log.info("no job for %.0f s (--idle-exit-seconds): exiting", self.idle_exit_seconds)
                        return 0
                    continue
                self.run_job(job)
                if self.once or self.exit_after_job:
                    log.info("job done (--exit-after-job): exiting")
                    return 0
                idle_since = time.monotonic()
        except AgentShutdown:
            pass
        except Rejected as e:
            log.error("the server refused the claim: %s", e)
            return 2
        except AttemptLost as e:  # 401/403/404 on claim: the agent token is wrong
            log.error("the server refused the agent token: %s", e)
            return 2
        finally:
            if self.inference is not None:
                self.stopping.set()
                self.inference.stop()
            for loop in (self.work, self.exports):
                if loop is not None:
                    self.stopping.set()
                    loop.stop()
            self.api.close()
        log.info("agent stopped")
        return 0

    def claim(self) -> dict | None:
        body = {"agent": {"name": self.name, "version": __version__, "hostname": socket.gethostname()},
                "capabilities": self.caps, "wait_seconds": self.wait_seconds}
        deadline = time.monotonic() + FINAL_CALL_SECONDS if self.once else None
        try:
            ans = retry(lambda: self.api.post("/api/agent/claim", self.token, body, timeout=self.wait_seconds + 30),
                        what="claim", stop=self.stopping, deadline=deadline, cap=30.0)
        except Stopped as e:
            if not self.stopping.is_set():
                log.error("%s", e)
            return None
        return ans.get("job")

    # -- one job -----------------------------------------------------------------------

    def run_job(self, job: dict) -> dict:
        from .reporting import JsonlFileReporter, MultiReporter

        jid, attempt, token = job["id"], int(job.get("attempt") or 1), job["token"]
        jdir = self.work_dir / jid / f"attempt-{attempt}"
        shutil.rmtree(jdir, ignore_errors=True)
        jdir.mkdir(parents=True)
        log.info("claimed job %s attempt %d%s", jid, attempt,
                 f" (resuming from step {job['resume']['step']})" if job.get("resume") else "")
        rep = HttpReporter(self.api, jid, token, heartbeat_seconds=float(job.get("heartbeat_seconds") or 10.0),
                           flush_seconds=self.flush_seconds, staging_dir=jdir / "upload")
        self.reporter = rep
        if self.stopping.is_set():
            rep.request_cancel()
        rep.stage("downloading")
        outcome: dict = {"job": jid, "attempt": attempt}
        out = jdir / "out"
        jsonl = None
        start_step = 0
        try:
            data_path = self._download_dataset(rep, job, jdir)
            resume_dir = None
            if job.get("resume"):
                resume_dir = self._download_resume(rep, job["resume"], jdir)
                start_step = int(job["resume"].get("step") or 0)
            raw = dict(job.get("config") or {})
            if (job.get("validation_dataset") or {}).get("url"):
                raw["validation_file"] = str(self._download_dataset(rep, {"dataset": job["validation_dataset"]}, jdir / "validation"))
            cfg = job_config(raw, device=self.device)
            if (job.get("config") or {}).get("trust_remote_code"):
                rep.log("warn", "trust_remote_code is set for this model; this trainer loads models without remote code")
            (jdir / "job.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            if rep.cancel_requested():
                raise Cancelled()
            out.mkdir(parents=True, exist_ok=True)
            jsonl = JsonlFileReporter(out / "metrics.jsonl")
            result = self._train(job, cfg, data_path, out, MultiReporter(jsonl, rep), resume_dir, jdir)
            outcome.update(status=result.status, step=result.summary.get("steps_completed", 0))
        except (Cancelled, Stopped):
            outcome.update(status="cancelled", step=start_step)
        except BaseException as e:  # noqa: BLE001 - every failure gets a class
            if isinstance(e, (KeyboardInterrupt, SystemExit, AgentShutdown)):
                rep.shutdown()
                raise
            if isinstance(e, DownloadError):
                cls, msg = "network", str(e)
            else:
                err = classify(e)
                cls, msg = err.error_class, err.message
            tb = (e.details.get("traceback") or "") if isinstance(e, TrainerError) else traceback.format_exc()
            if tb:
                log.error("job %s failed:\n%s", jid, tb)
            outcome.update(status="failed", error_class=cls, message=msg, traceback=tb)
        finally:
            if jsonl is not None:
                jsonl.close()

        outcome["cancel_step"] = rep.cancel_step if rep.cancel_requested() else None
        try:
            self._finish(rep, outcome, out)
        finally:
            rep.shutdown()
            self.reporter = None
            if not self.keep_work and not (self.stopping.is_set() and outcome.get("reported") is None):
                shutil.rmtree(jdir, ignore_errors=True)
                try:
                    jdir.parent.rmdir()
                except OSError:
                    pass
        log.info("job %s attempt %d: %s", jid, attempt, outcome.get("reported") or outcome["status"])
        self.results.append(outcome)
        return outcome

    def _train(self, job: dict, cfg, data_path: Path, out: Path, reporter, resume_dir, jdir: Path):
        """Run the job in this process, or as num_gpus processes (distributed.py).

        BRIGHTRUN_DISTRIBUTED=1 sends a 1-GPU job through the distributed path
        too (benchmarks: bench/trainer/ddp_overhead.py).
        """
        from .distributed import run_distributed
        from .train import run_training

        world = world_size_for(job.get("config") or {}, self.caps["gpu_count"])
        if world > 1 or os.environ.get("BRIGHTRUN_DISTRIBUTED") == "1":
            return run_distributed(cfg, data_path, out, reporter=reporter, world_size=world, work_dir=jdir / "ranks",
                                   resume=resume_dir)
        return run_training(cfg, data_path, out, reporter=reporter, resume=resume_dir)

    def _finish(self, rep: HttpReporter, outcome: dict, out: Path) -> None:
        status = outcome["status"]
        if rep.dead:
            outcome["reported"] = "superseded"
            return
        if self.stopping.is_set() and not rep.server_cancel.is_set():
            # Agent shutdown: leave the job to the lease (requeued, resumed from its checkpoint).
            rep.abort_checkpoints()
            rep.stop_heartbeat()
            rep.flush(SHUTDOWN_FLUSH_SECONDS)
            outcome["reported"] = "abandoned (agent stopping)"
            return
        final_deadline = time.monotonic() + FINAL_CALL_SECONDS
        try:
            if status == "completed":
                rep.abort_checkpoints()
                rep.stage("uploading")
                try:
                    files = rep.upload_dir("final", out, exclude_dirs=("checkpoints",),
                                           deadline=time.monotonic() + 1800)
                except (Stopped, Rejected) as e:
                    if rep.dead:
                        outcome["reported"] = "superseded"
                        return
                    outcome.update(status="failed", error_class="network", message=f"uploading the adapter failed: {e}",
                                   traceback="")
                    status = "failed"
                else:
                    body = {"files": files, "summary": _read_json(out / "summary.json") or {},
                            "eval": _eval_report(_read_json(out / "eval.json"))}
                    rep.flush(60)
                    rep.stop_heartbeat()
                    ans = retry(lambda: rep.post("complete", body, timeout=120), what="complete",
                                deadline=final_deadline, cap=10.0)
                    outcome.update(reported="completed", files=files, answer=ans)
                    return
            if status == "cancelled":
                rep.abort_checkpoints()
                rep.flush(30)
                rep.stop_heartbeat()
                step = int(outcome.get("step") or 0)
                retry(lambda: rep.post("cancelled", {"step": step}), what="cancelled", deadline=final_deadline)
                outcome["reported"] = "cancelled"
                return
            # failed
            cls = outcome.get("error_class") or "internal"
            if RETRYABLE.get(cls, True):
                rep.wait_checkpoints(60)  # the retry resumes from the newest checkpoint that reached the server
            rep.abort_checkpoints()
            rep.flush(30)
            rep.stop_heartbeat()
            body = {"error_class": cls, "message": outcome.get("message") or "", "retryable": RETRYABLE.get(cls, True),
                    "traceback": (outcome.get("traceback") or "")[-20000:]}
            ans = retry(lambda: rep.post("fail", body), what="fail", deadline=final_deadline)
            outcome.update(reported="failed", answer=ans)
        except AttemptLost:
            outcome["reported"] = "superseded"
        except (Stopped, ApiError) as e:
            log.error("job %s: could not report %s to the server: %s", outcome["job"], status, e)
            outcome["reported"] = f"unreported ({e})"

    # -- downloads ---------------------------------------------------------------------

    def _fetch(self, rep: HttpReporter, url: str, dest: Path, size) -> int:
        try:
            return retry(lambda: self.api.download(url, dest, size=size, stop=self.stopping), what=f"download {dest.name}",
                         stop=self.stopping, deadline=time.monotonic() + FINAL_CALL_SECONDS)
        except Stopped as e:
            if self.stopping.is_set():
                raise
            raise DownloadError(str(e)) from None
        except Rejected as e:
            raise DownloadError(str(e)) from None

    def _download_dataset(self, rep: HttpReporter, job: dict, jdir: Path) -> Path:
        ds = job.get("dataset") or {}
        if not ds.get("url"):
            raise DownloadError("the claim has no dataset URL")
        name = Path(str(ds.get("file_name") or ds.get("name") or "dataset.jsonl")).name or "dataset.jsonl"
        dest = jdir / "data" / name
        t0 = time.monotonic()
        n = self._fetch(rep, ds["url"], dest, ds.get("size"))
        rep.log("info", f"downloaded {name} ({n} bytes) in {time.monotonic() - t0:.1f} s")
        return dest

    def _download_resume(self, rep: HttpReporter, resume: dict, jdir: Path) -> Path:
        step = int(resume.get("step") or 0)
        ckpt = jdir / "resume" / f"step-{step:06d}"
        total = 0
        for f in resume.get("files") or []:
            try:
                rel = safe_relative(str(f.get("name") or ""))
            except ValueError as e:
                raise DownloadError(f"checkpoint file: {e}") from None
            total += self._fetch(rep, f["url"], ckpt / rel, f.get("size"))
        if not (ckpt / "trainer_state.json").is_file():
            raise ConfigError(f"the checkpoint of step {step} has no trainer_state.json; cannot resume")
        rep.log("info", f"downloaded the checkpoint of step {step} ({total} bytes); resuming from it")
        return ckpt


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _eval_report(ev) -> dict | None:
    """eval.json reduced to the fields the server's complete call accepts."""
    if not isinstance(ev, dict):
        return None

    def side(d):
        d = d if isinstance(d, dict) else {}
        return {k: (d.get(k) if isinstance(d.get(k), (int, float)) and math.isfinite(d.get(k)) else None)
                for k in ("validation_loss", "perplexity", "mean_token_accuracy")}

    return {"base": side(ev.get("base")), "adapter": side(ev.get("adapter")),
            "samples_from": ev.get("samples_from") if ev.get("samples_from") in ("validation", "train") else None,
            "samples": [s for s in ev.get("samples") or [] if isinstance(s, dict)]}


def setup_logging() -> None:
    root = logging.getLogger("brightrun")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s brightrun-agent %(levelname)s %(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)
        root.propagate = False


def cmd_agent(args) -> int:
    setup_logging()
    token = args.token or os.environ.get("BRIGHTRUN_AGENT_TOKEN")
    if not token:
        sys.stderr.write("brightrun-trainer agent: give the agent token with --token or BRIGHTRUN_AGENT_TOKEN\n")
        return 2
    has_cuda, n_gpu, mem_gb, gpu_name = _detect_cuda()
    gpu_type = args.gpu_type
    if not gpu_type:
        if has_cuda:
            sys.stderr.write(f"brightrun-trainer agent: this machine has {n_gpu} CUDA GPU(s) ({gpu_name}); give "
                             "--gpu-type with the catalog's gpu_type (GET /api/catalog), e.g. H100-80GB, "
                             "or --gpu-type CPU\n")
            return 2
        gpu_type = "CPU"
    if gpu_type.upper() != "CPU" and not has_cuda:
        sys.stderr.write(f"brightrun-trainer agent: --gpu-type {gpu_type} needs a CUDA GPU, and none is available\n")
        return 2
    is_cpu = gpu_type.upper() == "CPU"
    count = args.gpu_count if args.gpu_count is not None else (1 if is_cpu else max(1, n_gpu))
    memory = args.gpu_memory_gb if args.gpu_memory_gb is not None else (0.0 if is_cpu else mem_gb)
    serve = None
    # A one-job agent (started by a launcher for one training job) does not
    # serve inference: it exits after its job, which would cut streams short.
    if args.serve and not args.exit_after_job:
        models = None
        if args.serve_models:
            models = [m.strip() for m in args.serve_models.split(",") if m.strip()]
        serve = ServeSettings(base_models=models, cache_dir=args.adapter_cache_dir,
                              cache_bytes=int(args.adapter_cache_gb * 2**30), slots=args.serve_slots,
                              engine=args.serve_engine, threads=args.serve_threads,
                              quantize=args.serve_quantize)
    # Exact preflights: for --preflight-models (else --serve-models, else what it can load); not on a one-job agent.
    preflight_models = None
    if getattr(args, "preflight", False) and not args.exit_after_job:
        listed = getattr(args, "preflight_models", None) or args.serve_models or ""
        preflight_models = [m.strip() for m in listed.split(",") if m.strip()]
    # Exports: for --export-models (else --serve-models, else what it can load); not on a one-job agent.
    export_models = None
    if getattr(args, "exports", False) and not args.exit_after_job:
        listed = getattr(args, "export_models", None) or args.serve_models or ""
        export_models = [m.strip() for m in listed.split(",") if m.strip()]
    agent = Agent(args.server, token, gpu_type="CPU" if is_cpu else gpu_type, gpu_count=count, gpu_memory_gb=memory,
                  name=args.name, work_dir=args.work_dir, wait_seconds=args.wait_seconds, once=args.once,
                  keep_work=args.keep_work, serve=serve, exit_after_job=args.exit_after_job,
                  idle_exit_seconds=args.idle_exit_seconds, preflight_models=preflight_models,
                  export_models=export_models)
    agent.install_signal_handlers()
    log.info("python %s on %s", platform.python_version(), platform.platform())
    return agent.run()
