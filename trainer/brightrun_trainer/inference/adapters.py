"""The agent's on-disk adapter cache.

An adapter is keyed on its ``model_id`` + ``version`` (docs/agent-protocol.md,
"Inference"): the first request downloads its files through the signed URLs
into ``<dir>/<key>/`` (via a temporary directory, renamed when every file has
its declared size), later requests reuse it. When the cache holds more than
``limit_bytes``, the least recently used adapters that no request is using are
deleted. The last use is the directory's mtime, so the order survives restarts.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TrainerError
from ..httpreporter import Api, ApiError, RetryableError, safe_relative
from .engine import adapter_name

log = logging.getLogger("brightrun.inference")

REQUIRED = ("adapter_config.json",)
DOWNLOAD_TRIES = 3


class AdapterError(TrainerError):
    """The adapter could not be fetched or is incomplete."""

    error_class = "internal"


@dataclass
class CachedAdapter:
    name: str      # PEFT adapter name (see engine.adapter_name)
    path: Path
    size: int
    downloaded: bool
    seconds: float


class AdapterCache:
    def __init__(self, root: str | Path, api: Api, *, limit_bytes: int = 2 << 30):
        self.root = Path(root).expanduser()
        self.api = api
        self.limit_bytes = int(limit_bytes)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._pins: dict[str, int] = {}
        self.downloads = 0   # adapters downloaded (tests, logs)

    def get(self, spec: dict, stop: threading.Event | None = None) -> CachedAdapter:
        """The local directory of the adapter ``spec`` ({model_id, version, files}), pinned
        until :meth:`release` is called with its name."""
        model_id, version = str(spec.get("model_id") or ""), spec.get("version")
        if not model_id:
            raise AdapterError("the request's adapter has no model_id")
        files = spec.get("files") or []
        if not files:
            raise AdapterError(f"the request's adapter {model_id} lists no files")
        name = adapter_name(model_id, version)
        with self._lock:
            lk = self._key_locks.setdefault(name, threading.Lock())
            self._pins[name] = self._pins.get(name, 0) + 1
        try:
            with lk:
                t0 = time.monotonic()
                dest = self.root / name
                downloaded = False
                if not self._complete(dest, files):
                    self._download(dest, files, model_id, stop)
                    downloaded = True
                os.utime(dest)  # last use, for LRU
                size = _dir_size(dest)
            self.evict()
            return CachedAdapter(name, dest, size, downloaded, time.monotonic() - t0)
        except BaseException:
            self.release(name)
            raise

    def release(self, name: str) -> None:
        with self._lock:
            n = self._pins.get(name, 0) - 1
            if n <= 0:
                self._pins.pop(name, None)
            else:
                self._pins[name] = n

    @staticmethod
    def _complete(dest: Path, files: list[dict]) -> bool:
        if not dest.is_dir():
            return False
        for f in files:
            p = dest / str(f.get("name") or "")
            size = f.get("size")
            if not p.is_file() or (isinstance(size, int) and size >= 0 and p.stat().st_size != size):
                return False
        return True

    def _download(self, dest: Path, files: list[dict], model_id: str, stop) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=self.root))
        try:
            names = set()
            for f in files:
                try:
                    rel = safe_relative(str(f.get("name") or ""))
                except ValueError as e:
                    raise AdapterError(f"adapter {model_id}: {e}") from None
                size = f.get("size")
                if not isinstance(size, int) or size < 0:
                    raise AdapterError(f"adapter {model_id}: file {rel} has no valid size")
                if not f.get("url"):
                    raise AdapterError(f"adapter {model_id}: file {rel} has no URL")
                self._fetch(f["url"], tmp / rel, size, model_id, stop)
                names.add(str(rel))
            missing = [r for r in REQUIRED if r not in names]
            if missing:
                raise AdapterError(f"adapter {model_id}: {', '.join(missing)} is missing; "
                                   "it is not a PEFT adapter")
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
            self.downloads += 1
            log.info("downloaded adapter %s (%d files) into %s", model_id, len(files), dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _fetch(self, url: str, path: Path, size: int, model_id: str, stop) -> None:
        last: Exception | None = None
        for attempt in range(DOWNLOAD_TRIES):
            if stop is not None and stop.is_set():
                raise AdapterError(f"adapter {model_id}: download stopped")
            try:
                self.api.download(url, path, size=size, stop=stop)
                if path.stat().st_size != size:  # Api.download skips the check for size 0
                    raise RetryableError(f"got {path.stat().st_size} bytes, expected {size}")
                return
            except RetryableError as e:
                last = e
                time.sleep(min(4.0, 0.5 * 2 ** attempt))  # backoff between download attempts
            except ApiError as e:
                raise AdapterError(f"adapter {model_id}: downloading {path.name} failed: {e}") from None
        raise AdapterError(f"adapter {model_id}: downloading {path.name} failed {DOWNLOAD_TRIES} times: {last}")

    def entries(self) -> list[tuple[float, str, int]]:
        """(last use, name, bytes) of every cached adapter, oldest first."""
        out = []
        if not self.root.is_dir():
            return out
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith("."):
                out.append((p.stat().st_mtime, p.name, _dir_size(p)))
        return sorted(out)

    def evict(self) -> list[str]:
        """Delete least recently used adapters (not pinned) until the cache fits its limit."""
        removed = []
        with self._lock:
            entries = self.entries()
            total = sum(e[2] for e in entries)
            for _, name, size in entries:
                if total <= self.limit_bytes:
                    break
                if self._pins.get(name):
                    continue
                shutil.rmtree(self.root / name, ignore_errors=True)
                total -= size
                removed.append(name)
                log.info("evicted adapter %s from the cache (%d bytes; limit %d)", name, size, self.limit_bytes)
        return removed


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
