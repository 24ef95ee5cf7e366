"""The end-to-end run: manifest -> ALLM outputs -> judgements -> Table II and Figure 2.

Each stage reads files the previous one wrote, so any stage can be re-run alone. Each model
(every ALLM, every judge) runs its stage function (:func:`jasco_utils.inference.run.answer_manifest`,
:func:`jasco_utils.judging.run.judge_outputs`) in its own Python process, given its
:class:`~jasco_utils.config.ModelSpec` as data: a model's memory, GPU memory included, is
really released before the next loads, and vLLM's spawned workers need no ``__main__`` guard
in a notebook kernel. All calls go through the same call store
(``data/processed/calls.sqlite`` by default), so a re-run is fast and an interrupted one resumes.

Run configurations (:func:`jasco_utils.config.load_run_config`) say which clips, which ALLMs,
which judges and how each generates; a run writes its configuration, resolved, to
``RUN_DIR/config.json`` when it starts (:func:`start_run`), and every stage of the run reads
that (:func:`run_config`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from jasco_utils.config import ModelSpec, RunConfig, load_run_config
from jasco_utils.io import make_folder
from jasco_utils.paths import (
    DEFAULT_STORE,
    PROCESSED_DIR,
    PROJECT_ROOT,
    RunLayout,
    dataset_dir,
)
from jasco_utils.run import Run

__all__ = ["RunConfig", "check_judges", "load_run_config", "prepare_manifest", "reproduce", "run_config",
           "run_inference", "run_judge_check", "run_judging", "run_stage", "run_summary", "start_run"]


def _stage_function(stage: str):
    if stage == "infer":
        from jasco_utils.inference.run import answer_manifest

        return answer_manifest
    if stage == "judge":
        from jasco_utils.judging.run import judge_outputs

        return judge_outputs
    if stage == "check":
        from jasco_utils.judging.run import judge_controls

        return judge_controls
    raise ValueError(f"unknown stage {stage!r}: infer, judge or check")


def _stage_main(payload: Mapping[str, Any]) -> int:
    """Run one stage for one model in this process, from :func:`run_stage`'s payload; print its summary."""
    spec = ModelSpec.from_dict(payload["spec"])
    kwargs = dict(payload["kwargs"])
    result = _stage_function(payload["stage"])(spec, **kwargs)
    if payload["stage"] == "infer":
        print(result.summary())
        for line in result.notes:
            print(line)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print(f"{spec.name}: {result.stats.summary()}\nwrote {result.paths[0]} and .parquet")
    return 1 if result.failed else 0


#: Seconds between two progress-bar updates of a stage's process (its output is relayed, not a terminal).
PROGRESS_INTERVAL_S = 2.0


def _relay(source: IO[bytes], sink: IO[str] | None, tail: list[str] | None = None) -> None:
    """Copy ``source`` to ``sink`` as it arrives (progress bars included), keeping the last 8 kB in ``tail``."""
    import codecs

    decoder, kept = codecs.getincrementaldecoder("utf-8")(errors="replace"), 0
    for data in iter(lambda: source.read1(4096), b""):
        chunk = decoder.decode(data)
        if sink is not None:
            sink.write(chunk)
            sink.flush()
        if tail is None:
            continue
        tail.append(chunk)
        kept += len(chunk)
        while kept > 8192 and len(tail) > 1:
            kept -= len(tail.pop(0))


def _die_with_parent() -> None:
    """In a child process (Linux): be killed when the parent dies, so a killed Ray worker leaves no stage behind."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_stage(stage: str, spec: ModelSpec, echo: bool = True, die_with_parent: bool = False, **kwargs: Any) -> None:
    """Run a stage function for one model in its own process and wait for it.

    The spec and the arguments travel as JSON (no command-line translation); the child
    calls the same function :func:`_stage_function` names. With ``echo``, the child's
    output (its progress bar: rows done of total, cached / called / failed, rate, time left;
    then its summary) reaches this process's stdout and stderr as it happens: a terminal, or
    the notebook cell that called it. With ``die_with_parent`` (Linux), the child is killed
    when this process dies (a Ray worker's stage).

    Raises:
        RuntimeError: The stage failed; the message holds the end of its error output.
    """
    import threading

    payload = {"stage": stage, "spec": spec.to_dict(),
               "kwargs": {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}}
    env = {**os.environ, "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", str(PROGRESS_INTERVAL_S))}
    proc = subprocess.Popen([sys.executable, "-m", "jasco_utils.pipeline"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT, env=env,
                            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None)
    err_tail: list[str] = []
    relays = [threading.Thread(target=_relay, args=(proc.stdout, sys.stdout if echo else None), daemon=True),
              threading.Thread(target=_relay, args=(proc.stderr, sys.stderr if echo else None, err_tail), daemon=True)]
    for t in relays:
        t.start()
    proc.stdin.write(json.dumps(payload).encode("utf-8"))
    proc.stdin.close()
    code = proc.wait()
    for t in relays:
        t.join()
    if code != 0:
        raise RuntimeError(f"{stage} with {spec.key} failed ({code}):\n{''.join(err_tail)[-4000:]}")


def prepare_manifest(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                     all_clips: bool = False, clips: list[int] | None = None) -> Path:
    """Write the run's manifest (its clips x 8 instructions) to ``RUN_DIR/manifest.csv``.

    The clips are ``clips`` when given, else all 80 with ``all_clips``, else the configuration's.
    """
    from jasco_utils.data.manifest import build_manifest, write_manifest

    clips = clips or (None if all_clips else config.clips)
    return write_manifest(build_manifest(dataset_dir(data_dir), clips=clips), RunLayout(run_dir).manifest)


def run_inference(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                  all_clips: bool = False, store: str | os.PathLike[str] = DEFAULT_STORE,
                  clips: list[int] | None = None, executor: str = "local", address: str | None = None) -> list[Path]:
    """Produce every ALLM's outputs table (one process per ALLM, or one Ray task per replica); return their paths.

    The clips: ``clips`` when given, else all 80 with ``all_clips``, else the configuration's.
    ``executor`` and ``address``: :func:`jasco_utils.executor.execute`.
    """
    from jasco_utils.executor import execute, plan_jobs

    prepare_manifest(config, run_dir, data_dir, all_clips, clips)
    jobs = plan_jobs(config, run_dir, ["infer"], data_dir=data_dir)
    return execute(jobs, run_dir, store, executor, address)


def run_judging(config: RunConfig, run_dir: str | os.PathLike[str], outputs: list[Path] | None = None,
                store: str | os.PathLike[str] = DEFAULT_STORE, executor: str = "local",
                address: str | None = None) -> list[Path]:
    """Judge every outputs table with every judge (one process per judge and table, or one Ray task per replica)."""
    from jasco_utils.executor import execute, plan_jobs

    return execute(plan_jobs(config, run_dir, ["judge"], outputs=outputs), run_dir, store, executor, address)


def run_judge_check(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                    store: str | os.PathLike[str] = DEFAULT_STORE, executor: str = "local",
                    address: str | None = None) -> list[Path]:
    """The run's judge check (its ``[judge_check]`` section): control answers judged by every judge.

    Writes the control table of the check's clips and, one process per judge (with the
    run's judging settings), each judge's judged control table, in ``RUN_DIR/judge_check``;
    :func:`jasco_utils.analysis.judge_check.run_check_report` measures them.

    Returns:
        The judged control tables (none when the check is off).
    """
    if not config.judge_check:
        return []
    from jasco_utils.executor import execute, plan_jobs
    from jasco_utils.judging.controls import write_controls

    write_controls(config.judge_check_clips, dataset_dir(data_dir), RunLayout(run_dir).check_dir)
    return execute(plan_jobs(config, run_dir, ["check"]), run_dir, store, executor, address)


def run_stages(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
               all_clips: bool = False, store: str | os.PathLike[str] = DEFAULT_STORE,
               clips: list[int] | None = None, executor: str = "ray", address: str | None = None,
               log=print) -> list[Path]:
    """Every model stage of the run at once (ALLMs, judges, the judge check): on the ray executor,
    each judge starts when the outputs it judges exist and independent stages run side by side.

    ``jasco reproduce --executor ray`` calls this before the notebooks, which then find their
    stages done (:func:`jasco_utils.executor.read_jobs`).

    Returns:
        Every table written.
    """
    from jasco_utils.executor import execute, plan_jobs

    prepare_manifest(config, run_dir, data_dir, all_clips, clips)
    if config.judge_check:
        from jasco_utils.judging.controls import write_controls

        write_controls(config.judge_check_clips, dataset_dir(data_dir), RunLayout(run_dir).check_dir)
    jobs = plan_jobs(config, run_dir, ["infer", "judge", "check"], data_dir=data_dir, log=log)
    return execute(jobs, run_dir, store, executor, address, log=log)


def check_judges(
    specs: Sequence[ModelSpec],
    clips: list[int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = RunLayout(PROCESSED_DIR).check_dir,
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
    from jasco_utils.analysis.judge_check import measure, read_checked, write_check_report
    from jasco_utils.judging.controls import write_controls
    from jasco_utils.judging.run import judge_controls

    controls = write_controls(clips, data_dir, out_dir)
    runs = [judge_controls(spec, controls, out_dir, store or DEFAULT_STORE, reask=reask, chunk_size=chunk_size,
                           progress=progress) for spec in specs]
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
    from jasco_utils.config import run_config_file

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
    from jasco_utils.paths import NOTEBOOKS_DIR

    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def reproduce(config: RunConfig, run_dir: str | os.PathLike[str] | None = None,
              figures_dir: str | os.PathLike[str] | None = None, store: str | os.PathLike[str] | None = None,
              data_dir: str | None = None, all_clips: bool = False, log=print, stream: bool = True,
              clips: list[int] | None = None, executor: str | None = None, address: str | None = None) -> Path:
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
    import papermill

    from jasco_utils.data.manifest import format_clip_list
    from jasco_utils.paths import RUNS_DIR

    run_dir = Path(run_dir or RUNS_DIR / config.name).resolve()
    values = {
        "config": str(config.path),
        "run_dir": str(run_dir),
        "data_dir": data_dir or "",
        "store": str(Path(store or DEFAULT_STORE).resolve()),
        "figures_dir": str(Path(figures_dir or RunLayout(run_dir).figures_dir).resolve()),
        "all_clips": bool(all_clips),
        "clips": format_clip_list(clips) if clips else "",
        "executor": executor or "",
        "ray_address": address or "",
    }
    layout = RunLayout(run_dir)
    make_folder(layout.notebooks_dir)
    start_run(config, run_dir)
    started = time.time()
    if (executor or config.executor) == "ray":
        log(f"[{time.time() - started:6.0f} s] every model stage on the ray executor")
        run_stages(config, run_dir, data_dir, all_clips, values["store"], clips, "ray", address,
                   log=lambda line: log(f"[{time.time() - started:6.0f} s] {line}"))
    for source in notebooks():
        out = layout.notebooks_dir / source.name
        log(f"[{time.time() - started:6.0f} s] executing {source.name} -> {out}")
        declared = papermill.inspect_notebook(str(source))
        papermill.execute_notebook(
            str(source), str(out), parameters={k: v for k, v in values.items() if k in declared},
            cwd=str(PROJECT_ROOT), progress_bar=False, kernel_name="python3",
            # each cell's output (the stages' progress bars among it) as it happens
            stdout_file=sys.stdout if stream else None, stderr_file=sys.stderr if stream else None,
            # the kernel's own start-up and shut-down log lines say nothing to a user
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    log(f"[{time.time() - started:6.0f} s] done.")
    return run_dir



def run_summary(config: RunConfig, run_dir: str | os.PathLike[str],
                figures_dir: str | os.PathLike[str] | None = None) -> str:
    """What a finished run shows its user: Table II (with the judge check under it), then where everything is."""
    layout = RunLayout(run_dir)
    figures_dir = Path(figures_dir).resolve() if figures_dir else layout.figures_dir
    table = figures_dir / "table2.md"
    lines = ["", table.read_text(encoding="utf-8")] if table.is_file() else []
    lines += _answer_warnings(layout)  # the judges' warnings are in Table II's footnote, just above
    lines += [f"Table II:    {table} (.csv, .tex)", f"Figure 2:    {figures_dir / 'figure2.png'} (.pdf)"]
    if (figures_dir / "judge_check.png").is_file():
        lines.append(f"judge check: {figures_dir / 'judge_check.png'} (.json, .csv)")
    from jasco_utils.analysis.usage import usage_lines

    lines += [f"{'usage:' if i == 0 else '':<13}{line}" for i, line in enumerate(usage_lines(layout.root))]
    lines += [f"results:     {layout.results} (scores, intervals, judge check, provenance, usage)",
              f"notebooks:   {layout.notebooks_dir} (executed); the run's page: {layout.root / 'browse.html'}"]
    if not config.paper:
        lines.append(f"(the {config.name} configuration proves the pipeline runs; its numbers are not the paper's results)")
    return "\n".join(lines)


def _answer_warnings(layout: RunLayout) -> list[str]:
    """Warnings about the run's ALLM answers: cut off at the token limit, or the same answer
    across many clips (the audio may not reach the model)."""
    from jasco_utils.inference.allm import answer_diversity_warnings

    out = []
    run = Run(layout.root)
    for path in layout.output_files():
        df = run.outputs(path.stem)
        status = df["status"]
        if status.eq("truncated").any():
            out.append(f"warning: {path.stem}: {int(status.eq('truncated').sum())} answer(s) cut off at max_tokens "
                       "(judged as the original did; raise max_tokens to have them whole)")
        out += [f"warning: {path.stem}: {w}" for w in answer_diversity_warnings(df[status != "failed"])]
    return out


if __name__ == "__main__":
    sys.exit(_stage_main(json.loads(sys.stdin.read())))
