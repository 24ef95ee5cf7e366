"""Small file helpers shared by every stage: atomic writes and checked CSV reading.

A result file is either complete or absent: writers go to a temporary file in the
destination folder and ``os.replace`` it into place, so a crash never leaves half a file.
Readers turn malformed input into :class:`TableError`, whose message names the file, the
line and the column at fault and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd


class TableError(ValueError):
    """A table that cannot be used as given; the message says where and why."""


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded), since reading it means setting it.
_UMASK = _read_umask()


def _new_file_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: the existing file's, else 0o666 less the umask.

    ``tempfile.mkstemp`` creates its file with mode 0o600; without this, every result
    written atomically would be readable by its owner only.
    """
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; move it into place on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as UTF-8 CSV (no index) atomically and return the path.

    Cells are quoted only where needed, as pandas does, except when some text holds a bare
    carriage return (model outputs can): the csv module would leave such a cell unquoted and
    readers would split the row there, so then every text cell is quoted.

    >>> import io, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = write_csv(pd.DataFrame({"a": ["x\\ry", "z"]}), p)
    >>> len(pd.read_csv(p))
    2
    """
    text = df.select_dtypes(include=["object", "string"])
    has_cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh, index=False, quoting=csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL)
    return Path(path)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically as Parquet (``.parquet``) or CSV (any other suffix)."""
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_open(path, "wb") as fh:
            df.to_parquet(fh, index=False)
        return path
    return write_csv(df, path)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def line_of(index: int) -> int:
    """CSV line number of the 0-based data row ``index`` (line 1 is the header)."""
    return int(index) + 2


def read_csv_checked(
    path: str | os.PathLike[str],
    required: Iterable[str] = (),
    what: str = "table",
) -> pd.DataFrame:
    """Read a CSV as strings, keeping empty cells as ``""`` (never NaN).

    Args:
        path: CSV file.
        required: Columns that must be present.
        what: What the file is, for error messages ("manifest", "judged table", ...).

    Raises:
        TableError: The file is missing, not UTF-8, not CSV, or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such {what} file")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TableError(
            f"{path}: line {line}: not UTF-8 (byte {raw[e.start]:#04x} at offset {e.start}); "
            "re-save the file as UTF-8"
        ) from None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise TableError(f"{path}: cannot be read as CSV: {e}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(
            f"{path}: {what} lacks column(s) {missing}; it has {list(df.columns)}"
        )
    return df


def read_table_checked(
    path: str | os.PathLike[str],
    required: Iterable[str] = (),
    what: str = "table",
) -> pd.DataFrame:
    """Read a CSV (:func:`read_csv_checked`) or a Parquet file the same way: every cell as text.

    A Parquet file's missing values become ``""`` and its numbers their text (``2``, ``0.5``),
    so that both kinds of file reach the same checks. Row ``i`` of either is reported as
    :func:`line_of` ``(i)``.

    Raises:
        TableError: The file is missing or unreadable, or lacks a required column.
    """
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        return read_csv_checked(path, required, what)
    if not path.is_file():
        raise TableError(f"{path}: no such {what} file")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several kinds for a damaged or foreign file
        raise TableError(f"{path}: cannot be read as Parquet: {e}") from None
    df = df.astype(object).where(df.notna(), "").map(lambda v: v if isinstance(v, str) else str(v))
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"{path}: {what} lacks column(s) {missing}; it has {list(df.columns)}")
    return df.reset_index(drop=True)
