"""The deployment's secret keys: the one source of every key that signs, addresses and seals handle blobs.

Why: a handle reference is graph state, which a LangGraph Server client can read and write, and a blob
store may sit on a disk or database others can write. Everything that makes a reference trustworthy
(its signature, the keyed content addresses that keep namespaces apart, the optional encryption at rest)
is derived here from secrets only the deployment holds, so one setting controls them all.

Where the secrets come from (the first that is set):

- ``$LATENT_GRAPH_KEYS``: one or more secrets separated by commas, **newest first**. The newest signs,
  addresses and seals new blobs; every listed secret still verifies and opens what it wrote (rotation:
  prepend the new secret, drop an old one once no live checkpoint needs it).
- ``$LATENT_GRAPH_KEY_FILE``: a file with one secret per line, newest first (a mounted secret).
- Neither: ``<cache dir>/keys/handles.key``, generated on first use (mode 0600) - for local runs only;
  a server sets one of the two variables so every replica shares the key.

A secret is text of at least :data:`MIN_SECRET_CHARS` characters (e.g. ``python -c "import secrets;
print(secrets.token_urlsafe(32))"``). Each is named in references by a key id (a digest that reveals
nothing about it); per-purpose keys are derived with HKDF (``cryptography``), one per namespace where
the purpose needs it.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from latent_graph.errors import HandleSignatureError, SigningKeyError
from latent_graph.paths import cache_dir, cache_dir_error

__all__ = ["ENV_KEYS", "ENV_KEY_FILE", "MIN_SECRET_CHARS", "KeyRing", "default_keyring"]

ENV_KEYS = "LATENT_GRAPH_KEYS"
ENV_KEY_FILE = "LATENT_GRAPH_KEY_FILE"
MIN_SECRET_CHARS = 32
_INFO = b"latent_graph/handles/v1/"


def _key_id(secret: bytes) -> str:
    h = hashes.Hash(hashes.SHA256())
    h.update(_INFO + b"key-id\0" + secret)
    return h.finalize().hex()[:16]


class KeyRing:
    """Secrets by key id; the first (newest) signs, every one verifies.

    Args:
        secrets: The secrets, newest first (bytes or text of at least :data:`MIN_SECRET_CHARS`).

    Raises:
        SigningKeyError: No secret, or one that is too short.
    """

    def __init__(self, secrets: Sequence[bytes | str]) -> None:
        raw = [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in secrets]
        if not raw:
            raise SigningKeyError("a key ring needs at least one secret")
        for s in raw:
            if len(s) < MIN_SECRET_CHARS:
                raise SigningKeyError(
                    f"a handle signing secret has {len(s)} characters, fewer than {MIN_SECRET_CHARS}; generate one "
                    'with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
                )
        self._secrets = {_key_id(s): s for s in reversed(raw)}  # the newest wins an id collision (same secret)
        self.kid = _key_id(raw[0])
        """Id of the newest secret: the one that signs."""

    def __repr__(self) -> str:
        return f"KeyRing(signs with {self.kid}, {len(self._secrets)} keys)"

    def __contains__(self, kid: object) -> bool:
        return kid in self._secrets

    def derive(self, kid: str, purpose: str, namespace: str = "") -> bytes:
        """A 32-byte key for ``purpose`` (and ``namespace``) from the secret ``kid``.

        Raises:
            HandleSignatureError: ``kid`` names no secret of this ring (a reference or blob written under
                another deployment's key, or a key since retired).
        """
        if kid not in self._secrets:
            raise HandleSignatureError(
                f"handle reference is signed with key {str(kid)[:16]!r}, which this deployment does not hold "
                f"(written under another key, or one retired from ${ENV_KEYS}); it cannot be verified"
            )
        return _derive(self._secrets[kid], purpose, namespace)


@functools.lru_cache(maxsize=4096)
def _derive(secret: bytes, purpose: str, namespace: str) -> bytes:
    info = _INFO + purpose.encode() + b"\0" + namespace.encode("utf-8", "surrogatepass")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _from_file(path: Path) -> list[str]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"cannot read the handle key file {path} ({type(exc).__name__}: {exc})") from exc
    found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise SigningKeyError(f"the handle key file {path} holds no secret")
    return found


def _generated(path: Path) -> list[str]:
    """The local key at ``path``, created on first use (atomically, mode 0600: concurrent first uses agree)."""
    if not path.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(32) + "\n")
                try:
                    os.link(tmp, path)  # refuses to replace: the first process to link wins, every one reads it
                except FileExistsError:
                    pass
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise cache_dir_error(path.parent, exc) from exc
    return _from_file(path)


def default_keyring() -> KeyRing:
    """The deployment's key ring: ``$LATENT_GRAPH_KEYS``, else ``$LATENT_GRAPH_KEY_FILE``, else the local key file.

    Raises:
        SigningKeyError: A secret too short, an unreadable or empty key file.
        CacheDirError: The local key cannot be written.
    """
    env = os.environ.get(ENV_KEYS, "").strip()
    if env:
        return KeyRing([s.strip() for s in env.split(",") if s.strip()])
    file = os.environ.get(ENV_KEY_FILE, "").strip()
    if file:
        return KeyRing(_from_file(Path(file).expanduser()))
    return KeyRing(_generated(cache_dir() / "keys" / "handles.key"))
