"""A persistent store of model calls, in SQLite (embedded, no server).

Every successful call is kept under its cache key (:func:`jasco_utils.models.base.request_key`:
engine, model and revision, output-changing settings, sampling, the full messages with
audio hashed by content, prompt template id and hash). A re-run finds what is stored and
makes no call for it. Each result is committed as it arrives, in its own transaction, so a
run killed at any moment (even ``kill -9``) loses at most the calls in flight and never
stores half a result; the primary key makes a duplicate impossible. Errors and empty
outputs are never stored as results: they go to the ``failures`` table, for audit only, with
secrets redacted (:mod:`jasco_utils.core.secrets`).

Several processes may open the same store, a new one included (creating the schema waits
for the others). A store the user cannot write (a read-only file or folder) is opened
read-only: a run that finds every call stored works from it, and one that needs new calls
is told so before any model is called. Storage problems (a full disk, a file that is not a
store, a folder in the way) raise :class:`~jasco_utils.core.io.StorageError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jasco_utils.core.io import StorageError, prepare_target
from jasco_utils.core.secrets import redact
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

    def __init__(self, path: str | os.PathLike[str], wait_s: float = 60.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        prepare_target(self.path)
        writable = os.access(self.path, os.W_OK) if self.path.exists() else os.access(self.path.parent, os.W_OK)
        folder_writable = os.access(self.path.parent, os.W_OK)
        #: Opened read-only: the store's file or folder cannot be written.
        self.read_only = not (writable and folder_writable)
        if self.read_only and not self.path.is_file():
            raise StorageError(
                f"{self.path}: cannot create the call store: {self.path.parent} is not writable; "
                "give --store a path in a writable folder"
            )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._db = self._connect()
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                    raise self._error(e) from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as e:
                raise self._error(e) from None

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            db = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False, isolation_level=None)
            db.execute("SELECT count(*) FROM calls").fetchone()
            return db
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _error(self, err: sqlite3.Error) -> StorageError:
        """A storage error naming the store and what to do."""
        text = str(err)
        if "not a database" in text or "malformed" in text:
            return StorageError(
                f"{self.path}: is not a call store (SQLite) or is damaged ({text}); "
                "give --store another path, or move this file away"
            )
        if "full" in text:
            return StorageError(f"{self.path}: cannot write the call store: the disk is full; free some space")
        if "readonly" in text or "read-only" in text:
            return StorageError(
                f"{self.path}: the call store is read-only; make it writable, or give --store a writable copy"
            )
        if "no such table" in text:
            return StorageError(f"{self.path}: is not a call store (it has no calls table); give --store another path")
        return StorageError(f"{self.path}: call store error: {text}")

    def require_writable(self, n_new: int) -> None:
        """Raise when ``n_new`` results would have to be stored in a read-only store.

        Raises:
            StorageError: Naming the store and how many calls the run needs.
        """
        if self.read_only and n_new:
            raise StorageError(
                f"{self.path}: the call store is read-only and {n_new} call(s) are not in it; "
                "make it writable or give --store a writable copy (a run whose calls are all "
                "stored works from a read-only store)"
            )

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored records for the given keys (absent keys are left out)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._lock, self._storage_errors():
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
        self.require_writable(1)
        with self._lock, self._storage_errors():
            if not response.ok:
                error = redact(response.error or "empty output")
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

    @contextlib.contextmanager
    def _storage_errors(self):
        try:
            yield
        except sqlite3.Error as e:
            raise self._error(e) from None

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
            dict(zip(("key", "created_at", "engine", "model", "error"), r, strict=False))
            for r in rows
            if wanted is None or r[0] in wanted
        ]

    #: The columns of a stored call, as :meth:`export` gives them and :meth:`merge` takes them.
    CALL_COLUMNS = ("key", "created_at", "engine", "model", "request", "text", "metadata")

    def export(
        self, engines: Iterable[str] | None = None, models: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> list[tuple[str, ...]]:
        """Stored calls as rows of :data:`CALL_COLUMNS` (the JSON fields as stored), for :meth:`merge`.

        Args:
            engines, models: Only calls of these engines / models (all when ``None``).
            exclude: Keys left out (those another store already holds).
        """
        where, args = [], []
        for column, values in (("engine", engines), ("model", models)):
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args += values
        sql = f"SELECT {', '.join(self.CALL_COLUMNS)} FROM calls" + (f" WHERE {' AND '.join(where)}" if where else "")
        skip = set(exclude)
        with self._lock, self._storage_errors():
            return [tuple(r) for r in self._db.execute(sql, args).fetchall() if r[0] not in skip]

    def keys(self) -> set[str]:
        """The keys of every stored call."""
        with self._lock, self._storage_errors():
            return {r[0] for r in self._db.execute("SELECT key FROM calls").fetchall()}

    def merge(self, rows: Iterable[Sequence[str]]) -> int:
        """Add calls exported from another store (:meth:`export`); return how many were new.

        Keys are content hashes of everything that determines a call, so a key already here
        holds the same call: merging twice, or merging rows this store has, changes nothing.
        """
        rows = [tuple(r) for r in rows]
        self.require_writable(len(rows))
        with self._lock, self._storage_errors():
            before = self._db.execute("SELECT count(*) FROM calls").fetchone()[0]
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    f"INSERT OR IGNORE INTO calls ({', '.join(self.CALL_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(self.CALL_COLUMNS))})",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.execute("SELECT count(*) FROM calls").fetchone()[0] - before

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
