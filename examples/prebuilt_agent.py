"""Example — LangChain's prebuilt agent on a local model: a tool call, a structured answer, tokens as they decode.

    model --weather(city)--> tools --"rainy, 9 C"--> model --> Forecast(city, sky, umbrella)

``as_chat_model(model)`` is a LangChain chat model whose profile declares tool calling and structured output, so
``create_agent(chat, [weather], response_format=Forecast)`` takes LangChain's native structured-output route: the
reply to the user is a ``weather`` call (decoded under the tool-call grammar), the reply to the tool's result is
JSON decoded under ``Forecast``'s schema, parsed into ``structured_response``. In ``stream_mode="messages"`` the
call arrives as ``tool_call_chunks`` and the answer token by token. A reply cut by ``max_new_tokens`` says so
(``finish_reason="length"`` and a warning; a cut call is an ``invalid_tool_calls`` entry, never a guessed call).

Run: ``python examples/prebuilt_agent.py`` (uses the embedded default model).
"""

from typing import Any, Literal

from langchain.agents import create_agent
from pydantic import BaseModel

from latent_graph import LocalLatentModel
from latent_graph.langchain import as_chat_model

QUESTION = "Do I need an umbrella in Oslo today?"


def weather(city: Literal["oslo", "rome", "paris"]) -> str:
    """Today's weather in a city."""
    return {"oslo": "rainy, 9 C", "rome": "sunny, 24 C", "paris": "cloudy, 15 C"}[city]


class Forecast(BaseModel):
    city: Literal["oslo", "rome", "paris"]
    sky: Literal["sunny", "cloudy", "rainy"]
    umbrella: bool


def main(model: LocalLatentModel | None = None, max_new_tokens: int = 64, **_other: Any) -> dict[str, Any]:
    """Stream the agent's messages (tool call, tool result, answer tokens); print the structured response.

    ``max_new_tokens`` bounds each model reply; the other example options (``steps``) do not apply to a prebuilt agent.
    """
    model = model or LocalLatentModel.default()
    agent = create_agent(as_chat_model(model, max_new_tokens=max_new_tokens), [weather], response_format=Forecast)
    tokens, calls, state = [], [], {}
    for mode, data in agent.stream({"messages": [("user", QUESTION)]}, stream_mode=["messages", "values"]):
        if mode == "values":
            state = data
            continue
        message, meta = data
        if meta["langgraph_node"] != "model":  # the tool's result
            print(f"\n[{meta['langgraph_node']}] {message.content}")
        for call in getattr(message, "tool_call_chunks", []):
            calls.append(call["name"])
            print(f"[call] {call['name']}({call['args']})")
        if message.content and meta["langgraph_node"] == "model":
            tokens.append(message.content)
            print(message.content, end="|", flush=True)
    print(f"\nstructured_response: {state.get('structured_response')!r}")
    print(f"finish_reason: {state['messages'][-1].response_metadata.get('finish_reason')}")
    return {"tokens": tokens, "calls": calls, "state": state}


if __name__ == "__main__":
    main()
