"""Read JSONL files of objects, naming ``path:line`` in every error (shared by bench and adapters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_objects(path: Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` per non-blank line; ``error`` for a line that is no JSON object."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(obj, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
