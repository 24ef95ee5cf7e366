"""The ray executor: a run's stage jobs (:mod:`jasco_utils.pipeline.jobs`) as Ray tasks on a cluster.

Each job runs as a Ray task (Ray: https://docs.ray.io), on a running cluster
(``--ray-address`` or ``RAY_ADDRESS``) or on a Ray instance started on this machine:

- a task asks for what its model needs (:func:`job_resources`): GPUs = tensor x pipeline
  parallel size for vLLM on a cluster with GPUs, CPUs for the CPU engines; Ray places it;
- a judge's task takes the ALLM tasks' results as its arguments, so Ray starts it once the
  outputs it judges exist; jobs that do not depend on each other run at the same time, as far
  as the cluster's resources allow;
- ``replicas = N`` on a model splits its rows by whole clips into N shards (contiguous runs of
  clips), each a task of its own; the driver joins the shards' tables, in order, into the table
  one replica writes;
- a task runs the same stage function, in its own process, against a call store of its own on
  its node's local disk (SQLite must not be shared over a network file system), seeded with the
  run store's calls of that model; it returns its tables and its new calls, and the driver
  merges the calls into the run's store (:meth:`jasco_utils.models.store.Store.merge`: keys are
  content hashes, so a merge is idempotent) as each task ends;
- a worker that dies (a killed process, a lost node) is retried by Ray, up to
  :data:`MAX_RETRIES` times; a retry on the same node resumes from the dead task's store. A task
  whose stage fails fails the run, naming the model and the reason, once the other jobs have
  ended (their calls are merged, so a re-run asks only for what is missing); the failed job's
  table is not written, and nothing is scored.

The driver also keeps ``RUN_DIR/jobs.json``: each finished job's fingerprint (model spec,
input table, arguments) and its table's SHA-256; a job whose fingerprint and table match is not
run again (the stage notebooks of a run that ``jasco reproduce --executor ray`` has run find
their jobs done).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from jasco_utils.core.io import atomic_open, make_folder, sha256_file, write_pair
from jasco_utils.core.paths import judged_name
from jasco_utils.core.secrets import looks_secret
from jasco_utils.models import default_model
from jasco_utils.models.base import now_iso
from jasco_utils.models.spec import ModelSpec
from jasco_utils.models.store import Store
from jasco_utils.pipeline.jobs import (
    Job,
    StageError,
    append_record,
    job_resources,
    shard_jobs,
    stage_record,
)
from jasco_utils.pipeline.local import execute_local
from jasco_utils.pipeline.stage import run_stage

#: How many times Ray runs a task again after its worker died (not after the stage failed).
MAX_RETRIES = 2
#: Environment variables passed on to Ray's workers (settings, never keys: a worker's node
#: must have its own API keys in its environment).
FORWARDED_ENV_PREFIXES = ("JASCO_", "VLLM_", "HF_", "TRANSFORMERS_", "TQDM_", "OMP_")
#: Where a task keeps its call store on its node (``JASCO_STAGE_DIR`` overrides it).
STAGE_DIR_ENV = "JASCO_STAGE_DIR"


def jobs_path(run_dir: str | os.PathLike[str]) -> Path:
    """``RUN_DIR/jobs.json``: the ray executor's finished jobs (fingerprint, table SHA-256, nodes)."""
    return Path(run_dir) / "jobs.json"


def read_jobs(run_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The finished jobs of ``RUN_DIR/jobs.json``, by job id (none when absent or unreadable)."""
    try:
        return json.loads(jobs_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _mark_done(run_dir, job: Job, shards: list[dict[str, Any]]) -> None:
    done = read_jobs(run_dir)
    done[job.model_id] = {
        "fingerprint": job.fingerprint(),
        "table_sha256": sha256_file(job.out),
        "finished_at": now_iso(),
        "shards": len(shards),
        "nodes": sorted({r.get("node_id") or r["node"] for r in shards}),
    }
    with atomic_open(jobs_path(run_dir), "w", encoding="utf-8") as fh:
        json.dump(done, fh, indent=1, sort_keys=True)


def _done(job: Job, done: dict[str, dict[str, Any]]) -> bool:
    """The job's table is in place, written by a job with the same fingerprint."""
    rec = done.get(job.model_id)
    return bool(
        rec
        and job.out.is_file()
        and rec.get("fingerprint") == job.fingerprint()
        and rec.get("table_sha256") == sha256_file(job.out)
    )


def _seed_filter(spec: ModelSpec) -> tuple[list[str], list[str] | None]:
    """The (engines, models) whose stored calls a task of this model may find in the run's store."""
    engine = spec.backend_engine
    if engine is None:
        return [], []
    engines = [engine] + (["faster-whisper"] if spec.engine == "cascade" else [])
    model = spec.model or default_model(engine)
    return engines, None if spec.engine == "cascade" else ([model] if model else None)


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES) and not looks_secret(k)}


def _ray_init(address: str | None, log: Callable[[str], None]):
    try:
        import ray
    except ImportError as e:
        raise StageError("the ray executor needs Ray: pip install -e '.[ray]' (make setup installs it)") from e
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        local = {"include_dashboard": False, "configure_logging": False} if address is None else {}
        try:
            ray.init(address=address, runtime_env={"env_vars": _forwarded_env()}, log_to_driver=False, **local)
        except Exception as e:  # noqa: BLE001 - Ray raises several kinds; the user is told what to check
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise StageError(
                f"cannot start or reach {where}: {type(e).__name__}: {e} (check --ray-address / "
                "RAY_ADDRESS, and that `ray status` there answers)"
            ) from e
        res = ray.cluster_resources()
        log(
            f"ray: {'cluster at ' + address if address else 'a local Ray instance'}: {len(ray.nodes())} node(s), "
            f"{res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"
        )
    return ray


def execute_on_ray(
    jobs: Sequence[Job], run_dir, store, address: str | None = None, log: Callable[[str], None] = print
) -> list[Path]:
    """Run the jobs as Ray tasks (see the module); return their tables, as :func:`jasco_utils.pipeline.reproduce.execute`.

    Imported answers (engine ``import``: a file on this machine, no model) are read here, first.
    """
    done = read_jobs(run_dir)
    todo = [j for j in jobs if not _done(j, done)]
    if len(todo) < len(jobs):
        log(f"ray: {len(jobs) - len(todo)} job(s) done already (RUN_DIR/jobs.json), {len(todo)} to run")
    for job in [j for j in todo if j.spec.engine == "import"]:
        execute_local([job], run_dir, store)
        _mark_done(run_dir, job, [{"node": socket.gethostname()}])
    todo = [j for j in todo if j.spec.engine != "import"]
    if not todo:
        return [job.out for job in jobs]
    ray = _ray_init(address, log)
    task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_ray_task)
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    refs: dict[str, list] = {}  # model id -> its shards' result refs
    meta: dict[Any, tuple[Job, Job, dict[str, float]]] = {}
    with Store(store) as st:
        for job in todo:
            upstream = refs.get(job.after, []) if job.after else []
            # put once in Ray's object store, shared by the job's shards (a ref argument is resolved)
            source_bytes = None if upstream else ray.put(job.source.read_bytes())
            engines, models = _seed_filter(job.spec)
            seed = ray.put(st.export(engines, models) if engines else [])
            res = job_resources(job.spec, gpus)
            for shard in shard_jobs(job):
                payload = {
                    "stage": shard.stage,
                    "spec": shard.spec.to_dict(),
                    "kwargs": shard.kwargs,
                    "source_name": job.source.name,
                    "id": shard.id,
                    "shard": shard.shard,
                    "fingerprint": shard.fingerprint(),
                }
                ref = task.options(name=shard.id, **res).remote(payload, source_bytes, seed, *upstream)
                refs.setdefault(job.model_id, []).append(ref)
                meta[ref] = (job, shard, res)
        _collect(ray, refs, meta, run_dir, st, log)
    return [job.out for job in jobs]


def _collect(ray, refs: dict[str, list], meta: dict, run_dir, st, log: Callable[[str], None]) -> None:
    """Wait for every task; merge each one's calls as it ends; write each job's table once all its
    shards are in; raise :class:`StageError` naming every failure at the end."""
    pending, results, failures = list(meta), {}, []
    t_start = time.perf_counter()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        ref = ready[0]
        job, shard, _ = meta[ref]
        try:
            result = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a failed task is reported with its model, below
            failures.append(f"{shard.id} ({job.spec.name}): {_reason(e)}")
            log(f"ray: {shard.id} failed")
            continue
        st.merge(result["calls"])
        results[ref] = result
        append_record(run_dir, result["record"])
        log(
            f"ray: {shard.id} done on {result['record']['node']} in {result['record']['wall_s']:.0f} s "
            f"({len(result['calls'])} new call(s); {time.perf_counter() - t_start:.0f} s into the run)"
        )
        shard_refs = refs[job.model_id]
        if all(r in results for r in shard_refs):
            write_pair(_join([results[r]["table"] for r in shard_refs]), job.out)
            _mark_done(run_dir, job, [results[r]["record"] for r in shard_refs])
    if failures:
        raise StageError(
            "stage(s) failed on the ray executor (their tables are not written; what the others "
            "called is in the store, so a re-run asks only for the rest):\n  " + "\n  ".join(failures)
        )


def _reason(err: Exception) -> str:
    text = str(getattr(err, "cause", None) or err)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " / ".join(lines[-3:])[-1500:] if lines else type(err).__name__


def _join(tables: list[bytes]):
    """The shards' tables (Parquet bytes), one after the other, as one table."""

    frames = [pd.read_parquet(io.BytesIO(t)) for t in tables]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


# -- the task, on a Ray worker -------------------------------------------------------------------


def stage_dir() -> Path:
    """Where tasks keep their call stores on this node (``JASCO_STAGE_DIR``, else the system's temporary folder)."""
    return Path(os.environ.get(STAGE_DIR_ENV) or Path(tempfile.gettempdir()) / "jasco-stages")


@dataclass
class _TaskFolder:
    root: Path
    inputs: Path = field(init=False)
    outputs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.inputs, self.outputs = self.root / "in", self.root / "out"
        make_folder(self.inputs)
        make_folder(self.outputs)


def _ray_task(payload: dict[str, Any], source: bytes | None, seed: list, *upstream: dict[str, Any]) -> dict[str, Any]:
    """One job (or shard) on a Ray worker: the stage function in its own process, against a store
    of its own; returns the table (Parquet bytes), the new calls and the record."""

    spec = ModelSpec.from_dict(payload["spec"])
    folder = _TaskFolder(stage_dir() / payload["fingerprint"])
    src = folder.inputs / payload["source_name"]
    if upstream:  # the outputs an ALLM's tasks returned: joined as the driver joins them
        write_pair(_join([u["table"] for u in upstream]), src)
    else:
        src.write_bytes(source)
    kwargs = dict(payload["kwargs"])
    stage_key = {"infer": "manifest", "judge": "outputs", "check": "controls"}[payload["stage"]]
    kwargs[stage_key] = str(src)
    if "out" in kwargs:
        kwargs["out"] = str(folder.outputs / Path(kwargs["out"]).name)
    else:
        kwargs["out_dir"] = str(folder.outputs)
    store = folder.root / "calls.sqlite"
    with Store(store) as st:
        resumed = len(st.keys())  # what a dead attempt of this task stored, on this node
        st.merge(seed)
    seeded = {row[0] for row in seed}
    started, t0 = now_iso(), time.perf_counter()
    run_stage(payload["stage"], spec, echo=False, die_with_parent=True, **kwargs, store=str(store))
    name = (
        Path(payload["kwargs"]["out"]).name
        if "out" in payload["kwargs"]
        else (judged_name(Path(payload["source_name"]).stem, spec.key))
    )
    table = (folder.outputs / name).with_suffix(".parquet").read_bytes()
    with Store(store) as st:
        calls = st.export(exclude=seeded)
    import ray

    job = Job(
        payload["stage"],
        spec,
        payload["kwargs"],
        Path(name),
        Path(payload["source_name"]),
        shard=tuple(payload["shard"]) if payload["shard"] else None,
    )
    ctx = ray.get_runtime_context()
    held = ctx.get_assigned_resources()
    record = stage_record(
        job,
        started,
        t0,
        {"num_cpus": held.get("CPU", 0.0), "num_gpus": held.get("GPU", 0.0)},
        "ray",
        socket.gethostname(),
        node_id=ctx.get_node_id(),
        pid=os.getpid(),
        resumed_calls=resumed,
    )
    shutil.rmtree(folder.root, ignore_errors=True)
    return {"table": table, "calls": calls, "record": record}
