"""The end-to-end run: manifest -> ALLM outputs -> judgements -> Table II and Figure 2.

Each stage reads files the previous one wrote, so any stage can be re-run alone. Each model
(every ALLM, every judge) runs its stage function in its own Python process
(:mod:`jasco_utils.pipeline.stage`), here one after another (:mod:`jasco_utils.pipeline.local`)
or as Ray tasks (:mod:`jasco_utils.pipeline.ray_executor`): :func:`choose_executor` picks
one, once. All calls go through the same call store
(``data/processed/calls.sqlite`` by default), so a re-run is fast and an interrupted one resumes.

Run configurations (:func:`jasco_utils.config.load_run_config`) say which clips, which ALLMs,
which judges and how each generates; a run writes its configuration, resolved, to
``RUN_DIR/config.json`` when it starts (:func:`start_run`), and every stage of the run reads
that (:func:`run_config`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jasco_utils.analysis.judge_check import measure
from jasco_utils.analysis.usage import usage_lines
from jasco_utils.config import EXECUTORS, RunConfig, load_run_config, run_config_file
from jasco_utils.core.io import make_folder
from jasco_utils.core.paths import DEFAULT_STORE, NOTEBOOKS_DIR, PROCESSED_DIR, PROJECT_ROOT, RUNS_DIR, dataset_dir
from jasco_utils.data.manifest import build_manifest, format_clip_list, write_manifest
from jasco_utils.inference.allm import answer_diversity_warnings
from jasco_utils.judging.controls import write_controls
from jasco_utils.judging.run import judge_controls
from jasco_utils.judging.tables import read_checked
from jasco_utils.models.spec import ModelSpec
from jasco_utils.pipeline.jobs import Job, plan_jobs
from jasco_utils.pipeline.local import execute_local
from jasco_utils.report.check import write_check_report
from jasco_utils.run import Run

__all__ = [
    "RunConfig",
    "check_judges",
    "choose_executor",
    "execute",
    "load_run_config",
    "prepare_manifest",
    "reproduce",
    "run_config",
    "run_inference",
    "run_judge_check",
    "run_judging",
    "run_summary",
    "start_run",
]


def choose_executor(config: RunConfig, executor: str | None = None) -> str:
    """Where the run's model stages execute: ``executor`` (``--executor``) when given, else the
    run configuration's (``local`` unless it says ``ray``). The one place the choice is made.

    Raises:
        ValueError: An executor that is not one of :data:`jasco_utils.config.EXECUTORS`.
    """
    chosen = executor or config.executor
    if chosen not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, not {chosen!r}")
    return chosen


def execute(
    jobs: Sequence[Job],
    run_dir: str | os.PathLike[str],
    store: str | os.PathLike[str],
    executor: str,
    address: str | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Run the jobs on the chosen executor (:func:`choose_executor`); return the tables they wrote
    (one per job, shards joined).

    Raises:
        StageError: (ray) jobs failed; every failed model named with its reason.
        RuntimeError: (local) the first job that failed (as :func:`jasco_utils.pipeline.stage.run_stage`).
    """
    if executor == "local":
        return execute_local(jobs, run_dir, store)
    from jasco_utils.pipeline.ray_executor import execute_on_ray  # Ray is imported only when it is used

    return execute_on_ray(jobs, run_dir, store, address, log)


def prepare_manifest(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    data_dir: str | None = None,
    all_clips: bool = False,
    clips: list[int] | None = None,
) -> Path:
    """Write the run's manifest (its clips x 8 instructions) to ``RUN_DIR/manifest.csv``.

    The clips are ``clips`` when given, else all 80 with ``all_clips``, else the configuration's.
    """
    clips = clips or (None if all_clips else config.clips)
    return write_manifest(build_manifest(dataset_dir(data_dir), clips=clips), Run(run_dir).manifest_path)


def run_inference(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    data_dir: str | None = None,
    all_clips: bool = False,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    clips: list[int] | None = None,
    executor: str | None = None,
    address: str | None = None,
) -> list[Path]:
    """Produce every ALLM's outputs table (one process per ALLM, or one Ray task per replica); return their paths.

    The clips: ``clips`` when given, else all 80 with ``all_clips``, else the configuration's.
    ``executor`` (default the configuration's, :func:`choose_executor`) and ``address``: :func:`execute`.
    """
    prepare_manifest(config, run_dir, data_dir, all_clips, clips)
    jobs = plan_jobs(config, run_dir, ["infer"], data_dir=data_dir)
    return execute(jobs, run_dir, store, choose_executor(config, executor), address)


def run_judging(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    outputs: list[Path] | None = None,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    executor: str | None = None,
    address: str | None = None,
) -> list[Path]:
    """Judge every outputs table with every judge (one process per judge and table, or one Ray task per replica)."""
    jobs = plan_jobs(config, run_dir, ["judge"], outputs=outputs)
    return execute(jobs, run_dir, store, choose_executor(config, executor), address)


def run_judge_check(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    data_dir: str | None = None,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    executor: str | None = None,
    address: str | None = None,
) -> list[Path]:
    """The run's judge check (its ``[judge_check]`` section): control answers judged by every judge.

    Writes the control table of the check's clips and, one process per judge (with the
    run's judging settings), each judge's judged control table, in ``RUN_DIR/judge_check``;
    :func:`jasco_utils.analysis.judge_check.run_check_report` measures them.

    Returns:
        The judged control tables (none when the check is off).
    """
    if not config.judge_check:
        return []

    write_controls(config.judge_check_clips, dataset_dir(data_dir), Run(run_dir).check_dir)
    return execute(plan_jobs(config, run_dir, ["check"]), run_dir, store, choose_executor(config, executor), address)


def run_stages(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    data_dir: str | None = None,
    all_clips: bool = False,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    clips: list[int] | None = None,
    executor: str | None = None,
    address: str | None = None,
    log=print,
) -> list[Path]:
    """Every model stage of the run at once (ALLMs, judges, the judge check): on the ray executor,
    each judge starts when the outputs it judges exist and independent stages run side by side.

    ``jasco reproduce --executor ray`` calls this before the notebooks, which then find their
    stages done (:func:`jasco_utils.pipeline.jobs.read_jobs`).

    Returns:
        Every table written.
    """
    prepare_manifest(config, run_dir, data_dir, all_clips, clips)
    if config.judge_check:
        write_controls(config.judge_check_clips, dataset_dir(data_dir), Run(run_dir).check_dir)
    jobs = plan_jobs(config, run_dir, ["infer", "judge", "check"], data_dir=data_dir, log=log)
    return execute(jobs, run_dir, store, choose_executor(config, executor), address, log=log)


def check_judges(
    specs: Sequence[ModelSpec],
    clips: list[int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    reask: bool = True,
    chunk_size: int = 256,
    progress: bool = True,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> dict[str, Any]:
    """The judge check with some judges, in this process: build, judge, measure, report (``jasco check-judge``).

    Writes the control table (``judge-check.csv``), each judge's judged control table
    (``judge-check__KEY.csv`` and ``.parquet``) and the report
    (:func:`jasco_utils.analysis.judge_check.write_check_report`) in ``out_dir``. A run
    configuration's check runs each judge in its own process instead (:func:`run_judge_check`).

    Args:
        specs: The judges (their generation settings as they are, over the built-in default).
        clips: Clip ids (all 80 when ``None``); each gets one instruction and its control answers.
        data_dir: The dataset folder.
        store: The call store (default ``data/processed/calls.sqlite``).
        out_dir: Where the tables and the report go (default ``data/processed/judge_check``).
        reask, chunk_size, progress: As :func:`jasco_utils.judging.run.judge_outputs`.
        n_resamples, seed: The intervals' bootstrap (:func:`jasco_utils.analysis.judge_check.measure`).

    Returns:
        ``records`` (the measures), ``runs`` (each judge's counts) and the written ``paths``.
    """
    out_dir = out_dir or Run(PROCESSED_DIR).check_dir
    controls = write_controls(clips, data_dir, out_dir)
    runs = [
        judge_controls(
            spec, controls, out_dir, store or DEFAULT_STORE, reask=reask, chunk_size=chunk_size, progress=progress
        )
        for spec in specs
    ]
    records = measure(read_checked([r.paths[0] for r in runs]), n_resamples=n_resamples, seed=seed)
    paths = [controls, *(p for r in runs for p in r.paths), *write_check_report(records, out_dir)]
    return {"records": records, "runs": runs, "paths": paths}


def start_run(config: RunConfig | str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> RunConfig:
    """Start a run: its configuration (a loaded one, or a name or path to load), resolved, to ``RUN_DIR/config.json``."""
    cfg = config if isinstance(config, RunConfig) else load_run_config(config)
    Run(run_dir).write_config(cfg)
    return cfg


def run_config(run_dir: str | os.PathLike[str], config: str | os.PathLike[str] = "") -> RunConfig:
    """The configuration a run was started with (``RUN_DIR/config.json``, written by :func:`start_run`).

    With ``config`` (a notebook's parameter), the run's ``config.json`` is used when it was
    written from that file as it is now; otherwise (a notebook opened on its own, another
    configuration, or the file edited since) the run is started anew with ``config``.

    Raises:
        ConfigError: No ``config.json`` and no ``config``, or a configuration that cannot be used.
    """
    run = Run(run_dir)
    if not config:
        return run.config()
    if run.config_path.is_file():
        cfg, path = run.config(), run_config_file(config)
        if cfg.path.resolve() == path.resolve() and cfg.text == path.read_text(encoding="utf-8"):
            return cfg
    return start_run(config, run_dir)


def notebooks() -> list[Path]:
    """The stage notebooks ``reproduce`` executes, in order (``notebooks/NN_*.ipynb``)."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def reproduce(
    config: RunConfig,
    run_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    data_dir: str | None = None,
    all_clips: bool = False,
    log=print,
    stream: bool = True,
    clips: list[int] | None = None,
    executor: str | None = None,
    address: str | None = None,
) -> Path:
    """Execute every stage notebook headlessly (papermill) for a run configuration.

    Each notebook gets the parameters it declares (read with ``papermill.inspect_notebook``)
    among ``config``, ``run_dir``, ``data_dir``, ``store``, ``figures_dir`` (default
    ``RUN_DIR/figures``), ``all_clips`` and ``clips`` (these clips, whatever the configuration says); executed copies go to ``RUN_DIR/notebooks``. With
    ``stream``, what the notebooks print (each stage's live progress, its summary) goes to
    this process's stdout and stderr as it happens.

    On the ray executor (``executor``, else the configuration's), every model stage runs first,
    at once (:func:`run_stages`; ``address``: the Ray cluster, default ``RAY_ADDRESS`` or a Ray
    instance started here); the notebooks then find their stages done and go on to the analysis.

    Returns:
        The run folder.

    Raises:
        papermill.PapermillExecutionError: A notebook failed (its executed copy shows where).
    """
    run_dir = Path(run_dir or RUNS_DIR / config.name).resolve()
    values = {
        "config": str(config.path),
        "run_dir": str(run_dir),
        "data_dir": data_dir or "",
        "store": str(Path(store or DEFAULT_STORE).resolve()),
        "figures_dir": str(Path(figures_dir or Run(run_dir).figures_dir).resolve()),
        "all_clips": bool(all_clips),
        "clips": format_clip_list(clips) if clips else "",
        "executor": executor or "",
        "ray_address": address or "",
    }
    layout = Run(run_dir)
    make_folder(layout.notebooks_dir)
    start_run(config, run_dir)
    started = time.time()
    if choose_executor(config, executor) == "ray":
        log(f"[{time.time() - started:6.0f} s] every model stage on the ray executor")
        run_stages(
            config,
            run_dir,
            data_dir,
            all_clips,
            values["store"],
            clips,
            "ray",
            address,
            log=lambda line: log(f"[{time.time() - started:6.0f} s] {line}"),
        )
    for source in notebooks():
        log(f"[{time.time() - started:6.0f} s] executing {source.name} -> {layout.notebooks_dir / source.name}")
        _execute_notebook(source, layout.notebooks_dir / source.name, values, stream)
    log(f"[{time.time() - started:6.0f} s] done.")
    return run_dir


def _execute_notebook(source: Path, out: Path, values: dict[str, Any], stream: bool) -> None:
    """Execute one notebook with the parameters it declares among ``values``; with ``stream``,
    what it prints goes to this process's stdout and stderr as it happens."""
    import papermill  # the notebooks' engine, imported only to run them

    declared = papermill.inspect_notebook(str(source))
    papermill.execute_notebook(
        str(source),
        str(out),
        parameters={k: v for k, v in values.items() if k in declared},
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        kernel_name="python3",
        # each cell's output (the stages' progress bars among it) as it happens
        stdout_file=sys.stdout if stream else None,
        stderr_file=sys.stderr if stream else None,
        # the kernel's own start-up and shut-down log lines say nothing to a user
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )


def run_summary(
    config: RunConfig, run_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str] | None = None
) -> str:
    """What a finished run shows its user: Table II (with the judge check under it), then where everything is."""
    layout = Run(run_dir)
    figures_dir = Path(figures_dir).resolve() if figures_dir else layout.figures_dir
    table = figures_dir / "table2.md"
    lines = ["", table.read_text(encoding="utf-8")] if table.is_file() else []
    lines += _answer_warnings(layout)  # the judges' warnings are in Table II's footnote, just above
    lines += [f"Table II:    {table} (.csv, .tex)", f"Figure 2:    {figures_dir / 'figure2.png'} (.pdf)"]
    if (figures_dir / "judge_check.png").is_file():
        lines.append(f"judge check: {figures_dir / 'judge_check.png'} (.json, .csv)")

    lines += [f"{'usage:' if i == 0 else '':<13}{line}" for i, line in enumerate(usage_lines(layout.root))]
    lines += [
        f"results:     {layout.results} (scores, intervals, judge check, provenance, usage)",
        f"notebooks:   {layout.notebooks_dir} (executed); the run's page: {layout.root / 'browse.html'}",
    ]
    if not config.paper:
        lines.append(
            f"(the {config.name} configuration proves the pipeline runs; its numbers are not the paper's results)"
        )
    return "\n".join(lines)


def _answer_warnings(layout: Run) -> list[str]:
    """Warnings about the run's ALLM answers: cut off at the token limit, or the same answer
    across many clips (the audio may not reach the model)."""
    out = []
    run = Run(layout.root)
    for path in layout.output_files():
        df = run.outputs(path.stem)
        status = df["status"]
        if status.eq("truncated").any():
            out.append(
                f"warning: {path.stem}: {int(status.eq('truncated').sum())} answer(s) cut off at max_tokens "
                "(judged as the original did; raise max_tokens to have them whole)"
            )
        out += [f"warning: {path.stem}: {w}" for w in answer_diversity_warnings(df[status != "failed"])]
    return out
