"""Statistics the JASCO paper does not report: uncertainty, judge agreement, prompt effects.

Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning" (arXiv:2409.14526)
report Best-Mean (Table II) and modality dependence (Figure 2) on 80 clips x 8
instructions, rated by three LLM judges, as point values. This module adds:

1. **Confidence intervals** (:func:`bootstrap_scores`, :func:`paired_comparison`,
   :func:`compare_models`). The unit of resampling is always the *clip*: a clip's 8
   responses, their ratings and orientations, and its ratings by every judge are drawn
   together, because the 8 answers to one clip are not independent observations.
2. **Judge agreement** (:func:`krippendorff_alphas`, :func:`cohen_kappas`,
   :func:`confusion_matrices`, :func:`judge_offsets`): responses are the units, judges the
   coders.
3. **Prompt sensitivity** (:func:`instruction_means`, :func:`mean_vs_best`,
   :func:`orientation_by_wording`, :func:`wording_test`, :func:`best_of_k`): whether the
   8 instructions (which differ in naming the spoken text or the audio sound first, see
   :data:`INSTRUCTION_WORDING`) change the ratings and the orientations.
4. **Clip difficulty** (:func:`clip_success`, :func:`clip_difficulty`,
   :func:`unsolved_clips`).
5. **Plots** (:func:`plot_table2_with_ci`, :func:`plot_agreement_heatmap`,
   :func:`plot_prompt_sensitivity`, :func:`plot_best_of_k`): each returns a matplotlib
   ``Figure`` drawn on the Agg canvas, without pyplot (no global state, nothing shown).

Every function takes *scored rows* (:func:`jasco_utils.analysis.scoring.read_judged_files`): one row
per (model, judge, clip ``id``, ``instruction`` 1..8) with ``rating`` (0, 1, 2 or missing)
and ``orientation`` (``Audio``, ``Both``, ``Speech``, ``Neither`` or missing). Per-response
values follow :mod:`jasco_utils.analysis.metrics`: the *gated* value is the rating when the
orientation is Both, else 0; the *ungated* value is the rating; an unreadable rating is 0 in
both (as in Best-Mean). ``Average`` rows are, as in the paper, the mean over a model's
judges, given only for models with two or more judges.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.analysis.metrics import AVERAGE
from jasco_utils.judging.parsing import AUDIO, BOTH, NEITHER, SPEECH

#: Scope label of agreement statistics computed over all models' responses together.
POOLED = "All models"
#: Statistics :func:`bootstrap_scores` reports, each with ``_ci_low`` and ``_ci_high``.
BOOTSTRAP_STATS: tuple[str, ...] = ("best_mean", "best_mean_ungated", "audio_pct", "both_pct", "speech_pct")
#: Bootstrap interval methods.
METHODS: tuple[str, ...] = ("percentile", "basic", "bca")
#: Orientation categories in display order (confusion matrices add :data:`UNPARSED`).
ORIENTATION_ORDER: tuple[str, ...] = (AUDIO, BOTH, SPEECH, NEITHER)
#: Category of a response whose rating or orientation could not be read.
UNPARSED = "unparsed"
#: Rating categories of the confusion matrices.
RATING_ORDER: tuple[str, ...] = ("0", "1", "2")
#: Wording labels.
SPEECH_FIRST, AUDIO_FIRST = "speech-first", "audio-first"

_REQUIRED = ("model", "judge", "id", "instruction", "rating", "orientation")
_SPEECH_CUE = re.compile(r"spoken text|speaker say", re.IGNORECASE)
_AUDIO_CUE = re.compile(r"audio sound|sound can you hear", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# Instruction wording
# --------------------------------------------------------------------------------------


def instruction_wording(text: str) -> str:
    """Whether an instruction names the speech or the audio first.

    The speech is named by "spoken text" or "what does the speaker say", the audio by
    "audio sound" or "what sound can you hear"; the first of those in the text decides.

    >>> instruction_wording(INSTRUCTIONS[0]), instruction_wording(INSTRUCTIONS[1])
    ('audio-first', 'speech-first')
    """
    speech, audio = _SPEECH_CUE.search(text), _AUDIO_CUE.search(text)
    if speech is None or audio is None:
        raise ValueError(f"instruction names not both the speech and the audio: {text!r}")
    return SPEECH_FIRST if speech.start() < audio.start() else AUDIO_FIRST


#: Instruction number (1..8, the paper's order) -> ``speech-first`` or ``audio-first``,
#: derived from :data:`jasco_utils.data.manifest.INSTRUCTIONS`: 2, 3, 5, 8 name the spoken text
#: first, 1, 4, 6, 7 the audio sound.
INSTRUCTION_WORDING: dict[int, str] = {k + 1: instruction_wording(t) for k, t in enumerate(INSTRUCTIONS)}


# --------------------------------------------------------------------------------------
# Preparing scored rows
# --------------------------------------------------------------------------------------


def _prepare(rows: pd.DataFrame) -> pd.DataFrame:
    """Check scored rows and add ``gated`` and ``ungated`` per-response values."""
    missing = [c for c in _REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(
            f"scored rows lack column(s) {missing}; expected {list(_REQUIRED)} "
            "(as jasco_utils.analysis.scoring.read_judged_files returns)"
        )
    if rows.empty:
        raise ValueError("no scored rows")
    out = pd.DataFrame(
        {
            "model": rows["model"].astype(str).to_numpy(),
            "judge": rows["judge"].astype(str).to_numpy(),
            "id": pd.to_numeric(rows["id"]).astype(int).to_numpy(),
            "instruction": pd.to_numeric(rows["instruction"]).astype(int).to_numpy(),
            "rating": pd.to_numeric(rows["rating"], errors="coerce").astype(float).to_numpy(),
        }
    )
    orient = rows["orientation"].to_numpy(dtype=object)
    out["orientation"] = pd.Series(
        [None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v == "") else str(v)
         for v in orient],
        dtype=object,
    )
    dup = out.duplicated(["model", "judge", "id", "instruction"], keep=False)
    if dup.any():
        first = out[dup].iloc[0]
        raise ValueError(
            f"{int(dup.sum())} scored rows repeat a (model, judge, id, instruction), e.g. "
            f"({first['model']!r}, {first['judge']!r}, {first['id']}, {first['instruction']}); "
            "each response must be rated once per judge"
        )
    rated = out["rating"].notna()
    out["ungated"] = out["rating"].where(rated, 0.0)
    out["gated"] = out["ungated"].where(out["orientation"].eq(BOTH), 0.0)
    return out


def _order(values) -> list:
    return list(dict.fromkeys(values))


def _clip_table(prep: pd.DataFrame) -> pd.DataFrame:
    """Per (model, judge, clip): best gated/ungated value and orientation counts."""
    p = prep.assign(
        n_audio=prep["orientation"].eq(AUDIO).astype(int),
        n_both=prep["orientation"].eq(BOTH).astype(int),
        n_speech=prep["orientation"].eq(SPEECH).astype(int),
    )
    return (
        p.groupby(["model", "judge", "id"], sort=False)
        .agg(best_gated=("gated", "max"), best_ungated=("ungated", "max"), n_audio=("n_audio", "sum"),
             n_both=("n_both", "sum"), n_speech=("n_speech", "sum"), n_responses=("gated", "size"))
        .reset_index()
    )


def _with_average(frame: pd.DataFrame, keys: Sequence[str], values: Sequence[str],
                  sums: Sequence[str] = ()) -> pd.DataFrame:
    """Append per-model ``Average`` rows (mean of ``values``, sum of ``sums`` over judges).

    Only models with two or more judges get them, as :func:`metrics.average_over_judges`.
    """
    per_judge = frame[frame["judge"] != AVERAGE]
    n_judges = per_judge.groupby("model")["judge"].nunique()
    multi = per_judge[per_judge["model"].map(n_judges) >= 2]
    out = frame
    if not multi.empty:
        agg = {v: "mean" for v in values} | {s: "sum" for s in sums}
        avg = multi.groupby(["model", *keys], sort=False).agg(agg).reset_index()
        avg["judge"] = AVERAGE
        out = pd.concat([frame, avg[frame.columns.intersection(avg.columns)]], ignore_index=True)
    models = _order(frame["model"])
    judges = _order(per_judge["judge"]) + [AVERAGE]
    out["_m"] = out["model"].map({m: i for i, m in enumerate(models)})
    out["_j"] = out["judge"].map({j: i for i, j in enumerate(judges)})
    return out.sort_values(["_m", "_j", *keys], kind="stable").drop(columns=["_m", "_j"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# 1. Confidence intervals: the clip is the unit
# --------------------------------------------------------------------------------------


def resample_indices(n_clips: int, n_resamples: int, seed: int | None) -> np.ndarray:
    """The bootstrap draws of :func:`bootstrap_scores`: clip positions, with replacement.

    ``np.random.default_rng(seed).integers(0, n_clips, size=(n_resamples, n_clips))``: row
    ``r`` lists the clips (positions in ascending clip id) of replicate ``r``.
    """
    return np.random.default_rng(seed).integers(0, n_clips, size=(n_resamples, n_clips))


def _weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How many times each clip is drawn in each replicate: (n_resamples, n_clips)."""
    w = np.zeros((idx.shape[0], n))
    np.add.at(w, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    return w


def _interval(reps: np.ndarray, point: np.ndarray, jack: np.ndarray | None, confidence: float,
              method: str) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided bootstrap interval per column of ``reps`` (replicates x statistics)."""
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
    judge's rating and orientation of them. In each replicate the statistics are those of
    :mod:`jasco_utils.analysis.metrics` on the drawn clips (a clip drawn twice counts twice):
    Best-Mean (gated and ungated) = mean over drawn clips of the clip's best value;
    audio/both/speech % = orientation counts summed over drawn clips, as a share of the
    Audio+Both+Speech count (a ratio statistic, which is why this is a numpy
    implementation and not :func:`scipy.stats.bootstrap`: every statistic of every judge
    must see the same drawn clips). ``Average`` is, per replicate, the mean over the
    model's judges of their replicate values, so the judges share the resampled clips.

    Intervals: ``percentile`` (quantiles of the replicates, ``numpy.quantile``'s linear
    rule), ``basic`` (2 x point - quantiles), ``bca`` (bias-corrected and accelerated,
    acceleration from the leave-one-clip-out jackknife). When all replicates are equal the
    interval is that value. Replicates where a statistic is undefined (no Audio/Both/
    Speech response among the drawn clips) are left out of its quantiles.

    Args:
        rows: Scored rows.
        n_resamples: Bootstrap replicates per model.
        confidence: Two-sided confidence level.
        seed: Seed of ``numpy.random.default_rng`` (``None``: not reproducible).
        method: ``percentile``, ``basic`` or ``bca``.

    Returns:
        One row per (model, judge), then the model's ``Average``: ``model``, ``judge``,
        ``n_clips`` and, for each of :data:`BOOTSTRAP_STATS`, the point value (equal to
        :func:`jasco_utils.analysis.scoring.scores_from_rows`') and ``<stat>_ci_low``,
        ``<stat>_ci_high``. ``attrs`` records the method, confidence, seed, n_resamples
        and the unit (``clip``).
    """
    _check_method(method, confidence, n_resamples)
    clips = _clip_table(_prepare(rows))
    records = []
    for model, cm in clips.groupby("model", sort=False):
        judges = _order(cm["judge"])
        ids = np.sort(cm["id"].unique())
        n = len(ids)

        def arr(col: str, cm=cm, judges=judges, ids=ids) -> np.ndarray:
            wide = cm.pivot(index="judge", columns="id", values=col).reindex(index=judges, columns=ids)
            return wide.to_numpy(dtype=float)

        has = ~np.isnan(arr("best_gated"))
        x = {c: np.nan_to_num(arr(c)) for c in ("best_gated", "best_ungated", "n_audio", "n_both", "n_speech")}
        total = x["n_audio"] + x["n_both"] + x["n_speech"]
        with_avg = len(judges) >= 2

        def statistic(w: np.ndarray, has=has, x=x, total=total, with_avg=with_avg) -> np.ndarray:
            """(replicates, judges [+ Average], BOOTSTRAP_STATS) from clip weights."""
            with np.errstate(divide="ignore", invalid="ignore"):
                clips_in = w @ has.T
                oriented = w @ total.T
                out = np.stack(
                    [
                        (w @ x["best_gated"].T) / clips_in,
                        (w @ x["best_ungated"].T) / clips_in,
                        100 * (w @ x["n_audio"].T) / oriented,
                        100 * (w @ x["n_both"].T) / oriented,
                        100 * (w @ x["n_speech"].T) / oriented,
                    ],
                    axis=-1,
                )
            if with_avg:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out = np.concatenate([out, np.nanmean(out, axis=1, keepdims=True)], axis=1)
            return out

        point = statistic(np.ones((1, n)))[0]
        reps = statistic(_weights(resample_indices(n, n_resamples, seed), n))
        jack = statistic(1.0 - np.eye(n)) if method == "bca" and n > 1 else None
        shape = point.shape
        lo, hi = _interval(reps.reshape(n_resamples, -1), point.ravel(),
                           None if jack is None else jack.reshape(n, -1), confidence, method)
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        names = judges + ([AVERAGE] if with_avg else [])
        for j, judge in enumerate(names):
            n_clips = int(has[j].sum()) if j < len(judges) else n
            rec: dict = {"model": model, "judge": judge, "n_clips": n_clips}
            for s, stat in enumerate(BOOTSTRAP_STATS):
                rec[stat] = float(point[j, s])
                rec[f"{stat}_ci_low"] = float(lo[j, s])
                rec[f"{stat}_ci_high"] = float(hi[j, s])
            records.append(rec)
    out = pd.DataFrame.from_records(records)
    out.attrs.update({"method": method, "confidence": confidence, "seed": seed, "n_resamples": n_resamples,
                      "unit": "clip"})
    return out


def _models_available(prep: pd.DataFrame, *models: str) -> None:
    known = _order(prep["model"])
    for m in models:
        if m not in known:
            raise ValueError(f"model {m!r} is not in the scored rows; models: {known}")


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
    return _clip_scores(_prepare(rows), model, judge, gated)


def _clip_scores(prep: pd.DataFrame, model: str, judge: str | None, gated: bool) -> pd.Series:
    _models_available(prep, model)
    sub = prep[prep["model"] == model]
    judges = _order(sub["judge"])
    if judge is not None:
        if judge not in judges:
            raise ValueError(f"model {model!r} has no rows judged by {judge!r}; its judges: {judges}")
        judges = [judge]
        sub = sub[sub["judge"] == judge]
    value = "gated" if gated else "ungated"
    best = sub.pivot_table(index="id", columns="judge", values=value, aggfunc="max").reindex(columns=judges)
    best = best.sort_index()
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
    _check_method(method, confidence, n_resamples)
    prep = _prepare(rows)
    a = _clip_scores(prep, model_a, judge, gated)
    b = _clip_scores(prep, model_b, judge, gated)
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
        res = sps.bootstrap((xa, xb), _mean_difference, paired=True, vectorized=True, n_resamples=n_resamples,
                            confidence_level=confidence, method=method, rng=np.random.default_rng(seed))
        ci_low, ci_high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    exact = 2 ** len(d) <= n_resamples
    if np.all(d == 0):
        p_value = 1.0
    else:
        perm = sps.permutation_test((xa, xb), _mean_difference, permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, alternative="two-sided",
                                    rng=np.random.default_rng(seed))
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
    models = list(models) if models is not None else _order(_prepare(rows)["model"])
    recs = []
    for a, b in itertools.combinations(models, 2):
        rec = paired_comparison(rows, a, b, judge=judge, n_resamples=n_resamples, confidence=confidence,
                                seed=seed, method=method, gated=gated)
        rec.pop("judges")
        recs.append(rec)
    out = pd.DataFrame.from_records(recs)
    if not out.empty:
        out["p_holm"] = holm(out["p_value"].to_numpy())
    return out


# --------------------------------------------------------------------------------------
# 2. Judge agreement: responses are units, judges are coders
# --------------------------------------------------------------------------------------


def _scopes(prep: pd.DataFrame, per_model: bool, pooled: bool):
    if per_model:
        yield from prep.groupby("model", sort=False)
    if pooled:
        yield POOLED, prep


def _wide(sub: pd.DataFrame, field: str) -> pd.DataFrame:
    """Units (model, id, instruction) x judges of ``field``; absent responses are NaN."""
    judges = _order(sub["judge"])
    return sub.pivot(index=["model", "id", "instruction"], columns="judge", values=field).reindex(columns=judges)


def _orientation_codes(values: pd.Series | pd.DataFrame):
    codes = {o: float(i) for i, o in enumerate(ORIENTATION_ORDER)}
    return values.map(lambda v: codes.get(v, np.nan))


def reliability_matrix(rows: pd.DataFrame, field: str, model: str | None = None) -> pd.DataFrame:
    """Krippendorff's reliability data: judges (coders) x responses (units).

    Args:
        rows: Scored rows.
        field: ``rating`` (values 0, 1, 2) or ``orientation`` (coded by position in
            :data:`ORIENTATION_ORDER`: Audio 0, Both 1, Speech 2, Neither 3).
        model: One model's responses, or ``None`` for all models' (units are then
            (model, clip, instruction)).

    Returns:
        Float matrix, index the judges, columns the units; a missing or unreadable value is
        NaN (Krippendorff's alpha treats it as missing).
    """
    prep = _prepare(rows)
    if model is not None:
        _models_available(prep, model)
        prep = prep[prep["model"] == model]
    return _reliability(prep, field)


def _reliability(sub: pd.DataFrame, field: str) -> pd.DataFrame:
    if field == "rating":
        wide = _wide(sub, "rating").astype(float)
    elif field == "orientation":
        wide = _orientation_codes(_wide(sub, "orientation")).astype(float)
    else:
        raise ValueError(f"field must be 'rating' or 'orientation', not {field!r}")
    return wide.T


def krippendorff_alphas(rows: pd.DataFrame, per_model: bool = True, pooled: bool = True) -> pd.DataFrame:
    """Krippendorff's alpha across judges, on ratings (ordinal) and orientations (nominal).

    Responses are the units and judges the coders (:func:`reliability_matrix`);
    unreadable values are missing, and a response with fewer than two readable values is
    not pairable and does not count. Computed with :func:`krippendorff.alpha`
    (``level_of_measurement="ordinal"`` with ``value_domain=[0, 1, 2]`` for ratings,
    ``"nominal"`` over Audio/Both/Speech/Neither for orientations). Alpha is NaN when it
    is undefined (e.g. a single value used throughout).

    Args:
        rows: Scored rows.
        per_model: One row set per model.
        pooled: One over all models' responses (``model`` = :data:`POOLED`).

    Returns:
        ``model``, ``variable`` (``rating``/``orientation``), ``level``, ``alpha``,
        ``n_judges``, ``n_units`` (responses), ``n_pairable`` (responses with two or more
        readable values), ``n_values`` (readable values in pairable responses).
    """
    import krippendorff

    prep = _prepare(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        for variable, level, domain in (("rating", "ordinal", [0.0, 1.0, 2.0]),
                                        ("orientation", "nominal", [0.0, 1.0, 2.0, 3.0])):
            mat = _reliability(sub, variable).to_numpy(dtype=float)
            counts = (~np.isnan(mat)).sum(axis=0)
            pairable = counts >= 2
            alpha = math.nan
            if mat.shape[0] >= 2 and pairable.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    try:
                        alpha = float(krippendorff.alpha(reliability_data=mat, value_domain=domain,
                                                         level_of_measurement=level))
                    except ValueError:
                        alpha = math.nan
            recs.append({"model": scope, "variable": variable, "level": level, "alpha": alpha,
                         "n_judges": int(mat.shape[0]), "n_units": int(mat.shape[1]),
                         "n_pairable": int(pairable.sum()), "n_values": int(counts[pairable].sum())})
    return pd.DataFrame.from_records(recs)


def cohen_kappas(rows: pd.DataFrame, per_model: bool = True, pooled: bool = True) -> pd.DataFrame:
    """Cohen's kappa between each pair of judges, on the responses both could be read for.

    Ratings: unweighted and quadratic-weighted (labels 0, 1, 2); orientations: unweighted
    (labels Audio, Both, Speech, Neither). Computed with
    :func:`sklearn.metrics.cohen_kappa_score`; kappa = (p_o - p_e) / (1 - p_e), NaN when
    p_e = 1. A response that either judge's answer could not be read for is left out.

    Args:
        rows: Scored rows.
        per_model: One set per model.
        pooled: One over all models' responses (``model`` = :data:`POOLED`).

    Returns:
        ``model``, ``variable``, ``weights`` (``none``/``quadratic``), ``judge_a``,
        ``judge_b``, ``kappa``, ``agreement`` (p_o, the share of equal values), ``n``.
    """
    from sklearn.metrics import cohen_kappa_score

    prep = _prepare(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        judges = _order(sub["judge"])
        for variable, labels, weightings in (("rating", [0.0, 1.0, 2.0], ("none", "quadratic")),
                                             ("orientation", list(ORIENTATION_ORDER), ("none",))):
            wide = _wide(sub, variable)
            for ja, jb in itertools.combinations(judges, 2):
                both = wide[[ja, jb]].dropna()
                if variable == "orientation":
                    both = both[both[ja].isin(labels) & both[jb].isin(labels)]
                ya, yb = both[ja].to_list(), both[jb].to_list()
                for weights in weightings:
                    kappa = math.nan
                    if ya:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            kappa = float(cohen_kappa_score(ya, yb, labels=labels,
                                                            weights=None if weights == "none" else weights))
                    recs.append({"model": scope, "variable": variable, "weights": weights, "judge_a": ja,
                                 "judge_b": jb, "kappa": kappa,
                                 "agreement": float(np.mean(np.array(ya, dtype=object) == np.array(yb, dtype=object)))
                                 if ya else math.nan,
                                 "n": len(ya)})
    return pd.DataFrame.from_records(recs, columns=["model", "variable", "weights", "judge_a", "judge_b", "kappa",
                                                    "agreement", "n"])


def _category(values: pd.Series, variable: str) -> pd.Series:
    if variable == "rating":
        return values.map(lambda v: UNPARSED if pd.isna(v) else str(int(v)))
    return values.map(lambda v: v if isinstance(v, str) else UNPARSED)


def confusion_matrices(rows: pd.DataFrame, per_model: bool = True, pooled: bool = True) -> pd.DataFrame:
    """Counts of (judge A's value, judge B's value) for each pair of judges, tidy.

    Categories: ratings ``0``, ``1``, ``2``, ``unparsed``; orientations ``Audio``,
    ``Both``, ``Speech``, ``Neither``, ``unparsed``. Responses rated by both judges count
    (an unreadable answer is ``unparsed``); every category pair appears, with 0 where none.

    Returns:
        ``model``, ``variable``, ``judge_a``, ``judge_b``, ``value_a``, ``value_b``,
        ``count``. :func:`confusion_table` pivots one matrix out.
    """
    prep = _prepare(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        judges = _order(sub["judge"])
        for variable, cats in (("rating", [*RATING_ORDER, UNPARSED]),
                               ("orientation", [*ORIENTATION_ORDER, UNPARSED])):
            wide = _wide(sub, variable)
            present = _wide(sub.assign(_p=1.0), "_p").notna()
            for ja, jb in itertools.combinations(judges, 2):
                keep = present[ja] & present[jb]
                a = _category(wide.loc[keep, ja], variable)
                b = _category(wide.loc[keep, jb], variable)
                counts = pd.crosstab(a, b).reindex(index=cats, columns=cats, fill_value=0)
                for va in cats:
                    for vb in cats:
                        recs.append({"model": scope, "variable": variable, "judge_a": ja, "judge_b": jb,
                                     "value_a": va, "value_b": vb, "count": int(counts.loc[va, vb])})
    return pd.DataFrame.from_records(recs, columns=["model", "variable", "judge_a", "judge_b", "value_a", "value_b",
                                                    "count"])


def confusion_table(confusion: pd.DataFrame, model: str, variable: str, judge_a: str, judge_b: str) -> pd.DataFrame:
    """One confusion matrix from :func:`confusion_matrices`: rows judge A, columns judge B."""
    sel = confusion[(confusion["model"] == model) & (confusion["variable"] == variable)
                    & (confusion["judge_a"] == judge_a) & (confusion["judge_b"] == judge_b)]
    if sel.empty:
        raise ValueError(f"no confusion matrix for model={model!r}, variable={variable!r}, "
                         f"judges {judge_a!r} x {judge_b!r} (pairs are in order of first appearance)")
    order = _order(sel["value_a"])
    table = sel.pivot(index="value_a", columns="value_b", values="count").reindex(index=order, columns=order)
    return table.rename_axis(index=judge_a, columns=judge_b)


def judge_offsets(rows: pd.DataFrame, per_model: bool = True, pooled: bool = True, gated: bool = False) -> pd.DataFrame:
    """Each judge's mean rating minus the mean of the other judges, on the same responses.

    For each response, the others' value is the mean of the other judges' readable
    ratings. Responses count where this judge's rating and at least one other's are
    readable. ``gated=True`` compares the gated per-response values instead (always
    defined; unreadable counts 0).

    Returns:
        ``model``, ``judge``, ``mean``, ``mean_others``, ``offset`` (mean - mean_others),
        ``n``.
    """
    prep = _prepare(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        wide = _wide(sub, "gated" if gated else "rating").astype(float)
        if wide.shape[1] < 2:
            continue
        for judge in wide.columns:
            others = wide.drop(columns=judge).mean(axis=1, skipna=True)
            mask = wide[judge].notna() & others.notna()
            mine, theirs = wide.loc[mask, judge], others[mask]
            recs.append({"model": scope, "judge": judge, "mean": float(mine.mean()) if mask.any() else math.nan,
                         "mean_others": float(theirs.mean()) if mask.any() else math.nan,
                         "offset": float((mine - theirs).mean()) if mask.any() else math.nan, "n": int(mask.sum())})
    return pd.DataFrame.from_records(recs, columns=["model", "judge", "mean", "mean_others", "offset", "n"])


# --------------------------------------------------------------------------------------
# 3. Prompt sensitivity
# --------------------------------------------------------------------------------------


def instruction_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean rating per instruction (1..8), per model and judge, and the judges' Average.

    ``mean_gated`` averages Best-Mean's per-response value (the rating when the orientation
    is Both, else 0); ``mean_ungated`` the rating. An unreadable rating counts 0 in both,
    as in Best-Mean; ``n_unparsed_rating`` says how many.

    Returns:
        ``model``, ``judge``, ``instruction``, ``wording`` (:data:`INSTRUCTION_WORDING`),
        ``mean_gated``, ``mean_ungated``, ``n_responses``, ``n_unparsed_rating``.
    """
    prep = _prepare(rows)
    out = (
        prep.assign(_unparsed=prep["rating"].isna().astype(int))
        .groupby(["model", "judge", "instruction"], sort=False)
        .agg(mean_gated=("gated", "mean"), mean_ungated=("ungated", "mean"), n_responses=("gated", "size"),
             n_unparsed_rating=("_unparsed", "sum"))
        .reset_index()
    )
    out.insert(3, "wording", out["instruction"].map(INSTRUCTION_WORDING))
    models, judges = _order(prep["model"]), _order(prep["judge"])
    out["_m"], out["_j"] = out["model"].map(models.index), out["judge"].map(judges.index)
    out = out.sort_values(["_m", "_j", "instruction"], kind="stable").drop(columns=["_m", "_j"])
    avg = _with_average(out, ["instruction"], ["mean_gated", "mean_ungated"], ["n_responses", "n_unparsed_rating"])
    avg["wording"] = avg["instruction"].map(INSTRUCTION_WORDING)
    return avg


def mean_vs_best(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over all responses versus Best-Mean (best of 8 per clip), gated and ungated.

    The gap says how much the best-of-8 rule adds over a single typical answer.

    Returns:
        ``model``, ``judge`` (and ``Average``), ``mean_gated``, ``best_mean``,
        ``best_minus_mean`` (gated), ``mean_ungated``, ``best_mean_ungated``, ``n_responses``.
    """
    prep = _prepare(rows)
    clips = _clip_table(prep)
    means = prep.groupby(["model", "judge"], sort=False).agg(mean_gated=("gated", "mean"),
                                                             mean_ungated=("ungated", "mean"),
                                                             n_responses=("gated", "size"))
    bests = clips.groupby(["model", "judge"], sort=False).agg(best_mean=("best_gated", "mean"),
                                                              best_mean_ungated=("best_ungated", "mean"))
    out = means.join(bests).reset_index()
    out["best_minus_mean"] = out["best_mean"] - out["mean_gated"]
    out = out[["model", "judge", "mean_gated", "best_mean", "best_minus_mean", "mean_ungated", "best_mean_ungated",
               "n_responses"]]
    return _with_average(out, [], ["mean_gated", "best_mean", "best_minus_mean", "mean_ungated", "best_mean_ungated"],
                         ["n_responses"])


def orientation_by_wording(rows: pd.DataFrame) -> pd.DataFrame:
    """Audio/Both/Speech shares for speech-first versus audio-first instructions.

    Shares as :func:`jasco_utils.analysis.metrics.dependence`: percent of the responses whose
    orientation is Audio, Both or Speech. ``Average`` is the mean over judges.

    Returns:
        ``model``, ``judge``, ``wording``, ``audio_pct``, ``both_pct``, ``speech_pct``,
        ``n_oriented``, ``n_neither``, ``n_unparsed``, ``n_responses``.
    """
    prep = _prepare(rows)
    prep = prep.assign(wording=prep["instruction"].map(INSTRUCTION_WORDING))
    if prep["wording"].isna().any():
        bad = sorted(prep.loc[prep["wording"].isna(), "instruction"].unique())
        raise ValueError(f"instruction number(s) {bad} are not 1..{len(INSTRUCTIONS)}")
    recs = []
    for (model, judge, wording), g in prep.groupby(["model", "judge", "wording"], sort=False):
        o = g["orientation"]
        a, b, s = (int(o.eq(k).sum()) for k in (AUDIO, BOTH, SPEECH))
        t = a + b + s
        recs.append({"model": model, "judge": judge, "wording": wording,
                     "audio_pct": 100 * a / t if t else math.nan, "both_pct": 100 * b / t if t else math.nan,
                     "speech_pct": 100 * s / t if t else math.nan, "n_oriented": t,
                     "n_neither": int(o.eq(NEITHER).sum()), "n_unparsed": int(o.isna().sum()), "n_responses": len(g)})
    out = pd.DataFrame.from_records(recs)
    return _with_average(out, ["wording"], ["audio_pct", "both_pct", "speech_pct"],
                         ["n_oriented", "n_neither", "n_unparsed", "n_responses"])


def _chi2_stat(table: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson chi-square over the last two axes, cells with expected > 0."""
    keep = expected > 0
    e = np.where(keep, expected, 1.0)
    return np.where(keep, (table - expected) ** 2 / e, 0.0).sum(axis=(-2, -1))


def wording_test(rows: pd.DataFrame, n_resamples: int = 9999, seed: int | None = 0,
                 batch: int = 1000) -> pd.DataFrame:
    """Does naming the speech or the audio first shift the orientation shares?

    Per (model, judge), the 2 x 3 table of wording (speech-first, audio-first) x
    orientation (Audio, Both, Speech) over the responses with one of those orientations,
    tested two ways:

    - ``chi2_p_value``: :func:`scipy.stats.chi2_contingency` (Pearson, no continuity
      correction needed at 2 degrees of freedom). It treats responses as independent,
      which they are not (a clip's 8 answers share the clip), so it is optimistic.
    - ``permutation_p_value``: a clip-stratified permutation test with the same chi-square
      statistic. Under the null hypothesis that wording does not matter, the wording
      labels of a clip's responses are exchangeable within the clip; each of
      ``n_resamples`` permutations shuffles the labels within every clip (the clip is the
      stratum, so clip-to-clip differences cannot masquerade as a wording effect). p =
      (1 + #{permuted >= observed}) / (1 + n_resamples), with ``numpy.random.default_rng(seed)``.

    Args:
        rows: Scored rows.
        n_resamples: Random within-clip permutations.
        seed: Seed of the permutations.
        batch: Permutations drawn at a time (memory).

    Returns:
        ``model``, ``judge``, ``chi2``, ``dof``, ``chi2_p_value``, ``permutation_p_value``,
        ``both_pct_speech_first``, ``both_pct_audio_first``, ``n_oriented``, ``n_clips``,
        ``n_resamples``. Both p-values are NaN when a wording has no oriented response.
    """
    prep = _prepare(rows)
    prep = prep.assign(wording=prep["instruction"].map(INSTRUCTION_WORDING))
    cats = [AUDIO, BOTH, SPEECH]
    recs = []
    for (model, judge), g in prep.groupby(["model", "judge"], sort=False):
        g = g[g["orientation"].isin(cats)].sort_values(["id", "instruction"])
        first = g["wording"].eq(SPEECH_FIRST).to_numpy()
        orient = np.stack([g["orientation"].eq(c).to_numpy() for c in cats], axis=1).astype(float)  # (n, 3)
        table = np.stack([orient[first].sum(0), orient[~first].sum(0)])  # (2, 3)
        rec = {"model": model, "judge": judge, "chi2": math.nan, "dof": 0, "chi2_p_value": math.nan,
               "permutation_p_value": math.nan,
               "both_pct_speech_first": 100 * table[0, 1] / table[0].sum() if table[0].sum() else math.nan,
               "both_pct_audio_first": 100 * table[1, 1] / table[1].sum() if table[1].sum() else math.nan,
               "n_oriented": len(g), "n_clips": int(g["id"].nunique()), "n_resamples": n_resamples}
        if table[0].sum() > 0 and table[1].sum() > 0:
            used = table.sum(0) > 0
            if used.sum() < 2:
                rec.update(chi2=0.0, dof=0, chi2_p_value=1.0, permutation_p_value=1.0)
            else:
                chi = sps.chi2_contingency(table[:, used], correction=False)
                rec.update(chi2=float(chi.statistic), dof=int(chi.dof), chi2_p_value=float(chi.pvalue))
                expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
                observed = _chi2_stat(table, expected)
                rng = np.random.default_rng(seed)
                strata = pd.factorize(g["id"])[0].astype(float)
                hits, done = 0, 0
                while done < n_resamples:
                    m = min(batch, n_resamples - done)
                    order = np.argsort(strata[None, :] + rng.random((m, len(strata))), axis=1)
                    perm_first = first[order]  # labels shuffled within each clip
                    top = perm_first.astype(float) @ orient  # (m, 3)
                    tables = np.stack([top, table.sum(0)[None, :] - top], axis=1)
                    hits += int((_chi2_stat(tables, expected) >= observed - 1e-9 * max(1.0, observed)).sum())
                    done += m
                rec["permutation_p_value"] = (1 + hits) / (1 + n_resamples)
        recs.append(rec)
    return pd.DataFrame.from_records(recs)


def expected_best_of_k(values: Sequence[float], k: int) -> float:
    """Exact expected maximum of ``k`` values drawn without replacement from ``values``.

    Over all C(n, k) subsets equally likely: with the values sorted ascending
    v_1 <= ... <= v_n, the maximum is v_i for C(i-1, k-1) of the subsets, so
    E = sum_i v_i C(i-1, k-1) / C(n, k). ``k`` above n is taken as n.

    >>> round(expected_best_of_k([0, 1, 2], 2), 4)  # subsets {0,1} {0,2} {1,2}: (1 + 2 + 2) / 3
    1.6667
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = v.size
    if n == 0:
        return math.nan
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    k = min(k, n)
    weights = np.array([math.comb(i, k - 1) for i in range(n)], dtype=float) / math.comb(n, k)
    return float(weights @ v)


def best_of_k(rows: pd.DataFrame, ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Best-Mean as a function of how many instructions per clip are taken.

    For each clip, the exact expected best of ``k`` of its responses over all C(8, k)
    subsets (:func:`expected_best_of_k`), averaged over clips. k = 8 is Best-Mean, k = 1
    the mean over clips of each clip's mean (the mean over responses when every clip has
    its 8). A clip with fewer than k responses contributes its best.

    Args:
        rows: Scored rows.
        ks: The k values (default 1..the most responses any clip has).

    Returns:
        ``model``, ``judge`` (and ``Average``), ``k``, ``best_of_k`` (gated, the paper's
        rule), ``best_of_k_ungated``, ``n_clips``.
    """
    prep = _prepare(rows)
    if ks is None:
        ks = range(1, int(prep.groupby(["model", "judge", "id"]).size().max()) + 1)
    recs = []
    for (model, judge), g in prep.groupby(["model", "judge"], sort=False):
        per_clip = [(c["gated"].to_numpy(), c["ungated"].to_numpy()) for _, c in g.groupby("id")]
        for k in ks:
            recs.append({"model": model, "judge": judge, "k": int(k),
                         "best_of_k": float(np.mean([expected_best_of_k(gv, k) for gv, _ in per_clip])),
                         "best_of_k_ungated": float(np.mean([expected_best_of_k(uv, k) for _, uv in per_clip])),
                         "n_clips": len(per_clip)})
    out = pd.DataFrame.from_records(recs)
    avg = _with_average(out, ["k"], ["best_of_k", "best_of_k_ungated"])
    if (avg["judge"] == AVERAGE).any():
        n_clips = out.groupby("model")["n_clips"].max()
        sel = avg["judge"] == AVERAGE
        avg.loc[sel, "n_clips"] = avg.loc[sel, "model"].map(n_clips)
    avg["n_clips"] = avg["n_clips"].astype(int)
    return avg


# --------------------------------------------------------------------------------------
# 4. Clip difficulty
# --------------------------------------------------------------------------------------


def clip_success(rows: pd.DataFrame, gated: bool = True) -> pd.DataFrame:
    """Per clip, judge and model: the best rating and whether the model succeeds.

    ``solved``: best >= 1 (a partly correct answer among the 8); ``fully_solved``: best ==
    2. Under ``Average`` (models with two or more judges) ``best`` is the mean over
    judges of each judge's best, so ``solved`` means the judges' mean best is at least 1
    and ``fully_solved`` that every judge gave some answer a 2.

    Returns:
        ``id``, ``judge``, ``model``, ``best``, ``solved``, ``fully_solved``.
    """
    prep = _prepare(rows)
    col = "best_gated" if gated else "best_ungated"
    clips = _clip_table(prep)[["model", "judge", "id", col]].rename(columns={col: "best"})
    out = _with_average(clips, ["id"], ["best"])
    out["solved"] = out["best"] >= 1
    out["fully_solved"] = out["best"] >= 2
    judges = _order(out["judge"])
    out["_j"] = out["judge"].map(judges.index)
    out = out.sort_values(["_j", "id"], kind="stable").drop(columns="_j")
    return out[["id", "judge", "model", "best", "solved", "fully_solved"]].reset_index(drop=True)


def clip_difficulty(rows: pd.DataFrame, gated: bool = True) -> pd.DataFrame:
    """Per clip and judge (and ``Average``): which models solve it, and how many.

    Returns:
        ``id``, ``judge``, ``n_models``, ``n_solved``, ``n_fully_solved``, ``solved_by``,
        ``fully_solved_by`` (model names joined by ``", "``, in order of appearance),
        ``mean_best`` (over models), ``unsolved`` (no model has best >= 1).
    """
    success = clip_success(rows, gated=gated)
    models = _order(success["model"])
    recs = []
    for (cid, judge), g in success.groupby(["id", "judge"], sort=False):
        ordered = g.assign(_m=g["model"].map(models.index)).sort_values("_m")
        recs.append({"id": int(cid), "judge": judge, "n_models": len(g), "n_solved": int(g["solved"].sum()),
                     "n_fully_solved": int(g["fully_solved"].sum()),
                     "solved_by": ", ".join(ordered.loc[ordered["solved"], "model"]),
                     "fully_solved_by": ", ".join(ordered.loc[ordered["fully_solved"], "model"]),
                     "mean_best": float(g["best"].mean()), "unsolved": not bool(g["solved"].any())})
    return pd.DataFrame.from_records(recs)


def unsolved_clips(rows: pd.DataFrame, threshold: float = 1.0, gated: bool = True) -> pd.DataFrame:
    """Clips that no model solves: every model's best is below ``threshold``.

    ``threshold=1`` (default): no model has even a partly correct answer; ``2``: no model
    has a fully correct one. Per judge and under ``Average`` (see :func:`clip_success`).

    Returns:
        ``judge``, ``id``, ``best_any_model`` (the highest best among models), ``n_models``.
    """
    success = clip_success(rows, gated=gated)
    agg = success.groupby(["judge", "id"], sort=False).agg(best_any_model=("best", "max"),
                                                           n_models=("model", "size")).reset_index()
    return agg[agg["best_any_model"] < threshold].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# 5. Plots (matplotlib Figure on the Agg canvas; seaborn for styling)
# --------------------------------------------------------------------------------------


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A Figure on an Agg canvas, outside pyplot's state, and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _palette(n: int) -> list:
    import seaborn as sns

    return sns.color_palette("colorblind", n)


def plot_table2_with_ci(ci_frame: pd.DataFrame, stat: str = "best_mean", title: str | None = None):
    """Best-Mean per model with its confidence interval, one marker per judge and Average.

    Args:
        ci_frame: :func:`bootstrap_scores`' output.
        stat: Which statistic of :data:`BOOTSTRAP_STATS` to draw.
        title: Axes title (default names the interval).

    Returns:
        A matplotlib Figure.
    """
    need = [stat, f"{stat}_ci_low", f"{stat}_ci_high"]
    missing = [c for c in ["model", "judge", *need] if c not in ci_frame.columns]
    if missing:
        raise ValueError(f"ci_frame lacks column(s) {missing}; pass bootstrap_scores()'s output")
    models = _order(ci_frame["model"])
    judges = _order(j for j in ci_frame["judge"] if j != AVERAGE)
    series = judges + ([AVERAGE] if (ci_frame["judge"] == AVERAGE).any() else [])
    fig, axes = _figure(max(5.0, 1.6 * len(models) + 2), 4.0)
    ax = axes[0, 0]
    colors = _palette(len(judges)) + [(0.1, 0.1, 0.1)]
    width = 0.8 / max(1, len(series))
    for s, judge in enumerate(series):
        sub = ci_frame[ci_frame["judge"] == judge].set_index("model")
        xs, ys, lo, hi = [], [], [], []
        for m, model in enumerate(models):
            if model in sub.index:
                xs.append(m - 0.4 + width * (s + 0.5))
                ys.append(sub.loc[model, stat])
                lo.append(sub.loc[model, stat] - sub.loc[model, f"{stat}_ci_low"])
                hi.append(sub.loc[model, f"{stat}_ci_high"] - sub.loc[model, stat])
        is_avg = judge == AVERAGE
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="D" if is_avg else "o", ms=7 if is_avg else 5, capsize=3,
                    color=colors[-1] if is_avg else colors[s], label=judge, lw=1.6 if is_avg else 1.1)
    ax.set_xticks(range(len(models)), models)
    ax.set_xlim(-0.6, len(models) - 0.4)
    if stat.startswith("best_mean"):
        ax.set_ylim(0, 2.05)
        ax.set_ylabel("Best-Mean (0-2)" if stat == "best_mean" else "Best-Mean, ungated (0-2)")
    else:
        ax.set_ylim(0, 100)
        ax.set_ylabel(stat.replace("_pct", " %"))
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    conf = ci_frame.attrs.get("confidence")
    method = ci_frame.attrs.get("method", "bootstrap")
    ax.set_title(title or (f"{round(100 * conf)}% {method} bootstrap CI over clips" if conf else "bootstrap CI"))
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, frameon=False, loc="outside lower center",
               ncol=len(series))
    return fig


def plot_agreement_heatmap(kappa_frame: pd.DataFrame, model: str | None = None, title: str | None = None):
    """Pairwise Cohen's kappa between judges as heatmaps, one per (variable, weights).

    Args:
        kappa_frame: :func:`cohen_kappas`' output.
        model: Which scope to draw (default :data:`POOLED` when present, else the first).
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    import seaborn as sns

    if kappa_frame.empty:
        raise ValueError("kappa_frame is empty (fewer than two judges?)")
    scopes = _order(kappa_frame["model"])
    model = model or (POOLED if POOLED in scopes else scopes[0])
    sub = kappa_frame[kappa_frame["model"] == model]
    if sub.empty:
        raise ValueError(f"no kappas for {model!r}; scopes: {scopes}")
    panels = _order(zip(sub["variable"], sub["weights"], strict=True))
    judges = _order([*sub["judge_a"], *sub["judge_b"]])
    n = len(judges)
    fig, axes = _figure(max(3.5, 0.9 * n + 1.6) * len(panels) + 0.8, max(3.0, 0.8 * n + 1.6), 1, len(panels))
    for ax, (variable, weights) in zip(axes.flat, panels, strict=False):
        mat = pd.DataFrame(np.nan, index=judges, columns=judges)  # the diagonal stays blank
        for r in sub[(sub["variable"] == variable) & (sub["weights"] == weights)].itertuples():
            mat.loc[r.judge_a, r.judge_b] = mat.loc[r.judge_b, r.judge_a] = r.kappa
        sns.heatmap(mat.astype(float), ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", square=True,
                    cbar=ax is axes.flat[len(panels) - 1], cbar_kws={"label": "Cohen's kappa"})
        ax.set_title(f"{variable}" + (f" ({weights}-weighted)" if weights != "none" else ""), fontsize=10)
        ax.tick_params(axis="x", labelrotation=30)
        ax.tick_params(axis="y", labelrotation=0)
    fig.suptitle(title or f"Judge agreement: {model}")
    return fig


def plot_prompt_sensitivity(per_instruction: pd.DataFrame, value: str = "mean_gated", title: str | None = None):
    """Mean rating per instruction, a line per model, a panel per judge (and Average).

    Speech-first instructions are shaded; tick labels say S (speech-first) or A.

    Args:
        per_instruction: :func:`instruction_means`' output.
        value: ``mean_gated`` or ``mean_ungated``.
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    judges = _order(per_instruction["judge"])
    models = _order(per_instruction["model"])
    ncols = min(2, len(judges))
    nrows = math.ceil(len(judges) / ncols)
    fig, axes = _figure(5.5 * ncols, 3.4 * nrows, nrows, ncols, sharey=True)
    colors = _palette(len(models))
    ks = sorted(per_instruction["instruction"].unique())
    for ax, judge in zip(axes.flat, judges, strict=False):
        sub = per_instruction[per_instruction["judge"] == judge]
        for k in ks:
            if INSTRUCTION_WORDING.get(int(k)) == SPEECH_FIRST:
                ax.axvspan(k - 0.5, k + 0.5, color="#dae8fc", alpha=0.6, lw=0)
        for c, model in enumerate(models):
            g = sub[sub["model"] == model].sort_values("instruction")
            if not g.empty:
                ax.plot(g["instruction"], g[value], marker="o", color=colors[c], label=model)
        ax.set_xticks(ks, [f"{int(k)}\n{'S' if INSTRUCTION_WORDING.get(int(k)) == SPEECH_FIRST else 'A'}" for k in ks])
        ax.set_title(judge, fontsize=10)
        ax.set_ylim(0, 2.05)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(judges):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean rating" + (" (gated)" if value == "mean_gated" else ""))
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "Prompt sensitivity: mean rating per instruction (shaded/S: speech named first)")
    return fig


def plot_best_of_k(curve: pd.DataFrame, value: str = "best_of_k", title: str | None = None):
    """Expected best-of-k rating against k, a line per model, a panel per judge.

    Args:
        curve: :func:`best_of_k`' output.
        value: ``best_of_k`` (gated) or ``best_of_k_ungated``.
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    judges = _order(curve["judge"])
    models = _order(curve["model"])
    ncols = min(2, len(judges))
    nrows = math.ceil(len(judges) / ncols)
    fig, axes = _figure(5.0 * ncols, 3.4 * nrows, nrows, ncols, sharey=True)
    colors = _palette(len(models))
    for ax, judge in zip(axes.flat, judges, strict=False):
        sub = curve[curve["judge"] == judge]
        for c, model in enumerate(models):
            g = sub[sub["model"] == model].sort_values("k")
            if not g.empty:
                ax.plot(g["k"], g[value], marker="o", color=colors[c], label=model)
        ax.set_title(judge, fontsize=10)
        ax.set_xticks(sorted(curve["k"].unique()))
        ax.set_xlabel("k (instructions per clip)")
        ax.set_ylim(0, 2.05)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(judges):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("expected best of k")
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "Best-Mean as a function of k (k = 8: the paper's Best-Mean; k = 1: the mean)")
    return fig


__all__ = [
    "AUDIO_FIRST", "BOOTSTRAP_STATS", "INSTRUCTION_WORDING", "METHODS", "ORIENTATION_ORDER", "POOLED",
    "RATING_ORDER", "SPEECH_FIRST", "UNPARSED",
    "best_of_k", "bootstrap_scores", "clip_difficulty", "clip_scores", "clip_success", "cohen_kappas",
    "compare_models", "confusion_matrices", "confusion_table", "expected_best_of_k", "holm",
    "instruction_means", "instruction_wording", "judge_offsets", "krippendorff_alphas", "mean_vs_best",
    "orientation_by_wording", "paired_comparison", "plot_agreement_heatmap", "plot_best_of_k",
    "plot_prompt_sensitivity", "plot_table2_with_ci", "reliability_matrix", "resample_indices",
    "unsolved_clips", "wording_test",
]
