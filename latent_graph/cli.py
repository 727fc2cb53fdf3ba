"""``latent-graph`` command line: run a latent multi-agent graph, draw it, report on it.

Sub-commands: ``run`` and ``draw`` live here; ``report``, ``bench`` and
``adapter`` are registered from their own packages (each module's
``register(subparsers)``; a missing package is skipped).

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

from latent_graph.errors import InvalidArgumentError, LatentGraphError

GRAPHS = ("sequential", "hierarchical", "single")
COMMAND_GROUPS = ("latent_graph.bench.cli", "latent_graph.adapters.cli", "latent_graph.report.cli", "latent_graph.serve.cli")
START, END = "__start__", "__end__"


def _edges(spec: str) -> str | list[str] | dict[str, str]:
    """Parse ``--edges``: "latent", "text", "latent,text,latent" (one per edge) or "critic=text,..."."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise InvalidArgumentError("--edges is empty; use latent, text, a list like latent,text,latent or critic=text")
    if any("=" in p for p in parts):
        pairs = [p.split("=", 1) for p in parts]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            raise InvalidArgumentError(f"--edges {spec!r}: mix name=kind pairs with plain kinds is not allowed")
        return {k.strip(): v.strip() for k, v in pairs}
    return parts[0] if len(parts) == 1 else parts


def load_model(args: argparse.Namespace) -> Any:
    """Load the model named by ``--model`` (tests monkeypatch this to inject a tiny model)."""
    from transformers.utils import logging as hf_logging

    from latent_graph import LocalLatentModel

    if not getattr(args, "debug", False):
        hf_logging.disable_progress_bar()  # no per-load "Loading weights" bars in CLI output
    kwargs: dict[str, Any] = {}
    if getattr(args, "dtype", None):
        kwargs["dtype"] = args.dtype
    if getattr(args, "device", None):
        kwargs["device"] = args.device
    if getattr(args, "realign", None):
        kwargs["realign"] = args.realign
    if not args.model or args.model == "default":
        return LocalLatentModel.default(**kwargs)
    return LocalLatentModel.from_pretrained(args.model, **kwargs)


def graph_options(args: argparse.Namespace) -> dict[str, Any]:
    """The prebuilt-graph options given on the command line."""
    return dict(steps=args.steps, memory=args.memory, max_new_tokens=args.max_new_tokens,
                temperature=args.temperature, top_p=args.top_p, seed=args.seed, task=args.task)


def build_graph(model: Any, args: argparse.Namespace, **extra: Any) -> Any:
    """Build the graph named by ``--graph`` (a prebuilt name or a ``module:attr`` factory)."""
    from latent_graph.graphs import build_hierarchical, build_sequential, build_single

    opts = {**graph_options(args), **extra}
    if args.graph == "single":
        return build_single(model, **opts)
    if args.graph == "sequential":
        return build_sequential(model, edges=_edges(args.edges), **opts)
    if args.graph == "hierarchical":
        return build_hierarchical(model, edges=_edges(args.edges), **opts)
    if ":" in args.graph:
        import importlib

        mod, _, attr = args.graph.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidArgumentError(f"--graph {args.graph!r}: cannot import {attr!r} from {mod!r}") from exc
        return factory(model, edges=_edges(args.edges), **opts)
    raise InvalidArgumentError(f"--graph must be one of {GRAPHS} or module:attr, got {args.graph!r}")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="HF path or hub id (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:0 ...")
    p.add_argument("--realign", default=None, choices=["ridge", "identity"], help="realignment (default ridge)")


def add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", default="sequential", help=f"{'|'.join(GRAPHS)} or module:attr (a factory)")
    p.add_argument("--edges", default="latent",
                   help="latent | text | one kind per edge (latent,text,latent) | by sender (critic=text)")
    p.add_argument("--steps", type=int, default=8, help="latent steps per latent agent (default 8)")
    p.add_argument("--memory", default="all", choices=["all", "last", "latent"])
    p.add_argument("--task", default="math", choices=["math", "choice", "code", "plain"])
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)


def _check_flags(args: argparse.Namespace) -> None:
    """Reject bad numbers and output paths before the (slow) model load."""
    checks = [(args.steps >= 0, f"--steps must be >= 0, got {args.steps}"),
              (args.max_new_tokens >= 1, f"--max-new-tokens must be >= 1, got {args.max_new_tokens}"),
              (args.temperature >= 0, f"--temperature must be >= 0, got {args.temperature}"),
              (0 < args.top_p <= 1, f"--top-p must be in (0, 1], got {args.top_p}"),
              (getattr(args, "inspect", 0) >= 0, f"--inspect must be >= 0, got {getattr(args, 'inspect', 0)}")]
    for ok, msg in checks:
        if not ok:
            raise InvalidArgumentError(msg)
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
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
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


def _answer_nodes(graph: Any) -> set[str]:
    """Nodes whose tokens are the final answer (JudgerNode-like), for streaming."""
    from latent_graph.viz.draw import _node_sends

    names = [str(n) for n in graph.get_graph().nodes if n not in (START, END)]
    found = {n for n in names if _node_sends(graph, n) == "answer"}
    return found or {"judger", "single"}


def execute(graph: Any, inputs: dict[str, Any], *, stream_tokens: bool = False, progress: bool = False) -> dict[str, Any]:
    """Run ``graph`` on ``inputs``; a tqdm bar (stderr) ticks per node, judger tokens stream to stdout.

    Returns:
        The final graph output (``answers``, ``messages``, ``trace``).
    """
    from tqdm import tqdm

    total = sum(1 for n in graph.get_graph().nodes if n not in (START, END))
    answer_nodes = _answer_nodes(graph)
    n = len(inputs.get("questions") or [])
    bar = tqdm(total=total, unit="node", desc=f"{n} question{'s' if n != 1 else ''}", file=sys.stderr,
               disable=not progress, leave=False, dynamic_ncols=True)
    out: dict[str, Any] = {}
    streamed = False
    modes = ["updates", "values"] + (["messages"] if stream_tokens else [])
    try:
        for mode, chunk in graph.stream(inputs, stream_mode=modes):
            if mode == "updates":
                for node in chunk or {}:
                    if not str(node).startswith("__"):
                        bar.set_postfix_str(f"{node} done")
                        bar.update(1)
            elif mode == "messages":
                msg, meta = chunk
                if stream_tokens and meta.get("langgraph_node") in answer_nodes and getattr(msg, "content", ""):
                    if not streamed:
                        bar.clear()
                        streamed = True
                    print(msg.content, end="", flush=True)
            else:
                out = chunk
    finally:
        bar.close()
        if streamed:
            print()
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from latent_graph.report import RunTrace, write_report

    _check_flags(args)
    questions, contexts = read_questions(args)
    model = load_model(args)
    graph = build_graph(model, args, inspect=args.inspect)
    inputs: dict[str, Any] = {"questions": questions}
    if contexts is not None:
        inputs["context"] = contexts
    stream = len(questions) == 1 and not args.json and not args.quiet
    progress = not args.quiet and sys.stderr.isatty()
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
    from latent_graph.viz import draw

    _check_flags(args)
    if args.format in ("png", "svg") and not args.output:
        raise InvalidArgumentError(f"--format {args.format} needs -o/--output FILE.{args.format}")
    model = load_model(args)
    graph = build_graph(model, args)
    result = draw(graph, args.format, args.output)
    if args.format in ("mermaid", "ascii"):
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
    run.add_argument("--quiet", action="store_true", help="print only the answers (no progress, no streaming)")
    add_model_args(run)
    add_graph_args(run)
    run.set_defaults(func=cmd_run)

    draw = sub.add_parser("draw", help="draw a graph (mermaid, ascii, png, svg) offline")
    draw.add_argument("--format", default="mermaid", choices=["mermaid", "ascii", "png", "svg"])
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
