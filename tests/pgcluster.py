"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a unix socket only, stopped on exit.

Uses Debian's binaries (``/usr/lib/postgresql/<v>/bin`` or ``$PG_BIN``). PostgreSQL refuses
to run as root, so as root the cluster is owned by and run as the ``postgres`` user
(``runuser``). :func:`start` raises :class:`PgUnavailable` with the reason when it cannot start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (the message says why)."""


def _bin() -> Path:
    env = os.environ.get("PG_BIN")
    found = [Path(env)] if env else [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"))]
    for path in found:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise PgUnavailable("no PostgreSQL binaries (apt-get install postgresql, or set PG_BIN)")


@contextlib.contextmanager
def start(timeout: int = 60) -> Iterator[str]:
    """Yield a libpq connection string to a fresh cluster's ``postgres`` database; stop and delete it after."""
    bin_dir = _bin()
    root = Path(tempfile.mkdtemp(prefix="lg-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PgUnavailable("running as root and there is no 'postgres' user to run the server as") from None
        if shutil.which("runuser") is None:
            raise PgUnavailable("running as root without runuser")
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
        db_user = "postgres"
    else:
        db_user = pwd.getpwuid(os.geteuid()).pw_name
    data, sock = root / "data", root / "sock"
    port = random.randint(20000, 60000)

    def run(*cmd: str) -> None:
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=timeout)
        if proc.returncode:
            raise PgUnavailable(f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", db_user, "--no-sync")
        subprocess.run([*prefix, "mkdir", "-p", str(sock)], check=True, timeout=10)
        opts = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            str(timeout),
            "start",
        )
    except (PgUnavailable, subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise PgUnavailable(str(exc)) from exc
    try:
        yield f"postgresql://{db_user}@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=timeout,
        )
        shutil.rmtree(root, ignore_errors=True)
