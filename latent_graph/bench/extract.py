"""Answer extraction from free-form model output.

- Math: last ``\\boxed{...}`` (nested braces, ``\\frac``, ``\\text{}`` units), then a
  ``#### x`` line, then "answer is x" / "Answer: x", then the last number in the text.
  Numbers may carry thousands commas (``1,234``), signs (``-5``, ``−5``), decimals,
  fractions (``3/4``, ``\\frac{3}{4}``), currency (``$``, ``€``...) and trailing units.
  Values compare as exact fractions (:func:`numbers_equal`).
- Multiple choice: ``\\boxed{B}``, "Answer: C", "the answer is (B)", "option D",
  a lone "(B)", or a reply that is just a letter.
- Code: the last fenced block that defines something (or the last block, or the raw text).
- Relay probes: the secret appears verbatim (case- and separator-insensitive).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from fractions import Fraction

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MINUS = "\u2212\u2013\u2012\u2014"  # unicode minus and dashes that models use as signs
_CURRENCY = "$€£¥₹"

# A number: optional sign (not a binary minus: no word char or ')' right before it),
# then 1,234,567 or 1234, optional decimals; or a bare ".5".
_NUM = r"(?<![\w.)\]])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])|(?<![\w.])-?\.\d+"
_FRAC = r"(?<![\w.)\]])-?\d+(?:\.\d+)?\s*/\s*\d+(?:\.\d+)?(?![\d/])"
_NUMBER_RE = re.compile(f"(?:{_FRAC})|(?:{_NUM})")
_ANSWER_CUE_RE = re.compile(r"answer\s*(?:is|=|:)\s*:?\s*(.{0,80})", re.IGNORECASE)


# ------------------------------------------------------------------ boxed
def find_boxed(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``, braces balanced.

    ``\\boxed 5`` (no braces) yields ``"5"``. An unclosed box yields what follows it.

    Example:
        >>> find_boxed(r"so \\boxed{\\frac{3}{4}} and \\boxed{7}")
        ['\\\\frac{3}{4}', '7']
    """
    found: list[str] = []
    i = 0
    while True:
        hits = [(text.find(cmd, i), cmd) for cmd in _BOX_COMMANDS]
        hits = [(p, c) for p, c in hits if p >= 0]
        if not hits:
            return found
        pos, cmd = min(hits)
        j = pos + len(cmd)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            depth, k = 0, j
            while k < len(text):
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            found.append(text[j + 1 : k])
            i = k + 1
        else:
            m = re.match(r"[^\s$]+", text[j:])
            if m and j > pos + len(cmd):  # "\boxed 5" needs the space
                found.append(m.group(0))
            i = j + (m.end() if m else 0) + 1


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` in ``text``, or None."""
    boxes = find_boxed(text)
    return boxes[-1] if boxes else None


def _strip_latex(s: str) -> str:
    """Turn the LaTeX that shows up in answers into plain text (fractions become a/b)."""
    for _ in range(3):  # nested \frac{\frac..}: a few passes
        s = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", s)
        s = re.sub(r"\\[dt]?frac(\d)(\d)", r"\1/\2", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}", r" \1 ", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.replace("\\%", "%").replace("\\$", "$").replace("\\!", "").replace("\\,", "").replace("\\;", " ")
    s = re.sub(r"\\(?:left|right|displaystyle|quad|qquad)", " ", s)
    s = re.sub(r"\((\s*-?\d+(?:\.\d+)?\s*)\)", r"\1", s)  # (3)/(4) -> 3/4
    return s


# ----------------------------------------------------------------- numbers
def _normalize_numeric_text(s: str) -> str:
    s = _strip_latex(s)
    for ch in _MINUS:
        s = s.replace(ch, "-")
    for ch in _CURRENCY:
        s = s.replace(ch, " ")
    return s.replace("%", " ")


def _to_fraction(token: str) -> Fraction | None:
    token = token.replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/", 1)
            d = Fraction(den)
            return None if d == 0 else Fraction(num) / d
        return Fraction(token)
    except (ValueError, ZeroDivisionError):
        return None


def find_numbers(text: str) -> list[Fraction]:
    """Every number in ``text`` as an exact Fraction, in order (see module docstring)."""
    s = _normalize_numeric_text(text)
    out = []
    for m in _NUMBER_RE.finditer(s):
        value = _to_fraction(m.group(0))
        if value is not None:
            out.append(value)
    return out


def _eval_arith(s: str) -> Fraction | None:
    """Exact value of a pure arithmetic expression of numbers, ``+ - * / ( )``; else None."""
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s).strip()  # thousands commas only
    if not s or not re.fullmatch(r"[\d\s.+\-*/()]+", s) or not re.search(r"\d", s):
        return None
    try:
        tree = ast.parse(s, mode="eval")
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return a / b
        raise ValueError("not arithmetic")

    try:
        return ev(tree)
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def parse_number(text: str | None) -> Fraction | None:
    """The value of ``text``: a pure arithmetic expression (``\\frac{\\frac{1}{2}}{3}`` → 1/6),
    else its last number (``"x = 5"`` → 5, ``"$1,234.50"`` → 2469/2); None if it has none."""
    if text is None:
        return None
    exact = _eval_arith(_normalize_numeric_text(text))
    if exact is not None:
        return exact
    nums = find_numbers(text)
    return nums[-1] if nums else None


def format_number(value: Fraction) -> str:
    """Canonical text of a number: ``18``, ``-2.5``, ``1/3`` (decimals when exact)."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den == 1:
        text = f"{float(value):.10f}".rstrip("0").rstrip(".")
        return text
    return f"{value.numerator}/{value.denominator}"


def extract_math_answer(text: str) -> str | None:
    """The final numeric answer of a math solution, canonicalized, or None.

    Order: last ``\\boxed{}`` holding a number; ``####`` line; last "answer is / Answer:"
    cue followed by a number; the last number anywhere.
    """
    if not text:
        return None
    for box in reversed(find_boxed(text)):
        value = parse_number(box)
        if value is not None:
            return format_number(value)
    if "####" in text:
        value = parse_number(text.rsplit("####", 1)[1].split("\n", 1)[0])
        if value is not None:
            return format_number(value)
    for cue in reversed(list(_ANSWER_CUE_RE.finditer(text))):
        nums = find_numbers(cue.group(1).split("\n", 1)[0])
        if nums:
            return format_number(nums[0])
    value = parse_number(text)
    return None if value is None else format_number(value)


def numbers_equal(pred: str | None, gold: str | None, rel_tol: float = 1e-6) -> bool:
    """True if both parse to numbers that are equal (exactly, or within ``rel_tol``)."""
    a, b = parse_number(pred), parse_number(gold)
    if a is None or b is None:
        return False
    if a == b:
        return True
    return abs(float(a) - float(b)) <= rel_tol * max(1.0, abs(float(b)))


# ---------------------------------------------------------- multiple choice
def extract_choice(
    text: str, labels: Sequence[str] = ("A", "B", "C", "D", "E"), choices: Sequence[str] = ()
) -> str | None:
    """The chosen option label, or None.

    Args:
        text: Model output.
        labels: Valid option labels (upper-case letters).
        choices: Option texts, same order as ``labels``; used last, when the reply
            quotes exactly one option's text and names no letter.
    """
    if not text:
        return None
    valid = {x.upper() for x in labels}
    cls = "".join(sorted(valid)) or "A-E"

    for box in reversed(find_boxed(text)):
        plain = _strip_latex(box).strip()
        m = re.search(rf"(?<![A-Za-z])([{cls}])(?![A-Za-z])", plain)
        if m is None:  # a lone lower-case letter, "\boxed{b}" or "\boxed{(b)}"
            m = re.fullmatch(rf"\(?([{cls.lower()}])\)?[.:)]?", plain)
        if m:
            return m.group(1).upper()
    # (pattern, flags): letters must be upper-case unless written "(c)".
    patterns = [
        (rf"answer\s*(?:is|:|=)?\s*[:\-]?\s*(?:option|choice)?\s*\(?\s*([{cls}])(?![A-Za-z])", re.IGNORECASE),
        (rf"(?:option|choice)\s*\(?([{cls}])(?![A-Za-z])", re.IGNORECASE),
        (rf"\(([{cls}{cls.lower()}])\)", 0),
        (rf"^\s*\**\(?([{cls}])\s*[\.\):]", 0),  # reply starts with "B." / "(B)" / "B:"
        (rf"^\s*\**([{cls}])\**\s*$", 0),  # reply is just the letter
    ]
    for pat, flags in patterns:
        hits = [h for h in re.finditer(pat, text, flags) if h.group(1).upper() in valid]
        hits = [h for h in hits if h.group(1).isupper() or _parenthesized(text, h)]
        if hits:
            return hits[-1].group(1).upper()
    if choices:
        low = text.lower()
        present = [lab for lab, c in zip(labels, choices) if c.strip() and c.strip().lower() in low]
        if len(present) == 1:
            return present[0].upper()
    return None


def _parenthesized(text: str, m: re.Match[str]) -> bool:
    """True if the letter matched at ``m`` sits inside parentheses, e.g. "answer is (c)"."""
    i = m.start(1)
    return i > 0 and text[i - 1] == "(" and i + 1 < len(text) and text[i + 1] == ")"


# --------------------------------------------------------------------- code
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str) -> str:
    """Code from a reply: the last fenced block that defines something, else the last
    fenced block, else the whole text. An unterminated fence (cut-off generation) counts."""
    blocks = [m.group(2) for m in _FENCE_RE.finditer(text or "")]
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        return (text or "").strip("\n")
    defining = [b for b in blocks if re.search(r"^\s*(?:def|class|import|from)\s", b, re.MULTILINE)]
    return (defining or blocks)[-1].rstrip() + "\n"


# -------------------------------------------------------------------- relay
def _canon(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", s.lower()).strip()


def relay_match(text: str, secret: str) -> bool:
    """True if ``text`` contains ``secret``.

    Either as whole words, case- and separator-insensitive (``"FALCON-37"`` matches
    "the code word is falcon 37"), or verbatim (case-sensitive) glued to a preceding
    lower-case word — "isFALCON-37", a detokenization artifact of small models. Never
    when extended: "FALCON-371", "14817" (for 4817) and "XFALCON-37" do not match.
    """
    if not text or not secret.strip():
        return False
    hay, sec = text.replace(",", ""), secret.replace(",", "").strip()
    if f" {_canon(sec)} " in f" {_canon(hay)} ":
        return True
    for m in re.finditer(re.escape(sec), hay):
        before = hay[m.start() - 1] if m.start() > 0 else " "
        after = hay[m.end()] if m.end() < len(hay) else " "
        if after.isalnum() or before.isdigit() or (before.isupper() and sec[0].isupper()):
            continue
        return True
    return False


__all__ = [
    "extract_choice",
    "extract_code",
    "extract_math_answer",
    "find_boxed",
    "find_numbers",
    "format_number",
    "last_boxed",
    "numbers_equal",
    "parse_number",
    "relay_match",
]
