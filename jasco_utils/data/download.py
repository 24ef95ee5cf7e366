"""Download the *What Are They Doing* dataset, v0, from its public repository.

The dataset (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning",
arXiv:2409.14526) is licensed CC BY-NC 4.0, so this project never ships it: this module
fetches it from https://github.com/BenoitWang/What_Are_They_Doing at the pinned commit
:data:`DATASET_COMMIT` and puts its 82 files flat in one folder: ``v0.csv``, the clips
``1.wav`` ... ``80.wav`` and ``example.csv`` (:data:`REMOTE_PATHS` says where each one
lives in the repository).

Every file is checked against the SHA-256 recorded in ``jasco_utils/data/SHA256SUMS``
(:func:`jasco_utils.data.dataset.checksums`). A download goes to ``NAME.part`` and is moved to
``NAME`` only once verified, so a folder never holds half a file under its real name; an
interrupted run resumes from the ``.part`` files (HTTP ``Range``). Network trouble (refused
or dropped connections, timeouts, truncated bodies, HTTP 429 and 5xx) is retried with
exponential backoff; a file that cannot be had is reported and the others carry on.
Only the standard library speaks HTTP (:mod:`urllib.request`).

>>> len(REMOTE_PATHS), REMOTE_PATHS["1.wav"], REMOTE_PATHS["example.csv"]
(82, 'dataset/v0/1.wav', 'evaluation/example.csv')
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from tqdm import tqdm

from jasco_utils import __version__
from jasco_utils.data.dataset import N_CLIPS, checksums
from jasco_utils.io import sha256_file

#: The dataset's repository.
DATASET_REPO = "https://github.com/BenoitWang/What_Are_They_Doing"
#: The commit every file is taken from (its checksums are in ``data/SHA256SUMS``).
DATASET_COMMIT = "e728f83c6014d97a47294ab4810a6390598f8af5"
#: Raw-file root of the repository at :data:`DATASET_COMMIT`; ``--base-url`` replaces it.
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/BenoitWang/What_Are_They_Doing/{DATASET_COMMIT}"
#: Local file name -> path in the repository, in download order.
REMOTE_PATHS: dict[str, str] = {
    "v0.csv": "dataset/v0/v0.csv",
    **{f"{i}.wav": f"dataset/v0/{i}.wav" for i in range(1, N_CLIPS + 1)},
    "example.csv": "evaluation/example.csv",
}
#: Suffix of a file being downloaded (``1.wav.part``).
PART_SUFFIX = ".part"

_CHUNK = 1 << 16
_USER_AGENT = f"jasco-utils/{__version__} (+{DATASET_REPO})"
_NOT_FOUND_CODES = frozenset({403, 404, 410})


class DownloadError(Exception):
    """A problem that stops the whole download (e.g. the destination is not writable)."""


class FileStatus(str, enum.Enum):
    """What became of one file."""

    DOWNLOADED = "downloaded"
    PRESENT = "already present"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file.

    Attributes:
        name: Local file name (``"1.wav"``).
        url: The URL it was (or would have been) fetched from.
        status: Downloaded, already present, or failed.
        reason: Why it failed (empty otherwise), or a note on a download.
    """

    name: str
    url: str
    status: FileStatus
    reason: str = ""


@dataclass
class DownloadReport:
    """The outcome of :func:`download_dataset`, one :class:`FileResult` per file.

    Attributes:
        dest: The folder the files were written to.
        base_url: The repository root they were fetched from.
        results: One entry per requested file, in download order.
    """

    dest: Path
    base_url: str
    results: list[FileResult] = field(default_factory=list)

    def _with(self, status: FileStatus) -> list[FileResult]:
        return [r for r in self.results if r.status is status]

    @property
    def downloaded(self) -> list[FileResult]:
        """Files fetched and verified by this run."""
        return self._with(FileStatus.DOWNLOADED)

    @property
    def present(self) -> list[FileResult]:
        """Files that were already there with the right checksum."""
        return self._with(FileStatus.PRESENT)

    @property
    def failed(self) -> list[FileResult]:
        """Files that could not be had; see their ``reason``."""
        return self._with(FileStatus.FAILED)

    @property
    def ok(self) -> bool:
        """True when every requested file is in ``dest`` and verified."""
        return not self.failed

    def summary(self) -> str:
        """A human-readable account: counts, each failure with its URL and reason, what to do."""
        n = len(self.results)
        lines = [
            f"What Are They Doing v0 -> {self.dest}",
            f"  source: {self.base_url}",
            f"  {n} file{'s' * (n != 1)}: {len(self.downloaded)} downloaded, {len(self.present)} already present, "
            f"{len(self.failed)} failed",
        ]
        for r in self.results:
            if r.status is FileStatus.DOWNLOADED and r.reason:
                lines.append(f"  note: {r.name}: {r.reason}")
        if self.ok:
            lines.append(f"All {n} file{'s' * (n != 1)} in place, each matching its SHA-256.")
            return "\n".join(lines)
        lines.append("Failed:")
        lines.extend(f"  {r.name}: {r.reason}" for r in self.failed)  # each reason names its URL
        lines += [
            "What to do: re-run `jasco data download` with the same --dest: verified files are",
            "skipped and partial ones resume from their .part file. If the source stays",
            "unreachable, a file is not found or its checksum differs, pass --base-url with a",
            f"mirror of {DATASET_REPO} at commit {DATASET_COMMIT}",
            "(the URL under which dataset/v0/v0.csv and evaluation/example.csv are found).",
        ]
        return "\n".join(lines)


class _Retry(Exception):
    """A failure worth another attempt (network trouble, HTTP 429/5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Fail(Exception):
    """A failure that another attempt will not fix (HTTP 404, 403, other 4xx)."""


def download_dataset(
    dest: str | os.PathLike[str],
    *,
    base_url: str = DEFAULT_BASE_URL,
    files: Iterable[str] | None = None,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 0.5,
    max_backoff: float = 8.0,
    progress: bool = True,
) -> DownloadReport:
    """Fetch the dataset into ``dest``, verifying every file; resume what is partial.

    Files already in ``dest`` with the right SHA-256 are skipped. Each file is written to
    ``NAME.part`` (resumed with an HTTP ``Range`` request when it exists), verified,
    fsynced and renamed to ``NAME``. A completed download with the wrong checksum is
    fetched once more from scratch before it counts as failed.

    Args:
        dest: Target folder; created if missing.
        base_url: Root under which the repository's files are found (a mirror of
            :data:`DEFAULT_BASE_URL`); a trailing slash is ignored.
        files: Local names to fetch (keys of :data:`REMOTE_PATHS`); default all 82.
        retries: Attempts per file for transient failures (connection errors, timeouts,
            truncated bodies, HTTP 429 and 5xx); at least 1.
        timeout: Seconds to wait for a connection or for data on it.
        backoff: Delay before the second attempt; it doubles with each further attempt.
        max_backoff: Cap of that delay (and of a server's ``Retry-After``).
        progress: Show a progress bar (only where stderr is a terminal).

    Returns:
        A :class:`DownloadReport`; ``report.ok`` is False when any file failed.

    Raises:
        DownloadError: ``dest`` cannot be created or written, the checksum list is
            missing, ``base_url`` is not http(s), or ``retries``/``timeout`` are not positive.
        ValueError: ``files`` names a file that is not part of the dataset.
    """
    names = _select(files)
    base = base_url.rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise DownloadError(f"base URL {base_url!r} is not an http:// or https:// URL")
    if retries < 1:
        raise DownloadError(f"retries must be at least 1 (got {retries})")
    if not timeout > 0:
        raise DownloadError(f"timeout must be positive (got {timeout})")
    try:
        sums = checksums()
    except OSError as e:
        raise DownloadError(f"cannot read the checksum list: {e}; reinstall jasco") from e
    if missing := [n for n in names if n not in sums]:
        raise DownloadError(f"no SHA-256 recorded for {', '.join(missing)}; reinstall jasco")
    dest = _writable_dir(Path(dest).expanduser())

    report = DownloadReport(dest=dest, base_url=base)
    with tqdm(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None if progress else True,
        desc="jasco-v0",
    ) as bar:
        for i, name in enumerate(names, 1):
            bar.set_description_str(f"{i}/{len(names)} {name}", refresh=False)
            url = f"{base}/{REMOTE_PATHS[name]}"
            try:
                result = _download_one(
                    name,
                    url,
                    dest,
                    sums[name],
                    retries=retries,
                    timeout=timeout,
                    backoff=backoff,
                    max_backoff=max_backoff,
                    bar=bar,
                )
            except OSError as e:  # network errors are handled inside: this one is local
                raise DownloadError(f"cannot write {name} in {dest}: {e}") from e
            report.results.append(result)
    return report


def _select(files: Iterable[str] | None) -> list[str]:
    """Requested names in canonical order, or all of them."""
    if files is None:
        return list(REMOTE_PATHS)
    wanted = set([files] if isinstance(files, str) else files)
    if unknown := sorted(wanted - REMOTE_PATHS.keys()):
        raise ValueError(
            f"not files of the dataset: {', '.join(unknown)} "
            f"(expected v0.csv, 1.wav ... {N_CLIPS}.wav, example.csv)"
        )
    return [n for n in REMOTE_PATHS if n in wanted]


def _writable_dir(dest: Path) -> Path:
    """Create ``dest`` and check a file can be written there."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=dest):
            pass
    except OSError as e:
        raise DownloadError(f"cannot write to {dest}: {e.strerror or e}") from e
    return dest


def _download_one(
    name: str,
    url: str,
    dest: Path,
    expected: str,
    *,
    retries: int,
    timeout: float,
    backoff: float,
    max_backoff: float,
    bar: tqdm,
) -> FileResult:
    """Bring one file into ``dest``: skip, resume, download, verify, rename."""
    final = dest / name
    part = dest / f"{name}{PART_SUFFIX}"
    note = ""
    if final.is_file():
        if sha256_file(final) == expected:
            part.unlink(missing_ok=True)
            return FileResult(name, url, FileStatus.PRESENT)
        note = "replaced a copy whose SHA-256 differed"
    if part.is_file() and sha256_file(part) == expected:  # complete, interrupted before the rename
        _finalize(part, final)
        return FileResult(name, url, FileStatus.DOWNLOADED, note)

    digest = ""
    for fresh in (False, True):
        if fresh:  # the completed .part was wrong: once more from scratch
            part.unlink(missing_ok=True)
        error = _fetch_with_retries(
            url, part, retries=retries, timeout=timeout, backoff=backoff, max_backoff=max_backoff, bar=bar
        )
        if error:
            return FileResult(name, url, FileStatus.FAILED, error)
        digest = sha256_file(part)
        if digest == expected:
            _finalize(part, final)
            return FileResult(name, url, FileStatus.DOWNLOADED, note)
    part.unlink(missing_ok=True)
    return FileResult(
        name,
        url,
        FileStatus.FAILED,
        f"checksum mismatch: {url} served content with SHA-256 {digest}, expected {expected} "
        f"(checked twice, the second time downloaded from scratch); it is not the file of "
        f"commit {DATASET_COMMIT[:7]}",
    )


def _fetch_with_retries(
    url: str,
    part: Path,
    *,
    retries: int,
    timeout: float,
    backoff: float,
    max_backoff: float,
    bar: tqdm,
) -> str:
    """Complete ``part`` from ``url``; return "" on success, else why it failed."""
    last: _Retry | None = None
    for attempt in range(1, retries + 1):
        if last is not None:
            delay = _backoff_delay(attempt - 1, backoff, max_backoff)
            if last.retry_after is not None:
                delay = max(delay, min(last.retry_after, max_backoff))
            time.sleep(delay)
        try:
            _fetch(url, part, timeout=timeout, bar=bar)
            return ""
        except _Fail as e:
            return str(e)
        except _Retry as e:
            last = e
    kept = part.stat().st_size if part.is_file() else 0
    tail = f"; {kept} bytes kept in {part.name}" if kept else ""
    return f"gave up after {retries} attempt{'s' * (retries != 1)}: {last}{tail}"


def _backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Delay after the ``attempt``-th failed attempt: ``base * 2**(attempt - 1)``, capped.

    >>> [_backoff_delay(a, 0.5, 3.0) for a in (1, 2, 3, 4)]
    [0.5, 1.0, 2.0, 3.0]
    """
    return min(cap, base * 2 ** (attempt - 1))


def _fetch(url: str, part: Path, *, timeout: float, bar: tqdm) -> None:
    """One request: resume (or restart) ``part`` and read the body to its end.

    Only network operations are guarded; an ``OSError`` from the local file propagates.

    Raises:
        _Retry: Connection trouble, a truncated body, HTTP 429 or 5xx.
        _Fail: Any other HTTP error (404, 403, ...) or an unexpected status.
    """
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        with contextlib.closing(e):
            code, reason, retry_after = e.code, e.reason, _retry_after(e.headers)
        if code == 416 and offset:  # .part as long as the file or longer: start over
            part.unlink()
            return _fetch(url, part, timeout=timeout, bar=bar)
        if code == 429 or code >= 500:
            raise _Retry(f"HTTP {code} {reason} from {url}", retry_after) from None
        if code in _NOT_FOUND_CODES:
            raise _Fail(f"not found at {url} (HTTP {code} {reason})") from None
        raise _Fail(f"HTTP {code} {reason} from {url}") from None
    except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
        raise _Retry(f"cannot fetch {url}: {_describe(e)}") from None

    with resp:
        if resp.status == 200:  # no Range sent, or the server ignored it: start over
            _read_body(resp, url, part, "wb", 0, bar)
            return
        if resp.status != 206:
            raise _Fail(f"unexpected HTTP {resp.status} {resp.reason} from {url}")
        start = _range_start(resp.headers.get("Content-Range", ""))
        if start == offset:
            _read_body(resp, url, part, "ab", offset, bar)
            return
        if not offset:
            raise _Retry(f"{url} sent partial content unasked (Content-Range starting at {start})")
    # A resume from another byte than asked for: start over.
    part.unlink()
    _fetch(url, part, timeout=timeout, bar=bar)


def _read_body(
    resp: http.client.HTTPResponse, url: str, part: Path, mode: str, offset: int, bar: tqdm
) -> None:
    """Write the body of ``resp`` to ``part`` (``mode`` "ab" or "wb"); check it is whole.

    Raises:
        _Retry: The connection broke, or closed before ``Content-Length`` bytes arrived.
    """
    length = _int_or_none(resp.headers.get("Content-Length"))
    received = 0
    with open(part, mode) as fh:
        while True:
            try:
                chunk = resp.read(_CHUNK)
            except (OSError, http.client.HTTPException) as e:  # IncompleteRead, reset, timeout
                raise _Retry(
                    f"connection to {url} broke after {offset + received} bytes: {_describe(e)}"
                ) from None
            if not chunk:
                break
            fh.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if length is not None and received < length:
        raise _Retry(f"connection to {url} closed after {offset + received} of {offset + length} bytes")


def _finalize(part: Path, final: Path) -> None:
    """Flush ``part`` to disk and rename it to ``final`` (atomic on one file system)."""
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, final)
    if os.name == "posix":  # make the rename itself durable
        with contextlib.suppress(OSError):
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _range_start(content_range: str) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``.

    >>> _range_start("bytes 100-199/200"), _range_start("garbage")
    (100, None)
    """
    unit, _, spec = content_range.strip().partition(" ")
    if unit.lower() != "bytes":
        return None
    return _int_or_none(spec.partition("-")[0])


def _retry_after(headers: Message | None) -> float | None:
    """Seconds from a ``Retry-After: N`` header (HTTP dates are ignored)."""
    value = headers.get("Retry-After") if headers is not None else None
    seconds = _int_or_none(value)
    return float(seconds) if seconds is not None and seconds >= 0 else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _describe(e: BaseException) -> str:
    """A short description of a network error (unwrapping ``URLError``)."""
    if isinstance(e, urllib.error.URLError) and not isinstance(e.reason, str):
        e = e.reason  # type: ignore[assignment]
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, http.client.IncompleteRead):
        return f"body cut short ({len(e.partial)} bytes read, {e.expected} more expected)"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
