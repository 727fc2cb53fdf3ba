"""The code base passes its linter, formatter and type checker (config: [tool.ruff] and [tool.mypy] in pyproject.toml).

README's test command runs them, so CI does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["latent_graph", "tests", "benchmarks", "examples", "scripts"]


def _tool(name: str) -> str:
    """The tool installed beside this interpreter (the `test` extra pins it), else on PATH."""
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; `pip install -e '.[test]'` (scripts/setup.sh does) installs it")
    return found


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"`{' '.join(cmd)}` exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-6000:]}"


def test_ruff_check() -> None:
    _run(_tool("ruff"), "check", *PATHS)


def test_ruff_format() -> None:
    _run(_tool("ruff"), "format", "--check", *PATHS)


def test_mypy_engine_and_persist() -> None:
    _run(_tool("mypy"))  # the files come from [tool.mypy] in pyproject.toml
