"""The end-to-end run: manifest -> ALLM outputs -> judgements -> Table II and Figure 2.

Each stage reads files the previous one wrote, so any stage can be re-run alone. Each model
(every ALLM, every judge) runs its stage function (:func:`jasco_utils.inference.run.answer_manifest`,
:func:`jasco_utils.judging.run.judge_outputs`) in its own Python process, given its
:class:`~jasco_utils.config.ModelSpec` as data: a model's memory, GPU memory included, is
really released before the next loads, and vLLM's spawned workers need no ``__main__`` guard
in a notebook kernel. All calls go through the same call store
(``data/processed/calls.sqlite`` by default), so a re-run is fast and an interrupted one resumes.

Run configurations (:func:`jasco_utils.config.load_run_config`) say which clips, which ALLMs,
which judges and which sampling settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jasco_utils.config import ModelSpec, RunConfig, load_run_config
from jasco_utils.models import SamplingConfig
from jasco_utils.paths import (
    DEFAULT_STORE,
    FIGURES_DIR,
    PROJECT_ROOT,
    RunLayout,
    dataset_dir,
)

__all__ = ["RunConfig", "load_run_config", "prepare_manifest", "run_inference", "run_judge_check", "run_judging",
           "run_stage"]


def _stage_function(stage: str):
    if stage == "infer":
        from jasco_utils.inference.run import answer_manifest

        return answer_manifest
    if stage == "judge":
        from jasco_utils.judging.run import judge_outputs

        return judge_outputs
    if stage == "check":
        from jasco_utils.judging.controls import judge_controls

        return judge_controls
    raise ValueError(f"unknown stage {stage!r}: infer, judge or check")


def _stage_main(payload: Mapping[str, Any]) -> int:
    """Run one stage for one model in this process, from :func:`run_stage`'s payload; print its summary."""
    spec = ModelSpec.from_dict(payload["spec"])
    kwargs = dict(payload["kwargs"])
    if kwargs.get("sampling") is not None:
        kwargs["sampling"] = SamplingConfig(**kwargs["sampling"])
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


def run_stage(stage: str, spec: ModelSpec, echo: bool = True, **kwargs: Any) -> None:
    """Run a stage function for one model in its own process and wait for it.

    The spec and the arguments travel as JSON (no command-line translation); the child
    calls the same function :func:`_stage_function` names. Progress bars are off in the
    child; its summary is echoed.

    Raises:
        RuntimeError: The stage failed; the message holds the end of its error output.
    """
    payload = {"stage": stage, "spec": spec.to_dict(),
               "kwargs": {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}}
    proc = subprocess.run(
        [sys.executable, "-m", "jasco_utils.pipeline"], input=json.dumps(payload), capture_output=True, text=True,
        cwd=PROJECT_ROOT, env={**os.environ, "TQDM_DISABLE": os.environ.get("TQDM_DISABLE", "1")},
    )
    if echo and proc.stdout.strip():
        print(proc.stdout.strip())
    if echo and proc.stderr.strip() and proc.returncode == 0:
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
        if warnings:
            print("\n".join(warnings))
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} with {spec.key} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def prepare_manifest(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                     all_clips: bool = False) -> Path:
    """Write the run's manifest (its clips x 8 instructions) to ``RUN_DIR/manifest.csv``."""
    from jasco_utils.data.manifest import build_manifest, write_manifest

    clips = None if all_clips else config.clips
    return write_manifest(build_manifest(dataset_dir(data_dir), clips=clips), RunLayout(run_dir).manifest)


def run_inference(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                  all_clips: bool = False, store: str | os.PathLike[str] = DEFAULT_STORE) -> list[Path]:
    """Produce every ALLM's outputs table (one process per ALLM); return their paths."""
    layout = RunLayout(run_dir)
    manifest = prepare_manifest(config, run_dir, data_dir, all_clips)
    outputs = []
    for spec in config.allms:
        out = layout.output_path(spec.key)
        if spec.engine == "import":
            src = Path(spec.path)
            src = src if src.is_absolute() else PROJECT_ROOT / src
            if not src.is_file():
                if spec.optional:
                    print(f"{spec.name}: no answers at {src}; skipped (run the model elsewhere and put them there)")
                    continue
                raise FileNotFoundError(f"{spec.name}: no answers at {src}")
            spec = ModelSpec(**{**asdict(spec), "path": str(src)})
        sampling = SamplingConfig(max_tokens=spec.max_tokens or config.allm_max_tokens)
        run_stage("infer", spec, manifest=manifest, out=out, data_dir=str(dataset_dir(data_dir)), store=str(store),
                  sampling=sampling.as_dict(), progress=False)
        outputs.append(out)
    return outputs


def run_judging(config: RunConfig, run_dir: str | os.PathLike[str], outputs: list[Path] | None = None,
                store: str | os.PathLike[str] = DEFAULT_STORE) -> list[Path]:
    """Judge every outputs table with every judge (one process per judge and table)."""
    layout = RunLayout(run_dir)
    outputs = outputs if outputs is not None else layout.output_files()
    judged = []
    for out in outputs:
        for spec in config.judges:
            sampling = SamplingConfig(max_tokens=spec.max_tokens or config.judge_max_tokens)
            run_stage("judge", spec, outputs=out, out_dir=layout.judged_dir, store=str(store),
                      sampling=sampling.as_dict(), structured=config.judge_structured,
                      max_explanation_chars=config.judge_explanation_chars, progress=False)
            judged.append(layout.judged_path(Path(out).stem, spec.key))
    return judged


def run_judge_check(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                    store: str | os.PathLike[str] = DEFAULT_STORE) -> list[Path]:
    """The run's judge check (its ``[judge_check]`` section): control answers judged by every judge.

    Writes the control table of the check's clips and, one process per judge (with the
    run's judging settings), each judge's judged control table, in ``RUN_DIR/judge_check``;
    :func:`jasco_utils.analysis.judge_check.run_check_report` measures them.

    Returns:
        The judged control tables (none when the check is off).
    """
    if not config.judge_check:
        return []
    from jasco_utils.analysis.judge_check import write_controls
    from jasco_utils.paths import judged_name

    out_dir = RunLayout(run_dir).check_dir
    controls = write_controls(config.judge_check_clips, dataset_dir(data_dir), out_dir)
    judged = []
    for spec in config.judges:
        sampling = SamplingConfig(max_tokens=spec.max_tokens or config.judge_max_tokens)
        run_stage("check", spec, controls=controls, out_dir=out_dir, store=str(store), sampling=sampling.as_dict(),
                  structured=config.judge_structured, max_explanation_chars=config.judge_explanation_chars,
                  progress=False)
        judged.append(out_dir / judged_name(controls.stem, spec.key))
    return judged


def notebooks() -> list[Path]:
    """The stage notebooks ``reproduce`` executes, in order (``notebooks/NN_*.ipynb``)."""
    from jasco_utils.paths import NOTEBOOKS_DIR

    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def reproduce(config: RunConfig, run_dir: str | os.PathLike[str] | None = None,
              figures_dir: str | os.PathLike[str] | None = None, store: str | os.PathLike[str] | None = None,
              data_dir: str | None = None, all_clips: bool = False, log=print) -> Path:
    """Execute every stage notebook headlessly (papermill) for a run configuration.

    Each notebook gets the parameters it declares (read with ``papermill.inspect_notebook``)
    among ``config``, ``run_dir``, ``data_dir``, ``store``, ``figures_dir`` and ``all_clips``;
    executed copies go to ``RUN_DIR/notebooks``.

    Returns:
        The run folder.

    Raises:
        papermill.PapermillExecutionError: A notebook failed (its executed copy shows where).
    """
    import papermill

    from jasco_utils.paths import RUNS_DIR

    run_dir = Path(run_dir or RUNS_DIR / config.name).resolve()
    values = {
        "config": str(config.path),
        "run_dir": str(run_dir),
        "data_dir": data_dir or "",
        "store": str(Path(store or DEFAULT_STORE).resolve()),
        "figures_dir": str(Path(figures_dir or FIGURES_DIR).resolve()),
        "all_clips": bool(all_clips),
    }
    layout = RunLayout(run_dir)
    layout.notebooks_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for source in notebooks():
        out = layout.notebooks_dir / source.name
        log(f"[{time.time() - started:6.0f} s] executing {source.name} -> {out}")
        declared = papermill.inspect_notebook(str(source))
        papermill.execute_notebook(str(source), str(out), parameters={k: v for k, v in values.items() if k in declared},
                                   cwd=str(PROJECT_ROOT), progress_bar=False, kernel_name="python3")
    log(f"[{time.time() - started:6.0f} s] done.")
    return run_dir


if __name__ == "__main__":
    sys.exit(_stage_main(json.loads(sys.stdin.read())))
