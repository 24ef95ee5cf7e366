"""Prompt sensitivity: whether the 8 instructions' wording changes ratings and orientations.

Wang et al. (arXiv:2409.14526) ask every clip 8 instructions and keep each clip's best
answer (Best-Mean). The instructions differ in naming the spoken text or the audio sound
first (:data:`INSTRUCTION_WORDING`); this module asks whether that matters, and how much
the best-of-8 rule adds:

- :func:`instruction_means`: the mean rating per instruction;
- :func:`mean_vs_best`: the mean over all answers against Best-Mean;
- :func:`orientation_by_wording`, :func:`wording_test`: the Audio/Both/Speech shares under
  speech-first and audio-first wording, and a clip-stratified permutation test;
- :func:`expected_best_of_k`, :func:`best_of_k`: Best-Mean as a function of how many
  instructions per clip are asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, with_average
from jasco_utils.analysis.metrics import dependence, in_order, prepare_rows, score_rows
from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.judging.parsing import AUDIO, BOTH, NEITHER, SPEECH

#: Wording labels.
SPEECH_FIRST, AUDIO_FIRST = "speech-first", "audio-first"

_SPEECH_CUE = re.compile(r"spoken text|speaker say", re.IGNORECASE)
_AUDIO_CUE = re.compile(r"audio sound|sound can you hear", re.IGNORECASE)


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


def instruction_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean rating per instruction (1..8), per model and judge, and the judges' Average.

    ``mean_gated`` averages Best-Mean's per-response value (the rating when the orientation
    is Both, else 0); ``mean_ungated`` the rating. An unreadable rating counts 0 in both,
    as in Best-Mean; ``n_unparsed_rating`` says how many.

    Returns:
        ``model``, ``judge``, ``instruction``, ``wording`` (:data:`INSTRUCTION_WORDING`),
        ``mean_gated``, ``mean_ungated``, ``n_responses``, ``n_unparsed_rating``.
    """
    prep = prepare_rows(rows)
    out = (
        prep.assign(_unparsed=prep["rating"].isna().astype(int))
        .groupby(["model", "judge", "instruction"], sort=False)
        .agg(
            mean_gated=("gated", "mean"),
            mean_ungated=("ungated", "mean"),
            n_responses=("gated", "size"),
            n_unparsed_rating=("_unparsed", "sum"),
        )
        .reset_index()
    )
    out.insert(3, "wording", out["instruction"].map(INSTRUCTION_WORDING))
    models, judges = in_order(prep["model"]), in_order(prep["judge"])
    out["_m"], out["_j"] = out["model"].map(models.index), out["judge"].map(judges.index)
    out = out.sort_values(["_m", "_j", "instruction"], kind="stable").drop(columns=["_m", "_j"])
    avg = with_average(out, ["instruction"], ["mean_gated", "mean_ungated"], ["n_responses", "n_unparsed_rating"])
    avg["wording"] = avg["instruction"].map(INSTRUCTION_WORDING)
    return avg


def mean_vs_best(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over all responses versus Best-Mean (best of 8 per clip), gated and ungated.

    The gap says how much the best-of-8 rule adds over a single typical answer.

    Returns:
        ``model``, ``judge`` (and ``Average``), ``mean_gated``, ``best_mean``,
        ``best_minus_mean`` (gated), ``mean_ungated``, ``best_mean_ungated``, ``n_responses``.
    """
    prep = prepare_rows(rows)
    means = prep.groupby(["model", "judge"], sort=False).agg(
        mean_gated=("gated", "mean"), mean_ungated=("ungated", "mean"), n_responses=("gated", "size")
    )
    bests = score_rows(prep).set_index(["model", "judge"])[["best_mean", "best_mean_ungated"]]
    out = means.join(bests).reset_index()
    out["best_minus_mean"] = out["best_mean"] - out["mean_gated"]
    out = out[
        [
            "model",
            "judge",
            "mean_gated",
            "best_mean",
            "best_minus_mean",
            "mean_ungated",
            "best_mean_ungated",
            "n_responses",
        ]
    ]
    return with_average(
        out, [], ["mean_gated", "best_mean", "best_minus_mean", "mean_ungated", "best_mean_ungated"], ["n_responses"]
    )


def orientation_by_wording(rows: pd.DataFrame) -> pd.DataFrame:
    """Audio/Both/Speech shares for speech-first versus audio-first instructions.

    Shares as :func:`jasco_utils.analysis.metrics.dependence`: percent of the responses whose
    orientation is Audio, Both or Speech. ``Average`` is the mean over judges.

    Returns:
        ``model``, ``judge``, ``wording``, ``audio_pct``, ``both_pct``, ``speech_pct``,
        ``n_oriented``, ``n_neither``, ``n_unparsed``, ``n_responses``.
    """
    prep = prepare_rows(rows)
    prep = prep.assign(wording=prep["instruction"].map(INSTRUCTION_WORDING))
    if prep["wording"].isna().any():
        bad = sorted(prep.loc[prep["wording"].isna(), "instruction"].unique())
        raise ValueError(f"instruction number(s) {bad} are not 1..{len(INSTRUCTIONS)}")
    recs = []
    for (model, judge, wording), g in prep.groupby(["model", "judge", "wording"], sort=False):
        o = g["orientation"]
        recs.append(
            {
                "model": model,
                "judge": judge,
                "wording": wording,
                **dependence(g),
                "n_oriented": int(o.isin([AUDIO, BOTH, SPEECH]).sum()),
                "n_neither": int(o.eq(NEITHER).sum()),
                "n_unparsed": int(o.isna().sum()),
                "n_responses": len(g),
            }
        )
    out = pd.DataFrame.from_records(recs)
    return with_average(
        out,
        ["wording"],
        ["audio_pct", "both_pct", "speech_pct"],
        ["n_oriented", "n_neither", "n_unparsed", "n_responses"],
    )


def _chi2_stat(table: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson chi-square over the last two axes, cells with expected > 0."""
    keep = expected > 0
    e = np.where(keep, expected, 1.0)
    return np.where(keep, (table - expected) ** 2 / e, 0.0).sum(axis=(-2, -1))


def wording_test(rows: pd.DataFrame, n_resamples: int = 9999, seed: int | None = 0, batch: int = 1000) -> pd.DataFrame:
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
    from scipy import stats as sps  # a second or two to import: only where it is used

    prep = prepare_rows(rows)
    prep = prep.assign(wording=prep["instruction"].map(INSTRUCTION_WORDING))
    cats = [AUDIO, BOTH, SPEECH]
    recs = []
    for (model, judge), g in prep.groupby(["model", "judge"], sort=False):
        g = g[g["orientation"].isin(cats)].sort_values(["id", "instruction"])
        first = g["wording"].eq(SPEECH_FIRST).to_numpy()
        orient = np.stack([g["orientation"].eq(c).to_numpy() for c in cats], axis=1).astype(float)  # (n, 3)
        table = np.stack([orient[first].sum(0), orient[~first].sum(0)])  # (2, 3)
        rec = {
            "model": model,
            "judge": judge,
            "chi2": math.nan,
            "dof": 0,
            "chi2_p_value": math.nan,
            "permutation_p_value": math.nan,
            "both_pct_speech_first": dependence(g[first])["both_pct"],
            "both_pct_audio_first": dependence(g[~first])["both_pct"],
            "n_oriented": len(g),
            "n_clips": int(g["id"].nunique()),
            "n_resamples": n_resamples,
        }
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
    prep = prepare_rows(rows)
    if ks is None:
        ks = range(1, int(prep.groupby(["model", "judge", "id"]).size().max()) + 1)
    recs = []
    for (model, judge), g in prep.groupby(["model", "judge"], sort=False):
        per_clip = [(c["gated"].to_numpy(), c["ungated"].to_numpy()) for _, c in g.groupby("id")]
        for k in ks:
            recs.append(
                {
                    "model": model,
                    "judge": judge,
                    "k": int(k),
                    "best_of_k": float(np.mean([expected_best_of_k(gv, k) for gv, _ in per_clip])),
                    "best_of_k_ungated": float(np.mean([expected_best_of_k(uv, k) for _, uv in per_clip])),
                    "n_clips": len(per_clip),
                }
            )
    out = pd.DataFrame.from_records(recs)
    avg = with_average(out, ["k"], ["best_of_k", "best_of_k_ungated"])
    if (avg["judge"] == AVERAGE).any():
        n_clips = out.groupby("model")["n_clips"].max()
        sel = avg["judge"] == AVERAGE
        avg.loc[sel, "n_clips"] = avg.loc[sel, "model"].map(n_clips)
    avg["n_clips"] = avg["n_clips"].astype(int)
    return avg
