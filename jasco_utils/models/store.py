"""A persistent store of model calls, in SQLite (embedded, no server).

Every successful call is kept under its cache key (:func:`jasco_utils.models.base.request_key`:
engine, model and revision, output-changing settings, sampling, the full messages with
audio hashed by content, prompt template id and hash). A re-run finds what is stored and
makes no call for it. Each result is committed as it arrives, in its own transaction, so a
run killed at any moment (even ``kill -9``) loses at most the calls in flight and never
stores half a result; the primary key makes a duplicate impossible. Errors and empty
outputs are never stored as results: they go to the ``failures`` table, for audit only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jasco_utils.models.base import Response, canonical_messages, now_iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key        TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    engine     TEXT NOT NULL,
    model      TEXT NOT NULL,
    request    TEXT NOT NULL,   -- JSON: identity, sampling, messages (audio hashed), extra
    text       TEXT NOT NULL CHECK (length(trim(text)) > 0),
    metadata   TEXT NOT NULL    -- JSON: engine version, timing, tokens, finish reason
);
CREATE TABLE IF NOT EXISTS failures (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    engine     TEXT NOT NULL,
    model      TEXT NOT NULL,
    error      TEXT NOT NULL
);
"""


class Store:
    """The SQLite call store.

    Args:
        path: Database file (created with its folder when missing).

    Safe to share between threads of one process (one connection, a lock) and between
    processes (SQLite's locking; WAL journal).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored records for the given keys (absent keys are left out)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, created_at, request, text, metadata FROM calls WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, created, request, text, metadata in rows:
                    out[key] = {
                        "key": key,
                        "created_at": created,
                        "request": json.loads(request),
                        "text": text,
                        "metadata": json.loads(metadata),
                    }
        return out

    def put(self, key: str, request: dict[str, Any], response: Response) -> bool:
        """Store a successful response; record a failed one in ``failures`` instead.

        Returns:
            True when a result was stored (or was already there), False for a failure.
        """
        engine = str(response.metadata.get("engine", ""))
        model = str(response.metadata.get("model", ""))
        with self._lock:
            if not response.ok:
                error = response.error or "empty output"
                self._db.execute(
                    "INSERT INTO failures (key, created_at, engine, model, error) VALUES (?, ?, ?, ?, ?)",
                    (key, now_iso(), engine, model, error),
                )
                return False
            request = {**request, "messages": canonical_messages(request.get("messages", []))}
            self._db.execute(
                "INSERT OR IGNORE INTO calls (key, created_at, engine, model, request, text, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    now_iso(),
                    engine,
                    model,
                    json.dumps(request, ensure_ascii=False, sort_keys=True),
                    response.text,
                    json.dumps(response.metadata, ensure_ascii=False, sort_keys=True, default=str),
                ),
            )
            return True

    def count(self) -> int:
        """Number of stored results."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM calls").fetchone()[0]

    def failures(self, keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Recorded failures (all, or those of the given keys), oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT key, created_at, engine, model, error FROM failures ORDER BY id").fetchall()
        wanted = set(keys) if keys is not None else None
        return [
            dict(zip(("key", "created_at", "engine", "model", "error"), r))
            for r in rows
            if wanted is None or r[0] in wanted
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
