"""``latent-graph`` command line: run a latent multi-agent graph, draw it, and the
``bench`` / ``adapter`` command groups (registered from their own packages).

Examples::

    latent-graph run "What is 12 times 7?"
    latent-graph run --graph hierarchical --edges text --steps 4 "Why is the sky blue?"
    latent-graph draw --graph sequential --edges latent,text,latent --format ascii
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from latent_graph.errors import InvalidArgumentError, LatentGraphError

GRAPHS = ("sequential", "hierarchical", "single")


def _edges(spec: str) -> str | list[str]:
    """"latent", "text" or a comma list such as "latent,text,latent"."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def load_model(args: argparse.Namespace) -> Any:
    from latent_graph import LocalLatentModel

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


def build_graph(model: Any, args: argparse.Namespace, **extra: Any) -> Any:
    """Build the graph named by ``--graph`` (a prebuilt name or ``module:attr`` factory)."""
    from latent_graph.graphs import build_hierarchical, build_sequential, build_single

    opts = dict(steps=args.steps, memory=args.memory, max_new_tokens=args.max_new_tokens,
                temperature=args.temperature, top_p=args.top_p, seed=args.seed, task=args.task, **extra)
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
    p.add_argument("--graph", default="sequential", help=f"{'|'.join(GRAPHS)} or module:attr")
    p.add_argument("--edges", default="latent", help="latent | text | comma list per edge, e.g. latent,text,latent")
    p.add_argument("--steps", type=int, default=8, help="latent steps per latent agent")
    p.add_argument("--memory", default="all", choices=["all", "last", "latent"])
    p.add_argument("--task", default="math", choices=["math", "choice", "code", "plain"])
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)


def _questions(args: argparse.Namespace) -> list[str]:
    qs = list(args.questions)
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                qs += [line.strip() for line in f if line.strip()]
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read questions file {args.file!r}: {exc.strerror}") from exc
    if not qs and not sys.stdin.isatty():
        qs += [line.strip() for line in sys.stdin if line.strip()]
    if not qs:
        raise InvalidArgumentError("no question given: pass it as an argument, with --file, or on stdin")
    return qs


def cmd_run(args: argparse.Namespace) -> int:
    questions = _questions(args)
    model = load_model(args)
    graph = build_graph(model, args)
    stream = len(questions) == 1 and not args.json and not args.quiet
    if stream:
        out: dict[str, Any] = {}
        for mode, chunk in graph.stream({"questions": questions}, stream_mode=["messages", "values"]):
            if mode == "messages":
                msg, meta = chunk
                if meta.get("langgraph_node") in ("judger", "single") and getattr(msg, "content", ""):
                    print(msg.content, end="", flush=True)
            else:
                out = chunk
        print()
    else:
        out = graph.invoke({"questions": questions})
    if args.json:
        print(json.dumps({"questions": questions, "answers": out["answers"], "trace": out["trace"]}, indent=2))
    elif not stream:
        for q, a in zip(questions, out["answers"]):
            print(a if args.quiet else f"Q: {q}\nA: {a}\n")
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from latent_graph.viz import draw

    model = load_model(args)
    graph = build_graph(model, args)
    result = draw(graph, args.format, args.output)
    if args.format in ("mermaid", "ascii"):
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(str(result))
        else:
            print(result, end="")
    else:
        print(f"wrote {result}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latent-graph", description="Multi-agent LLM graphs that talk in latent space.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph on question(s) and print the answer(s)")
    run.add_argument("questions", nargs="*", help="question(s); or use --file / stdin")
    run.add_argument("--file", help="text file with one question per line")
    run.add_argument("--json", action="store_true", help="print answers and trace as JSON")
    run.add_argument("--quiet", action="store_true", help="print only the answers")
    add_model_args(run)
    add_graph_args(run)
    run.set_defaults(func=cmd_run)

    draw = sub.add_parser("draw", help="draw a graph (mermaid, ascii, png, svg) offline")
    draw.add_argument("--format", default="mermaid", choices=["mermaid", "ascii", "png", "svg"])
    draw.add_argument("-o", "--output", default=None, help="output file (required for png/svg)")
    add_model_args(draw)
    add_graph_args(draw)
    draw.set_defaults(func=cmd_draw)

    for module in ("latent_graph.bench.cli", "latent_graph.adapters.cli", "latent_graph.report.cli"):
        try:
            register = __import__(module, fromlist=["register"]).register
        except (ImportError, AttributeError):
            continue
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LatentGraphError as exc:
        print(f"latent-graph: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
