"""A LangGraph Server ``auth`` handler: bearer tokens to users, each user's threads and handles their own.

Name it in ``langgraph.json`` beside the graphs::

    "auth": {"path": "latent_graph/graphs/studio_auth.py:auth"}

and give the server ``$LATENT_GRAPH_STUDIO_TOKENS`` (``token:user`` pairs separated by commas; tokens of at least
32 characters) and the deployment key ``$LATENT_GRAPH_KEYS`` (:mod:`latent_graph.persist.keys`). Every request needs
``Authorization: Bearer <token>``. The server then records the user in every run's
``configurable["langgraph_auth_user_id"]`` (a key clients cannot set), which the handle store reads as the run's
namespace (:func:`latent_graph.persist.sealing.namespace_of`): a handle reference of another user does not resolve,
and the ``@auth.on.threads`` rule below keeps each user to the threads (and their runs) they created - the way
LangGraph scopes resources. A deployment with an identity provider writes its own ``authenticate`` the same way;
the namespace follows whatever identity it returns.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from langgraph_sdk import Auth

__all__ = ["ENV_TOKENS", "auth"]

ENV_TOKENS = "LATENT_GRAPH_STUDIO_TOKENS"
MIN_TOKEN_CHARS = 32

auth = Auth()


def _tokens() -> dict[str, str]:
    pairs = [p.strip().rsplit(":", 1) for p in os.environ.get(ENV_TOKENS, "").split(",") if p.strip()]
    return {token: user for token, user in (p for p in pairs if len(p) == 2) if len(token) >= MIN_TOKEN_CHARS and user}


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    """The user whose token the request bears (compared in constant time); 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token:
        for known, user in _tokens().items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                return {"identity": user}
    raise Auth.exceptions.HTTPException(status_code=401, detail="a valid 'Authorization: Bearer <token>' is required")


@auth.on.threads
async def owner_only(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    """Stamp the threads a user creates with them as owner, and let them see and run only those (their runs and
    state included); the graphs' assistants stay readable by every user."""
    if isinstance(value, dict):
        if value.get("metadata") is None:
            value["metadata"] = {}
        if isinstance(value["metadata"], dict):
            value["metadata"]["owner"] = ctx.user.identity  # in place: the server stores the dict it passed
    return {"owner": ctx.user.identity}
