"""Dataset conversion and the validation split."""

import hashlib
import json
import math

import pytest

from brightrun_trainer.data import (FORMAT_OPENAI, FORMAT_V4_JSON, FORMAT_V4_JSONL, load_dataset, split_examples,
                                    validation_count, validation_keys)
from brightrun_trainer.errors import DataError


def assert_well_formed(examples):
    for ex in examples:
        roles = [m["role"] for m in ex.messages]
        assert roles[-1] == "assistant"
        assert "user" in roles
        for a, b in zip(roles, roles[1:]):
            assert a != b, f"consecutive {a} turns in {ex.source}: {roles}"
        assert "system" not in roles[1:]
        assert len(ex.train) == len(ex.messages)
        assert all(m["content"].strip() for m in ex.messages)


@pytest.mark.parametrize("name,fmt,count,conversations", [
    ("eq12_json", FORMAT_V4_JSON, 44, 12),
    ("eq12_jsonl", FORMAT_V4_JSONL, 44, 12),
    ("eq18_json", FORMAT_V4_JSON, 62, 18),
])
def test_real_files_exact_counts(real_data, name, fmt, count, conversations):
    ds = load_dataset(real_data[name])
    assert ds.format == fmt
    assert len(ds.examples) == count
    assert ds.conversations == conversations
    assert_well_formed(ds.examples)
    # v4: only the target response is trained; history assistant turns are context.
    for ex in ds.examples:
        assert ex.train == [False] * (len(ex.messages) - 1) + [True]


def test_real_file_pair_totals(real_data):
    assert load_dataset(real_data["eq12_json"]).total_pairs == 89
    assert load_dataset(real_data["eq12_json"]).skipped_pairs == 45
    assert load_dataset(real_data["eq18_json"]).total_pairs == 128
    jsonl = load_dataset(real_data["eq12_jsonl"])
    assert jsonl.total_pairs == 44
    assert any("total_pairs=89" in w for w in jsonl.warnings)


def test_jsonl_history_repeat_is_not_duplicated(real_data):
    # In the JSONL form the last history entry repeats current_user_input.
    lines = real_data["eq12_jsonl"].read_text(encoding="utf-8").splitlines()[1:]
    pair = json.loads(lines[1])
    assert pair["conversation_history"][-1]["content"] == pair["current_user_input"]
    ds = load_dataset(real_data["eq12_jsonl"])
    ex = ds.examples[1]
    assert [m["content"] for m in ex.messages].count(pair["current_user_input"]) == 1


def test_json_and_jsonl_hold_the_same_examples_and_split(real_data):
    a = load_dataset(real_data["eq12_json"]).examples
    b = load_dataset(real_data["eq12_jsonl"]).examples

    def key(e):
        return (e.conversation_key, json.dumps(e.messages))

    assert sorted(map(key, a)) == sorted(map(key, b))
    ta, va = split_examples(a, 0.10)
    tb, vb = split_examples(b, 0.10)
    assert sorted(map(key, va)) == sorted(map(key, vb))
    assert sorted(map(key, ta)) == sorted(map(key, tb))
    assert len({e.conversation_key for e in va}) == 1  # k = max(1, round(0.1 * 12)) = 1


def test_split_rule_matches_definition(real_data):
    ds = load_dataset(real_data["eq18_json"])
    keys = sorted({e.conversation_key for e in ds.examples})
    n = len(keys)
    k = max(1, math.floor(0.10 * n + 0.5))
    expected = set(sorted(keys, key=lambda s: hashlib.sha256(s.encode()).hexdigest())[:k])
    train, val = split_examples(ds.examples, 0.10)
    assert {e.conversation_key for e in val} == expected
    assert len(expected) == 2  # round(1.8) = 2
    assert not ({e.conversation_key for e in train} & expected)
    assert len(train) + len(val) == 62


@pytest.mark.parametrize("n,share,k", [
    (0, 0.1, 0), (1, 0.1, 0), (1, 0.5, 0), (2, 0.1, 1), (12, 0.1, 1), (15, 0.1, 2),
    (25, 0.1, 3),   # 2.5 rounds half away from zero (Go math.Round), not to even
    (35, 0.1, 4), (100, 0.0, 0), (10, 0.25, 3), (18, 0.1, 2),
    (2, 0.9, 1), (4, 1.0, 3),  # at least one conversation stays in training (as the server's validator)
])
def test_validation_count(n, share, k):
    assert validation_count(n, share) == k


def test_validation_keys_sort_by_digest():
    keys = [f"conv-{i}" for i in range(20)]
    got = validation_keys(keys, 0.1)
    order = sorted(keys, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    assert got == set(order[:2])


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_openai_jsonl(tmp_path):
    lines = [
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                      {"role": "user", "content": "Are you there?"}, {"role": "assistant", "content": "Yes."}]},
        {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "weight": 0},
                      {"role": "user", "content": "Q2"}, {"role": "assistant", "content": [{"type": "text", "text": "A2"}]}]},
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello again"}]},
    ]
    p = write(tmp_path, "chat.jsonl", "\ufeff" + "\r\n".join(json.dumps(x) for x in lines) + "\r\n\r\n")
    ds = load_dataset(p)
    assert ds.format == FORMAT_OPENAI
    assert len(ds.examples) == 3 and ds.skipped_pairs == 1
    assert_well_formed(ds.examples)
    first = ds.examples[0]
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert first.messages[1]["content"] == "Hi\n\nAre you there?"
    assert first.conversation_key == hashlib.sha256("Hi\n\nAre you there?".encode()).hexdigest()
    assert ds.examples[1].train == [False, False, False, True]
    assert ds.examples[1].messages[-1]["content"] == "A2"
    assert ds.examples[2].conversation_key == hashlib.sha256(b"Hi").hexdigest()
    assert ds.conversations == 3


@pytest.mark.parametrize("content,needle", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"hello world", "not a supported"),
    (b'{"foo": 1}', "unrecognised"),
    (b'[1, 2]', "array"),
    (b'{"messages": [{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}\n{"messages": [', "line 2"),
    (b'{"_meta": {"total_pairs": 1}}\n{"conversation_id": "c", "target_response": null, "current_user_input": "x"}\n', None),
    (b"\xff\xfe\x00bad", "UTF-8"),
    (b'{"messages": [{"role": "tool", "content": "x"}]}', "not supported"),
])
def test_bad_data(tmp_path, content, needle):
    p = write(tmp_path, "bad.jsonl", content)
    if needle is None:
        ds = load_dataset(p)  # reads, but has nothing to train on
        assert ds.examples == [] and ds.skipped_pairs == 1
        return
    with pytest.raises(DataError) as ei:
        load_dataset(p)
    assert needle in ei.value.message
    assert ei.value.error_class == "data"


def test_missing_file(tmp_path):
    with pytest.raises(DataError):
        load_dataset(tmp_path / "nope.jsonl")


def test_validation_file_replaces_the_held_out_share(tmp_path):
    """A separate validation file (the OpenAI face's validation_file) is
    evaluated whole and the whole training file trains."""
    from brightrun_trainer.config import JobConfig
    from brightrun_trainer.train import prepare_data

    line = lambda i: json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]})
    train = write(tmp_path, "train.jsonl", "\n".join(line(i) for i in range(20)) + "\n")
    val = write(tmp_path, "val.jsonl", "\n".join(line(100 + i) for i in range(3)) + "\n")
    _, tr, va = prepare_data(train, JobConfig(base_model="m", validation_file=str(val)))
    assert len(tr) == 20 and len(va) == 3
    assert {e.reference() for e in va} == {"a100", "a101", "a102"}
    _, tr, va = prepare_data(train, JobConfig(base_model="m"))
    assert len(tr) + len(va) == 20 and len(va) == 2
