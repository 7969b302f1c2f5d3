"""Chat-template rendering, assistant-only loss masks, truncation and packing."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .data import Example
from .errors import DataError

IGNORE_INDEX = -100

# Used when the base model's tokenizer has no chat template (e.g. base models such
# as mistralai/Mistral-7B-v0.1). Plain-text role headers that every tokenizer can
# encode; the assistant turn ends with the tokenizer's EOS token so the adapter
# learns to stop. The template is saved with the adapter's tokenizer, so
# inference renders prompts exactly as training did.
FALLBACK_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}### System:\n{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}### User:\n{{ message['content'] }}\n\n"
    "{% else %}### Assistant:\n{{ message['content'] }}{% if eos_token %}{{ eos_token }}{% endif %}\n\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


def ensure_chat_template(tokenizer) -> str:
    """Make sure the tokenizer has a chat template; return "model" or "fallback"."""
    if getattr(tokenizer, "chat_template", None):
        return "model"
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return "fallback"


def render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except Exception as e:  # jinja errors raised by strict templates
        raise DataError(f"the model's chat template rejected an example: {e}") from None


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    # Truncation bookkeeping.
    full_tokens: int = 0
    full_assistant_tokens: int = 0
    dropped_messages: int = 0

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_assistant(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)

    @property
    def truncated(self) -> bool:
        return self.full_tokens != len(self.input_ids)


def _spans(tokenizer, messages: list[dict], train: list[bool], full: str) -> list[tuple[int, int]] | None:
    """Character spans of the trained assistant messages in ``full``.

    The span of assistant message i is the text that rendering messages[:i+1]
    adds to rendering messages[:i] with a generation prompt (the content plus
    the template's end-of-turn marker), without trailing whitespace.
    Returns None when the template does not render prefixes consistently.
    """
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or not train[i]:
            continue
        pre = render(tokenizer, messages[:i], True)
        upto = render(tokenizer, messages[: i + 1], False)
        if not upto.startswith(pre) or not full.startswith(upto):
            return None
        end = len(upto.rstrip())
        if end <= len(pre):
            return None
        spans.append((len(pre), end))
    return spans


def encode_messages(tokenizer, messages: list[dict], train: list[bool]) -> Encoded:
    """Token ids and labels (assistant tokens only) of one conversation."""
    full = render(tokenizer, messages, False)
    spans = _spans(tokenizer, messages, train, full)
    if spans is not None and getattr(tokenizer, "is_fast", False):
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels = [IGNORE_INDEX] * len(ids)
        for t, (s, e) in enumerate(enc["offset_mapping"]):
            if e <= s:
                continue
            for a, b in spans:
                if a <= s < b:
                    labels[t] = ids[t]
                    break
        covered = all(any(a <= s < b for s, e in enc["offset_mapping"] if e > s) for a, b in spans)
        if covered:
            if labels:
                labels[0] = IGNORE_INDEX
            return Encoded(ids, labels)
    # Fallback: tokenize the rendered pieces separately and concatenate.
    ids: list[int] = []
    labels: list[int] = []
    prev_text = ""
    for i in range(len(messages)):
        is_trained = messages[i]["role"] == "assistant" and train[i]
        if is_trained:
            pre = render(tokenizer, messages[:i], True)
            if pre.startswith(prev_text):
                chunk = tokenizer(pre[len(prev_text):], add_special_tokens=False)["input_ids"]
                ids += chunk
                labels += [IGNORE_INDEX] * len(chunk)
                prev_text = pre
        upto = render(tokenizer, messages[: i + 1], False)
        if not upto.startswith(prev_text):
            raise DataError("the chat template does not render conversations incrementally; "
                            "cannot locate assistant tokens")
        chunk = tokenizer(upto[len(prev_text):], add_special_tokens=False)["input_ids"]
        ids += chunk
        labels += list(chunk) if is_trained else [IGNORE_INDEX] * len(chunk)
        prev_text = upto
    if labels:
        labels[0] = IGNORE_INDEX
    return Encoded(ids, labels)


def encode_example(tokenizer, example: Example, max_seq_length: int) -> Encoded:
    """Encode with truncation to ``max_seq_length``.

    Truncation first drops the oldest (user, assistant) history pairs after the
    system prompt (keeping the system prompt, the latest user turn and the
    target whole); if the example is still too long, the end is cut.
    """
    messages, train = list(example.messages), list(example.train)
    enc = encode_messages(tokenizer, messages, train)
    full_tokens, full_assistant = enc.n_tokens, enc.n_assistant
    dropped = 0
    while enc.n_tokens > max_seq_length and _drop_oldest_pair(messages, train):
        dropped += 2
        enc = encode_messages(tokenizer, messages, train)
    if enc.n_tokens > max_seq_length:
        enc = Encoded(enc.input_ids[:max_seq_length], enc.labels[:max_seq_length])
    enc.full_tokens, enc.full_assistant_tokens, enc.dropped_messages = full_tokens, full_assistant, dropped
    return enc


def _drop_oldest_pair(messages: list[dict], train: list[bool]) -> bool:
    """Drop the oldest (user, assistant) history pair after the system prompt,
    never the latest user turn or the target; False when none is left."""
    start = 1 if messages and messages[0]["role"] == "system" else 0
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    if start + 1 < last_user and messages[start]["role"] == "user" and messages[start + 1]["role"] == "assistant":
        del messages[start:start + 2]
        del train[start:start + 2]
        return True
    return False


def profile_example(tokenizer, example: Example) -> tuple[int, int, int]:
    """``(total, prompt, target)`` of one example in real tokens, the row of an
    exact token profile (docs/estimates.md, "Preflight").

    ``total``: the whole example's tokens (no truncation). ``prompt``: the
    tokens before the first trained token once :func:`encode_example` has
    dropped every history pair it may drop, what truncation never removes
    before the target; so the example survives a ``max_seq_length`` L (keeps
    at least one assistant token) exactly when ``prompt < L``, and it is
    shortened exactly when ``total > L``. ``target``: the assistant tokens
    trained on when the example is not shortened.
    """
    messages, train = list(example.messages), list(example.train)
    full = encode_messages(tokenizer, messages, train)
    while _drop_oldest_pair(messages, train):
        pass
    short = full if len(messages) == len(example.messages) else encode_messages(tokenizer, messages, train)
    first = next((i for i, x in enumerate(short.labels) if x != IGNORE_INDEX), short.n_tokens)
    return full.n_tokens, first, full.n_assistant


@dataclass
class EncodeStats:
    examples: int = 0
    dropped_examples: int = 0          # no assistant token left after truncation
    truncated_examples: int = 0
    dropped_history_messages: int = 0
    tokens: int = 0                    # after truncation
    assistant_tokens: int = 0          # after truncation
    tokens_before_truncation: int = 0
    assistant_tokens_before_truncation: int = 0
    tokens_per_example: list[int] = field(default_factory=list)

    def add(self, enc: Encoded, kept: bool) -> None:
        self.examples += 1
        self.tokens_before_truncation += enc.full_tokens
        self.assistant_tokens_before_truncation += enc.full_assistant_tokens
        if enc.truncated:
            self.truncated_examples += 1
            self.dropped_history_messages += enc.dropped_messages
        if not kept:
            self.dropped_examples += 1
            return
        self.tokens += enc.n_tokens
        self.assistant_tokens += enc.n_assistant
        self.tokens_per_example.append(enc.n_tokens)

    def to_json(self, per_example: bool = False) -> dict:
        lens = sorted(self.tokens_per_example)

        def pct(p):
            if not lens:
                return 0
            return lens[min(len(lens) - 1, int(round(p / 100 * (len(lens) - 1))))]

        out = {
            "examples": self.examples,
            "kept_examples": self.examples - self.dropped_examples,
            "dropped_examples": self.dropped_examples,
            "truncated_examples": self.truncated_examples,
            "dropped_history_messages": self.dropped_history_messages,
            "tokens": self.tokens,
            "assistant_tokens": self.assistant_tokens,
            "tokens_before_truncation": self.tokens_before_truncation,
            "assistant_tokens_before_truncation": self.assistant_tokens_before_truncation,
            "tokens_cut": self.tokens_before_truncation - self.tokens,
            "assistant_tokens_cut": self.assistant_tokens_before_truncation - self.assistant_tokens,
            "tokens_per_example_stats": {
                "min": lens[0] if lens else 0,
                "p50": pct(50),
                "p95": pct(95),
                "max": lens[-1] if lens else 0,
                "mean": round(statistics.fmean(lens), 2) if lens else 0,
            },
        }
        if per_example:
            out["tokens_per_example"] = list(self.tokens_per_example)
        return out


def encode_all(tokenizer, examples: list[Example], max_seq_length: int) -> tuple[list[Encoded], list[Example], EncodeStats]:
    """Encode examples; those with no assistant token left are dropped."""
    stats = EncodeStats()
    kept, kept_ex = [], []
    for ex in examples:
        enc = encode_example(tokenizer, ex, max_seq_length)
        ok = enc.n_assistant > 0
        stats.add(enc, ok)
        if ok:
            kept.append(enc)
            kept_ex.append(ex)
    return kept, kept_ex, stats


# ----------------------------------------------------------------------------
# Packing


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing bin packing of example indices into rows."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for r in range(len(rows)):
            if room[r] >= n:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(capacity - n)
    return rows


def collate_packed(batch: list[Encoded], capacity: int, pad_id: int):
    """Pack a micro-batch into as few rows as possible.

    Returns tensors input_ids, labels, position_ids of shape [rows, length].
    position_ids restart at 0 for every example; no attention mask is passed, so
    transformers builds a block-diagonal causal mask from the position ids (SDPA,
    eager, flex) or uses variable-length kernels (flash attention): no token
    attends across examples. Row-end padding forms its own segment with labels
    ignored.
    """
    import torch

    rows = pack_rows([e.n_tokens for e in batch], capacity)
    width = max(sum(batch[i].n_tokens for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            e = batch[i]
            n = e.n_tokens
            ids[r, at:at + n] = torch.tensor(e.input_ids)
            labels[r, at:at + n] = torch.tensor(e.labels)
            pos[r, at:at + n] = torch.arange(n)
            at += n
        if at < width:
            pos[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


def collate_padded(batch: list[Encoded], pad_id: int):
    """Naive right-padded batch with an attention mask (one example per row)."""
    import torch

    width = max(e.n_tokens for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, e in enumerate(batch):
        ids[r, : e.n_tokens] = torch.tensor(e.input_ids)
        labels[r, : e.n_tokens] = torch.tensor(e.labels)
        mask[r, : e.n_tokens] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
