"""Answer extraction: boxed, numbers, multiple-choice letters, code blocks, relay secrets."""

from __future__ import annotations

from fractions import Fraction

import pytest

from latent_graph.bench.extract import (
    extract_choice,
    extract_code,
    extract_math_answer,
    find_boxed,
    find_numbers,
    format_number,
    last_boxed,
    numbers_equal,
    parse_number,
    relay_match,
)


# ------------------------------------------------------------------ boxed
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{42}", ["42"]),
        (r"first \boxed{1} then \boxed{2}", ["1", "2"]),
        (r"\boxed{\frac{3}{4}}", [r"\frac{3}{4}"]),
        (r"\boxed{a{b{c}}d}", ["a{b{c}}d"]),
        (r"\fbox{7}", ["7"]),
        (r"\boxed 5 apples", ["5"]),
        (r"\boxed{12", ["12"]),  # cut off before the closing brace
        ("no box here", []),
        (r"\boxed{} empty", [""]),
    ],
)
def test_find_boxed(text: str, expected: list[str]) -> None:
    assert find_boxed(text) == expected


def test_last_boxed() -> None:
    assert last_boxed(r"\boxed{1} and finally \boxed{\text{18 dollars}}") == r"\text{18 dollars}"
    assert last_boxed("nothing") is None


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", Fraction(18)),
        ("1,234", Fraction(1234)),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("-5", Fraction(-5)),
        ("\u22127", Fraction(-7)),  # unicode minus
        ("3/4", Fraction(3, 4)),
        ("-3/4", Fraction(-3, 4)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        (r"\dfrac{1}{3}", Fraction(1, 3)),
        (r"\frac{\frac{1}{2}}{3}", Fraction(1, 6)),
        (r"\frac12", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        (".75", Fraction(3, 4)),
        ("$18.00", Fraction(18)),
        ("\u20ac 1,000", Fraction(1000)),
        ("50%", Fraction(50)),
        (r"50\%", Fraction(50)),
        ("12 km/h", Fraction(12)),
        (r"18 \text{ dollars}", Fraction(18)),
        (r"90^\circ", Fraction(90)),
        ("x = 5", Fraction(5)),
        ("10 - 3", Fraction(7)),  # a pure arithmetic expression is evaluated
        ("2 * (3 + 4)", Fraction(14)),
        ("1,2,3", Fraction(3)),  # a list, not a thousands number: last item
        ("abc", None),
        ("", None),
        (None, None),
        ("1/0", None),
    ],
)
def test_parse_number(text: str | None, expected: Fraction | None) -> None:
    assert parse_number(text) == expected


def test_find_numbers_binary_minus_is_not_a_sign() -> None:
    assert find_numbers("10-3=7") == [10, 3, 7]
    assert find_numbers("x=-3") == [-3]
    assert find_numbers("Qwen3 has 4 sizes") == [4]  # digits glued to a word are not numbers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(18), "18"),
        (Fraction(-5, 2), "-2.5"),
        (Fraction(1, 3), "1/3"),
        (Fraction(3, 8), "0.375"),
        (Fraction(0), "0"),
    ],
)
def test_format_number(value: Fraction, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"So she makes \boxed{18} dollars.", "18"),
        (r"The answer is \boxed{\$1,234}.", "1234"),
        (r"\boxed{\frac{3}{4}}", "0.75"),
        (r"\boxed{\dfrac{-1}{3}}", "-1/3"),
        (r"\boxed{18 \text{ dollars}}", "18"),
        (r"\boxed{x = 5}", "5"),
        (r"first \boxed{3}, corrected: \boxed{4}", "4"),
        (r"\boxed{\text{none}} but 7 before", "7"),  # a box without a number falls through
        ("Janet sells 9 eggs.\n#### 18", "18"),
        ("#### 1,000", "1000"),
        ("The answer is 42.", "42"),
        ("Answer: -3.5 degrees", "-3.5"),
        ("final answer: $2,500", "2500"),
        ("The answer is 18. Then 5 more were added", "18"),
        ("First 3 apples, then 5 more, total 8 apples", "8"),
        ("It costs $0.50 each", "0.5"),
        ("she needs 3/4 of a cup", "0.75"),
        ("The temperature drops to \u22124 degrees", "-4"),
        ("no digits at all", None),
        ("", None),
    ],
)
def test_extract_math_answer(text: str, expected: str | None) -> None:
    assert extract_math_answer(text) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [
        ("18", "18", True),
        ("18.0", "18", True),
        ("18.00", "18", True),
        ("1,234", "1234", True),
        ("0.75", "3/4", True),
        ("0.3333333333", "1/3", True),
        ("-5", "5", False),
        ("17", "18", False),
        (None, "18", False),
        ("abc", "18", False),
    ],
)
def test_numbers_equal(pred: str | None, gold: str, ok: bool) -> None:
    assert numbers_equal(pred, gold) is ok


# ---------------------------------------------------------- multiple choice
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{B}", "B"),
        (r"\boxed{(C)}", "C"),
        (r"\boxed{\text{D}}", "D"),
        (r"\boxed{b}", "B"),
        (r"\boxed{A. Paris}", "A"),
        ("Answer: C", "C"),
        ("answer: C", "C"),
        ("The answer is (B).", "B"),
        ("The answer is (b).", "B"),
        ("The correct answer is D because...", "D"),
        ("I pick option A.", "A"),
        ("Choice (C) is right", "C"),
        ("(B)", "B"),
        ("Looking at (A) and (C), I choose (C)", "C"),
        ("B. Because plants need light.", "B"),
        ("D", "D"),
        ("  **C**  ", "C"),
        ("To answer this, A man walks in.", None),  # the article "A" is not an answer
        ("the answer is a cat", None),
        ("I am not sure.", None),
        ("Answer: E", None),  # not a valid label for 4 options
        ("", None),
    ],
)
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text, ("A", "B", "C", "D")) == expected


def test_extract_choice_prefers_last_explicit_answer() -> None:
    assert extract_choice("Answer: A. Wait, no. Answer: C", "ABCD") == "C"
    assert extract_choice(r"(A) looks good but \boxed{D}", "ABCD") == "D"


def test_extract_choice_by_option_text() -> None:
    choices = ("photosynthesis", "respiration", "digestion", "fermentation")
    assert extract_choice("It is respiration.", "ABCD", choices) == "B"
    assert extract_choice("respiration or digestion", "ABCD", choices) is None  # ambiguous


# -------------------------------------------------------------------- code
def test_extract_code_fenced() -> None:
    text = "Here:\n```python\ndef f(x):\n    return x + 1\n```\nDone."
    assert extract_code(text) == "def f(x):\n    return x + 1\n"


def test_extract_code_prefers_defining_block() -> None:
    text = "```python\ndef f():\n    return 1\n```\nUsage:\n```\nprint(f())\n```"
    assert extract_code(text).startswith("def f():")


def test_extract_code_unterminated_and_plain() -> None:
    assert extract_code("```python\ndef g():\n    return 2") == "def g():\n    return 2\n"
    assert extract_code("def h():\n    return 3") == "def h():\n    return 3"
    assert extract_code("") == ""


# ------------------------------------------------------------------- relay
@pytest.mark.parametrize(
    ("text", "secret", "ok"),
    [
        ("The code word is FALCON-37.", "FALCON-37", True),
        ("falcon 37", "FALCON-37", True),
        ("FALCON-371", "FALCON-37", False),
        ("FALCON", "FALCON-37", False),
        ("The combination is 4,817.", "4817", True),
        ("14817", "4817", False),
        ("It is Marisol Okafor.", "Marisol Okafor", True),
        ("Marisol", "Marisol Okafor", False),
        ("", "4817", False),
        ("The code word isFALCON-37", "FALCON-37", True),  # glued by detokenization
        ("The code word isFALCON-371", "FALCON-37", False),
        ("XFALCON-37", "FALCON-37", False),
        ("The vault combination is1663.", "1663", True),
        ("name isHaruto Moreau.", "Haruto Moreau", True),
        ("name is HarutoMoreau", "Haruto Moreau", False),
    ],
)
def test_relay_match(text: str, secret: str, ok: bool) -> None:
    assert relay_match(text, secret) is ok
