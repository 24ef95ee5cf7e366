"""Scoring judged tables: read them (two layouts), parse the judge answers, apply the metrics.

Layouts read:

- **this project's** (written by ``jasco judge``): the manifest columns plus ``model``,
  ``judge`` and ``judge_output`` (the judge's raw answer), optionally ``reask_output`` (the
  answer to the re-ask prompt); the parsed columns it also holds are for reading only, and
  the score is always recomputed from the raw text with :mod:`jasco_utils.judging.parsing`.
- **the original's** (written by the original ``eval.py``): ``example.csv``'s columns plus the
  judge's raw answer in ``llama3_extract`` (whichever judge ran). Model and judge come from
  the caller, else from the file name: ``MODEL__JUDGE.csv`` gives both, any other name is
  used for both.

Where an answer's orientation cannot be read and a re-ask answer is stored, the orientation
comes from the re-ask answer, as in the original protocol.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, USABLE_AVERAGE, average_over_judges, with_usable_average
from jasco_utils.analysis.metrics import METRICS, score_keys, score_rows
from jasco_utils.judging.tables import read_judged_files


def scores_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, judge) scores, followed by each model's average over its judges."""
    per_judge = score_rows(rows)
    return pd.concat([per_judge, average_over_judges(per_judge)], ignore_index=True)


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def score_records(rows: pd.DataFrame, usable: Iterable[str] | None = None) -> list[dict]:
    """:func:`scores_from_rows` as plain records: :func:`~jasco_utils.analysis.metrics.score_keys`
    each, unrounded (percentages 0-100), ``None`` where a value is undefined (e.g. no response
    had an Audio/Both/Speech orientation).

    ``usable``: the judges a judge check finds usable
    (:func:`jasco_utils.analysis.judge_check.usable_judges`); when some but not all of the rows'
    judges are, each model gets an ``Average (usable judges)`` record after its ``Average``
    (:func:`jasco_utils.analysis.averages.with_usable_average`)."""
    keys = score_keys()
    scores = with_usable_average(scores_from_rows(rows), usable)
    return [{k: _jsonable(rec[k]) for k in keys} for rec in scores.to_dict(orient="records")]


def score_files(
    paths: Sequence[str | os.PathLike[str]], model: str | None = None, judge: str | None = None
) -> list[dict]:
    """Score judged CSVs: one record per (model, judge), plus ``Average`` records.

    Each record has :data:`~jasco_utils.analysis.metrics.SCORE_KEYS` (unrounded; percentages
    0-100; ``None`` where a value is undefined, e.g. no response had an Audio/Both/Speech
    orientation).
    """
    return score_records(read_judged_files(paths, model=model, judge=judge))


#: Columns of ``jasco score``'s table after the metrics: header -> score key.
_COUNT_COLUMNS = {"responses": "n_responses", "clips": "n_clips", "unparsed": "n_unparsed", "neither": "n_neither"}


def format_scores(records: list[dict]) -> str:
    """A plain-text table of score records, rounded for reading, one column per registered metric."""
    if not records:
        return "(no scores)"
    df = pd.DataFrame(records)
    show = pd.DataFrame({"model": df["model"], "judge": df["judge"]})
    for metric in METRICS.values():
        show[metric.label] = df[metric.name].map(metric.format)
    for header, key in _COUNT_COLUMNS.items():
        show[header] = df[key]
    note = (
        "; ".join(m.note for m in METRICS.values() if m.note) + ".\nunparsed: responses whose rating or "
        f"orientation could not be read (a rating that cannot be read counts 0). {AVERAGE}: mean over judges."
    )
    if (df["judge"] == USABLE_AVERAGE).any():
        note += f" {USABLE_AVERAGE}: mean over the judges the judge check finds usable."
    return show.to_string(index=False) + "\n\n" + note
