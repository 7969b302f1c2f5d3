"""Multi-process (data-parallel) training: 2 real processes on the gloo backend, the tiny model, the real data.

Every run goes through the real agent against the in-memory protocol server
(tests/fakeserver.py): the claim's num_gpus decides the number of processes.
On this CPU machine a "GPU" of the job is a CPU process; the collectives,
the sharding, the stop flag and the process supervision are the ones a GPU
job uses (there with NCCL).

Tolerance: with lora_dropout 0 the 2-process run computes the same gradient
as the 1-process run, summed in a different order (per-rank partial sums,
packed rows grouped differently), so losses agree to fp32 rounding amplified
by a few Adam steps. Measured: at most 6.6e-8 relative over 6 steps (5.6e-8 with the
compute path merged from the speed branch); we allow
rel 1e-5 / abs 1e-6 per step (the adapter weights: rtol 1e-3 / atol 1e-4).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from brightrun_trainer.agent import Agent
from brightrun_trainer.distributed import FAULT_ENV, Dist, run_distributed
from brightrun_trainer.reporting import MemoryReporter
from brightrun_trainer.encoding import Encoded

from fakeserver import FakeServer

from conftest import TINY_MODEL_ID as MODEL_ID
TOTAL = 6


def job_config(**over) -> dict:
    cfg = {"base_model": MODEL_ID, "learning_rate": 1e-3, "batch_size": 4, "num_epochs": 2, "lora_rank": 8,
           "lora_alpha": 16, "lora_dropout": 0.0, "warmup_steps": 0, "weight_decay": 0, "max_seq_length": 512,
           "gradient_accumulation_steps": 2, "seed": 42, "validation_share": 0.1, "checkpoint_every_steps": 2,
           "eval_samples": 1, "eval_max_new_tokens": 4, "max_steps": TOTAL, "num_gpus": 1}
    cfg.update(over)
    return cfg




def run_job(tmp: Path, data: bytes, *, num_gpus: int, gpu_count: int | None = None, resume_from=None,
            attempt: int = 1):
    """One claimed attempt on a fresh fake server: (server, job, agent outcome)."""
    srv = FakeServer(heartbeat_seconds=0.3).start()
    resume = None
    if resume_from is not None:
        src_srv, ckpt = resume_from
        for f in ckpt["files"]:
            srv.objects[f["key"]] = src_srv.objects[f["key"]]
        resume = {"step": ckpt["step"], "files": [{"name": f["name"], "key": f["key"]} for f in ckpt["files"]]}
    job = srv.add_job(job_config(num_gpus=num_gpus), data, "eq-12-conversations.v4.jsonl", attempt=attempt,
                      resume=resume)
    agent = Agent(srv.url, "bra_test", gpu_type="CPU", gpu_count=gpu_count or num_gpus, work_dir=tmp,
                  wait_seconds=1, once=True, flush_seconds=0.2)
    assert agent.run() == 0
    srv.stop()
    return srv, job, agent.results[0]


def losses(job) -> dict[int, float]:
    return {s: p["training_loss"] for s, p in job.points.items() if p.get("training_loss") is not None}


def adapter_dir(srv, job, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in job.complete["stored"]:
        (dest / f["name"]).write_bytes(srv.objects[f["key"]])
    return dest


@pytest.fixture(scope="module")
def data(real_data) -> bytes:
    return real_data["eq12_jsonl"].read_bytes()


@pytest.fixture(scope="module")
def one(tmp_path_factory, models_dir, data):
    """The 1-process reference run."""
    srv, job, out = run_job(tmp_path_factory.mktemp("one"), data, num_gpus=1)
    assert out["reported"] == "completed", out
    return srv, job


@pytest.fixture(scope="module")
def two(tmp_path_factory, models_dir, data):
    srv, job, out = run_job(tmp_path_factory.mktemp("two"), data, num_gpus=2)
    assert out["reported"] == "completed", out
    return srv, job


def assert_same_curve(job, ref, start: int = 0):
    got, want = losses(job), losses(ref)
    assert sorted(got) == list(range(start + 1, TOTAL + 1)), sorted(got)
    print("max relative loss difference:", max(abs(got[s] - want[s]) / abs(want[s]) for s in got))
    for s in got:
        assert got[s] == pytest.approx(want[s], rel=1e-5, abs=1e-6), (s, got[s], want[s])


def test_two_processes_match_one_process(one, two):
    srv1, job1 = one
    srv2, job2 = two
    assert not srv2.errors, srv2.errors
    assert_same_curve(job2, job1)
    s1, s2 = job1.complete["summary"], job2.complete["summary"]
    assert s2["world_size"] == 2 and s1["world_size"] == 1
    assert s2["steps_completed"] == s1["steps_completed"] == TOTAL  # the same number of optimizer steps
    assert s2["tokens_trained"] == s1["tokens_trained"]               # the same global batches
    assert any("2 training processes" in e["message"] for e in job2.events)
    assert [c["step"] for c in job2.checkpoints] and all(c["step"] in (2, 4) for c in job2.checkpoints)


def test_the_two_process_adapter_is_a_peft_adapter_equal_to_the_one_process_one(one, two, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    a1 = adapter_dir(*one, tmp_path / "a1")
    a2 = adapter_dir(*two, tmp_path / "a2")
    assert {p.name for p in a1.iterdir()} == {p.name for p in a2.iterdir()}
    w1, w2 = load_file(str(a1 / "adapter_model.safetensors")), load_file(str(a2 / "adapter_model.safetensors"))
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-4), k
    base = AutoModelForCausalLM.from_pretrained(str(Path(os.environ["BRIGHTRUN_MODELS_DIR"]) / MODEL_ID),
                                                dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(a2))
    assert model.peft_config["default"].r == 8


def test_a_killed_rank_fails_the_attempt_as_retryable_and_the_retry_resumes_on_one_process(
        one, models_dir, data, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1@5")  # rank 1 SIGKILLs itself when it starts step 5
    srv, job, out = run_job(tmp_path / "a1", data, num_gpus=2)
    assert out["reported"] == "failed", out
    assert job.fail["retryable"] is True and job.fail["error_class"] == "internal", job.fail
    assert "training process 1 of 2 killed by SIGKILL" in job.fail["message"], job.fail
    assert job.complete is None and max(losses(job)) == 4
    assert [c["step"] for c in job.checkpoints][-1] == 4, job.checkpoints

    monkeypatch.delenv(FAULT_ENV)
    srv2, job2, out2 = run_job(tmp_path / "a2", data, num_gpus=1, resume_from=(srv, job.checkpoints[-1]),
                               attempt=2)
    assert out2["reported"] == "completed", out2
    assert_same_curve(job2, one[1], start=4)
    assert any("written by 2 process(es)" in e["message"] for e in job2.events), [e["message"] for e in job2.events]


def test_a_one_process_checkpoint_resumes_on_two_processes(one, models_dir, data, tmp_path):
    srv1, job1 = one
    ckpt = [c for c in job1.checkpoints if c["step"] == 2][0]
    srv, job, out = run_job(tmp_path, data, num_gpus=2, resume_from=(srv1, ckpt), attempt=2)
    assert out["reported"] == "completed", out
    assert_same_curve(job, job1, start=2)
    assert job.complete["summary"]["world_size"] == 2


def test_a_job_larger_than_the_agent_is_given_back(models_dir, data, tmp_path):
    srv, job, out = run_job(tmp_path, data, num_gpus=2, gpu_count=1)
    assert job.fail["retryable"] is True and "asks for 2 GPUs" in job.fail["message"], job.fail


def _enc(n: int) -> Encoded:
    return Encoded(input_ids=[1] * n, labels=[1] * n)


def test_shards_cover_the_global_batch_once_balanced_by_tokens():
    micro = [[_enc(n) for n in (50, 10, 40, 30)], [_enc(n) for n in (20, 60)]]
    every = [e for b in micro for e in b]
    shards = [Dist(rank=r, world_size=2, enabled=True).shard(micro, 4) for r in range(2)]
    got = [e for s in shards for b in s for e in b]
    assert sorted(map(id, got)) == sorted(map(id, every))
    loads = [sum(e.n_tokens for b in s for e in b) for s in shards]
    assert abs(loads[0] - loads[1]) <= 10, loads
    assert all(len(b) <= 4 for s in shards for b in s)
    # One example, three ranks: two ranks get nothing (they still take part in the all-reduce).
    lone = [Dist(rank=r, world_size=3, enabled=True).shard([[_enc(5)]], 4) for r in range(3)]
    assert [len(s) for s in lone] == [1, 0, 0]
    assert Dist().shard(micro, 4) is micro


class CancelAt(MemoryReporter):
    """Asks to stop once training has reached ``step`` (as a heartbeat answer would)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.asked_at = step, None

    def emit(self, record: dict) -> None:
        super().emit(record)
        if record["type"] == "progress" and record["step"] >= self.step and self.asked_at is None:
            self.asked_at = record["step"]
            self.request_cancel()


def test_a_cancel_stops_every_rank_within_a_step(models_dir, real_data, tmp_path):
    from brightrun_trainer.config import JobConfig

    raw = job_config(num_epochs=50, batch_size=2, gradient_accumulation_steps=1, max_steps=0,
                     checkpoint_every_steps=1000)
    raw["checkpoint_steps"] = raw.pop("checkpoint_every_steps")
    cfg = JobConfig.from_dict(dict(raw, device="cpu"))
    rep = CancelAt(2)
    res = run_distributed(cfg, real_data["eq12_jsonl"], tmp_path / "out", reporter=rep, world_size=2,
                          work_dir=tmp_path / "ranks")
    assert res.status == "cancelled"
    # Both processes stopped after the same step, on their own (none had to be terminated).
    assert res.summary["rank_statuses"] == ["cancelled", "cancelled"], res.summary
    stopped = res.summary["steps_completed"]
    assert rep.asked_at is not None and stopped <= rep.asked_at + 1 < 500
    ckpt = tmp_path / "out" / "checkpoints" / f"step-{stopped:06d}"
    assert json.loads((ckpt / "trainer_state.json").read_text())["world_size"] == 2


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the agent's worker processes")
def test_workers_stop_when_the_agent_is_killed(models_dir, data, tmp_path):
    srv = FakeServer(heartbeat_seconds=0.2).start()
    workers: list[int] = []
    try:
        job = srv.add_job(job_config(num_gpus=2, num_epochs=50, batch_size=2, gradient_accumulation_steps=1,
                                     max_steps=0, checkpoint_every_steps=1000), data, "eq12.jsonl")
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        proc = subprocess.Popen([sys.executable, "-m", "brightrun_trainer", "agent", "--server", srv.url, "--token",
                                 "bra_test", "--gpu-type", "CPU", "--gpu-count", "2", "--once", "--wait-seconds", "1",
                                 "--work-dir", str(tmp_path)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if any(h["stage"] == "training" and h["step"] >= 2 for h in list(job.heartbeats)):
                break
            time.sleep(0.1)  # real-time dependency: a real agent and its worker processes training a real model
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        workers = [p for p in _children(proc.pid) if "brightrun" in Path(f"/proc/{p}/cmdline").read_text()
                   or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) >= 2, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        end = time.time() + 120
        while time.time() < end and any(_alive(p) for p in workers):
            time.sleep(0.2)  # real-time dependency: the orphaned workers notice at the end of their step
        assert not any(_alive(p) for p in workers), [p for p in workers if _alive(p)]
    finally:
        for p in workers:  # on a failure, leave no orphaned worker behind
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        srv.stop()
