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


# ----------------------------------------------------------------------------
# GGUF (llama.cpp's own converter)

LLAMA_CPP_VERSION = "0.3.36"
CONVERTER_HELP = (
    "GGUF export needs llama.cpp's converter, which the source distribution of llama-cpp-python ships: "
    "run scripts/llama-cpp-converter.sh (scripts/trainer-setup.sh runs it; it unpacks "
    f"llama-cpp-python=={LLAMA_CPP_VERSION}'s converter into .cache/llama.cpp-{LLAMA_CPP_VERSION}), or "
    f"`pip download llama-cpp-python=={LLAMA_CPP_VERSION} --no-deps --no-binary :all:`, unpack it, and pass "
    "--llama-cpp <unpacked>/vendor/llama.cpp (or set BRIGHTRUN_LLAMA_CPP_DIR); the converter also needs "
    "`pip install sentencepiece==0.2.3`")

# Ollama Modelfile TEMPLATEs (Go templates) for the chat templates BrightRun trains with.
CHATML_OLLAMA = ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
                 '<|im_start|>assistant\n')
FALLBACK_OLLAMA = ('{{- range .Messages }}{{ if eq .Role "system" }}### System:\n{{ .Content }}\n\n'
                   '{{ else if eq .Role "user" }}### User:\n{{ .Content }}\n\n'
                   '{{ else }}### Assistant:\n{{ .Content }}\n\n{{ end }}{{ end }}### Assistant:\n')


def default_converter_dirs() -> list[Path]:
    """Where scripts/llama-cpp-converter.sh puts the converter: ``.cache/llama.cpp-VERSION`` in the
    checkout the trainer runs from (an editable install), and beside the venv it runs in."""
    import sys

    name = Path(".cache") / f"llama.cpp-{LLAMA_CPP_VERSION}"
    dirs = [Path(__file__).resolve().parents[2] / name, Path(sys.prefix).resolve().parent / name]
    return list(dict.fromkeys(dirs))


def _complete(d: Path) -> bool:
    return (d / "convert_hf_to_gguf.py").is_file() and (d / "gguf-py").is_dir()


def converter_dir(given: str | Path | None = None) -> Path:
    """llama.cpp's converter: ``given``, else ``$BRIGHTRUN_LLAMA_CPP_DIR``, else the setup's cache dir."""
    d = given or os.environ.get("BRIGHTRUN_LLAMA_CPP_DIR")
    if not d:
        for c in default_converter_dirs():
            if _complete(c):
                return c
        raise ConfigError(CONVERTER_HELP)
    d = Path(d).expanduser()
    if not _complete(d):
        raise ConfigError(f"{d} has no convert_hf_to_gguf.py and gguf-py/: {CONVERTER_HELP}")
    return d


def has_converter() -> bool:
    """Whether this machine can make GGUF exports (an agent claims GGUF work only then)."""
    try:
        converter_dir()
        return True
    except ConfigError:
        return False


def modelfile(gguf_name: str, tokenizer) -> str:
    """An Ollama Modelfile for the GGUF file, carrying the chat template the model was trained with."""
    from .encoding import FALLBACK_CHAT_TEMPLATE

    tpl = getattr(tokenizer, "chat_template", "") or ""
    lines = [f"FROM ./{gguf_name}"]
    if "<|im_start|>" in tpl:
        lines += [f'TEMPLATE """{CHATML_OLLAMA}"""', 'PARAMETER stop "<|im_end|>"', 'PARAMETER stop "<|im_start|>"']
    elif tpl == FALLBACK_CHAT_TEMPLATE:
        lines += [f'TEMPLATE """{FALLBACK_OLLAMA}"""', 'PARAMETER stop "### User:"']
        if tokenizer.eos_token:
            lines.append(f'PARAMETER stop "{tokenizer.eos_token}"')
    else:
        # Ollama reads the chat template embedded in the GGUF file (tokenizer.chat_template).
        lines.append("# TEMPLATE: taken from the GGUF file's tokenizer.chat_template")
    return "\n".join(lines) + "\n"


def export_gguf(merged_dir: str | Path, out_file: str | Path, *, llama_cpp: str | Path | None = None,
                outtype: str = "f16") -> dict:
    """Convert a merged model directory to GGUF with llama.cpp's convert_hf_to_gguf.py, and write an
    Ollama ``Modelfile`` beside it."""
    import subprocess
    import sys

    from transformers import AutoTokenizer

    conv = converter_dir(llama_cpp)
    if outtype not in ("f32", "f16", "bf16", "q8_0"):
        raise ConfigError(f"GGUF outtype must be f32, f16, bf16 or q8_0, got {outtype!r}")
    merged_dir, out_file = Path(merged_dir).resolve(), Path(out_file).resolve()   # the converter runs in its own dir
    out_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(conv / "gguf-py"), os.environ.get("PYTHONPATH", "")]))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(conv / "convert_hf_to_gguf.py"), str(merged_dir), "--outfile",
                        str(out_file), "--outtype", outtype], cwd=str(conv), env=env, capture_output=True, text=True)
    if p.returncode != 0 or not out_file.is_file():
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-5:])
        raise ConfigError(f"llama.cpp's converter failed on {merged_dir}: {tail}")
    tok = AutoTokenizer.from_pretrained(str(merged_dir))
    (out_file.parent / "Modelfile").write_text(modelfile(out_file.name, tok))
    return {"kind": "gguf", "file": out_file.name, "outtype": outtype, "bytes": out_file.stat().st_size,
            "seconds": round(time.monotonic() - t0, 2), "modelfile": "Modelfile"}


def export_lora_gguf(adapter_dir: str | Path, base_dir: str | Path, out_file: str | Path, *,
                     llama_cpp: str | Path | None = None, outtype: str = "f16") -> dict:
    """Convert the PEFT adapter itself to a LoRA GGUF file with llama.cpp's convert_lora_to_gguf.py, for
    llama.cpp's ``--lora`` on top of the *base* model's GGUF (not the merged one). ``base_dir`` is any
    directory with the base model's config.json (the merged export's will do: only the config is read)."""
    import subprocess
    import sys

    conv = converter_dir(llama_cpp)
    if outtype not in ("f32", "f16", "bf16", "q8_0"):
        raise ConfigError(f"GGUF outtype must be f32, f16, bf16 or q8_0, got {outtype!r}")
    adapter_dir, base_dir, out_file = Path(adapter_dir).resolve(), Path(base_dir).resolve(), Path(out_file).resolve()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(conv / "gguf-py"), os.environ.get("PYTHONPATH", "")]))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(conv / "convert_lora_to_gguf.py"), "--base", str(base_dir), "--outfile",
                        str(out_file), "--outtype", outtype, str(adapter_dir)], cwd=str(conv), env=env,
                       capture_output=True, text=True)
    if p.returncode != 0 or not out_file.is_file():
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-5:])
        raise ConfigError(f"llama.cpp's LoRA converter failed on {adapter_dir}: {tail}")
    return {"kind": "lora_gguf", "file": out_file.name, "outtype": outtype, "bytes": out_file.stat().st_size,
            "seconds": round(time.monotonic() - t0, 2)}
