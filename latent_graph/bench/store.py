"""Result storage: per-question JSONL records, resume keys, config checks, rescoring.

``results.jsonl`` holds one record per (method, batch size, seed, repeat, question),
appended and fsynced per batch; ``batches.jsonl`` holds each batch's trace;
``bench_config.json`` the settings that results depend on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_graph.bench.errors import ResumeError
from latent_graph.bench.tasks import Example, Task
from latent_graph.jsonl import parse_json

RESULTS = "results.jsonl"
BATCHES = "batches.jsonl"
CONFIG = "bench_config.json"


def load_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every per-question record in ``out_dir/results.jsonl``.

    A torn last line (a run killed mid-write) is dropped from the file; a malformed
    line elsewhere raises :class:`ResumeError` naming the line.
    """
    path = Path(out_dir) / RESULTS
    if not path.exists():
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):  # torn write: cut back to the last full line
        raw = raw[: raw.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(raw))
    records = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        records.append(parse_json(line, ResumeError, f"{path}:{lineno}: corrupt result line (fix or remove it)"))
    return records


def record_key(r: dict[str, Any]) -> tuple[str, int, int, int, str]:
    """Resume key of a record: (method, batch_size, seed, repeat, question id)."""
    return (r["method"], int(r["batch_size"]), int(r["seed"]), int(r["repeat"]), r["qid"])


def append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def rescore_results(out_dir: str | Path, task: Task, examples: Sequence[Example], code_timeout: float = 10.0) -> int:
    """Re-judge stored answers of ``examples`` with the current extractor; returns how many changed.

    ``results.jsonl`` is rewritten atomically (temp file + rename); errored rows stay as they are.
    """
    out = Path(out_dir)
    records = load_results(out)
    by_id = {e.id: e for e in examples}
    changed = 0
    for r in records:
        ex = by_id.get(r["qid"])
        if ex is None or r.get("status") == "error":
            continue
        sc = task.score(ex, r["answer"], code_timeout=code_timeout)
        if (sc.pred, sc.correct) != (r.get("pred"), r.get("correct")):
            changed += 1
        r["pred"], r["correct"], r["detail"] = sc.pred, sc.correct, sc.detail
    tmp = out / (RESULTS + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(out / RESULTS)
    return changed


def check_config(out: Path, config: dict[str, Any], resume: bool) -> None:
    path = out / CONFIG
    existing = load_results(out)
    if path.exists():
        old = parse_json(path.read_text(encoding="utf-8"), ResumeError, str(path))
        diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
        if diff and existing:
            details = "; ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
            raise ResumeError(f"{out} holds results of another configuration ({details}); use another out_dir")
    if existing and not resume:
        raise ResumeError(
            f"{out} already holds {len(existing)} results; pass resume=True (--resume) to continue, "
            "or choose another out_dir"
        )
    path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def batch_loads(out: Path, batch_ids: set[int]) -> list[float]:
    """1-minute load averages recorded with the given batches (from batches.jsonl)."""
    path = out / BATCHES
    if not path.exists():
        return []
    loads = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            b = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # a torn diagnostic line is harmless
        value = b.get("load_avg_1m")
        if b.get("batch_id") in batch_ids and isinstance(value, (int, float)) and value == value:
            loads.append(float(value))
    return loads


__all__ = [
    "BATCHES",
    "CONFIG",
    "RESULTS",
    "append_jsonl",
    "batch_loads",
    "check_config",
    "load_results",
    "record_key",
    "rescore_results",
]
