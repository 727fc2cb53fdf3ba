"""Generate latent_graph/data/adapter_pairs.jsonl: templated (instruction, target) pairs.

Every row is produced here from small hand-written word lists and templates
(arithmetic, facts, relay-style "remember X, what is X?" and copy/sequence
tasks), shuffled with a fixed seed, so the file is reproducible:

    python scripts/make_adapter_pairs.py            # rewrites the shipped file

Split rule (also applied by :func:`latent_graph.adapters.data.split_of` when a
row has no ``split`` field): a pair is ``heldout`` when the first byte of
``sha256(instruction)`` is divisible by 5 (about 20 % of rows), else ``train``.
The rule depends only on the instruction text, so it is stable under re-ordering
and under adding rows. Relay rows also carry ``fact`` and ``question`` fields,
used by the relay probe (fact given to one agent, question to another).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "latent_graph" / "data" / "adapter_pairs.jsonl"

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Japan": "Tokyo",
    "Egypt": "Cairo",
    "Russia": "Moscow",
    "Greece": "Athens",
    "Norway": "Oslo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Austria": "Vienna",
    "Portugal": "Lisbon",
    "Ireland": "Dublin",
    "Poland": "Warsaw",
    "Cuba": "Havana",
    "Chile": "Santiago",
    "Thailand": "Bangkok",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Denmark": "Copenhagen",
    "Hungary": "Budapest",
    "China": "Beijing",
    "England": "London",
    "Canada": "Ottawa",
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "up": "down",
    "fast": "slow",
    "happy": "sad",
    "light": "dark",
    "open": "closed",
    "early": "late",
    "full": "empty",
    "hard": "soft",
    "old": "young",
    "rich": "poor",
    "strong": "weak",
    "wet": "dry",
    "high": "low",
    "long": "short",
    "loud": "quiet",
    "thick": "thin",
}
NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Ivy",
    "Jack",
    "Kate",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Rosa",
    "Sam",
    "Tina",
    "Victor",
    "Wendy",
    "Xavier",
    "Yara",
    "Zoe",
    "Aaron",
    "Bella",
    "Chris",
    "Diana",
    "Ethan",
    "Fiona",
]
ATTRS = {
    "favorite color": ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown"],
    "pet": ["dog", "cat", "rabbit", "parrot", "horse", "turtle", "hamster", "goat", "fish", "snake"],
    "home city": ["Paris", "London", "Tokyo", "Berlin", "Rome", "Madrid", "Cairo", "Lima", "Oslo", "Dublin"],
    "favorite fruit": ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"],
}
WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "garden",
    "window",
    "silver",
    "planet",
    "candle",
    "forest",
    "mirror",
    "bridge",
    "pencil",
    "rocket",
    "island",
    "violin",
    "basket",
    "dragon",
    "lemon",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def split_of(instruction: str) -> str:
    """``heldout`` for ~20 % of instructions (sha256 rule above), else ``train``."""
    return "heldout" if hashlib.sha256(instruction.encode()).digest()[0] % 5 == 0 else "train"


def arithmetic(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        op = rng.choice(["plus", "minus", "times"])
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        if op == "times":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
        if op == "minus" and b > a:
            a, b = b, a
        value = a + b if op == "plus" else a - b if op == "minus" else a * b
        rows.append(
            {
                "task": "arithmetic",
                "instruction": f"What is {a} {op} {b}? Answer with the number only.",
                "target": str(value),
            }
        )
    return rows


def facts() -> list[dict]:
    rows = [
        {"task": "fact", "instruction": f"What is the capital of {c}? Answer with one word.", "target": v}
        for c, v in CAPITALS.items()
    ]
    rows += [
        {"task": "fact", "instruction": f"What is the opposite of '{w}'? Answer with one word.", "target": v}
        for w, v in OPPOSITES.items()
    ]
    rows += [
        {
            "task": "fact",
            "instruction": f"Which day comes after {d}? Answer with one word.",
            "target": DAYS[(i + 1) % 7],
        }
        for i, d in enumerate(DAYS)
    ]
    rows += [
        {
            "task": "fact",
            "instruction": f"Which month comes after {m}? Answer with one word.",
            "target": MONTHS[(i + 1) % 12],
        }
        for i, m in enumerate(MONTHS)
    ]
    return rows


def relay(rng: random.Random, n: int) -> list[dict]:
    combos = list(itertools.product(NAMES, ATTRS))
    rows = []
    for name, attr in rng.sample(combos, min(n, len(combos))):
        value = rng.choice(ATTRS[attr])
        fact = f"Remember this fact: {name}'s {attr} is {value}."
        question = f"What is {name}'s {attr}? Answer with one word."
        rows.append(
            {"task": "relay", "instruction": f"{fact} {question}", "target": value, "fact": fact, "question": question}
        )
    return rows


def copy_tasks(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        kind = rng.choice(["repeat", "code", "letter"])
        if kind == "repeat":
            w = rng.choice(WORDS)
            rows.append({"task": "copy", "instruction": f"Repeat the word '{w}' exactly.", "target": w})
        elif kind == "code":
            code = rng.randint(100, 9999)
            rows.append(
                {
                    "task": "copy",
                    "instruction": f"The secret code is {code}. Reply with the code only.",
                    "target": str(code),
                }
            )
        else:
            i = rng.randrange(25)
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            rows.append(
                {
                    "task": "copy",
                    "instruction": f"Which letter comes after '{letter}'? Reply with the letter only.",
                    "target": "abcdefghijklmnopqrstuvwxyz"[i + 1],
                }
            )
    return rows


def generate(seed: int = 0) -> list[dict]:
    """All rows, de-duplicated by instruction, shuffled with ``seed``, each with its split."""
    rng = random.Random(seed)
    rows = arithmetic(rng, 420) + facts() + relay(rng, 120) + copy_tasks(rng, 380)
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r["instruction"], r)
    out = list(seen.values())
    rng.shuffle(out)
    for r in out:
        r["split"] = split_of(r["instruction"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = generate(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    held = sum(r["split"] == "heldout" for r in rows)
    print(f"wrote {len(rows)} pairs ({held} heldout) to {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
