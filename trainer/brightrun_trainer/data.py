"""Dataset readers: brightrun-lora-v4 (JSON document and JSON Lines) and
OpenAI ``messages`` JSONL, turned into chat-message examples, plus the
validation split shared with the server.

A training example is: the system prompt, the history turns in order, the user
input (unless it already ends the history), then the target response as the
assistant message the model learns to produce. Consecutive messages with the
same role are merged (joined by a blank line) so that no example ever contains
two user turns in a row.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

FORMAT_V4_JSON = "brightrun-lora-v4-json"
FORMAT_V4_JSONL = "brightrun-lora-v4-jsonl"
FORMAT_OPENAI = "openai-messages-jsonl"

_ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "human": "user",
                 "assistant": "assistant", "gpt": "assistant", "model": "assistant"}


@dataclass
class Example:
    """One chat example.

    ``messages`` are ``{"role", "content"}`` dicts; ``train`` has one bool per
    message saying whether that message's tokens are in the loss (only assistant
    messages can be).
    """

    messages: list[dict]
    train: list[bool]
    conversation_key: str
    source: str = ""

    def prompt_messages(self) -> list[dict]:
        """Messages before the last assistant message (the generation prompt)."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[:last]

    def reference(self) -> str:
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[last]["content"]


@dataclass
class Dataset:
    format: str
    examples: list[Example]
    conversations: int
    total_pairs: int
    skipped_pairs: int
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------
# Helpers


def _text(value) -> str:
    """Message content as text (OpenAI content may be a list of parts)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(value)


def normalize_messages(messages: list[dict], train: list[bool]) -> tuple[list[dict], list[bool]]:
    """Drop empty messages and merge consecutive same-role messages.

    A merged assistant message is trained when any of its parts was.
    """
    out_m: list[dict] = []
    out_t: list[bool] = []
    for m, t in zip(messages, train):
        content = m["content"]
        if not content.strip():
            continue
        if out_m and out_m[-1]["role"] == m["role"]:
            out_m[-1] = {"role": m["role"], "content": out_m[-1]["content"] + "\n\n" + content}
            out_t[-1] = out_t[-1] or t
        else:
            out_m.append({"role": m["role"], "content": content})
            out_t.append(bool(t))
    # A system message can only open the conversation.
    if any(m["role"] == "system" for m in out_m[1:]):
        raise ValueError("system message after the first message")
    return out_m, out_t


def _v4_pair_example(pair: dict, key: str, where: str) -> Example | None:
    """Build the example of one v4 training pair; None when it has no target."""
    target = pair.get("target_response")
    if target is None or not isinstance(target, str) or not target.strip():
        return None
    msgs: list[dict] = []
    system = pair.get("system_prompt")
    if isinstance(system, str) and system.strip():
        msgs.append({"role": "system", "content": system})
    history = pair.get("conversation_history") or []
    if not isinstance(history, list):
        raise DataError(f"{where}: conversation_history must be a list")
    for j, turn in enumerate(history):
        if not isinstance(turn, dict):
            raise DataError(f"{where}.conversation_history[{j}]: expected an object")
        role = _ROLE_ALIASES.get(str(turn.get("role", "")).lower())
        if role not in ("user", "assistant"):
            raise DataError(f"{where}.conversation_history[{j}].role: expected user or assistant, got {turn.get('role')!r}")
        msgs.append({"role": role, "content": _text(turn.get("content"))})
    user_input = _text(pair.get("current_user_input"))
    # Quirk: the last history entry often repeats current_user_input already.
    ends_with_input = bool(msgs) and msgs[-1]["role"] == "user" and msgs[-1]["content"].strip() == user_input.strip()
    if user_input.strip() and not ends_with_input:
        msgs.append({"role": "user", "content": user_input})
    msgs.append({"role": "assistant", "content": target})
    train = [False] * (len(msgs) - 1) + [True]
    try:
        msgs, train = normalize_messages(msgs, train)
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None
    if not any(m["role"] == "user" for m in msgs):
        return None
    return Example(messages=msgs, train=train, conversation_key=key, source=where)


# ----------------------------------------------------------------------------
# Readers


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read data file {path}: {e}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path.name}: invalid UTF-8 at byte {e.start} (line {line})") from None


def _read_v4_document(doc: dict, name: str) -> Dataset:
    convs = doc.get("conversations")
    if not isinstance(convs, list):
        raise DataError(f"{name}: 'conversations' must be a list")
    examples: list[Example] = []
    total = skipped = 0
    keys: set[str] = set()
    for i, conv in enumerate(convs):
        where_c = f"conversations[{i}]"
        if not isinstance(conv, dict):
            raise DataError(f"{name}: {where_c}: expected an object")
        meta = conv.get("conversation_metadata") or {}
        key = meta.get("conversation_id") if isinstance(meta, dict) else None
        if not isinstance(key, str) or not key:
            # Pair-level ids in the document form are placeholders; the
            # conversation's own id is required for a stable split.
            raise DataError(f"{name}: {where_c}.conversation_metadata.conversation_id is missing")
        keys.add(key)
        pairs = conv.get("training_pairs") or []
        if not isinstance(pairs, list):
            raise DataError(f"{name}: {where_c}.training_pairs must be a list")
        for j, pair in enumerate(pairs):
            where = f"{where_c}.training_pairs[{j}]"
            if not isinstance(pair, dict):
                raise DataError(f"{name}: {where}: expected an object")
            total += 1
            ex = _v4_pair_example(pair, key, where)
            if ex is None:
                skipped += 1
            else:
                examples.append(ex)
    return Dataset(FORMAT_V4_JSON, examples, len(keys), total, skipped)


def _iter_jsonl(text: str, name: str):
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}: line {lineno}, column {e.colno}: invalid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{name}: line {lineno}: expected a JSON object")
        yield lineno, obj


def _read_v4_jsonl(text: str, name: str) -> Dataset:
    examples: list[Example] = []
    total = skipped = 0
    keys: set[str] = set()
    warnings: list[str] = []
    declared = None
    for lineno, obj in _iter_jsonl(text, name):
        if "_meta" in obj:
            meta = obj["_meta"] if isinstance(obj["_meta"], dict) else {}
            declared = meta.get("total_pairs")
            continue
        total += 1
        key = obj.get("conversation_id")
        if not isinstance(key, str) or not key:
            meta = obj.get("conversation_metadata")
            key = meta.get("conversation_id") if isinstance(meta, dict) else None
        if not isinstance(key, str) or not key:
            raise DataError(f"{name}: line {lineno}: conversation_id is missing")
        keys.add(key)
        ex = _v4_pair_example(obj, key, f"line {lineno}")
        if ex is None:
            skipped += 1
        else:
            examples.append(ex)
    if declared is not None and declared != total:
        warnings.append(f"header total_pairs={declared} but the file holds {total} pairs")
    return Dataset(FORMAT_V4_JSONL, examples, len(keys), total, skipped, warnings)


def openai_conversation_key(messages: list[dict]) -> str:
    """Hex SHA-256 of the first user message's content (UTF-8)."""
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    return hashlib.sha256(first_user.encode("utf-8")).hexdigest()


def _read_openai(text: str, name: str) -> Dataset:
    examples: list[Example] = []
    total = skipped = 0
    keys: set[str] = set()
    for lineno, obj in _iter_jsonl(text, name):
        total += 1
        raw = obj.get("messages")
        if not isinstance(raw, list):
            raise DataError(f"{name}: line {lineno}: 'messages' must be a list")
        msgs, train = [], []
        for j, m in enumerate(raw):
            if not isinstance(m, dict):
                raise DataError(f"{name}: line {lineno}: messages[{j}] must be an object")
            role = _ROLE_ALIASES.get(str(m.get("role", "")).lower())
            if role is None:
                raise DataError(f"{name}: line {lineno}: messages[{j}].role {m.get('role')!r} is not supported "
                                "(use system, user or assistant)")
            msgs.append({"role": role, "content": _text(m.get("content"))})
            # OpenAI semantics: every assistant message is trained unless weight == 0.
            train.append(role == "assistant" and m.get("weight", 1) != 0)
        try:
            msgs, train = normalize_messages(msgs, train)
        except ValueError as e:
            raise DataError(f"{name}: line {lineno}: {e}") from None
        if not msgs or msgs[-1]["role"] != "assistant" or not any(train):
            skipped += 1
            continue
        key = openai_conversation_key(msgs)
        keys.add(key)
        examples.append(Example(messages=msgs, train=train, conversation_key=key, source=f"line {lineno}"))
    return Dataset(FORMAT_OPENAI, examples, len(keys), total, skipped)


def load_dataset(path: str | Path) -> Dataset:
    """Read any supported dataset file; the format is detected from content."""
    path = Path(path)
    text = _read_text(path)
    name = path.name
    stripped = text.strip()
    if not stripped:
        raise DataError(f"{name}: the file is empty")
    if stripped[0] == "{":
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError:
            doc = None  # more than one JSON value: JSON Lines
        if isinstance(doc, dict):
            if "conversations" in doc:
                return _read_v4_document(doc, name)
            if "messages" in doc:
                return _read_openai(stripped, name)
            if "_meta" not in doc and "target_response" not in doc:
                raise DataError(f"{name}: unrecognised JSON document (expected brightrun-lora-v4 with "
                                "'conversations', or JSON Lines)")
    elif stripped[0] != "[":
        line = stripped.splitlines()[0][:60]
        raise DataError(f"{name}: not a supported dataset (expected JSON or JSON Lines); first line: {line!r}")
    else:
        raise DataError(f"{name}: a top-level JSON array is not a supported dataset format")
    # JSON Lines: decide by the first record.
    for _, first in _iter_jsonl(stripped, name):
        if "_meta" in first or "target_response" in first or "current_user_input" in first:
            return _read_v4_jsonl(stripped, name)
        if "messages" in first:
            return _read_openai(stripped, name)
        raise DataError(f"{name}: line 1 is neither a brightrun-lora-v4 record nor an OpenAI "
                        "{'messages': [...]} record")
    raise DataError(f"{name}: the file holds no records")


# ----------------------------------------------------------------------------
# Validation split (identical to the server's rule)


def validation_count(n: int, share: float) -> int:
    """k = min(n - 1, max(1, round(share * n))); k = 0 when n < 2 or share <= 0.

    The server's validator uses exactly this rule (docs/datasets-format.md):
    at least one conversation always stays in training. round() is half away
    from zero (Go's math.Round), computed as floor(share * n + 0.5) since
    share * n >= 0; Python's round() would round half to even and disagree
    with the server for e.g. n = 25, share = 0.1.
    """
    if n < 2 or share <= 0:
        return 0
    return min(n - 1, max(1, math.floor(share * n + 0.5)))


def split_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validation_keys(keys, share: float) -> set[str]:
    """The conversation keys that go to validation."""
    uniq = sorted(set(keys), key=split_key_digest)
    k = validation_count(len(uniq), share)
    return set(uniq[:k])


def split_examples(examples: list[Example], share: float) -> tuple[list[Example], list[Example]]:
    """(train, validation), all pairs of a conversation on the same side.

    n counts the conversations that have at least one trainable example.
    """
    val_keys = validation_keys([e.conversation_key for e in examples], share)
    train = [e for e in examples if e.conversation_key not in val_keys]
    val = [e for e in examples if e.conversation_key in val_keys]
    return train, val
