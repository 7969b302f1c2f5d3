"""Agent work: the exact preflight an agent computes (work.py, preflight.exact_profile)."""

import threading
from pathlib import Path

import pytest

from brightrun_trainer.preflight import exact_profile, preflight
from brightrun_trainer.work import WorkLoop

from conftest import TINY_MODEL_ID
from fakeserver import FakeServer


def apply(profile: dict, L: int) -> dict:
    """The server's rule (internal/training/preflight.go) over an exact profile."""
    out = {"dropped": 0, "truncated": 0, "kept": 0, "val_total": 0, "val_kept": 0, "tokens": 0, "assistant": 0}
    for total, prompt, target, val in profile["rows"]:
        out["val_total"] += val
        t, a = total, target
        if total > L:
            out["truncated"] += 1   # the trainer counts dropped examples as truncated too
            t = L
            if prompt + target > L:
                a = L - prompt
        if a <= 0:
            out["dropped"] += 1
            continue
        out["kept"] += 1
        if val:
            out["val_kept"] += 1
        else:
            out["tokens"] += t
            out["assistant"] += a
    return out


@pytest.mark.parametrize("data", ["eq12_jsonl", "eq18_json"])
def test_exact_profile_gives_the_trainers_counts(tiny_model, real_data, data):
    """For every max_seq_length, the server's rule over the uploaded profile
    gives the counts `brightrun-trainer preflight` reports: examples kept,
    shortened and dropped, validation kept; and, where nothing is shortened,
    the tokens and assistant tokens of the training split."""
    prof = exact_profile(real_data[data], str(tiny_model))
    rows = prof["rows"]
    assert prof["examples"] == len(rows) > 0
    longest = max(r[0] for r in rows)
    lengths = sorted({64, 256, 1024, longest - 1, longest})
    for L in lengths:
        want = preflight(real_data[data], str(tiny_model), max_seq_length=L)
        got = apply(prof, L)
        assert got["dropped"] == want["dropped_examples"], L
        assert got["truncated"] == want["truncated_examples"], L
        assert got["kept"] == want["kept_examples"], L
        assert got["val_total"] == want["validation_examples"], L
        assert got["val_kept"] == want["validation"]["kept_examples"], L
        if L >= longest:
            assert got["truncated"] == 0
            assert got["tokens"] == want["train"]["tokens"]
            assert got["assistant"] == want["train"]["assistant_tokens"]
    assert sum(r[0] for r in rows) == preflight(real_data[data], str(tiny_model), max_seq_length=longest)["tokens"]


def test_agent_work_loop_uploads_the_exact_profile(models_dir, real_data, tmp_path):
    """The work loop claims a preflight, downloads the dataset through its
    signed URL and completes it with exactly exact_profile's rows; a model it
    cannot load is reported with /fail."""
    srv = FakeServer().start()
    stopping = threading.Event()
    try:
        data = real_data["eq12_jsonl"]
        wid = srv.add_preflight(TINY_MODEL_ID, data.read_bytes(), data.name)
        loop = WorkLoop(srv.url, srv.agent_token, base_models=[TINY_MODEL_ID, "nobody/no-such-model"], work_dir=tmp_path,
                        wait_seconds=1, stopping=stopping).start()
        assert srv.work_done.wait(120), "the work loop did not complete the preflight"
        call, body = srv.work_results[wid]
        assert call == "complete", body
        assert body["preflight"] == exact_profile(data, TINY_MODEL_ID)
        srv.work_done.clear()
        bad = srv.add_preflight("nobody/no-such-model", data.read_bytes(), data.name)
        assert srv.work_done.wait(60)
        call, body = srv.work_results[bad]
        assert call == "fail" and "nobody/no-such-model" in body["message"], body
        assert not srv.errors, srv.errors
    finally:
        stopping.set()
        srv.stop()


def _tiny_adapter(base: Path, dest: Path):
    """A PEFT adapter on the tiny model with non-zero LoRA weights (so merging changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(str(dest))
    return model.eval()


def _greedy(model, tok, n: int = 8) -> list[int]:
    msgs = [{"role": "user", "content": "How do I calm down before an exam?"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    g = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return g[0, ids["input_ids"].shape[1]:].tolist()


def test_agent_export_loop_uploads_a_merged_model(models_dir, tmp_path):
    """The export loop claims a merged export, downloads the adapter through its signed URLs, merges it,
    packs the model directory as a .tar.gz, uploads it through the signed PUT URL from /upload and
    completes with the archive's size and sha256 (the fake server checks both against what it stored).
    The unpacked archive loads with transformers alone and generates the PEFT model's greedy tokens.
    A GGUF export is not claimed by a loop that only makes merged exports."""
    import hashlib
    import io
    import tarfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_model = _tiny_adapter(models_dir / TINY_MODEL_ID, tmp_path / "adapter")
    adapter = {p.name: p.read_bytes() for p in (tmp_path / "adapter").iterdir() if p.is_file()}
    srv = FakeServer().start()
    stopping = threading.Event()
    try:
        gguf = srv.add_export(TINY_MODEL_ID, adapter, "gguf", gguf_type="f16", file_name="t-gguf-f16.tar.gz")
        wid = srv.add_export(TINY_MODEL_ID, adapter, "merged", dtype="float32", file_name="t-merged-float32.tar.gz")
        loop = WorkLoop(srv.url, srv.agent_token, base_models=[TINY_MODEL_ID], work_dir=tmp_path / "w", wait_seconds=1,
                        stopping=stopping, kinds=["export"], export_formats=["merged"]).start()
        assert srv.work_done.wait(180), "the export loop did not complete the export"
        call, body = srv.work_results[wid]
        assert call == "complete", body
        data = srv.objects[f"models/exports/{wid}/t-merged-float32.tar.gz"]
        assert body["export"] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert gguf not in srv.work_results and any(w["id"] == gguf for w in srv.work_queue), \
            "a merged-only agent claimed a GGUF export"
        loop.stop()
        assert not srv.errors, srv.errors
    finally:
        stopping.set()
        srv.stop()
    out = tmp_path / "unpacked"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        tar.extractall(out, filter="data")
    assert all(n.startswith("t-merged-float32/") for n in names), names
    merged_dir = out / "t-merged-float32"
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    tok = AutoTokenizer.from_pretrained(str(merged_dir))
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        assert _greedy(merged, tok) == _greedy(peft_model, tok)


def test_export_loop_offers_gguf_only_with_the_converter(tmp_path, monkeypatch):
    """An export loop lists "gguf" in its claim only when llama.cpp's converter is found."""
    from brightrun_trainer import export

    monkeypatch.setenv("BRIGHTRUN_LLAMA_CPP_DIR", str(tmp_path / "nowhere"))
    assert not export.has_converter()
    loop = WorkLoop("http://127.0.0.1:9", "bra_x", base_models=["*"], kinds=["export"])
    assert loop.export_formats == ["merged"]
    conv = tmp_path / "llama.cpp"
    (conv / "gguf-py").mkdir(parents=True)
    (conv / "convert_hf_to_gguf.py").write_text("")
    monkeypatch.setenv("BRIGHTRUN_LLAMA_CPP_DIR", str(conv))
    assert WorkLoop("http://127.0.0.1:9", "bra_x", base_models=["*"], kinds=["export"]).export_formats == ["merged", "gguf"]
    assert WorkLoop("http://127.0.0.1:9", "bra_x", base_models=["*"]).export_formats == []
