"""The judging stages for one judge: a table of answers in, a judged table on disk out.

``jasco judge``, the judging notebook (through :mod:`jasco_utils.pipeline.reproduce`) and Python code
call :func:`judge_outputs` (an ALLM's outputs table) or :func:`judge_controls` (the judge
check's control answers) with a :class:`~jasco_utils.models.spec.ModelSpec`: the judge's engine,
model and options (passed to the backend unchanged), its prompt template and its generation
settings (``spec.generate``: length limit, sampling, structured output). Both go through
:func:`judge_rows`, the one judging function.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from jasco_utils.core.io import TableError, line_of, make_folder, write_pair
from jasco_utils.core.paths import DEFAULT_STORE, ORIGINAL_SUFFIX, judged_name
from jasco_utils.data.manifest import instruction_index, select_clips
from jasco_utils.judging.controls import CONTROL_COLUMNS, read_controls
from jasco_utils.judging.judge import (
    JudgeStats,
    judge_table,
    read_outputs,
    write_judged,
)
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE, structured_output, template_problem
from jasco_utils.models.registry import check_spec, check_structured, make_backend
from jasco_utils.models.spec import ModelSpec, resolve_generate
from jasco_utils.models.store import Store


@dataclass
class JudgeRun:
    """What one judge's pass wrote, and its counts."""

    judge: ModelSpec
    paths: list[Path] = field(default_factory=list)
    stats: JudgeStats | None = None

    @property
    def failed(self) -> int:
        return self.stats.failed if self.stats else 0


def judge_rows(
    spec: ModelSpec,
    table_in: pd.DataFrame,
    out: str | os.PathLike[str],
    store: str | os.PathLike[str] = DEFAULT_STORE,
    reask: bool = True,
    chunk_size: int = 256,
    progress: bool = True,
    source: str = "outputs table",
    whole_clips: bool = True,
    carry: Sequence[str] = (),
) -> tuple[JudgeRun, pd.DataFrame]:
    """Judge the rows of a table with one judge and write the judged table (CSV and Parquet) at ``out``.

    The judge's generation settings are resolved over the built-in default
    (:func:`~jasco_utils.config.resolve_generate`: nothing changes for a resolved spec); they
    give the sampling settings and the decoding constraint, both part of every cache key.

    Args:
        spec: The judge (its ``template`` picks the prompt; ``generate`` how it answers).
        table_in: Manifest columns with ``allm_output`` filled, and ``model``.
        out: The judged table's CSV path (a Parquet copy goes beside it).
        store: The call store (cache and resume).
        reask: Re-ask once where the orientation cannot be read (the original protocol).
        chunk_size: Rows per engine call.
        progress: Show a progress bar.
        source: The table's name in error messages.
        whole_clips: Require whole clips (outputs tables); control tables hold one instruction a clip.
        carry: Columns of ``table_in`` carried over to the judged table, by row order.

    Returns:
        The run (paths written, counts) and the judged table.

    Raises:
        ConfigError: The spec is not valid.
        EngineError: The engine cannot run the model, or not with this decoding constraint.
    """
    spec = resolve_generate(check_spec(spec, extra=template_problem(spec)))
    gen = spec.generate
    check_structured(spec.engine, gen.structured)
    make_folder(Path(out).parent)
    template = spec.template or DEFAULT_JUDGE_TEMPLATE
    constraint = structured_output(gen.structured, template, gen.max_explanation_chars)
    with Store(store) as st, make_backend(spec.engine, spec.model, **spec.options) as backend:
        table, stats = judge_table(
            table_in,
            backend,
            st,
            judge=spec.name,
            template=template,
            sampling=gen.sampling(),
            structured=constraint,
            reask=reask,
            chunk_size=chunk_size,
            progress=progress,
            source=source,
            whole_clips=whole_clips,
        )
    for col in carry:
        table[col] = table_in[col].to_numpy()
    run = JudgeRun(spec, stats=stats)
    run.paths.extend(write_pair(table, Path(out)))
    return run, table


def judge_outputs(
    spec: ModelSpec,
    outputs: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    store: str | os.PathLike[str] = DEFAULT_STORE,
    reask: bool = True,
    chunk_size: int = 256,
    original_layout: bool = False,
    allm: str | None = None,
    progress: bool = True,
    clips: list[int] | None = None,
    limit: int | None = None,
) -> JudgeRun:
    """Rate every answer of an outputs table with one judge; write ``OUTPUTS__KEY.csv`` and ``.parquet``.

    Args:
        spec: The judge (its ``template`` picks the prompt; ``generate`` how it answers:
            default greedy, seed 0, 1000 tokens, free answers).
        outputs: The ALLM outputs table (CSV or Parquet).
        out_dir: Folder of the judged tables.
        store: The call store (cache and resume).
        reask: Re-ask once where the orientation cannot be read (the original protocol).
        chunk_size: Rows per engine call.
        original_layout: Also write the original ``eval.py`` layout (``.original.csv``).
        allm: The ALLM's name, when the table has no ``model`` column.
        progress: Show a progress bar.
        clips, limit: Judge these clips only, then the first ``limit`` of them
            (:func:`jasco_utils.data.manifest.select_clips`).

    Raises:
        TableError: The outputs table is malformed (named file, lines, columns).
        EngineError: The engine cannot run the model.
        ValueError: A clip asked for is not in the table.
    """
    check_spec(spec, extra=template_problem(spec))
    table_in = select_clips(read_outputs(outputs, model=allm), clips, limit, str(outputs))
    stem, out_dir = Path(outputs).stem, Path(out_dir)
    run, table = judge_rows(
        spec,
        table_in,
        out_dir / judged_name(stem, spec.key, ".csv"),
        store,
        reask=reask,
        chunk_size=chunk_size,
        progress=progress,
        source=str(outputs),
    )
    if original_layout:
        run.paths.append(
            write_judged(table, out_dir / judged_name(stem, spec.key, ORIGINAL_SUFFIX), original_layout=True)
        )
    return run


def judge_controls(
    spec: ModelSpec,
    controls: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    store: str | os.PathLike[str] = DEFAULT_STORE,
    reask: bool = True,
    chunk_size: int = 256,
    progress: bool = True,
    clips: list[int] | None = None,
) -> JudgeRun:
    """Rate a control table with one judge; write ``CONTROLS__KEY.csv`` and ``.parquet`` in ``out_dir``.

    The rows go through :func:`judge_rows` as any outputs table does (the judge's prompt and
    settings, the call store, re-ask, progress); the control columns are carried over.

    Args:
        spec: The judge.
        controls: The control table (:func:`jasco_utils.judging.controls.build_controls`,
            written as CSV or Parquet).
        out_dir: Folder of the judged control tables.
        store: The call store (cache and resume).
        reask, chunk_size, progress: As :func:`judge_outputs`.
        clips: Only these clips' control answers (a slow judge on a few clips).

    Returns:
        The paths written and the run's counts.

    Raises:
        TableError: A control row is malformed, or asks something that is not a JASCO instruction.
    """
    check_spec(spec, extra=template_problem(spec))
    table_in = read_controls(controls)
    if clips is not None:
        table_in = table_in[table_in["id"].isin(clips)].reset_index(drop=True)
        if table_in.empty:
            raise ValueError(f"{controls}: no control answers of clips {clips}")
    bad = table_in.index[table_in["prompt"].map(instruction_index).isna()] if "prompt" in table_in else []
    if len(bad):
        raise TableError(
            f"{controls}: line {line_of(bad[0], controls)}, column 'prompt': not one of the 8 JASCO instructions"
        )
    out = Path(out_dir) / judged_name(Path(controls).stem, spec.key, ".csv")
    run, _ = judge_rows(
        spec,
        table_in,
        out,
        store,
        reask=reask,
        chunk_size=chunk_size,
        progress=progress,
        source=str(controls),
        whole_clips=False,
        carry=CONTROL_COLUMNS,
    )
    return run
