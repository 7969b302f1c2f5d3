"""The memory check that refuses a job before its weights are loaded."""

import pytest

from brightrun_trainer import memory
from brightrun_trainer.config import JobConfig
from brightrun_trainer.errors import OOMError
from brightrun_trainer.reporting import MemoryReporter
from brightrun_trainer.train import ComputePath, largest_forward_tokens, run_training

from conftest import write_config

SMOL = memory.Arch(layers=30, hidden=576, intermediate=1536, vocab=49152, heads=9, kv_heads=3, tied=True)


def test_smollm2_figures_match_the_estimator():
    # internal/training/estimate uses the same formula: 2.12 MB/token in bf16 with dropout (H100 fit).
    assert SMOL.bytes_per_token(0.1, "cuda", False) / 1e6 == pytest.approx(2.12, rel=0.01)
    assert SMOL.parameters() == pytest.approx(134_515_008, rel=0.001)
    need = memory.estimate(SMOL, rank=8, dropout=0.05, device="cpu", autocast=True, tokens=1024)
    assert 3.0 < need.total_gb < 6.0  # the demo run's peak RSS (bench/trainer/README.md)
    # bf16 frozen weights: measured 3.64 GiB peak RSS for the 966-token longest EQ-12 example
    # (bench/trainer/cpu_fast.py --variants autocast,fast --longest 4 --steps 1; autocast: 4.66).
    bf16 = memory.estimate(SMOL, rank=8, dropout=0.05, device="cpu", autocast=True, tokens=966, bf16_weights=True)
    ac = memory.estimate(SMOL, rank=8, dropout=0.05, device="cpu", autocast=True, tokens=966)
    assert 3.64 <= bf16.total_gb < 3.64 * 1.1 and 4.66 <= ac.total_gb < 4.66 * 1.1
    assert bf16.weights_gb == pytest.approx(ac.weights_gb / 2)


def test_largest_forward_depends_on_the_path():
    class E:
        def __init__(self, n):
            self.n_tokens = n
    encs = [E(n) for n in (900, 700, 650, 300, 100)]
    assert largest_forward_tokens(encs, ComputePath("single"), 4, 1024) == 900
    assert largest_forward_tokens(encs, ComputePath("packed"), 4, 1024) == 3 * 1024  # 2550 tokens -> 3 rows
    assert largest_forward_tokens(encs, ComputePath("packed"), 1, 1024) == 900


def test_a_job_that_does_not_fit_is_refused_before_loading(tmp_path, tiny_model, real_data, monkeypatch):
    # The machine's free memory cannot be made small here: the one boundary replaced is the reading of it.
    monkeypatch.setattr(memory, "available_gb", lambda device: 0.05)
    cfg = write_config(tmp_path / "job.json", base_model=str(tiny_model))
    rep = MemoryReporter()
    with pytest.raises(OOMError, match=r"not started: this job needs about .* GB .* has 0\.1 GB of RAM available"):
        run_training(JobConfig.load(cfg), real_data["eq12_jsonl"], tmp_path / "out", reporter=rep)
    assert "loading_model" not in [r.get("stage") for r in rep.records if r["type"] == "stage"]
    monkeypatch.setenv("BRIGHTRUN_SKIP_MEMORY_CHECK", "1")
    need = memory.estimate(SMOL, rank=8, dropout=0.0, device="cpu", autocast=False, tokens=10)
    memory.check(need, "cpu", batch_size=1, max_seq_length=10, single_rows=True)  # skipped: no error


def _rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_release_free_heap_returns_a_fragmented_heap_to_the_os():
    """Freed blocks below glibc's mmap threshold stay in the heap (RSS) while a
    live block above them stops the top from being trimmed; malloc_trim(0)
    gives their pages back. This is what kept the quick-demo job's RSS climbing
    step after step (memory.release_free_heap)."""
    import os

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux)")
    blocks = [bytearray(b"x" * (64 << 10)) for _ in range(4000)]  # 250 MiB of 64 KiB heap blocks, touched
    keep = blocks[::50]  # every 50th stays alive: the heap cannot shrink from the top
    del blocks
    before = _rss_mib()
    assert not memory.release_free_heap("cpu", env={"BRIGHTRUN_MALLOC_TRIM": "0"})  # off: nothing happens
    assert not memory.release_free_heap("cuda", env={})  # only the CPU's heap holds tensors
    if not memory.release_free_heap("cpu", env={}):
        pytest.skip("not glibc")
    after = _rss_mib()
    assert before - after > 150, (before, after)  # most of the 245 MiB freed came back
    assert len(keep) == 80
