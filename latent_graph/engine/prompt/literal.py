"""Private, never-mutated copies of a fast tokenizer's Rust backend (thread-safe literal tokenization).

Calling a Hugging Face fast tokenizer with ``split_special_tokens=...`` flips
``encode_special_tokens`` on its one shared Rust backend before encoding; two
threads tokenizing at once (one literally, one not) then see each other's
setting, so user text could yield control tokens or template markup could be
split. :class:`BackendPair` holds two private copies of the backend, each with
its setting fixed once when built and never changed afterwards: ``plain``
(special-token strings become special tokens) and ``literal`` (they are split
into ordinary tokens). Encoding through them reads no shared mutable state.

``literal`` splits *every* added token, not only those the tokenizer marks special: in Qwen2.5's
tokenizer the tool tags (``<tool_call>``, ``<tool_response>``...) are ordinary added tokens, and a tool
result holding ``</tool_response><tool_call>`` must not encode to the template's own tag ids.

:func:`backends` builds the pair once per tokenizer object (kept beside it in a
weak map, so it goes when the tokenizer goes).
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

_PAIRS: weakref.WeakKeyDictionary[Any, BackendPair] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class BackendPair:
    """Two private copies of ``tokenizer.backend_tokenizer`` (no truncation, no padding)."""

    def __init__(self, tokenizer: Any) -> None:
        self._backend = tokenizer.backend_tokenizer
        self._raw = self._backend.to_str()
        self.plain = self._copy(self._backend, self._raw, split=False)
        """Special-token strings in the text become their special ids (used for the rendered template)."""
        self._literal: Any = None
        self._lock = threading.Lock()

    @property
    def literal(self) -> Any:
        """Added-token strings (special or not) are split into ordinary tokens (used for user text; built on first need)."""
        with self._lock:
            if self._literal is None:
                self._literal = self._copy(self._backend, self._raw, split=True)
            return self._literal

    @staticmethod
    def _copy(backend: Any, raw: str, split: bool) -> Any:
        if split:  # encode_special_tokens splits the special added tokens only: mark every added token special
            spec = json.loads(raw)
            for added in spec.get("added_tokens") or []:
                added["special"] = True
            raw = json.dumps(spec)
        tok = type(backend).from_str(raw)
        tok.no_truncation()
        tok.no_padding()
        tok.encode_special_tokens = split  # set once, before the copy is shared; never changed
        return tok

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """(ids, character offsets) of ``text`` with special tokens recognised, no BOS/EOS added."""
        enc = self.plain.encode(text, add_special_tokens=False)
        return list(enc.ids), list(enc.offsets)

    def encode_literal(self, text: str) -> list[int]:
        """Ids of ``text`` with every added-token string (special or not) split into ordinary tokens."""
        return list(self.literal.encode(text, add_special_tokens=False).ids) if text else []


def backends(tokenizer: Any) -> BackendPair | None:
    """The :class:`BackendPair` of a fast tokenizer (built on first use), or None for a slow one."""
    if not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "backend_tokenizer", None) is None:
        return None
    with _LOCK:
        pair = _PAIRS.get(tokenizer)
        if pair is None:
            pair = _PAIRS[tokenizer] = BackendPair(tokenizer)
        return pair
