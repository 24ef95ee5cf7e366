"""The embedded CPU engine for real (llama.cpp running the SmolLM2 GGUF shipped in a PyPI
package), `jasco judge` end to end, and resuming after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("xllamacpp", reason="xllamacpp is not installed (make setup installs it)")

from helpers.outputs import outputs_table  # noqa: E402

from jasco_utils.judging.parsing import parse_judgement  # noqa: E402
from jasco_utils.judging.prompts import answer_json_schema, judge_messages  # noqa: E402
from jasco_utils.models import (  # noqa: E402
    EngineError,
    SamplingConfig,
    StructuredOutput,
    make_backend,
)
from jasco_utils.models.embedded import bundled_model_path  # noqa: E402

try:
    bundled_model_path()
except EngineError as e:  # pragma: no cover - depends on the environment
    pytest.skip(str(e), allow_module_level=True)

FAST = SamplingConfig(max_tokens=24)


@pytest.fixture(scope="module")
def embedded():
    backend = make_backend("embedded")
    yield backend
    backend.close()


def test_generates_deterministically(embedded):
    convs = [judge_messages(r) for r in outputs_table([1]).head(2).to_dict(orient="records")]
    first = embedded.generate(convs, FAST)
    again = embedded.generate(convs[::-1], FAST)[::-1]
    assert all(r.ok for r in first)
    assert [r.text for r in first] == [r.text for r in again]
    meta = first[0].metadata
    assert meta["engine"] == "embedded" and meta["revision"].startswith("sha256:") and meta["prompt_tokens"] > 900


def test_json_schema_constrains_the_answer(embedded):
    convs = [judge_messages(r) for r in outputs_table([2]).head(2).to_dict(orient="records")]
    schema = {k: v for k, v in answer_json_schema().items()}
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in ("rating", "orientation")}
    schema["required"] = ["rating", "orientation"]
    out = embedded.generate(convs, SamplingConfig(max_tokens=40), StructuredOutput(json_schema=schema))
    for r in out:
        obj = json.loads(r.text)
        assert obj["rating"] in (0, 1, 2) and parse_judgement(r.text).parsed
    with pytest.raises(EngineError, match="JSON schema only"):
        embedded.generate(convs, FAST, StructuredOutput(regex="Rating: [012]"))


def _judge_cmd(outputs: Path, store: Path, out_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jasco_utils.cli",
        "judge",
        str(outputs),
        "--judge",
        "smollm2",
        "--max-tokens",
        "24",
        "--no-reask",
        "--chunk-size",
        "2",
        "--store",
        str(store),
        "--out-dir",
        str(out_dir),
    ]


def _stored(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_cli_judge_then_rerun_makes_no_call(tmp_path):
    outputs = tmp_path / "allm.csv"
    outputs_table([3]).to_csv(outputs, index=False)
    cmd = _judge_cmd(outputs, tmp_path / "calls.sqlite", tmp_path / "judged")
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "8 model calls" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "8 from cache, 0 model calls" in again.stdout
    table = pd.read_csv(tmp_path / "judged" / "allm__smollm2.csv")
    assert len(table) == 8 and table["judge"].eq("SmolLM2-135M-Instruct").all()
    assert pd.read_parquet(tmp_path / "judged" / "allm__smollm2.parquet").shape == table.shape


def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path):
    outputs = tmp_path / "allm.csv"
    outputs_table([4]).to_csv(outputs, index=False)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # an uninterrupted run
    ref = subprocess.run(
        _judge_cmd(outputs, tmp_path / "ref.sqlite", tmp_path / "ref"),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert ref.returncode == 0, ref.stderr[-2000:]

    # a run killed with SIGKILL once a few results are stored, then resumed
    store = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(
        _judge_cmd(outputs, store, tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 300
    while _stored(store) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_killed = _stored(store)
    assert 3 <= n_killed < 8
    assert not (tmp_path / "killed" / "allm__smollm2.csv").exists()

    resumed = subprocess.run(
        _judge_cmd(outputs, store, tmp_path / "killed"), capture_output=True, text=True, timeout=600, env=env
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{n_killed} from cache, {8 - n_killed} model calls" in resumed.stdout
    with sqlite3.connect(store) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM calls")]
    assert len(keys) == len(set(keys)) == 8

    a = pd.read_csv(tmp_path / "ref" / "allm__smollm2.csv")
    b = pd.read_csv(tmp_path / "killed" / "allm__smollm2.csv")
    volatile = ["from_cache", "started_at", "finished_at", "latency_s"]
    pd.testing.assert_frame_equal(a.drop(columns=volatile), b.drop(columns=volatile))
