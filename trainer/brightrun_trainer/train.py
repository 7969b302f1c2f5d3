"""The training entry point: read top to bottom.

run_training(cfg, data, out) does: read + split the data, load the base model
and tokenizer, encode (chat template, assistant-only labels, truncation), wrap
with LoRA, train with packed micro-batches (checkpointing, metrics, periodic
validation, cancellation), evaluate base vs adapter, and write the output
directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .config import JobConfig
from .data import Example, load_dataset, split_examples
from .distributed import Dist
from .encoding import IGNORE_INDEX, Encoded, collate_packed, encode_all, ensure_chat_template, render
from .errors import Cancelled, ConfigError, DataError, OOMError
from .memory import release_free_heap
from .models import ResolvedModel, cpu_bf16_supported, load_model, load_tokenizer, pick_device, resolve_model
from .perf import FlopCounter, GpuStats, device_peak
from .reporting import Reporter

# Config fields that must not change between a checkpoint and its resumption.
RESUME_LOCKED_FIELDS = (
    "base_model", "learning_rate", "batch_size", "num_epochs", "lora_rank", "lora_alpha",
    "lora_dropout", "warmup_steps", "weight_decay", "max_seq_length", "gradient_accumulation_steps",
    "target_modules", "seed", "validation_share", "lr_scheduler", "max_grad_norm", "max_steps",
    "load_in_4bit",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------
# Loss


def token_loss_sum(logits, labels):
    """Summed next-token cross-entropy over labelled positions, and their count.

    ``logits`` are full-length ([rows, width, vocab]); the trainer's own path
    (:func:`forward_loss`) computes logits only where a label follows instead.
    """
    import torch.nn.functional as F

    shift_labels = labels[:, 1:]
    mask = shift_labels != IGNORE_INDEX
    sel = logits[:, :-1, :][mask]
    if sel.numel() == 0:
        return logits.sum() * 0.0, 0
    loss = F.cross_entropy(sel.float(), shift_labels[mask], reduction="sum")
    return loss, int(mask.sum().item())


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def forward_loss(model, batch: dict):
    """Summed assistant-token loss of a batch (packed rows or single examples).

    Logits are computed only at the positions whose next token is labelled
    (``logits_to_keep``), not over the whole sequence: with a 49k-128k
    vocabulary the full-length fp32 logits, their float copy and the
    cross-entropy's saved softmax were most of the step's memory (issue 14:
    several GB per micro-batch at 1024 tokens) and a large share of its time,
    while only the assistant positions (a third or less) carry a loss. The
    value is the same as :func:`token_loss_sum` over full logits.
    """
    loss, n, _ = forward_loss_acc(model, batch, accuracy=False)
    return loss, n


def forward_loss_acc(model, batch: dict, *, accuracy: bool = True):
    """:func:`forward_loss` plus the number of labelled positions whose argmax
    prediction is the label (the token accuracy's numerator; 0 when
    ``accuracy`` is off). The count comes from the same kept logits as the
    loss: no second forward pass, one argmax over the assistant positions."""
    import torch.nn.functional as F

    labels = batch["labels"]
    nxt = labels[:, 1:] != IGNORE_INDEX                 # position p predicts token p + 1
    keep = nxt.any(0).nonzero().squeeze(1)              # positions any row needs
    kwargs = {"input_ids": batch["input_ids"], "use_cache": False, "logits_to_keep": keep}
    if "position_ids" in batch:
        kwargs["position_ids"] = batch["position_ids"]
    if "attention_mask" in batch:
        kwargs["attention_mask"] = batch["attention_mask"]
    out = model(**kwargs)
    target = labels[:, 1:][:, keep]
    mask = target != IGNORE_INDEX
    n = int(mask.sum().item())
    if n == 0:
        return out.logits.sum() * 0.0, 0, 0
    sel, want = out.logits[mask], target[mask]
    correct = int((sel.detach().argmax(-1) == want).sum().item()) if accuracy else 0
    return F.cross_entropy(sel.float(), want, reduction="sum"), n, correct


@dataclass
class TokenCounts:
    """Assistant tokens seen and predicted right (argmax == label)."""

    correct: int = 0
    total: int = 0

    def add(self, correct: int, total: int) -> None:
        self.correct += correct
        self.total += total

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None


@dataclass(frozen=True)
class ComputePath:
    """How micro-batches are laid out and in which precision they run.

    rows="packed": a micro-batch's examples first-fit packed into rows of
    max_seq_length with position ids restarting per example (GPU: flash/varlen
    kernels skip cross-example attention, and full rows keep the GPU busy).
    rows="single": one example per forward, no padding and no mask, so SDPA
    takes its fused causal (flash) CPU kernel; a packed row's block-diagonal
    mask forces the math path, which materialises [heads, L, L] attention
    weights per layer for backward and computes the masked blocks too (on the
    2-core CPU of issue 14 most of 22 GB peak memory and of the step time).
    Gradients are accumulated over the examples of the micro-batch with the
    same normalisation (the micro-batch's assistant-token count), so the
    update is the packed path's.

    autocast: bf16 autocast on CPUs with bf16 matrix units (AMX / AVX-512
    BF16), where oneDNN bf16 matmuls ran 2.0x the fp32 rate and the 49k-vocab
    head 2.2x (bench/trainer/README.md); weights, LoRA parameters, optimizer
    state and the loss stay fp32, and a test holds every path to the fp32
    reference's loss and gradients. Safe by default: CPUs without bf16 units
    stay fp32 (emulated bf16 would be slower).

    bf16_weights (CPU with bf16 units, with autocast): the frozen weights are
    bf16, as on a GPU, instead of fp32 cast to bf16 by autocast on every use.
    Autocast on fp32 weights re-cast all 135M weights each forward and kept the
    bf16 copies and fp32 activations (residual stream, PEFT's fp32 copy of each
    LoRA input) for backward; with bf16 weights the activations are bf16 and
    PEFT's input casting is off (see context()), so LoRA multiplies the bf16
    activations with its fp32 weights cast once per forward. LoRA weights,
    gradients, AdamW state and the loss stay fp32 (test_encoding holds the path
    to the fp32 reference's loss and gradients, like autocast).

    Measured for issue 14 on the 2-core CPU (bench/trainer/cpu_fast.py): peak
    RSS 14.97 GB (packed) -> 4.78 GB (single rows, bf16 autocast); bf16 weights:
    bench/trainer/README.md.
    """

    rows: str = "packed"
    autocast: bool = False
    bf16_weights: bool = False

    def batches(self, encs: list[Encoded], capacity: int, pad_id: int):
        if self.rows == "single":
            return [single_row(e) for e in encs]
        return [collate_packed(encs, capacity, pad_id)]

    def weights_dtype(self, device: str):
        """The frozen weights' dtype to load: bf16 on the bf16-weights path, else the device's default."""
        import torch

        from .models import train_dtype

        return torch.bfloat16 if self.bf16_weights else train_dtype(device)

    def context(self, device: str, model=None):
        """Autocast for a forward; on the bf16-weights path also PEFT's input
        casting off, so each LoRA module multiplies the bf16 activations with
        its fp32 weights cast once by autocast instead of copying every LoRA
        input to fp32 (7 copies per layer, kept for backward)."""
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        if self.autocast:
            stack.enter_context(torch.autocast(device_type=device, dtype=torch.bfloat16))
        if self.bf16_weights and model is not None:
            from peft.helpers import disable_input_dtype_casting

            stack.enter_context(disable_input_dtype_casting(model))
        return stack

    def describe(self) -> str:
        return (f"{self.rows} rows" + (", bf16 frozen weights" if self.bf16_weights else "")
                + (", bf16 autocast" if self.autocast else ""))


def single_row(e: Encoded) -> dict:
    import torch

    return {"input_ids": torch.tensor([e.input_ids], dtype=torch.long),
            "labels": torch.tensor([e.labels], dtype=torch.long)}


def pick_compute_path(device: str, env: dict | None = None) -> ComputePath:
    """The layout and precision for ``device``.

    CPU: single rows; where the CPU has bf16 units, bf16 frozen weights and
    bf16 autocast. CUDA: packed rows (the model is already loaded in bf16).
    BRIGHTRUN_ROWS=packed|single, BRIGHTRUN_CPU_AUTOCAST=0|1 and
    BRIGHTRUN_CPU_BF16_WEIGHTS=0|1 override (benchmarks, debugging).
    """
    import dataclasses

    env = os.environ if env is None else env
    if device == "cpu":
        bf16 = cpu_bf16_supported()
        path = ComputePath(rows="single", autocast=bf16, bf16_weights=bf16)
    else:
        path = ComputePath(rows="packed", autocast=False)
    rows = env.get("BRIGHTRUN_ROWS")
    if rows in ("packed", "single"):
        path = dataclasses.replace(path, rows=rows)
    ac = env.get("BRIGHTRUN_CPU_AUTOCAST")
    if device == "cpu" and ac in ("0", "1"):
        on = ac == "1" and cpu_bf16_supported()
        path = dataclasses.replace(path, autocast=on, bf16_weights=path.bf16_weights and on)
    bw = env.get("BRIGHTRUN_CPU_BF16_WEIGHTS")
    if device == "cpu" and bw in ("0", "1"):
        path = dataclasses.replace(path, bf16_weights=bw == "1" and path.autocast)
    return path


def train_micro_batch(model, path: ComputePath, encs: list[Encoded], n_loss_tokens: int, capacity: int,
                      pad_id: int, device: str, counts: TokenCounts | None = None) -> float:
    """Forward and backward of one micro-batch; returns its summed loss.

    Every forward of the micro-batch (one packed tensor, or one per example on
    the single-rows path) is divided by the whole optimizer step's
    assistant-token count before backward, so the accumulated gradient is the
    mean over the step's assistant tokens whatever the layout. ``counts``, when
    given, accumulates the token accuracy from the same logits.
    """
    total = 0.0
    for batch in path.batches(encs, capacity, pad_id):
        with path.context(device, model):
            loss_sum, n, correct = forward_loss_acc(model, _to(batch, device), accuracy=counts is not None)
        (loss_sum / n_loss_tokens).backward()  # outside autocast, as torch recommends
        total += float(loss_sum.item())
        del loss_sum
        release_free_heap(device)  # this forward's freed activations back to the OS (CPU; memory.py)
        if counts is not None:
            counts.add(correct, n)
    return total


def evaluate(model, encs: list[Encoded], batch_size: int, capacity: int, pad_id: int, device: str,
             path: ComputePath | None = None) -> tuple[float | None, float | None]:
    """Mean per-token loss and mean token accuracy over the assistant tokens of ``encs``."""
    import torch

    if not encs:
        return None, None
    path = path or ComputePath()
    was_training = model.training
    model.eval()
    total = 0.0
    counts = TokenCounts()
    with torch.no_grad(), path.context(device, model):
        for i in range(0, len(encs), batch_size):
            for batch in path.batches(encs[i:i + batch_size], capacity, pad_id):
                loss, n, correct = forward_loss_acc(model, _to(batch, device))
                total += float(loss.item())
                counts.add(correct, n)
    if was_training:
        model.train()
    return (total / counts.total if counts.total else None), counts.accuracy


def evaluate_loss(model, encs: list[Encoded], batch_size: int, capacity: int, pad_id: int, device: str,
                  path: ComputePath | None = None) -> float | None:
    """Mean per-token loss over the assistant tokens of ``encs``."""
    return evaluate(model, encs, batch_size, capacity, pad_id, device, path)[0]


# ----------------------------------------------------------------------------
# Schedule


def make_scheduler(optimizer, cfg: JobConfig, total_steps: int):
    import torch

    warm = cfg.warmup_steps

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / (warm + 1)
        if cfg.lr_scheduler == "constant":
            return 1.0
        span = max(1, total_steps - warm)
        progress = min(1.0, (step - warm) / span)
        if cfg.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Plan:
    n_train: int
    batch_size: int
    grad_accum: int
    epochs: int
    max_steps: int
    micro_per_epoch: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0

    def __post_init__(self):
        self.micro_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.steps_per_epoch = math.ceil(self.micro_per_epoch / self.grad_accum)
        self.total_steps = self.steps_per_epoch * self.epochs
        if self.max_steps:
            self.total_steps = min(self.total_steps, self.max_steps)

    def micro_batches(self, step: int, seed: int) -> tuple[int, list[list[int]]]:
        """(epoch, example indices of each micro-batch) of optimizer step ``step``."""
        import torch

        epoch, s = divmod(step, self.steps_per_epoch)
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        perm = torch.randperm(self.n_train, generator=g).tolist()
        out = []
        for m in range(s * self.grad_accum, min((s + 1) * self.grad_accum, self.micro_per_epoch)):
            out.append(perm[m * self.batch_size:(m + 1) * self.batch_size])
        return epoch, out


# ----------------------------------------------------------------------------
# Checkpoints


def _rng_state(device: str) -> dict:
    import numpy as np
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, device: str) -> None:
    import numpy as np
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if device == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(ckpt_root: Path, *, model, optimizer, scheduler, state: dict, resolved_config: dict,
                    device: str, keep: int) -> Path:
    import torch

    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['step']:06d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(str(tmp), save_embedding_layers=False)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(device), tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
    (tmp / "training_config.json").write_text(json.dumps(resolved_config, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    ckpts = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint dir, or an output/checkpoints dir (newest checkpoint inside)."""
    p = Path(path)
    if (p / "trainer_state.json").is_file():
        return p
    for root in (p, p / "checkpoints"):
        ckpts = sorted(q for q in root.glob("step-*") if (q / "trainer_state.json").is_file())
        if ckpts:
            return ckpts[-1]
    raise ConfigError(f"--resume {path}: no checkpoint found (expected trainer_state.json)")


# ----------------------------------------------------------------------------
# Generation for side-by-side samples


def prompt_ids(tokenizer, example: Example, max_new_tokens: int, max_len: int) -> list[int]:
    """The generation prompt's token ids, cut from the left to leave room for the answer."""
    prompt = render(tokenizer, example.prompt_messages(), True)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    keep = max(1, max_len - max_new_tokens)
    return ids[-keep:]


def generate_batch(model, tokenizer, examples: list[Example], max_new_tokens: int, max_len: int,
                   device: str, adapter_names: list[str] | None = None, on_token=None) -> list[str]:
    """Greedy answers to several prompts in one ``generate`` call.

    Prompts are left-padded (the attention mask hides the padding, position
    ids follow the mask) so every row's next token sits in the last column and
    one decoding loop with a KV cache serves the whole batch: on the CPU of
    issue 14, 3 prompts x 128 tokens x (base + adapter) one prompt at a time
    were most of a demo job's 3 min 48 s evaluation. Runs in the weights'
    own precision (no autocast) so the answers are those of the saved adapter.

    ``adapter_names`` (one per example; PEFT's mixed-adapter batch, where
    ``"__base__"`` means the adapter is skipped for that row) lets one call
    answer as the adapter and as the base from the same weights.
    ``on_token(n)`` is called after each decoding step with the number of new
    tokens so far (progress during generation).
    """
    import torch

    if not examples:
        return []
    rows = [prompt_ids(tokenizer, ex, max_new_tokens, max_len) for ex in examples]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long, device=device)
    kwargs = {}
    if adapter_names is not None:
        kwargs["adapter_names"] = list(adapter_names)
    if on_token is not None:
        from transformers import StoppingCriteriaList

        kwargs["stopping_criteria"] = StoppingCriteriaList([_TokenProgress(width, on_token)])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id, use_cache=True, **kwargs)
    answers = []
    for i in range(len(rows)):
        new = out[i, width:].tolist()
        if tokenizer.eos_token_id in new:  # rows that finished early are filled with padding after their EOS
            new = new[:new.index(tokenizer.eos_token_id) + 1]
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def generate_pairs(model, tokenizer, examples: list[Example], max_new_tokens: int, max_len: int, device: str,
                   on_token=None) -> tuple[list[str], list[str]]:
    """(adapter answers, base answers) to ``examples`` in ONE batched decoding loop.

    Each prompt appears twice in the batch: once through the adapter and once
    with it skipped (PEFT's mixed batch, ``adapter_names=["__base__"]``), so the
    base answers come from the same weights without a second model or a second
    decoding loop. Decoding a 135M model on a CPU costs about the same per step
    for 2n rows as for n (issue 14: the evaluating stage was 29 % of the
    quick-demo job with two loops). The loop is :func:`decoding.greedy_tokens`
    (each prompt prefilled alone, no padding; the KV caches laid out
    left-padded for one decoding loop): the answers of :func:`generate_batch`
    with less work per token.
    """
    from peft import PeftModel

    if not examples:
        return [], []
    n = len(examples)
    if isinstance(model, PeftModel):
        rows, names = list(examples) * 2, [model.active_adapter] * n + ["__base__"] * n
    else:  # no adapter: both answers are the model's
        rows, names = list(examples), None
    out = _greedy_answers(model, tokenizer, rows, max_new_tokens, max_len, device, names, on_token)
    if names is None:
        return out, list(out)
    return out[:n], out[n:]


def _greedy_answers(model, tokenizer, examples: list[Example], max_new_tokens: int, max_len: int, device: str,
                    adapter_names: list[str] | None, on_token) -> list[str]:
    from .decoding import greedy_tokens

    prompts = [prompt_ids(tokenizer, ex, max_new_tokens, max_len) for ex in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tokens = greedy_tokens(model, prompts, max_new_tokens, tokenizer.eos_token_id, pad, device,
                           adapter_names=adapter_names, on_token=on_token)
    if tokens is None:  # a cache layout the slot cache does not cover (sliding windows): generate()
        return generate_batch(model, tokenizer, examples, max_new_tokens, max_len, device,
                              adapter_names=adapter_names, on_token=on_token)
    return [tokenizer.decode(t, skip_special_tokens=True).strip() for t in tokens]


class _TokenProgress:
    """A stopping criterion that never stops: it reports the decoding step."""

    def __init__(self, prompt_width: int, on_token) -> None:
        self.prompt_width, self.on_token = prompt_width, on_token

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.on_token(input_ids.shape[1] - self.prompt_width)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def generate(model, tokenizer, example: Example, max_new_tokens: int, max_len: int, device: str) -> str:
    """One prompt's greedy answer (the batched path with a batch of one)."""
    return generate_batch(model, tokenizer, [example], max_new_tokens, max_len, device)[0]


# ----------------------------------------------------------------------------
# The run


@dataclass
class RunResult:
    status: str
    summary: dict
    out_dir: Path
    losses: list = field(default_factory=list)
    model: object = None  # the trained PeftModel (for embedding and tests)


def prepare_data(data_path: Path, cfg: JobConfig):
    ds = load_dataset(data_path)
    if not ds.examples:
        raise DataError(f"{data_path.name}: no trainable examples ({ds.total_pairs} pairs/records read, "
                        f"{ds.skipped_pairs} without a target response)")
    if cfg.validation_file:
        # A separate validation file (the OpenAI face's validation_file): the
        # whole training file trains, the whole validation file evaluates.
        val = load_dataset(cfg.validation_file)
        if not val.examples:
            raise DataError(f"{Path(cfg.validation_file).name}: no validation examples")
        return ds, list(ds.examples), list(val.examples)
    train_ex, val_ex = split_examples(ds.examples, cfg.validation_share)
    return ds, train_ex, val_ex


def run_training(cfg: JobConfig, data_path: str | Path, out_dir: str | Path, *, reporter: Reporter,
                 resume: str | Path | None = None, dist: Dist | None = None) -> RunResult:
    """``dist``: this process's rank in a multi-process job (see distributed.py); None: one process."""
    import torch

    dist = dist or Dist()

    t_start = time.time()
    data_path, out = Path(data_path), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # -- resume: the checkpoint's config must agree with this one ------------
    ckpt_dir, ckpt_state = None, None
    if resume:
        ckpt_dir = find_checkpoint(resume)
        ckpt_state = json.loads((ckpt_dir / "trainer_state.json").read_text())
        old = ckpt_state["config"]
        diff = [k for k in RESUME_LOCKED_FIELDS if old.get(k) != getattr(cfg, k)]
        if diff:
            raise ConfigError("cannot resume: the job config differs from the checkpoint's in "
                              + ", ".join(f"{k} ({old.get(k)!r} -> {getattr(cfg, k)!r})" for k in diff))

    # -- data ------------------------------------------------------------------
    reporter.stage("preparing", detail="reading dataset")
    ds, train_ex, val_ex = prepare_data(data_path, cfg)
    data_sha = sha256_file(data_path)
    if ckpt_state and ckpt_state.get("data_sha256") != data_sha:
        raise DataError("cannot resume: the data file differs from the one the checkpoint was trained on")
    set_seed(cfg.seed)

    # -- tokenizer and encoding (before the weights: the memory check needs the lengths)
    device = pick_device(cfg.device)
    path = pick_compute_path(device)
    reporter.stage("preparing", detail="tokenizing")
    _check_cancel(reporter)
    resolved: ResolvedModel = resolve_model(cfg.base_model)
    tokenizer = load_tokenizer(resolved)
    template_source = ensure_chat_template(tokenizer)
    train_enc, _, train_stats = encode_all(tokenizer, train_ex, cfg.max_seq_length)
    val_enc, val_kept, val_stats = encode_all(tokenizer, val_ex, cfg.max_seq_length)
    if not train_enc:
        raise DataError(f"no trainable examples left after truncation to max_seq_length={cfg.max_seq_length} "
                        f"({train_stats.dropped_examples} examples lost every assistant token)")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    plan = Plan(len(train_enc), cfg.batch_size, cfg.gradient_accumulation_steps, cfg.num_epochs, cfg.max_steps)
    check_memory(resolved, cfg, path, device, train_enc + val_enc)

    # -- model -------------------------------------------------------------------
    reporter.stage("loading_model", model=cfg.base_model, device=device)
    try:
        model = load_model(resolved, device=device, attn_implementation=cfg.attn_implementation,
                           load_in_4bit=cfg.load_in_4bit, revision=cfg.model_revision,
                           dtype=None if cfg.load_in_4bit else path.weights_dtype(device))
    except torch.OutOfMemoryError:
        raise OOMError(f"out of memory while loading {cfg.base_model} on {device}") from None
    model.config.use_cache = False
    _check_cancel(reporter)

    # -- LoRA --------------------------------------------------------------------
    model = wrap_lora(model, cfg)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                  betas=(0.9, 0.999), eps=1e-8, fused=(device == "cuda"))
    scheduler = make_scheduler(optimizer, cfg, plan.total_steps)
    flops = FlopCounter(model)
    peak_name, peak_flops = device_peak(device)
    gpu = GpuStats(device)

    resolved_config = {
        "config": cfg.to_dict(),
        "resolved": {
            "trainer_version": __version__,
            "model_source": resolved.source,
            "model_path": resolved.path,
            "gguf_file": resolved.gguf_file,
            "chat_template": template_source,
            "device": device,
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "attn_implementation": getattr(model.config, "_attn_implementation", cfg.attn_implementation),
            "compute_path": path.describe(),
            "data_file": str(data_path),
            "data_sha256": data_sha,
            "data_format": ds.format,
            "train_examples": len(train_enc),
            "validation_examples": len(val_enc),
            "validation_conversations": len({e.conversation_key for e in val_ex}),
            "conversations": len({e.conversation_key for e in ds.examples}),
            "steps_per_epoch": plan.steps_per_epoch,
            "total_steps": plan.total_steps,
            "trainable_parameters": flops.trainable,
            "frozen_linear_parameters": flops.frozen,
            "model_flops_per_token_dense": flops.per_token_dense(),
            "peak_flops_name": peak_name,
            "versions": _versions(),
        },
    }
    (out / "training_config.json").write_text(json.dumps(resolved_config, indent=2))

    # -- resume state --------------------------------------------------------------
    start_step, tokens_trained, assistant_trained, train_seconds = 0, 0, 0, 0.0
    loss_history: list = []
    if ckpt_dir is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        where = f"cuda:{torch.cuda.current_device()}" if device == "cuda" else device  # a rank's own GPU
        set_peft_model_state_dict(model, load_file(str(ckpt_dir / "adapter_model.safetensors"), device=where))
        optimizer.load_state_dict(torch.load(ckpt_dir / "optimizer.pt", map_location=device, weights_only=False))
        scheduler.load_state_dict(torch.load(ckpt_dir / "scheduler.pt", weights_only=False))
        _set_rng_state(torch.load(ckpt_dir / "rng.pt", weights_only=False), device)
        start_step = ckpt_state["step"]
        tokens_trained = ckpt_state["tokens_trained"]
        assistant_trained = ckpt_state["assistant_tokens_trained"]
        train_seconds = ckpt_state["train_seconds"]
        loss_history = ckpt_state.get("loss_history", [])
    dist.sync_params(params, cfg.seed, start_step)

    reporter.record("plan", total_steps=plan.total_steps, steps_per_epoch=plan.steps_per_epoch,
                    world_size=dist.world_size,
                    resumed_world_size=ckpt_state.get("world_size", 1) if ckpt_state else None,
                    train_examples=len(train_enc), validation_examples=len(val_enc),
                    train_tokens_per_epoch=train_stats.tokens, start_step=start_step,
                    truncation=train_stats.to_json())

    # -- train -------------------------------------------------------------------------
    reporter.stage("training", total_steps=plan.total_steps, start_step=start_step)
    ckpt_root = out / "checkpoints"
    last_ckpt = ckpt_dir
    step = start_step
    win = {"loss": 0.0, "n": 0, "correct": 0.0, "tokens": 0, "flops": 0.0, "t0": time.time(), "steps": 0}
    last_train_loss, last_val_loss, last_val_acc = None, None, None
    status = "completed"

    def state_dict(step_: int) -> dict:
        return {"step": step_, "epoch": step_ / plan.steps_per_epoch,
                "epoch_index": step_ // plan.steps_per_epoch, "step_in_epoch": step_ % plan.steps_per_epoch,
                "total_steps": plan.total_steps, "tokens_trained": tokens_trained,
                "assistant_tokens_trained": assistant_trained, "train_seconds": train_seconds,
                "loss_history": loss_history, "data_sha256": data_sha, "config": cfg.to_dict(),
                "world_size": dist.world_size}

    def checkpoint(step_: int) -> Path | None:
        if not dist.is_main:  # rank 0 writes the job's checkpoints
            return None
        p = save_checkpoint(ckpt_root, model=model, optimizer=optimizer, scheduler=scheduler,
                            state=state_dict(step_), resolved_config=resolved_config, device=device,
                            keep=cfg.checkpoint_keep)
        reporter.record("checkpoint", step=step_, path=str(p))
        return p

    model.train()
    try:
        while step < plan.total_steps:
            t_step = time.time()
            dist.before_step(step + 1)
            epoch_idx, micro = plan.micro_batches(step, cfg.seed)
            step_batches = [[train_enc[i] for i in idx] for idx in micro]  # the global batch
            n_loss_tokens = sum(e.n_assistant for b in step_batches for e in b)
            batches = dist.shard(step_batches, cfg.batch_size)  # this rank's share (all of it in one process)
            step_loss = 0.0
            counts = TokenCounts()
            for b in batches:
                step_loss += train_micro_batch(model, path, b, n_loss_tokens, cfg.max_seq_length, pad_id, device, counts)
                win["flops"] += flops.batch_flops([e.n_tokens for e in b])
            step_loss, step_correct = dist.sync_grads(params, step_loss, float(counts.correct))
            max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            step += 1
            n_tokens = sum(e.n_tokens for b in step_batches for e in b)
            tokens_trained += n_tokens
            assistant_trained += n_loss_tokens
            train_seconds += time.time() - t_step
            step_mean = step_loss / n_loss_tokens
            loss_history.append([step, step_mean])
            win["loss"] += step_loss
            win["correct"] += step_correct
            win["n"] += n_loss_tokens
            win["tokens"] += n_tokens
            win["steps"] += 1
            epoch = step / plan.steps_per_epoch
            reporter.progress(step, plan.total_steps, epoch=round(epoch, 4))

            if step % cfg.logging_steps == 0 or step == plan.total_steps:
                elapsed = max(time.time() - win["t0"], 1e-9)
                last_train_loss = win["loss"] / win["n"]
                rec = {"step": step, "total_steps": plan.total_steps, "epoch": round(epoch, 4),
                       "training_loss": last_train_loss, "train_mean_token_accuracy": win["correct"] / win["n"],
                       "learning_rate": lr, "grad_norm": grad_norm,
                       "tokens_per_second": win["tokens"] / elapsed, "tokens": win["tokens"],
                       "assistant_tokens": win["n"], "seconds": elapsed}
                if peak_flops:
                    rec["mfu"] = win["flops"] / elapsed / peak_flops
                    rec["mfu_peak"] = peak_name
                rec["model_tflops_per_second"] = win["flops"] / elapsed / 1e12
                rec.update(gpu.sample())
                reporter.metrics(**rec)
                win = {"loss": 0.0, "n": 0, "correct": 0.0, "tokens": 0, "flops": 0.0, "t0": time.time(), "steps": 0}

            if cfg.eval_steps and step % cfg.eval_steps == 0 and step < plan.total_steps and val_enc:
                reporter.stage("evaluating", step=step)
                last_val_loss, last_val_acc = evaluate(model, val_enc, cfg.batch_size, cfg.max_seq_length, pad_id, device, path)
                reporter.record("eval", step=step, epoch=round(epoch, 4), validation_loss=last_val_loss,
                                valid_mean_token_accuracy=last_val_acc, perplexity=_ppl(last_val_loss))
                reporter.stage("training", total_steps=plan.total_steps, start_step=step)
                win["t0"] = time.time()

            if cfg.checkpoint_steps and step % cfg.checkpoint_steps == 0 and step < plan.total_steps:
                last_ckpt = checkpoint(step)
                win["t0"] = time.time()

            if dist.agree_stop(reporter.cancel_requested()):
                last_ckpt = checkpoint(step) or last_ckpt
                raise Cancelled()
    except Cancelled:
        status = "cancelled"
    except torch.OutOfMemoryError:
        raise OOMError(f"out of memory at step {step + 1} (batch_size={cfg.batch_size}, "
                       f"max_seq_length={cfg.max_seq_length}); lower batch_size or max_seq_length, "
                       "or enable gradient_checkpointing") from None

    summary = {
        "status": status,
        "total_steps": plan.total_steps,
        "steps_completed": step,
        "epochs_completed": step / plan.steps_per_epoch,
        "train_examples": len(train_enc),
        "validation_examples": len(val_enc),
        "tokens_trained": tokens_trained,
        "assistant_tokens_trained": assistant_trained,
        "train_seconds": train_seconds,
        "tokens_per_second": tokens_trained / train_seconds if train_seconds else None,
        "final_training_loss": last_train_loss,
        "final_validation_loss": last_val_loss,
        "final_validation_mean_token_accuracy": last_val_acc,
        "train_tokens_per_epoch": train_stats.tokens,
        "truncation": {"train": train_stats.to_json(), "validation": val_stats.to_json()},
        "device": device,
        "dtype": resolved_config["resolved"]["dtype"],
        "model_flops_per_token_dense": flops.per_token_dense(),
        "peak_flops_name": peak_name,
        "last_checkpoint": str(last_ckpt) if last_ckpt else None,
        "world_size": dist.world_size,
    }
    if not dist.is_main:  # rank 0 evaluates, saves and reports; the others are done
        return RunResult(status, summary, out, loss_history, model)
    if device == "cuda":
        summary["gpu_memory_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)

    if status == "cancelled":
        summary["wall_seconds"] = time.time() - t_start
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        reporter.status("cancelled", step=step, total_steps=plan.total_steps,
                        checkpoint=str(last_ckpt) if last_ckpt else None)
        return RunResult("cancelled", summary, out, loss_history, model)

    # -- evaluate ------------------------------------------------------------------------
    reporter.stage("evaluating", step=step)
    release_free_heap(device)
    eval_json = run_final_eval(model, tokenizer, cfg, val_enc, val_kept, train_ex, pad_id, device, path,
                               progress=lambda done, total, what: reporter.record(
                                   "eval_progress", done=done, total=total, part=what))
    summary["final_validation_loss"] = eval_json["adapter"]["validation_loss"]
    summary["final_validation_mean_token_accuracy"] = eval_json["adapter"]["mean_token_accuracy"]
    summary["base_validation_loss"] = eval_json["base"]["validation_loss"]
    reporter.record("eval", step=step, epoch=round(step / plan.steps_per_epoch, 4), final=True,
                    validation_loss=eval_json["adapter"]["validation_loss"],
                    valid_mean_token_accuracy=eval_json["adapter"]["mean_token_accuracy"],
                    perplexity=eval_json["adapter"]["perplexity"],
                    base_validation_loss=eval_json["base"]["validation_loss"],
                    base_perplexity=eval_json["base"]["perplexity"])

    # -- save ------------------------------------------------------------------------------
    reporter.stage("saving")
    model.peft_config["default"].base_model_name_or_path = cfg.base_model
    model.save_pretrained(str(out), save_embedding_layers=False)
    tokenizer.save_pretrained(str(out))
    (out / "eval.json").write_text(json.dumps(eval_json, indent=2, ensure_ascii=False))
    summary["wall_seconds"] = time.time() - t_start
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "README.md").write_text(model_card(cfg, resolved_config, summary, eval_json))
    reporter.status("completed", step=step, total_steps=plan.total_steps,
                    training_loss=last_train_loss, validation_loss=summary["final_validation_loss"])
    return RunResult("completed", summary, out, loss_history, model)


def largest_forward_tokens(encs: list[Encoded], path: ComputePath, batch_size: int, capacity: int) -> int:
    """Tokens in the largest single forward: the longest example on the
    single-rows path; on the packed path the batch_size longest examples
    packed into rows of ``capacity`` (rows x widest row, at most full rows)."""
    lens = sorted((e.n_tokens for e in encs), reverse=True)
    if not lens:
        return 0
    if path.rows == "single":
        return lens[0]
    top = sum(lens[:batch_size])
    if top <= capacity:
        return top
    return min(batch_size, math.ceil(top / capacity)) * capacity


def check_memory(resolved: ResolvedModel, cfg: JobConfig, path: ComputePath, device: str,
                 encs: list[Encoded]) -> None:
    """Refuse, before loading the weights, a job that would not fit (memory.py)."""
    from transformers import AutoConfig

    from . import memory

    try:
        config = AutoConfig.from_pretrained(resolved.path, **({"gguf_file": resolved.gguf_file}
                                                              if resolved.gguf_file else {}))
        arch = memory.Arch.from_config(config)
    except Exception:  # noqa: BLE001 - an unknown architecture is checked by the load itself
        return
    need = memory.estimate(arch, rank=cfg.lora_rank, dropout=cfg.lora_dropout, device=device,
                           autocast=path.autocast, tokens=largest_forward_tokens(encs, path, cfg.batch_size,
                                                                                 cfg.max_seq_length),
                           load_in_4bit=cfg.load_in_4bit, gradient_checkpointing=cfg.gradient_checkpointing,
                           bf16_weights=path.bf16_weights and device == "cpu")
    memory.check(need, device, batch_size=cfg.batch_size, max_seq_length=cfg.max_seq_length,
                 single_rows=path.rows == "single")


def _check_cancel(reporter: Reporter) -> None:
    if reporter.cancel_requested():
        raise EarlyCancel()


class EarlyCancel(Cancelled):
    """Cancelled before training started: no checkpoint exists."""


def _ppl(loss):
    if loss is None:
        return None
    return math.exp(min(loss, 50.0))


def wrap_lora(model, cfg: JobConfig):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    hidden = getattr(getattr(model.config, "text_config", None) or model.config, "hidden_size", None)
    if hidden and cfg.lora_rank > hidden:
        raise ConfigError(f"lora_rank={cfg.lora_rank} is larger than the model's hidden size ({hidden})")
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    lcfg = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, lcfg)
    except ValueError as e:
        raise ConfigError(f"target_modules {cfg.target_modules!r} do not match the model: {e}") from None
    for name, module in model.named_modules():
        lin = getattr(module, "base_layer", None)
        if lin is not None and hasattr(lin, "in_features") and hasattr(module, "r"):
            smallest = min(lin.in_features, lin.out_features)
            if cfg.lora_rank > smallest:
                raise ConfigError(f"lora_rank={cfg.lora_rank} is larger than the dimension of {name} "
                                  f"({lin.in_features}x{lin.out_features})")
    if cfg.lora_dropout > 0:  # the same dropout with a mask 10x cheaper to draw on the CPU (dropout.py)
        from .dropout import use_fast_dropout

        use_fast_dropout(model)
    return model


ANSWER_CHUNKS = 4  # progress reports while the side-by-side answers are generated


def run_final_eval(model, tokenizer, cfg, val_enc, val_kept, train_ex, pad_id, device,
                   path: ComputePath | None = None, progress=None) -> dict:
    """Validation loss of the adapter and of the base (the same weights with the
    adapter disabled, never a second model load), and side-by-side answers
    (adapter and base in one batched decoding loop: :func:`generate_pairs`).

    ``progress(done, total, what)`` is called after each part so the job page
    can show how far evaluation is: the two losses, then the answers in
    ``ANSWER_CHUNKS`` steps of generated tokens ("evaluating 3/6").
    """
    path = path or ComputePath()
    prompts_from = "validation" if val_kept else "train"
    pool = (val_kept if val_kept else train_ex)[: cfg.eval_samples]
    chunks = max(1, min(ANSWER_CHUNKS, cfg.eval_max_new_tokens))
    per_chunk = math.ceil(cfg.eval_max_new_tokens / chunks)
    total = 2 + chunks
    done = 0

    def tick(what: str, to: int | None = None):
        nonlocal done
        done = done + 1 if to is None else to
        if progress is not None:
            progress(done, total, what)

    def on_token(n: int):
        reached = 2 + min(chunks, n // per_chunk)
        if reached > done:
            tick(f"answers: {min(n, cfg.eval_max_new_tokens)}/{cfg.eval_max_new_tokens} tokens", reached)

    if progress is not None:
        progress(0, total, "starting")
    adapter_loss, adapter_acc = evaluate(model, val_enc, cfg.batch_size, cfg.max_seq_length, pad_id, device, path)
    tick("adapter validation loss")
    with model.disable_adapter():
        base_loss, base_acc = evaluate(model, val_enc, cfg.batch_size, cfg.max_seq_length, pad_id, device, path)
    tick("base validation loss")
    model.eval()
    model.config.use_cache = True
    adapter_out, base_out = generate_pairs(model, tokenizer, pool, cfg.eval_max_new_tokens, cfg.max_seq_length,
                                           device, on_token=on_token)
    model.config.use_cache = False
    if done < total:  # every row stopped at its end of turn before max_new_tokens
        tick("answers", total)
    samples = [{"prompt": ex.prompt_messages()[-1]["content"], "reference": ex.reference(),
                "base": b, "adapter": a, "messages": ex.prompt_messages()}
               for ex, a, b in zip(pool, adapter_out, base_out)]
    return {
        "base": {"validation_loss": base_loss, "perplexity": _ppl(base_loss), "mean_token_accuracy": base_acc},
        "adapter": {"validation_loss": adapter_loss, "perplexity": _ppl(adapter_loss), "mean_token_accuracy": adapter_acc},
        "validation_examples": len(val_enc),
        "validation_tokens": sum(e.n_assistant for e in val_enc),
        "samples_from": prompts_from,
        "generation": {"do_sample": False, "max_new_tokens": cfg.eval_max_new_tokens},
        "samples": samples,
    }


def _versions() -> dict:
    import peft
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def _fmt(x, nd=4):
    return "n/a" if x is None else f"{x:.{nd}f}"


def model_card(cfg: JobConfig, resolved: dict, summary: dict, ev: dict) -> str:
    r = resolved["resolved"]
    return f"""---
base_model: {cfg.base_model}
library_name: peft
tags: [lora, brightrun]
---
# LoRA adapter for {cfg.base_model}

Trained by BrightRun (brightrun-trainer {__version__}) on `{Path(r['data_file']).name}`
({r['data_format']}, {r['train_examples']} training / {r['validation_examples']} validation examples).

| setting | value |
|---|---|
| LoRA rank / alpha / dropout | {cfg.lora_rank} / {cfg.lora_alpha} / {cfg.lora_dropout} |
| target modules | {cfg.target_modules} |
| learning rate / schedule / warmup | {cfg.learning_rate} / {cfg.lr_scheduler} / {cfg.warmup_steps} |
| batch size x grad. accumulation | {cfg.batch_size} x {cfg.gradient_accumulation_steps} |
| epochs / steps | {cfg.num_epochs} / {summary['steps_completed']} |
| max sequence length | {cfg.max_seq_length} |
| chat template | {r['chat_template']} |
| device / dtype | {r['device']} / {r['dtype']} |

## Evaluation (held-out conversations)

| model | validation loss | perplexity |
|---|---|---|
| base | {_fmt(ev['base']['validation_loss'])} | {_fmt(ev['base']['perplexity'], 2)} |
| adapter | {_fmt(ev['adapter']['validation_loss'])} | {_fmt(ev['adapter']['perplexity'], 2)} |

Tokens trained: {summary['tokens_trained']} in {summary['train_seconds']:.1f} s.

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained("{cfg.base_model}")
model = PeftModel.from_pretrained(base, "path/to/this/directory")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/directory")
```
"""
