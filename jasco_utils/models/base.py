"""The one contract every model follows, judge or ALLM: conversations in, responses out.

A backend takes a batch of conversations (OpenAI-style chat messages; a message's content is
a string or a list of parts, ``{"type": "text", ...}`` or ``{"type": "input_audio", ...}``)
and returns, per conversation, a :class:`Response`: the text, the messages actually sent and
metadata (engine, model, timing, token counts, finish reason). A failure is a response with
``error`` set and no text: the caller counts it and never stores it as a result.
"""

from __future__ import annotations

import abc
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jasco_utils.models.spec import SamplingConfig

Message = dict[str, Any]
Conversation = list[Message]
#: Called with (index in the batch, response) as each response finishes: a caller stores
#: results and moves progress bars as they arrive.
ResultCallback = Callable[[int, "Response"], None]


class EngineError(RuntimeError):
    """An engine cannot be used at all (not installed, model not found, bad settings)."""


@dataclass(frozen=True)
class StructuredOutput:
    """A constraint on the answer's form, applied by the engine while decoding.

    Exactly one of ``regex`` and ``json_schema`` is set.
    """

    regex: str | None = None
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.regex is None) == (self.json_schema is None):
            raise ValueError("StructuredOutput needs exactly one of regex and json_schema")

    def as_dict(self) -> dict[str, Any]:
        return {"regex": self.regex} if self.regex is not None else {"json_schema": self.json_schema}


@dataclass
class Response:
    """One conversation's outcome.

    Attributes:
        text: The generated text ("" on failure).
        messages: The messages actually sent.
        metadata: Engine, model, finish reason, token counts, latency, timestamps.
        error: Why it failed, or ``None``.
    """

    text: str
    messages: Conversation
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A usable result: no error and some text."""
        return self.error is None and bool(self.text.strip())


def audio_digest(part: Message) -> str:
    """SHA-256 of an ``input_audio`` part's data (its base64 text)."""
    data = part.get("input_audio", {}).get("data", "")
    return hashlib.sha256(data.encode("ascii")).hexdigest()


def canonical_messages(messages: Sequence[Message]) -> list[Message]:
    """Messages with audio data replaced by its SHA-256, for keys and logs.

    >>> canonical_messages([{"role": "user", "content": [
    ...     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])[0]["content"][0]["input_audio"]
    {'sha256': '63c1dd951ffedf6f7fd968ad4efa39b8ed584f162f46e715114ee184f8de9201', 'format': 'wav'}
    """
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                if p.get("type") == "input_audio":
                    p = {
                        "type": "input_audio",
                        "input_audio": {"sha256": audio_digest(p), "format": p["input_audio"].get("format")},
                    }
                parts.append(p)
            m = {**m, "content": parts}
        out.append(m)
    return out


def request_key(
    identity: dict[str, Any],
    sampling: SamplingConfig,
    messages: Sequence[Message],
    structured: StructuredOutput | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The cache key: SHA-256 of everything that determines a response.

    Args:
        identity: The backend's :attr:`Backend.identity` (engine, model, revision, and the
            settings that change outputs such as dtype).
        sampling: Sampling settings.
        messages: The full conversation (audio hashed by content).
        structured: A decoding constraint, if any.
        extra: Anything else that determines the output, e.g. the prompt template's id and hash.
    """
    payload = {
        "identity": identity,
        "sampling": sampling.as_dict(),
        "messages": canonical_messages(messages),
        "structured": structured.as_dict() if structured else None,
        "extra": extra or {},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def now_iso() -> str:
    """UTC time, ISO 8601 with milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class Backend(abc.ABC):
    """A model behind an engine. Subclasses implement :meth:`_generate`.

    Attributes:
        engine: The engine's name in :data:`jasco_utils.models.ENGINES`.
        takes_audio: Whether conversations may hold audio parts.
        model: The model id (hub id, path, or served name).
        revision: The model revision when known.
    """

    engine: ClassVar[str] = ""
    #: Whether the engine takes ``input_audio`` parts (an ALLM can run on it).
    takes_audio: ClassVar[bool] = True
    #: Only rates answers from a judge prompt (not a general text model: no cascade's text LLM).
    judge_only: ClassVar[bool] = False
    #: The kinds of :class:`StructuredOutput` the engine can apply (``regex``, ``json``).
    structured_kinds: ClassVar[tuple[str, ...]] = ("regex", "json")

    def __init__(self, model: str, revision: str | None = None) -> None:
        self.model = model
        self.revision = revision

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        """Options accepted besides the constructor's named keywords (passed on to the engine)."""
        return ()

    @property
    def engine_version(self) -> str:
        """The engine's version string (recorded, not part of the cache key)."""
        return "unknown"

    def output_settings(self) -> dict[str, Any]:
        """Settings besides the model that change outputs (e.g. dtype); part of the key."""
        return {}

    @property
    def identity(self) -> dict[str, Any]:
        """What identifies the model and engine in cache keys."""
        return {"engine": self.engine, "model": self.model, "revision": self.revision, **self.output_settings()}

    def generate(
        self,
        conversations: Sequence[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[Response]:
        """Generate one response per conversation, in order.

        Never raises for a single conversation's failure: that response carries ``error``.

        Raises:
            EngineError: The engine cannot run at all.
        """
        if not conversations:
            return []
        return self._generate(list(conversations), sampling, structured, on_result)

    @abc.abstractmethod
    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]: ...

    def close(self) -> None:  # noqa: B027  (optional: most engines hold nothing to release)
        """Release the engine's memory (GPU memory for vLLM); nothing by default."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _metadata(self, **extra: Any) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "engine_version": self.engine_version,
            "model": self.model,
            "revision": self.revision,
            **extra,
        }
