"""Uncertainty the JASCO paper does not report: bootstrap intervals and paired comparisons.

Wang et al. (arXiv:2409.14526) report Table II and Figure 2 on 80 clips as point values.
Here the unit of resampling is always the *clip*: a clip's 8 responses, their ratings and
orientations, and its ratings by every judge are drawn together, because the 8 answers to
one clip are not independent observations.

- :func:`bootstrap_scores`: every registered metric (:data:`jasco_utils.analysis.metrics.METRICS`)
  with a confidence interval: the metric's own function evaluated under resampled clip
  weights, so the interval and the point value share one definition.
- :func:`paired_comparison`, :func:`compare_models`, :func:`holm`: Best-Mean differences
  between ALLMs on the same clips, with intervals and permutation p-values.
- :func:`format_intervals`, :func:`with_intervals`, :func:`format_comparison`: what
  ``jasco score --ci`` and ``jasco compare`` print.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jasco_utils.analysis.metrics import (
    AVERAGE,
    METRICS,
    ClipValues,
    clip_table,
    evaluate,
    in_order,
    prepare_rows,
    require_models,
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


def _check_method(method: str, confidence: float, n_resamples: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, not {n_resamples}")


def _with_judge_mean(values: np.ndarray) -> np.ndarray:
    """(replicates, judges, stats) plus the Average over judges as the last judge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.concatenate([values, np.nanmean(values, axis=1, keepdims=True)], axis=1)


def bootstrap_scores(
    rows: pd.DataFrame,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "percentile",
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
    model's judges of their replicate values, so the judges share the resampled clips.

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

    Returns:
        One row per (model, judge), then the model's ``Average``: ``model``, ``judge``,
        ``n_clips`` and, for each registered metric, the point value (equal to
        :func:`jasco_utils.analysis.scoring.scores_from_rows`') and ``<metric>_ci_low``,
        ``<metric>_ci_high``. ``attrs`` records the method, confidence, seed, n_resamples
        and the unit (``clip``).
    """
    _check_method(method, confidence, n_resamples)
    clips = clip_table(prepare_rows(rows))
    names = list(METRICS)
    records = []
    for model, cm in clips.groupby("model", sort=False):
        values = ClipValues.of(cm, unit="judge")
        judges, n = list(values.units), len(values.ids)
        with_avg = len(judges) >= 2

        def statistic(w: np.ndarray, values=values, with_avg=with_avg) -> np.ndarray:
            """(replicates, judges [+ Average], metrics) from clip weights."""
            out = evaluate(values, w, names)
            return _with_judge_mean(out) if with_avg else out

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
        for j, judge in enumerate(judges + ([AVERAGE] if with_avg else [])):
            rec: dict = {"model": model, "judge": judge, "n_clips": int(n_clips[j]) if j < len(judges) else n}
            for s, stat in enumerate(names):
                rec[stat] = float(point[j, s])
                rec[f"{stat}_ci_low"] = float(lo[j, s])
                rec[f"{stat}_ci_high"] = float(hi[j, s])
            records.append(rec)
    out = pd.DataFrame.from_records(records)
    out.attrs.update(
        {"method": method, "confidence": confidence, "seed": seed, "n_resamples": n_resamples, "unit": "clip"}
    )
    return out


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


def clip_scores(rows: pd.DataFrame, model: str, judge: str | None = None, gated: bool = True) -> pd.Series:
    """Per clip, the best of its responses' values: what Best-Mean averages.

    Args:
        rows: Scored rows.
        model: The ALLM.
        judge: One judge, or ``None`` for the mean over the model's judges (the paper's
            Average); then every judge must have rated every clip of the model.
        gated: Count a rating only when the orientation is Both (the paper's rule).

    Returns:
        Best value per clip, indexed by clip id (ascending); ``attrs["judges"]`` lists the
        judges used.

    Raises:
        ValueError: Unknown model or judge, or a judge lacks some of the model's clips
            (named).
    """
    return _clip_scores(clip_table(prepare_rows(rows)), model, judge, gated)


def _clip_scores(clips: pd.DataFrame, model: str, judge: str | None, gated: bool) -> pd.Series:
    require_models(clips, model)
    sub = clips[clips["model"] == model]
    judges = in_order(sub["judge"])
    if judge is not None:
        if judge not in judges:
            raise ValueError(f"model {model!r} has no rows judged by {judge!r}; its judges: {judges}")
        judges = [judge]
        sub = sub[sub["judge"] == judge]
    best = sub.pivot(index="id", columns="judge", values="best_gated" if gated else "best_ungated")
    best = best.reindex(columns=judges).sort_index()
    gaps = {j: [int(c) for c in best.index[best[j].isna()]] for j in judges if best[j].isna().any()}
    if gaps:
        detail = "; ".join(f"judge {j!r} lacks clip(s) {c}" for j, c in gaps.items())
        raise ValueError(
            f"model {model!r}: the judges have not rated the same clips ({detail}); "
            "judge the missing clips or pass judge= to use one judge"
        )
    out = best.mean(axis=1).rename(model)
    out.attrs["judges"] = judges
    return out


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_comparison(
    rows: pd.DataFrame,
    model_a: str,
    model_b: str,
    judge: str | None = None,
    n_resamples: int = 9999,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "percentile",
    gated: bool = True,
) -> dict:
    """Best-Mean of ``model_a`` minus ``model_b`` on the same clips, with CI and p-value.

    Per clip, each model's score is its best (gated) rating, or with ``judge=None`` the mean
    over judges of those (so the difference is the difference of the paper's Average
    Best-Mean). Both models must have the same clips and, for ``judge=None``, the same
    judges.

    - Interval: :func:`scipy.stats.bootstrap` on the two per-clip score vectors with
      ``paired=True`` (clips are drawn once and used for both models), statistic
      ``mean(a) - mean(b)``, ``rng=np.random.default_rng(seed)``.
    - p-value: :func:`scipy.stats.permutation_test` with ``permutation_type="samples"``
      (within each clip the two models' scores are swapped or not, i.e. the per-clip
      difference's sign is flipped), two-sided. When ``2**n_clips <= n_resamples`` all
      sign flips are enumerated (exact); otherwise ``n_resamples`` random flips, and the
      p-value counts the observed assignment (never 0).

    Args:
        rows: Scored rows.
        model_a: First ALLM.
        model_b: Second ALLM.
        judge: One judge, or ``None`` for the average over judges.
        n_resamples: Bootstrap replicates and random permutations.
        confidence: Two-sided confidence level of the interval.
        seed: Seed of ``numpy.random.default_rng`` for both.
        method: Interval method of :func:`scipy.stats.bootstrap`: ``percentile``,
            ``basic`` or ``bca``.
        gated: The paper's Best-Mean (True) or the ungated variant.

    Returns:
        ``model_a``, ``model_b``, ``judge`` (``Average`` for None), ``judges``, ``n_clips``,
        ``best_mean_a``, ``best_mean_b``, ``difference`` (a - b), ``ci_low``, ``ci_high``,
        ``p_value``, ``exact`` (whether the permutation test enumerated all flips),
        ``wins``/``ties``/``losses`` (clips where a's score is above/equal/below b's),
        ``confidence``, ``method``, ``n_resamples``, ``seed``.

    Raises:
        ValueError: A model or judge is unknown, the clip sets differ (the missing clips
            are named), or the judge sets differ.
    """
    from scipy import stats as sps  # a second or two to import: only where it is used

    _check_method(method, confidence, n_resamples)
    clips = clip_table(prepare_rows(rows))
    a = _clip_scores(clips, model_a, judge, gated)
    b = _clip_scores(clips, model_b, judge, gated)
    if judge is None and set(a.attrs["judges"]) != set(b.attrs["judges"]):
        raise ValueError(
            f"{model_a!r} is judged by {a.attrs['judges']} and {model_b!r} by {b.attrs['judges']}; "
            "an Average comparison needs the same judges: pass judge= to compare under one judge"
        )
    only_a = sorted(set(a.index) - set(b.index))
    only_b = sorted(set(b.index) - set(a.index))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"clip(s) {[int(c) for c in only_a]} are scored for {model_a!r} but not for {model_b!r}")
        if only_b:
            parts.append(f"clip(s) {[int(c) for c in only_b]} are scored for {model_b!r} but not for {model_a!r}")
        raise ValueError("a paired comparison needs the same clips: " + "; ".join(parts))
    ids = a.index
    xa, xb = a.loc[ids].to_numpy(float), b.loc[ids].to_numpy(float)
    d = xa - xb
    diff = float(d.mean())
    if np.ptp(d) == 0:
        ci_low = ci_high = diff
    else:
        res = sps.bootstrap(
            (xa, xb),
            _mean_difference,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
        ci_low, ci_high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    exact = 2 ** len(d) <= n_resamples
    if np.all(d == 0):
        p_value = 1.0
    else:
        perm = sps.permutation_test(
            (xa, xb),
            _mean_difference,
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_resamples,
            alternative="two-sided",
            rng=np.random.default_rng(seed),
        )
        p_value = float(perm.pvalue)
    return {
        "model_a": model_a,
        "model_b": model_b,
        "judge": AVERAGE if judge is None else judge,
        "judges": list(a.attrs["judges"]),
        "n_clips": len(ids),
        "best_mean_a": float(xa.mean()),
        "best_mean_b": float(xb.mean()),
        "difference": diff,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": p_value,
        "exact": exact,
        "wins": int((d > 0).sum()),
        "ties": int((d == 0).sum()),
        "losses": int((d < 0).sum()),
        "confidence": confidence,
        "method": method,
        "n_resamples": n_resamples,
        "seed": seed,
    }


def format_comparison(result: dict) -> str:
    """:func:`paired_comparison`'s result in three lines."""
    a, b = result["model_a"], result["model_b"]
    scope = "the average over judges" if result["judge"] == AVERAGE else result["judge"]
    level = round(100 * result["confidence"])
    return (
        f"{a} vs {b}, Best-Mean by {scope}, {result['n_clips']} clips:\n"
        f"  difference {result['difference']:+.3f}  {level}% interval [{result['ci_low']:+.3f}, "
        f"{result['ci_high']:+.3f}]  p = {result['p_value']:.4f} (paired permutation test over clips"
        f"{', exact' if result.get('exact') else ''})\n"
        f"  clips where {a} is better / tied / worse: {result['wins']} / {result['ties']} / {result['losses']}"
    )


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def compare_models(
    rows: pd.DataFrame,
    judge: str | None = None,
    models: Sequence[str] | None = None,
    n_resamples: int = 9999,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "percentile",
    gated: bool = True,
) -> pd.DataFrame:
    """:func:`paired_comparison` for every pair of models, with Holm-adjusted p-values.

    Args:
        rows: Scored rows.
        judge: One judge, or ``None`` for the average over judges.
        models: Models to compare, in order (default: all, in order of appearance).
        n_resamples, confidence, seed, method, gated: As :func:`paired_comparison`.

    Returns:
        One row per pair (a before b in ``models``' order) with :func:`paired_comparison`'s
        fields (without ``judges``) and ``p_holm``.
    """
    models = list(models) if models is not None else in_order(prepare_rows(rows)["model"])
    recs = []
    for a, b in itertools.combinations(models, 2):
        rec = paired_comparison(
            rows,
            a,
            b,
            judge=judge,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            method=method,
            gated=gated,
        )
        rec.pop("judges")
        recs.append(rec)
    out = pd.DataFrame.from_records(recs)
    if not out.empty:
        out["p_holm"] = holm(out["p_value"].to_numpy())
    return out
