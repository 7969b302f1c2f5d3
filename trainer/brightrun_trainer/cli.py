"""Command line: ``brightrun-trainer train|preflight|agent|generate|export|make-tiny-model``.

Every failure ends with one JSON line on stderr, {"error_class", "message"},
and the exit code of its class (see errors.EXIT_CODES); a cancelled run
(SIGTERM, SIGINT, or a reporter's cancel flag) exits with EXIT_CANCELLED.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from .errors import EXIT_CANCELLED, Cancelled, InternalError, TrainerError, classify, emit_error


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

    a = sub.add_parser("agent", help="run jobs for a BrightRun server (docs/agent-protocol.md)")
    a.add_argument("--server", required=True, help="the server's URL, e.g. http://localhost:8080")
    a.add_argument("--token", help="agent token (bra_...; default $BRIGHTRUN_AGENT_TOKEN)")
    a.add_argument("--gpu-type", help='catalog gpu_type this agent runs (e.g. H100-80GB), or "CPU" '
                                      "(default: CPU when there is no CUDA GPU; required otherwise)")
    a.add_argument("--gpu-count", type=int, help="GPUs offered (default: the CUDA device count, 1 for CPU); "
                   "an N-GPU job runs as N training processes, one per GPU")
    a.add_argument("--gpu-memory-gb", type=float, help="memory per GPU in GB (default: measured)")
    a.add_argument("--name", help="agent name (default: the hostname)")
    a.add_argument("--work-dir", help="where jobs download and train (default ~/.cache/brightrun/agent)")
    a.add_argument("--wait-seconds", type=float, default=20.0, help="claim long-poll (at most 30)")
    a.add_argument("--once", action="store_true", help="exit after one job, or after one empty long-poll")
    a.add_argument("--exit-after-job", "--one-job", dest="exit_after_job", action="store_true",
                   help="exit after one job, whatever its outcome (launched, ephemeral agents)")
    a.add_argument("--idle-exit-seconds", type=float, default=0.0,
                   help="exit after this long without a job (0: never; launched agents use it)")
    a.add_argument("--keep-work", action="store_true", help="keep each attempt's files in the work dir")
    a.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True,
                   help="also serve inference requests (playground, /v1/chat/completions); default on")
    a.add_argument("--serve-models", help="comma-separated base model ids to serve, or '*' for any "
                                          "(default: a CPU agent serves the models it can load locally, "
                                          "a GPU agent '*')")
    a.add_argument("--preflight", action=argparse.BooleanOptionalAction, default=True,
                   help="also compute exact dataset preflights (token counts with a model's tokenizer) for the "
                        "models of --preflight-models; default on")
    a.add_argument("--preflight-models", help="comma-separated base model ids to compute preflights for, or '*' "
                                              "(default: --serve-models, else what a CPU agent can load locally, "
                                              "any on a GPU agent)")
    a.add_argument("--exports", action=argparse.BooleanOptionalAction, default=True,
                   help="also make merged and GGUF exports of trained adapters for the models of --export-models "
                        "(GGUF only with llama.cpp's converter: scripts/llama-cpp-converter.sh); loads the base "
                        "model in float32 on the CPU; default on")
    a.add_argument("--export-models", help="comma-separated base model ids to make exports of, or '*' "
                                           "(default: --serve-models, else what a CPU agent can load locally, "
                                           "any on a GPU agent)")
    a.add_argument("--serve-slots", type=int, default=4,
                   help="inference requests served at once (they take turns per token on one model)")
    a.add_argument("--serve-engine", choices=("auto", "transformers", "vllm"), default="auto",
                   help="auto: vLLM multi-LoRA on a GPU agent when vllm is installed (untested), "
                        "else transformers+PEFT")
    a.add_argument("--serve-threads", type=int, help="most CPU threads for inference (default: all the cores); "
                                                       "shared among concurrent generations, half while a job "
                                                       "trains, one while that measures faster")
    a.add_argument("--serve-quantize", choices=("auto", "int8", "none"), default="auto",
                   help="auto/int8: a CPU agent decodes with int8 copies of the base weights (about 2x the "
                        "tokens/s; prompts use the exact weights); none: exact weights throughout")
    a.add_argument("--adapter-cache-gb", type=float, default=2.0, help="size limit of the adapter cache")
    a.add_argument("--adapter-cache-dir", help="adapter cache directory (default WORK_DIR/adapters)")

    g = sub.add_parser("generate", help="generate one answer in-process (base model, optional adapter)")
    g.add_argument("--model", required=True, help="base model id or path (resolved like training's base_model)")
    g.add_argument("--adapter", help="PEFT adapter directory (default: the base model alone)")
    g.add_argument("--prompt", required=True, help="the user message")
    g.add_argument("--system", help="system prompt")
    g.add_argument("--max-tokens", type=int, default=128)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    g.add_argument("--threads", type=int, help="most CPU threads (default: all the cores; one while that measures faster)")
    g.add_argument("--quantize", choices=("auto", "int8", "none"), default="auto",
                   help="auto/int8: decode steps on CPU use int8 copies of the base weights; none: exact")
    g.add_argument("--json", action="store_true", help="print one JSON object (text, finish_reason, usage, "
                                                       "timings) instead of streaming the text")

    x = sub.add_parser("export", help="export a trained adapter (merged into the base model)")
    x.add_argument("--merged", action="store_true", required=True,
                   help="merge the adapter into the base weights (merge_and_unload) and save safetensors + tokenizer")
    x.add_argument("--model", required=True, help="base model id or path")
    x.add_argument("--adapter", required=True, help="PEFT adapter directory")
    x.add_argument("--out", required=True, help="output model directory (replaced)")
    x.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    x.add_argument("--gguf", action="store_true",
                   help="also convert the merged model to OUT/gguf/model-<type>.gguf (and the adapter to OUT/gguf/adapter-<type>.gguf, a LoRA GGUF) with llama.cpp's converter, "
                        "with an Ollama Modelfile")
    x.add_argument("--gguf-type", choices=("f32", "f16", "bf16", "q8_0"), default="f16")
    x.add_argument("--llama-cpp", help="llama.cpp directory with convert_hf_to_gguf.py and gguf-py/ "
                                       "(default $BRIGHTRUN_LLAMA_CPP_DIR)")

    m = sub.add_parser("make-tiny-model", help="build a tiny random Llama + BPE tokenizer (tests, e2e)")
    m.add_argument("--out", required=True, help="output model directory")
    m.add_argument("--data", action="append", default=[], help="dataset file(s) to train the tokenizer on too")
    m.add_argument("--no-chat-template", action="store_true", help="save no chat template (the fallback is used)")
    m.add_argument("--vocab-size", type=int, default=3000)
    m.add_argument("--seed", type=int, default=0)
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


def _report_failure(e: BaseException) -> TrainerError:
    """Classify a failure of a command; KeyboardInterrupt and SystemExit pass
    through, unexpected errors print their traceback to stderr."""
    if isinstance(e, (KeyboardInterrupt, SystemExit)):
        raise e
    err = classify(e)
    if err.error_class == "internal" and not isinstance(e, TrainerError):
        traceback.print_exception(e, file=sys.stderr)
    return err


def _reported(cmd):
    """Run a command so that any failure is classified and written as the
    JSON error line with its exit code (KeyboardInterrupt and SystemExit pass
    through)."""
    @functools.wraps(cmd)
    def run(args) -> int:
        try:
            return cmd(args)
        except BaseException as e:  # noqa: BLE001 - every failure gets a class
            return emit_error(_report_failure(e))
    return run


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
        err = _report_failure(e)
        try:
            reporter.status("failed", error_class=err.error_class, message=err.message)
        except Exception:
            pass
        return emit_error(err)
    finally:
        reporter.close()


@_reported
def cmd_preflight(args) -> int:
    from .preflight import preflight

    res = preflight(args.data, args.model, args.max_seq_length, args.validation_share,
                    per_example=not args.no_per_example)
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


@_reported
def cmd_make_tiny_model(args) -> int:
    from .tinymodel import CHATML_TEMPLATE, build_tiny_model, corpus_from_files

    texts = corpus_from_files(args.data)
    out = build_tiny_model(args.out, texts, chat_template=None if args.no_chat_template else CHATML_TEMPLATE,
                           vocab_size=args.vocab_size, seed=args.seed)
    sys.stdout.write(json.dumps({"model": str(out)}) + "\n")
    return 0


@_reported
def cmd_export(args) -> int:
    from .export import converter_dir, export_gguf, export_lora_gguf, export_merged

    if args.gguf:
        converter_dir(args.llama_cpp)   # fail before the merge when the converter is missing
    info = export_merged(args.model, args.adapter, args.out, dtype=args.dtype)
    if args.gguf:
        out = Path(args.out)
        info["gguf"] = export_gguf(out, out / "gguf" / f"model-{args.gguf_type}.gguf",
                                   llama_cpp=args.llama_cpp, outtype=args.gguf_type)
        info["lora_gguf"] = export_lora_gguf(args.adapter, out, out / "gguf" / f"adapter-{args.gguf_type}.gguf",
                                             llama_cpp=args.llama_cpp, outtype=args.gguf_type)
    sys.stdout.write(json.dumps(dict(info, out=str(args.out))) + "\n")
    return 0


@_reported
def cmd_generate(args) -> int:
    from .inference.engine import Engine, GenParams
    from .models import pick_device

    params = GenParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                       seed=args.seed, stop=list(args.stop))
    params.validate()
    messages = ([{"role": "system", "content": args.system}] if args.system else [])
    messages.append({"role": "user", "content": args.prompt})
    engine = Engine(device=pick_device(args.device), threads=args.threads, quantize=args.quantize)
    adapter = None
    if args.adapter:
        from .inference.engine import adapter_name

        path = Path(args.adapter).resolve()
        adapter = (adapter_name(str(path), 0), path)

    def on_text(t: str) -> None:
        if not args.json:
            sys.stdout.write(t)
            sys.stdout.flush()

    res = engine.generate(args.model, messages, params, adapter=adapter, on_text=on_text)
    out = {"text": res.text, "finish_reason": res.finish_reason, "usage": res.usage(), "timings": res.timings}
    if args.json:
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n")
        sys.stderr.write(json.dumps({k: v for k, v in out.items() if k != "text"}) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    if args.command == "train":
        return cmd_train(args)
    if args.command == "agent":
        from .agent import cmd_agent

        return cmd_agent(args)
    if args.command == "make-tiny-model":
        return cmd_make_tiny_model(args)
    if args.command == "generate":
        return cmd_generate(args)
    if args.command == "export":
        return cmd_export(args)
    return cmd_preflight(args)


if __name__ == "__main__":
    sys.exit(main())
