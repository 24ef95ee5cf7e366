"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, or a hosted API.

Requests are spread round-robin over one or more base URLs (how users scale past one
machine), with bounded concurrency, a timeout per request, and bounded retries (tenacity) with
exponential backoff on HTTP 408, 409, 429, 5xx, timeouts and connection errors (a server's
``Retry-After`` is honoured, up to :data:`MAX_RETRY_AFTER_S`); then the response
carries a clear error (never a score). A body that is not a valid chat completion, or an
empty answer, is an error too. The API key is read from the environment variable named in
the configuration, never taken as a literal, and never logged or stored.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime
from typing import Any

import soundfile as sf
import tenacity

from jasco_utils.core.secrets import has_url_credentials, redact, register
from jasco_utils.models.base import (
    Backend,
    Conversation,
    EngineError,
    Response,
    ResultCallback,
    SamplingConfig,
    StructuredOutput,
    now_iso,
)

#: Key used when no key variable is configured (local servers accept any key).
NO_KEY = "EMPTY"
#: The ways an audio clip can be sent (:class:`OpenAIBackend`'s ``audio_part``).
AUDIO_PARTS: tuple[str, ...] = ("input_audio", "audio_url")
#: The longest ``Retry-After`` waited for; a server asking for more fails the request.
MAX_RETRY_AFTER_S = 300.0
#: The 4xx statuses retried (request timeout, conflict, too many requests), as the openai client does.
RETRIED_STATUS: frozenset[int] = frozenset({408, 409, 429})


def retry_after(err: Exception) -> float | None:
    """Seconds a server asked to wait before retrying (``Retry-After``: seconds or an HTTP
    date; or ``retry-after-ms``), from an error's response; ``None`` when it did not say.

    >>> import httpx
    >>> class E(Exception):
    ...     response = httpx.Response(429, headers={"Retry-After": "10"})
    >>> retry_after(E())
    10.0
    """
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class OpenAIBackend(Backend):
    """A model served behind an OpenAI-compatible ``/v1/chat/completions``.

    Args:
        model: The served model name.
        base_url: ``http://host:port/v1``, or a list of them to spread requests over.
        api_key_env: Name of the environment variable holding the API key; ``None`` for
            servers that need none. A named variable that is unset is an error.
        concurrency: Requests in flight at once (over all servers).
        timeout: Seconds per request.
        max_attempts: Attempts per request (1 = no retry).
        backoff: First retry delay in seconds; doubled each retry, with jitter, capped at 30 s.
        revision: Model revision when known (recorded and part of the cache key).
        audio_part: How a clip is sent: ``input_audio`` (base64 WAV, OpenAI's audio chat and
            vLLM's server) or ``audio_url`` (a ``data:audio/wav;base64,...`` URL, for servers
            that take audio as a URL).
        audio_sample_rate: The sampling rate the server expects; a clip at another rate is
            refused before sending.
        max_audio_mb: The largest WAV sent, in MB (a hosted API's limit); larger is refused
            before sending.

    A regex constraint is sent as ``structured_outputs`` in the body (as vLLM's server reads
    it); a JSON schema as ``response_format``.
    """

    engine = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | list[str] = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout: float = 120.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        revision: str | None = None,
        audio_part: str = "input_audio",
        audio_sample_rate: int = 16_000,
        max_audio_mb: float = 20.0,
    ) -> None:
        super().__init__(model, revision)
        try:
            import openai
        except ImportError as e:  # pragma: no cover - openai is a dependency
            raise EngineError("the openai backend needs the `openai` package: pip install openai") from e
        self._openai = openai
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise EngineError("openai backend: give at least one base_url")
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise EngineError(
                    f"openai backend: the API key variable {api_key_env} is not set; export it "
                    "(keys are read from the environment only)"
                )
            register(key)
        else:
            key = NO_KEY
        for url in urls:
            if has_url_credentials(url):
                raise EngineError(
                    f"openai backend: base_url {redact(url)} holds a user or password; give the URL "
                    "without them and the key through api_key_env (keys are read from the environment only)"
                )
        for name, value, low in (("max_attempts", max_attempts, 1), ("concurrency", concurrency, 1)):
            if not isinstance(value, int) or value < low:
                raise EngineError(
                    f"openai backend: {name} (--{name.replace('_', '-')}) must be a whole number of "
                    f"{low} or more, not {value!r}"
                )
        if not timeout > 0 or not backoff >= 0:
            raise EngineError(
                f"openai backend: timeout (--timeout) must be above 0 and backoff (--backoff) 0 or more, "
                f"not {timeout!r} and {backoff!r}"
            )
        if audio_part not in AUDIO_PARTS:
            raise EngineError(
                f"openai backend: audio_part (--engine-arg audio_part=...) must be one of {list(AUDIO_PARTS)}, "
                f"not {audio_part!r}"
            )
        self.audio_part, self.audio_sample_rate, self.max_audio_mb = audio_part, audio_sample_rate, max_audio_mb
        self.base_urls = urls
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._clients = [openai.OpenAI(base_url=u, api_key=key, max_retries=0, timeout=timeout) for u in urls]
        self._next = itertools.cycle(range(len(urls)))
        self._next_lock = threading.Lock()

    @property
    def engine_version(self) -> str:
        return f"openai-python {self._openai.__version__}"

    def _request_args(self, sampling: SamplingConfig, structured: StructuredOutput | None) -> dict[str, Any]:
        args: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            args["seed"] = sampling.seed
        if structured is not None:
            if structured.json_schema is not None:
                args["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": structured.json_schema, "strict": True},
                }
            else:
                args["extra_body"] = {"structured_outputs": {"regex": structured.regex}}
        return args

    def _retryable(self, err: BaseException) -> bool:
        """Whether a failed attempt is worth another: a timeout, a lost connection, HTTP 408, 409,
        429 or 5xx (the openai client's own rule), or a body that is not a valid completion.
        Other 4xx answers (a bad request, a missing model, a refused key) are final."""
        o = self._openai
        if isinstance(err, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError, o.InternalServerError)):
            return True
        if isinstance(err, o.APIStatusError):
            return err.status_code in RETRIED_STATUS or err.status_code >= 500
        return isinstance(err, (ValueError, TypeError, AttributeError, IndexError, o.APIResponseValidationError))

    def output_settings(self) -> dict[str, Any]:
        return {"audio_part": self.audio_part} if self.audio_part != "input_audio" else {}

    def _audio_parts(self, conversation: Conversation) -> Conversation:
        """The conversation as sent: each ``input_audio`` part checked (sampling rate, size)
        and, with ``audio_part="audio_url"``, turned into a data URL.

        Raises:
            ValueError: A clip at another sampling rate, or larger than ``max_audio_mb``.
        """

        out = []
        for message in conversation:
            content = message.get("content")
            if isinstance(content, list):
                parts = []
                for part in content:
                    if part.get("type") == "input_audio":
                        data = part["input_audio"]["data"]
                        raw = base64.b64decode(data)
                        mb = len(raw) / 1e6
                        if mb > self.max_audio_mb:
                            raise ValueError(
                                f"the audio is {mb:.1f} MB, above max_audio_mb={self.max_audio_mb} for "
                                f"{self.model}; raise --engine-arg max_audio_mb=... if the server takes more"
                            )
                        rate = sf.info(io.BytesIO(raw)).samplerate
                        if rate != self.audio_sample_rate:
                            raise ValueError(
                                f"the audio is {rate} Hz, and {self.model} takes {self.audio_sample_rate} Hz "
                                "(audio_sample_rate)"
                            )
                        if self.audio_part == "audio_url":
                            part = {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}}
                    parts.append(part)
                message = {**message, "content": parts}
            out.append(message)
        return out

    def _one(self, conversation: Conversation, args: dict[str, Any]) -> Response:
        started, t0 = now_iso(), time.perf_counter()
        try:
            sent = self._audio_parts(conversation)
        except ValueError as e:  # refused before sending: one failed row, with the reason
            return Response(
                "", conversation, self._metadata(started_at=started, finished_at=now_iso()), error=f"not sent: {e}"
            )
        errors: list[str] = []

        def attempt() -> Response:
            with self._next_lock:
                i = next(self._next)
            try:
                return self._complete(i, conversation, sent, args, started, t0, attempt=len(errors) + 1)
            except Exception as err:
                errors.append(redact(f"{self.base_urls[i]}: {type(err).__name__}: {str(err)[:200]}"))
                raise

        def stop(state: tenacity.RetryCallState) -> bool:
            asked = retry_after(state.outcome.exception())
            if asked is not None and asked > MAX_RETRY_AFTER_S:
                errors.append(f"the server asked to wait {asked:.0f} s (more than {MAX_RETRY_AFTER_S:.0f} s)")
                return True
            return state.attempt_number >= self.max_attempts

        retrying = tenacity.Retrying(
            stop=stop, wait=self._wait, retry=tenacity.retry_if_exception(self._retryable), reraise=True
        )
        try:
            return retrying(attempt)
        except Exception:  # noqa: BLE001 - every failure becomes an error response
            attempts = sum(1 for e in errors if not e.startswith("the server asked"))
            meta = self._metadata(attempts=attempts, started_at=started, finished_at=now_iso())
            return Response(
                "", conversation, meta, error=f"failed after {attempts} attempt(s): " + " | ".join(errors[-3:])
            )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The delay before the next attempt: ``backoff`` doubled each retry, with jitter, capped at
        30 s; at least what the server asked (``Retry-After``)."""
        delay = min(30.0, self.backoff * 2 ** (state.attempt_number - 1)) * (0.5 + random.random() / 2)
        asked = retry_after(state.outcome.exception())
        return delay if asked is None else max(delay, asked)

    def _complete(
        self,
        i: int,
        conversation: Conversation,
        sent: Conversation,
        args: dict[str, Any],
        started: str,
        t0: float,
        attempt: int,
    ) -> Response:
        """One request to server ``i``; raises on any failure (:meth:`_one` decides on a retry)."""
        completion = self._clients[i].chat.completions.create(model=self.model, messages=sent, **args)
        choice = completion.choices[0]
        text = choice.message.content
        if not isinstance(text, str):
            raise ValueError(f"no message content in the completion (finish_reason {choice.finish_reason!r})")
        usage = completion.usage
        meta = self._metadata(
            base_url=redact(self.base_urls[i]),
            served_model=completion.model,
            finish_reason=choice.finish_reason,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            attempts=attempt,
            started_at=started,
            finished_at=now_iso(),
            latency_s=round(time.perf_counter() - t0, 4),
        )
        if not text.strip():
            return Response("", conversation, meta, error="empty output")
        return Response(text, conversation, meta)

    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]:
        args = self._request_args(sampling, structured)
        out: list[Response | None] = [None] * len(conversations)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._one, conv, args): k for k, conv in enumerate(conversations)}
            for fut in as_completed(futures):
                k = futures[fut]
                out[k] = fut.result()
                if on_result:
                    on_result(k, out[k])
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for c in self._clients:
            c.close()
