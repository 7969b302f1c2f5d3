"""A tiny random-initialised Llama for tests and end-to-end checks.

``build_tiny_model(dest, texts)`` trains a byte-level BPE tokenizer on
``texts`` (plus a small built-in corpus), gives it an explicit chat template
(ChatML by default) and saves it with a random Llama (hidden 64, 2 layers,
4 heads) via ``save_pretrained``. The result loads like any Hugging Face model
directory, so it can be used as a ``base_model`` path or placed in the models
directory as ``$BRIGHTRUN_MODELS_DIR/<org>/<name>``. CLI:
``brightrun-trainer make-tiny-model --out DIR [--data FILE ...]``.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Enough text for a usable byte-level vocabulary when no dataset is given.
BUILTIN_TEXT = [
    "You are a helpful assistant. Answer clearly and kindly.",
    "The user asked how to fine-tune a language model with LoRA adapters on a small dataset.",
    "Low-rank adaptation trains two small matrices per layer while the base weights stay frozen.",
    "Training loss measures how well the model predicts the next token of the assistant's reply.",
    "Validation loss is computed on held-out conversations that the model never trained on.",
    "I hear that this has been a difficult week for you. Would you like to talk about what happened?",
    "Thank you for sharing that with me. It makes sense that you feel overwhelmed right now.",
    "Let's break the problem into smaller steps: first the data, then the model, then the evaluation.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000; punctuation: . , ; : ! ? ' \" ( ) [ ] { } - _ / \\ @ # % & * + =",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
]


def corpus_from_files(paths) -> list[str]:
    """Every message text of the given dataset files (any supported format)."""
    from .data import load_dataset

    texts: list[str] = []
    for p in paths:
        for ex in load_dataset(Path(p)).examples:
            texts.extend(m["content"] for m in ex.messages)
    return texts


def build_tiny_model(dest: str | Path, texts: list[str] | None = None, *, chat_template: str | None = CHATML_TEMPLATE,
                     vocab_size: int = 3000, hidden: int = 64, layers: int = 2, heads: int = 4,
                     seed: int = 0) -> Path:
    """A random-initialised Llama with a BPE tokenizer trained on ``texts``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest = Path(dest)
    texts = list(texts or []) + BUILTIN_TEXT
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
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                      max_position_embeddings=8192, tie_word_embeddings=False,
                      bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                      pad_token_id=hf_tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.save_pretrained(str(dest), safe_serialization=True)
    return dest
