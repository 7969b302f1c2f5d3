"""The agent and its HTTP reporter against an in-memory protocol server (tests/fakeserver.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brightrun_trainer import cli
from brightrun_trainer.agent import Agent, job_config
from brightrun_trainer.httpreporter import Api, HttpReporter

from fakeserver import FakeServer

from conftest import TINY_MODEL_ID as MODEL_ID
TOTAL = 6  # optimizer steps of the end-to-end job
REQUIRED = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "training_config.json", "metrics.jsonl", "eval.json", "summary.json", "README.md"}


def server_config(**over) -> dict:
    """A claim's config as the server sends it (plus a key the trainer does not know)."""
    cfg = {"base_model": MODEL_ID, "learning_rate": 1e-3, "batch_size": 4, "num_epochs": 1, "lora_rank": 8,
           "lora_alpha": 16, "lora_dropout": 0.0, "warmup_steps": 0, "weight_decay": 0, "max_seq_length": 512,
           "gradient_accumulation_steps": 1, "seed": 42, "validation_share": 0.1, "trust_remote_code": False,
           "checkpoint_every_steps": 2, "eval_samples": 1, "eval_max_new_tokens": 4, "a_future_server_key": "x",
           "max_steps": TOTAL}
    cfg.update(over)
    return cfg




@pytest.fixture
def server():
    s = FakeServer().start()
    yield s
    s.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emit_points(rep, steps):
    for s in steps:
        rep.metrics(step=s, total_steps=max(steps), epoch=s / 10, training_loss=3.0 - s * 0.01,
                    learning_rate=1e-4, grad_norm=1.5, tokens_per_second=1000.0 + s)



def test_launched_agent_exits_when_idle_too_long(server, tmp_path):
    """A launched agent (--exit-after-job --idle-exit-seconds) whose job went
    elsewhere keeps polling until the idle limit, then exits 0."""
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        rc = cli.main(["agent", "--server", server.url, "--token", "bra_test", "--exit-after-job", "--idle-exit-seconds", "0.5",
                       "--wait-seconds", "0.2", "--work-dir", str(tmp_path), "--name", "launched"])
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert rc == 0
    assert len(server.claims) >= 2  # it kept polling past one empty long-poll (unlike --once)

# ----------------------------------------------------------------------------
# The reporter


def test_metrics_survive_5xx_and_dropped_connections_exactly_once_in_order(server):
    job = server.add_job({}, b"x")
    server.queue.clear()
    server.inject["metrics"] = [503, "drop", 429]
    rep = HttpReporter(Api(server.url), job.id, job.token, heartbeat_seconds=5, flush_seconds=0.1, start=False)
    steps = list(range(1, 131))
    emit_points(rep, steps)
    rep.record("eval", step=100, epoch=10.0, validation_loss=2.5, perplexity=12.2)  # merges into step 100
    rep.start()
    assert rep.flush(30)
    rep.close()
    posted = [s for batch in job.point_posts for s in batch]
    assert posted == steps  # each point stored once, in order
    assert all(len(b) <= 50 for b in job.point_posts)
    assert job.calls.count("metrics") == len(job.point_posts) + 3
    assert job.points[100]["validation_loss"] == 2.5 and job.points[100]["training_loss"] == pytest.approx(2.0)
    p = job.points[7]
    assert p["gradient_norm"] == 1.5 and p["tokens_per_second"] == 1007.0 and p["timestamp"].endswith("Z")
    assert rep.dropped_points == 0 and not server.errors


def test_reporter_waits_for_an_unreachable_server(tmp_path):
    port = free_port()
    api = Api(f"http://127.0.0.1:{port}")
    rep = HttpReporter(api, "job-1", "brj_job-1_1_x", heartbeat_seconds=0.2, flush_seconds=0.1)
    emit_points(rep, range(1, 21))
    time.sleep(1.5)  # connection refused meanwhile: retried with backoff
    srv = FakeServer(port=port)
    job = srv.add_job({}, b"x", job_id="job-1")
    srv.queue.clear()
    job.token = "brj_job-1_1_x"
    srv.start()
    try:
        emit_points(rep, range(21, 31))
        assert rep.flush(30)
        deadline = time.time() + 10
        while not job.heartbeats and time.time() < deadline:
            time.sleep(0.05)  # real-time dependency: the reporter's own heartbeat thread
        rep.close()
        assert [s for b in job.point_posts for s in b] == list(range(1, 31))
        assert job.heartbeats and job.heartbeats[-1]["step"] == 0 and not srv.errors
    finally:
        srv.stop()


def test_a_rejected_batch_is_dropped_with_an_error_event(server):
    job = server.add_job({}, b"x")
    server.queue.clear()
    server.inject["metrics"] = [400]
    rep = HttpReporter(Api(server.url), job.id, job.token, heartbeat_seconds=5, flush_seconds=0.1, start=False)
    emit_points(rep, range(1, 61))
    rep.start()
    assert rep.flush(20)
    rep.close()
    assert sorted(job.points) == list(range(51, 61)) and rep.dropped_points == 50
    assert any(e["level"] == "error" and "rejected" in e["message"] for e in job.events)


def test_job_config_mapping():
    cfg = job_config(server_config(checkpoint_every_steps=7), device="cpu")
    assert cfg.checkpoint_steps == 7 and cfg.device == "cpu" and cfg.lora_rank == 8 and cfg.base_model == MODEL_ID
    assert not hasattr(cfg, "a_future_server_key")


def test_bad_agent_token_exits_2(server, tmp_path):
    agent = Agent(server.url, "bra_wrong", gpu_type="CPU", work_dir=tmp_path, wait_seconds=0.2, once=True)
    assert agent.run() == 2


def test_agent_once_without_a_job(server, tmp_path):
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        t0 = time.time()
        rc = cli.main(["agent", "--server", server.url, "--token", "bra_test", "--once", "--wait-seconds", "0.5",
                       "--work-dir", str(tmp_path), "--name", "t1"])
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert rc == 0 and time.time() - t0 < 20
    (claim,) = server.claims
    assert claim["capabilities"] == {"gpu_type": "CPU", "gpu_count": 1, "gpu_memory_gb": 0.0, "distributed": True}
    assert claim["agent"]["name"] == "t1" and claim["wait_seconds"] == 0.5


# ----------------------------------------------------------------------------
# The agent, end to end (a real subprocess, as the server runs it)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, models_dir, real_data):
    srv = FakeServer(heartbeat_seconds=0.3).start()
    data = real_data["eq12_jsonl"].read_bytes()
    job = srv.add_job(server_config(), data, "eq-12-conversations.v4.jsonl")
    work = tmp_path_factory.mktemp("agent-work")
    env = dict(os.environ, BRIGHTRUN_MODELS_DIR=str(models_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "brightrun_trainer", "agent", "--server", srv.url, "--token",
                           "bra_test", "--once", "--wait-seconds", "2", "--work-dir", str(work)],
                          env=env, capture_output=True, text=True, timeout=300)
    yield {"srv": srv, "job": job, "proc": proc, "work": work, "data": data, "seconds": time.time() - t0}
    srv.stop()


def test_e2e_completes_with_every_file(e2e, tmp_path):
    proc, job, srv = e2e["proc"], e2e["job"], e2e["srv"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not srv.errors, srv.errors
    assert job.complete is not None, proc.stderr[-3000:]
    names = {f["name"] for f in job.complete["files"]}
    assert REQUIRED <= names and not any(n.startswith("checkpoints/") for n in names)
    for f in job.complete["stored"]:
        assert len(srv.objects[f["key"]]) == f["size"] > 0
    # The stored adapter is a PEFT adapter that loads on the tiny base.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adir = tmp_path / "adapter"
    adir.mkdir()
    for f in job.complete["stored"]:
        (adir / f["name"]).write_bytes(srv.objects[f["key"]])
    summary = json.loads((adir / "summary.json").read_text())
    assert job.complete["summary"] == summary, summary
    assert summary["steps_completed"] == summary["total_steps"] == TOTAL, summary
    assert job.complete["eval"]["adapter"]["validation_loss"] > 0 and len(job.complete["eval"]["samples"]) == 1
    # The page says "held-out" only for prompts from the validation split.
    assert job.complete["eval"]["samples_from"] == "validation", job.complete["eval"].get("samples_from")
    cfg = json.loads((adir / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == MODEL_ID and cfg["r"] == 8
    base = AutoModelForCausalLM.from_pretrained(str(Path(os.environ["BRIGHTRUN_MODELS_DIR"]) / MODEL_ID),
                                                dtype=torch.float32)
    PeftModel.from_pretrained(base, str(adir))
    # metrics.jsonl uploaded is the trainer's full record
    lines = [json.loads(l) for l in (adir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["type"] == "status" and lines[-1]["status"] == "completed"
    assert not list(e2e["work"].iterdir())  # the attempt's files are cleaned up


def test_e2e_metrics_heartbeats_events_checkpoints(e2e):
    job = e2e["job"]
    posted = [s for b in job.point_posts for s in b]
    assert sorted(set(posted)) == list(range(1, TOTAL + 1))
    # Each training point once; only the final evaluation may come later as its own point for the last step.
    assert {s for s in posted if posted.count(s) > 1} <= {TOTAL} and posted.count(TOTAL) <= 2
    for s in range(1, TOTAL + 1):
        p = job.points[s]
        assert p["training_loss"] > 0 and p["learning_rate"] > 0 and p["gradient_norm"] > 0
        assert p["tokens_per_second"] > 0
    assert job.points[TOTAL]["validation_loss"] > 0
    stages = [h["stage"] for h in job.heartbeats]
    assert stages[0] == "downloading"
    for s in ("training", "uploading"):
        assert s in stages
    assert max(h["progress"] for h in job.heartbeats) == 100
    assert all(isinstance(h["epoch"], int) for h in job.heartbeats)
    assert job.heartbeats[-1]["stage"] == "uploading"
    msgs = [e["message"] for e in job.events]
    assert any(m.startswith("downloaded eq-12-conversations.v4.jsonl") for m in msgs)
    assert any("loaded the model" in m for m in msgs) and any(m.startswith("plan:") for m in msgs)
    assert job.checkpoints, "no checkpoint was registered"
    for c in job.checkpoints:
        assert c["step"] in (2, 4)
        names = {f["name"] for f in c["files"]}
        assert {"adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "trainer_state.json"} <= names
    assert job.status == "completed" and job.fail is None and job.cancelled is None


def test_resume_from_the_uploaded_checkpoint(e2e, tmp_path):
    srv0, job0 = e2e["srv"], e2e["job"]
    ckpt = job0.checkpoints[0]
    srv = FakeServer(heartbeat_seconds=0.3).start()
    try:
        for f in ckpt["files"]:
            srv.objects[f["key"]] = srv0.objects[f["key"]]
        job = srv.add_job(server_config(), e2e["data"], "eq-12-conversations.v4.jsonl", attempt=2,
                          resume={"step": ckpt["step"], "files": [{"name": f["name"], "key": f["key"]}
                                                                   for f in ckpt["files"]]})
        agent = Agent(srv.url, "bra_test", gpu_type="CPU", work_dir=tmp_path, wait_seconds=1, once=True)
        assert agent.run() == 0
        assert agent.results[0]["reported"] == "completed", agent.results
        assert not srv.errors, srv.errors
        n = ckpt["step"]
        posted = [s for b in job.point_posts for s in b]
        assert posted[0] == n + 1 and sorted(set(posted)) == list(range(n + 1, TOTAL + 1))
        for s in range(n + 1, TOTAL + 1):  # the same losses as the uninterrupted run
            assert job.points[s]["training_loss"] == pytest.approx(job0.points[s]["training_loss"], rel=1e-3, abs=1e-4)
        assert job.complete["summary"]["steps_completed"] == TOTAL
        assert any("resuming" in e["message"] for e in job.events)
    finally:
        srv.stop()


# ----------------------------------------------------------------------------
# Stopping: cancel, superseded, SIGTERM, failure


def long_job(srv, real_data, **over):
    cfg = server_config(num_epochs=50, batch_size=2, checkpoint_every_steps=1000, max_steps=0, **over)
    return srv.add_job(cfg, real_data["eq12_jsonl"].read_bytes(), "eq12.jsonl")


def test_cancel_from_a_heartbeat_stops_within_one_step(server, models_dir, real_data, tmp_path):
    job = long_job(server, real_data)

    def hook(j, body):
        if body["stage"] == "training" and body["step"] >= 2:
            j.cancel = True

    server.hooks["heartbeat"] = hook
    server.heartbeat_seconds = 0.1
    agent = Agent(server.url, "bra_test", gpu_type="CPU", work_dir=tmp_path, wait_seconds=1, once=True)
    assert agent.run() == 0
    out = agent.results[0]
    assert out["reported"] == "cancelled" and job.cancelled is not None
    step = job.cancelled["step"]
    assert out["cancel_step"] is not None and step <= out["cancel_step"] + 1 and step < 500
    assert job.complete is None and job.fail is None and not server.errors
    assert max(job.points) <= step


def test_a_superseded_attempt_stops(server, models_dir, real_data, tmp_path):
    job = long_job(server, real_data)

    def hook(j, body):
        if any(p["step"] >= 3 for p in body["points"]):
            j.superseded = True

    server.hooks["metrics"] = hook
    agent = Agent(server.url, "bra_test", gpu_type="CPU", work_dir=tmp_path, wait_seconds=1, once=True,
                  flush_seconds=0.1)
    t0 = time.time()
    assert agent.run() == 0
    out = agent.results[0]
    assert out["reported"] == "superseded" and out["step"] < 500, out
    assert job.complete is None and job.fail is None and job.cancelled is None
    assert "complete" not in job.calls and "uploads" not in job.calls and "cancelled" not in job.calls
    assert time.time() - t0 < 120


def test_sigterm_leaves_the_job_to_the_lease(server, models_dir, real_data, tmp_path):
    job = long_job(server, real_data)
    server.heartbeat_seconds = 0.2
    env = dict(os.environ, BRIGHTRUN_MODELS_DIR=str(models_dir), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "brightrun_trainer", "agent", "--server", server.url, "--token",
                             "bra_test", "--wait-seconds", "1", "--work-dir", str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if any(h["stage"] == "training" and h["step"] >= 2 for h in list(job.heartbeats)):
            break
        time.sleep(0.05)  # real-time dependency: a real agent process training a real model
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert job.cancelled is None and job.fail is None and job.complete is None, err[-2000:]
    n = len(job.heartbeats)
    time.sleep(0.5)  # real time on purpose: a heartbeat still in flight after exit would land within it
    assert len(job.heartbeats) == n  # no heartbeats after exit
    assert job.points and "abandoned" in err


def test_data_error_is_reported_as_not_retryable(server, models_dir, tmp_path):
    bad = b'{"_meta": {"total_pairs": 1}}\n{"conversation_id": "c1", "current_user_input": "hi", "target_response": null}\n'
    job = server.add_job(server_config(), bad, "bad.jsonl")
    agent = Agent(server.url, "bra_test", gpu_type="CPU", work_dir=tmp_path, wait_seconds=1, once=True)
    assert agent.run() == 0
    assert job.fail is not None and job.fail["error_class"] == "data" and job.fail["retryable"] is False
    assert "no trainable examples" in job.fail["message"] and not server.errors


def test_make_tiny_model_cli(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert cli.main(["make-tiny-model", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
