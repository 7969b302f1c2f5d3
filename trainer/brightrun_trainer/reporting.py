"""Metric and event reporting.

The trainer talks to one :class:`Reporter`. Every record is a flat JSON object
with a ``type`` field:

- ``stage``     {stage: loading_model|preparing|training|evaluating|saving, ...}
- ``progress``  {step, total_steps, epoch}
- ``metrics``   {step, epoch, training_loss, train_mean_token_accuracy, learning_rate, grad_norm,
                 tokens_per_second, ...}
- ``eval``      {step, epoch, validation_loss, valid_mean_token_accuracy, perplexity}
- ``eval_progress`` {done, total, part}: the final evaluation's parts (0/4 … 4/4)
- ``checkpoint``{step, path}
- ``status``    {status: completed|cancelled|failed, ...}

Every record also carries ``time`` (Unix seconds). A reporter can ask the
trainer to stop: :meth:`Reporter.cancel_requested` is polled after every
optimizer step (an HTTP reporter sets it when the server answers "cancel").
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path


def _clean(value):
    """JSON-safe value: NaN/inf become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Reporter:
    """Base reporter: subclasses override :meth:`emit`."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    # What subclasses implement -------------------------------------------
    def emit(self, record: dict) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    # Cancellation ----------------------------------------------------------
    def request_cancel(self) -> None:
        self._cancel.set()

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # Convenience -----------------------------------------------------------
    def record(self, type_: str, **fields) -> dict:
        rec = {"type": type_, "time": round(time.time(), 3), **fields}
        rec = _clean(rec)
        self.emit(rec)
        return rec

    def stage(self, stage: str, **fields) -> None:
        self.record("stage", stage=stage, **fields)

    def progress(self, step: int, total_steps: int, **fields) -> None:
        self.record("progress", step=step, total_steps=total_steps, **fields)

    def metrics(self, **fields) -> None:
        self.record("metrics", **fields)

    def status(self, status: str, **fields) -> None:
        self.record("status", status=status, **fields)


class JsonlFileReporter(Reporter):
    """Appends one JSON object per line to a file (``metrics.jsonl``)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def emit(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class StreamReporter(Reporter):
    """Writes records as JSON lines to a stream (stdout by default)."""

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream or sys.stdout

    def emit(self, record: dict) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()


class MultiReporter(Reporter):
    """Fans records out; cancellation is requested when any child asks for it."""

    def __init__(self, *children: Reporter) -> None:
        super().__init__()
        self.children = list(children)

    def emit(self, record: dict) -> None:
        for c in self.children:
            c.emit(record)

    def cancel_requested(self) -> bool:
        return super().cancel_requested() or any(c.cancel_requested() for c in self.children)

    def request_cancel(self) -> None:
        super().request_cancel()

    def close(self) -> None:
        for c in self.children:
            c.close()


class MemoryReporter(Reporter):
    """Keeps records in a list (tests, embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict] = []

    def emit(self, record: dict) -> None:
        self.records.append(record)
