"""Read JSONL files of objects, naming ``path:line`` in every error (shared by bench and adapters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def parse_json(text: str | bytes, error: type[Exception], where: str) -> Any:
    """``json.loads`` whose every failure, a nesting bomb (``[[[[...``) included, raises ``error``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except (RecursionError, UnicodeDecodeError) as exc:
        raise error(f"{where}: JSON nested too deeply or not UTF-8 ({type(exc).__name__})") from None


def iter_objects(path: Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` per non-blank line; ``error`` for a line that is no JSON object."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = parse_json(line, error, f"{path}:{lineno}")
            if not isinstance(obj, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
