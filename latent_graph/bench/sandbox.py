"""Contain untrusted generated Python with bubblewrap (``bwrap``).

Code tasks run programs written by a model; they are untrusted. A plain
subprocess with rlimits did not contain them (setsid grandchildren outlived the
timeout, ``import _socket`` reached the network, ``/proc/<ppid>/environ`` leaked
the harness's secrets, the source tree was readable and writable). Here each run
gets:

- new user (when not root), PID, network, IPC and UTS namespaces: no network at
  all, and killing bwrap kills every process of the run, setsid ones included;
- a cleared environment, read-only system and Python directories, and a private
  size-capped tmpfs ``/tmp`` holding only the program files: the harness's
  source tree, ``$HOME`` and ``/etc`` are not there;
- stdout and stderr read with a byte cap: past it the run is killed;
- rlimits set inside (see ``_GUARD`` in :mod:`~latent_graph.bench.execute`):
  address space *per process*, number of processes + threads, CPU, file size.
  Run as root, the program drops to an unused uid, because the kernel does not
  apply the process cap to root. Total memory is bounded by
  ``max_procs x memory_mb`` plus the tmpfs size; with the default
  ``max_procs=1`` the program cannot fork at all. No cgroup is used.
"""

from __future__ import annotations

import functools
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from latent_graph.bench.errors import SandboxUnavailableError

OUTPUT_CAP = 1 << 20  # bytes kept per stream; more kills the run
TMPFS_BYTES = 64 << 20
KILL_GRACE_S = 1.0  # after a kill, how long to wait for the pipes to close
_SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
INSTALL_HINT = "install it with `apt-get install bubblewrap`"


@dataclass(frozen=True)
class Completed:
    """Outcome of :func:`run_capped`: exit code (None if killed) and the kept output."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflowed: bool  # an output stream passed its cap
    wall_s: float


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bwrap cannot be used here (None: it works). Checked once per process."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    probe = subprocess.run(
        [exe, *_namespace_args(), *_system_binds(), "--", "/bin/sh", "-c", "exit 0"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        err = probe.stderr.decode(errors="replace").strip()[-300:]
        return f"bubblewrap is installed but cannot create a sandbox here ({err}); user namespaces may be disabled"
    return None


def require_bwrap() -> str:
    """Path of a working ``bwrap``; raises :class:`SandboxUnavailableError` otherwise."""
    problem = bwrap_problem()
    if problem:
        raise SandboxUnavailableError(
            f"refusing to run generated code without a sandbox: {problem}. "
            "To run it unsandboxed anyway (unsafe), pass sandbox='none' or set LATENT_GRAPH_UNSAFE_EXEC=1."
        )
    return shutil.which("bwrap") or "bwrap"


def run_sandboxed(
    files: Mapping[str, str],
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float,
    output_cap: int = OUTPUT_CAP,
) -> Completed:
    """Run ``argv`` (``argv[0]`` = ``"python"`` means this interpreter) in a bwrap sandbox.

    ``files`` (name -> text) are copied into a fresh working directory in the
    sandbox's tmpfs, which is also ``HOME`` and ``TMPDIR``. ``env`` is the
    sandbox's whole environment besides ``PATH``/``HOME``/``LANG``/``TMPDIR``.
    """
    exe = require_bwrap()
    work = f"/tmp/lg-bench-exec-{secrets.token_hex(4)}"
    root = os.geteuid() == 0
    full_env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8", **env}
    if root:  # no user namespace: bwrap runs privileged, the guard drops to an unused uid
        full_env["LG_SANDBOX_UID"] = str(0x10000000 + secrets.randbelow(0x10000000))
    args = [exe, *_namespace_args(), "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in full_env.items():
        args += ["--setenv", key, value]
    if root:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    # the private /tmp first, then the interpreter: a venv that lives under /tmp stays visible (read-only)
    args += _system_binds() + ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    args += _python_binds() + ["--perms", "1777", "--dir", work]
    handles = []
    try:
        for name, text in files.items():
            handle = tempfile.TemporaryFile()
            handle.write(text.encode("utf-8"))
            handle.seek(0)
            handles.append(handle)
            args += ["--perms", "0644", "--file", str(handle.fileno()), f"{work}/{name}"]
        args += ["--chdir", work, "--"]
        args += [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        return run_capped(
            args,
            env={"PATH": "/usr/bin:/bin"},
            timeout=timeout,
            output_cap=output_cap,
            pass_fds=tuple(h.fileno() for h in handles),
        )
    finally:
        for handle in handles:
            handle.close()


def run_capped(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    output_cap: int = OUTPUT_CAP,
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
) -> Completed:
    """Run ``argv`` in its own session; keep at most ``output_cap`` bytes per stream.

    The process group is killed when ``timeout`` passes or a stream overflows.
    After a kill the pipes are closed without waiting for EOF, so escaped
    descendants holding them cannot stall the caller.
    """
    start = time.perf_counter()
    deadline = start + timeout
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    assert proc.stdout is not None and proc.stderr is not None
    kept: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as sel:
        for fd in kept:
            sel.register(fd, selectors.EVENT_READ)
        timed_out, overflowed = _pump(sel, kept, output_cap, deadline)
        if not (timed_out or overflowed):
            try:
                proc.wait(max(0.0, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out or overflowed:
            _kill_group(proc)
            # The pipes close once the sandbox's last process is gone; unsandboxed escapees
            # may hold them for ever, so wait a short grace period only.
            _pump(sel, kept, output_cap, time.perf_counter() + KILL_GRACE_S)
    proc.stdout.close()
    proc.stderr.close()
    code = proc.wait()
    out, err = kept.values()
    return Completed(
        None if timed_out or overflowed else code,
        bytes(out),
        bytes(err),
        timed_out,
        overflowed,
        time.perf_counter() - start,
    )


def _pump(sel: selectors.BaseSelector, kept: dict[int, bytearray], cap: int, until: float) -> tuple[bool, bool]:
    """Read the pipes until both close (False, False), ``until`` passes (True, _) or one overflows (_, True)."""
    overflowed = False
    while sel.get_map() and not overflowed:
        ready = sel.select(max(0.0, until - time.perf_counter()))
        if not ready and time.perf_counter() >= until:
            return True, False
        for key, _ in ready:
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
            buf = kept[key.fd]
            overflowed = overflowed or len(buf) + len(data) > cap
            buf += data[: cap - len(buf)]
    return False, overflowed


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _namespace_args() -> list[str]:
    # Root gets no user namespace (it would map the sandbox to uid 0, exempt from RLIMIT_NPROC).
    if os.geteuid() == 0:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def _python_binds() -> list[str]:
    """The interpreter, its prefix (venv) and base prefix (stdlib), read-only, at their own paths."""
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    args: list[str] = []
    for path in sorted(p for p in paths if p != "/" and not p.startswith(_SYSTEM_DIRS)):
        parents = [str(d) for d in reversed(Path(path).parents) if str(d) != "/"]
        for parent in parents:  # traversable by the sandbox's unprivileged uid
            args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", path, path]
    return args


__all__ = ["Completed", "OUTPUT_CAP", "bwrap_problem", "require_bwrap", "run_capped", "run_sandboxed"]
