"""Agreement between LLM judges, which the JASCO paper does not report.

Wang et al. (arXiv:2409.14526) rate each answer with three LLM judges and average their
Best-Means. Here the responses are the units and the judges the coders:

- :func:`krippendorff_alphas` (and :func:`reliability_matrix`, its input): Krippendorff's
  alpha on ratings (ordinal) and orientations (nominal);
- :func:`cohen_kappas`: Cohen's kappa for each pair of judges;
- :func:`confusion_matrices`, :func:`confusion_table`: what one judge says where another
  says something else;
- :func:`judge_offsets`: how much more generous each judge is than the others.

Each is computed per model and over all models' responses together (:data:`POOLED`).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd

from jasco_utils.analysis.metrics import in_order, prepare_rows, require_models
from jasco_utils.judging.parsing import AUDIO, BOTH, NEITHER, SPEECH

#: Scope label of agreement statistics computed over all models' responses together.
POOLED = "All models"
#: Orientation categories in display order (confusion matrices add :data:`UNPARSED`).
ORIENTATION_ORDER: tuple[str, ...] = (AUDIO, BOTH, SPEECH, NEITHER)
#: Category of a response whose rating or orientation could not be read.
UNPARSED = "unparsed"
#: Rating categories of the confusion matrices.
RATING_ORDER: tuple[str, ...] = ("0", "1", "2")


def _scopes(prep: pd.DataFrame, per_model: bool, pooled: bool):
    if per_model:
        yield from prep.groupby("model", sort=False)
    if pooled:
        yield POOLED, prep


def _wide(sub: pd.DataFrame, field: str) -> pd.DataFrame:
    """Units (model, id, instruction) x judges of ``field``; absent responses are NaN."""
    judges = in_order(sub["judge"])
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
    prep = prepare_rows(rows)
    if model is not None:
        require_models(prep, model)
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

    prep = prepare_rows(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        for variable, level, domain in (
            ("rating", "ordinal", [0.0, 1.0, 2.0]),
            ("orientation", "nominal", [0.0, 1.0, 2.0, 3.0]),
        ):
            mat = _reliability(sub, variable).to_numpy(dtype=float)
            counts = (~np.isnan(mat)).sum(axis=0)
            pairable = counts >= 2
            alpha = math.nan
            if mat.shape[0] >= 2 and pairable.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    try:
                        alpha = float(
                            krippendorff.alpha(reliability_data=mat, value_domain=domain, level_of_measurement=level)
                        )
                    except ValueError:
                        alpha = math.nan
            recs.append(
                {
                    "model": scope,
                    "variable": variable,
                    "level": level,
                    "alpha": alpha,
                    "n_judges": int(mat.shape[0]),
                    "n_units": int(mat.shape[1]),
                    "n_pairable": int(pairable.sum()),
                    "n_values": int(counts[pairable].sum()),
                }
            )
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

    prep = prepare_rows(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        judges = in_order(sub["judge"])
        for variable, labels, weightings in (
            ("rating", [0.0, 1.0, 2.0], ("none", "quadratic")),
            ("orientation", list(ORIENTATION_ORDER), ("none",)),
        ):
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
                            kappa = float(
                                cohen_kappa_score(ya, yb, labels=labels, weights=None if weights == "none" else weights)
                            )
                    recs.append(
                        {
                            "model": scope,
                            "variable": variable,
                            "weights": weights,
                            "judge_a": ja,
                            "judge_b": jb,
                            "kappa": kappa,
                            "agreement": float(np.mean(np.array(ya, dtype=object) == np.array(yb, dtype=object)))
                            if ya
                            else math.nan,
                            "n": len(ya),
                        }
                    )
    return pd.DataFrame.from_records(
        recs, columns=["model", "variable", "weights", "judge_a", "judge_b", "kappa", "agreement", "n"]
    )


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
    prep = prepare_rows(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        judges = in_order(sub["judge"])
        for variable, cats in (("rating", [*RATING_ORDER, UNPARSED]), ("orientation", [*ORIENTATION_ORDER, UNPARSED])):
            wide = _wide(sub, variable)
            present = _wide(sub.assign(_p=1.0), "_p").notna()
            for ja, jb in itertools.combinations(judges, 2):
                keep = present[ja] & present[jb]
                a = _category(wide.loc[keep, ja], variable)
                b = _category(wide.loc[keep, jb], variable)
                counts = pd.crosstab(a, b).reindex(index=cats, columns=cats, fill_value=0)
                for va in cats:
                    for vb in cats:
                        recs.append(
                            {
                                "model": scope,
                                "variable": variable,
                                "judge_a": ja,
                                "judge_b": jb,
                                "value_a": va,
                                "value_b": vb,
                                "count": int(counts.loc[va, vb]),
                            }
                        )
    return pd.DataFrame.from_records(
        recs, columns=["model", "variable", "judge_a", "judge_b", "value_a", "value_b", "count"]
    )


def confusion_table(confusion: pd.DataFrame, model: str, variable: str, judge_a: str, judge_b: str) -> pd.DataFrame:
    """One confusion matrix from :func:`confusion_matrices`: rows judge A, columns judge B."""
    sel = confusion[
        (confusion["model"] == model)
        & (confusion["variable"] == variable)
        & (confusion["judge_a"] == judge_a)
        & (confusion["judge_b"] == judge_b)
    ]
    if sel.empty:
        raise ValueError(
            f"no confusion matrix for model={model!r}, variable={variable!r}, "
            f"judges {judge_a!r} x {judge_b!r} (pairs are in order of first appearance)"
        )
    order = in_order(sel["value_a"])
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
    prep = prepare_rows(rows)
    recs = []
    for scope, sub in _scopes(prep, per_model, pooled):
        wide = _wide(sub, "gated" if gated else "rating").astype(float)
        if wide.shape[1] < 2:
            continue
        for judge in wide.columns:
            others = wide.drop(columns=judge).mean(axis=1, skipna=True)
            mask = wide[judge].notna() & others.notna()
            mine, theirs = wide.loc[mask, judge], others[mask]
            recs.append(
                {
                    "model": scope,
                    "judge": judge,
                    "mean": float(mine.mean()) if mask.any() else math.nan,
                    "mean_others": float(theirs.mean()) if mask.any() else math.nan,
                    "offset": float((mine - theirs).mean()) if mask.any() else math.nan,
                    "n": int(mask.sum()),
                }
            )
    return pd.DataFrame.from_records(recs, columns=["model", "judge", "mean", "mean_others", "offset", "n"])
