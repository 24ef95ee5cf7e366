"""The judge check's report: ``judge_check.json``, ``judge_check.csv`` and ``judge_check.png``.

The numbers are :func:`jasco_utils.analysis.judge_check.measure`'s; this module writes them and
their figure (:func:`jasco_utils.report.plots.plot_judge_check`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jasco_utils.analysis.judge_check import check_table, measure
from jasco_utils.core.io import atomic_open, write_csv
from jasco_utils.report import plots
from jasco_utils.run import Run


def write_check_report(
    records: list[dict[str, Any]], out_dir: str | os.PathLike[str], title: str | None = None
) -> list[Path]:
    """Write ``judge_check.json`` (the records), ``judge_check.csv`` (:func:`~jasco_utils.analysis.judge_check.check_table`) and
    ``judge_check.png`` (:func:`jasco_utils.report.plots.plot_judge_check`) in ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / "judge_check.json", "w", encoding="utf-8") as fh:
        json.dump(records, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    paths = [out_dir / "judge_check.json", write_csv(check_table(records), out_dir / "judge_check.csv")]
    paths.append(plots.save_figure(plots.plot_judge_check(records, title=title), out_dir / "judge_check.png", dpi=130))
    return paths


def run_check_report(
    run_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    n_resamples: int = 2000,
    seed: int | None = 0,
    title: str | None = None,
) -> dict[str, Any] | None:
    """The analysis notebook's judge check: measure ``RUN_DIR/judge_check``'s judged tables, write the report.

    Returns:
        ``records``, ``table`` (:func:`~jasco_utils.analysis.judge_check.check_table`) and the written ``paths`` (in
        ``figures_dir``); ``None`` when the run has no judged control tables.
    """
    run = Run(run_dir)
    if not run.judge_check_files():
        return None
    records = measure(run.judge_check(), n_resamples=n_resamples, seed=seed)
    return {
        "records": records,
        "table": check_table(records),
        "paths": write_check_report(records, figures_dir, title=title),
    }
