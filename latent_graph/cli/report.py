"""``latent-graph report``: turn saved run traces into offline HTML.

Examples::

    latent-graph run --inspect 5 --save-trace run.json "What is 12 times 7?"
    latent-graph report run.json -o run.html
    latent-graph report --compare latent.json text.json -o compare.html
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from latent_graph.errors import InvalidArgumentError


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; prints the output path unless ``--quiet``."""
    from latent_graph.present.html import write_compare, write_report

    if args.compare:
        if args.trace:
            raise InvalidArgumentError("give either one trace or --compare A B, not both")
        path = write_compare(args.compare[0], args.compare[1], args.output, labels=args.labels)
    elif args.trace:
        path = write_report(args.trace, args.output, title=args.title)
    else:
        raise InvalidArgumentError(
            "no run trace given: latent-graph report RUN.json -o OUT.html "
            "(write one with `latent-graph run --save-trace RUN.json ...`)"
        )
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command to the main CLI's subparsers."""
    p = subparsers.add_parser("report", help="render a saved run trace (or two, compared) as offline HTML")
    p.add_argument("trace", nargs="?", help="run trace JSON (from `latent-graph run --save-trace`)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two run traces of the same questions")
    p.add_argument("--labels", nargs=2, metavar=("LA", "LB"), default=None, help="names of the compared runs")
    p.add_argument("-o", "--output", default="report.html", help="output HTML file (default report.html)")
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_report)
    return p
