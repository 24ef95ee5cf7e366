"""No fault ever becomes a score, no write is ever half done, no secret is ever written.

Against a fault-injecting OpenAI-compatible server (:mod:`servers`): a table that mixes
failed and answered rows, answers cut off at the token limit, a re-ask that fails, a server
asking to wait (``Retry-After``). Against the file system: two processes creating one store,
a table pair interrupted between its two renames, leftovers of killed writers, a read-only
and a full disk (tmpfs mounts; skipped where the machine does not allow mounting).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.outputs import outputs_table
from helpers.servers import FaultyChatServer

import jasco_utils.core.io as jio
from jasco_utils.cli import main
from jasco_utils.core.io import StorageError, TableError, read_table_checked, write_csv, write_pair
from jasco_utils.judging.judge import judge_table
from jasco_utils.models import make_backend
from jasco_utils.models.base import Response, SamplingConfig
from jasco_utils.models.store import Store

CONV = [{"role": "user", "content": "hello"}]


def _judge_argv(outputs: Path, url: str, out: Path, store: Path, *extra: str) -> list[str]:
    return [
        "judge",
        str(outputs),
        "--engine",
        "openai",
        "--model",
        "m",
        "--judge-name",
        "j",
        "--base-url",
        url,
        "--max-attempts",
        "2",
        "--backoff",
        "0.01",
        "--timeout",
        "5",
        "--out-dir",
        str(out),
        "--store",
        str(store),
        *extra,
    ]


def _backend(url: str, **kw):
    kw = {"backoff": 0.01, "timeout": 5.0, "max_attempts": 2, **kw}
    return make_backend("openai", "m", base_url=url, **kw)


def test_a_mixed_failed_and_ok_table_is_written_as_a_pair_and_summarised(tmp_path, capsys):
    outputs, out, store = tmp_path / "A.csv", tmp_path / "judged", tmp_path / "calls.sqlite"
    write_csv(outputs_table([1, 2]), outputs)

    def faulty(body):  # clip 2's third instruction always fails
        return "500" if "(clip 2, instruction 3)" in json.dumps(body) else "ok"

    with FaultyChatServer(default=faulty) as s:
        assert main(_judge_argv(outputs, s.url, out, store)) == 1
    said = capsys.readouterr()
    assert "1 failed" in said.out and "re-run" in said.out + said.err and "Traceback" not in said.err
    csv, parquet = out / "A__j.csv", out / "A__j.parquet"
    table, again = pd.read_csv(csv, keep_default_na=False), pd.read_parquet(parquet)
    assert len(table) == len(again) == 16 and table["status"].tolist() == again["status"].tolist()
    assert (table["status"] == "failed").sum() == 1 and again["latency_s"].dtype.kind == "f"
    assert again.loc[again["status"] == "failed", "latency_s"].isna().all()
    assert not list(out.glob(".*.tmp"))
    assert main(["score", str(out)]) == 1
    assert "judge call failed" in capsys.readouterr().err
    # the next run retries the failed row only, and the pair is replaced whole
    with FaultyChatServer() as s:
        assert main(_judge_argv(outputs, s.url, out, store)) == 0
        assert len(s.requests) == 1
    capsys.readouterr()
    assert pd.read_csv(csv)["status"].eq("ok").all() and pd.read_parquet(parquet)["status"].eq("ok").all()
    assert main(["score", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n_responses"] == 16


def test_truncated_answers_are_kept_marked_counted_and_warned_about(tmp_path, capsys):
    outputs, out, store = tmp_path / "A.csv", tmp_path / "judged", tmp_path / "calls.sqlite"
    answers = outputs_table([1, 2])
    answers["status"] = ["truncated" if i in (9, 10) else "ok" for i in range(16)]  # two ALLM answers cut off
    write_csv(answers, outputs)

    def cut(body):  # the judge's answers about clip 1 stop at the token limit
        return "length" if "(clip 1," in json.dumps(body) else "ok"

    with FaultyChatServer(default=cut) as s:
        assert main(_judge_argv(outputs, s.url, out, store)) == 0
    assert "8 truncated" in capsys.readouterr().out
    judged = pd.read_csv(out / "A__j.csv", keep_default_na=False)
    assert judged["status"].tolist() == ["truncated"] * 8 + ["ok"] * 8
    assert judged["allm_status"].tolist().count("truncated") == 2
    assert judged["rating"].tolist() == [2] * 16  # parsed as the original did: from whatever came back
    assert main(["score", "--json", str(out)]) == 0
    said = capsys.readouterr()
    [rec] = json.loads(said.out)
    assert rec["n_truncated"] == 10 and rec["n_responses"] == 16
    assert "10 scored answer(s) were cut off" in said.err
    # from the store, a truncated answer is still truncated
    with FaultyChatServer() as s:
        assert main(_judge_argv(outputs, s.url, out, store)) == 0 and not s.requests
    assert "8 truncated" in capsys.readouterr().out


def test_a_failed_reask_fails_the_row(tmp_path):
    def no_orientation(body):
        return "500" if body["messages"][-1]["content"].startswith("[Model Explanation]") else "ok"

    answer = "Explanation1: fine\nRating: 1\nExplanation2: it uses the sound and the words"
    with FaultyChatServer(default=no_orientation, answer=answer) as s, Store(tmp_path / "c.sqlite") as store:
        table, stats = judge_table(outputs_table([1]), _backend(s.url), store, progress=False)
    assert stats.reasked == 8 and stats.failed == 8 and stats.unparsed == 0
    assert table["status"].eq("failed").all() and table["error"].str.startswith("re-ask failed:").all()
    assert table["rating"].isna().all()
    path = tmp_path / "A__j.csv"
    table.to_csv(path, index=False)
    with pytest.raises(TableError, match="8 row\\(s\\) whose judge call failed"):
        read_judged_rows(path)
    # the next run asks the re-ask again (the first answers come from the store)
    with (
        FaultyChatServer(answer=lambda b: "Both" if "[Model Explanation]" in json.dumps(b) else answer) as s,
        Store(tmp_path / "c.sqlite") as store,
    ):
        table, stats = judge_table(outputs_table([1]), _backend(s.url), store, progress=False)
        assert len(s.requests) == 1
    assert table["status"].eq("ok").all() and table["orientation"].eq("Both").all() and stats.failed == 0


def read_judged_rows(path):
    from jasco_utils.judging.tables import read_judged

    return read_judged(path)


def test_retry_after_is_honoured():
    with FaultyChatServer(["retry-after:1"]) as s:
        t0 = time.perf_counter()
        [r] = _backend(s.url).generate([CONV], SamplingConfig())
        waited = time.perf_counter() - t0
    assert r.ok and r.metadata["attempts"] == 2 and waited >= 0.95  # the backoff alone would be 0.01 s
    with FaultyChatServer(["retry-after:100000"]) as s:
        t0 = time.perf_counter()
        [r] = _backend(s.url, max_attempts=3).generate([CONV], SamplingConfig())
        assert time.perf_counter() - t0 < 5 and len(s.requests) == 1
    assert not r.ok and "asked to wait 100000 s" in r.error


def _open_and_put(path: str, i: int, barrier) -> None:
    barrier.wait()
    with Store(path) as st:
        st.put(f"k{i}", {"messages": CONV}, Response("an answer", CONV, {"engine": "e", "model": "m"}))


def test_two_processes_on_a_fresh_store(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        path = str(tmp_path / f"r{round_}" / "calls.sqlite")
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_open_and_put, args=(path, i, barrier)) for i in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0], f"round {round_}"
        with Store(path) as st:
            assert st.count() == 2


def test_a_pair_interrupted_between_its_renames_is_detected(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_pair(pd.DataFrame({"a": [1, 2]}), path)
    leftover = tmp_path / ".t.csv.999999999.x1.tmp"  # left by a writer that was killed
    leftover.write_text("half")
    real = jio._move_into_place
    calls = []

    def crash_after_parquet(tmp, target):
        calls.append(target)
        if target.suffix == ".csv":
            raise KeyboardInterrupt  # the process dies between the two renames
        real(tmp, target)

    monkeypatch.setattr(jio, "_move_into_place", crash_after_parquet)
    with pytest.raises(KeyboardInterrupt):
        write_pair(pd.DataFrame({"a": [3, 4, 5]}), path)
    monkeypatch.undo()
    assert not leftover.exists() and not list(tmp_path.glob(".*.tmp"))
    assert pd.read_csv(path)["a"].tolist() == [1, 2]  # the CSV is the old one, whole
    with pytest.raises(TableError, match="does not match .*t.csv"):
        read_table_checked(tmp_path / "t.parquet")
    write_pair(pd.DataFrame({"a": [3, 4, 5]}), path)
    assert read_table_checked(tmp_path / "t.parquet")["a"].tolist() == ["3", "4", "5"]


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB tmpfs folder (skipped where mounting is not allowed)."""
    where = tmp_path / "fs"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root with mount rights)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_store_serves_a_cached_run_and_refuses_new_calls(small_fs, tmp_path):
    store_path = small_fs / "calls.sqlite"
    with FaultyChatServer() as s:
        with Store(store_path) as store:
            judge_table(outputs_table([1]), _backend(s.url), store, progress=False)
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
        n = len(s.requests)
        with Store(store_path) as store:
            assert store.read_only
            table, stats = judge_table(outputs_table([1]), _backend(s.url), store, progress=False)
            assert stats.from_cache == 8 and table["status"].eq("ok").all()
            with pytest.raises(StorageError, match=f"{store_path}: the call store is read-only and 8 call"):
                judge_table(outputs_table([2]), _backend(s.url), store, progress=False)
        assert len(s.requests) == n  # nothing was asked of the model
    with pytest.raises(StorageError, match="read-only"):
        write_pair(pd.DataFrame({"a": [1]}), small_fs / "out" / "t.csv")
    assert main(["manifest", "--out", str(small_fs / "m.csv")]) == 1


def test_a_full_disk_keeps_the_old_pair_and_says_so(small_fs, tmp_path, capsys):
    path = small_fs / "t.csv"
    write_pair(pd.DataFrame({"a": [1, 2]}), path)
    with Store(small_fs / "calls.sqlite") as store:
        store.put("k0", {"messages": CONV}, Response("an answer", CONV, {"engine": "e", "model": "m"}))
        with contextlib.suppress(OSError):
            with open(small_fs / "filler", "wb") as fh:
                fh.write(b"\0" * (4 << 20))  # more than fits
        big = pd.DataFrame({"text": ["x" * 1000] * 3000})
        with pytest.raises(StorageError, match=f"{path}: cannot write: the disk is full"):
            write_pair(big, path)
        with pytest.raises(StorageError, match="disk is full"):
            for i in range(1, 200):
                store.put(f"k{i}", {"messages": CONV}, Response("y" * 20000, CONV, {"engine": "e", "model": "m"}))
    assert pd.read_csv(path)["a"].tolist() == [1, 2]
    assert read_table_checked(small_fs / "t.parquet")["a"].tolist() == ["1", "2"]
    assert not list(small_fs.glob(".*.tmp"))
    outputs = tmp_path / "A.csv"
    write_csv(outputs_table([1]), outputs)
    with FaultyChatServer() as s:
        rc = main(_judge_argv(outputs, s.url, small_fs / "judged", tmp_path / "calls.sqlite"))
    err = capsys.readouterr().err
    assert rc == 1 and "disk is full" in err and "Traceback" not in err


CANARY = "sk-canary-7f3a9c21e8b44d06"


def test_a_secret_canary_is_written_nowhere(synthetic_dataset, tmp_path, capfd, monkeypatch):
    """A key in the environment, a server that echoes it in its errors, a base URL carrying
    it: after a run with faults and a full reproduce, no file the run wrote and nothing it
    printed holds the key."""
    monkeypatch.setenv("JASCO_CANARY_KEY", CANARY)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_csv(outputs_table([1, 2]), ws / "answers.csv")
    run, store = ws / "run", ws / "calls.sqlite"

    def echo_for_clip_2(body):
        return "echo-key" if "(clip 2," in json.dumps(body) else "ok"

    with FaultyChatServer(default=echo_for_clip_2) as s:
        (ws / "judges.toml").write_text(
            f'["canary"]\nengine = "openai"\nmodel = "m"\n'
            f'options = {{ base_url = "{s.url}", api_key_env = "JASCO_CANARY_KEY", max_attempts = 1 }}\n'
        )
        (ws / "run.toml").write_text(
            'name = "canary"\nclips = [1, 2]\n[judging]\njudges = ["canary"]\njudges_file = "judges.toml"\n'
            "[judge_check]\nenabled = false\n"
            f'[[allms]]\nname = "A"\nengine = "import"\npath = "{ws / "answers.csv"}"\n'
        )
        # the faulty pass: the key comes back in the server's errors for clip 2
        assert (
            main(
                [
                    "infer",
                    str(ws / "manifest.csv"),
                    "--import",
                    str(ws / "answers.csv"),
                    "--name",
                    "A",
                    "--out",
                    str(run / "outputs" / "A.csv"),
                ]
            )
            == 1
        )  # no manifest yet: refused, named
        assert (
            main(
                ["manifest", "--data-dir", str(synthetic_dataset), "--out", str(run / "manifest.csv"), "--clips", "1-2"]
            )
            == 0
        )
        assert (
            main(
                [
                    "infer",
                    str(run / "manifest.csv"),
                    "--import",
                    str(ws / "answers.csv"),
                    "--name",
                    "A",
                    "--out",
                    str(run / "outputs" / "A.csv"),
                    "--data-dir",
                    str(synthetic_dataset),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "judge",
                    str(run / "outputs" / "A.csv"),
                    "--judge",
                    "canary",
                    "--judges-file",
                    str(ws / "judges.toml"),
                    "--out-dir",
                    str(run / "judged"),
                    "--store",
                    str(store),
                ]
            )
            == 1
        )
        failed = pd.read_csv(run / "judged" / "A__canary.csv", keep_default_na=False)
        assert failed["status"].eq("failed").sum() == 8
        assert failed.loc[failed["status"] == "failed", "error"].str.contains("Incorrect API key").all()
        assert (
            main(
                [
                    "judge",
                    str(run / "outputs" / "A.csv"),
                    "--engine",
                    "openai",
                    "--model",
                    "m",
                    "--base-url",
                    s.url.replace("http://", f"http://user:{CANARY}@"),
                    "--out-dir",
                    str(ws / "elsewhere"),
                    "--store",
                    str(store),
                ]
            )
            == 1
        )
        # the healthy pass: the whole run, notebooks and all
        s.default = "ok"
        assert (
            main(
                [
                    "reproduce",
                    "--config",
                    str(ws / "run.toml"),
                    "--run-dir",
                    str(run),
                    "--store",
                    str(store),
                    "--data-dir",
                    str(synthetic_dataset),
                ]
            )
            == 0
        )
    printed = capfd.readouterr()
    assert "Incorrect API key" in printed.out + printed.err  # the faults were seen and reported...
    written = [p for p in ws.rglob("*") if p.is_file()]
    assert {"provenance.json", "results.json", "A__canary.parquet", "calls.sqlite", "02_judging.ipynb"} <= {
        p.name for p in written
    }
    holding = [str(p) for p in written if CANARY.encode() in p.read_bytes()]
    assert holding == [] and CANARY not in printed.out + printed.err  # ...but never the key
    with Store(store) as st:
        assert st.failures() and all("***" in f["error"] for f in st.failures())
