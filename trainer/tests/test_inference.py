"""Inference on the agent: the engine (tiny real model + real PEFT adapters), the adapter cache and
the agent's inference loop against the in-memory protocol server (tests/fakeserver.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from brightrun_trainer.errors import ConfigError
from brightrun_trainer.inference.adapters import AdapterCache, AdapterError
from brightrun_trainer.inference.engine import Engine, GenParams, StopText, adapter_name
from brightrun_trainer.inference.loop import InferenceLoop, StreamPoster
from brightrun_trainer.httpreporter import Api

from fakeserver import FakeServer

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "How do I fine-tune a language model with LoRA?"}]


def make_adapter(base: Path, dest: Path, *, seed: int, scale: float = 20.0) -> Path:
    """A real PEFT LoRA adapter of ``base`` with non-zero (random) weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                     init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(scale)
    peft_model.save_pretrained(str(dest))
    return dest


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("adapters")
    return {"a": make_adapter(tiny_model, d / "a", seed=1), "b": make_adapter(tiny_model, d / "b", seed=2)}


@pytest.fixture(scope="module")
def engine(tiny_model) -> Engine:
    return Engine(device="cpu")


def greedy(n: int = 8, **kw) -> GenParams:
    return GenParams(max_tokens=n, temperature=0.0, **kw)


def gen(engine, model, adapter=None, params=None, **kw):
    ad = (adapter_name(str(adapter), 1), adapter) if adapter is not None else None
    return engine.generate(str(model), MESSAGES, params or greedy(), adapter=ad, **kw)


# ----------------------------------------------------------------------------
# The engine


def test_greedy_is_deterministic_and_streams_the_whole_text(engine, tiny_model):
    chunks: list[str] = []
    a = gen(engine, tiny_model, on_text=chunks.append)
    b = gen(engine, tiny_model)
    assert a.text == b.text and a.text
    assert "".join(chunks) == a.text
    assert a.finish_reason == "length" and a.completion_tokens == 8
    assert a.prompt_tokens > 10
    assert set(a.timings) >= {"load_seconds", "first_token_seconds", "generate_seconds"}
    assert b.timings["load_seconds"] == 0.0   # the base model stays loaded


def test_base_and_adapters_share_one_loaded_model(engine, tiny_model, adapters):
    base_before = gen(engine, tiny_model)
    with_a = gen(engine, tiny_model, adapters["a"], params=greedy(12))
    with_b = gen(engine, tiny_model, adapters["b"], params=greedy(12))
    base_after = gen(engine, tiny_model)
    assert with_a.text != base_before.text and with_b.text != with_a.text
    # The base answer comes from the same weights with the adapter layers disabled.
    assert base_after.text == base_before.text
    assert engine.loaded_models() == [str(tiny_model)]
    lb = engine.bases[str(tiny_model)]
    assert set(lb.adapters) == {adapter_name(str(adapters["a"]), 1), adapter_name(str(adapters["b"]), 1)}
    # Same adapter again: the same answer, nothing loaded.
    again = gen(engine, tiny_model, adapters["a"], params=greedy(12))
    assert again.text == with_a.text and again.timings["load_seconds"] == 0.0


def test_adapter_answer_matches_peft_from_pretrained(tiny_model, adapters):
    """The engine's adapter answer (exact weights: int8 decoding is tested in test_int8.py) is what a
    fresh PeftModel of that adapter generates greedily."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    engine = Engine(device="cpu", quantize="none")
    ours = gen(engine, tiny_model, adapters["b"], params=greedy(10))
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    dtype = engine.torch_dtype()   # the engine serves bf16 on CPUs with bf16 units
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=dtype),
                                      str(adapters["b"])).eval()
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
    ref = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert ours.text == ref


def test_seed_reproduces_sampling(engine, tiny_model):
    p = dict(max_tokens=10, temperature=1.0, top_p=0.9)
    a = gen(engine, tiny_model, params=GenParams(seed=5, **p))
    b = gen(engine, tiny_model, params=GenParams(seed=5, **p))
    c = gen(engine, tiny_model, params=GenParams(seed=6, **p))
    assert a.text == b.text
    assert c.text != a.text


def test_stop_string_ends_the_answer_and_is_never_streamed(engine, tiny_model):
    full = gen(engine, tiny_model, params=greedy(16)).text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip(), full
    chunks: list[str] = []
    res = gen(engine, tiny_model, params=greedy(16, stop=[stop]), on_text=chunks.append)
    assert res.finish_reason == "stop"
    assert res.text == full[:full.find(stop)]
    assert "".join(chunks) == res.text
    assert res.completion_tokens < 16


def test_stop_text_holds_back_possible_stop_prefixes():
    s = StopText(["END"])
    assert s.push("hello E") == "hello "
    assert s.push("hello EN") == ""
    assert s.push("hello ENx") == "ENx"
    assert s.push("hello ENx and END more") == " and "
    assert s.stopped and s.sent == "hello ENx and "
    u = StopText([])
    assert u.push("caf\ufffd") == ""          # an unfinished UTF-8 sequence waits
    assert u.push("café") == "café"


def test_max_tokens_and_cancellation(engine, tiny_model):
    res = gen(engine, tiny_model, params=greedy(3))
    assert res.finish_reason == "length" and res.completion_tokens == 3
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(t):
        seen.append(t)
        cancel.set()

    res = gen(engine, tiny_model, params=greedy(50), on_text=on_text, cancel=cancel)
    assert res.finish_reason == "cancelled"
    assert res.completion_tokens < 5


def test_bad_parameters_and_too_long_prompts_are_config_errors(engine, tiny_model):
    with pytest.raises(ConfigError, match="temperature"):
        GenParams.from_dict({"temperature": 3})
    with pytest.raises(ConfigError, match="max_tokens"):
        GenParams.from_dict({"max_tokens": 0})
    with pytest.raises(ConfigError, match="context"):
        gen(engine, tiny_model, params=greedy(10_000))


def test_concurrent_requests_take_turns(engine, tiny_model, adapters):
    """Four streams at once (base and two adapters) give the same answers as one at a time."""
    jobs = [None, adapters["a"], adapters["b"], None]
    alone = [gen(engine, tiny_model, a, params=greedy(10)).text for a in jobs]
    out: list = [None] * len(jobs)

    def run(i):
        out[i] = gen(engine, tiny_model, jobs[i], params=greedy(10)).text

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert out == alone


# ----------------------------------------------------------------------------
# The adapter cache


@pytest.fixture
def server():
    s = FakeServer().start()
    yield s
    s.stop()


def publish(server: FakeServer, adapter_dir: Path, model_id: str, version: int = 1, **file_over) -> dict:
    """Put an adapter's files into the fake storage; returns the request's adapter spec."""
    files = []
    for p in sorted(adapter_dir.iterdir()):
        key = f"lora-models/{model_id}/v{version}/{p.name}"
        server.objects[key] = p.read_bytes()
        f = {"name": p.name, "key": key}
        f.update(file_over.get(p.name, {}))
        files.append(f)
    return {"model_id": model_id, "version": version, "files": files}


def spec_of(server: FakeServer, adapter: dict) -> dict:
    return server._inference_assignment(type("R", (), {"adapter": adapter, "id": "x", "base_model": "m",
                                                       "messages": [], "params": {}, "timeout_seconds": 1})())["adapter"]


def test_adapter_cache_downloads_once_and_checks_sizes(server, adapters, tmp_path):
    api = Api(server.url)
    cache = AdapterCache(tmp_path / "cache", api)
    spec = spec_of(server, publish(server, adapters["a"], "m1"))
    first = cache.get(spec)
    cache.release(first.name)
    second = cache.get(spec)
    cache.release(second.name)
    assert first.downloaded and not second.downloaded and cache.downloads == 1
    assert first.path == second.path
    assert (first.path / "adapter_model.safetensors").read_bytes() == \
        (adapters["a"] / "adapter_model.safetensors").read_bytes()
    # A new version is another cache entry.
    v2 = cache.get(spec_of(server, publish(server, adapters["b"], "m1", version=2)))
    cache.release(v2.name)
    assert v2.path != first.path and cache.downloads == 2

    bad = publish(server, adapters["a"], "m2", **{"adapter_model.safetensors": {"size": 12345}})
    with pytest.raises(AdapterError, match="adapter_model.safetensors"):
        cache.get(spec_of(server, bad))
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache").iterdir())   # no partial download left
    assert adapter_name("m2", 1) not in {p.name for p in (tmp_path / "cache").iterdir()}
    api.close()


def test_adapter_cache_evicts_least_recently_used_unpinned(server, adapters, tmp_path):
    api = Api(server.url)
    one = sum(f.stat().st_size for f in adapters["a"].iterdir())
    cache = AdapterCache(tmp_path / "cache", api, limit_bytes=int(one * 2.5))
    got = {}
    for mid in ("x1", "x2"):
        got[mid] = cache.get(spec_of(server, publish(server, adapters["a"], mid)))
        cache.release(got[mid].name)
    pinned = cache.get(spec_of(server, publish(server, adapters["a"], "x1")))   # x1 is now the most recent
    got["x3"] = cache.get(spec_of(server, publish(server, adapters["a"], "x3")))
    names = {e[1] for e in cache.entries()}
    assert names == {got["x1"].name, got["x3"].name}      # x2 was the least recently used
    # Pinned adapters are never evicted, even over the limit.
    cache.limit_bytes = 1
    cache.evict()
    assert {e[1] for e in cache.entries()} == {got["x1"].name, got["x3"].name}
    cache.release(pinned.name)
    cache.release(got["x3"].name)
    cache.evict()
    assert cache.entries() == []
    api.close()


# ----------------------------------------------------------------------------
# The agent's inference loop, end to end against the protocol server


def start_loop(server, engine, tmp_path, models, **kw) -> InferenceLoop:
    loop = InferenceLoop(server.url, server.agent_token, engine=engine, cache_dir=tmp_path / "cache",
                         base_models=models, caps={"gpu_type": "CPU", "gpu_count": 1, "gpu_memory_gb": 0.0},
                         name="test-agent", wait_seconds=1, **kw)
    return loop.start()


def test_loop_claims_streams_batches_and_finishes_with_usage(server, engine, tiny_model, adapters, tmp_path):
    model = str(tiny_model)
    direct = gen(engine, tiny_model, adapters["a"], params=greedy(24))
    spec = publish(server, adapters["a"], str(adapters["a"]), version=1)
    req = server.add_inference(model, MESSAGES, {"max_tokens": 24, "temperature": 0, "top_p": 1.0, "seed": None,
                                                 "stop": []}, adapter=spec)
    base_req = server.add_inference(model, MESSAGES, {"max_tokens": 6, "temperature": 0})
    loop = start_loop(server, engine, tmp_path, [model])
    try:
        assert req.done.wait(60) and base_req.done.wait(60)
    finally:
        loop.stop()
    assert server.errors == []
    claim = server.inference_claims[0]
    assert claim["base_models"] == [model] and claim["agent"]["name"] == "test-agent"
    assert [p["seq"] for p in req.posts] == list(range(len(req.posts)))
    assert req.text == direct.text
    fin = req.final
    assert fin["finish_reason"] == "length"
    assert fin["usage"] == {"prompt_tokens": direct.prompt_tokens, "completion_tokens": 24}
    assert fin["timings"]["first_token_seconds"] > 0 and fin["timings"]["generate_seconds"] > 0
    # Batching: at most one post per token, never an empty non-final post while tokens flow.
    assert len(req.posts) <= 25
    assert base_req.text == gen(engine, tiny_model, params=greedy(6)).text
    assert base_req.final["usage"]["completion_tokens"] == 6


def test_loop_stops_generating_when_the_server_says_cancel(server, engine, tiny_model, tmp_path):
    req = server.add_inference(str(tiny_model), MESSAGES, {"max_tokens": 400, "temperature": 0})

    def cancel_after_first(r, body):
        if len(r.posts) == 1:
            r.cancel = True

    server.stream_hooks.append(cancel_after_first)
    loop = start_loop(server, engine, tmp_path, [str(tiny_model)])
    try:
        assert req.done.wait(60)
    finally:
        loop.stop()
    assert server.errors == []
    assert req.final["finish_reason"] == "cancelled"
    assert req.final["usage"]["completion_tokens"] < 400


def test_loop_reports_failures_as_errors_and_keeps_serving(server, engine, tiny_model, adapters, tmp_path):
    model = str(tiny_model)
    bad_size = publish(server, adapters["a"], "broken", **{"adapter_config.json": {"size": 3}})
    r1 = server.add_inference(model, MESSAGES, {"max_tokens": 4, "temperature": 0}, adapter=bad_size)
    r2 = server.add_inference(model, MESSAGES, {"max_tokens": 4, "temperature": 5})
    r3 = server.add_inference(model, MESSAGES, {"max_tokens": 4, "temperature": 0})
    server.inject["stream"] = [503, "drop"]    # the first posts fail: retried, seq makes them harmless
    loop = start_loop(server, engine, tmp_path, [model], slots=1)
    try:
        assert r1.done.wait(60) and r2.done.wait(60) and r3.done.wait(60)
    finally:
        loop.stop()
    assert server.errors == []
    assert r1.final["error"]["class"] == "internal" and "adapter_config.json" in r1.final["error"]["message"]
    assert r2.final["error"]["class"] == "config" and "temperature" in r2.final["error"]["message"]
    assert r3.final["finish_reason"] in ("length", "stop") and r3.final["usage"]["completion_tokens"] >= 1


def test_loop_turns_itself_off_on_a_server_without_inference(server, engine, tmp_path):
    server.inject["inference_claim"] = [404]
    loop = start_loop(server, engine, tmp_path, ["m"])
    loop._thread.join(30)
    assert not loop._thread.is_alive() and "404" in (loop.disabled or "")
    loop.stop()


def test_stream_poster_sends_keepalives_and_learns_cancel(server, tiny_model):
    req = server.add_inference("m", MESSAGES)
    server.inference_queue.clear()
    req.claimed_by = "test-agent"
    req.cancel = True
    api = Api(server.url)
    cancel = threading.Event()
    poster = StreamPoster(api, server.agent_token, req.id, cancel, keepalive=0.05)
    assert cancel.wait(30)      # nothing generated yet: the keepalive post learned it
    poster.finish({"finish_reason": "cancelled", "usage": {"prompt_tokens": 1, "completion_tokens": 0}})
    assert req.posts[0] == {"seq": 0, "text": "", "done": False}
    assert req.final["finish_reason"] == "cancelled"
    api.close()


def test_agent_serves_beside_training(server, tiny_model, tmp_path, monkeypatch):
    """The Agent starts the inference loop with --serve and stops it on shutdown."""
    from brightrun_trainer.agent import Agent, ServeSettings

    monkeypatch.setenv("BRIGHTRUN_MODELS_DIR", str(tmp_path / "models"))
    model_id = "brightrun-test/tiny-serve"
    import shutil

    shutil.copytree(tiny_model, tmp_path / "models" / "brightrun-test--tiny-serve")
    agent = Agent(server.url, server.agent_token, gpu_type="CPU", work_dir=tmp_path / "work", wait_seconds=1,
                  serve=ServeSettings(slots=2))
    req = server.add_inference(model_id, MESSAGES, {"max_tokens": 5, "temperature": 0})
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        assert req.done.wait(60)
    finally:
        agent.stop()
        t.join(60)
    assert not t.is_alive()
    assert model_id in server.inference_claims[0]["base_models"]
    assert req.final["usage"]["completion_tokens"] == 5
    assert json.dumps(req.final)  # plain JSON


# ----------------------------------------------------------------------------
# Merged export


def test_export_merged_loads_without_peft_and_matches_the_adapter(tiny_model, adapters, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from brightrun_trainer import cli

    out = tmp_path / "merged"
    assert cli.main(["export", "--merged", "--model", str(tiny_model), "--adapter", str(adapters["a"]),
                     "--out", str(out)]) == 0
    info = json.loads((out / "brightrun_export.json").read_text())
    assert info["kind"] == "merged" and info["chat_template"] == "model"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.chat_template
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    # The same first tokens (greedy) as the base model with the adapter, served by the engine in fp32.
    fp32 = Engine(device="cpu", dtype="float32")
    ours = gen(fp32, tiny_model, adapters["a"], params=greedy(10))
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    g = merged.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
    assert tok.decode(g[0, ids["input_ids"].shape[1]:], skip_special_tokens=True) == ours.text
    assert cli.main(["export", "--merged", "--model", str(tiny_model), "--adapter", str(tmp_path),
                     "--out", str(tmp_path / "x")]) == 3   # not an adapter: a config error


# ----------------------------------------------------------------------------
# Agent defaults


def test_local_models_lists_both_layouts_of_the_models_directory(tmp_path, monkeypatch):
    from brightrun_trainer.inference.loop import local_models
    from brightrun_trainer.models import find_packaged_gguf

    for d in ("org--flat", "org2/nested", "org3--no-config"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "org--flat" / "config.json").write_text("{}")
    (tmp_path / "org2" / "nested" / "config.json").write_text("{}")
    monkeypatch.setenv("BRIGHTRUN_MODELS_DIR", str(tmp_path))
    got = local_models()
    assert got[:2] == ["org/flat", "org2/nested"]
    smol = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (smol in got) == (find_packaged_gguf(smol) is not None)


def test_inference_threads_share_the_cores_among_generations_and_training():
    from brightrun_trainer.inference.engine import torch_threads_for

    # (cores, training, generations, --serve-threads) -> threads per generation
    table = [
        ((2, False, 1, None), 2),    # a lone stream on an idle agent: every core
        ((2, False, 2, None), 1),    # two streams: one core each
        ((2, False, 4, None), 1),    # never less than 1
        ((2, True, 1, None), 1),     # a training job keeps half
        ((16, False, 1, None), 16),
        ((16, False, 3, None), 5),
        ((16, True, 1, None), 8),
        ((16, True, 2, None), 4),
        ((16, False, 1, 4), 4),      # --serve-threads caps it
        ((16, False, 2, 4), 2),
        ((16, True, 1, 12), 8),      # ... and training still takes half
        ((16, False, 1, 64), 16),    # never more than the cores
    ]
    for (cores, training, gens, configured), want in table:
        assert torch_threads_for("cpu", training, cores=cores, configured=configured, generations=gens) == want, \
            (cores, training, gens, configured)
    assert torch_threads_for("cuda", True, cores=16) is None


def _drive(guard, want: int, step_seconds: dict[int, float], steps: int) -> list[int]:
    """Run ``steps`` decode steps through the guard as the engine does, each step costing
    ``step_seconds[threads]``; returns the thread count of every step."""
    used, prev = [], None
    for _ in range(steps):
        n = guard.choose(want, "fast")
        guard.record("fast", n, step_seconds[n], n == prev)   # warm: the team did not change
        used.append(n)
        prev = n
    return used


def test_thread_guard_falls_back_to_one_thread_while_more_are_slower():
    from brightrun_trainer.inference.threads import ThreadGuard

    # a busy machine: 2 threads take 10x longer per step than 1 (measured: 4-30x under load)
    g = ThreadGuard()
    used = _drive(g, 2, {1: 0.05, 2: 0.5}, 3000)
    assert used[:4] == [1, 1, 2, 2]                         # measures one thread first, then two ...
    assert used[4:63] == [1] * 59                           # ... and stays on the faster
    checks = [i for i in range(4, 3000) if used[i] == 2 and used[i - 1] != 2]   # where each check starts
    assert all(used[i + 2] == 1 for i in checks)            # a 10x slower warm step ends a check at once
    assert 2 <= len(checks) <= 4                            # re-checks 2 threads rarely ...
    gaps = [b - a for a, b in zip(checks, checks[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > 4 * checks[0]   # ... and far more rarely after a bad check
    assert used.count(2) < 12

    # a disaster (50x slower: measured 3 s against 50 ms per step): even the first, cold step ends a check
    g = ThreadGuard()
    used = _drive(g, 2, {1: 0.05, 2: 2.5}, 300)
    assert used[:4] == [1, 1, 2, 1] and used.count(2) <= 4

    # an idle machine: 2 threads are faster; it keeps them and checks 1 thread rarely
    g = ThreadGuard()
    used = _drive(g, 2, {1: 0.05, 2: 0.03}, 600)
    assert used.count(2) > 575
    starts = [i for i in range(4, 600) if used[i] == 1 and used[i - 1] != 1]
    assert starts and all(used[i:i + 4] == [1] * 4 for i in starts)   # a full check: 4 steps
    # a prefill never checks, and takes the faster choice
    assert all(g.choose(2, "fast", prefill=True) == 2 for _ in range(200))

    # the load goes away: the next check finds 2 threads faster again and switches back
    g = ThreadGuard()
    _drive(g, 2, {1: 0.05, 2: 0.5}, 100)
    used = _drive(g, 2, {1: 0.05, 2: 0.03}, 3000)
    assert used[-300:].count(2) >= 300 - 4
    # one thread wanted (training, several streams): nothing to choose
    assert ThreadGuard().choose(1, "fast") == 1 and ThreadGuard().choose(None, "fast") is None


def test_generations_set_their_threads_from_the_running_count(tiny_model, monkeypatch):
    """The engine counts running generations and re-applies the policy when the count changes."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    training = threading.Event()
    engine = Engine(device="cpu", training_active=training.is_set)
    seen: list[tuple[int, int]] = []
    streaming, release = threading.Event(), threading.Event()
    before = torch.get_num_threads()

    def on_text(_):
        seen.append((engine.generations, engine.threads_now(), torch.get_num_threads()))
        if len(seen) == 2:
            streaming.set()
            release.wait(30)   # hold this stream while the other one starts

    t = threading.Thread(target=engine.generate, args=(str(tiny_model), MESSAGES, greedy(6)),
                         kwargs={"on_text": on_text})
    t.start()
    assert streaming.wait(30)
    assert seen[0][:2] == (1, 8)   # alone: all 8 "cores" ...
    assert all(n in (1, 8) for _, _, n in seen)   # ... or one thread, where the guard measures that
    training.set()
    second: list[int] = []
    engine.generate(str(tiny_model), MESSAGES, greedy(2),
                    on_text=lambda _: second.append((engine.threads_now(), torch.get_num_threads())))
    assert second and second[0][0] == 2            # training: half of 8, shared by 2 generations
    assert all(n in (1, 2) for _, n in second)
    release.set()
    t.join(30)
    assert engine.generations == 0
    torch.set_num_threads(before)


def test_generate_cli_prints_the_answer_usage_and_timings(tiny_model, adapters, capsys):
    from brightrun_trainer import cli

    args = ["generate", "--model", str(tiny_model), "--prompt", "How do I fine-tune a model?", "--max-tokens", "5",
            "--json"]
    assert cli.main(args) == 0
    base = json.loads(capsys.readouterr().out)
    assert base["finish_reason"] in ("length", "stop") and base["usage"]["completion_tokens"] <= 5
    assert cli.main(args + ["--adapter", str(adapters["a"])]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["text"] != base["text"]
    assert cli.main(["generate", "--model", str(tiny_model), "--prompt", "x", "--temperature", "9"]) == 3
