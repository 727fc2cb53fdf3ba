"""Turn agent prompts into left-padded token batches using the tokenizer's own chat template.

No model-name checks: any tokenizer with a chat template works; one without a
template gets a plain ``System:/User:/Assistant:`` fallback.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.errors import EmptyPromptError

_FALLBACK = "{system}User: {prompt}\nAssistant:"


def format_prompt(tokenizer: Any, prompt: str, system: str | None, first: bool) -> str:
    """Chat-format one agent turn, ready for the assistant's reply (latent or text)."""
    if not prompt or not prompt.strip():
        raise EmptyPromptError("agent prompt is empty; every agent needs a non-empty prompt")
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        text = str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        bos = tokenizer.bos_token
        if not first and bos and text.startswith(bos):
            text = text[len(bos) :]  # BOS belongs at the start of the cache only
        return text
    head = f"System: {system}\n" if system else ""
    bos = tokenizer.bos_token if first and tokenizer.bos_token else ""
    return bos + _FALLBACK.format(system=head, prompt=prompt)


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
