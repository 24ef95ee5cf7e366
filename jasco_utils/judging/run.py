"""The judging stage for one judge: an ALLM outputs table in, a judged table on disk out.

``jasco judge``, the judging notebook (through :mod:`jasco_utils.pipeline`) and Python code
call :func:`judge_outputs` with a :class:`~jasco_utils.config.ModelSpec`: the judge's engine,
model and options (passed to the backend unchanged) and its prompt template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from jasco_utils.config import ModelSpec
from jasco_utils.data.manifest import select_clips
from jasco_utils.io import make_folder, write_pair
from jasco_utils.judging.judge import (
    JudgeStats,
    judge_table,
    read_outputs,
    write_judged,
)
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE, structured_output
from jasco_utils.models import SamplingConfig, check_structured, make_backend
from jasco_utils.models.store import Store
from jasco_utils.paths import DEFAULT_STORE, ORIGINAL_SUFFIX, PROCESSED_DIR, judged_name


@dataclass
class JudgeRun:
    """What one judge's pass wrote, and its counts."""

    judge: ModelSpec
    paths: list[Path] = field(default_factory=list)
    stats: JudgeStats | None = None

    @property
    def failed(self) -> int:
        return self.stats.failed if self.stats else 0


def judge_outputs(
    spec: ModelSpec,
    outputs: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = PROCESSED_DIR / "judged",
    store: str | os.PathLike[str] = DEFAULT_STORE,
    sampling: SamplingConfig | None = None,
    structured: str | None = None,
    max_explanation_chars: int | None = None,
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
        spec: The judge (its ``template`` picks the prompt; default the original's).
        outputs: The ALLM outputs table (CSV or Parquet).
        out_dir: Folder of the judged tables.
        store: The call store (cache and resume).
        sampling: Sampling settings (default greedy, seed 0, the spec's ``max_tokens`` or 1000).
        structured: ``regex``, ``json`` or ``None``: constrain the answer's form while decoding.
        max_explanation_chars: With ``structured``: bound on each explanation.
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
    spec.check()
    check_structured(spec.engine, structured)
    make_folder(out_dir)
    template = spec.template or DEFAULT_JUDGE_TEMPLATE
    sampling = sampling or SamplingConfig(max_tokens=spec.max_tokens or 1000)
    table_in = select_clips(read_outputs(outputs, model=allm), clips, limit, str(outputs))
    constraint = structured_output(structured, template, max_explanation_chars)
    with Store(store) as st, make_backend(spec.engine, spec.model, **spec.options) as backend:
        table, stats = judge_table(
            table_in, backend, st, judge=spec.name, template=template, sampling=sampling, structured=constraint,
            reask=reask, chunk_size=chunk_size, progress=progress, source=str(outputs),
        )
    stem, out_dir = Path(outputs).stem, Path(out_dir)
    run = JudgeRun(spec, stats=stats)
    run.paths.extend(write_pair(table, out_dir / judged_name(stem, spec.key, ".csv")))
    if original_layout:
        run.paths.append(write_judged(table, out_dir / judged_name(stem, spec.key, ORIGINAL_SUFFIX), original_layout=True))
    return run
