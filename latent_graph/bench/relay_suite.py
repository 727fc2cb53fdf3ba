"""relay6: a seeded relay suite with six fact families and train/validation/test splits.

Why: the original relay probes (:func:`latent_graph.bench.tasks.relay_probes`) have three
fixed templates and one fact each, so a score on them says little about *what* survives a
latent hand-off and nothing about generalisation when a realigner or a prompt layout is tuned
on them. This suite:

- has six families: ``code`` (code words), ``name_place`` (people and cities), ``colour``,
  ``arithmetic`` (one step on the stated numbers), ``combine`` (two facts that must be joined)
  and ``second_agent`` (the fact is told to the *second* agent only, through the graph's
  per-agent ``agent_context`` input; see :func:`latent_graph.nodes.state.agent_contexts_of`);
- has six paraphrased templates per family, split 3 / 1 / 2 into train / validation / test,
  and every name pool (people, cities, code words, colours, items) is partitioned the same
  way, so no test template *or* name ever appears in training;
- is deterministic: example ``i`` of a split depends only on ``(seed, split, i)``, so more
  examples extend a split and never reshuffle it; families cycle so any 6 consecutive
  examples hold one of each;
- scores case- and space-insensitively (:func:`relay_answer_match`).

The examples are ordinary :class:`~latent_graph.bench.tasks.Example` objects inside a
:class:`RelaySuiteTask`, so ``BenchConfig(task=relay_suite(...))`` and ``--task relay6[:split]``
work unchanged. ``Example.context`` goes to the first agent; ``meta["agent_context"]`` maps an
agent name to its private fact; ``meta["facts"]`` is every fact (the "direct" ceiling).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from latent_graph.bench.errors import BenchArgumentError
from latent_graph.bench.extract import relay_match
from latent_graph.bench.task_types import Example, Score, Task

SPLITS: tuple[str, ...] = ("train", "validation", "test")
FAMILIES: tuple[str, ...] = ("code", "name_place", "colour", "arithmetic", "combine", "second_agent")
SECOND_AGENT = "critic"  # the second agent of build_sequential's default chain
# Template index -> split: 3 train, 1 validation, 2 test per family.
TEMPLATE_SPLIT: tuple[str, ...] = ("train", "train", "train", "validation", "test", "test")
# Pool index mod 5 -> split: 3/5 train, 1/5 validation, 1/5 test (interleaved, so every split mixes).
POOL_SPLIT: tuple[str, ...] = ("train", "train", "train", "validation", "test")

# a word table wrapped by hand (formatted, it is one word a line)
# fmt: off
POOLS: dict[str, tuple[str, ...]] = {
    "first": ("Marisol", "Tobias", "Anneke", "Ravi", "Ingrid", "Kofi", "Lucia", "Dmitri", "Haruto", "Amara",
              "Bjorn", "Celeste", "Emeka", "Farah", "Gustavo", "Hiroko", "Isolde", "Jovan", "Kalani", "Leopold",
              "Mirela", "Nikolai", "Oona", "Pascal", "Quentin", "Rosalind", "Sven", "Tamsin", "Ulrich", "Valeria"),
    "last": ("Okafor", "Lindqvist", "Brennan", "Castellano", "Nakamura", "Haddad", "Whitfield", "Petrov", "Osei",
             "Moreau", "Albescu", "Delacroix", "Eriksen", "Fontaine", "Galloway", "Hartmann", "Ivanova", "Jablonski",
             "Kowalczyk", "Lombardi", "Mbeki", "Novak", "Ostrowski", "Pereira", "Quist", "Rasmussen", "Sorensen",
             "Takahashi", "Underwood", "Varga"),
    "city": ("Lisbon", "Nairobi", "Oslo", "Quito", "Hanoi", "Tbilisi", "Valencia", "Winnipeg", "Dakar", "Perth",
             "Bergen", "Cusco", "Durban", "Geneva", "Hobart", "Izmir", "Jaipur", "Kyoto", "Lagos", "Malmo",
             "Nantes", "Porto", "Riga", "Seville", "Tallinn", "Utrecht", "Vilnius", "Warsaw", "Zagreb", "Adelaide"),
    "word": ("FALCON", "ORCHID", "GRANITE", "MAPLE", "COBALT", "LANTERN", "GLACIER", "SAFFRON", "HARBOR", "QUARTZ",
             "PELICAN", "EMBER", "WILLOW", "TUNDRA", "VELVET", "MERIDIAN", "CANYON", "JUNIPER", "ZEPHYR", "BASALT",
             "ANVIL", "BEACON", "CITADEL", "DYNAMO", "ECLIPSE", "FJORD", "GARNET", "HELIX", "INDIGO", "JASPER"),
    "colour": ("red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey",
               "silver", "gold", "teal", "navy", "maroon", "violet", "beige", "turquoise", "crimson"),
    "items": ("apples", "marbles", "stamps", "pencils", "coins", "shells", "cards", "stickers", "books", "cookies",
              "buttons", "candles", "oranges", "ribbons", "bottles", "tickets", "keys", "plates", "bricks", "cups"),
}
# fmt: on

Values = dict[str, Any]
Gold = Callable[[Values], str]


@dataclass(frozen=True)
class Template:
    """One paraphrase: the private fact, the question every agent sees, and how gold follows from the values."""

    fact: str
    question: str
    gold: Gold


def _v(key: str) -> Gold:
    return lambda v: str(v[key])


# one template a row, as a table (formatted, each spreads over five lines)
# fmt: off
T = Template
TEMPLATES: dict[str, tuple[Template, ...]] = {
    "code": (
        T("Remember this: the secret code word is {code}.",
          "Another agent was told a secret code word. What is the secret code word? Reply with the code word only.", _v("code")),
        T("The password for the server room is {code}.",
          "What is the password for the server room? Reply with the password only.", _v("code")),
        T("Note for the team: today's access key is {code}.", "What is today's access key? Give only the key.", _v("code")),
        T("The launch code, which must be passed on, is {code}.",
          "Which launch code must be passed on? Answer with the code.", _v("code")),
        T("Keep in mind that the shipment tag reads {code}.", "What does the shipment tag read? Reply with the tag only.", _v("code")),
        T("Our login token is {code}; do not forget it.", "What is our login token? Answer with just the token.", _v("code")),
    ),
    "name_place": (
        T("{person} moved to {city} last year.", "Which city did {person} move to? Reply with the city only.", _v("city")),
        T("The conference will take place in {city}.",
          "In which city will the conference take place? Reply with the city only.", _v("city")),
        T("The new manager of the team is {person}.", "Who is the new manager of the team? Reply with the full name only.", _v("person")),
        T("The package must be delivered to {person} in {city}.",
          "To whom must the package be delivered? Give the full name.", _v("person")),
        T("{person} was born in {city}.", "In which city was {person} born? Answer with the city.", _v("city")),
        T("The winner of the chess tournament was {person}.", "Who won the chess tournament? Answer with the name only.", _v("person")),
    ),
    "colour": (
        T("The front door of the house is painted {colour}.",
          "What colour is the front door of the house? Reply with the colour only.", _v("colour")),
        T("{person}'s bicycle is {colour}.", "What colour is {person}'s bicycle? Reply with one word.", _v("colour")),
        T("The team chose {colour} for its new flag.",
          "Which colour did the team choose for its new flag? Reply with the colour only.", _v("colour")),
        T("The balloon at the fair was {colour}.", "What colour was the balloon at the fair? Answer with the colour.", _v("colour")),
        T("The walls of the library were repainted {colour}.",
          "In what colour were the library walls repainted? Give the colour only.", _v("colour")),
        T("The scarf that {person} always wears is {colour}.", "What colour is {person}'s scarf? Answer in one word.", _v("colour")),
    ),
    "arithmetic": (
        T("{person} has {a} {items} and buys {b} more.",
          "How many {items} does {person} have now? Reply with the number only.", lambda v: str(v["a"] + v["b"])),
        T("A box holds {a} {items}. Someone takes away {b} of them.",
          "How many {items} are left in the box? Reply with the number only.", lambda v: str(v["a"] - v["b"])),
        T("Each of {m} bags contains {n} {items}.",
          "How many {items} are there in all the bags together? Reply with the number only.", lambda v: str(v["m"] * v["n"])),
        T("{person} had {a} {items} and gave {b} away.",
          "How many {items} does {person} still have? Give the number.", lambda v: str(v["a"] - v["b"])),
        T("There are {a} {items} on the shelf, and {b} more are added.",
          "How many {items} are on the shelf now? Answer with a number.", lambda v: str(v["a"] + v["b"])),
        T("A crate is filled with {m} rows of {n} {items} each.",
          "How many {items} does the crate hold? Answer with a number.", lambda v: str(v["m"] * v["n"])),
    ),
    "combine": (
        T("{person} is the pilot. The pilot flies to {city} tomorrow.",
          "To which city does {person} fly tomorrow? Reply with the city only.", _v("city")),
        T("The agent's first name is {first}. The agent's family name is {last}.",
          "What is the agent's full name? Reply with the full name only.", lambda v: f"{v['first']} {v['last']}"),
        T("Group A has {a} members. Group B has {b} members.",
          "How many members do groups A and B have together? Reply with the number only.", lambda v: str(v["a"] + v["b"])),
        T("{person} owns the blue car. The blue car is parked in {city}.",
          "In which city is {person}'s car parked? Give the city.", _v("city")),
        T("The captain of the ship is {person}. The ship sails from {city}.",
          "From which city does {person}'s ship sail? Answer with the city.", _v("city")),
        T("The first part of the code is {word}. The second part of the code is {num}.",
          "What is the full code, first part then second part? Answer with the code.", lambda v: f"{v['word']} {v['num']}"),
    ),
    "second_agent": (
        T("Update: the meeting point changed to {city}.", "Where is the meeting point now? Reply with the place only.", _v("city")),
        T("Correction: the code word is {code}.", "What is the code word? Reply with the code word only.", _v("code")),
        T("New information: the contact person is {person}.", "Who is the contact person? Reply with the name only.", _v("person")),
        T("Late news: the courier's name is {person}.", "What is the courier's name? Give the name.", _v("person")),
        T("Latest report: the lighthouse beam is {colour}.", "What colour is the lighthouse beam? Answer with the colour.", _v("colour")),
        T("The review found that the safe number is {num}.", "What is the safe number? Answer with the number only.", _v("num")),
    ),
}
del T
# fmt: on


def split_pool(name: str, split: str) -> tuple[str, ...]:
    """The part of name pool ``name`` that belongs to ``split`` (pools are partitioned, never shared)."""
    return tuple(x for i, x in enumerate(POOLS[name]) if POOL_SPLIT[i % len(POOL_SPLIT)] == split)


def split_templates(family: str, split: str) -> tuple[Template, ...]:
    """The templates of ``family`` that belong to ``split``."""
    return tuple(t for t, s in zip(TEMPLATES[family], TEMPLATE_SPLIT) if s == split)


def _values(rng: random.Random, split: str) -> Values:
    """Fresh values for every placeholder, drawn from the split's share of each pool."""
    first, last = rng.choice(split_pool("first", split)), rng.choice(split_pool("last", split))
    a, b = rng.randint(12, 60), rng.randint(2, 11)
    return {
        "first": first,
        "last": last,
        "person": f"{first} {last}",
        "city": rng.choice(split_pool("city", split)),
        "word": rng.choice(split_pool("word", split)),
        "code": f"{rng.choice(split_pool('word', split))}-{rng.randint(10, 99)}",
        "colour": rng.choice(split_pool("colour", split)),
        "items": rng.choice(split_pool("items", split)),
        "a": a,
        "b": b,
        "m": rng.randint(3, 9),
        "n": rng.randint(3, 9),
        "num": str(rng.randint(1000, 9999)),
    }


def make_example(index: int, split: str = "test", seed: int = 0) -> Example:
    """Example ``index`` of ``split``; depends only on ``(seed, split, index)``."""
    if split not in SPLITS:
        raise BenchArgumentError(f"unknown relay6 split {split!r}; choose one of {SPLITS}")
    family = FAMILIES[index % len(FAMILIES)]
    rng = random.Random(f"relay6/{seed}/{split}/{index}")  # str seeds are stable across processes
    tpl_index = rng.choice([i for i, s in enumerate(TEMPLATE_SPLIT) if s == split])
    template = TEMPLATES[family][tpl_index]
    values = _values(rng, split)
    fact, question = template.fact.format(**values), template.question.format(**values)
    second = family == "second_agent"
    meta: dict[str, Any] = {"family": family, "split": split, "template": tpl_index, "facts": fact}
    if second:
        meta["agent_context"] = {SECOND_AGENT: fact}
    digest = hashlib.sha1(f"{fact}\n{question}".encode()).hexdigest()[:8]
    return Example(f"{split}-{index}-{digest}", question, template.gold(values), None if second else fact, meta=meta)


def _compact(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", s.lower())


def relay_answer_match(answer: str, gold: str) -> bool:
    """Case- and space-insensitive relay scoring.

    True when :func:`~latent_graph.bench.extract.relay_match` accepts it, or when some run of
    consecutive words of ``answer`` equals ``gold`` once case, spaces and punctuation are removed
    ("falcon37", "Marisol  okafor", "FALCON - 37"). A longer token never matches a shorter gold
    ("FALCON-371" is not "FALCON-37", "14817" is not "4817").
    """
    if relay_match(answer, gold):
        return True
    want, words = _compact(gold), [w for w in (_compact(x) for x in answer.split()) if w]
    for i in range(len(words)):
        acc = ""
        for w in words[i:]:
            acc += w
            if acc == want:
                return True
            if len(acc) >= len(want):
                break
    return False


@dataclass(frozen=True)
class RelaySuiteTask(Task):
    """A relay6 split: scored by :func:`relay_answer_match` instead of the plain relay matcher."""

    def score(self, example: Example, answer: str, *, code_timeout: float = 10.0) -> Score:
        ok = relay_answer_match(answer, example.gold)
        return Score(example.gold if ok else None, ok)


def relay_suite(n: int = 96, split: str = "test", seed: int = 0) -> RelaySuiteTask:
    """The first ``n`` examples of ``split`` (families cycle: ``n`` divisible by 6 balances them)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BenchArgumentError(f"number of relay6 examples must be a positive int, got {n!r}")
    examples = tuple(make_example(i, split, seed) for i in range(n))
    return RelaySuiteTask("relay6", "relay", examples, f"relay6(split={split}, seed={seed})")


def agent_context_state(examples: Sequence[Example]) -> dict[str, list[str]] | None:
    """The graph input ``agent_context`` for a batch: ``{agent: [fact or "" per example]}``, or None."""
    agents = sorted({a for e in examples for a in (e.meta.get("agent_context") or {})})
    if not agents:
        return None
    return {a: [(e.meta.get("agent_context") or {}).get(a, "") for e in examples] for a in agents}


__all__ = [
    "FAMILIES",
    "SECOND_AGENT",
    "SPLITS",
    "TEMPLATES",
    "RelaySuiteTask",
    "Template",
    "agent_context_state",
    "make_example",
    "relay_answer_match",
    "relay_suite",
    "split_pool",
    "split_templates",
]
