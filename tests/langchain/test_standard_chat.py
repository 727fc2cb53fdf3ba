"""LangChain's standard chat-model suites (langchain-tests 1.1.9) against LatentChatModel on the default model.

Tool calling, tool choice, structured output (json_schema / function_calling / json_mode) and
usage metadata are declared present. Multimodal inputs stay declared absent (the default
model reads text only), so the suite itself skips those tests.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from latent_graph.engine import LocalLatentModel
from latent_graph.errors import TruncatedReplyError
from latent_graph.langchain import LatentChatModel

pytestmark = pytest.mark.integration


@lru_cache(maxsize=1)
def _engine() -> LocalLatentModel:
    return LocalLatentModel.default()


class _Params:
    @property
    def chat_model_class(self) -> type[LatentChatModel]:
        return LatentChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"engine": _engine()}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {**super().standard_chat_model_params, "max_tokens": 128}  # type: ignore[misc]  # room for a schema's JSON

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # one loaded engine: a per-call ``model=`` cannot swap it (traces still name it)


class TestLatentChatModelUnit(_Params, ChatModelUnitTests):
    pass


class TestLatentChatModelIntegration(_Params, ChatModelIntegrationTests):
    @pytest.mark.xfail(
        strict=True,
        raises=TruncatedReplyError,
        reason="the 135M model repeats inside Joke.setup ('A cat is a cat, a cat is ...') past max_tokens; the cut "
        "JSON is refused by name instead of being completed by LangChain's partial-JSON parser into a cut string",
    )
    def test_structured_output_optional_param(self, model: Any) -> None:
        super().test_structured_output_optional_param(model)


for _name in dir(TestLatentChatModelIntegration):  # the suite's async tests need pytest-asyncio's marker
    _fn = getattr(TestLatentChatModelIntegration, _name)
    if _name.startswith("test_") and inspect.iscoroutinefunction(_fn):
        setattr(TestLatentChatModelIntegration, _name, pytest.mark.asyncio(_fn))
