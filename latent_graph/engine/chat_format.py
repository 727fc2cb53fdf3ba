"""Turn agent prompts into left-padded token batches using the tokenizer's own chat template.

The first agent's prompt is a normal chat turn (system + user + assistant header).
A later agent continues the *same* conversation: the previous agent's assistant turn
(its latent thoughts) is closed and a new user turn opens, exactly as the template
would render a multi-turn chat. So a shared cache reads as one coherent dialogue
instead of several chats pasted together (repeated default system prompts and
unclosed assistant turns made small models echo the template).

No model-name checks: any tokenizer with a chat template works; one without a
template gets a plain ``System:/User:/Assistant:`` fallback.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.errors import EmptyPromptError

def format_prompt(
    tokenizer: Any,
    prompt: str,
    system: str | None,
    first: bool,
    *,
    after_open_turn: bool = True,
    generation: bool = True,
) -> str:
    """Chat-format one agent turn.

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
    if not prompt or not prompt.strip():
        raise EmptyPromptError("agent prompt is empty; every agent needs a non-empty prompt")
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


def _continuation(tokenizer: Any, prompt: str, generation: bool) -> tuple[str, str] | None:
    """(text closing the previous assistant turn, a new user turn with ``prompt``).

    Found by rendering a two-turn chat with and without the new turn and taking the
    difference; None when the template does not render that way (then a full turn is used).
    """
    a, b = "\u2063A\u2063", "\u2063B\u2063"  # markers that no template rewrites
    history = [{"role": "user", "content": a}, {"role": "assistant", "content": b}]
    try:
        head = str(tokenizer.apply_chat_template(history, tokenize=False))
        full = str(tokenizer.apply_chat_template(
            [*history, {"role": "user", "content": prompt}], add_generation_prompt=generation, tokenize=False
        ))
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


def encode_left_padded(
    tokenizer: Any, texts: list[str], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize ``texts`` without special tokens and left-pad them.

    Returns:
        ``input_ids`` (B, n) and ``mask`` (B, n), mask 1 for real tokens.
    """
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    n = max(len(x) for x in ids)
    pid = pad_id(tokenizer)
    input_ids = torch.full((len(ids), n), pid, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for b, row in enumerate(ids):
        if row:
            input_ids[b, n - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[b, n - len(row) :] = 1
    return input_ids.to(device), mask.to(device)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every end-of-sequence id the model's generation config, config or tokenizer names."""
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(src, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids
