"""``latent-graph`` command line: run a latent multi-agent graph, draw it, report on it.

Argument parsing only: ``run`` and ``draw`` are parsed here, ``report``,
``bench`` and ``adapter`` in their own modules of this package (each module's
``register(subparsers)``). The work is done by the layers below: models load
through :func:`latent_graph.engine.load_model`, graphs come from the registry
:func:`latent_graph.graphs.build_graph` and run through :func:`latent_graph.present.console.execute`.

Exit codes: 0 success, 2 bad usage / :class:`LatentGraphError` (one line on
stderr, no traceback; ``--debug`` shows it), 1 unexpected error, 130 Ctrl-C.

Examples::

    latent-graph run "What is 12 times 7?"
    latent-graph run --graph hierarchical --edges text --steps 4 "Why is the sky blue?"
    latent-graph run --edges latent,text,latent --inspect 5 --report run.html "What is 3+5?"
    latent-graph run --file questions.txt --save-trace run.json --quiet
    latent-graph report run.json -o run.html
    latent-graph draw --graph sequential --edges critic=text --format ascii
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_graph.engine import DEFAULT_STEPS, MEMORY_POLICIES, DecodeOptions, check_steps
from latent_graph.engine import load_model as engine_load_model
from latent_graph.errors import InvalidArgumentError, LatentGraphError
from latent_graph.graphs import GRAPHS, build_graph
from latent_graph.nodes import StandInModel
from latent_graph.present.console import execute
from latent_graph.graphs.base import Options
from latent_graph.graphs.registry import FACTORY_OPTIONS
from latent_graph.state.edges import parse_edge_spec
from latent_graph.present import RunTrace, write_report
from latent_graph.present.draw import draw as draw_graph

_D = DecodeOptions()
_O = Options()  # graph option defaults: one owner (latent_graph.graphs.base)
COMMAND_GROUPS = ("latent_graph.cli.bench", "latent_graph.cli.adapter", "latent_graph.cli.report", "latent_graph.cli.serve")


def load_model(args: argparse.Namespace) -> Any:
    """Load the model named by ``--model`` (tests monkeypatch this to inject a tiny model)."""
    from transformers.utils import logging as hf_logging

    if not getattr(args, "debug", False):
        hf_logging.disable_progress_bar()  # no per-load "Loading weights" bars in CLI output
    return engine_load_model(args.model, dtype=args.dtype, device=args.device, realign=args.realign)


def graph_options(args: argparse.Namespace) -> dict[str, Any]:
    """The prebuilt-graph options given on the command line."""
    return dict(steps=args.steps, memory=args.memory, max_new_tokens=args.max_new_tokens,
                message_tokens=args.message_tokens, kv_keep=args.kv_keep, kv_budget=args.kv_budget,
                cache_budget=args.cache_budget, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                task=args.task)


def default_graph(args: argparse.Namespace) -> str:
    """``--graph``, or the measured best for the setting: the compact latent chain on the default model
    with latent edges (relay6 test 0.61 vs 0.24, GSM8K-64 6.2% vs 0.0%: docs/relay_ablation.md), else sequential."""
    if args.graph:
        return str(args.graph)
    return "compact" if args.model in (None, "default") and args.edges == "latent" else "sequential"


def make_graph(model: Any, args: argparse.Namespace, **extra: Any) -> Any:
    """The graph named by ``--graph`` with the command-line options."""
    args.graph = default_graph(args)
    return build_graph(args.graph, model, edges=parse_edge_spec(args.edges), **graph_options(args), **extra)


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="HF path or hub id (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:0 ...")
    p.add_argument("--realign", default=None, choices=["ridge", "identity"], help="realignment (default ridge)")


def add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", default=None,
                   help=f"{'|'.join(GRAPHS)} (default: compact on the default model with latent edges, else "
                        f"sequential) or module:attr: a factory(model, **kw) returning a compiled graph, "
                        f"importable from the current directory; it gets only the keywords it declares of "
                        f"{', '.join(FACTORY_OPTIONS)} (all of them with **kwargs)")
    p.add_argument("--edges", default="latent",
                   help="latent | text | one kind per edge (latent,text,latent) | by sender (critic=text)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"latent steps per latent agent (default {DEFAULT_STEPS})")
    p.add_argument("--memory", default="all", choices=list(MEMORY_POLICIES))
    p.add_argument("--task", default="math", choices=["math", "choice", "code", "plain"])
    p.add_argument("--max-new-tokens", type=int, default=_O.max_new_tokens, help="the judger's answer budget")
    p.add_argument("--message-tokens", type=int, default=_O.message_tokens,
                   help=f"message budget of text agents (default {_O.message_tokens})")
    p.add_argument("--kv-keep", type=float, default=_O.kv_keep,
                   help="fraction of each latent sender's own cache columns crossing its edge (default 1 = all)")
    p.add_argument("--kv-budget", type=int, default=_O.kv_budget, help="max cache columns per latent edge")
    p.add_argument("--cache-budget", type=int, default=_O.cache_budget, help="max cache columns any node reads")
    p.add_argument("--temperature", type=float, default=_D.temperature, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=_D.top_p)
    p.add_argument("--seed", type=int, default=None)


def _check_flags(args: argparse.Namespace) -> None:
    """Reject bad numbers and output paths before the (slow) model load."""
    check_steps(args.steps)
    DecodeOptions(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    if getattr(args, "inspect", 0) < 0:
        raise InvalidArgumentError(f"--inspect must be >= 0, got {args.inspect}")
    for flag in ("report", "save_trace", "output"):
        path = getattr(args, flag, None)
        if path and Path(path).is_dir():
            raise InvalidArgumentError(f"--{flag.replace('_', '-')} {path!r} is a directory; give a file path")


def _read_lines(lines: Sequence[str], jsonl: bool) -> tuple[list[str], list[str | None]]:
    qs: list[str] = []
    ctx: list[str | None] = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if jsonl:
            try:
                row = json.loads(line)
                qs.append(str(row["question"]))
                ctx.append(row.get("context"))
            except (json.JSONDecodeError, RecursionError, KeyError, TypeError) as exc:
                raise InvalidArgumentError(f"line {n}: expected a JSON object with a 'question' key") from exc
        else:
            qs.append(line)
            ctx.append(None)
    return qs, ctx


def read_questions(args: argparse.Namespace) -> tuple[list[str], list[str] | None]:
    """Questions from arguments, ``--file`` (text: one a line; ``.jsonl``: {question, context}) or stdin."""
    qs, ctx = list(args.questions), [None] * len(args.questions)
    if args.file:
        jsonl = args.file.endswith(".jsonl")
        if args.file == "-":
            more = _read_lines(sys.stdin.readlines(), jsonl=False)
        else:
            try:
                with open(args.file, encoding="utf-8") as f:
                    more = _read_lines(f.readlines(), jsonl)
            except OSError as exc:
                raise InvalidArgumentError(f"cannot read questions file {args.file!r}: {exc.strerror}") from exc
        qs += more[0]
        ctx += more[1]
    if not qs and not args.file and not sys.stdin.isatty():
        qs, ctx = _read_lines(sys.stdin.readlines(), jsonl=False)
    if not qs:
        raise InvalidArgumentError("no question given: pass it as an argument, with --file, or on stdin")
    if args.context is not None:
        ctx = [args.context] * len(qs)
    return qs, (None if all(c is None for c in ctx) else [c or "" for c in ctx])


def parse_input(text: str | None) -> dict[str, Any]:
    """``--input JSON``: extra graph input keys (a JSON object; ``questions`` comes from the arguments)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"--input is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgumentError("--input must be a JSON object of extra graph input keys")
    return data


def cmd_run(args: argparse.Namespace) -> int:
    _check_flags(args)
    questions, contexts = read_questions(args)
    extra = parse_input(args.input)
    model = load_model(args)
    graph = make_graph(model, args, inspect=args.inspect)
    inputs: dict[str, Any] = {**extra, "questions": questions}
    if contexts is not None:
        inputs["context"] = contexts
    stream = len(questions) == 1 and not args.json and not args.quiet
    progress = not args.quiet
    t0 = time.time()
    out = execute(graph, inputs, stream_tokens=stream, progress=progress)
    options = {"graph": args.graph, "edges": args.edges, **graph_options(args), "inspect": args.inspect}
    run = RunTrace.from_run(out, questions, graph=graph, model=model, options=options, context=contexts,
                            wall_s=time.time() - t0)
    if args.save_trace:
        run.save(args.save_trace)
    if args.report:
        write_report(run, args.report)
    if args.json:
        print(run.to_json())
    elif not stream:
        for q, a in zip(questions, run.answers):
            print(a if args.quiet else f"Q: {q}\nA: {a}\n")
    if not args.quiet:
        for what, path in (("trace", args.save_trace), ("report", args.report)):
            if path:
                print(f"wrote {what} {path}", file=sys.stderr)
    return 0


def cmd_draw(args: argparse.Namespace) -> int:

    _check_flags(args)
    if args.format in ("png", "svg") and not args.output:
        raise InvalidArgumentError(f"--format {args.format} needs -o/--output FILE.{args.format}")
    graph = make_graph(StandInModel(args.model), args)  # drawing needs the graph's shape, not the weights
    result = draw_graph(graph, args.format, args.output)
    if args.format in ("mermaid", "ascii", "dot"):
        if args.output:
            Path(args.output).write_text(str(result), encoding="utf-8")
        else:
            print(result, end="")
    else:
        print(f"wrote {result}", file=sys.stderr)
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latent-graph", description="Multi-agent LLM graphs that talk in latent space.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph on question(s) and print the answer(s)")
    run.add_argument("questions", nargs="*", help="question(s); or use --file / stdin")
    run.add_argument("--file", help="questions file: text (one a line), .jsonl ({question, context}) or - for stdin")
    run.add_argument("--context", default=None, help="private context shown to the first agent (every question)")
    run.add_argument("--inspect", type=int, default=0, metavar="K",
                     help="record top-K logit-lens / nearest tokens per latent step (opt-in; slower)")
    run.add_argument("--save-trace", default=None, metavar="RUN.json", help="save the run trace as JSON")
    run.add_argument("--report", default=None, metavar="RUN.html", help="write an offline HTML run report")
    run.add_argument("--json", action="store_true", help="print the run trace (answers, trace...) as JSON")
    run.add_argument("--input", default=None, metavar="JSON",
                     help='extra graph input keys as a JSON object, e.g. \'{"topics": ["a", "b"]}\'')
    run.add_argument("--quiet", action="store_true",
                     help="print only the answers (no live progress on stderr, no streaming)")
    add_model_args(run)
    add_graph_args(run)
    run.set_defaults(func=cmd_run)

    draw = sub.add_parser("draw", help="draw a graph (mermaid, ascii, png, svg) offline")
    draw.add_argument("--format", default="mermaid", choices=["mermaid", "ascii", "dot", "png", "svg"])
    draw.add_argument("-o", "--output", default=None, help="output file (required for png/svg)")
    add_model_args(draw)
    add_graph_args(draw)
    draw.set_defaults(func=cmd_draw)

    for module in COMMAND_GROUPS:
        try:
            register = __import__(module, fromlist=["register"]).register
        except (ImportError, AttributeError):
            continue
        register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (argparse usage errors give 2, ``--help`` 0)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\nlatent-graph: interrupted", file=sys.stderr)
        return 130
    except LatentGraphError as exc:
        if args.debug:
            raise
        print(f"latent-graph: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"latent-graph: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
