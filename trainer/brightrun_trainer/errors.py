"""Error classes shared by every trainer entry point.

Every expected failure is raised as a :class:`TrainerError` carrying one of the
error classes below; the CLI turns it into one JSON line on stderr and a
non-zero exit code (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import json
import sys

ERROR_CLASSES = ("data", "config", "model_load", "oom", "internal")

# Exit codes by error class; cancellation has its own code.
EXIT_CODES = {
    "internal": 1,
    "config": 3,
    "data": 4,
    "model_load": 5,
    "oom": 6,
}
EXIT_CANCELLED = 10


class TrainerError(Exception):
    """An expected failure with a stable error class."""

    error_class = "internal"

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict:
        out = {"error_class": self.error_class, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class DataError(TrainerError):
    error_class = "data"


class ConfigError(TrainerError):
    error_class = "config"


class ModelLoadError(TrainerError):
    error_class = "model_load"


class OOMError(TrainerError):
    error_class = "oom"


class InternalError(TrainerError):
    error_class = "internal"


class Cancelled(Exception):
    """Raised inside the training loop when a stop was requested."""


def emit_error(err: TrainerError, stream=None) -> int:
    """Print the error as one JSON line and return the exit code."""
    stream = stream or sys.stderr
    stream.write(json.dumps(err.to_json(), ensure_ascii=False) + "\n")
    stream.flush()
    return EXIT_CODES.get(err.error_class, 1)


def classify(e: BaseException) -> TrainerError:
    """The TrainerError for any exception: itself, an out-of-memory error, or
    an internal error naming the exception type."""
    if isinstance(e, TrainerError):
        return e
    try:
        import torch

        if isinstance(e, torch.OutOfMemoryError):
            return OOMError(f"out of memory: {str(e).splitlines()[0][:300]}")
    except Exception:
        pass
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e)):
        return OOMError(f"out of memory: {str(e)[:300]}")
    return InternalError(f"{type(e).__name__}: {str(e)[:500]}")
