"""Exports of a trained adapter: the base model with the adapter merged into its weights.

``brightrun-trainer export --merged --model BASE --adapter DIR --out OUT`` loads the base
model (resolved like a job's ``base_model``), applies the PEFT adapter, merges it
(``merge_and_unload``) and saves a plain transformers model directory:
``model.safetensors`` (sharded when large), ``config.json``, ``generation_config.json``,
the tokenizer files with the chat template the adapter was trained with (the adapter's
own tokenizer when it ships one, else the base model's, with the trainer's fallback
template when the model has none) and ``brightrun_export.json`` describing the export.
The result loads with ``AutoModelForCausalLM.from_pretrained`` and needs no PEFT.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .encoding import ensure_chat_template
from .errors import ConfigError


def _tokenizer(resolved, adapter_dir: Path):
    from transformers import AutoTokenizer

    from .models import load_tokenizer

    if (adapter_dir / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(adapter_dir))
        source = "adapter"
    else:
        tok = load_tokenizer(resolved)
        source = "base"
    template = ensure_chat_template(tok)
    return tok, source, template


def export_merged(base_model: str, adapter_dir: str | Path, out: str | Path, *, dtype: str = "float32") -> dict:
    import torch
    from peft import PeftModel

    from .models import load_model, resolve_model

    adapter_dir = Path(adapter_dir)
    out = Path(out)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter_dir}: no adapter_config.json; pass the directory of a PEFT adapter")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    t0 = time.monotonic()
    resolved = resolve_model(base_model)
    tok, tok_source, template = _tokenizer(resolved, adapter_dir)
    model = load_model(resolved, device="cpu")   # fp32 on the CPU: the merge is exact there
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    merged = model.merge_and_unload()
    merged.to(getattr(torch, dtype))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        info = {"kind": "merged", "base_model": base_model, "adapter": str(adapter_dir), "dtype": dtype,
                "tokenizer_from": tok_source, "chat_template": template,
                "seconds": round(time.monotonic() - t0, 2)}
        info["files"] = sorted(p.name for p in tmp.iterdir())
        (tmp / "brightrun_export.json").write_text(json.dumps(info, indent=2) + "\n")
        info["files"].append("brightrun_export.json")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info
