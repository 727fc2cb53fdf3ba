"""The records of a benchmark: :class:`Example` (one question), :class:`Score` and :class:`Task` (how answers are judged).

Kept apart from the loaders (:mod:`latent_graph.bench.tasks`) so generated suites
(:mod:`latent_graph.bench.relay_suite`) can build tasks without importing every loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from latent_graph.bench import extract
from latent_graph.bench.errors import BenchArgumentError

TaskKind = Literal["math", "choice", "code", "relay"]
GRAPH_TASK: dict[str, str] = {"math": "math", "choice": "choice", "code": "code", "relay": "plain"}
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Example:
    """One benchmark question.

    Attributes:
        id: Stable id (source index + a hash of the question text), used as resume key.
        question: Text every agent sees.
        gold: Reference answer: a number, an option letter, a secret, or "" for code.
        context: Text shown to the first agent only (relay probes), else None.
        labels: Option labels for multiple choice.
        choices: Option texts, same order as ``labels``.
        meta: Task-specific extras (code tests, entry point, prompt...).
    """

    id: str
    question: str
    gold: str
    context: str | None = None
    labels: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """How one answer was judged: the extracted prediction, correctness, and why."""

    pred: str | None
    correct: bool
    detail: str = ""


@dataclass(frozen=True)
class Task:
    """A named list of examples of one kind.

    Attributes:
        name: "gsm8k", "arc", "code", "relay" or a custom name.
        kind: How answers are scored: "math", "choice", "code" or "relay".
        examples: The questions, in source order.
        source: Where they came from (a path, ``hf:...`` or ``relay(seed=...)``).
    """

    name: str
    kind: TaskKind
    examples: tuple[Example, ...]
    source: str

    @property
    def graph_task(self) -> str:
        """The graph builders' ``task`` argument (judger answer-format instruction)."""
        return GRAPH_TASK[self.kind]

    def head(self, limit: int | None) -> tuple[Example, ...]:
        """The first ``limit`` examples (all if None)."""
        if limit is None:
            return self.examples
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BenchArgumentError(f"limit must be a positive int or None, got {limit!r}")
        return self.examples[:limit]

    def score(self, example: Example, answer: str, *, code_timeout: float = 10.0) -> Score:
        """Judge ``answer`` against ``example`` (code tasks run the tests)."""
        if self.kind == "math":
            pred = extract.extract_math_answer(answer)
            return Score(pred, extract.numbers_equal(pred, example.gold))
        if self.kind == "choice":
            pred = extract.extract_choice(answer, example.labels, example.choices)
            return Score(pred, pred is not None and pred == example.gold)
        if self.kind == "relay":
            ok = extract.relay_match(answer, example.gold)
            return Score(example.gold if ok else None, ok)
        from latent_graph.bench.execute import run_tests

        code = extract.extract_code(answer)
        m = example.meta
        res = run_tests(
            code,
            m["tests"],
            entry_point=m.get("entry_point"),
            prompt=m.get("prompt", ""),
            setup=m.get("setup", ""),
            timeout=code_timeout,
        )
        return Score(code[:2000], res.passed, res.reason())
