"""The command line: preflight, error classes, SIGTERM cancellation."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from brightrun_trainer import cli
from brightrun_trainer.errors import EXIT_CANCELLED, EXIT_CODES

from conftest import write_config


def last_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no stderr output"
    return json.loads(err[-1])


def test_preflight(tiny_model, real_data, capsys):
    rc = cli.main(["preflight", "--data", str(real_data["eq18_json"]), "--model", str(tiny_model),
                   "--max-seq-length", "512"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    assert res["trainable_examples"] == 62 and res["examples"] == 62
    assert res["train_examples"] + res["validation_examples"] == 62
    assert res["conversations"] == 18 and res["pairs"] == 128 and res["skipped_pairs"] == 66
    assert len(res["tokens_per_example"]) == res["kept_examples"]
    assert sum(res["tokens_per_example"]) == res["tokens"]
    assert max(res["tokens_per_example"]) <= 512
    assert res["truncated_examples"] > 0 and res["tokens_cut"] > 0
    assert res["tokens_before_truncation"] == res["tokens"] + res["tokens_cut"]
    assert res["chat_template"] == "model"


def test_preflight_unknown_model(real_data, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BRIGHTRUN_MODELS_DIR", str(tmp_path))
    rc = cli.main(["preflight", "--data", str(real_data["eq12_json"]), "--model", "nobody/no-such-model"])
    assert rc == EXIT_CODES["model_load"]
    err = last_error(capsys)
    assert err["error_class"] == "model_load" and "nobody/no-such-model" in err["message"]


@pytest.mark.parametrize("overrides,needle", [
    ({"learning_rate": 0.5}, "learning_rate must be between"),
    ({"learning_rate": 1e-7}, "learning_rate"),
    ({"num_epochs": 0}, "num_epochs"),
    ({"num_epochs": 51}, "num_epochs"),
    ({"lora_rank": 300}, "lora_rank"),
    ({"lora_alpha": 0}, "lora_alpha"),
    ({"lora_dropout": 0.6}, "lora_dropout"),
    ({"batch_size": 129}, "batch_size"),
    ({"batch_size": "four"}, "batch_size must be a number"),
    ({"lora_rank": 128}, "larger than the model's hidden size"),  # tiny model: hidden 64
    ({"target_modules": ["no_such_proj"]}, "target_modules"),
])
def test_config_errors(tiny_model, real_data, tmp_path, capsys, overrides, needle):
    cfg = write_config(tmp_path / "job.json", base_model=str(tiny_model), **overrides)
    rc = cli.main(["train", "--config", str(cfg), "--data", str(real_data["eq12_json"]), "--out",
                   str(tmp_path / "out"), "--quiet"])
    assert rc == EXIT_CODES["config"]
    err = last_error(capsys)
    assert err["error_class"] == "config"
    assert needle in err["message"]


def test_error_classes(tiny_model, real_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRIGHTRUN_MODELS_DIR", str(tmp_path / "models"))
    out = str(tmp_path / "out")

    def train(cfg, data):
        return cli.main(["train", "--config", str(cfg), "--data", str(data), "--out", out, "--quiet"])

    good = write_config(tmp_path / "good.json", base_model=str(tiny_model))
    # unknown base model
    bad_model = write_config(tmp_path / "m.json", base_model="nobody/no-such-model")
    assert train(bad_model, real_data["eq12_json"]) == EXIT_CODES["model_load"]
    assert last_error(capsys)["error_class"] == "model_load"
    # dataset without trainable examples
    empty = tmp_path / "none.jsonl"
    empty.write_text('{"_meta": {"total_pairs": 1}}\n'
                     '{"conversation_id": "c1", "current_user_input": "hi", "target_response": null}\n')
    assert train(good, empty) == EXIT_CODES["data"]
    err = last_error(capsys)
    assert err["error_class"] == "data" and "no trainable examples" in err["message"]
    # not a dataset at all
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    assert train(good, junk) == EXIT_CODES["data"]
    # config file missing / not JSON
    assert train(tmp_path / "missing.json", real_data["eq12_json"]) == EXIT_CODES["config"]
    nojson = tmp_path / "bad.json"
    nojson.write_text("{learning_rate: 1}")
    assert train(nojson, real_data["eq12_json"]) == EXIT_CODES["config"]
    assert "not valid JSON" in last_error(capsys)["message"]
    # the failure is recorded as the run's last status too
    lines = [json.loads(l) for l in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["type"] == "status" and lines[-1]["status"] == "failed"


def test_out_of_memory_maps_to_oom(monkeypatch, tiny_model, real_data, tmp_path, capsys):
    import torch

    from brightrun_trainer import train as train_mod

    def boom(model, batch, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_mod, "forward_loss_acc", boom)  # the training step's forward (loss and token accuracy)
    cfg = write_config(tmp_path / "job.json", base_model=str(tiny_model))
    rc = cli.main(["train", "--config", str(cfg), "--data", str(real_data["eq12_json"]), "--out",
                   str(tmp_path / "out"), "--quiet"])
    assert rc == EXIT_CODES["oom"]
    err = last_error(capsys)
    assert err["error_class"] == "oom" and "batch_size" in err["message"]


def test_sigterm_stops_within_one_step(tiny_model, real_data, tmp_path):
    cfg = write_config(tmp_path / "job.json", base_model=str(tiny_model), num_epochs=50, batch_size=2,
                       max_seq_length=512, checkpoint_steps=1000)
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "brightrun_trainer", "train", "--config", str(cfg), "--data",
                             str(real_data["eq12_jsonl"]), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    metrics = out / "metrics.jsonl"
    seen = 0
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists():
            steps = [json.loads(l)["step"] for l in metrics.read_text().splitlines()
                     if l.strip() and json.loads(l)["type"] == "progress"]
            if steps and steps[-1] >= 2:
                seen = steps[-1]
                break
        time.sleep(0.05)  # real-time dependency: a real training subprocess writes its metrics file
    assert seen >= 2, "training did not start"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_CANCELLED, stderr.decode()[-2000:]
    lines = [json.loads(l) for l in metrics.read_text().splitlines()]
    final = lines[-1]
    assert final["type"] == "status" and final["status"] == "cancelled"
    # The step running when the signal came finishes; nothing after it starts.
    # (+1 allows the step that may have completed between reading the file and signalling.)
    assert seen <= final["step"] <= seen + 2
    assert final["step"] < final["total_steps"]
    ckpt = final["checkpoint"]
    state = json.loads(open(os.path.join(ckpt, "trainer_state.json")).read())
    assert state["step"] == final["step"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "cancelled"

    # The checkpoint is usable: PEFT loads it as an adapter.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    PeftModel.from_pretrained(base, ckpt)
