"""Exact token statistics of a dataset for a model (no model weights loaded)."""

from __future__ import annotations

from pathlib import Path

from .config import JobConfig
from .encoding import encode_all, ensure_chat_template
from .models import load_tokenizer, resolve_model
from .train import prepare_data


def preflight(data_path: str | Path, model_id: str, max_seq_length: int = 2048,
              validation_share: float = 0.10, per_example: bool = True) -> dict:
    cfg = JobConfig(base_model=model_id, max_seq_length=max_seq_length, validation_share=validation_share)
    cfg.validate()
    data_path = Path(data_path)
    ds, train_ex, val_ex = prepare_data(data_path, cfg)
    resolved = resolve_model(model_id)
    tok = load_tokenizer(resolved)
    template = ensure_chat_template(tok)
    _, _, all_stats = encode_all(tok, ds.examples, max_seq_length)
    _, _, train_stats = encode_all(tok, train_ex, max_seq_length)
    _, _, val_stats = encode_all(tok, val_ex, max_seq_length)
    return {
        "model": model_id,
        "model_source": resolved.source,
        "chat_template": template,
        "max_seq_length": max_seq_length,
        "data_file": str(data_path),
        "format": ds.format,
        "conversations": ds.conversations,
        "pairs": ds.total_pairs,
        "skipped_pairs": ds.skipped_pairs,
        "trainable_examples": len(ds.examples),
        "train_examples": len(train_ex),
        "validation_examples": len(val_ex),
        "validation_share": validation_share,
        "warnings": ds.warnings,
        **all_stats.to_json(per_example=per_example),
        "train": train_stats.to_json(),
        "validation": val_stats.to_json(),
    }
