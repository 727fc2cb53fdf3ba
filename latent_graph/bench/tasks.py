"""Benchmark task loaders (the :class:`Example` / :class:`Task` records live in :mod:`latent_graph.bench.task_types`).

- ``gsm8k``: JSONL with ``question`` and ``answer`` (gold after the last ``####``);
  or, only when asked (``hf=True``) and ``datasets`` is importable, the HF hub copy.
- ``arc``: ARC-style multiple choice JSONL. Accepted shapes: AI2 (``question.stem``,
  ``question.choices[{label,text}]``), HF (``choices: {label: [...], text: [...]}``) or
  flat (``choices: [str, ...]``); ``answerKey`` a label or a 0-based index. Numeric
  labels ("1".."5") become letters.
- ``code``: HumanEval-style (``prompt``, ``test``, ``entry_point``) or MBPP-style
  (``text``/``prompt``, ``test_list``, optional ``test_setup_code``) JSONL; scored by
  running the tests in a subprocess (:mod:`latent_graph.bench.execute`).
- ``relay``: probes generated from a seed. A secret (code word, number or name) is
  put in the *first agent's* ``context`` only; the question, restated to every
  agent, asks for it. It measures whether information survives the hand-offs.

Every malformed line raises :class:`DataFormatError` naming ``path:line``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from latent_graph.bench import extract
from latent_graph.bench.errors import BenchArgumentError, DataFormatError, DataNotFoundError
from latent_graph.bench.relay_suite import POOLS, relay_suite
from latent_graph.bench.task_types import GRAPH_TASK, LETTERS, Example, Score, Task
from latent_graph.jsonl import iter_objects

TASKS: tuple[str, ...] = ("gsm8k", "arc", "code", "relay", "relay6", "relay6:train", "relay6:validation", "relay6:test")
DEFAULT_DATA: dict[str, tuple[str, ...]] = {
    "gsm8k": ("../shared/data/gsm8k/test.jsonl", "data/gsm8k/test.jsonl"),
}


# ------------------------------------------------------------------ helpers
def _qid(index: int, text: str) -> str:
    return f"{index}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: On a line that is not a JSON object (names ``path:line``).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataNotFoundError(f"data file {str(p)!r} does not exist")
    yield from iter_objects(p, DataFormatError)


def _need_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(f"{where}: missing or empty string field {key!r}")
    return value


def _resolve(name: str, path: str | Path | None) -> Path:
    """The data file of task ``name`` as an absolute path (so resumed runs match from any cwd)."""
    if path is not None:
        return Path(path).expanduser().resolve()
    for cand in DEFAULT_DATA.get(name, ()):
        if Path(cand).is_file():
            return Path(cand).resolve()
    hint = f" (looked for {', '.join(DEFAULT_DATA[name])})" if name in DEFAULT_DATA else ""
    extra = " or pass hf=True (--hf) where the `datasets` package is installed" if name == "gsm8k" else ""
    raise DataNotFoundError(f"task {name!r} needs a data file: give its path (--data PATH){hint}{extra}")


# ------------------------------------------------------------------ GSM8K
def gsm8k_gold(answer: str, where: str = "answer") -> str:
    """The gold number after the last ``####`` of a GSM8K answer, commas removed."""
    if "####" not in answer:
        raise DataFormatError(f"{where}: GSM8K answer has no '####' final-answer marker")
    gold = answer.rsplit("####", 1)[1].strip().replace(",", "")
    if extract.parse_number(gold) is None:
        raise DataFormatError(f"{where}: GSM8K final answer {gold!r} is not a number")
    return gold


def load_gsm8k(path: str | Path | None = None, *, hf: bool = False) -> Task:
    """GSM8K from a JSONL file (``question``, ``answer``), or from the HF hub if ``hf``."""
    if path is None and hf:
        return _load_gsm8k_hf()
    p = _resolve("gsm8k", path)
    examples = []
    for i, (lineno, obj) in enumerate(read_jsonl(p)):
        where = f"{p}:{lineno}"
        q = _need_str(obj, "question", where)
        gold = gsm8k_gold(_need_str(obj, "answer", where), where)
        examples.append(Example(_qid(i, q), q, gold))
    return Task("gsm8k", "math", tuple(examples), str(p))


def _load_gsm8k_hf() -> Task:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DataNotFoundError(
            "hf=True needs the `datasets` package (pip install datasets); or give a JSONL path (--data)"
        ) from exc
    ds = datasets.load_dataset("openai/gsm8k", "main", split="test")
    examples = [
        Example(_qid(i, row["question"]), row["question"], gsm8k_gold(row["answer"], f"hf:openai/gsm8k[{i}]"))
        for i, row in enumerate(ds)
    ]
    return Task("gsm8k", "math", tuple(examples), "hf:openai/gsm8k/main/test")


# -------------------------------------------------------------------- ARC
def _arc_fields(obj: Mapping[str, Any], where: str) -> tuple[str, list[str], list[str]]:
    """(stem, labels, texts) from any accepted ARC shape."""
    q = obj.get("question")
    choices: Any = obj.get("choices")
    if isinstance(q, Mapping):  # AI2: {"question": {"stem":..., "choices": [...]}}
        stem = _need_str(q, "stem", where)
        choices = q.get("choices", choices)
    elif isinstance(q, str) and q.strip():
        stem = q
    else:
        raise DataFormatError(f"{where}: missing question (a string, or an object with 'stem')")
    if isinstance(choices, Mapping):  # HF: {"label": [...], "text": [...]}
        labels, texts = list(choices.get("label") or []), list(choices.get("text") or [])
        if len(labels) != len(texts):
            raise DataFormatError(f"{where}: choices have {len(labels)} labels but {len(texts)} texts")
    elif isinstance(choices, list) and choices and all(isinstance(c, Mapping) for c in choices):
        labels = [c.get("label") for c in choices]
        texts = [c.get("text") for c in choices]
    elif isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        labels, texts = list(LETTERS[: len(choices)]), list(choices)
    else:
        raise DataFormatError(f"{where}: 'choices' must be a non-empty list or a {{label, text}} object")
    if len(texts) < 2 or len(texts) > len(LETTERS):
        raise DataFormatError(f"{where}: need 2..{len(LETTERS)} choices, got {len(texts)}")
    if not all(isinstance(t, str) for t in texts) or not all(isinstance(lab, (str, int)) for lab in labels):
        raise DataFormatError(f"{where}: every choice needs a text and a label")
    return stem, [str(lab).strip() for lab in labels], texts


def load_arc(path: str | Path) -> Task:
    """ARC-style multiple choice JSONL (see module docstring for accepted shapes)."""
    p = _resolve("arc", path)
    examples = []
    for i, (lineno, obj) in enumerate(read_jsonl(p)):
        where = f"{p}:{lineno}"
        stem, labels, texts = _arc_fields(obj, where)
        key = obj.get("answerKey", obj.get("answer"))
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(labels):
            key = labels[key]
        if not isinstance(key, str) or key.strip() not in labels:
            raise DataFormatError(f"{where}: answerKey {key!r} is not one of the labels {labels}")
        gold_index = labels.index(key.strip())
        letters = tuple(LETTERS[: len(labels)])  # "1".."4" and "A".."D" alike become letters
        options = "\n".join(f"{lab}. {t}" for lab, t in zip(letters, texts))
        question = f"{stem}\n\nOptions:\n{options}"
        examples.append(Example(_qid(i, question), question, letters[gold_index], labels=letters, choices=tuple(texts)))
    return Task("arc", "choice", tuple(examples), str(p))


# ------------------------------------------------------------------- code
def load_code(path: str | Path) -> Task:
    """HumanEval-style or MBPP-style JSONL (see module docstring)."""
    p = _resolve("code", path)
    examples = []
    for i, (lineno, obj) in enumerate(read_jsonl(p)):
        where = f"{p}:{lineno}"
        if "entry_point" in obj or isinstance(obj.get("test"), str):  # HumanEval
            prompt = _need_str(obj, "prompt", where)
            tests = _need_str(obj, "test", where)
            entry = _need_str(obj, "entry_point", where)
            question = (
                "Complete the following Python function. Reply with the complete function "
                f"in one ```python code block.\n\n```python\n{prompt}```"
            )
            meta = {"tests": tests, "entry_point": entry, "prompt": prompt}
        else:  # MBPP
            text = obj.get("text") if isinstance(obj.get("text"), str) else obj.get("prompt")
            if not isinstance(text, str) or not text.strip():
                raise DataFormatError(f"{where}: missing task text ('text' or 'prompt')")
            tests_list = obj.get("test_list")
            if not isinstance(tests_list, list) or not tests_list or not all(isinstance(t, str) for t in tests_list):
                raise DataFormatError(
                    f"{where}: need 'test' + 'entry_point' (HumanEval) or a non-empty 'test_list' (MBPP)"
                )
            question = (
                f"{text.strip()}\nWrite a Python function for this. Your code should pass this test:\n"
                f"{tests_list[0]}\nReply with the code in one ```python code block."
            )
            meta = {"tests": "\n".join(tests_list), "setup": obj.get("test_setup_code") or ""}
        meta["task_id"] = str(obj.get("task_id", i))
        examples.append(Example(_qid(i, question), question, "", meta=meta))
    return Task("code", "code", tuple(examples), str(p))


# ------------------------------------------------------------------ relay
# the relay probes draw from the head of relay6's name pools
_WORDS, _FIRST, _LAST = POOLS["word"][:20], POOLS["first"][:10], POOLS["last"][:10]


def relay_probes(n: int = 20, seed: int = 0) -> Task:
    """``n`` relay probes, deterministic in ``seed``.

    Each probe puts a secret (kinds cycle: code word like ``FALCON-37``, a 4-digit
    number, a person's name) in ``context`` — shown to the first agent only — and asks
    for it in ``question``, which every agent (and the judger) sees. A reply is correct
    if it contains the secret (:func:`~latent_graph.bench.extract.relay_match`).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BenchArgumentError(f"number of relay probes must be a positive int, got {n!r}")
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            secret = f"{rng.choice(_WORDS)}-{rng.randint(10, 99)}"
            context = f"Remember this: the secret code word is {secret}."
            question = "Another agent was told a secret code word. What is the secret code word? Reply with the code word only."
        elif kind == 1:
            secret = str(rng.randint(1000, 9999))
            context = f"Remember this: the vault combination is {secret}."
            question = "Another agent was told the vault combination. What is the vault combination? Reply with the number only."
        else:
            secret = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            context = f"Remember this: the contact person is {secret}."
            question = "Another agent was told the name of the contact person. What is the contact person's name? Reply with the name only."
        examples.append(Example(_qid(i, context + question), question, secret, context=context))
    return Task("relay", "relay", tuple(examples), f"relay(seed={seed})")  # probe i does not depend on n


def load_task(name: str, path: str | Path | None = None, *, hf: bool = False, n: int = 20, seed: int = 0) -> Task:
    """Load a task by name.

    Args:
        name: One of :data:`TASKS` ("gsm8k", "arc", "code", "relay", "relay6"); "relay6:SPLIT"
            picks a relay6 split (:mod:`latent_graph.bench.relay_suite`, default test).
        path: Data file (JSONL). For gsm8k, defaults to ``../shared/data/gsm8k/test.jsonl``
            if it exists.
        hf: gsm8k only: load from the HF hub with ``datasets`` when no path is given.
        n: relay only: number of probes.
        seed: relay only: generation seed.
    """
    if name == "gsm8k":
        return load_gsm8k(path, hf=hf)
    if name == "arc":
        return load_arc(_resolve("arc", path))
    if name == "code":
        return load_code(_resolve("code", path))
    if name == "relay":
        return relay_probes(n, seed)
    if name.split(":")[0] == "relay6":  # "relay6" (test split) or "relay6:train|validation|test"
        return relay_suite(n, name.partition(":")[2] or "test", seed)
    raise BenchArgumentError(f"unknown task {name!r}; choose one of {TASKS}")


__all__ = [
    "GRAPH_TASK",
    "TASKS",
    "Example",
    "Score",
    "Task",
    "gsm8k_gold",
    "load_arc",
    "load_code",
    "load_gsm8k",
    "load_task",
    "read_jsonl",
    "relay_probes",
]
