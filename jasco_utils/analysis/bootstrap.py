"""Uncertainty the JASCO paper does not report: bootstrap intervals and paired comparisons.

Wang et al. (arXiv:2409.14526) report Table II and Figure 2 on 80 clips as point values.
Here the unit of resampling is always the *clip*: a clip's 8 responses, their ratings and
orientations, and its ratings by every judge are drawn together, because the 8 answers to
one clip are not independent observations.

- :func:`bootstrap_scores`: every registered metric (:data:`jasco_utils.analysis.metrics.METRICS`)
  with a confidence interval: the metric's own function evaluated under resampled clip
  weights, so the interval and the point value share one definition.
- :func:`format_intervals`, :func:`with_intervals`: what ``jasco score --ci`` prints.

Paired comparisons between ALLMs are :mod:`jasco_utils.analysis.comparisons`'.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, USABLE_AVERAGE, usable_subset
from jasco_utils.analysis.metrics import (
    METRICS,
    ClipValues,
    clip_table,
    evaluate,
    prepare_rows,
)

#: Bootstrap interval methods.
METHODS: tuple[str, ...] = ("percentile", "basic", "bca")


#: Statistics :func:`bootstrap_scores` reports, each with ``_ci_low`` and ``_ci_high``: the
#: registered metrics (:data:`jasco_utils.analysis.metrics.METRICS`).
BOOTSTRAP_STATS: tuple[str, ...] = tuple(METRICS)


def resample_indices(n_clips: int, n_resamples: int, seed: int | None) -> np.ndarray:
    """The bootstrap draws of :func:`bootstrap_scores`: clip positions, with replacement.

    ``np.random.default_rng(seed).integers(0, n_clips, size=(n_resamples, n_clips))``: row
    ``r`` lists the clips (positions in ascending clip id) of replicate ``r``.
    """
    return np.random.default_rng(seed).integers(0, n_clips, size=(n_resamples, n_clips))


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How many times each clip is drawn in each replicate: (n_resamples, n_clips)."""
    w = np.zeros((idx.shape[0], n))
    np.add.at(w, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    return w


def bootstrap_interval(
    reps: np.ndarray, point: np.ndarray, jack: np.ndarray | None, confidence: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided bootstrap interval per column of ``reps`` (replicates x statistics)."""
    from scipy import stats as sps  # a second or two to import: only where it is used

    alpha = (1 - confidence) / 2
    lo = np.full(point.shape, np.nan)
    hi = np.full(point.shape, np.nan)
    for k in range(point.shape[0]):
        r = reps[:, k][~np.isnan(reps[:, k])]
        if np.isnan(point[k]) or r.size == 0:
            continue
        if np.ptp(r) == 0:
            lo[k] = hi[k] = point[k] if r[0] == point[k] else r[0]
            continue
        if method == "percentile":
            lo[k], hi[k] = np.quantile(r, [alpha, 1 - alpha])
        elif method == "basic":
            q_lo, q_hi = np.quantile(r, [alpha, 1 - alpha])
            lo[k], hi[k] = 2 * point[k] - q_hi, 2 * point[k] - q_lo
        else:  # BCa (Efron 1987): bias from the replicates, acceleration from the jackknife
            z0 = sps.norm.ppf(np.mean(r < point[k]))
            j = jack[:, k][~np.isnan(jack[:, k])]
            d = j.mean() - j
            denom = 6 * np.sum(d**2) ** 1.5
            a = np.sum(d**3) / denom if denom > 0 else 0.0
            z = sps.norm.ppf([alpha, 1 - alpha])
            with np.errstate(divide="ignore", invalid="ignore"):
                levels = sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
            if np.all(np.isfinite(levels)):
                lo[k], hi[k] = np.quantile(r, levels)
    return lo, hi


def check_method(method: str, confidence: float, n_resamples: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, not {n_resamples}")


def _with_judge_mean(values: np.ndarray, usable: Sequence[int] = ()) -> np.ndarray:
    """(replicates, judges, stats) plus the Average over judges as the next judge, then, when
    ``usable`` (judge positions) is given, the Average over those judges."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(values, axis=1, keepdims=True)]
        if len(usable):
            means.append(np.nanmean(values[:, list(usable)], axis=1, keepdims=True))
        return np.concatenate([values, *means], axis=1)


def bootstrap_scores(
    rows: pd.DataFrame,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "percentile",
    usable: Collection[str] | None = None,
) -> pd.DataFrame:
    """Table II and Figure 2 numbers with bootstrap confidence intervals over clips.

    Method: a nonparametric bootstrap whose unit is the clip. For each model, its clips
    (ascending id) are drawn with replacement, ``n_clips`` per replicate, by
    :func:`resample_indices` (a fresh ``np.random.default_rng(seed)`` per model, so models
    with the same clips get the same draws and a model's interval does not depend on the
    other models in ``rows``). A drawn clip brings all 8 of its responses, with every
    judge's rating and orientation of them. In each replicate every registered metric is
    its own function (:data:`jasco_utils.analysis.metrics.METRICS`) with the clip weights
    "how many times drawn" (a clip drawn twice counts twice): Best-Mean = weighted mean of
    the clips' best values; audio/both/speech % = weighted orientation counts as a share of
    the weighted Audio+Both+Speech count (a ratio statistic, which is why this is a numpy
    implementation and not :func:`scipy.stats.bootstrap`: every statistic of every judge
    must see the same drawn clips). ``Average`` is, per replicate, the mean over the
    model's judges of their replicate values, so the judges share the resampled clips;
    ``Average (usable judges)`` the same over the model's ``usable`` judges, on the same
    clips (only when some, not all, of the judges in ``rows`` are usable:
    :func:`jasco_utils.analysis.averages.usable_subset`).

    Intervals: ``percentile`` (quantiles of the replicates, ``numpy.quantile``'s linear
    rule), ``basic`` (2 x point - quantiles), ``bca`` (bias-corrected and accelerated,
    acceleration from the leave-one-clip-out jackknife, i.e. weights 1 but one 0). When all
    replicates are equal the interval is that value. Replicates where a statistic is
    undefined (no Audio/Both/Speech response among the drawn clips) are left out of its
    quantiles.

    Args:
        rows: Scored rows.
        n_resamples: Bootstrap replicates per model.
        confidence: Two-sided confidence level.
        seed: Seed of ``numpy.random.default_rng`` (``None``: not reproducible).
        method: ``percentile``, ``basic`` or ``bca``.
        usable: The judges the run's judge check finds usable
            (:func:`jasco_utils.analysis.judge_check.usable_judges`); ``None``: no judge check.

    Returns:
        One row per (model, judge), then the model's ``Average`` (and ``Average (usable
        judges)``, as above): ``model``, ``judge``,
        ``n_clips`` and, for each registered metric, the point value (equal to
        :func:`jasco_utils.analysis.scoring.scores_from_rows`') and ``<metric>_ci_low``,
        ``<metric>_ci_high``. ``attrs`` records the method, confidence, seed, n_resamples
        and the unit (``clip``).
    """
    check_method(method, confidence, n_resamples)
    clips = clip_table(prepare_rows(rows))
    subset = usable_subset(clips["judge"], usable) or []
    records = []
    for model, cm in clips.groupby("model", sort=False):
        records += _model_intervals(model, cm, subset, n_resamples, confidence, seed, method)
    out = pd.DataFrame.from_records(records)
    out.attrs.update(
        {"method": method, "confidence": confidence, "seed": seed, "n_resamples": n_resamples, "unit": "clip"}
    )
    return out


def _model_intervals(
    model: str,
    clips: pd.DataFrame,
    usable: Collection[str],
    n_resamples: int,
    confidence: float,
    seed: int | None,
    method: str,
) -> list[dict]:
    """:func:`bootstrap_scores`' records of one model, from its :func:`clip_table` rows.

    ``usable`` is the judges of the usable-judge Average (empty: none).
    """
    names = list(METRICS)
    values = ClipValues.of(clips, unit="judge")
    judges, n = list(values.units), len(values.ids)
    with_avg = len(judges) >= 2
    kept = [j for j, judge in enumerate(judges) if judge in usable] if with_avg else []
    averages = ([AVERAGE] if with_avg else []) + ([USABLE_AVERAGE] if kept else [])

    def statistic(w: np.ndarray) -> np.ndarray:
        """(replicates, judges [+ Average [+ Average (usable judges)]], metrics) from clip weights."""
        out = evaluate(values, w, names)
        return _with_judge_mean(out, kept) if with_avg else out

    point = statistic(np.ones((1, n)))[0]
    reps = statistic(resample_weights(resample_indices(n, n_resamples, seed), n))
    jack = statistic(1.0 - np.eye(n)) if method == "bca" and n > 1 else None
    shape = point.shape
    lo, hi = bootstrap_interval(
        reps.reshape(n_resamples, -1),
        point.ravel(),
        None if jack is None else jack.reshape(n, -1),
        confidence,
        method,
    )
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    n_clips = values.arrays["n_clips"].sum(axis=1)
    records = []
    for j, judge in enumerate(judges + averages):
        rec: dict = {"model": model, "judge": judge, "n_clips": int(n_clips[j]) if j < len(judges) else n}
        for s, stat in enumerate(names):
            rec[stat] = float(point[j, s])
            rec[f"{stat}_ci_low"] = float(lo[j, s])
            rec[f"{stat}_ci_high"] = float(hi[j, s])
        records.append(rec)
    return records


def with_intervals(records: list[dict], ci: pd.DataFrame) -> list[dict]:
    """Score records (:func:`jasco_utils.analysis.scoring.score_records`) with each metric's
    ``_ci_low`` and ``_ci_high`` from :func:`bootstrap_scores`' output."""
    extra = ci.set_index(["model", "judge"])
    bounds = [k for k in extra.columns if k.endswith(("_ci_low", "_ci_high"))]
    out = []
    for rec in records:
        row = extra.loc[(rec["model"], rec["judge"])]
        out.append({**rec, **{k: float(row[k]) for k in bounds}})
    return out


def format_intervals(ci: pd.DataFrame) -> str:
    """The paper's numbers (headline metrics) of :func:`bootstrap_scores`' output as
    ``value [low, high]``, under a line naming the interval."""
    show = ci[["model", "judge", "n_clips"]].copy()
    for metric in METRICS.values():
        if metric.headline:
            k = metric.name
            show[k] = [
                f"{metric.format(v)} [{metric.format(lo)}, {metric.format(hi)}]"
                for v, lo, hi in zip(ci[k], ci[f"{k}_ci_low"], ci[f"{k}_ci_high"], strict=True)
            ]
    a = ci.attrs
    head = (
        f"{round(100 * a.get('confidence', 0.95))}% intervals, {a.get('n_resamples')} bootstrap resamples "
        f"of clips (seed {a.get('seed')}):"
    )
    return head + "\n" + show.to_string(index=False)
