"""Typed trace records: one :class:`NodeRecord` per executed node, written once by the node that ran.

Every count has one unit, stated per field: token counts are lists with one
entry per batch row (question), so readers sum them without guessing;
``latent_steps`` and ``kv_len`` are the same for every row and stored once.
"""

import time
import uuid
from typing import Any, Literal

from typing_extensions import NotRequired, TypedDict

from latent_graph.engine import LatentHandle

Sends = Literal["latent", "text", "answer"]
"""What a node passes on: its handle (latent edge), a message (text edge) or the final answer."""


class StepRecord(TypedDict):
    """One latent step of one node."""

    step: int
    """0-based step index."""
    norm: list[float]
    """L2 norm of the hidden state the step started from, per row."""
    nearest: NotRequired[list[list[str]]]
    """With ``inspect=k``: the k input tokens nearest the realigned vector, per row."""
    cosine: NotRequired[list[float]]
    """With ``inspect=k``: cosine of the nearest token, per row."""
    lens: NotRequired[list[list[list[str | float]]]]
    """With ``inspect=k``: logit-lens top-k ``[token, probability]`` of the hidden state, per row."""


class ToolTurnRecord(TypedDict):
    """One tool call a latent agent made and the turn its result became (see :mod:`latent_graph.nodes.tools`)."""

    round: int
    """0-based tool round of the node run (one decoded reply of calls per round)."""
    name: str
    """The tool called."""
    arguments: dict[str, Any]
    """The arguments decoded for it (a JSON object)."""
    id: str
    """The call's id."""
    result: str
    """The text that entered the cache as the tool turn (an error's text when the call failed)."""
    error: NotRequired[str]
    """Set when the call failed (unknown tool, the tool raised, a non-text result, a call cut off): why."""


class NodeRecord(TypedDict):
    """What one node run did (JSON-serialisable)."""

    node: str
    """Node (agent) name."""
    kind: Sends
    """What the node passed on."""
    rows: int
    """Batch rows (questions) it ran on."""
    start: float
    """Start time, seconds since the epoch."""
    end: float
    """End time, seconds since the epoch."""
    wall_s: float
    """Wall seconds of the whole node run (all rows together)."""
    prompt_tokens: list[int]
    """Real (unpadded) prompt tokens fed, per row."""
    latent_steps: int
    """Latent steps taken, per row (every row takes the same number)."""
    generated_tokens: list[int]
    """Text tokens generated, per row."""
    kv_len: int
    """Cache columns of the handle it produced (padding included; the same for every row); 0 if none."""
    handle_bytes_before: int
    """Bytes of the handle it read (all rows); 0 if none."""
    handle_bytes_after: int
    """Bytes of the handle it produced (all rows); 0 if none."""
    memory: str
    """Memory policy applied to the handle it read."""
    steps: list[StepRecord]
    """Per latent step records."""
    prompts: list[str]
    """The composed prompt, per row."""
    id: NotRequired[str]
    """Unique id of this record (the ``trace`` reducer keeps a record once, even when a subgraph returns it again)."""
    graph_node: NotRequired[str]
    """The LangGraph node it ran as (differs from ``node`` when one graph node runs a renamed agent)."""
    branch: NotRequired[str]
    """Its branch key: ``node``, or ``node[i]`` for the i-th ``Send`` task."""
    turn: NotRequired[int]
    """The thread's turn it was written in (the ``trace`` reducer keeps the newest turn only)."""
    kv_kept: NotRequired[int]
    """With a compressed edge (``kv_keep < 1`` or ``kv_budget``): real columns of the handle it passed on, all rows."""
    kv_total: NotRequired[int]
    """With a compressed edge: real columns that handle held before any column was dropped, all rows."""
    converted: NotRequired[str]
    """Set when a latent edge was turned into a text edge on the way in (the reason)."""
    tool_turns: NotRequired[list[list[ToolTurnRecord]]]
    """A tool-using agent: its tool calls and their results, per row (rows that called nothing have ``[]``)."""
    tool_rounds: NotRequired[int]
    """A tool-using agent: tool rounds it ran (at most its ``max_tool_rounds``)."""
    tool_tokens: NotRequired[list[int]]
    """A tool-using agent: tokens of its tool-call replies and tool turns fed into its cache, per row."""


def node_record(
    *,
    node: str,
    kind: Sends,
    start: float,
    before: LatentHandle | None,
    after: LatentHandle | None,
    prompt_tokens: list[int],
    latent_steps: int,
    generated_tokens: list[int],
    memory: str,
    steps: list[StepRecord],
    prompts: list[str],
    task: dict[str, str] | None = None,
) -> NodeRecord:
    """Build the record at the end of a node run (the end time is now); ``task`` adds graph_node/branch."""
    end = time.time()
    record = NodeRecord(
        node=node,
        kind=kind,
        rows=len(prompts),
        start=start,
        end=end,
        wall_s=round(end - start, 4),
        prompt_tokens=list(prompt_tokens),
        latent_steps=latent_steps,
        generated_tokens=list(generated_tokens),
        kv_len=after.seq_len if after is not None else 0,
        handle_bytes_before=before.nbytes if before is not None else 0,
        handle_bytes_after=after.nbytes if after is not None else 0,
        memory=memory,
        steps=steps,
        prompts=list(prompts),
        id=uuid.uuid4().hex,
    )
    record.update(task or {})  # type: ignore[typeddict-item]
    return record


def prompt_tokens_of(handle: LatentHandle) -> list[int]:
    """Real tokens per row of the newest prompt segment of ``handle`` (the prompt of the call that built it)."""
    seg = next(s for s in reversed(handle.segments) if s.kind == "prompt")
    return [int(x) for x in handle.attention_mask[:, seg.start : seg.end].sum(dim=1)]
