"""Paired comparisons between ALLMs, which the JASCO paper does not report.

Best-Mean differences between two ALLMs on the same clips (arXiv:2409.14526 compares them
by their point values only), with a paired bootstrap interval and a sign-flip permutation
p-value; the clip is the unit, as in :mod:`jasco_utils.analysis.bootstrap`.

- :func:`clip_scores`: per clip, what Best-Mean averages;
- :func:`paired_comparison`, :func:`compare_models`, :func:`holm`: the differences, with
  intervals and p-values (Holm-adjusted over all pairs);
- :func:`format_comparison`: what ``jasco compare`` prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jasco_utils.analysis.averages import AVERAGE
from jasco_utils.analysis.bootstrap import check_method
from jasco_utils.analysis.metrics import clip_table, in_order, prepare_rows, require_models


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
    check_method(method, confidence, n_resamples)
    a, b = _paired_scores(clip_table(prepare_rows(rows)), model_a, model_b, judge, gated)
    xa, xb = a.to_numpy(float), b.loc[a.index].to_numpy(float)
    d = xa - xb
    ci_low, ci_high, p_value = _difference_tests(xa, xb, n_resamples, confidence, method, seed)
    ids = a.index
    diff = float(d.mean())
    exact = 2 ** len(d) <= n_resamples
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


def _paired_scores(
    clips: pd.DataFrame, model_a: str, model_b: str, judge: str | None, gated: bool
) -> tuple[pd.Series, pd.Series]:
    """The two models' per-clip scores; refused unless they share their clips (and, for the
    Average, their judges)."""
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
    return a, b


def _difference_tests(
    xa: np.ndarray, xb: np.ndarray, n_resamples: int, confidence: float, method: str, seed: int | None
) -> tuple[float, float, float]:
    """The paired bootstrap interval of ``mean(a) - mean(b)`` and the sign-flip permutation
    p-value (:func:`paired_comparison`)."""
    from scipy import stats as sps  # a second or two to import: only where it is used

    d = xa - xb
    if np.ptp(d) == 0:
        ci_low = ci_high = float(d.mean())
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
    if np.all(d == 0):
        return ci_low, ci_high, 1.0
    perm = sps.permutation_test(
        (xa, xb),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return ci_low, ci_high, float(perm.pvalue)


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
