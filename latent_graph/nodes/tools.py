"""ToolAgentNode: a latent agent that may call tools, reads their results as a tool turn, and goes on thinking.

One run, for every batch row at once (each row decodes, calls and reads its own tools):

1. the agent's prompt (the tool list in its turn's system text,
   :func:`~latent_graph.engine.tools_system_text`) is prefilled on top of the incoming
   handle and the agent decodes a reply under the tool-call grammar
   (:func:`~latent_graph.engine.tool_call_constraint`): ``tool_choice="any"`` (default)
   forces a call, a tool's name forces a call of that tool, ``"auto"`` lets the model reply text instead;
2. the node runs each row's calls (:class:`~latent_graph.nodes.toolbox.Toolbox`: your ``ToolNode``, or
   one built from your tools and plain functions) and the results enter the cache as a tool turn through
   the chat template (the model's ``decode_after_tools`` / ``think_after_tools``; result text literal): a
   ``tool`` segment;
3. up to ``max_tool_rounds`` rounds: after a tool turn the agent decodes its next reply (a call or text,
   ``auto``); a row that replied text is done (it decodes nothing more);
4. then its ``steps`` latent steps on top of everything, and its handle goes on as usual.

Bad inputs, decided here: a failed call never loses the run by default (``tool_errors="record"``): an
unknown tool name, a tool that raises, a result that is not text (a ``Command``, non-text content, an
object that is no JSON value) or a call cut off by ``tool_call_tokens`` becomes an error tool turn
(``"Error: ..."``) that the agent reads, recorded in the trace with its ``error``. ``tool_errors="raise"``
raises :class:`~latent_graph.errors.ToolCallError` instead. A call is bounded before and while it runs
(:class:`~latent_graph.nodes.toolbox.ToolLimits`): arguments that do not validate against the tool's schema never
reach the tool, a round of calls has a timeout and a result a size cap (named subclasses of ``ToolCallError``);
only calls in the declared form, at the start of a reply, run (a ``<tool_call>`` block inside text is text).
Rounds are bounded by construction: after the
last round's results the agent takes its latent steps and decodes nothing more, so a model that keeps
calling cannot exceed ``max_tool_rounds`` (an int in [1, :data:`MAX_TOOL_ROUNDS`], else
:class:`~latent_graph.errors.InvalidArgumentError`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.errors import GraphBubbleUp

from latent_graph.engine import (
    Constraint,
    DecodeOptions,
    LatentHandle,
    kept_total,
    observing,
    parse_tool_calls,
    tool_call_constraint,
    tools_system_text,
)
from latent_graph.errors import InvalidArgumentError, ToolCallError
from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.nodes.streaming import emitter
from latent_graph.nodes.toolbox import Outcome, Toolbox, ToolLimits
from latent_graph.state.edges import sends_metadata
from latent_graph.state.trace import StepRecord, ToolTurnRecord, prompt_tokens_of

MAX_TOOL_ROUNDS = 8
"""The most tool rounds one agent run may be given."""
DONE = Constraint.ebnf('root ::= ""')
"""The reply of a row that is done with tools (it replied text in an earlier round): nothing."""


@dataclass
class ToolAgentNode(LatentAgentNode):
    """A :class:`~latent_graph.nodes.latent.LatentAgentNode` that may call tools first (see the module docstring).

    Attributes:
        tools: A LangGraph ``ToolNode``, or a list of LangChain tools and plain functions.
        tool_choice: ``any`` (first reply must call), a tool's name (must call that one), ``auto`` (may reply
            text), ``none`` (tools off: a plain latent agent).
        max_tool_rounds: Most rounds of calls one run decodes (each round: one reply, then its tool turn).
        tool_call_tokens: Token budget of each decoded reply.
        parallel_tool_calls: Allow several calls in one reply (identical repeats run once).
        tool_errors: ``record`` a failed call as an error tool turn, or ``raise`` ToolCallError (its subclass
            ToolArgumentsError, ToolTimeoutError or ToolResultTooLargeError where one applies).
        tool_limits: Timeout and result-size cap of the calls (:class:`~latent_graph.nodes.toolbox.ToolLimits`).
    """

    tools: Any = field(default_factory=list)
    tool_choice: str = "any"
    max_tool_rounds: int = 1
    tool_call_tokens: int = 64
    parallel_tool_calls: bool = False
    tool_errors: Literal["record", "raise"] = "record"
    tool_limits: ToolLimits = field(default_factory=ToolLimits)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tool_errors not in ("record", "raise"):
            raise InvalidArgumentError(f"tool_errors must be 'record' or 'raise', got {self.tool_errors!r}")
        rounds = self.max_tool_rounds
        if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_TOOL_ROUNDS:
            raise InvalidArgumentError(f"max_tool_rounds must be an int in [1, {MAX_TOOL_ROUNDS}], got {rounds!r}")
        budget = self.tool_call_tokens
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 8:
            raise InvalidArgumentError(f"tool_call_tokens must be an int >= 8, got {budget!r}")
        self.toolbox = Toolbox(self.tools, catch=self.tool_errors == "record", limits=self.tool_limits)
        names = self.toolbox.names
        if self.tool_choice not in ("auto", "any", "none") and self.tool_choice not in names:
            raise InvalidArgumentError(
                f"tool_choice {self.tool_choice!r} names no tool of agent {self.name!r}; tools: {names}"
            )
        self.decode_opts = DecodeOptions(max_new_tokens=budget)

    @property
    def metadata(self) -> dict[str, Any]:
        """As a latent agent's, plus the names of its tools (drawings show them beside the node)."""
        return sends_metadata(self.sends, None, self.branch, tools=self.toolbox.names if self.calls_tools else ())

    @property
    def calls_tools(self) -> bool:
        return bool(self.toolbox.names) and self.tool_choice != "none"

    # ------------------------------------------------------------ one run
    def think(
        self, before: LatentHandle | None, state: dict[str, Any], start: float | None = None, config: Any = None
    ) -> dict[str, Any]:
        if not self.calls_tools:
            return super().think(before, state, start, config)
        start = time.time() if start is None else start
        prompts = self.prompts(state)
        b = len(prompts)
        log: list[StepRecord] = []
        turns: list[list[ToolTurnRecord]] = [[] for _ in range(b)]
        specs, parallel = self.toolbox.specs, self.parallel_tool_calls
        later = tool_call_constraint(specs, "auto", parallel)
        with observing(self.model, self.kv) as seen:
            d = self.model.decode(
                before,
                prompts,
                agent=self.name,
                memory=self.memory,
                system=tools_system_text(specs),
                constraint=tool_call_constraint(specs, self.tool_choice, parallel),
                **self.decode_opts.as_dict(),
            )
            generated = list(d.new_tokens)
            pending: list[list[str]] = [[] for _ in range(b)]
            live, rounds = [True] * b, 0
            for k in range(self.max_tool_rounds):
                calls = [self._calls(t) if live[r] else [] for r, t in enumerate(d.texts)]
                live = [bool(c) for c in calls]
                if not any(live):
                    break
                rounds += 1
                pending = self._run(calls, k, turns, config)
                if k + 1 == self.max_tool_rounds:
                    break  # the last round: its results go in, then latent steps (no further reply)
                d = self.model.decode_after_tools(
                    d.handle,
                    pending,
                    self.decode_opts,
                    agent=self.name,
                    constraint=[later if on else DONE for on in live],
                )
                generated = [g + n for g, n in zip(generated, d.new_tokens)]
                pending = [[] for _ in range(b)]
            after = self.model.think_after_tools(
                d.handle, pending, self.steps, agent=self.name, on_step=self.step_callback(log, config)
            )
        tokens = prompt_tokens_of(after)
        tool_tokens = self._tool_tokens(before, after)
        after = self.edge(before, after, seen)
        record = self.latent_record(config, start, before, after, tokens, generated, log, prompts)
        record.update(tool_turns=turns, tool_rounds=rounds, tool_tokens=tool_tokens)
        if self.kv.active:
            record["kv_kept"], record["kv_total"] = kept_total(after)
        return {**self.consumed(state), **self.output(after, config, state), "trace": [self.in_turn(record, state)]}

    # ------------------------------------------------------------ helpers
    def _calls(self, text: str) -> list[dict[str, Any]]:
        """The calls of one decoded reply (identical repeats once; one unless parallel); a cut-off call is an error."""
        _, found = parse_tool_calls(text)
        calls, seen = [], set()
        for c in found:
            key = (c["name"], repr(sorted(c["arguments"].items())))
            if key not in seen:
                seen.add(key)
                calls.append({**c, "id": f"call_{uuid.uuid4().hex[:24]}"})
        if not calls and text.lstrip().startswith("<tool_call>"):
            why = f"the tool call was cut off by the token budget (tool_call_tokens={self.tool_call_tokens})"
            return [{"name": "", "arguments": {}, "id": f"call_{uuid.uuid4().hex[:24]}", "error": why}]
        return calls if self.parallel_tool_calls else calls[:1]

    def _run(
        self, calls: list[list[dict[str, Any]]], k: int, turns: list[list[ToolTurnRecord]], config: Any
    ) -> list[list[str]]:
        """Run every row's calls (one ToolNode batch); record them; the result texts per row."""
        flat = [c for row in calls for c in row if "error" not in c]
        try:
            done = iter(self.toolbox.run(flat, config))
        except GraphBubbleUp:  # an interrupt() inside a tool: LangGraph's to handle
            raise
        except Exception as exc:  # only with tool_errors="raise": the tool's own exception
            raise ToolCallError(f"agent {self.name!r}: a tool call failed: {type(exc).__name__}: {exc}") from exc
        emit = emitter(config)
        results: list[list[str]] = []
        for r, row in enumerate(calls):
            texts = []
            for c in row:
                out = Outcome(f"Error: {c['error']}", c["error"]) if "error" in c else next(done)
                if out.error is not None and self.tool_errors == "raise":
                    raise out.kind(f"agent {self.name!r} row {r}: tool call {c['name']!r} failed: {out.error}")
                rec = ToolTurnRecord(round=k, name=c["name"], arguments=c["arguments"], id=c["id"], result=out.text)
                if out.error is not None:
                    rec["error"] = out.error
                turns[r].append(rec)
                texts.append(out.text)
                emit({"event": "tool_turn", "node": self.name, "row": r, **rec})
            results.append(texts)
        return results

    def _tool_tokens(self, before: LatentHandle | None, after: LatentHandle) -> list[int]:
        """Real tokens per row of the tool turns this run wrote (its ``tool`` segments)."""
        read = 0 if before is None else len(before.with_memory(self.memory).segments)
        mask = after.attention_mask
        total = [0] * after.batch_size
        for s in after.segments[read:]:
            if s.kind == "tool" and s.agent == self.name:
                total = [t + int(x) for t, x in zip(total, mask[:, s.start : s.end].sum(dim=1))]
        return total
