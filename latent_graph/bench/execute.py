"""Run generated code against its tests in a separate Python process.

Each run gets a fresh temporary directory (its working directory and ``HOME``), an
isolated interpreter (``python -I``), a wall-clock timeout after which the whole
process group is killed, resource limits (address space, CPU time, file size, no
core dumps) and a guard that disables sockets before the program starts.

This keeps benchmark runs from hanging or leaking files; it is *not* a security
sandbox for hostile code — run untrusted benchmarks inside a container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from latent_graph.bench.errors import BenchArgumentError

ExecStatus = Literal["passed", "failed", "timeout"]

_GUARD = r'''
import os, resource, runpy, socket, sys

def _limit(kind, value):
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass

_mem = int(os.environ.get("LG_BENCH_MEM_BYTES", "0"))
if _mem:
    _limit(resource.RLIMIT_AS, _mem)
_limit(resource.RLIMIT_CPU, int(os.environ.get("LG_BENCH_CPU_S", "60")))
_limit(resource.RLIMIT_FSIZE, 16 * 1024 * 1024)
_limit(resource.RLIMIT_CORE, 0)

def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while running benchmark code")

class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        _no_network()

socket.socket = _NoSocket
for _name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "socketpair", "fromfd"):
    setattr(socket, _name, _no_network)

sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
'''


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program run.

    Attributes:
        status: "passed" (exit code 0), "failed" (non-zero exit: assertion, exception,
            syntax error...), or "timeout" (killed after ``timeout`` seconds).
        returncode: The process exit code (None on timeout).
        stdout: Last 2,000 characters of standard output.
        stderr: Last 2,000 characters of standard error.
        wall_s: Seconds the process ran.
    """

    status: ExecStatus
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def reason(self) -> str:
        """One short line saying why it did not pass ("" if it passed)."""
        if self.status == "passed":
            return ""
        if self.status == "timeout":
            return f"timed out after {self.wall_s:.1f}s"
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:200] if lines else f"exit code {self.returncode}"


def run_python(program: str, *, timeout: float = 10.0, memory_mb: int | None = 2048) -> ExecResult:
    """Run ``program`` (Python source) in a fresh subprocess.

    Args:
        program: Source code; runs as ``__main__`` in an empty temporary directory.
        timeout: Wall-clock seconds before the process group is killed.
        memory_mb: Address-space limit in MiB (None: no limit).

    Returns:
        An :class:`ExecResult`.
    """
    if not timeout > 0:
        raise BenchArgumentError(f"timeout must be > 0 seconds, got {timeout!r}")
    if memory_mb is not None and memory_mb <= 0:
        raise BenchArgumentError(f"memory_mb must be > 0 or None, got {memory_mb!r}")
    with tempfile.TemporaryDirectory(prefix="lg-bench-exec-") as tmp:
        (Path(tmp) / "program.py").write_text(program, encoding="utf-8")
        (Path(tmp) / "_guard.py").write_text(_GUARD, encoding="utf-8")
        env = {
            "PATH": os.defpath,
            "HOME": tmp,
            "TMPDIR": tmp,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "LG_BENCH_MEM_BYTES": str((memory_mb or 0) * 1024 * 1024),
            "LG_BENCH_CPU_S": str(int(timeout) + 5),
        }
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "_guard.py"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: a timeout kills its children too
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            status: ExecStatus = "passed" if proc.returncode == 0 else "failed"
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            status, code = "timeout", None
        wall = time.perf_counter() - start
    return ExecResult(status, code, _tail(out), _tail(err), wall)


def build_program(code: str, tests: str, *, entry_point: str | None = None, prompt: str = "", setup: str = "") -> str:
    """Assemble solution + tests into one program.

    HumanEval style (``entry_point`` given): if ``code`` does not define
    ``entry_point`` it is treated as a completion of ``prompt``; the tests define
    ``check`` and ``check(entry_point)`` is called. MBPP style: ``tests`` are plain
    ``assert`` lines run after ``setup`` and ``code``.
    """
    if entry_point and not _defines(code, entry_point):
        code = prompt + code
    parts = [setup, code, tests]
    if entry_point and "def check" in tests:
        parts.append(f"check({entry_point})")
    return "\n\n".join(p.rstrip() for p in parts if p.strip()) + "\n"


def run_tests(
    code: str,
    tests: str,
    *,
    entry_point: str | None = None,
    prompt: str = "",
    setup: str = "",
    timeout: float = 10.0,
) -> ExecResult:
    """Run ``code`` against ``tests`` (see :func:`build_program`) with a timeout."""
    return run_python(build_program(code, tests, entry_point=entry_point, prompt=prompt, setup=setup), timeout=timeout)


def _defines(code: str, name: str) -> bool:
    return f"def {name}(" in code or f"def {name} (" in code


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tail(data: bytes | None, n: int = 2000) -> str:
    return (data or b"").decode("utf-8", errors="replace")[-n:]


__all__ = ["ExecResult", "build_program", "run_python", "run_tests"]
