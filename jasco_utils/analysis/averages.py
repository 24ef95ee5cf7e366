"""The Average over judges: the paper's "Average" row, and the Average over the usable judges.

The **Average** (the paper's "Average" row of Table II and panel of Figure 2) is, per model,
the mean over judges of each judge's metric (:data:`jasco_utils.analysis.metrics.METRICS`);
counts are summed. Only models scored by two or more judges get one. When a run's judge check
(:mod:`jasco_utils.analysis.judge_check`) finds some judges not usable, the **Average (usable
judges)** (:data:`USABLE_AVERAGE`, :func:`with_usable_average`) is the same mean over the
usable judges only, shown beside the all-judge Average, which stays as the original computes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from jasco_utils.analysis.metrics import COUNT_KEYS, METRICS, in_order, score_keys

#: The judge name of the average-over-judges record.
AVERAGE = "Average"
#: The judge name of the average over the judges the judge check finds usable.
USABLE_AVERAGE = "Average (usable judges)"
#: The judge names of average records: the all-judge Average, then the usable-judge one.
AVERAGES: tuple[str, ...] = (AVERAGE, USABLE_AVERAGE)


def _mean(values: pd.Series) -> float:
    """The mean over judges as :meth:`pandas.Series.mean` computes it (NaN left out)."""
    return values.mean()


def _average_rows(
    frame: pd.DataFrame, keys: Sequence[str], means: Sequence[str], sums: Sequence[str] = (), maxes: Sequence[str] = ()
) -> pd.DataFrame:
    """Per model with two or more judges (and per ``keys``): the ``Average`` row."""
    per_judge = frame[~frame["judge"].isin(AVERAGES)]
    n_judges = per_judge.groupby("model")["judge"].nunique()
    multi = per_judge[per_judge["model"].map(n_judges) >= 2]
    if multi.empty:
        return frame.iloc[0:0]
    agg = {v: _mean for v in means} | {s: "sum" for s in sums} | {m: "max" for m in maxes}
    avg = multi.groupby(["model", *keys], sort=False).agg(agg).reset_index()
    avg["judge"] = AVERAGE
    return avg[[c for c in frame.columns if c in avg.columns]]


def average_over_judges(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's "Average" row: per model, the mean of the judges' metrics.

    Counts are summed over judges (``n_clips``: the most any judge has). Only models scored
    by two or more judges get one.
    """
    counts = [k for k in COUNT_KEYS if k != "n_clips"]
    avg = _average_rows(scores, [], list(METRICS), counts, ["n_clips"])
    return avg.reindex(columns=list(score_keys())).reset_index(drop=True)


def with_average(
    frame: pd.DataFrame, keys: Sequence[str], means: Sequence[str], sums: Sequence[str] = ()
) -> pd.DataFrame:
    """``frame`` with per-model ``Average`` rows (mean of ``means``, sum of ``sums`` over judges).

    Only models with two or more judges get them, as :func:`average_over_judges`. Rows are
    sorted by model (first appearance), judge (first appearance, ``Average`` last), ``keys``.
    """
    out = pd.concat([frame, _average_rows(frame, keys, means, sums)], ignore_index=True)
    models = in_order(frame["model"])
    judges = in_order(frame.loc[~frame["judge"].isin(AVERAGES), "judge"]) + list(AVERAGES)
    out["_m"] = out["model"].map({m: i for i, m in enumerate(models)})
    out["_j"] = out["judge"].map({j: i for i, j in enumerate(judges)})
    return out.sort_values(["_m", "_j", *keys], kind="stable").drop(columns=["_m", "_j"]).reset_index(drop=True)


def is_average(judge: object) -> bool:
    """Whether ``judge`` names an average record (:data:`AVERAGES`), not a judge."""
    return judge in AVERAGES


def usable_subset(judges: Iterable[str], usable: Iterable[str] | None) -> list[str] | None:
    """The judges an Average (usable judges) covers, or ``None`` when there is none to show.

    There is one when some, but not all, of ``judges`` (averages left out) are ``usable``:
    with no judge check (``usable`` None), every judge usable, or none, there is not.

    >>> usable_subset(["j1", "j2", "j3", "Average"], ["j3", "j1"])
    ['j1', 'j3']
    >>> usable_subset(["j1", "j2"], ["j1", "j2"]) is None, usable_subset(["j1", "j2"], []) is None
    (True, True)
    """
    if usable is None:
        return None
    judges = [j for j in in_order(judges) if not is_average(j)]
    keep = set(usable)
    subset = [j for j in judges if j in keep]
    return subset if 0 < len(subset) < len(judges) else None


def usable_average(scores: pd.DataFrame, usable: Iterable[str] | None) -> pd.DataFrame:
    """The ``Average (usable judges)`` records: per model, the mean of its usable judges' metrics.

    Computed as :func:`average_over_judges` (counts summed, ``n_clips`` the most any judge
    has) over the usable judges alone. Only when :func:`usable_subset` gives some, and only for
    models with an all-judge Average (two or more judges) and at least one usable judge.

    Args:
        scores: Score records (:func:`score_rows`), with or without the ``Average`` records.
        usable: The judges the judge check finds usable (``None``: no judge check).

    Returns:
        Records with :func:`score_keys`' columns, ``judge`` :data:`USABLE_AVERAGE`; none when
        there is no usable-judge average.
    """
    per_judge = scores[~scores["judge"].isin(AVERAGES)]
    subset = usable_subset(per_judge["judge"], usable)
    if subset is None:
        return pd.DataFrame(columns=list(score_keys()))
    n_judges = per_judge.groupby("model")["judge"].nunique()
    kept = per_judge[per_judge["model"].map(n_judges).ge(2) & per_judge["judge"].isin(subset)]
    if kept.empty:
        return pd.DataFrame(columns=list(score_keys()))
    counts = [k for k in COUNT_KEYS if k != "n_clips"]
    agg = {m: _mean for m in METRICS} | {c: "sum" for c in counts} | {"n_clips": "max"}
    avg = kept.groupby("model", sort=False).agg(agg).reset_index()
    avg["judge"] = USABLE_AVERAGE
    return avg.reindex(columns=list(score_keys())).reset_index(drop=True)


def with_usable_average(scores: pd.DataFrame, usable: Iterable[str] | None) -> pd.DataFrame:
    """``scores`` followed by :func:`usable_average`'s records; ``scores`` itself when there are none."""
    extra = usable_average(scores, usable)
    if extra.empty:
        return scores
    return pd.concat([scores, extra.astype(scores.dtypes.to_dict())], ignore_index=True)
