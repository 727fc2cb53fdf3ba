"""What one replica does, without Ray: hold one model and its compiled graphs, run batches and streams.

Why separate from the Ray deployment: this is the part with real logic (graph
cache, batched invoke, isolating a bad row, streaming events, checkpoints), and
it is testable in-process. A replica is exactly one :class:`GraphWorker`: every
agent of a run executes here, because latent handles only mean something to the
model that built them.

A batch is one ``graph.invoke({"questions": [...], "context": [...]})`` over
requests with identical :class:`RunSettings`. If the graph refuses the batch
(a :class:`LatentGraphError`, e.g. one row overflows the context window), the
rows are re-run one by one so only the offending request gets the error. Errors
are returned as data, never raised: a bad request must not crash the replica.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph import LatentGraphError, LocalLatentModel
from latent_graph.buckets import split_by_waste, token_lengths
from latent_graph.engine import enable_prefixes
from latent_graph.errors import CheckpointFileError
from latent_graph.graphs import build_graph
from latent_graph.persist import HandleStore, SqliteBlobStore
from latent_graph.serve.config import ServeConfig
from latent_graph.serve.errors import RequestCancelledError, http_status
from latent_graph.serve.schema import RunSettings, row_result

log = logging.getLogger(__name__)

MAX_CACHED_GRAPHS = 32
MAX_PADDING_SHARE = 0.25
"""A coalesced batch whose padding would exceed this share of its question columns is split by length."""
Emit = Callable[[str, dict[str, Any]], None]
Cancelled = Callable[[], bool]
"""Asked at every agent boundary of a batch run: True when nobody waits for its answers any more."""


@dataclass(frozen=True)
class Item:
    """One request's data: the question, its private context and an id for the response."""

    question: str
    context: str | None = None
    request_id: str = ""


def error_result(exc: BaseException) -> dict[str, Any]:
    """A failed request as data: ``{"error": ClassName, "message", "status"}``."""
    status = http_status(exc)
    name = type(exc).__name__ if status != 500 else "InternalError"
    message = " ".join(str(exc).split()) if status != 500 else f"{type(exc).__name__} while running the graph"
    return {"error": name, "message": message[:2000], "status": status}


def open_checkpoints(path: str | Path) -> tuple[SqliteSaver, HandleStore]:
    """A replica's checkpoints in one SQLite file: LangGraph's stock ``SqliteSaver`` and the handle blobs beside it.

    The saver's serializer is LangGraph's in strict mode (only its safe types are rebuilt: a crafted row
    cannot call anything; state holds plain data and handle references only). The file is checked
    (``PRAGMA quick_check``) before use, so a damaged one is named at start, not at a request.

    Raises:
        CheckpointFileError: The file is damaged or not a SQLite database.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False)  # LangGraph writes from worker threads
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        verdict = [str(exc)]
    if verdict != ["ok"]:
        conn.close()
        raise CheckpointFileError(
            f"checkpoint file {path} is damaged or not a SQLite database ({verdict[0]}); "
            "restore it from a backup or start a new file"
        )
    return SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None)), HandleStore(SqliteBlobStore(path))


class GraphWorker:
    """One model, its graphs (LRU by settings) and a lock: one graph run at a time on this model."""

    def __init__(self, model: LocalLatentModel, cfg: ServeConfig, replica_id: str = "local") -> None:
        self.model = model
        self.cfg = cfg
        self.replica_id = replica_id
        self.runs = 0
        self.cancelled = 0
        self._graphs: OrderedDict[RunSettings, Any] = OrderedDict()
        self._lock = threading.Lock()
        if cfg.prefix_cache_bytes > 0 and hasattr(model, "prefixes"):
            enable_prefixes(model, cfg.prefix_cache_bytes)  # system prompt + preambles prefilled once per replica
        self.padding = {"batches": 0, "columns": 0, "pad_unbucketed": 0, "pad_bucketed": 0}  # question columns
        self.checkpoint_file: Path | None = None
        self._checkpointer: Any = None
        self._handles: HandleStore | None = None
        if cfg.checkpoint_dir:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", replica_id)
            self.checkpoint_file = Path(cfg.checkpoint_dir) / f"{safe}.sqlite"
            self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
            self._checkpointer, self._handles = open_checkpoints(self.checkpoint_file)

    # ------------------------------------------------------------------ graphs
    def graph(self, s: RunSettings) -> Any:
        """The compiled graph for ``s`` (built once, then cached)."""
        if s in self._graphs:
            self._graphs.move_to_end(s)
            return self._graphs[s]
        graph = build_graph(
            s.graph,
            self.model,
            checkpointer=self._checkpointer,
            handle_store=self._handles,
            max_questions=self.cfg.max_questions,
            **s.graph_kwargs(),
        )
        self._graphs[s] = graph
        while len(self._graphs) > MAX_CACHED_GRAPHS:
            self._graphs.popitem(last=False)
        return graph

    def _run_config(self) -> tuple[dict[str, Any] | None, str]:
        run_id = f"{self.replica_id}-{uuid.uuid4().hex[:12]}"
        config = {"configurable": {"thread_id": run_id}} if self._checkpointer is not None else None
        return config, run_id

    @staticmethod
    def _inputs(items: list[Item]) -> dict[str, Any]:
        inputs: dict[str, Any] = {"questions": [it.question for it in items]}
        if any(it.context for it in items):
            inputs["context"] = [it.context or "" for it in items]
        return inputs

    def _results(self, s: RunSettings, items: list[Item], out: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
        n = len(items)
        results = []
        for i, it in enumerate(items):
            res = {
                **row_result(out, i, n),
                "request_id": it.request_id,
                "settings": s.public(),
                "batch_size": n,
                "replica": self.replica_id,
            }
            if self.checkpoint_file is not None:
                res["checkpoint"] = {"file": self.checkpoint_file.name, "thread_id": run_id, "row": i}
            results.append(res)
        return results

    # -------------------------------------------------------------------- runs
    def run(self, s: RunSettings, items: list[Item], cancelled: Cancelled | None = None) -> list[dict[str, Any]]:
        """Answer ``items`` (all with settings ``s``); one result each, in order.

        A batch whose question lengths differ so much that padding would exceed
        :data:`MAX_PADDING_SHARE` of its columns is split into length buckets, each one
        batched graph run; otherwise the whole batch is one run. ``cancelled()`` is asked after every
        graph step (agent boundary): when it says True (every client of the batch went away) the run
        stops there and each row gets :class:`RequestCancelledError`.
        """
        groups = [list(range(len(items)))]
        tok = getattr(self.model, "tokenizer", None)
        if len(items) > 1 and tok is not None:
            lengths = token_lengths(tok, [it.question for it in items])
            groups = split_by_waste(lengths, MAX_PADDING_SHARE)
            self.padding["batches"] += 1
            self.padding["columns"] += max(lengths) * len(items)
            self.padding["pad_unbucketed"] += sum(max(lengths) - n for n in lengths)
            self.padding["pad_bucketed"] += sum(max(lengths[i] for i in g) - lengths[i] for g in groups for i in g)
        if len(groups) == 1:
            return self._run(s, items, cancelled)
        out: list[dict[str, Any]] = [{} for _ in items]
        for g in groups:
            for i, res in zip(g, self._run(s, [items[i] for i in g], cancelled)):
                out[i] = res
        return out

    def _run(self, s: RunSettings, items: list[Item], cancelled: Cancelled | None = None) -> list[dict[str, Any]]:
        """``items`` in one batched ``graph.invoke``; a refused batch is re-run row by row."""
        try:
            graph = self.graph(s)
            config, run_id = self._run_config()
            out: dict[str, Any] = {}
            with self._lock:
                for state in graph.stream(self._inputs(items), config, stream_mode="values"):  # = invoke, step by step
                    out = state  # the last state streamed is the run's result
                    if cancelled is not None and cancelled():
                        self.cancelled += 1
                        raise RequestCancelledError("the client went away; the run stopped at an agent boundary")
                self.runs += 1
            return self._results(s, items, out, run_id)
        except RequestCancelledError as exc:
            return [error_result(exc) for _ in items]
        except LatentGraphError as exc:
            if len(items) > 1:  # isolate the row the graph refused
                return [r for it in items for r in self._run(s, [it], cancelled)]
            return [error_result(exc)]
        except Exception as exc:  # never let one request take the replica down
            log.exception("graph run failed (%d rows)", len(items))
            return [error_result(exc) for _ in items]

    def stream(self, s: RunSettings, item: Item, emit: Emit, cancelled: threading.Event | None = None) -> None:
        """Run one request with ``graph.stream``; ``emit(event, data)`` per latent step, token and at the end.

        Events: ``latent_step`` (node, step, norm...), ``token`` (node, text), then
        ``done`` (the same body as ``/v1/answer``) or ``error``.
        """
        try:
            graph = self.graph(s)
            config, run_id = self._run_config()
            final: dict[str, Any] = {}
            modes = ["custom", "messages", "values"]
            with self._lock:
                for mode, chunk in graph.stream(self._inputs([item]), config, stream_mode=modes):
                    if cancelled is not None and cancelled.is_set():
                        self.cancelled += 1
                        return
                    if mode == "custom" and isinstance(chunk, dict):
                        emit(str(chunk.get("event", "custom")), {k: v for k, v in chunk.items() if k != "event"})
                    elif mode == "messages":
                        msg, meta = chunk
                        if getattr(msg, "content", ""):
                            emit("token", {"node": meta.get("langgraph_node"), "text": str(msg.content)})
                    elif mode == "values":
                        final = chunk
                self.runs += 1
            emit("done", self._results(s, [item], final, run_id)[0])
        except Exception as exc:
            if not isinstance(exc, LatentGraphError):
                log.exception("graph stream failed")
            emit("error", error_result(exc))

    def health(self) -> dict[str, Any]:
        fp = getattr(self.model, "fingerprint", None)
        prefixes = getattr(self.model, "prefixes", None)
        return {
            "status": "ok",
            "replica": self.replica_id,
            "model": getattr(fp, "name", str(self.model)),
            "graphs": list(self.cfg.graphs),
            "default_graph": self.cfg.default_graph,
            "runs": self.runs,
            "cancelled": self.cancelled,
            "padding": dict(self.padding),
            "prefix_cache": prefixes.stats.as_dict() if prefixes is not None else None,
        }
