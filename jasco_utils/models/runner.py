"""Running conversations through a backend with the call store in front of it.

Shared by judging and inference: look every conversation up in the
:class:`~jasco_utils.models.store.Store`; send the rest to the backend in chunks, identical
requests once; store each result as it arrives; never store a failure as a result.
:meth:`CallResult.provenance` gives the columns that record, beside every row made from a
call, how it was made (engine, sampling, status, cache key, timing, the tokens the engine
counted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.core.secrets import redact
from jasco_utils.models.base import (
    Backend,
    Conversation,
    Response,
    SamplingConfig,
    StructuredOutput,
    request_key,
)
from jasco_utils.models.store import Store


@dataclass
class CallStats:
    """Counts of one pass over a batch of conversations."""

    total: int = 0
    from_cache: int = 0
    called: int = 0  # distinct requests sent to the model
    shared: int = 0  # rows answered by an identical request sent for another row
    failed: int = 0  # rows without an answer
    truncated: int = 0  # rows whose answer stopped at the token limit (kept, marked, counted)
    failures: list[str] = field(default_factory=list)


#: The provenance columns of a row made from one call (see :meth:`CallResult.provenance`).
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "engine",
    "engine_version",
    "sampling",
    "status",
    "error",
    "from_cache",
    "cache_key",
    "started_at",
    "finished_at",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
)
#: The provenance columns of token counts: whole numbers, empty where the engine reports none.
TOKEN_COLUMNS: tuple[str, ...] = ("prompt_tokens", "completion_tokens")


@dataclass
class CallResult:
    """One conversation's outcome: ``text`` is "" when ``error`` is set.

    Its :attr:`status` is ``failed`` (no answer: never scored, retried by the next run),
    ``truncated`` (the answer stopped at the token limit: kept and scored as the original
    script did, but marked and counted) or ``ok``.
    """

    key: str
    text: str
    metadata: dict[str, Any]
    from_cache: bool
    error: str | None = None

    @property
    def truncated(self) -> bool:
        """The engine stopped at the token limit (finish reason ``length``)."""
        return self.error is None and (self.metadata or {}).get("finish_reason") == "length"

    @property
    def status(self) -> str:
        return "failed" if self.error else "truncated" if self.truncated else "ok"

    def provenance(self, backend: Backend, sampling: SamplingConfig) -> dict[str, Any]:
        """The :data:`PROVENANCE_COLUMNS` of a row made from this result.

        The engine version, the timestamps and the token counts are those recorded with the
        call (from the store when it was served from there); the version falls back to the
        backend's, the token counts to ``None`` (an engine that counts none, a call recorded
        before they were kept).

        Args:
            backend: The model that answered (or would have).
            sampling: The sampling settings of the call (written as sorted JSON).

        >>> from jasco_utils.models.base import Backend
        >>> class Echo(Backend):
        ...     engine = "echo"
        ...     def _generate(self, conversations, sampling, structured, on_result): ...
        >>> row = CallResult("k1", "", {"latency_s": 0.5}, False, "timeout").provenance(Echo("m"), SamplingConfig())
        >>> row["status"], row["error"], row["engine_version"], row["latency_s"], row["started_at"]
        ('failed', 'timeout', 'unknown', 0.5, '')
        >>> row["prompt_tokens"] is None
        True
        >>> CallResult("k2", "Rating: 2", {"finish_reason": "length"}, True).provenance(Echo("m"), SamplingConfig())["status"]
        'truncated'
        """
        meta = self.metadata or {}
        return {
            "engine": backend.engine,
            "engine_version": meta.get("engine_version", backend.engine_version),
            "sampling": json.dumps(sampling.as_dict(), sort_keys=True),
            "status": self.status,
            "error": redact(self.error or ""),
            "from_cache": self.from_cache,
            "cache_key": self.key,
            "started_at": meta.get("started_at", ""),
            "finished_at": meta.get("finished_at", ""),
            "latency_s": meta.get("latency_s"),
            **{col: meta.get(col) for col in TOKEN_COLUMNS},
        }


def typed_tokens(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its :data:`TOKEN_COLUMNS` as nullable integers (CSV ``12`` or empty, never ``12.0``)."""
    for col in TOKEN_COLUMNS:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    return table


class CachedRunner:
    """A backend behind the store.

    Args:
        backend: The model.
        store: The call store.
        sampling: Sampling settings (part of every key).
        structured: A decoding constraint (part of every key).
        chunk_size: Conversations per backend call; results are stored as they arrive.
        bar: A progress bar to advance (one step per conversation), or ``None``.
    """

    def __init__(
        self,
        backend: Backend,
        store: Store,
        sampling: SamplingConfig,
        structured: StructuredOutput | None = None,
        chunk_size: int = 256,
        bar: tqdm | None = None,
    ) -> None:
        self.backend, self.store, self.sampling, self.structured = backend, store, sampling, structured
        self.chunk_size, self.bar = max(1, chunk_size), bar

    def run(self, conversations: list[Conversation], extra: dict[str, Any], stats: CallStats) -> list[CallResult]:
        """Results in the order of ``conversations``; ``stats`` is updated as they come."""
        identity = self.backend.identity
        keys = [request_key(identity, self.sampling, c, self.structured, extra) for c in conversations]
        stored = self.store.get_many(keys)
        results: list[CallResult | None] = [None] * len(conversations)
        stats.total += len(conversations)
        same: dict[str, list[int]] = {}  # identical requests are sent once and shared
        for k, key in enumerate(keys):
            if key in stored:
                rec = stored[key]
                results[k] = CallResult(key, rec["text"], rec["metadata"], True)
                stats.from_cache += 1
                stats.truncated += results[k].truncated
            else:
                same.setdefault(key, []).append(k)
        self._advance(len(conversations) - sum(map(len, same.values())), stats)
        request_base = {
            "identity": identity,
            "sampling": self.sampling.as_dict(),
            "structured": self.structured.as_dict() if self.structured else None,
            "extra": extra,
        }
        unique = [ks[0] for ks in same.values()]
        self.store.require_writable(len(unique))
        for start in range(0, len(unique), self.chunk_size):
            chunk = unique[start : start + self.chunk_size]

            def on_result(i: int, response: Response, chunk=chunk) -> None:
                key = keys[chunk[i]]
                if results[chunk[i]] is not None:
                    return
                self.store.put(key, {**request_base, "messages": response.messages}, response)
                error = None if response.ok else (response.error or "empty output")
                for k in same[key]:
                    results[k] = CallResult(key, response.text if response.ok else "", response.metadata, False, error)
                stats.called += 1
                stats.shared += len(same[key]) - 1
                stats.truncated += len(same[key]) * results[same[key][0]].truncated
                if error:
                    stats.failed += len(same[key])
                    stats.failures.append(redact(error))
                self._advance(len(same[key]), stats)

            responses = self.backend.generate(
                [conversations[k] for k in chunk], self.sampling, self.structured, on_result
            )
            for i, response in enumerate(responses):  # for backends that do not call back
                on_result(i, response)
        return results  # type: ignore[return-value]

    def _advance(self, n: int, stats: CallStats) -> None:
        if self.bar is not None and n:
            self.bar.update(n)
            self.bar.set_postfix(cached=stats.from_cache, called=stats.called, failed=stats.failed, refresh=False)
