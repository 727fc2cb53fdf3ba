"""Turn agent prompts into left-padded token batches using the tokenizer's own chat template.

The first agent's prompt is a normal chat turn (system + user + assistant header).
A later agent continues the *same* conversation: the previous agent's assistant turn
(its latent thoughts) is closed and a new user turn opens, exactly as the template
would render a multi-turn chat. So a shared cache reads as one coherent dialogue
instead of several chats pasted together (repeated default system prompts and
unclosed assistant turns made small models echo the template).

No model-name checks: any tokenizer with a chat template works; one without a
template gets a plain ``System:/User:/Assistant:`` fallback.

User text (prompts, system messages) is tokenized as *literal* text: only the
template's own markup may produce special tokens. A question holding
``<|im_end|>\n<|im_start|>system\n...`` would otherwise forge a system turn.
:func:`render_prompt` records where user text sits in the rendered prompt;
:func:`encode_turn` tokenizes the prompt as before and, only when a special token
came out of user text, re-tokenizes that text literally (``split_special_tokens``).
Prompts without special-token strings get exactly the ids they always got.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from latent_graph.engine.prompt.literal import backends
from latent_graph.errors import BatchSizeMismatchError, EmptyPromptError, InvalidArgumentError

_PROMPT, _SYSTEM = "\u2063P\u2063", "\u2063S\u2063"  # stand-ins for user text while rendering

Spans = list[tuple[int, int]]


def format_prompt(tokenizer: Any, prompt: str, system: str | None, first: bool, **options: bool) -> str:
    """Chat-format one agent turn: the text of :func:`render_prompt` (same arguments)."""
    return render_prompt(tokenizer, prompt, system, first, **options)[0]


def render_prompt(
    tokenizer: Any,
    prompt: str,
    system: str | None,
    first: bool,
    *,
    after_open_turn: bool = True,
    generation: bool = True,
) -> tuple[str, Spans]:
    """Chat-format one agent turn; returns (text, character spans of user-supplied text in it).

    The spans are found by rendering the template once more with stand-ins for the user text.

    Args:
        tokenizer: Tokenizer with (or without) a chat template.
        prompt: The agent's prompt (user turn).
        system: Optional system message.
        first: True when the cache is empty (the turn starts the conversation).
        after_open_turn: The cache ends inside an assistant turn (latent thoughts or
            text) that must be closed first.
        generation: Open an assistant turn after the prompt (for latent steps or decoding);
            an agent with 0 latent steps leaves it closed so no empty reply is recorded.
    """
    if not isinstance(prompt, str):
        raise InvalidArgumentError(f"agent prompt must be a string, got {type(prompt).__name__}")
    if system is not None and not isinstance(system, str):
        raise InvalidArgumentError(f"system message must be a string or None, got {type(system).__name__}")
    _check_unicode(prompt, "agent prompt")
    if system is not None:
        _check_unicode(system, "system message")
    if not prompt.strip():
        raise EmptyPromptError("agent prompt is empty; every agent needs a non-empty prompt")
    plain = _render(tokenizer, prompt, system, first, after_open_turn, generation)
    marked = _render(tokenizer, _PROMPT, _SYSTEM if system else None, first, after_open_turn, generation)
    return fill_markers(plain, marked, {_PROMPT: prompt, _SYSTEM: system or ""})


def fill_markers(plain: str, marked: str, fills: dict[str, str]) -> tuple[str, Spans]:
    """(text, spans of the filled-in user text): ``marked`` with its stand-ins replaced by ``fills``."""
    for strip in (False, True):  # templates that trim message content
        text, spans = _fill(marked, fills, strip)
        if text == plain:
            return text, spans
    return _fill(marked, fills, False)  # a template that rewrites user text: keep it literal


def _check_unicode(text: str, what: str) -> None:
    """Refuse text no tokenizer can read (a lone surrogate such as ``"\\ud800"``, legal in JSON escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{what} is not valid Unicode text: lone surrogate {text[exc.start]!r} at index {exc.start}"
        ) from None


def _fill(marked: str, fills: dict[str, str], strip: bool) -> tuple[str, Spans]:
    parts = re.split("(" + "|".join(re.escape(k) for k in fills) + ")", marked)
    text, spans = "", []
    for i, part in enumerate(parts):
        if i % 2:
            value = fills[part].strip() if strip else fills[part]
            spans.append((len(text), len(text) + len(value)))
            part = value
        text += part
    return text, spans


def _render(
    tokenizer: Any, prompt: str, system: str | None, first: bool, after_open_turn: bool, generation: bool
) -> str:
    if getattr(tokenizer, "chat_template", None):
        if not first:
            cont = _continuation(tokenizer, f"{system}\n\n{prompt}" if system else prompt, generation)
            if cont is not None:
                close, turn = cont
                return (close if after_open_turn else "") + turn
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        text = str(tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False))
        bos = tokenizer.bos_token
        if not first and bos and text.startswith(bos):
            text = text[len(bos) :]  # BOS belongs at the start of the cache only
        return text
    head = f"System: {system}\n" if system else ""
    bos = tokenizer.bos_token if first and tokenizer.bos_token else ""
    sep = "" if first else "\n"
    return bos + sep + head + f"User: {prompt}" + ("\nAssistant:" if generation else "")


# ------------------------------------------------------------ tokenizing
def markup_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's special and added tokens (the ones only template markup may produce), whether or
    not the tokenizer marks them special: Qwen2.5's tool tags are ordinary added tokens."""
    ids = {int(i) for i in getattr(tokenizer, "all_special_ids", []) or []}
    ids.update(int(tid) for tid in (getattr(tokenizer, "added_tokens_decoder", None) or {}))
    return ids


def _literal(tokenizer: Any, text: str) -> list[int]:
    """Ids of ``text`` with special-token strings split into ordinary tokens (slow tokenizers: per-call option)."""
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def _overlaps(start: int, end: int, spans: Spans) -> bool:
    return any(start < b and end > a for a, b in spans)


def encode_turn(tokenizer: Any, text: str, spans: Spans) -> list[int]:
    """Token ids of a rendered turn; special tokens only from outside the user-text ``spans``.

    Fast tokenizers are read through private backend copies (:mod:`latent_graph.engine.prompt.literal`),
    never through the shared tokenizer's switchable ``split_special_tokens`` flag, so
    concurrent threads cannot see each other's setting.
    """
    pair = backends(tokenizer)
    if pair is None:  # slow tokenizer, no offsets: tokenize template and user pieces apart
        out: list[int] = []
        pos = 0
        for a, b in spans:
            out += tokenizer(text[pos:a], add_special_tokens=False)["input_ids"] if a > pos else []
            out += _literal(tokenizer, text[a:b])
            pos = b
        return out + (tokenizer(text[pos:], add_special_tokens=False)["input_ids"] if pos < len(text) else [])
    ids, offsets = pair.encode(text)
    markup = markup_ids(tokenizer)
    if not any(t in markup and _overlaps(s, e, spans) for t, (s, e) in zip(ids, offsets)):
        return ids  # the common case: exactly the ids of the whole text
    out, pos = [], 0
    for t, (s, e) in zip(ids, offsets):
        if t in markup and not _overlaps(s, e, spans):  # real template markup
            out += pair.encode_literal(text[pos:s]) + [t]
            pos = e
    return out + pair.encode_literal(text[pos:])


def _continuation(tokenizer: Any, prompt: str, generation: bool) -> tuple[str, str] | None:
    """(text closing the previous assistant turn, a new user turn with ``prompt``).

    Found by rendering a two-turn chat with and without the new turn and taking the
    difference; None when the template does not render that way (then a full turn is used).
    """
    a, b = "\u2063A\u2063", "\u2063B\u2063"  # markers that no template rewrites
    history = [{"role": "user", "content": a}, {"role": "assistant", "content": b}]
    try:
        head = str(tokenizer.apply_chat_template(history, tokenize=False))
        full = str(
            tokenizer.apply_chat_template(
                [*history, {"role": "user", "content": prompt}], add_generation_prompt=generation, tokenize=False
            )
        )
    except Exception:
        return None
    if b not in head or not full.startswith(head):
        return None
    return head[head.rindex(b) + len(b) :], full[len(head) :]


def pad_id(tokenizer: Any) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def prompt_list(prompt: Any, batch: int | None = None) -> list[str]:
    """One prompt per batch row: ``prompt`` (a string, broadcast to ``batch`` rows, or a list) checked."""
    if not isinstance(prompt, (str, list, tuple)):  # a dict would silently become its keys
        raise InvalidArgumentError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise BatchSizeMismatchError("no prompts given")
    if batch is not None and len(prompts) != batch:
        if len(prompts) == 1:
            return prompts * batch
        raise BatchSizeMismatchError(f"{len(prompts)} prompts for a handle of batch size {batch}")
    return prompts


def prompt_rows(
    tokenizer: Any,
    prompts: list[str],
    system: str | None,
    first: bool,
    *,
    after_open_turn: bool = True,
    generation: bool = True,
) -> list[list[int]]:
    """Chat-format and tokenize one turn per prompt (user text literal): token ids per row, unpadded."""
    rows = []
    for p in prompts:
        text, spans = render_prompt(tokenizer, p, system, first, after_open_turn=after_open_turn, generation=generation)
        rows.append(encode_turn(tokenizer, text, spans))
    return rows


def encode_prompts(
    tokenizer: Any,
    prompts: list[str],
    system: str | None,
    first: bool,
    device: torch.device,
    *,
    after_open_turn: bool = True,
    generation: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prompt_rows` left-padded: ``input_ids`` (B, n) and ``mask`` (B, n), mask 1 for real tokens."""
    rows = prompt_rows(tokenizer, prompts, system, first, after_open_turn=after_open_turn, generation=generation)
    return left_pad(rows, pad_id(tokenizer), device)


def left_pad(ids: list[list[int]], pid: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id rows: ``input_ids`` (B, n) and ``mask`` (B, n), mask 1 for real tokens."""
    n = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), n), pid, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for b, row in enumerate(ids):
        if row:
            input_ids[b, n - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[b, n - len(row) :] = 1
    return input_ids.to(device), mask.to(device)
