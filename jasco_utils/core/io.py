"""Small file helpers shared by every stage: atomic writes and checked CSV reading.

A result file is either complete or absent: writers go to a temporary file in the
destination folder and ``os.replace`` it into place, so a crash never leaves half a file;
the temporary files a killed writer left are removed by the next write of the same file.
A table is written as a pair, CSV and Parquet (:func:`write_pair`): the Parquet file records
the SHA-256 of the CSV it was written with, so a Parquet file that does not match its CSV
(a write interrupted between the two renames) is refused when read, never used.
Readers turn malformed input into :class:`TableError`, whose message names the file, the
line an editor shows (:func:`line_of`) and the column at fault and what to do; writers turn
a full disk, a read-only folder or a folder in the way into :class:`StorageError`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class TableError(ValueError):
    """A table that cannot be used as given; the message says where and why."""


class StorageError(RuntimeError):
    """A file or folder that cannot be written (or read): the message names it and says what to do."""


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space, or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere, or make the folder writable",
    errno.EPERM: "permission denied: write elsewhere, or make the folder writable",
}


def storage_error(path: str | os.PathLike[str], err: OSError, doing: str = "cannot write") -> StorageError:
    """A :class:`StorageError` for ``err``, naming ``path`` and what to do.

    >>> import errno
    >>> str(storage_error("/x/t.csv", OSError(errno.ENOSPC, "No space left on device")))
    '/x/t.csv: cannot write: the disk is full: free some space, or write elsewhere'
    """
    advice = _ADVICE.get(err.errno) or (err.strerror or str(err))
    return StorageError(f"{path}: {doing}: {advice}")


def make_folder(path: str | os.PathLike[str]) -> Path:
    """Create a folder (and its parents), or raise :class:`StorageError` saying why it cannot be."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise StorageError(f"{parent}: is a file, not a folder, so {path} cannot be made; give another path")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(path, e, "cannot create the folder") from None
    return path


def prepare_target(path: str | os.PathLike[str]) -> Path:
    """Make the folder of the file ``path`` will be, or say clearly why it cannot be (a folder
    where the file should be, a file where a folder should be, a folder that cannot be made).
    Called before long work, so that a bad output path is found before a model runs."""
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; give a file name (e.g. {path / 'table.csv'})")
    make_folder(path.parent)
    return path


#: The temporary files :func:`atomic_open` writes: ``.NAME.PID.RANDOM.tmp``.
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(path: str | os.PathLike[str], min_age_s: float = 0.0) -> list[Path]:
    """Remove the temporary files of ``path`` that writers which are no longer running left.

    Returns the files removed. Another live process's temporary file is left alone.
    """
    path = Path(path)
    removed = []
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            m = _TMP.match(tmp.name)
            if not m or m["name"] != path.name or _alive(int(m["pid"])):
                continue
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime >= min_age_s:
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


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

    On an exception the temporary file is removed and ``path`` is left untouched. A full
    disk, a read-only folder, or a folder where the file should be raise :class:`StorageError`.
    """
    with _atomic_tmp(path, mode, **kwargs) as (fh, tmp):
        yield fh
    _move_into_place(tmp, Path(path))


@contextlib.contextmanager
def _atomic_tmp(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[tuple[IO, str]]:
    """A written, synced temporary sibling of ``path`` (removed if anything fails before the
    caller moves it into place with :func:`_move_into_place`)."""
    path = Path(path)
    prepare_target(path)
    clean_leftovers(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise storage_error(path, e) from None
    try:
        try:
            with os.fdopen(fd, mode, **kwargs) as fh:
                yield fh, tmp
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _new_file_mode(path))
        except OSError as e:
            raise storage_error(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _move_into_place(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise storage_error(path, e) from None


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
    text = _csv_text(df)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


def _csv_text(df: pd.DataFrame) -> str:
    text = df.select_dtypes(include=["object", "string"])
    has_cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
    return df.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL, lineterminator="\n")


def parquet_ready(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column of one type, so that any mix of rows can be written as Parquet.

    A text column that also holds numbers or flags (a failed row's ``""`` beside other rows'
    latencies, say) cannot be written as one Parquet type: a column whose values are all
    numbers becomes numeric (missing values NaN), one whose values are all flags stays
    boolean, and any other mix becomes text (missing values empty).

    >>> parquet_ready(pd.DataFrame({"t": [0.5, "", None], "m": [1, "x", True]})).to_dict("list")
    {'t': [0.5, nan, nan], 'm': ['1', 'x', 'True']}
    """
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col]
        present = values[values.notna() & values.map(lambda v: v != "")]
        kinds = {type(v) for v in present}
        if kinds <= {str}:
            out[col] = values.where(values.notna(), "")
        elif kinds <= {bool} and len(present) == values.notna().sum():
            continue
        elif all(issubclass(k, (int, float)) and not issubclass(k, bool) for k in kinds):
            out[col] = pd.to_numeric(values.where(values.map(lambda v: v != ""), None), errors="coerce")
        else:
            out[col] = values.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    return out


#: The Parquet metadata key holding the SHA-256 of the CSV written with it (:func:`write_pair`).
CSV_DIGEST_KEY = b"jasco.csv_sha256"


def _parquet_bytes(df: pd.DataFrame, csv_digest: str | None = None) -> bytes:

    table = pa.Table.from_pandas(parquet_ready(df), preserve_index=False)
    if csv_digest:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), CSV_DIGEST_KEY: csv_digest.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically as Parquet (``.parquet``, :func:`parquet_ready`) or CSV (any other suffix)."""
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_open(path, "wb") as fh:
            fh.write(_parquet_bytes(df))
        return path
    return write_csv(df, path)


def write_pair(df: pd.DataFrame, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``df`` as ``path`` (CSV) and the same name with ``.parquet``; both, or neither.

    Both files are written to temporary siblings first; nothing is moved into place unless
    both were written whole. The Parquet file records the CSV's SHA-256, so that if the
    process dies between the two renames, the Parquet file that no longer matches its CSV
    is refused by :func:`read_table_checked` (which names both and says to read the CSV or
    write again).

    Returns:
        The CSV and Parquet paths.
    """
    path = Path(path)
    parquet = path.with_suffix(".parquet")
    text = _csv_text(df)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with _atomic_tmp(path, "w", encoding="utf-8", newline="") as (fh, csv_tmp):
        fh.write(text)
    try:
        with _atomic_tmp(parquet, "wb") as (fh, parquet_tmp):
            fh.write(_parquet_bytes(df, digest))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(csv_tmp)
        raise
    try:
        _move_into_place(parquet_tmp, parquet)
        _move_into_place(csv_tmp, path)
    except BaseException:
        for tmp in (parquet_tmp, csv_tmp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    return path, parquet


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def line_of(index: int, path: str | os.PathLike[str] | None = None) -> int:
    """The line an editor shows for the 0-based data row ``index`` of a CSV (the header is line 1).

    Cells may hold line breaks (judge and ALLM answers span many lines), so row ``i`` of
    ``path`` starts on the line :func:`row_lines` finds. Without a readable CSV ``path`` (a
    Parquet file, a table in memory), row ``i`` is ``i + 2``, as if each row took one line.

    >>> line_of(0)
    2
    """
    if path is not None:
        lines = row_lines(path)
        if lines is not None and 0 <= int(index) < len(lines):
            return lines[int(index)]
    return int(index) + 2


def lines_text(indices, path: str | os.PathLike[str] | None = None, limit: int = 10) -> str:
    """``line 7`` or ``lines 7, 12, 30``: where the given rows start (:func:`line_of`), the first ``limit``.

    >>> lines_text([0]), lines_text([0, 3])
    ('line 2', 'lines 2, 5')
    """
    indices = list(indices)
    shown = ", ".join(str(line_of(i, path)) for i in indices[:limit])
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return f"line{'s' if len(indices) > 1 else ''} {shown}{more}"


def row_lines(path: str | os.PathLike[str]) -> list[int] | None:
    """The line each data row of a CSV starts on (as an editor counts), or ``None`` when
    ``path`` is not a readable UTF-8 CSV file. Cached per file version."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return _row_lines(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _row_lines(path: str, mtime_ns: int, size: int) -> list[int] | None:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            out, end = [], reader.line_num
            for row in reader:
                if row:  # pandas skips blank lines
                    out.append(end + 1)
                end = reader.line_num
            return out
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _field_count_error(path: Path, first_only: bool = False) -> str | None:
    """Where a CSV's rows stop having the header's number of fields, as an editor counts lines.

    With ``first_only``, only the first data row is looked at, and a file the csv module
    cannot read is left to pandas (``None``): that row is the one pandas does not refuse when
    it is one field too wide (it would take the first column as an index and shift the rest).
    """
    start = 1
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) > len(header):
                    return (
                        f"line {start}: {len(row)} fields, but the header has {len(header)} "
                        f"({', '.join(header)}); quote the cells that hold commas, or remove the extra fields"
                    )
                if row and first_only:
                    return None
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return None if first_only else f"line {start}: {e}"
    return None


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
            f"{path}: line {line}: not UTF-8 (byte {raw[e.start]:#04x} at offset {e.start}); re-save the file as UTF-8"
        ) from None
    # A first data row one field wider than the header is not a parser error to pandas: it
    # takes the first column as the index and shifts every column. Refuse it here; and with
    # ``index_col=False`` pandas never takes an index from the data, whatever the first row.
    where = _field_count_error(path, first_only=True)
    if where:
        raise TableError(f"{path}: cannot be read as CSV: {where}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", index_col=False)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file is empty; a {what} starts with a header line") from None
    except pd.errors.ParserError as e:
        where = _field_count_error(path) or str(e)
        raise TableError(f"{path}: cannot be read as CSV: {where}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"{path}: {what} lacks column(s) {missing}; it has {list(df.columns)}")
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
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several kinds for a damaged or foreign file
        raise TableError(f"{path}: cannot be read as Parquet: {e}") from None
    digest = (table.schema.metadata or {}).get(CSV_DIGEST_KEY)
    sibling = path.with_suffix(".csv")
    if digest and sibling.is_file() and sha256_file(sibling) != digest.decode():
        raise TableError(
            f"{path}: does not match {sibling} beside it (a write was interrupted between the two); "
            f"read {sibling.name}, or write the table again"
        )
    df = table.to_pandas()
    df = df.astype(object).where(df.notna(), "").map(lambda v: v if isinstance(v, str) else str(v))
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"{path}: {what} lacks column(s) {missing}; it has {list(df.columns)}")
    return df.reset_index(drop=True)
