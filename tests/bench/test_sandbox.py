"""Generated code run by the code tasks is contained (issue 11): one test per measured escape.

Each of these escaped the old runner (a plain subprocess with rlimits and a socket guard).
They need bubblewrap and are skipped, with the reason, where it is missing or unusable.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import latent_graph
from latent_graph.bench import sandbox
from latent_graph.bench.errors import SandboxUnavailableError
from latent_graph.bench.execute import run_python

REPO = Path(latent_graph.__file__).resolve().parents[1]


def _alive(token: str) -> bool:
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if token.encode() in cmd.read_bytes():
                return True
        except OSError:
            pass
    return False


@pytest.mark.needs("bwrap")
def test_setsid_grandchild_dies_at_timeout() -> None:
    token = f"7.{secrets.randbelow(10**9):09d}"  # an argument of `sleep`, unique to this run
    prog = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv('/bin/sleep', ['sleep', '{token}'])\n"
        "time.sleep(1000)\n"
    )
    res = run_python(prog, timeout=1.0, max_procs=4)
    assert res.status == "timeout" and res.wall_s < 2.5
    assert not _alive(token), "the setsid grandchild outlived the run"


@pytest.mark.needs("bwrap")
def test_output_is_capped_and_not_buffered() -> None:
    tracemalloc.start()
    try:
        res = run_python(
            "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(50):\n    sys.stdout.write(chunk)\n", timeout=20
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.status == "failed" and "output passed" in res.reason()
    assert peak < 8 << 20, f"harness buffered {peak} bytes of output"


@pytest.mark.needs("bwrap")
def test_harness_environment_is_invisible() -> None:
    # A fresh harness process, so the secret is in its initial environment (/proc/<pid>/environ);
    # the package __init__ is skipped to keep it fast.
    secret = f"lg-secret-{secrets.token_hex(8)}"
    prog = (
        "import os, glob\n"
        "seen = [k for k, v in os.environ.items() if 'lg-secret' in v]\n"
        "for p in ['/proc/1/environ', f'/proc/{os.getppid()}/environ', *glob.glob('/proc/*/environ')]:\n"
        "    try:\n"
        "        seen += [p] if b'lg-secret' in open(p, 'rb').read() else []\n"
        "    except OSError:\n"
        "        pass\n"
        "print('LEAK', seen) if seen else print('clean')\n"
    )
    harness = (
        "import sys, types\n"
        "for name in ('latent_graph', 'latent_graph.bench'):\n"
        f"    m = types.ModuleType(name); m.__path__ = [{str(REPO)!r} + '/' + name.replace('.', '/')]\n"
        "    sys.modules[name] = m\n"
        "from latent_graph.bench.execute import run_python\n"
        "print(run_python(sys.stdin.read(), timeout=10).stdout)\n"
    )
    env = {**os.environ, "LG_SECRET": secret}
    out = subprocess.run(
        [sys.executable, "-c", harness], input=prog, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "clean" in out and secret not in out


@pytest.mark.needs("bwrap")
def test_no_network_even_through_raw_socket_module() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        prog = f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')\n"
        res = run_python(prog, timeout=10)
    assert res.status == "failed" and "connected" not in res.stdout


@pytest.mark.needs("bwrap")
def test_processes_and_their_memory_are_capped() -> None:
    # Three children each under the per-process limit would pass a per-process cap together.
    prog = (
        "import os\n"
        "ok = 0\n"
        "for _ in range(3):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        b = bytearray(100 << 20)\n"
        "        os._exit(0)\n"
        "    ok += os.waitpid(pid, 0)[1] == 0\n"
        "print('children', ok)\n"
    )
    res = run_python(prog, timeout=10, memory_mb=160)
    assert "children 0" in res.stdout, res.stdout + res.stderr
    bomb = run_python(
        "import os\nn = 0\nfor _ in range(30):\n    try:\n        os.fork() or os._exit(0); n += 1\n"
        "    except OSError:\n        pass\nprint('forked', n)\n",
        timeout=10,
        max_procs=4,
    )
    assert "forked" in bomb.stdout and int(bomb.stdout.split()[-1]) < 30


@pytest.mark.needs("bwrap")
def test_source_tree_is_out_of_reach() -> None:
    target = REPO / f"PWNED-{secrets.token_hex(4)}"
    prog = (
        "import os\n"
        f"for p, mode in (({str(REPO / 'latent_graph' / 'bench' / 'execute.py')!r}, 'r'), ({str(target)!r}, 'w')):\n"
        "    try:\n"
        "        open(p, mode).close(); print('reached', p)\n"
        "    except OSError as e:\n"
        "        print('blocked', type(e).__name__)\n"
    )
    try:
        res = run_python(prog, timeout=10)
    finally:
        reached = target.exists()
        target.unlink(missing_ok=True)
    assert "reached" not in res.stdout and res.stdout.count("blocked") == 2 and not reached


def test_refuses_without_bwrap_unless_opted_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: f"bwrap is not installed; {sandbox.INSTALL_HINT}")
    monkeypatch.delenv("LATENT_GRAPH_UNSAFE_EXEC", raising=False)
    with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap"):
        run_python("print(1)", timeout=10)
    with pytest.warns(RuntimeWarning, match="WITHOUT a sandbox"):
        assert run_python("print(1)", timeout=10, sandbox="none").passed
    monkeypatch.setenv("LATENT_GRAPH_UNSAFE_EXEC", "1")
    with pytest.warns(RuntimeWarning):
        assert run_python("print(1)", timeout=10).passed
