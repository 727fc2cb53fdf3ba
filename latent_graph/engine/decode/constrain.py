"""Constrained decoding: JSON-schema, regex, choice and grammar constraints on the judger's tokens.

Built on `xgrammar <https://github.com/mlc-ai/xgrammar>`_, chosen over llguidance for its faster
next-token masks (measured with ``benchmarks/bench_constrained.py``; numbers in
docs/results/engine_notes.md) and because it composes grammars (``concat``/``union``), which the
tool-call format uses. A :class:`Constraint` is plain data (a grammar description);
:class:`RowConstraints` holds one compiled matcher per constrained batch row and, before
each sampling step, sets the logits of tokens the grammar forbids to ``-inf``. Rows without
a constraint are untouched, and a constrained row whose greedy token is allowed keeps it,
so greedy output equals unconstrained output wherever the constraint accepts it (tested).
A row ends when its grammar is complete and the model emits an end-of-sequence token
(the only tokens allowed then). Every constraint is bounded (:class:`~latent_graph.engine.options.GrammarLimits`)
before xgrammar compiles it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from latent_graph.engine.decode.limits import check_constraint
from latent_graph.engine.options import GrammarLimits, limits_of
from latent_graph.errors import ConstraintError

ConstraintKind = Literal["json_schema", "json", "regex", "choice", "ebnf", "text", "concat", "union"]


@dataclass(frozen=True)
class Constraint:
    """What a decoded row may look like (immutable, hashable: compiled grammars are cached by it).

    Attributes:
        kind: ``json_schema`` (``spec`` = the schema as JSON text), ``json`` (any JSON object),
            ``regex``, ``choice`` (``parts`` = the allowed strings), ``ebnf`` (an xgrammar EBNF
            grammar with a ``root`` rule), ``text`` (a literal), ``concat`` / ``union`` of ``parts``.
        spec: The schema, pattern, grammar or literal text.
        parts: Sub-constraints of ``concat``/``union``; the strings of ``choice``.
    """

    kind: ConstraintKind
    spec: str = ""
    parts: tuple[Any, ...] = ()

    @classmethod
    def json_schema(cls, schema: dict[str, Any] | str) -> Constraint:
        """Output is one JSON value valid under ``schema`` (a dict or its JSON text; parsed and bounded when compiled,
        see :mod:`latent_graph.engine.decode.limits`)."""
        if isinstance(schema, str):
            return cls("json_schema", _text(schema, "JSON schema"))
        try:
            return cls("json_schema", json.dumps(schema))
        except RecursionError:
            raise ConstraintError("JSON schema is nested too deeply to serialise") from None
        except (TypeError, ValueError) as exc:
            raise ConstraintError(f"JSON schema is not JSON-serialisable: {exc}") from exc

    @classmethod
    def json(cls) -> Constraint:
        """Output is any one JSON object (``json_mode``)."""
        return cls("json")

    @classmethod
    def regex(cls, pattern: str) -> Constraint:
        """Output matches the regular expression ``pattern`` in full."""
        return cls("regex", _text(pattern, "regex"))

    @classmethod
    def choice(cls, options: Sequence[str]) -> Constraint:
        """Output is exactly one of ``options``."""
        opts = tuple(_text(o, "choice") for o in options)
        if not opts:
            raise ConstraintError("a choice constraint needs at least one option")
        return cls("choice", parts=opts)

    @classmethod
    def ebnf(cls, grammar: str) -> Constraint:
        """Output is a sentence of an xgrammar EBNF ``grammar`` (rule ``root`` starts it)."""
        return cls("ebnf", _text(grammar, "EBNF grammar"))

    @classmethod
    def text(cls, literal: str) -> Constraint:
        """Output is exactly ``literal`` (useful inside :meth:`concat`)."""
        return cls("text", _text(literal, "literal"))

    @classmethod
    def concat(cls, *parts: Constraint) -> Constraint:
        """Each part in turn."""
        return cls("concat", parts=_parts(parts))

    @classmethod
    def union(cls, *parts: Constraint) -> Constraint:
        """Any one of the parts."""
        return cls("union", parts=_parts(parts))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConstraintError(f"a {what} constraint needs a non-empty string, got {value!r}")
    return value


def _parts(parts: Sequence[Any]) -> tuple[Constraint, ...]:
    if not parts or not all(isinstance(p, Constraint) for p in parts):
        raise ConstraintError(f"concat/union take one or more Constraint objects, got {parts!r}")
    return tuple(parts)


def _ebnf_string(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid EBNF string literal


def to_grammar(c: Constraint) -> Any:
    """The :class:`xgrammar.Grammar` of a constraint."""
    import xgrammar as xgr

    try:
        if c.kind == "json_schema":
            return xgr.Grammar.from_json_schema(c.spec, any_whitespace=True, max_whitespace_cnt=2)
        if c.kind == "json":
            return xgr.Grammar.from_json_schema('{"type": "object"}', any_whitespace=True, max_whitespace_cnt=2)
        if c.kind == "regex":
            return xgr.Grammar.from_regex(c.spec)
        if c.kind == "choice":
            return xgr.Grammar.from_ebnf("root ::= " + " | ".join(_ebnf_string(o) for o in c.parts))
        if c.kind == "ebnf":
            return xgr.Grammar.from_ebnf(c.spec)
        if c.kind == "text":
            return xgr.Grammar.from_ebnf("root ::= " + _ebnf_string(c.spec))
        if c.kind in ("concat", "union"):
            subs = [to_grammar(p) for p in c.parts]
            if len(subs) == 1:
                return subs[0]
            return xgr.Grammar.concat(*subs) if c.kind == "concat" else xgr.Grammar.union(*subs)
    except ConstraintError:
        raise
    except Exception as exc:  # xgrammar raises RuntimeError/ValueError with its parser's message
        raise ConstraintError(f"cannot compile the {c.kind} constraint: {exc}") from exc
    raise ConstraintError(f"unknown constraint kind {c.kind!r}")


class Compiler:
    """Compiles constraints for one tokenizer and vocabulary size; caches compiled grammars by constraint.

    Every constraint is checked against the :class:`GrammarLimits` given before xgrammar sees it; parsing and
    compiling then run in a daemon thread (xgrammar releases the GIL) that the caller waits on for at most
    ``compile_seconds``: past it, :class:`ConstraintError` (the thread finishes in the background and its
    result is dropped; the size limits bound that leftover work). At most ``max_cached`` grammars are kept.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: Sequence[int]) -> None:
        import xgrammar as xgr

        self.vocab_size = vocab_size
        self.info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_ids)
        )
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)  # one cache: ours, bounded
        self._cache: OrderedDict[Constraint, Any] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, c: Constraint, limits: GrammarLimits | None = None) -> Any:
        """The compiled grammar of ``c`` (cached), once ``c`` is checked against ``limits`` (default: the defaults)."""
        limits = limits or GrammarLimits()
        if not isinstance(c, Constraint):
            raise ConstraintError(f"a constraint must be a Constraint, got {type(c).__name__}")
        with self._lock:
            hit = self._cache.get(c)
            if hit is not None:
                self._cache.move_to_end(c)
                return hit
        check_constraint(c, limits)
        compiled = self._compile_within_budget(c, limits.compile_seconds)
        with self._lock:
            self._cache[c] = compiled
            while len(self._cache) > limits.max_cached:
                self._cache.popitem(last=False)
        return compiled

    def _compile_within_budget(self, c: Constraint, seconds: float) -> Any:
        out: list[Any] = []

        def work() -> None:
            try:
                out.append(self.compiler.compile_grammar(to_grammar(c)))
            except ConstraintError as exc:
                out.append(exc)
            except Exception as exc:  # xgrammar raises RuntimeError/ValueError with its parser's message
                out.append(ConstraintError(f"cannot compile the {c.kind} constraint: {exc}"))

        thread = threading.Thread(target=work, name="latent-graph-grammar", daemon=True)
        thread.start()
        thread.join(seconds)
        if not out:
            raise ConstraintError(
                f"compiling the {c.kind} constraint took longer than {seconds} s "
                "(GrammarLimits.compile_seconds); refused"
            )
        if isinstance(out[0], ConstraintError):
            raise out[0]
        return out[0]


def compiler_for(model: Any) -> Compiler:
    """The model's :class:`Compiler`, built once per model object (kept on it)."""
    comp = model.__dict__.get("_constraint_compiler")
    if comp is None:
        vocab = int(model.hf_model.get_output_embeddings().weight.shape[0])
        comp = Compiler(model.tokenizer, vocab, model.eos_ids)
        model.__dict__["_constraint_compiler"] = comp
    return comp


def per_row(constraint: Constraint | Sequence[Constraint | None] | None, batch: int) -> list[Constraint | None]:
    """One constraint (or None) per batch row: a single one applies to every row."""
    if constraint is None or isinstance(constraint, Constraint):
        return [constraint] * batch
    rows = list(constraint)
    if len(rows) != batch or not all(c is None or isinstance(c, Constraint) for c in rows):
        raise ConstraintError(f"constraint must be a Constraint, None, or one Constraint/None per row ({batch} rows)")
    return rows


class RowConstraints:
    """Matchers of the constrained rows of one decode call, indexed by original batch row."""

    def __init__(self, model: Any, constraints: list[Constraint | None]) -> None:
        import xgrammar as xgr

        comp, limits = compiler_for(model), limits_of(model).grammar
        self.vocab_size = comp.vocab_size
        self.matchers = {
            r: xgr.GrammarMatcher(comp.compile(c, limits)) for r, c in enumerate(constraints) if c is not None
        }
        self.bitmask = xgr.allocate_token_bitmask(len(constraints), comp.vocab_size)  # (B, ceil(V / 32)) int32

    def mask(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """``logits`` (b, V) of the live ``rows`` with forbidden tokens at -inf (float32, in place)."""
        import xgrammar as xgr

        live = [i for i, r in enumerate(rows) if r in self.matchers]
        if not live:
            return logits
        logits = logits.float()
        for i in live:
            self.matchers[rows[i]].fill_next_token_bitmask(self.bitmask, i)
        mask = self.bitmask[: len(rows)].to(logits.device)
        xgr.apply_token_bitmask_inplace(logits, mask, vocab_size=self.vocab_size, indices=live)
        return logits

    def accept(self, row: int, token: int) -> bool:
        """Advance ``row``'s matcher by ``token``; True when that row's output is complete (ended)."""
        m = self.matchers.get(row)
        if m is None:
            return False
        if not m.accept_token(token):
            raise ConstraintError(f"row {row}: token {token} was sampled although the constraint forbids it")
        return bool(m.is_terminated())
