"""Exact token statistics of a dataset for a model (no model weights loaded)."""

from __future__ import annotations

from pathlib import Path

from .config import JobConfig
from .encoding import encode_all, ensure_chat_template, profile_example
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


def exact_profile(data_path: str | Path, model_id: str, validation_share: float = 0.10) -> dict:
    """The exact token profile an agent uploads for a preflight work item
    (docs/agent-protocol.md, "Agent work"): per trainable example
    ``[total, prompt, target, validation]`` in the model's tokens, no
    truncation (see :func:`encoding.profile_example`), with the server's
    validation split rule. The server applies any ``max_seq_length`` to it.
    """
    cfg = JobConfig(base_model=model_id, validation_share=validation_share)
    cfg.validate()
    ds, _, val_ex = prepare_data(Path(data_path), cfg)
    val_ids = {id(e) for e in val_ex}
    tok = load_tokenizer(resolve_model(model_id))
    ensure_chat_template(tok)
    rows = []
    for ex in ds.examples:
        total, prompt, target = profile_example(tok, ex)
        rows.append([total, prompt, target, 1 if id(ex) in val_ids else 0])
    return {"examples": len(rows), "rows": rows}
