"""Request and response shapes of the HTTP API, and strict validation against the server's limits.

Why here, separate from the app: the ingress validates every request *before*
it reaches a model replica (a replica never sees a malformed body), and the
result of validation — a frozen, hashable :class:`RunSettings` — is what
replicas group batches by: requests with different graph/edges/steps/sampling
settings never share one ``graph.invoke``. User text is only ever data: it is
checked for type and size and passed to the graph as a question or context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from latent_graph.engine import DecodeOptions
from latent_graph.errors import InvalidArgumentError, InvalidStepsError
from latent_graph.graphs import OPTION_NAMES, GraphOptions
from latent_graph.serve.config import ServeConfig
from latent_graph.serve.errors import InvalidRequestError

EDGE_KINDS = ("latent", "text")
MAX_EDGES = 16
MAX_NAME = 64

_D = DecodeOptions()

SERVER_OWNED: tuple[str, ...] = ("max_questions",)
"""GraphOptions a request may not set: the server sizes its batches by them (:attr:`ServeConfig.max_questions`)."""
SERVER_DEFAULTS: tuple[str, ...] = ("steps", "max_new_tokens", "task")
"""Options whose default a request leaves to the server (:class:`ServeConfig`); the others default as in
:class:`GraphOptions`."""
REQUEST_OPTIONS: tuple[str, ...] = tuple(n for n in OPTION_NAMES if n not in SERVER_OWNED)
"""The :class:`GraphOptions` fields every request may set (unset: the server's default)."""
_BOUNDS: dict[str, dict[str, Any]] = {
    "temperature": {"le": 2.0},
    "seed": {"ge": 0, "le": 2**63 - 1},
    "inspect": {"le": 20},
}
"""Request-only bounds tighter than GraphOptions' own checks (a JSON seed, a sane sampler, a small logit lens)."""


def _option_fields(names: tuple[str, ...]) -> dict[str, Any]:
    """Pydantic fields for ``names``: each GraphOptions field's type (its choices as a Literal) and help; None =
    unset. GraphOptions itself checks the values (:func:`settings_of`)."""
    hints = get_type_hints(GraphOptions)
    out: dict[str, Any] = {}
    for f in fields(GraphOptions):
        if f.name in names:
            choices = f.metadata.get("choices")
            kind = Literal[choices] if choices else hints[f.name]  # type: ignore[valid-type]
            out[f.name] = (kind | None, Field(default=None, description=f.metadata["help"], **_BOUNDS.get(f.name, {})))
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(min_length=1)
    context: str | None = None
    graph: str | None = None  # None: the server's default graph (ServeConfig.default_graph)
    edges: str | list[str] | dict[str, str] = "latent"


AnswerRequest = create_model(
    "AnswerRequest",
    __base__=_Strict,
    __module__=__name__,
    __doc__="Body of ``POST /v1/answer`` and ``POST /v1/stream``: the question, the graph "
    "and every GraphOptions field but the server-owned ones (unset: the server's "
    "defaults).",
    **_option_fields(REQUEST_OPTIONS),
)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: str


class _Chat(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=_D.temperature, ge=0.0, le=2.0)
    top_p: float = Field(default=_D.top_p, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    n: int = Field(default=1, ge=1, le=1)
    stream: Literal[False] = False
    edges: str | list[str] | dict[str, str] = "latent"  # latent_graph extension


CHAT_OPTIONS: tuple[str, ...] = tuple(
    n for n in REQUEST_OPTIONS if n not in _Chat.model_fields and n not in ("max_new_tokens", "task")
)
"""GraphOptions a chat request may set as latent_graph extensions (OpenAI's own fields cover the sampler and
the budget; a chat answers in plain text)."""

ChatRequest = create_model(
    "ChatRequest",
    __base__=_Chat,
    __module__=__name__,
    __doc__="The subset of OpenAI's chat-completions body we honour (other OpenAI fields are "
    "ignored), plus the GraphOptions extensions of :data:`CHAT_OPTIONS`.",
    **_option_fields(CHAT_OPTIONS),
)


@dataclass(frozen=True)
class RunSettings:
    """Everything that shapes a compiled graph; equal settings may share one batch."""

    graph: str
    edges: str  # canonical JSON of the edge spec (hashable)
    options: GraphOptions

    def edges_arg(self) -> Any:
        return json.loads(self.edges)

    def graph_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``build_<graph>`` but the server-owned ones (``single`` ignores edges)."""
        opts = {n: getattr(self.options, n) for n in REQUEST_OPTIONS}
        return {"edges": self.edges_arg(), **opts}

    def public(self) -> dict[str, Any]:
        return {"graph": self.graph, **self.graph_kwargs()}


def _fail(msg: str) -> InvalidRequestError:
    return InvalidRequestError(msg)


def _check_edges(edges: str | list[str] | dict[str, str]) -> str:
    kinds = [edges] if isinstance(edges, str) else list(edges.values()) if isinstance(edges, dict) else edges
    if isinstance(edges, (list, dict)) and not 1 <= len(edges) <= MAX_EDGES:
        raise _fail(f"edges: give 1..{MAX_EDGES} entries, got {len(edges)}")
    if isinstance(edges, dict) and any(not k or len(k) > MAX_NAME for k in edges):
        raise _fail(f"edges: agent names must be 1..{MAX_NAME} characters")
    bad = sorted({k for k in kinds if k not in EDGE_KINDS})
    if bad:
        raise _fail(f"edges: kinds must be one of {EDGE_KINDS}, got {[b[:MAX_NAME] for b in bad]}")
    return json.dumps(edges, sort_keys=True)


def settings_of(req: Any, cfg: ServeConfig) -> RunSettings:
    """Check ``req`` (an :data:`AnswerRequest`) against the server's limits; the settings it runs with."""
    graph = cfg.default_graph if req.graph is None else req.graph
    given = {n: getattr(req, n) for n in REQUEST_OPTIONS if getattr(req, n) is not None}
    values = {**{n: getattr(cfg, n) for n in SERVER_DEFAULTS}, **given, "max_questions": cfg.max_questions}
    tokens = max(values["max_new_tokens"], values.get("message_tokens", 0))
    checks = [
        (graph in cfg.graphs, f"graph: must be one of {list(cfg.graphs)}"),
        (len(req.question) <= cfg.max_question_chars, f"question: at most {cfg.max_question_chars} characters"),
        (
            req.context is None or len(req.context) <= cfg.max_context_chars,
            f"context: at most {cfg.max_context_chars} characters",
        ),
        (values["steps"] <= cfg.max_steps, f"steps: at most {cfg.max_steps}"),
        (tokens <= cfg.max_tokens_limit, f"max_new_tokens and message_tokens: at most {cfg.max_tokens_limit}"),
        (bool(req.question.strip()), "question: must not be blank"),
    ]
    for ok, msg in checks:
        if not ok:
            raise _fail(msg)
    try:
        options = GraphOptions(**values)  # the owner checks every value
    except (InvalidArgumentError, InvalidStepsError) as exc:
        raise _fail(str(exc)) from None
    return RunSettings(graph=graph, edges=_check_edges(req.edges), options=options)


def parse(model: type[BaseModel], body: Any) -> Any:
    """Validate a decoded JSON body into ``model``; schema errors become :class:`InvalidRequestError`."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise _fail(f"{where}: {first.get('msg', 'invalid')} ({exc.error_count()} error(s))") from None


def answer_request_of_chat(chat: Any, cfg: ServeConfig) -> Any:
    """Map an OpenAI chat request: last user message = question, system/earlier turns = private context.

    ``model`` picks a served graph by name (anything else runs the server's default graph).
    """
    users = [i for i, m in enumerate(chat.messages) if m.role == "user"]
    if not users:
        raise _fail("messages: need at least one user message")
    last = users[-1]
    earlier = [m for i, m in enumerate(chat.messages) if i != last]
    context = (
        "\n".join(m.content if m.role in ("system", "developer") else f"{m.role}: {m.content}" for m in earlier) or None
    )
    graph = chat.model if chat.model in cfg.graphs else cfg.default_graph
    extensions = {n: getattr(chat, n) for n in CHAT_OPTIONS}
    return parse(
        AnswerRequest,
        dict(
            question=chat.messages[last].content,
            context=context,
            graph=graph,
            edges=chat.edges,
            task="plain",
            **extensions,
            max_new_tokens=chat.max_completion_tokens or chat.max_tokens,
            temperature=chat.temperature,
            top_p=chat.top_p,
            seed=chat.seed,
        ),
    )


def chat_completion(result: dict[str, Any], model_name: str, created: int) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for one answered request."""
    usage = result.get("usage", {})
    return {
        "id": f"chatcmpl-{result['request_id']}",
        "object": "chat.completion",
        "created": created,
        "model": model_name,
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": result["answer"]}}
        ],
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("generated_tokens", 0),
            "total_tokens": usage.get("prompt_tokens", 0) + usage.get("generated_tokens", 0),
        },
        "latent_graph": {"graph": result["settings"]["graph"], "batch_size": result["batch_size"]},
    }


ROW_KEYS = ("prompts", "norm", "nearest", "cosine", "lens", "texts", "prompt_tokens", "generated_tokens")


def _row(value: Any, i: int, n: int) -> Any:
    """Keep row ``i`` of every per-row list (length ``n``) inside a trace record."""
    if isinstance(value, dict):
        return {
            k: ([_row(v[i], i, n)] if k in ROW_KEYS and isinstance(v, list) and len(v) == n else _row(v, i, n))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_row(v, i, n) for v in value]
    return value


def row_result(out: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    """Answer, text messages and trace of row ``i`` of a batched graph output."""
    trace = [{**_row(rec, i, n), "batch_size": n} for rec in out.get("trace", [])]
    messages = [{"agent": m["agent"], "text": m["texts"][i]} for m in out.get("transcript", []) if len(m["texts"]) == n]
    # node records count tokens per row: this row's usage is exact
    usage = {k: sum(rec[k][i] for rec in out.get("trace", [])) for k in ("prompt_tokens", "generated_tokens")}
    return {"answer": out["answers"][i], "messages": messages, "trace": trace, "usage": usage}
