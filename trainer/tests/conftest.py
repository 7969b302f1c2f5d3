"""Shared fixtures: the real datasets and a tiny Llama model built at test time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# No machine here reaches the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[2]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

DATA_FILES = {
    "eq12_json": "eq-12-conversations.v4.json",
    "eq12_jsonl": "eq-12-conversations.v4.jsonl",
    "eq18_json": "eq-18-conversations.v4.json",
}


def data_dir() -> Path:
    env = os.environ.get("BRIGHTRUN_DATA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def real_data() -> dict[str, Path]:
    d = data_dir()
    if not d.is_dir():
        pytest.skip(f"real datasets folder {d} is absent (set BRIGHTRUN_DATA_DIR)")
    files = {k: d / v for k, v in DATA_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        pytest.skip(f"real dataset files missing: {missing}")
    return files


def _corpus(files: dict[str, Path]) -> list[str]:
    from brightrun_trainer.data import load_dataset

    texts = []
    for p in files.values():
        for ex in load_dataset(p).examples:
            texts.extend(m["content"] for m in ex.messages)
    return texts


def build_tiny_model(dest: Path, texts: list[str], *, chat_template: str | None = CHATML_TEMPLATE,
                     vocab_size: int = 3000, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random-initialised Llama with a BPE tokenizer trained on ``texts``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                     eos_token="<|im_end|>" if chat_template else "</s>", pad_token="<pad>")
    if chat_template:
        hf_tok.chat_template = chat_template
    dest.mkdir(parents=True, exist_ok=True)
    hf_tok.save_pretrained(str(dest))

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=8192, tie_word_embeddings=False,
                      bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                      pad_token_id=hf_tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.save_pretrained(str(dest), safe_serialization=True)
    return dest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, real_data) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", _corpus(real_data))


@pytest.fixture(scope="session")
def tiny_model_no_template(tmp_path_factory, real_data) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-nt") / "model", _corpus(real_data), chat_template=None)


def write_config(path: Path, **overrides) -> Path:
    cfg = {
        "learning_rate": 1e-3, "batch_size": 4, "num_epochs": 2, "lora_rank": 8, "lora_alpha": 16,
        "lora_dropout": 0.05, "warmup_steps": 2, "weight_decay": 0.0, "max_seq_length": 256,
        "seed": 7, "logging_steps": 1, "eval_samples": 2, "eval_max_new_tokens": 8, "device": "cpu",
    }
    cfg.update(overrides)
    path.write_text(json.dumps(cfg))
    return path
