"""``latent-graph`` command line: run a latent multi-agent graph, draw it, report on it.

Argument parsing only: ``run`` and ``draw`` are parsed here, ``report``,
``bench`` and ``adapter`` in their own modules of this package (each module's
``register(subparsers)``). The work is done by the layers below: models load
through :func:`latent_graph.cli.model_options.load_from_args` (the flags every command shares), graphs come from the registry
:func:`latent_graph.graphs.build_graph` and run through :func:`latent_graph.present.console.execute`.

Exit codes: 0 success, 2 bad usage / :class:`LatentGraphError` (one line on
stderr, no traceback; ``--debug`` shows it), 1 unexpected error, 130 Ctrl-C.

Examples::

    latent-graph run "What is 12 times 7?"
    latent-graph run --graph hierarchical --edges text --steps 4 "Why is the sky blue?"
    latent-graph run --realign soft:k=8,t=0.5 --kv-keep 0.5 "What is 3+5?"
    latent-graph run --edges latent,text,latent --inspect 5 --report run.html "What is 3+5?"
    latent-graph run --file questions.txt --save-trace run.json --quiet
    latent-graph report run.json -o run.html
    latent-graph draw --graph sequential --edges critic=text --format ascii
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_graph.cli.model_options import add_model_args, add_option_flags, load_from_args
from latent_graph.errors import InvalidArgumentError, LatentGraphError
from latent_graph.graphs import DEFAULT_GRAPH, FACTORY_OPTIONS, GRAPHS, GraphOptions, build_graph
from latent_graph.nodes import StandInModel
from latent_graph.persist import HandleStore
from latent_graph.present.console import execute, print_answers
from latent_graph.present.edges import answer_nodes
from latent_graph.state.edges import parse_edge_spec

COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "bench": ("latent_graph.cli.bench", "run a benchmark (GSM8K, ARC, code, relay) and write a report"),
    "adapter": ("latent_graph.cli.adapter", "train and evaluate learned hidden→input adapters"),
    "report": ("latent_graph.cli.report", "render a saved run trace (or two, compared) as offline HTML"),
    "serve": ("latent_graph.cli.serve", "serve graphs over HTTP to many concurrent users (Ray Serve)"),
}
"""Sub-commands in their own modules (``register(subparsers)``), by name: a module is imported only when its
command runs (or for ``--help``), so ``run`` loads no bench or training code; one that cannot import is an error."""


def graph_options(args: argparse.Namespace) -> dict[str, Any]:
    """The prebuilt-graph options given on the command line (every :class:`GraphOptions` field)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(GraphOptions)}


def make_graph(model: Any, args: argparse.Namespace) -> Any:
    """The graph named by ``--graph`` (default :data:`DEFAULT_GRAPH`) with the command-line options."""
    if args.graph in (None, DEFAULT_GRAPH) and args.edges != "latent":
        args.graph = "sequential"  # the compact layout has latent edges only
    args.graph = args.graph or DEFAULT_GRAPH
    extra = {"handle_store": HandleStore.in_memory()} if args.graph in GRAPHS else {}  # a run keeps nothing on disk
    return build_graph(args.graph, model, edges=parse_edge_spec(args.edges), **graph_options(args), **extra)


def add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--graph",
        default=None,
        help=f"{'|'.join(GRAPHS)} (default {DEFAULT_GRAPH}; sequential when --edges is not latent) or "
        f"module:attr: a factory(model, **kw) returning a compiled graph, importable from the current "
        f"directory; it gets only the keywords it declares of {', '.join(FACTORY_OPTIONS)} "
        f"(all of them with **kwargs)",
    )
    p.add_argument(
        "--edges",
        default="latent",
        help="latent | text | one kind per edge (latent,text,latent) | by sender (critic=text)",
    )
    add_option_flags(p, dataclasses.fields(GraphOptions))  # the graph options' one owner


def _check_flags(args: argparse.Namespace) -> None:
    """Reject bad numbers and output paths before the (slow) model load."""
    GraphOptions(**graph_options(args))  # the owner checks every option
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
    model = load_from_args(args)
    graph = make_graph(model, args)
    inputs: dict[str, Any] = {**extra, "questions": questions}
    if contexts is not None:
        inputs["context"] = contexts
    stream = len(questions) == 1 and not args.json and not args.quiet
    answering = answer_nodes(graph)  # a fact of the graph, read once it is built
    t0 = time.time()
    out = execute(graph, inputs, stream_tokens=stream, progress=not args.quiet, answering=answering)
    if not (args.json or args.save_trace or args.report):
        if not stream:
            print_answers(questions, out.get("answers") or [], quiet=args.quiet)
        return 0
    from latent_graph.present import RunTrace, write_report  # only when a trace or report is asked for

    options = {"graph": args.graph, "edges": args.edges, **graph_options(args)}
    run = RunTrace.from_run(
        out, questions, graph=graph, model=model, options=options, context=contexts, wall_s=time.time() - t0
    )
    if args.save_trace:
        run.save(args.save_trace)
    if args.report:
        write_report(run, args.report)
    if args.json:
        print(run.to_json())
    elif not stream:
        print_answers(questions, run.answers, quiet=args.quiet)
    if not args.quiet:
        for what, path in (("trace", args.save_trace), ("report", args.report)):
            if path:
                print(f"wrote {what} {path}", file=sys.stderr)
    return 0


def cmd_draw(args: argparse.Namespace) -> int:

    _check_flags(args)
    if args.format in ("png", "svg") and not args.output:
        raise InvalidArgumentError(f"--format {args.format} needs -o/--output FILE.{args.format}")
    from latent_graph.present.draw import draw as draw_graph

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


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``command``, the other sub-command groups are listed but their modules not imported."""
    parser = argparse.ArgumentParser(
        prog="latent-graph", description="Multi-agent LLM graphs that talk in latent space."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph on question(s) and print the answer(s)")
    run.add_argument("questions", nargs="*", help="question(s); or use --file / stdin")
    run.add_argument("--file", help="questions file: text (one a line), .jsonl ({question, context}) or - for stdin")
    run.add_argument("--context", default=None, help="private context shown to the first agent (every question)")
    run.add_argument("--save-trace", default=None, metavar="RUN.json", help="save the run trace as JSON")
    run.add_argument("--report", default=None, metavar="RUN.html", help="write an offline HTML run report")
    run.add_argument("--json", action="store_true", help="print the run trace (answers, trace...) as JSON")
    run.add_argument(
        "--input",
        default=None,
        metavar="JSON",
        help='extra graph input keys as a JSON object, e.g. \'{"topics": ["a", "b"]}\'',
    )
    run.add_argument(
        "--quiet", action="store_true", help="print only the answers (no live progress on stderr, no streaming)"
    )
    add_model_args(run)
    add_graph_args(run)
    run.set_defaults(func=cmd_run)

    draw = sub.add_parser("draw", help="draw a graph (mermaid, ascii, png, svg) offline")
    draw.add_argument("--format", default="mermaid", choices=["mermaid", "ascii", "dot", "png", "svg"])
    draw.add_argument("-o", "--output", default=None, help="output file (required for png/svg)")
    add_model_args(draw)
    add_graph_args(draw)
    draw.set_defaults(func=cmd_draw)

    for name, (module, help_text) in COMMAND_GROUPS.items():
        if command is None or command == name:
            importlib.import_module(module).register(sub)  # a sub-command that cannot import is an error
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (argparse usage errors give 2, ``--help`` 0)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = make_parser(command if command in ("run", "draw", *COMMAND_GROUPS) else None)
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
        print(
            f"latent-graph: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
