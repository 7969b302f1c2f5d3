"""Shared fixtures: the real datasets and a tiny Llama model built at test time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# No machine here reaches the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[2]

from brightrun_trainer.tinymodel import CHATML_TEMPLATE, build_tiny_model  # noqa: E402,F401  (re-exported)

DATA_FILES = {
    "eq12_json": "eq-12-conversations.v4.json",
    "eq12_jsonl": "eq-12-conversations.v4.jsonl",
    "eq18_json": "eq-18-conversations.v4.json",
}


def data_dir() -> Path:
    env = os.environ.get("BRIGHTRUN_DATASETS_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


def _absent(msg: str):
    """Skip, or fail when BRIGHTRUN_REQUIRE_DATASETS=1 (CI)."""
    if os.environ.get("BRIGHTRUN_REQUIRE_DATASETS") == "1":
        pytest.fail(f"{msg}, but BRIGHTRUN_REQUIRE_DATASETS=1", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def real_data() -> dict[str, Path]:
    d = data_dir()
    if not d.is_dir():
        _absent(f"real datasets folder {d} is absent (set BRIGHTRUN_DATASETS_DIR)")
    files = {k: d / v for k, v in DATA_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        _absent(f"real dataset files missing: {missing}")
    return files


def _corpus(files: dict[str, Path]) -> list[str]:
    from brightrun_trainer.tinymodel import corpus_from_files

    return corpus_from_files(files.values())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, real_data) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", _corpus(real_data))


@pytest.fixture(scope="session")
def tiny_model_no_template(tmp_path_factory, real_data) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-nt") / "model", _corpus(real_data), chat_template=None)


TINY_MODEL_ID = "brightrun-test/tiny-llama"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, tiny_model):
    """A models directory holding the tiny model as TINY_MODEL_ID, set as
    BRIGHTRUN_MODELS_DIR for the module (restored afterwards)."""
    d = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_model, d / TINY_MODEL_ID)
    old = os.environ.get("BRIGHTRUN_MODELS_DIR")
    os.environ["BRIGHTRUN_MODELS_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("BRIGHTRUN_MODELS_DIR", None)
    else:
        os.environ["BRIGHTRUN_MODELS_DIR"] = old


def write_config(path: Path, **overrides) -> Path:
    cfg = {
        "learning_rate": 1e-3, "batch_size": 4, "num_epochs": 2, "lora_rank": 8, "lora_alpha": 16,
        "lora_dropout": 0.05, "warmup_steps": 2, "weight_decay": 0.0, "max_seq_length": 256,
        "seed": 7, "logging_steps": 1, "eval_samples": 2, "eval_max_new_tokens": 8, "device": "cpu",
    }
    cfg.update(overrides)
    path.write_text(json.dumps(cfg))
    return path
