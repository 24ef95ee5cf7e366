"""Tests of :mod:`jasco_utils.data.download` against a loopback HTTP server (no internet).

The server serves the real dataset copy at ``../shared/jasco-v0`` (next to the repository)
under the repository's layout and injects faults per file: corrupted content, 404, a
connection dropped mid-body, 503, a stall. pooch's waits between attempts are recorded
instead of slept (the ``waits`` fixture).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pooch.core
import pytest
from helpers.clips import REAL_DATA_DIR

from jasco_utils import cli
from jasco_utils.data.dataset import checksums
from jasco_utils.data.download import (
    DATASET_COMMIT,
    DEFAULT_BASE_URL,
    REMOTE_PATHS,
    DownloadError,
    DownloadReport,
    FileStatus,
    download_dataset,
)

DATA_SRC = REAL_DATA_DIR
ALL_FILES = ["v0.csv", *(f"{i}.wav" for i in range(1, 81)), "example.csv"]
# Served under a path like the real one, so that base_url is more than scheme://host:port.
PREFIX = f"/BenoitWang/What_Are_They_Doing/{DATASET_COMMIT}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Server(ThreadingHTTPServer):
    """Serves DATA_SRC as the repository at PREFIX; records every GET and its Range header.

    ``faults`` maps a file name to one of: ``"corrupt"`` (last byte flipped, always),
    ``"missing"`` (404), ``"drop-once"`` (first GET: full Content-Length, half the body, close),
    ``"503-once"``, ``"503-always"``, ``"stall-once"`` (first GET: no answer for 1 s),
    ``"stall-midway"`` (first GET: half the body, then nothing for 2 s).
    """

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.faults: dict[str, str] = {}
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{PREFIX}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and left: expected in these tests

    def ranges(self, name: str) -> list[str | None]:
        """The Range header of every GET of ``name`` (None where there was none)."""
        with self.lock:
            return [rng for n, rng in self.log if n == name]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _route(self) -> str | None:
        path = self.path.split("?", 1)[0]
        if path == f"{PREFIX}/evaluation/example.csv":
            return "example.csv"
        m = re.fullmatch(re.escape(PREFIX) + r"/dataset/v0/(v0\.csv|\d+\.wav)", path)
        return m[1] if m and (self.server.root / m[1]).is_file() else None

    def do_GET(self) -> None:
        name = self._route()
        if name is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        srv = self.server
        with srv.lock:
            srv.log.append((name, rng))
            nth = sum(1 for n, _ in srv.log if n == name)
        fault = srv.faults.get(name)
        if fault == "stall-once" and nth == 1:
            time.sleep(1.0)
            return
        if fault == "missing":
            self.send_error(404)
            return
        if fault == "503-always" or (fault == "503-once" and nth == 1):
            self.send_error(503)
            return
        data = (srv.root / name).read_bytes()
        if fault == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.send_response(200)  # a Range header is recorded, never honoured
        body = data
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "stall-midway" and nth == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(2.0)
            return
        if fault == "drop-once" and nth == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="session")
def data_src() -> Path:
    if not (DATA_SRC / "v0.csv").is_file():
        pytest.skip(f"the dataset copy is absent ({DATA_SRC}); these tests serve it from loopback")
    return DATA_SRC


@pytest.fixture
def server(data_src: Path) -> Iterator[_Server]:
    srv = _Server(data_src)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds pooch waits between attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(pooch.core, "time", SimpleNamespace(sleep=slept.append))
    return slept


def _download(server: _Server, dest: Path, files: list[str] | None, **kw: object) -> DownloadReport:
    opts: dict = {"retries": 3, "timeout": 5.0, "progress": False}
    opts.update(kw)
    return download_dataset(dest, base_url=server.url, files=files, **opts)


def _status(report: DownloadReport) -> dict[str, FileStatus]:
    return {r.name: r.status for r in report.results}


def _assert_verified(dest: Path, names: list[str]) -> None:
    sums = checksums()
    for name in names:
        assert _sha256(dest / name) == sums[name], name


# --- the file list ---------------------------------------------------------------------------


def test_remote_paths_cover_every_checksummed_file() -> None:
    assert list(REMOTE_PATHS) == ALL_FILES
    assert set(REMOTE_PATHS) == set(checksums())
    assert REMOTE_PATHS["v0.csv"] == "dataset/v0/v0.csv"
    assert REMOTE_PATHS["80.wav"] == "dataset/v0/80.wav"
    assert REMOTE_PATHS["example.csv"] == "evaluation/example.csv"
    assert DEFAULT_BASE_URL.endswith(f"/BenoitWang/What_Are_They_Doing/{DATASET_COMMIT}")


# --- success ---------------------------------------------------------------------------------


def test_full_download_verifies_every_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "new" / "jasco-v0"  # created, parents included
    report = _download(server, dest, None)
    assert report.ok, report.summary()
    assert len(report.downloaded) == 82 and not report.present and not report.failed
    assert sorted(p.name for p in dest.iterdir()) == sorted(ALL_FILES)  # no temporary file left
    assert all(rng is None for _, rng in server.log)  # whole files, no byte ranges
    _assert_verified(dest, ALL_FILES)
    assert "82 downloaded" in report.summary()


def test_rerun_on_complete_folder_requests_nothing(server: _Server, data_src: Path, tmp_path: Path) -> None:
    for name in ALL_FILES:
        shutil.copyfile(data_src / name, tmp_path / name)
    report = _download(server, tmp_path, None)
    assert report.ok
    assert server.log == []
    assert all(s is FileStatus.PRESENT for s in _status(report).values())
    assert len(report.present) == 82
    assert "82 already present" in report.summary()


def test_files_subset_only_fetches_those(server: _Server, tmp_path: Path) -> None:
    report = _download(server, tmp_path, ["example.csv", "47.wav", "v0.csv"])
    assert [r.name for r in report.results] == ["v0.csv", "47.wav", "example.csv"]
    assert report.ok
    assert {n for n, _ in server.log} == {"v0.csv", "47.wav", "example.csv"}
    _assert_verified(tmp_path, ["v0.csv", "47.wav", "example.csv"])


# --- failures that are reported --------------------------------------------------------------


def test_corrupted_file_fails_checksum_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.faults["2.wav"] = "corrupt"
    report = _download(server, tmp_path, ["1.wav", "2.wav", "3.wav"])
    assert not report.ok
    assert _status(report) == {
        "1.wav": FileStatus.DOWNLOADED,
        "2.wav": FileStatus.FAILED,
        "3.wav": FileStatus.DOWNLOADED,
    }
    (bad,) = report.failed
    assert "checksum" in bad.reason and checksums()["2.wav"] in bad.reason
    assert bad.url == f"{server.url}/dataset/v0/2.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.wav", "3.wav"]  # nothing of 2.wav
    assert server.ranges("2.wav") == [None, None, None]  # each attempt a whole new download
    _assert_verified(tmp_path, ["1.wav", "3.wav"])
    summary = report.summary()
    assert "1 failed" in summary and bad.url in summary and "--base-url" in summary


def test_missing_file_fails_with_its_url_and_is_not_retried(
    server: _Server, tmp_path: Path, waits: list[float]
) -> None:
    server.faults["3.wav"] = "missing"
    report = _download(server, tmp_path, ["v0.csv", "3.wav", "example.csv"])
    assert not report.ok
    (bad,) = report.failed
    url = f"{server.url}/dataset/v0/3.wav"
    assert bad.name == "3.wav"
    assert f"not found at {url}" in bad.reason and "404" in bad.reason
    assert server.ranges("3.wav") == [None]
    assert waits == []
    assert not (tmp_path / "3.wav").exists()
    _assert_verified(tmp_path, ["v0.csv", "example.csv"])
    assert url in report.summary()


def test_persistent_503_gives_up_after_retries(server: _Server, tmp_path: Path, waits: list[float]) -> None:
    server.faults["4.wav"] = "503-always"
    report = _download(server, tmp_path, ["4.wav", "5.wav"], retries=3)
    assert _status(report) == {"4.wav": FileStatus.FAILED, "5.wav": FileStatus.DOWNLOADED}
    (bad,) = report.failed
    assert "gave up after 3 attempts" in bad.reason and "503" in bad.reason
    assert len(server.ranges("4.wav")) == 3
    assert waits == [1, 2]  # bounded: pooch waits 1 s, then 2 s
    assert "re-run" in report.summary()


def test_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = download_dataset(
        tmp_path, base_url=f"http://127.0.0.1:{port}", files=["v0.csv"],
        retries=2, timeout=2.0, progress=False,
    )  # fmt: skip
    assert not report.ok
    assert "gave up after 2 attempts" in report.failed[0].reason
    assert list(tmp_path.iterdir()) == []


# --- retries, interrupted runs, leftovers ---------------------------------------------------


def test_dropped_connection_is_retried_from_scratch(server: _Server, tmp_path: Path) -> None:
    server.faults["5.wav"] = "drop-once"
    report = _download(server, tmp_path, ["5.wav", "6.wav"])
    assert report.ok, report.summary()
    assert server.ranges("5.wav") == [None, None]
    _assert_verified(tmp_path, ["5.wav", "6.wav"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["5.wav", "6.wav"]


def test_interrupted_run_leaves_nothing_and_next_run_fetches_only_what_is_missing(
    server: _Server, tmp_path: Path
) -> None:
    server.faults["7.wav"] = "drop-once"
    first = _download(server, tmp_path, ["7.wav", "8.wav"], retries=1)
    assert _status(first) == {"7.wav": FileStatus.FAILED, "8.wav": FileStatus.DOWNLOADED}
    assert "broke before the whole file arrived" in first.failed[0].reason
    assert [p.name for p in tmp_path.iterdir()] == ["8.wav"]  # never half a file, under any name
    second = _download(server, tmp_path, ["7.wav", "8.wav"], retries=1)
    assert _status(second) == {"7.wav": FileStatus.DOWNLOADED, "8.wav": FileStatus.PRESENT}
    assert server.ranges("7.wav") == [None, None] and server.ranges("8.wav") == [None]
    _assert_verified(tmp_path, ["7.wav", "8.wav"])


def test_run_interrupted_mid_file_leaves_no_partial_file(server: _Server, tmp_path: Path) -> None:
    server.faults["9.wav"] = "stall-midway"
    partial: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        partial.extend(p.stat().st_size for p in tmp_path.iterdir() if p.name != "8.wav")
        raise KeyboardInterrupt  # what Ctrl-C does while half of 9.wav is written

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            _download(server, tmp_path, ["8.wav", "9.wav", "10.wav"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert len(partial) == 1 and partial[0] > 0  # 9.wav was half written, under a temporary name
    assert [p.name for p in tmp_path.iterdir()] == ["8.wav"]  # and nothing of it is left
    report = _download(server, tmp_path, ["8.wav", "9.wav", "10.wav"])
    assert [r.status for r in report.results] == [FileStatus.PRESENT, FileStatus.DOWNLOADED, FileStatus.DOWNLOADED]
    assert server.ranges("8.wav") == [None] and server.ranges("9.wav") == [None, None]
    _assert_verified(tmp_path, ["8.wav", "9.wav", "10.wav"])


def test_transient_503_is_retried(server: _Server, tmp_path: Path, waits: list[float]) -> None:
    server.faults["v0.csv"] = "503-once"
    report = _download(server, tmp_path, ["v0.csv"])
    assert report.ok
    assert server.ranges("v0.csv") == [None, None]
    assert waits == [1]
    _assert_verified(tmp_path, ["v0.csv"])


def test_timeout_is_retried(server: _Server, tmp_path: Path) -> None:
    server.faults["8.wav"] = "stall-once"
    report = _download(server, tmp_path, ["8.wav"], timeout=0.2)
    assert report.ok, report.summary()
    assert server.ranges("8.wav") == [None, None]
    _assert_verified(tmp_path, ["8.wav"])


def test_stalled_server_gives_up_with_timed_out(server: _Server, tmp_path: Path) -> None:
    server.faults["9.wav"] = "stall-once"
    report = _download(server, tmp_path, ["9.wav"], retries=1, timeout=0.2)
    assert not report.ok
    assert "gave up after 1 attempt:" in report.failed[0].reason and "timed out" in report.failed[0].reason
    assert list(tmp_path.iterdir()) == []


def test_partial_leftover_under_its_name_is_fetched_again(server: _Server, data_src: Path, tmp_path: Path) -> None:
    data = (data_src / "10.wav").read_bytes()
    (tmp_path / "10.wav").write_bytes(data[: len(data) // 2])  # e.g. copied by hand, cut short
    report = _download(server, tmp_path, ["10.wav"])
    assert _status(report) == {"10.wav": FileStatus.DOWNLOADED}
    assert report.downloaded[0].reason.startswith("replaced")
    assert server.ranges("10.wav") == [None]
    _assert_verified(tmp_path, ["10.wav"])


def test_file_with_wrong_content_is_replaced(server: _Server, tmp_path: Path) -> None:
    (tmp_path / "15.wav").write_bytes(b"not the clip")
    report = _download(server, tmp_path, ["15.wav"])
    assert report.ok and report.downloaded[0].reason.startswith("replaced")
    assert "replaced a copy whose SHA-256 differed" in report.summary()
    _assert_verified(tmp_path, ["15.wav"])


def test_wrong_file_on_server_leaves_the_wrong_local_copy_alone(server: _Server, tmp_path: Path) -> None:
    (tmp_path / "16.wav").write_bytes(b"not the clip")
    server.faults["16.wav"] = "corrupt"
    report = _download(server, tmp_path, ["16.wav"], retries=1)
    assert not report.ok and "checksum mismatch after 1 attempt:" in report.failed[0].reason
    assert (tmp_path / "16.wav").read_bytes() == b"not the clip"  # moved into place only once verified


# --- problems that stop everything -----------------------------------------------------------


def test_unwritable_dest_raises(tmp_path: Path) -> None:
    dest = tmp_path / "a-file"
    dest.write_text("")
    with pytest.raises(DownloadError, match="cannot write to"):
        download_dataset(dest, base_url="http://127.0.0.1:9", progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": "ftp://example.org"}, DownloadError),
        ({"retries": 0}, DownloadError),
        ({"timeout": 0}, DownloadError),
        ({"files": ["81.wav"]}, ValueError),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        download_dataset(tmp_path, progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


# --- the command line ------------------------------------------------------------------------


def test_cli_download_succeeds(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "data"
    assert cli.main(["data", "download", "--dest", str(dest), "--base-url", server.url]) == 0
    assert "82 downloaded" in capsys.readouterr().out
    _assert_verified(dest, ALL_FILES)


def test_cli_download_missing_file_exits_1(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.faults["80.wav"] = "missing"
    dest = tmp_path / "data"
    assert cli.main(["data", "download", "--dest", str(dest), "--base-url", server.url + "/"]) == 1
    out = capsys.readouterr().out
    assert "81 downloaded" in out and f"{server.url}/dataset/v0/80.wav" in out
    assert not (dest / "80.wav").exists()


def test_cli_download_unwritable_dest_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "a-file"
    dest.write_text("")
    assert cli.main(["data", "download", "--dest", str(dest), "--base-url", "http://127.0.0.1:9"]) == 1
    assert "cannot write to" in capsys.readouterr().err
