"""Command line: ``brightrun-trainer train|preflight``.

Every failure ends with one JSON line on stderr, {"error_class", "message"},
and the exit code of its class (see errors.EXIT_CODES); a cancelled run
(SIGTERM, SIGINT, or a reporter's cancel flag) exits with EXIT_CANCELLED.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from .errors import EXIT_CANCELLED, Cancelled, InternalError, OOMError, TrainerError, emit_error


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brightrun-trainer", description="BrightRun LoRA trainer")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fine-tune a LoRA adapter")
    t.add_argument("--config", required=True, help="job config JSON (HyperparameterConfig + trainer settings)")
    t.add_argument("--data", required=True, help="dataset file (brightrun-lora-v4 JSON/JSONL or OpenAI JSONL)")
    t.add_argument("--out", required=True, help="output directory")
    t.add_argument("--resume", help="checkpoint directory (or an output dir: its newest checkpoint)")
    t.add_argument("--quiet", action="store_true", help="do not echo records to stdout")

    f = sub.add_parser("preflight", help="print exact token statistics as JSON")
    f.add_argument("--data", required=True)
    f.add_argument("--model", required=True)
    f.add_argument("--max-seq-length", type=int, default=2048)
    f.add_argument("--validation-share", type=float, default=0.10)
    f.add_argument("--no-per-example", action="store_true", help="omit the tokens_per_example list")
    return p


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass


def _map_exception(e: BaseException) -> TrainerError:
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


def cmd_train(args) -> int:
    from .config import JobConfig
    from .reporting import JsonlFileReporter, MultiReporter, StreamReporter
    from .train import run_training

    try:
        cfg = JobConfig.load(args.config)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    except TrainerError as e:
        return emit_error(e)
    except OSError as e:
        return emit_error(InternalError(f"cannot create output directory {args.out}: {e}"))
    children = [JsonlFileReporter(out / "metrics.jsonl")]
    if not args.quiet:
        children.append(StreamReporter(sys.stdout))
    reporter = MultiReporter(*children)

    def on_signal(signum, frame):
        reporter.request_cancel()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = run_training(cfg, args.data, out, reporter=reporter, resume=args.resume)
        return EXIT_CANCELLED if result.status == "cancelled" else 0
    except Cancelled:
        reporter.status("cancelled", step=0, checkpoint=None)
        return EXIT_CANCELLED
    except BaseException as e:  # noqa: BLE001 - every failure gets a class
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        err = _map_exception(e)
        if err.error_class == "internal" and not isinstance(e, TrainerError):
            traceback.print_exc(file=sys.stderr)
        try:
            reporter.status("failed", error_class=err.error_class, message=err.message)
        except Exception:
            pass
        return emit_error(err)
    finally:
        reporter.close()


def cmd_preflight(args) -> int:
    from .preflight import preflight

    try:
        res = preflight(args.data, args.model, args.max_seq_length, args.validation_share,
                        per_example=not args.no_per_example)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        err = _map_exception(e)
        if err.error_class == "internal" and not isinstance(e, TrainerError):
            traceback.print_exc(file=sys.stderr)
        return emit_error(err)
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    if args.command == "train":
        return cmd_train(args)
    return cmd_preflight(args)


if __name__ == "__main__":
    sys.exit(main())
