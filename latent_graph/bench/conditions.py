"""The relay-condition loop every relay benchmark shares: state, one measured pass, a resumable log.

A *condition* is one way of answering relay questions (relay6 or relay probes): a graph plus
who is told the facts. :func:`relay_state` builds the graph input; :func:`measure` runs a task's
examples through the graph in batches and counts accuracy (Wilson 95% interval, hits per
relay6 family), generated tokens, time, the bytes crossing each edge and the judger's work;
:class:`ConditionLog` keeps one JSON line per condition, so a rerun skips what is measured;
:func:`run_conditions` ties them together and :func:`write_markdown` rewrites a results file
while keeping its hand-written notes. The scripts in ``benchmarks/`` choose the conditions,
build the graphs and format the tables.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from latent_graph.bench.errors import BenchArgumentError, DataFormatError, GraphOutputError
from latent_graph.bench.metrics import wilson_interval
from latent_graph.bench.relay_suite import FAMILIES, agent_context_state
from latent_graph.bench.task_types import Example, Task

Told = Literal["split", "all", "none"]
TOLD: tuple[str, ...] = ("split", "all", "none")
"""Who is told the facts: each agent its own (``split``), the first reader all of them (``all``), nobody (``none``)."""

C = TypeVar("C")


def relay_state(batch: Sequence[Example], told: Told = "split") -> dict[str, Any]:
    """The graph input for ``batch``.

    ``split``: the first reader gets each example's ``context`` and named agents their own facts
    (``agent_context``, relay6's second-agent family); ``all``: the first reader is told every fact
    (relay6 ``meta["facts"]``, else the context), as for a ``direct`` baseline or a single sender;
    ``none``: no fact at all (the ``no-edge`` floor).
    """
    if told not in TOLD:
        raise BenchArgumentError(f"told must be one of {TOLD}, got {told!r}")
    state: dict[str, Any] = {"questions": [e.question for e in batch]}
    if told == "all":
        state["context"] = [str(e.meta.get("facts", e.context or "")) for e in batch]
    elif told == "split":
        state["context"] = [e.context or "" for e in batch]
        state["agent_context"] = agent_context_state(batch)
    return state


def _families(examples: Sequence[Example]) -> tuple[str, ...]:
    """The relay6 families when every example names one (relay probes have none)."""
    return FAMILIES if examples and all("family" in e.meta for e in examples) else ()


def measure(
    graph: Any, task: Task, batch_size: int, told: Told = "split", handle_bytes: Callable[[Any], int] | None = None
) -> dict[str, Any]:
    """Run every example of ``task`` through ``graph`` (``graph.stream``, ``batch_size`` at a time) and count.

    Args:
        graph: A compiled graph whose output holds ``answers`` (and a ``trace``).
        task: The examples and their scorer.
        batch_size: Questions per graph run.
        told: Who is told the facts (:func:`relay_state`).
        handle_bytes: Optional ``f(handle) -> bytes`` of the handle entering the judger (e.g. its size
            as stored); summed over the batches into ``ckpt_bytes_per_q``.

    Returns:
        ``n``, ``correct``, ``accuracy``, ``ci95``, ``family_hits``, ``gen_tok_per_q``, ``wall_s``,
        ``s_per_q``, ``bytes_per_edge_q`` (mean over edge crossings of UTF-8 message bytes for a text
        edge, handle bytes for a latent one, per question), ``judger_s_per_q``, ``judger_cols`` (cache
        columns the judger read, per question), ``ckpt_bytes_per_q`` (None without ``handle_bytes``),
        ``load_1m`` (before, after) and ``answers``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BenchArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    examples = list(task.examples)
    hits: list[bool] = []
    answers: list[str] = []
    gen = edge_bytes = edges = judge_s = judge_cols = stored = 0.0
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    for i in range(0, len(examples), batch_size):
        batch = examples[i : i + batch_size]
        last_handle, out = None, None
        for update in graph.stream(relay_state(batch, told), stream_mode="updates"):
            for upd in update.values():
                if not isinstance(upd, dict):
                    continue
                for rec in upd.get("trace") or []:
                    gen += sum(int(x) for x in rec["generated_tokens"])
                    if rec["kind"] == "latent":
                        edge_bytes += rec["handle_bytes_after"] / rec["rows"]
                        edges += 1
                    elif rec["kind"] == "text":
                        sent = sum(len(t.encode()) for m in upd.get("transcript") or [] for t in m["texts"])
                        edge_bytes += sent / rec["rows"]
                        edges += 1
                    else:
                        judge_s += rec["wall_s"]
                        judge_cols += rec["kv_len"] * rec["rows"]
                if upd.get("handle") is not None and "answers" not in upd:
                    last_handle = upd["handle"]
                if "answers" in upd:
                    out = upd["answers"]
        if out is None or len(out) != len(batch):
            raise GraphOutputError(f"the graph answered {0 if out is None else len(out)} of {len(batch)} questions")
        if handle_bytes is not None and last_handle is not None:
            stored += handle_bytes(last_handle)
        answers += [str(a) for a in out]
        hits += [task.score(e, str(a)).correct for e, a in zip(batch, out)]
    wall = time.perf_counter() - t0
    n, k = len(hits), sum(hits)
    if n == 0:
        raise BenchArgumentError(f"task {task.name!r} has no examples")
    lo, hi = wilson_interval(k, n)
    fam = {f: sum(h for h, e in zip(hits, examples) if e.meta["family"] == f) for f in _families(examples)}
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n,
        "ci95": [lo, hi],
        "family_hits": fam,
        "gen_tok_per_q": gen / n,
        "wall_s": wall,
        "s_per_q": wall / n,
        "bytes_per_edge_q": edge_bytes / edges if edges else 0.0,
        "judger_s_per_q": judge_s / n,
        "judger_cols": judge_cols / n,
        "ckpt_bytes_per_q": stored / n if handle_bytes is not None else None,
        "load_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "answers": answers,
    }


class ConditionLog:
    """Measured conditions, one JSON line each in ``path`` (appended), by their ``key``.

    A condition counts as measured at ``n`` questions when its row has that ``n``; a row measured
    at another ``n`` is kept in the file and measured again (the later line wins).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.rows[row["key"]] = row
                except (json.JSONDecodeError, RecursionError, KeyError, TypeError) as exc:
                    raise DataFormatError(f"{self.path}:{number}: not a condition row ({exc})") from exc

    def get(self, key: str, n: int) -> dict[str, Any] | None:
        """The row of ``key`` measured at ``n`` questions, or None."""
        row = self.rows.get(key)
        return row if row is not None and row.get("n") == n else None

    def add(self, row: dict[str, Any]) -> None:
        """Append ``row`` (it must hold ``key``) to the file and remember it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        self.rows[row["key"]] = row

    def measured(self, keys: Iterable[str], n: int) -> list[dict[str, Any]]:
        """Rows of ``keys`` measured at ``n``, in the order of ``keys`` (unmeasured ones left out)."""
        return [row for row in (self.get(k, n) for k in keys) if row is not None]


def run_conditions(
    conditions: Iterable[C],
    log: ConditionLog,
    n: int,
    key: Callable[[C], str],
    run: Callable[[C], dict[str, Any]],
    done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure, in order, every condition ``log`` lacks at ``n``: ``run(cond)`` gives its row (``key`` added).

    Each new row is appended to the log at once (a killed run loses only the condition in flight)
    and passed to ``done`` (e.g. to print it). Returns the rows of all ``conditions``, old and new.
    """
    rows = []
    for cond in conditions:
        k = key(cond)
        row = log.get(k, n)
        if row is None:
            row = {**run(cond), "key": k}
            log.add(row)
            if done is not None:
                done(row)
        rows.append(row)
    return rows


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run: ``python <script> <args>`` (``argv`` None: this process's)."""
    return f"python {script} " + shlex.join(sys.argv[1:] if argv is None else list(argv))


def write_markdown(path: str | Path, generated: str, marker: str) -> None:
    """Write ``generated`` then ``marker`` to ``path``; what followed ``marker`` there (hand-written notes) stays."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = out.read_text(encoding="utf-8").partition(marker)[2] if out.exists() else ""
    out.write_text(generated + marker + notes, encoding="utf-8")


__all__ = ["TOLD", "ConditionLog", "Told", "command_line", "measure", "relay_state", "run_conditions", "write_markdown"]
