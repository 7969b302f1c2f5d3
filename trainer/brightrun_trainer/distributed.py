"""Data-parallel LoRA training across N processes (one per GPU) on one machine.

An N-GPU job runs as N processes started by :func:`run_distributed` (the
agent calls it when the claim's ``num_gpus`` is above 1). Every process runs
:func:`brightrun_trainer.train.run_training` with a :class:`Dist`; the hooks
in the training loop are:

- :meth:`Dist.shard`: the optimizer step's examples (the same global batch,
  ``batch_size x gradient_accumulation_steps`` examples chosen by the
  single-process plan) are split between the ranks, balanced by tokens
  (longest first to the least loaded rank); each rank runs its share in
  micro-batches of at most ``batch_size`` examples. The loss is normalised
  by the step's GLOBAL assistant-token count, so the summed gradients are
  the single-process step's gradient.
- :meth:`Dist.sync_grads`: one all-reduce (sum) per optimizer step of the
  flattened LoRA gradients, the step's loss sum and its correctly predicted
  token count. After it every rank
  holds the same gradient, clips and steps identically, so the adapters
  stay identical without broadcasting weights. This is what DDP does for the
  trainable parameters, done as one coalesced collective after the backward
  passes rather than with DDP's bucketed hooks, because a rank may get no
  example at all in an epoch's last, short step (DDP needs every rank to run
  a forward and backward); LoRA gradients are small (tens to a few hundred
  MB), so not overlapping them with the backward costs little (measure it
  with bench/trainer/ddp_overhead.py).
- :meth:`Dist.agree_stop`: rank 0's stop flag (cancel, lease loss, agent
  shutdown) is broadcast after every step, so every rank stops after the
  same step.
- Only rank 0 reports (metrics, events), writes checkpoints, runs the final
  evaluation and writes the adapter; the agent uploads from rank 0's output
  directory. Ranks > 0 return after the training loop.

Checkpoints are the single-process format (a PEFT adapter, the optimizer,
scheduler and rng state, trainer_state.json): every rank holds the same
optimizer state, so nothing in a checkpoint depends on the world size, and a
checkpoint resumes on any number of processes. On resume every rank loads the
same checkpoint; the step's examples are re-split between the new ranks; rank
0 restores the saved rng state (dropout) and the other ranks seed theirs from
(seed, step, rank).

A rank that dies (killed, out of memory, a crash) ends the attempt: the
launcher sees its exit, stops the others and raises :class:`RankFailed` (an
internal, retryable error: the server requeues the job and the next attempt
resumes from the last uploaded checkpoint), or the rank's own error where it
reported one (e.g. out of memory, not retryable).

Not done: FSDP2 sharding of a frozen base too big for one device (see
docs/trainer.md, "Distributed"); multi-node jobs.
"""

from __future__ import annotations

import datetime as _dt
import os
import queue as _queue
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .errors import Cancelled, ConfigError, DataError, InternalError, ModelLoadError, OOMError, TrainerError, classify
from .reporting import Reporter

# Fault injection for tests and drills: "RANK@STEP" makes that rank SIGKILL
# itself when it starts that optimizer step (a real process death).
FAULT_ENV = "BRIGHTRUN_FAULT_KILL_RANK"
# Seconds the launcher waits for the other ranks after one failed before it
# terminates them (NCCL collectives may hang on a dead peer instead of failing).
FAILURE_GRACE_SECONDS = 10.0
COLLECTIVE_TIMEOUT = _dt.timedelta(minutes=30)

_ERRORS = {"data": DataError, "config": ConfigError, "model_load": ModelLoadError, "oom": OOMError,
           "internal": InternalError}


class RankFailed(InternalError):
    """A rank died or crashed: retryable; the next attempt resumes from the last checkpoint."""


@dataclass
class Dist:
    """This process's place in the job; ``Dist()`` is the single-process run."""

    rank: int = 0
    world_size: int = 1
    enabled: bool = False  # a process group is initialised (also with world_size 1, for benchmarks)
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- hooks in the training loop -------------------------------------------------

    def shard(self, micro: list[list], batch_size: int) -> list[list]:
        """This rank's micro-batches of one optimizer step (``micro``: the step's micro-batches)."""
        if not self.enabled:
            return micro
        examples = [e for b in micro for e in b]
        loads = [0] * self.world_size
        mine = []
        for i in sorted(range(len(examples)), key=lambda k: (-examples[k].n_tokens, k)):
            r = min(range(self.world_size), key=lambda k: (loads[k], k))
            loads[r] += examples[i].n_tokens
            if r == self.rank:
                mine.append(i)
        ex = [examples[i] for i in sorted(mine)]
        return [ex[i:i + batch_size] for i in range(0, len(ex), batch_size)]

    def sync_grads(self, params: list, *sums: float) -> tuple[float, ...]:
        """Sum every rank's gradients and the given per-rank sums (the step's
        loss sum, its correctly predicted tokens) in one all-reduce; returns the
        global sums."""
        if not self.enabled:
            return tuple(sums)
        import torch
        import torch.distributed as tdist

        dev = params[0].device
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
        flat = torch.cat(parts + [torch.tensor(list(sums), dtype=torch.float32, device=dev)])
        tdist.all_reduce(flat)
        off = 0
        for p in params:
            n = p.numel()
            p.grad = flat[off:off + n].view_as(p).to(p.dtype)
            off += n
        return tuple(float(x) for x in flat[off:].tolist())

    def agree_stop(self, local: bool) -> bool:
        """Rank 0's stop flag, on every rank (a broadcast each step)."""
        if not self.enabled:
            return local
        import torch
        import torch.distributed as tdist

        t = torch.tensor([1 if (local and self.is_main) else 0], dtype=torch.int32, device=self.device)
        tdist.broadcast(t, src=0)
        return bool(t.item())

    def sync_params(self, params: list, seed: int, step: int) -> None:
        """After setup (and resume): rank 0's trainable weights everywhere; per-rank dropout streams."""
        if not self.enabled:
            return
        import torch.distributed as tdist

        for p in params:
            tdist.broadcast(p.data, src=0)
        if not self.is_main:
            import random

            import numpy as np
            import torch

            s = (seed * 1_000_003 + step * 7_919 + self.rank) % (2**31)
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)

    def before_step(self, step: int) -> None:
        fault = os.environ.get(FAULT_ENV, "")
        if fault and self.enabled and fault == f"{self.rank}@{step}":
            os.kill(os.getpid(), signal.SIGKILL)


# ----------------------------------------------------------------------------
# The launcher (runs in the agent's process) and the workers


class QueueReporter(Reporter):
    """Rank 0's reporter: records go to the launcher; the launcher's cancel event is the stop flag.

    A launcher that is gone (the agent was killed: its daemon workers are not
    reaped then) also stops the job, so no orphaned ranks keep the GPUs busy.
    """

    def __init__(self, q, cancel) -> None:
        super().__init__()
        self.q = q
        self.cancel = cancel
        self.parent = os.getppid()

    def emit(self, record: dict) -> None:
        self.q.put(("record", record))

    def cancel_requested(self) -> bool:
        return super().cancel_requested() or self.cancel.is_set() or os.getppid() != self.parent


class NullReporter(Reporter):
    """Ranks > 0 report nothing (rank 0 speaks for the job)."""

    def emit(self, record: dict) -> None:
        pass


def _worker(rank: int, world_size: int, init_method: str, cfg_dict: dict, data_path: str, out_dir: str,
            resume: str | None, q, cancel) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when to stop (through the cancel event)
    import torch
    import torch.distributed as tdist

    from .config import JobConfig
    from .train import run_training

    try:
        cfg = JobConfig.from_dict(cfg_dict)
        use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        if use_cuda:
            torch.cuda.set_device(rank)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
        tdist.init_process_group("nccl" if use_cuda else "gloo", init_method=init_method, rank=rank,
                                 world_size=world_size, timeout=COLLECTIVE_TIMEOUT)
        d = Dist(rank=rank, world_size=world_size, enabled=True, device="cuda" if use_cuda else "cpu")
        rep = QueueReporter(q, cancel) if rank == 0 else NullReporter()
        res = run_training(cfg, data_path, out_dir, reporter=rep, resume=resume, dist=d)
        q.put(("result", rank, res.status, res.summary, res.losses))
    except Cancelled:
        q.put(("cancelled", rank))
    except BaseException as e:  # noqa: BLE001 - every failure is reported to the launcher
        err = classify(e)
        tb = "" if isinstance(e, TrainerError) else traceback.format_exc()
        q.put(("error", rank, err.error_class, err.message, tb))
        q.close()
        q.join_thread()
        os._exit(1)
    finally:
        if tdist.is_initialized():
            try:
                tdist.destroy_process_group()
            except Exception:  # noqa: BLE001
                pass
    q.close()
    q.join_thread()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def run_distributed(cfg, data_path, out_dir, *, reporter: Reporter, world_size: int, work_dir,
                    resume=None, poll_seconds: float = 0.2):
    """Run the job as ``world_size`` processes; returns rank 0's RunResult (without the model).

    Rank 0's records are passed to ``reporter``; ``reporter.cancel_requested()``
    is forwarded to rank 0, which broadcasts it. ``work_dir`` holds the
    rendezvous file and the other ranks' scratch output.
    """
    import multiprocessing as mp

    from .train import RunResult

    if world_size < 1:
        raise ConfigError(f"num_gpus must be 1 or more, got {world_size}")
    if cfg.device != "cpu":
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if cfg.device == "cuda" or have:
            if have < world_size:
                raise RankFailed(f"the job needs {world_size} GPUs but this machine shows {have} "
                                 "(CUDA_VISIBLE_DEVICES?); the job is given back for another agent")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rdv = work / "rendezvous"
    rdv.unlink(missing_ok=True)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    cancel = ctx.Event()
    procs = []
    for rank in range(world_size):
        rank_out = Path(out_dir) if rank == 0 else work / f"rank-{rank}"
        p = ctx.Process(target=_worker, name=f"brightrun-rank-{rank}", daemon=True,
                        args=(rank, world_size, f"file://{rdv}", cfg.to_dict(), str(data_path), str(rank_out),
                              str(resume) if resume else None, q, cancel))
        p.start()
        procs.append(p)

    result, errors, cancelled, statuses = None, {}, set(), {}
    failed_at = None  # monotonic time the first rank failed or rank 0 ended

    def drain(block: bool) -> None:
        nonlocal result
        while True:
            try:
                msg = q.get(timeout=poll_seconds) if block else q.get_nowait()
            except _queue.Empty:
                return
            block = False
            kind = msg[0]
            if kind == "record":
                reporter.emit(msg[1])
            elif kind == "result":
                statuses[msg[1]] = msg[2]
                if msg[1] == 0:
                    result = msg
            elif kind == "error":
                errors[msg[1]] = msg[2:]
            elif kind == "cancelled":
                cancelled.add(msg[1])

    try:
        while True:
            if reporter.cancel_requested():
                cancel.set()
            drain(block=True)
            codes = [p.exitcode for p in procs]
            if all(c is not None for c in codes):
                break
            bad = any(c not in (None, 0) for c in codes) or codes[0] is not None
            if bad and failed_at is None:
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > FAILURE_GRACE_SECONDS:
                _stop(procs)
                break
    finally:
        _stop(procs)
        drain(block=False)
        q.close()
        rdv.unlink(missing_ok=True)

    codes = [p.exitcode for p in procs]
    for p in procs:
        p.close()
    if result is not None and codes[0] == 0:  # rank 0 finished the job (the others had left after training)
        _, _, status, summary, losses = result
        # How each rank ended (None: it had to be terminated), for logs and tests.
        summary = dict(summary, rank_statuses=[statuses.get(r) for r in range(world_size)])
        return RunResult(status, summary, Path(out_dir), losses, None)
    if 0 in cancelled:  # stopped before training (the others' errors are the consequence: rank 0 left)
        raise Cancelled()
    raise _failure(codes, errors, world_size)


def _stop(procs) -> None:
    for p in procs:
        if p.exitcode is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            p.kill()
            p.join(5)


def _failure(codes: list, errors: dict, world_size: int) -> TrainerError:
    """The attempt's error: a rank's own non-internal error first (data, config, oom…), then a
    rank that died without a word, then the first internal error."""
    for rank in sorted(errors):
        cls, msg, tb = errors[rank]
        if cls != "internal":
            return _ERRORS.get(cls, InternalError)(msg)  # the user's error (data, config, memory), as one process says it
    silent = [r for r, c in enumerate(codes) if c not in (0, None) and r not in errors]
    if silent:
        r = silent[0]
        return RankFailed(f"training process {r} of {world_size} {_describe_exit(codes[r])}; the attempt is "
                          "retried from the last checkpoint")
    if errors:
        rank = min(errors)
        cls, msg, tb = errors[rank]
        e = RankFailed(f"training process {rank} of {world_size} failed: {msg}")
        e.details = {"traceback": tb} if tb else {}
        return e
    return RankFailed(f"the training processes ended without a result (exit codes {codes})")
