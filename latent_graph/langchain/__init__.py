"""LangChain faces of the engine: a ``Runnable`` and a ``BaseChatModel``, built on its public API only."""

from latent_graph.langchain.chat_model import LatentChatModel, as_chat_model
from latent_graph.langchain.runnable import LatentRunnable

__all__ = ["LatentChatModel", "LatentRunnable", "as_chat_model"]
