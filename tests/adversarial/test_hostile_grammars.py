"""Issue 32 item 5: hostile constraints are refused by their bounds (GrammarLimits) before xgrammar parses them.

Each case once hung past 60 s growing 0.2-2 GB (or raised a raw RecursionError). Here the refusal must come from the
pre-check: the spies prove xgrammar's parser and compiler are never called. Time and memory are printed by
``benchmarks/bench_hostile_grammars.py`` (no timed assertions).
"""

from __future__ import annotations

import pytest

from latent_graph.engine.decode import constrain
from latent_graph.engine.decode.constrain import Compiler, Constraint
from latent_graph.engine.options import EngineLimits, GrammarLimits
from latent_graph.errors import ConstraintError, InvalidArgumentError

from conftest import make_model, make_tokenizer


def deep_schema(levels: int) -> dict:
    schema: dict = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def _ebnf_rules(n: int) -> str:
    return "root ::= r0\n" + "\n".join(f'r{i} ::= "x" r{i + 1} | "y"' for i in range(n)) + f'\nr{n} ::= "z"'


HOSTILE = {
    "schema nested 2,000 levels": lambda: Constraint.json_schema(deep_schema(2000)),
    "schema text nested 5,000 levels": lambda: Constraint.json_schema('{"items":' * 5000 + "{}" + "}" * 5000),
    "enum of 10^5 values": lambda: Constraint.json_schema({"enum": [f"v{i}" for i in range(10**5)]}),
    "enum of 10^6 values": lambda: Constraint.json_schema({"enum": list(range(10**6))}),
    "10^5 properties": lambda: Constraint.json_schema(
        {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10**5)}}
    ),
    "regex class of 10^5 alternatives": lambda: Constraint.regex("(" + "|".join(f"w{i}" for i in range(10**5)) + ")"),
    "regex character class of 10^5 chars": lambda: Constraint.regex(
        "[" + "".join(chr(0x4E00 + i % 20000) for i in range(10**5)) + "]+"
    ),
    "EBNF grammar of 10^5 rules": lambda: Constraint.ebnf(_ebnf_rules(10**5)),
    "choice of 10^5 options": lambda: Constraint.choice([f"o{i}" for i in range(10**5)]),
    "literal of 10^6 chars": lambda: Constraint.text("ab" * 500_000),
    "pattern of 10^5 chars in a schema": lambda: Constraint.json_schema({"type": "string", "pattern": "a" * 10**5}),
    "300 properties in a small schema": lambda: Constraint.json_schema(
        {"type": "object", "properties": {f"p{i}": {} for i in range(300)}}
    ),
    "EBNF grammar of 2,000 short rules": lambda: Constraint.ebnf(
        "root::=r0\n" + "\n".join(f"r{i}::=r{i + 1}" for i in range(2000)) + '\nr2000::="z"'
    ),
    "union of 1,000 parts": lambda: Constraint.union(*[Constraint.text(f"t{i}") for i in range(1000)]),
}


@pytest.fixture(scope="module")
def compiler() -> Compiler:
    tok = make_tokenizer()
    return Compiler(tok, len(tok), [2])


@pytest.fixture
def xgrammar_calls(monkeypatch) -> list[str]:
    """Every call into xgrammar's grammar parser or compiler (a refusal must come before any)."""
    calls: list[str] = []
    real_to_grammar = constrain.to_grammar

    def spy(c):
        calls.append(c.kind)
        return real_to_grammar(c)

    monkeypatch.setattr(constrain, "to_grammar", spy)
    return calls


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_constraint_is_refused_before_xgrammar(case, compiler, xgrammar_calls) -> None:
    with pytest.raises(ConstraintError) as err:
        compiler.compile(HOSTILE[case]())
    assert xgrammar_calls == []
    assert "limit" in str(err.value) or "too deeply" in str(err.value)


def test_ordinary_constraints_still_compile(compiler, xgrammar_calls) -> None:
    schema = {"type": "object", "properties": {"a": {"enum": list(range(100))}, "b": {"type": "string"}}}
    for c in (
        Constraint.json_schema(schema),
        Constraint.json_schema(deep_schema(10)),
        Constraint.regex("[a-z]{1,8}"),
        Constraint.choice(["yes", "no"]),
    ):
        assert compiler.compile(c) is not None
    assert len(xgrammar_calls) == 4


def test_limits_are_overridable_and_checked(compiler) -> None:
    big = Constraint.json_schema({"enum": list(range(5000))})
    with pytest.raises(ConstraintError, match="max_enum"):
        compiler.compile(big)
    assert compiler.compile(big, GrammarLimits(max_enum=10_000)) is not None
    with pytest.raises(InvalidArgumentError):
        GrammarLimits(max_depth=0)
    with pytest.raises(ConstraintError, match="not valid JSON"):
        compiler.compile(Constraint.json_schema("{nope"))


def test_compile_time_budget_refuses_a_slow_compile(compiler, monkeypatch) -> None:
    """Past ``compile_seconds`` the caller gets a named error while the compile goes on in the background."""
    import threading

    release = threading.Event()
    monkeypatch.setattr(constrain, "to_grammar", lambda c: release.wait(30))
    try:
        with pytest.raises(ConstraintError, match="compile_seconds"):
            compiler.compile(Constraint.regex("slow"), GrammarLimits(compile_seconds=0.05))
    finally:
        release.set()


def test_compiled_grammars_kept_are_bounded(compiler) -> None:
    limits = GrammarLimits(max_cached=3)
    for i in range(6):
        compiler.compile(Constraint.text(f"word{i}"), limits)
    assert len(compiler._cache) == 3


def test_model_limits_reach_decode() -> None:
    """A model's own limits bound its decode calls (``model.limits.grammar``); raising them lets the grammar in."""
    model = make_model("llama")
    choice = Constraint.choice([f"o{i}" for i in range(50)])
    model.limits = EngineLimits(grammar=GrammarLimits(max_enum=10))
    with pytest.raises(ConstraintError, match="max_enum"):
        model.decode(None, "Pick one.", max_new_tokens=4, constraint=choice)
    with pytest.raises(ConstraintError, match="max_depth|too deeply"):
        model.decode(None, "Fill it.", max_new_tokens=4, constraint=Constraint.json_schema(deep_schema(5000)))
    model.limits = EngineLimits()
    out = model.decode(None, "Pick one.", max_new_tokens=4, constraint=choice)
    assert out.texts[0] and any(f"o{i}".startswith(out.texts[0]) for i in range(50))  # under the grammar
