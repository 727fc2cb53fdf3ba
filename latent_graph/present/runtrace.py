"""The run trace: everything a graph run leaves behind, as one JSON document.

A :class:`RunTrace` bundles what a reader needs to see a run without the
model: the questions and answers, the text that crossed text edges, one record
per executed node (timings, token counts, handle bytes, KV length and — with
``inspect=k`` — the per-step logit lens), the graph's shape with the kind of
each edge, and the settings used. ``latent-graph run --save-trace`` writes one;
``latent-graph report`` turns one (or two) into HTML.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from latent_graph.errors import InvalidArgumentError
from latent_graph.jsonl import parse_json
from latent_graph.present.edges import TOOLS_SUFFIX
from latent_graph.present.layout import Shape
from latent_graph.state import Message, NodeRecord

VERSION = 2  # 2: trace records are typed NodeRecords with per-row token counts


def _jsonable(obj: Any) -> Any:
    """Options and records as plain JSON values (unknown objects become their repr)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return repr(obj)


def graph_shape(graph: Any) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Nodes (subgraphs expanded), ``{"src->dst": kind}`` (latent/text/plain) and ``{"src->dst": label}``
    of the conditional edges of a compiled graph."""
    shape = Shape.of(graph)
    kinds, labels = shape.edge_record()
    return [str(n) for n in shape.nodes], kinds, labels


@dataclass
class RunTrace:
    """One graph run, JSON-serialisable (``to_json`` / ``save`` / ``load``).

    Attributes:
        questions: The batch of questions, in order.
        answers: The final answer per question.
        trace: Node records in execution order (:class:`~latent_graph.state.NodeRecord`).
        transcript: Text sent over text edges (and the judger's answers): ``{agent, texts}``.
        context: Per-question private context, if any.
        model: ``{"name", "digest"}`` of the model (its fingerprint).
        graph: Graph name.
        nodes: Graph node names (including ``__start__`` / ``__end__``).
        edges: ``{"src->dst": "latent" | "text" | "plain"}``.
        edge_labels: ``{"src->dst": label}`` of conditional edges (routers, ``Send`` fan-out).
        mermaid: Mermaid drawing of the graph with the executed nodes highlighted.
        options: Settings of the run (steps, memory, sampling...).
        wall_s: Wall seconds of the whole run as measured by the caller (None if unknown).
        created: ISO-8601 creation time (UTC).
        version: Format version.
    """

    questions: list[str]
    answers: list[str]
    trace: list[NodeRecord] = field(default_factory=list)
    transcript: list[Message] = field(default_factory=list)
    context: list[str] | None = None
    model: dict[str, str] = field(default_factory=dict)
    graph: str = ""
    nodes: list[str] = field(default_factory=list)
    edges: dict[str, str] = field(default_factory=dict)
    edge_labels: dict[str, str] = field(default_factory=dict)
    mermaid: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    version: int = VERSION

    # ------------------------------------------------------------ building
    @classmethod
    def from_run(
        cls,
        out: Mapping[str, Any],
        questions: Sequence[str],
        *,
        graph: Any = None,
        model: Any = None,
        options: Mapping[str, Any] | None = None,
        context: Sequence[str] | None = None,
        wall_s: float | None = None,
        graph_name: str | None = None,
    ) -> RunTrace:
        """Build from a graph's output (``answers``, ``transcript``, ``trace``).

        Args:
            out: What ``graph.invoke`` returned (or the last ``values`` chunk of a stream).
            questions: The questions that were asked.
            graph: The compiled graph (for its shape, name and mermaid drawing).
            model: The :class:`LocalLatentModel` (for its name and fingerprint digest).
            options: Settings to record (steps, memory, sampling...).
            context: Per-question private context, if any.
            wall_s: Measured wall time of the whole run.
            graph_name: Overrides the graph's own name.
        """
        trace = list(out.get("trace") or [])
        run = cls(
            questions=list(questions),
            answers=[str(a) for a in out.get("answers") or []],
            trace=_jsonable(trace),
            transcript=_jsonable(list(out.get("transcript") or [])),
            context=list(context) if context is not None else None,
            options=_jsonable(dict(options or {})),
            wall_s=None if wall_s is None else round(float(wall_s), 4),
        )
        if model is not None:
            fp = getattr(model, "fingerprint", None)
            run.model = {"name": str(getattr(model, "name", model)), "digest": str(getattr(fp, "digest", ""))}
        if graph is not None:
            run.nodes, run.edges, run.edge_labels = graph_shape(graph)
            from latent_graph.present.draw import to_mermaid, tool_calls_per_node

            calls = tool_calls_per_node(run.trace)  # a tool-using agent that called: its tools node lights up too
            run.mermaid = to_mermaid(graph, highlight=[*run.executed, *(n + TOOLS_SUFFIX for n in calls)], calls=calls)
            run.graph = graph_name or str(getattr(graph, "name", "") or "")
        elif graph_name:
            run.graph = graph_name
        return run

    # ------------------------------------------------------------ views
    @property
    def executed(self) -> list[str]:
        """Graph nodes that ran, in execution order (unique): a record's ``graph_node`` (the LangGraph node
        it ran as, e.g. ``worker`` for agent ``worker_algebra``), else its agent name."""
        return list(dict.fromkeys(r.get("graph_node") or r["node"] for r in self.trace))

    def records(self, node: str) -> list[NodeRecord]:
        """The trace records of ``node`` (several if it ran more than once)."""
        return [r for r in self.trace if r["node"] == node]

    def texts_of(self, agent: str) -> list[str] | None:
        """Per-question texts ``agent`` sent (its last message), or None."""
        found = [m for m in self.transcript if m["agent"] == agent]
        return list(found[-1]["texts"]) if found else None

    def totals(self) -> dict[str, float]:
        """Run-level figures (token counts summed over questions): wall seconds, tokens, final KV length, handle bytes."""
        span = (max(r["end"] for r in self.trace) - min(r["start"] for r in self.trace)) if self.trace else 0.0
        return {
            "wall_s": round(self.wall_s if self.wall_s is not None else span, 4),
            "node_s": round(sum(r["wall_s"] for r in self.trace), 4),
            "prompt_tokens": sum(sum(r["prompt_tokens"]) for r in self.trace),
            "latent_steps": sum(r["latent_steps"] * r["rows"] for r in self.trace),
            "generated_tokens": sum(sum(r["generated_tokens"]) for r in self.trace),
            "max_kv_len": max((r["kv_len"] for r in self.trace), default=0),
            "max_handle_bytes": max((r["handle_bytes_after"] for r in self.trace), default=0),
        }

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | Path) -> Path:
        """Write JSON to ``path`` (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunTrace:
        """Validate and build from a dict (as written by :meth:`to_dict`)."""
        if not isinstance(data, Mapping) or "questions" not in data or "trace" not in data:
            raise InvalidArgumentError("not a run trace: expected a JSON object with 'questions' and 'trace'")
        version = data.get("version", VERSION)
        if not isinstance(version, int) or version > VERSION:
            raise InvalidArgumentError(f"run trace version {version!r} is newer than this latent_graph ({VERSION})")
        if version < VERSION:
            raise InvalidArgumentError(
                f"run trace version {version} is from an older latent_graph (its token counts "
                f"are not per question); re-run to write a version {VERSION} trace"
            )
        need = NodeRecord.__required_keys__
        for i, rec in enumerate(data["trace"] if isinstance(data["trace"], list) else [None]):
            missing = sorted(need - set(rec)) if isinstance(rec, Mapping) else ["(not an object)"]
            if missing:
                raise InvalidArgumentError(f"run trace record {i} lacks {missing}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("answers", [])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> RunTrace:
        """Read a trace JSON file; bad paths and bad JSON raise :class:`InvalidArgumentError`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read run trace {str(path)!r}: {exc.strerror or exc}") from exc
        data = parse_json(text, InvalidArgumentError, f"run trace {str(path)!r}")
        return cls.from_dict(data)
