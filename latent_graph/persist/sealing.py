"""Signed references, keyed content addresses and sealed blobs: what makes a stored handle trustworthy.

Why: a reference is graph state (a LangGraph Server client reads and writes it) and its blobs may sit on a disk
others write. With the deployment's :class:`~latent_graph.persist.keys.KeyRing`:

- **Namespaces.** Every reference and blob belongs to one (:func:`namespace_of`: the authenticated user under
  LangGraph Server, plus the thread where the deployment asks for it; ``""`` otherwise). A blob's address is an
  HMAC of its bytes under a key derived for its namespace, so the same content has unrelated addresses in two
  namespaces: deduplication never crosses them, and nobody without the key can compute an address to probe for.
- **Signatures.** A reference carries its namespace, the id of the key that signed it and an HMAC over every
  field (digest, chunk keys, shapes, fingerprint, segment table, namespace); :meth:`Sealer.verify` checks it
  before any blob is read, so an edited, forged or pre-signing reference is refused, and one of another namespace
  does not resolve - with one message, whatever its blobs.
- **Encryption at rest** (optional): :meth:`Sealer.seal` encrypts a blob with AES-GCM under a key derived for its
  namespace, the blob's address as associated data (a sealed blob moved under another address does not open).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from latent_graph.errors import HandleNamespaceError, HandleSignatureError
from latent_graph.persist.keys import KeyRing

__all__ = ["SEALED", "UNSIGNED", "Sealer", "namespace_of"]

SEALED = b"LGSEAL1\0"
"""First bytes of a sealed (encrypted) blob; no safetensors chunk or JSON manifest starts with them."""
UNSIGNED = ("sig", "writer")
"""Reference fields the signature does not cover: itself, and the LangGraph task a branch entry names."""
_NONCE = 12


def namespace_of(config: Any, per_thread: bool = False) -> str:
    """The namespace a run's handles belong to: ``user=<id>`` under LangGraph Server's authentication (the user the
    server's ``auth`` handler returned, which clients cannot set), ``thread=<id>`` added when ``per_thread``; "" for
    neither (the deployment's one namespace). Values are percent-encoded, so the string is unambiguous."""
    conf = (config.get("configurable") if isinstance(config, Mapping) else None) or {}
    parts = []
    user = conf.get("langgraph_auth_user_id")
    if not user:
        found = conf.get("langgraph_auth_user")
        user = found.get("identity") if isinstance(found, Mapping) else getattr(found, "identity", None)
    if user:
        parts.append("user=" + quote(str(user), safe=""))
    if per_thread and conf.get("thread_id") is not None:
        parts.append("thread=" + quote(str(conf["thread_id"]), safe=""))
    return "/".join(parts)


def _mac(key: bytes, data: bytes) -> hmac.HMAC:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac


def _payload(ref: Mapping[str, Any]) -> bytes:
    """The signed bytes: every field but :data:`UNSIGNED`, canonical JSON (a saver's list/tuple round trip agrees)."""
    body = {k: v for k, v in ref.items() if k not in UNSIGNED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class Sealer:
    """Signs and verifies references, addresses blobs per namespace, seals and opens blobs - one key ring.

    Args:
        keys: The deployment's key ring (the newest key signs, addresses and seals; every key verifies and opens).
        encrypt: Whether :meth:`seal` encrypts (blobs are read whichever way they were written).
    """

    def __init__(self, keys: KeyRing, encrypt: bool = False) -> None:
        self.keys = keys
        self.encrypt = bool(encrypt)

    def address(self, kid: str, namespace: str) -> Callable[[bytes], str]:
        """The content address of bytes in ``namespace`` under key ``kid``: 64 hex chars of HMAC-SHA256."""
        key = self.keys.derive(kid, "address", namespace)
        return lambda data: _mac(key, data).finalize().hex()

    def sign(self, ref: dict[str, Any], namespace: str) -> dict[str, Any]:
        """``ref`` stamped with ``namespace`` and the newest key, and signed."""
        ref = {k: v for k, v in ref.items() if k not in UNSIGNED}
        ref["namespace"], ref["kid"] = namespace, self.keys.kid
        ref["sig"] = _mac(self.keys.derive(self.keys.kid, "sign"), _payload(ref)).finalize().hex()
        return ref

    def verify(self, ref: Mapping[str, Any], namespace: str) -> None:
        """Check ``ref``'s signature, then that it belongs to ``namespace``; nothing is read.

        Raises:
            HandleSignatureError: Unsigned, edited or forged, or signed with a key this deployment lacks.
            HandleNamespaceError: Signed for another namespace (the message names neither it nor the content).
        """
        sig, kid, ns = ref.get("sig"), ref.get("kid"), ref.get("namespace")
        if not (isinstance(sig, str) and isinstance(kid, str) and isinstance(ns, str)):
            raise HandleSignatureError(
                "unsigned handle reference (no 'sig', 'kid' and 'namespace'): written before latent_graph signed "
                "references, or edited; it is refused - re-run the graph (or the node) that wrote it"
            )
        key = self.keys.derive(kid, "sign")
        try:
            _mac(key, _payload(ref)).verify(bytes.fromhex(sig))
        except (InvalidSignature, ValueError):
            raise HandleSignatureError(
                "handle reference fails its signature: it was edited or forged (only the deployment's key signs)"
            ) from None
        if ns != namespace:
            raise HandleNamespaceError(
                f"handle reference does not resolve in namespace {namespace!r}: it belongs to another thread or "
                "user; a handle is shared on purpose with HandleStore.share(ref, to_namespace)"
            )

    def seal(self, kid: str, namespace: str, key: str, data: bytes) -> bytes:
        """``data`` as stored under ``key``: AES-GCM sealed when :attr:`encrypt`, else unchanged."""
        if not self.encrypt:
            return data
        nonce = os.urandom(_NONCE)
        box = AESGCM(self.keys.derive(kid, "seal", namespace))
        return SEALED + nonce + box.encrypt(nonce, bytes(data), key.encode())

    def open(self, kid: str, namespace: str, key: str, data: bytes) -> bytes:
        """The plain bytes of a blob read under ``key`` (a sealed one is opened; a plain one passes through).

        Raises:
            HandleSignatureError: A sealed blob that does not open (another key, another address, altered bytes).
        """
        data = bytes(data)
        if not data.startswith(SEALED):
            return data
        body, box = data[len(SEALED) :], AESGCM(self.keys.derive(kid, "seal", namespace))
        try:
            return box.decrypt(body[:_NONCE], body[_NONCE:], key.encode())
        except (InvalidTag, ValueError):
            raise HandleSignatureError(
                f"sealed handle blob {key[:16]}... does not open with the key its reference names "
                "(encrypted under another key or address, or altered)"
            ) from None
