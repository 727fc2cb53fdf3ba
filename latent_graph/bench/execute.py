"""Run generated code against its tests in a separate Python process.

Generated code is untrusted, so by default each run happens in a bubblewrap
sandbox (:mod:`latent_graph.bench.sandbox`): own PID/network namespaces, cleared
environment, read-only system and Python directories, a private tmpfs working
directory, capped output, and the limits set by ``_GUARD`` below (address space,
processes + threads, CPU time, file size, no core dumps, no sockets). A timeout
kills every process of the run.

Without bwrap, :func:`run_python` raises
:class:`~latent_graph.bench.errors.SandboxUnavailableError` unless the caller
opts into the unsandboxed runner (``sandbox="none"`` or
``LATENT_GRAPH_UNSAFE_EXEC=1``), which warns: that runner only keeps benchmark
runs from hanging or leaking files; it does not contain hostile code.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from latent_graph.bench import sandbox as sb
from latent_graph.bench.errors import BenchArgumentError

ExecStatus = Literal["passed", "failed", "timeout"]
SandboxMode = Literal["bwrap", "none"]
UNSAFE_ENV = "LATENT_GRAPH_UNSAFE_EXEC"

_GUARD = r"""
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
_procs = int(os.environ.get("LG_BENCH_NPROC", "0"))
if _procs:  # processes + threads of this uid (in the sandbox's user namespace, or a fresh uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (_procs, _procs))
_uid = int(os.environ.pop("LG_SANDBOX_UID", "0"))
if _uid and os.getuid() == 0:  # root is exempt from RLIMIT_NPROC: become an unused uid
    os.setgroups([])
    os.setgid(_uid)
    os.setuid(_uid)

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
"""


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


def run_python(
    program: str,
    *,
    timeout: float = 10.0,
    memory_mb: int | None = 2048,
    max_procs: int = 1,
    sandbox: SandboxMode | None = None,
) -> ExecResult:
    """Run ``program`` (Python source) in a fresh, sandboxed subprocess.

    Args:
        program: Source code; runs as ``__main__`` in an empty temporary directory.
        timeout: Wall-clock seconds before every process of the run is killed.
        memory_mb: Address-space limit in MiB, per process (None: no limit).
        max_procs: Processes + threads the program may have (sandbox only); 1 means it
            cannot fork or start threads, so ``memory_mb`` also caps the total.
        sandbox: "bwrap" (default) or "none" (unsafe, warns); None reads
            ``LATENT_GRAPH_UNSAFE_EXEC`` ("1": "none").

    Returns:
        An :class:`ExecResult`; output past 1 MiB per stream kills the run ("failed").

    Raises:
        SandboxUnavailableError: bwrap is missing or unusable and "none" was not chosen.
    """
    if not timeout > 0:
        raise BenchArgumentError(f"timeout must be > 0 seconds, got {timeout!r}")
    if memory_mb is not None and memory_mb <= 0:
        raise BenchArgumentError(f"memory_mb must be > 0 or None, got {memory_mb!r}")
    if max_procs < 1:
        raise BenchArgumentError(f"max_procs must be >= 1, got {max_procs!r}")
    mode = sandbox or ("none" if os.environ.get(UNSAFE_ENV) == "1" else "bwrap")
    if mode not in ("bwrap", "none"):
        raise BenchArgumentError(f"sandbox must be 'bwrap' or 'none', got {mode!r}")
    env = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "LG_BENCH_MEM_BYTES": str((memory_mb or 0) * 1024 * 1024),
        "LG_BENCH_CPU_S": str(int(timeout) + 5),
    }
    files = {"program.py": program, "_guard.py": _GUARD}
    if mode == "bwrap":
        # + bwrap's own reaper, which shares the uid inside a user namespace
        env["LG_BENCH_NPROC"] = str(max_procs + (os.geteuid() != 0))
        done = sb.run_sandboxed(files, ["python", "-I", "_guard.py"], env, timeout=timeout)
    else:
        warnings.warn(
            "running generated code WITHOUT a sandbox (sandbox='none' / LATENT_GRAPH_UNSAFE_EXEC=1): "
            "it can read your files and environment and reach the network",
            RuntimeWarning,
            stacklevel=2,
        )
        with tempfile.TemporaryDirectory(prefix="lg-bench-exec-") as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            env |= {"PATH": os.defpath, "HOME": tmp, "TMPDIR": tmp}
            done = sb.run_capped([sys.executable, "-I", "_guard.py"], env=env, timeout=timeout, cwd=tmp)
    status: ExecStatus = "timeout" if done.timed_out else "passed" if done.returncode == 0 else "failed"
    err = done.stderr + (
        f"\nsandbox: output passed {sb.OUTPUT_CAP} bytes; run killed".encode() if done.overflowed else b""
    )
    return ExecResult(status, done.returncode, _tail(done.stdout), _tail(err), done.wall_s)


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


def _tail(data: bytes | None, n: int = 2000) -> str:
    return (data or b"").decode("utf-8", errors="replace")[-n:]


__all__ = ["ExecResult", "build_program", "run_python", "run_tests"]
