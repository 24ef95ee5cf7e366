"""Download the *What Are They Doing* dataset, v0, from its public repository.

The dataset (Wang et al., arXiv:2409.14526) is licensed CC BY-NC 4.0, so this project never
ships it: this module fetches its 82 files (``v0.csv``, ``1.wav`` ... ``80.wav``,
``example.csv``; :data:`REMOTE_PATHS`) from :data:`DATASET_REPO` at :data:`DATASET_COMMIT`
into one flat folder with :mod:`pooch`: a registry of the SHA-256 sums in ``data/SHA256SUMS``
(:func:`jasco_utils.data.dataset.checksums`), its HTTP downloader and its bounded retries.

A file present with the right checksum is not requested, one with another is fetched again.
A download takes its real name only once verified, so an interrupted run leaves no partial
file under a final name, and the next run fetches only what is missing or wrong. A file is
fetched whole (the files are small): there is no byte-range resume. Network trouble, HTTP
408, 429 and 5xx, and checksum mismatches are retried after 1 s, 2 s, ...; other 4xx are not.
A failed file is reported and the others carry on.

>>> len(REMOTE_PATHS), REMOTE_PATHS["1.wav"], REMOTE_PATHS["example.csv"]
(82, 'dataset/v0/1.wav', 'evaluation/example.csv')
"""

from __future__ import annotations

import enum
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pooch
import requests
from tqdm import tqdm

from jasco_utils.core import __version__
from jasco_utils.data.dataset import N_CLIPS, checksums

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

_WHAT_TO_DO = f"""\
What to do: re-run `jasco data download` with the same --dest; only missing or wrong files are
fetched. If the source stays unreachable, a file is not found or its checksum differs, pass
--base-url with a mirror of {DATASET_REPO} at commit {DATASET_COMMIT}
(the URL under which dataset/v0/v0.csv and evaluation/example.csv are found)."""
_HEADERS = {"User-Agent": f"jasco-utils/{__version__} (+{DATASET_REPO})", "Accept-Encoding": "identity"}


class DownloadError(Exception):
    """A problem that stops the whole download (e.g. the destination is not writable)."""


class FileStatus(enum.StrEnum):
    """What became of one file."""

    DOWNLOADED = "downloaded"
    PRESENT = "already present"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: local ``name``, its ``url``, ``status``, and a ``reason``
    (why it failed, or a note on a download; empty otherwise)."""

    name: str
    url: str
    status: FileStatus
    reason: str = ""


def _with_status(status: FileStatus, doc: str) -> property:
    """A read-only list of the report's results with ``status``."""
    return property(lambda report: [r for r in report.results if r.status is status], doc=doc)


@dataclass
class DownloadReport:
    """The outcome of :func:`download_dataset`: one :class:`FileResult` per requested file, in
    download order, for the files written to ``dest`` from ``base_url``."""

    dest: Path
    base_url: str
    results: list[FileResult] = field(default_factory=list)

    downloaded = _with_status(FileStatus.DOWNLOADED, "Files fetched and verified by this run.")
    present = _with_status(FileStatus.PRESENT, "Files that were already there with the right checksum.")
    failed = _with_status(FileStatus.FAILED, "Files that could not be had; see their ``reason``.")

    @property
    def ok(self) -> bool:
        """True when every requested file is in ``dest`` and verified."""
        return not self.failed

    def summary(self) -> str:
        """A human-readable account: counts, each failure with its URL and reason, what to do."""
        n, s = len(self.results), "s" * (len(self.results) != 1)
        lines = [
            f"What Are They Doing v0 -> {self.dest}",
            f"  source: {self.base_url}",
            f"  {n} file{s}: {len(self.downloaded)} downloaded, {len(self.present)} already present, "
            f"{len(self.failed)} failed",
            *(f"  note: {r.name}: {r.reason}" for r in self.downloaded if r.reason),
        ]
        if self.ok:
            return "\n".join([*lines, f"All {n} file{s} in place, each matching its SHA-256."])
        return "\n".join([*lines, "Failed:", *(f"  {r.name}: {r.reason}" for r in self.failed), _WHAT_TO_DO])


class _NotRetried(Exception):
    """An HTTP error another attempt will not fix (pooch retries every ``requests`` error)."""


class _Downloader(pooch.HTTPDownloader):
    """pooch's HTTP downloader, with a 4xx other than 408 and 429 raised as :class:`_NotRetried`."""

    def __call__(self, url: str, output_file: str, pup: pooch.Pooch, check_only: bool = False) -> bool | None:
        try:
            return super().__call__(url, output_file, pup, check_only)
        except requests.HTTPError as e:
            code, why = e.response.status_code, e.response.reason
            if 400 <= code < 500 and code not in (408, 429):
                where = "not found at" if code in (403, 404, 410) else "refused by"
                raise _NotRetried(f"{where} {url} (HTTP {code} {why})") from None
            raise


def download_dataset(
    dest: str | os.PathLike[str],
    *,
    base_url: str = DEFAULT_BASE_URL,
    files: Iterable[str] | None = None,
    retries: int = 4,
    timeout: float = 30.0,
    progress: bool = True,
) -> DownloadReport:
    """Fetch the dataset into ``dest``, verifying every file; skip those already right.

    Args:
        dest: Target folder; created if missing.
        base_url: Root under which the repository's files are found (a mirror of
            :data:`DEFAULT_BASE_URL`); a trailing slash is ignored.
        files: Local names to fetch (keys of :data:`REMOTE_PATHS`); default all 82.
        retries: Attempts per file (network trouble, HTTP 408/429/5xx, checksum mismatch); >= 1.
        timeout: Seconds to wait for a connection or for data on it.
        progress: Show a progress bar over the files (only where stderr is a terminal).

    Returns:
        A :class:`DownloadReport`; ``report.ok`` is False when any file failed.

    Raises:
        DownloadError: ``dest`` cannot be written, ``base_url`` is not http(s), or
            ``retries``/``timeout`` are not positive.
        ValueError: ``files`` names a file that is not part of the dataset.
    """
    wanted = set(REMOTE_PATHS if files is None else [files] if isinstance(files, str) else files)
    if unknown := sorted(wanted - REMOTE_PATHS.keys()):
        expected = f"v0.csv, 1.wav ... {N_CLIPS}.wav, example.csv"
        raise ValueError(f"not files of the dataset: {', '.join(unknown)} (expected {expected})")
    base = base_url.rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise DownloadError(f"base URL {base_url!r} is not an http:// or https:// URL")
    if retries < 1 or not timeout > 0:
        raise DownloadError(f"retries must be >= 1 and timeout > 0 (got retries={retries}, timeout={timeout})")
    dest = Path(dest).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=dest).close()
    except OSError as e:
        raise DownloadError(f"cannot write to {dest}: {e.strerror or e}") from e

    hashes = {n: f"sha256:{h}" for n, h in checksums().items()}
    urls = {n: f"{base}/{path}" for n, path in REMOTE_PATHS.items()}
    registry = pooch.create(dest, base, registry=hashes, urls=urls, retry_if_failed=retries - 1)
    downloader = _Downloader(timeout=timeout, headers=_HEADERS)
    report = DownloadReport(dest=dest, base_url=base)
    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("WARNING")  # pooch logs each file at INFO; the report says it all
    try:
        names = [n for n in REMOTE_PATHS if n in wanted]
        for name in tqdm(names, desc="jasco-v0", unit="file", disable=None if progress else True):
            report.results.append(_fetch(registry, downloader, name, retries))
    finally:
        logger.setLevel(level)
    return report


def _fetch(registry: pooch.Pooch, downloader: _Downloader, name: str, retries: int) -> FileResult:
    """Bring one file into the registry's folder and say what became of it."""
    url, attempts = registry.get_url(name), f"{retries} attempt{'s' * (retries != 1)}"
    try:
        action = registry.fetch(name, downloader=downloader, processor=lambda _path, act, _pup: act)
    except _NotRetried as e:
        return FileResult(name, url, FileStatus.FAILED, str(e))
    except requests.RequestException as e:  # an OSError too: caught before the local ones
        return FileResult(name, url, FileStatus.FAILED, f"gave up after {attempts}: {_describe(e, url)}")
    except ValueError as e:  # pooch's "SHA256 hash of downloaded file (1.wav) ... expected X but got Y. ..."
        why = f"checksum mismatch after {attempts}: {url} is not the file of commit {DATASET_COMMIT[:7]}"
        return FileResult(name, url, FileStatus.FAILED, f"{why} ({str(e).partition('. ')[0]})")
    except OSError as e:
        raise DownloadError(f"cannot write {name} in {registry.abspath}: {e}") from e
    note = "replaced a copy whose SHA-256 differed" if action == "update" else ""
    return FileResult(name, url, FileStatus.PRESENT if action == "fetch" else FileStatus.DOWNLOADED, note)


def _describe(e: requests.RequestException, url: str) -> str:
    """A short account of a network error that names the URL."""
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code} {e.response.reason} from {url}"
    if isinstance(e, requests.Timeout) or "timed out" in str(e).lower():
        return f"no answer from {url} (timed out)"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return f"connection to {url} broke before the whole file arrived"
    cause = getattr(e.args[0], "reason", e) if e.args else e  # urllib3's MaxRetryError -> its cause
    return f"cannot fetch {url}: {str(cause).split('): ', 1)[-1]}"
