"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, or a hosted API.

Requests are spread round-robin over one or more base URLs (how users scale past one
machine), with bounded concurrency, a timeout per request, and bounded retries with
exponential backoff on HTTP 429, 5xx, timeouts and connection errors; then the response
carries a clear error (never a score). A body that is not a valid chat completion, or an
empty answer, is an error too. The API key is read from the environment variable named in
the configuration, never taken as a literal, and never logged or stored.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

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
        else:
            key = NO_KEY
        if max_attempts < 1 or concurrency < 1 or timeout <= 0:
            raise EngineError("openai backend: max_attempts and concurrency must be >= 1, timeout > 0")
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

    def _retryable(self, err: Exception) -> bool:
        o = self._openai
        if isinstance(err, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError, o.InternalServerError)):
            return True
        return isinstance(err, o.APIStatusError) and (err.status_code == 429 or err.status_code >= 500)

    def _one(self, conversation: Conversation, args: dict[str, Any]) -> Response:
        started, t0 = now_iso(), time.perf_counter()
        errors: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            with self._next_lock:
                i = next(self._next)
            client = self._clients[i]
            try:
                completion = client.chat.completions.create(model=self.model, messages=conversation, **args)
                choice = completion.choices[0]
                text = choice.message.content
                if not isinstance(text, str):
                    raise ValueError(f"no message content in the completion (finish_reason {choice.finish_reason!r})")
                usage = completion.usage
                meta = self._metadata(
                    base_url=self.base_urls[i],
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
            except Exception as err:  # noqa: BLE001 - every failure becomes an error response
                errors.append(f"{self.base_urls[i]}: {type(err).__name__}: {str(err)[:200]}")
                malformed = isinstance(err, (ValueError, TypeError, AttributeError, IndexError, self._openai.APIResponseValidationError))
                if attempt == self.max_attempts or not (self._retryable(err) or malformed):
                    break
                delay = min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                time.sleep(delay)
        meta = self._metadata(attempts=len(errors), started_at=started, finished_at=now_iso())
        return Response("", conversation, meta, error=f"failed after {len(errors)} attempt(s): " + " | ".join(errors[-3:]))

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
