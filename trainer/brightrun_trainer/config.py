"""Job configuration: the spec's HyperparameterConfig plus trainer settings."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

DEFAULT_BASE_MODEL = "mistralai/Mistral-7B-v0.1"


@dataclass
class JobConfig:
    # HyperparameterConfig (spec)
    base_model: str = DEFAULT_BASE_MODEL
    learning_rate: float = 2e-4
    batch_size: int = 4
    num_epochs: int = 3
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    warmup_steps: int = 0
    weight_decay: float = 0.0
    # Trainer settings
    max_seq_length: int = 2048
    gradient_accumulation_steps: int = 1
    target_modules: list[str] | str = "all-linear"
    seed: int = 42
    validation_share: float = 0.10
    validation_file: str | None = None  # a separate validation file: used whole instead of the held-out share
    logging_steps: int = 1
    eval_steps: int = 0               # 0: evaluate only at the end
    checkpoint_steps: int = 0         # 0: no intermediate checkpoints
    checkpoint_keep: int = 2          # newest checkpoints kept on disk
    lr_scheduler: str = "cosine"      # cosine | linear | constant (after warmup)
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    load_in_4bit: bool = False        # QLoRA; needs a CUDA GPU and bitsandbytes
    attn_implementation: str = "sdpa"
    device: str = "auto"              # auto | cpu | cuda
    max_steps: int = 0                # 0: num_epochs decides; >0 caps the run
    eval_samples: int = 3             # held-out prompts generated side by side
    eval_max_new_tokens: int = 128
    model_revision: str | None = None

    # ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: dict) -> "JobConfig":
        if not isinstance(raw, dict):
            raise ConfigError("the job config must be a JSON object")
        # Accept the server's envelope {"hyperparameters": {...}, ...} too.
        data = dict(raw.get("hyperparameters", {})) if isinstance(raw.get("hyperparameters"), dict) else {}
        for k, v in raw.items():
            if k != "hyperparameters":
                data.setdefault(k, v)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> "JobConfig":
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
        return cls.from_dict(raw)

    def to_dict(self) -> dict:
        return asdict(self)

    # ------------------------------------------------------------------

    def validate(self) -> None:
        problems: list[str] = []

        def num(name, lo, hi, integer=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
                problems.append(f"{name} must be a number, got {v!r}")
                return
            if integer:
                if isinstance(v, float):
                    if not v.is_integer():
                        problems.append(f"{name} must be an integer, got {v!r}")
                        return
                    setattr(self, name, int(v))
                    v = int(v)
            if v < lo or v > hi:
                problems.append(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")

        if not isinstance(self.base_model, str) or not self.base_model.strip():
            problems.append("base_model must be a non-empty model id or path")
        num("learning_rate", 1e-6, 1e-3)
        num("batch_size", 1, 128, True)
        num("num_epochs", 1, 50, True)
        num("lora_rank", 1, 256, True)
        num("lora_alpha", 1, 512, True)
        num("lora_dropout", 0.0, 0.5)
        num("warmup_steps", 0, 1_000_000, True)
        num("weight_decay", 0.0, 1.0)
        num("max_seq_length", 16, 131072, True)
        num("gradient_accumulation_steps", 1, 1024, True)
        num("seed", 0, 2**32 - 1, True)
        num("validation_share", 0.0, 0.5)
        num("logging_steps", 1, 1_000_000, True)
        num("eval_steps", 0, 1_000_000, True)
        num("checkpoint_steps", 0, 1_000_000, True)
        num("checkpoint_keep", 1, 1000, True)
        num("max_grad_norm", 0.0, 1e6)
        num("max_steps", 0, 10_000_000, True)
        num("eval_samples", 0, 100, True)
        num("eval_max_new_tokens", 1, 4096, True)
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            problems.append(f"lr_scheduler must be cosine, linear or constant, got {self.lr_scheduler!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.attn_implementation not in ("sdpa", "eager", "flash_attention_2", "flex_attention"):
            problems.append(f"attn_implementation {self.attn_implementation!r} is not supported")
        tm = self.target_modules
        if not (tm == "all-linear" or (isinstance(tm, list) and tm and all(isinstance(x, str) and x for x in tm))):
            problems.append('target_modules must be "all-linear" or a non-empty list of module names')
        for b in ("gradient_checkpointing", "load_in_4bit"):
            if not isinstance(getattr(self, b), bool):
                problems.append(f"{b} must be true or false")
        if problems:
            raise ConfigError("invalid job config: " + "; ".join(problems), details={"problems": problems})
