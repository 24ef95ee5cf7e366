"""Where a run's model stages execute: here, one after another (``local``), or as Ray tasks (``ray``).

A *stage job* is one model over one input: an ALLM over the run's manifest (``infer``), a judge
over one ALLM's outputs (``judge``), a judge over the judge check's control answers
(``check``). :func:`plan_jobs` lists a run's jobs; :func:`execute` runs them.

**local** (the default, :mod:`jasco_utils.pipeline.local`) runs each job in its own Python
process (:func:`jasco_utils.pipeline.stage.run_stage`), one after the other, against the run's
call store. **ray** runs each job as a Ray task (:mod:`jasco_utils.pipeline.ray_executor`).
:func:`jasco_utils.pipeline.reproduce.execute` picks one.

Every finished job (every shard, on the ray executor) appends a record to ``RUN_DIR/stages.jsonl``
(:func:`append_record`): stage, model, input, shard, start and end times, wall seconds, the
resources it held, executor and node.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from jasco_utils.config import RunConfig
from jasco_utils.core.io import make_folder, sha256_file
from jasco_utils.core.paths import PROJECT_ROOT, dataset_dir, judged_name
from jasco_utils.judging.controls import CONTROLS_STEM
from jasco_utils.models.base import now_iso
from jasco_utils.models.spec import ModelSpec
from jasco_utils.run import Run, as_run


class StageError(RuntimeError):
    """Jobs of a run failed; the message names each model and why."""


@dataclass(frozen=True)
class Job:
    """One model over one input.

    Attributes:
        stage: ``infer``, ``judge`` or ``check``.
        spec: The model.
        kwargs: The stage function's arguments (paths as text), ``store`` left out.
        out: The table the job writes (CSV; a Parquet copy beside it).
        source: The table it reads (the manifest, an outputs table, the control table).
        after: The id of the job whose table it reads, if that is a job of the run.
        shard: ``(i, n)``: shard ``i`` of ``n`` (its clips are ``kwargs["clips"]``).
        clips_from: The table whose clips the job's rows are, when ``source`` is not written
            yet (a judge of a run's ALLM: the run's manifest).
    """

    stage: str
    spec: ModelSpec
    kwargs: dict[str, Any]
    out: Path
    source: Path
    after: str | None = None
    shard: tuple[int, int] | None = None
    clips_from: Path | None = None

    @property
    def model_id(self) -> str:
        """The job without its shard: ``stage:model`` or ``stage:model:input``."""
        return f"{self.stage}:{self.spec.key}" + (f":{self.source.stem}" if self.stage == "judge" else "")

    @property
    def id(self) -> str:
        return self.model_id + (f"#{self.shard[0] + 1}/{self.shard[1]}" if self.shard else "")

    def fingerprint(self) -> str:
        """SHA-256 of what determines the job's table: stage, spec, arguments, shard and the
        input table's content (when it exists)."""
        blob = {
            "stage": self.stage,
            "spec": self.spec.to_dict(),
            "shard": self.shard,
            "kwargs": {k: v for k, v in self.kwargs.items() if k not in _PATH_ARGS},
            "source": sha256_file(self.source) if self.source.is_file() else str(self.source),
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


#: Stage arguments that are paths (rewritten for a task's own folder; not in the fingerprint).
_PATH_ARGS = ("manifest", "outputs", "controls", "out", "out_dir", "store", "data_dir")


def clip_shards(clips: Sequence[int], n: int) -> list[list[int]]:
    """Clips split into ``n`` contiguous runs, as even as can be (fewer when there are fewer clips).

    >>> clip_shards([1, 2, 3, 4, 5], 2)
    [[1, 2, 3], [4, 5]]
    >>> clip_shards([7], 3)
    [[7]]
    """
    n = max(1, min(n, len(clips)))
    size, extra = divmod(len(clips), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(clips[start:end]))
        start = end
    return out


def _table_clips(path: Path) -> list[int]:
    """The clip ids of a table, in the order they first appear."""

    ids = pd.to_numeric(pd.read_csv(path, usecols=["id"])["id"], errors="coerce").dropna().astype(int)
    return list(dict.fromkeys(ids.tolist()))


def shard_jobs(job: Job) -> list[Job]:
    """A job as its spec's ``replicas`` shards (the job itself when it has one replica).

    Each shard writes under ``RUN_DIR/shards/`` and takes a contiguous run of the clips the
    job would take (its ``clips`` argument, else every clip of its input table).
    """
    n = job.spec.replicas
    if n <= 1:
        return [job]
    table = job.clips_from or job.source
    clips = _table_clips(table)
    if job.kwargs.get("clips"):
        wanted = set(job.kwargs["clips"])
        clips = [c for c in clips if c in wanted]
    parts = clip_shards(clips, n)
    out = []
    for i, part in enumerate(parts):
        shard = (i, len(parts))
        folder = job.out.parent.parent / "shards" / f"{job.model_id.replace(':', '__')}__{i + 1}of{len(parts)}"
        kwargs = {**job.kwargs, "clips": part}
        kwargs["out" if "out" in kwargs else "out_dir"] = str(folder / job.out.name if "out" in kwargs else folder)
        out.append(replace(job, kwargs=kwargs, shard=shard))
    return out


def plan_jobs(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    stages: Iterable[str] = ("infer", "judge", "check"),
    data_dir: str | None = None,
    outputs: Sequence[Path] | None = None,
    log: Callable[[str], None] = print,
) -> list[Job]:
    """The run's jobs for some stages, in the local executor's order: every ALLM, then every judge
    over every outputs table, then the judge check with every judge.

    The manifest (``RUN_DIR/manifest.csv``) must be written already (``infer``), and so must the
    check's control table (``check``: :func:`jasco_utils.judging.controls.write_controls`).

    Args:
        config: The run configuration.
        run_dir: The run's folder.
        stages: Which stages.
        data_dir: The dataset folder (the ALLMs read the clips).
        outputs: The outputs tables the judges take (default: one per ALLM of the run, or, without
            ``infer``, those in the run's folder).
        log: Where a note about a skipped ALLM goes.
    """
    layout, stages = Run(run_dir), set(stages)
    jobs: list[Job] = []
    infer_of: dict[str, str] = {}
    if "infer" in stages:
        for spec in config.allms:
            out = layout.output_path(spec.key)
            if spec.engine == "import":
                src = Path(spec.path)
                src = src if src.is_absolute() else PROJECT_ROOT / src
                if not src.is_file():
                    if spec.optional:
                        log(f"{spec.name}: no answers at {src}; skipped (run the model elsewhere and put them there)")
                        continue
                    raise FileNotFoundError(f"{spec.name}: no answers at {src}")
                spec = spec.replace(path=str(src))
            job = Job(
                "infer",
                spec,
                {"manifest": str(layout.manifest_path), "out": str(out), "data_dir": str(dataset_dir(data_dir))},
                out,
                layout.manifest_path,
            )
            infer_of[str(out)] = job.id
            jobs.append(job)
    if "judge" in stages:
        tables = (
            list(outputs)
            if outputs is not None
            else ([j.out for j in jobs] if "infer" in stages else layout.output_files())
        )
        for table in tables:
            for spec in config.judges:
                out = layout.judged_path(Path(table).stem, spec.key)
                after = infer_of.get(str(table))
                jobs.append(
                    Job(
                        "judge",
                        spec,
                        {"outputs": str(table), "out_dir": str(layout.judged_dir)},
                        out,
                        Path(table),
                        after=after,
                        clips_from=layout.manifest_path if after else None,
                    )
                )
    if "check" in stages and config.judge_check:
        controls = layout.check_dir / f"{CONTROLS_STEM}.csv"
        for spec in config.judges:
            kwargs = {
                "controls": str(controls),
                "out_dir": str(layout.check_dir),
                "clips": config.judge_check_judge_clips.get(spec.key),
            }
            jobs.append(Job("check", spec, kwargs, layout.check_dir / judged_name(controls.stem, spec.key), controls))
    return jobs


# -- resources --------------------------------------------------------------------------------------


def _parallel_size(spec: ModelSpec) -> int:
    opts = spec.options
    return int(opts.get("tensor_parallel_size", 1) or 1) * int(opts.get("pipeline_parallel_size", 1) or 1)


def job_resources(spec: ModelSpec, cluster_gpus: float = 0.0) -> dict[str, float]:
    """What one replica of a model asks Ray for: ``num_cpus`` and ``num_gpus``.

    vLLM (as an engine, or as a cascade's text LLM) asks for tensor x pipeline parallel size
    GPUs on a cluster that has GPUs, and one CPU on one without (vLLM's CPU build); the embedded
    engine its ``threads`` (default 1); every other engine one CPU. ``resources`` on the spec
    overrides either.

    >>> from jasco_utils.models.spec import ModelSpec
    >>> job_resources(ModelSpec(key="j", engine="vllm", model="m", options={"tensor_parallel_size": 4}), 8)
    {'num_cpus': 1.0, 'num_gpus': 4.0}
    >>> job_resources(ModelSpec(key="j", engine="vllm", model="m", options={"tensor_parallel_size": 4}))
    {'num_cpus': 1.0, 'num_gpus': 0.0}
    """
    engine = spec.backend_engine
    gpus = float(_parallel_size(spec)) if engine == "vllm" and cluster_gpus > 0 else 0.0
    cpus = float(spec.options.get("threads") or 1) if engine == "embedded" else 1.0
    if spec.resources is not None:
        cpus = spec.resources.num_cpus if spec.resources.num_cpus is not None else cpus
        gpus = spec.resources.num_gpus if spec.resources.num_gpus is not None else gpus
    return {"num_cpus": cpus, "num_gpus": gpus}


# -- records ----------------------------------------------------------------------------------------


def append_record(run_dir: str | os.PathLike[str] | Run, record: dict[str, Any]) -> None:
    """Append one job's record to ``RUN_DIR/stages.jsonl`` (one JSON object per line;
    :meth:`jasco_utils.run.Run.stage_records` reads them)."""
    path = as_run(run_dir).stages_path
    make_folder(path.parent)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def stage_record(
    job: Job, started: str, t0: float, resources: dict[str, float], executor: str, node: str, **extra: Any
) -> dict[str, Any]:
    return {
        "stage": job.stage,
        "model": job.spec.key,
        "name": job.spec.name,
        "input": job.source.stem if job.stage == "judge" else None,
        "shard": list(job.shard) if job.shard else None,
        "started_at": started,
        "finished_at": now_iso(),
        "wall_s": round(time.perf_counter() - t0, 3),
        "num_gpus": resources.get("num_gpus", 0.0),
        "num_cpus": resources.get("num_cpus", 1.0),
        "executor": executor,
        "node": node,
        "job": job.id,
        **extra,
    }


def local_gpus() -> int:
    """The NVIDIA GPUs this machine's processes see (``CUDA_VISIBLE_DEVICES``, else ``/dev/nvidiaN``)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len([p for p in Path("/dev").glob("nvidia[0-9]*")])
