"""Metrics: Wilson intervals, per-method aggregation and the issue's goal ratios.

Inputs are the per-question records the runner writes (plain dicts, one per
``(method, batch_size, seed, repeat, question)``). Batch-level costs (wall time,
tokens, handle bytes) are stored in each record as the row's equal share of its
batch, so sums over any subset of records are meaningful.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from latent_graph.bench.errors import BenchArgumentError

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (95% by default).

    Returns ``(0.0, 1.0)`` when ``n == 0`` (no information).

    Raises:
        BenchArgumentError: If not ``0 <= k <= n`` or ``z <= 0``.
    """
    if n < 0 or k < 0 or k > n:
        raise BenchArgumentError(f"need 0 <= k <= n for a Wilson interval, got k={k}, n={n}")
    if not z > 0:
        raise BenchArgumentError(f"z must be > 0, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class MethodSummary:
    """Aggregated results of one method at one batch size.

    Token, wall and byte figures are means per question unless named ``total``.
    """

    method: str
    batch_size: int
    n: int
    correct: int
    errors: int
    accuracy: float
    ci_low: float
    ci_high: float
    generated_tokens: float  # text tokens generated, all agents, per question
    total_tokens: float  # prompt + latent steps + generated, per question
    latent_steps: float  # latent steps taken, all agents, per question
    wall_s_total: float
    s_per_question: float
    questions_per_s: float
    peak_rss_mb: float  # process RSS peak seen while this method ran
    peak_rss_delta_mb: float  # that peak minus the RSS right before the batch
    handle_kb: float  # peak handle size of a batch, per question
    peak_gpu_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-safe dict (non-finite floats become None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Ratio:
    """One of the issue's performance goals, measured.

    Attributes:
        name: What is compared.
        value: Measured value (None when the run lacks a method it needs).
        goal: The target, e.g. ``">= 5"`` (None: informational only).
        met: Whether the goal is met (None when not applicable).
        detail: The numbers behind the ratio.
    """

    name: str
    value: float | None
    goal: str | None
    met: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _f(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if value is not None else 0.0


def summarize(records: Iterable[dict[str, Any]]) -> list[MethodSummary]:
    """One :class:`MethodSummary` per (method, batch_size), in first-seen order."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["method"], int(r["batch_size"]))].append(r)
    out = []
    for (method, bs), rows in groups.items():
        n = len(rows)
        k = sum(1 for r in rows if r.get("correct"))
        lo, hi = wilson_interval(k, n)
        wall = sum(_f(r, "wall_s") for r in rows)
        gpu = [r["peak_gpu_bytes"] for r in rows if r.get("peak_gpu_bytes") is not None]
        out.append(
            MethodSummary(
                method=method,
                batch_size=bs,
                n=n,
                correct=k,
                errors=sum(1 for r in rows if r.get("status") == "error"),
                accuracy=k / n if n else 0.0,
                ci_low=lo,
                ci_high=hi,
                generated_tokens=sum(_f(r, "generated_tokens") for r in rows) / n,
                total_tokens=sum(_f(r, "total_tokens") for r in rows) / n,
                latent_steps=sum(_f(r, "latent_steps") for r in rows) / n,
                wall_s_total=wall,
                s_per_question=wall / n,
                questions_per_s=n / wall if wall > 0 else math.inf,
                peak_rss_mb=max(_f(r, "peak_rss_bytes") for r in rows) / 2**20,
                peak_rss_delta_mb=max(_f(r, "peak_rss_bytes") - _f(r, "rss_base_bytes") for r in rows) / 2**20,
                handle_kb=sum(_f(r, "handle_bytes") for r in rows) / n / 1024,
                peak_gpu_mb=max(gpu) / 2**20 if gpu else None,
            )
        )
    return out


def _qkey(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["seed"], r["repeat"], r["qid"])


def _common(records: Sequence[dict[str, Any]], a: tuple[str, int], b: tuple[str, int]) -> tuple[list[dict], list[dict]]:
    """Records of run ``a`` and run ``b`` (method, batch size) restricted to questions both finished."""
    ra = {_qkey(r): r for r in records if (r["method"], int(r["batch_size"])) == a}
    rb = {_qkey(r): r for r in records if (r["method"], int(r["batch_size"])) == b}
    keys = sorted(set(ra) & set(rb), key=str)
    return [ra[k] for k in keys], [rb[k] for k in keys]


def _goal(value: float | None, goal: str | None) -> bool | None:
    if value is None or goal is None:
        return None
    op, target = goal.split()
    return value >= float(target) if op == ">=" else value <= float(target)


def _throughput_ratio(records: Sequence[dict[str, Any]], method: str) -> Ratio:
    """``method``'s questions/s at its largest batch size over batch size 1 (its smallest), on common questions."""
    sizes = sorted({int(r["batch_size"]) for r in records if r["method"] == method})
    if len(sizes) < 2:
        return Ratio(
            f"{method} questions/s, largest batch / batch 1", None, ">= 3", None, f"needs {method} at two batch sizes"
        )
    lo, hi = sizes[0], sizes[-1]
    r_lo, r_hi = _common(records, (method, lo), (method, hi))
    w_lo, w_hi = sum(_f(r, "wall_s") for r in r_lo), sum(_f(r, "wall_s") for r in r_hi)
    n = len(r_lo)
    value = (n / w_hi) / (n / w_lo) if n and w_lo > 0 and w_hi > 0 else None
    detail = (
        f"batch {hi}: {n / w_hi:.3f} q/s vs batch {lo}: {n / w_lo:.3f} q/s over {n} questions"
        if value is not None
        else f"no common questions at batch {lo} and {hi}"
    )
    return Ratio(f"{method} questions/s, batch {hi} / batch {lo}", value, ">= 3", _goal(value, ">= 3"), detail)


def compute_ratios(
    records: Sequence[dict[str, Any]], batch_size: int, throughput_method: str | Sequence[str] = "latent-seq"
) -> list[Ratio]:
    """The issue's goal ratios (plus hierarchical counterparts), each over common questions.

    Args:
        records: Per-question records.
        batch_size: Batch size at which methods are compared with each other.
        throughput_method: Method(s) whose questions/s are compared across batch sizes.
    """
    out: list[Ratio] = []

    def pair(name: str, a: str, b: str, goal: str | None, kind: str) -> None:
        ra, rb = _common(records, (a, batch_size), (b, batch_size))
        if not ra:
            out.append(Ratio(name, None, goal, None, f"needs both {a} and {b} at batch {batch_size}"))
            return
        n = len(ra)
        if kind == "wall":
            wa, wb = sum(_f(r, "wall_s") for r in ra), sum(_f(r, "wall_s") for r in rb)
            value = wa / wb if wb > 0 else None
            detail = f"{a} {wa:.1f}s / {b} {wb:.1f}s over {n} questions at batch {batch_size}"
        else:  # generated-token reduction of b relative to a
            ga, gb = sum(_f(r, "generated_tokens") for r in ra), sum(_f(r, "generated_tokens") for r in rb)
            value = 1 - gb / ga if ga > 0 else None
            detail = f"{b} {gb / n:.0f} vs {a} {ga / n:.0f} generated tokens/question over {n} questions"
        out.append(Ratio(name, value, goal, _goal(value, goal), detail))

    pair("latent-seq speed-up over text-seq (wall)", "text-seq", "latent-seq", ">= 5", "wall")
    pair("latent-seq generated-token reduction vs text-seq", "text-seq", "latent-seq", ">= 0.8", "tokens")
    pair("latent-seq wall / single wall", "latent-seq", "single", "<= 1.3", "wall")
    pair("latent-hier speed-up over text-hier (wall)", "text-hier", "latent-hier", None, "wall")
    pair("latent-hier generated-token reduction vs text-hier", "text-hier", "latent-hier", None, "tokens")

    for method in [throughput_method] if isinstance(throughput_method, str) else throughput_method:
        out.append(_throughput_ratio(records, method))
    return out


__all__ = ["MethodSummary", "Ratio", "compute_ratios", "summarize", "wilson_interval"]


@dataclass
class BenchSummary:
    """What :func:`run_bench` returns (and ``summary.json`` holds)."""

    config: dict[str, Any]
    methods: list[MethodSummary]
    ratios: list[Ratio]
    environment: dict[str, Any]
    out_dir: str
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    files: dict[str, str] = field(default_factory=dict)
    computed_jobs: int = 0
    skipped_jobs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "methods": [m.to_dict() for m in self.methods],
            "ratios": [r.to_dict() for r in self.ratios],
            "environment": self.environment,
            "out_dir": self.out_dir,
            "files": self.files,
            "computed_jobs": self.computed_jobs,
            "skipped_jobs": self.skipped_jobs,
        }

    def method(self, name: str, batch_size: int | None = None) -> MethodSummary:
        """The summary of ``name`` (at ``batch_size``, or the first one found)."""
        for m in self.methods:
            if m.method == name and (batch_size is None or m.batch_size == batch_size):
                return m
        raise KeyError(f"no results for method {name!r} at batch size {batch_size}")
