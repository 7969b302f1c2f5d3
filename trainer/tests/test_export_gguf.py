"""GGUF export of a merged SmolLM2 + adapter with llama.cpp's own converter (from the llama-cpp-python
source distribution), checked by loading the GGUF file back and comparing greedy tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from brightrun_trainer import cli

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Name three colours of the rainbow."}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_cpp() -> Path:
    """llama.cpp's converter ($BRIGHTRUN_LLAMA_CPP_DIR, else scripts/llama-cpp-converter.sh's cache dir);
    with BRIGHTRUN_REQUIRE_LLAMA_CPP=1 (CI) its absence fails the test instead of skipping it."""
    from brightrun_trainer.errors import ConfigError
    from brightrun_trainer.export import converter_dir

    try:
        return converter_dir()
    except ConfigError as e:
        if os.environ.get("BRIGHTRUN_REQUIRE_LLAMA_CPP") == "1":
            pytest.fail(f"BRIGHTRUN_REQUIRE_LLAMA_CPP=1 but the converter is missing: {e}")
        pytest.skip(str(e))


def test_gguf_export_loads_and_generates_like_transformers(llama_cpp, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from brightrun_trainer.models import resolve_model

    base = resolve_model(MODEL_ID)
    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    out = tmp_path / "export"
    assert cli.main(["export", "--merged", "--model", MODEL_ID, "--adapter", str(tmp_path / "adapter"),
                     "--out", str(out), "--gguf", "--gguf-type", "f32", "--llama-cpp", str(llama_cpp)]) == 0
    gguf = out / "gguf" / "model-f32.gguf"
    assert gguf.is_file() and gguf.read_bytes()[:4] == b"GGUF"
    mf = (out / "gguf" / "Modelfile").read_text()
    assert mf.startswith("FROM ./model-f32.gguf") and "<|im_start|>" in mf and 'PARAMETER stop "<|im_end|>"' in mf

    def first_tokens(model, tok) -> list[int]:
        ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        g = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        return g[0, ids["input_ids"].shape[1]:].tolist()

    tok = AutoTokenizer.from_pretrained(str(out))
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    from_gguf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    # The file carries the tokenizer's vocabulary in id order and the chat template it was trained with.
    # (transformers' GGUF *tokenizer* reconstruction maps "\n" to <unk> for this vocabulary, so the
    # vocabulary is checked in the file itself.)
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    assert tokens[:len(vocab)] == [t for t, _ in vocab]
    tpl = reader.fields["tokenizer.chat_template"]
    assert bytes(tpl.parts[tpl.data[0]]).decode("utf-8") == tok.chat_template
    assert first_tokens(from_gguf, tok) == first_tokens(merged, tok)
    # The adapter itself as a LoRA GGUF (llama.cpp's --lora on the base model's GGUF).
    lora = GGUFReader(str(out / "gguf" / "adapter-f32.gguf"))
    assert bytes(lora.fields["general.type"].parts[lora.fields["general.type"].data[0]]) == b"adapter"
    assert bytes(lora.fields["adapter.type"].parts[lora.fields["adapter.type"].data[0]]) == b"lora"
    assert len(lora.tensors) == 2 * 2 * merged.config.num_hidden_layers   # lora_a and lora_b of q_proj and v_proj
    # The adapter changed the weights: the merged model is not the base model.
    assert not torch.equal(merged.model.layers[0].self_attn.q_proj.weight,
                           AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
                           .model.layers[0].self_attn.q_proj.weight)
