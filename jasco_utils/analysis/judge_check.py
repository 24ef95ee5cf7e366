"""The judge check: how often a judge gives the known label to control answers.

In JASCO (Wang et al., arXiv:2409.14526) the LLM judge is the measuring instrument, and the
paper does not measure it. The control answers of :mod:`jasco_utils.judging.controls`
(the clip's correct answer, its audio- and speech-oriented answers, a description without
an inference, a too-general answer, another clip's answer) have labels that follow from the
judge prompt's own rules. Per judge this module reports:

- rows, and rows whose rating or orientation could not be read;
- rating accuracy and orientation accuracy over the rows whose expected value is checked,
  overall and per kind; an unreadable value counts as wrong (it is never left out);
- Cohen's kappa against the expected labels (:func:`sklearn.metrics.cohen_kappa_score`,
  unweighted, with ``unparsed`` as one more category, so its observed agreement is the
  accuracy): accuracy alone flatters a judge that always answers 0, since most kinds
  expect 0; kappa is 0 for such a judge;
- the confusion matrices of orientations and ratings (expected x given, ``unparsed`` a
  category);
- 95% intervals of the accuracies by resampling clips (the clip is the unit: its control
  answers move together), with :func:`jasco_utils.analysis.bootstrap.resample_indices` and
  the percentile rule of :mod:`jasco_utils.analysis.bootstrap`.

Judged control tables are read as scoring reads judged tables: the rating and orientation
are recomputed from ``judge_output`` and ``reask_output``
(:func:`jasco_utils.analysis.scoring.parse_rows`, i.e. :func:`jasco_utils.judging.parsing.read_verdict`).
:func:`measure` is what ``jasco check-judge`` reports (its judges run in
:func:`jasco_utils.pipeline.reproduce.check_judges`); :func:`run_check_report` is the analysis notebook's.
:func:`check_footnote` and :func:`usable_judges` give Table II a run's check: the footnote, and
the judges its ``Average (usable judges)`` covers.
This module only measures: it runs no judge.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from jasco_utils.analysis.agreement import ORIENTATION_ORDER, RATING_ORDER, UNPARSED
from jasco_utils.analysis.bootstrap import bootstrap_interval, resample_indices, resample_weights
from jasco_utils.analysis.metrics import in_order
from jasco_utils.judging.controls import (
    CONTROL_KINDS,
    KIND_GROUPS,
)
from jasco_utils.run import Run

#: The accuracies, each reported overall and per kind.
ACCURACIES: tuple[str, ...] = ("rating_accuracy", "orientation_accuracy")
#: A judge is called usable when its orientation kappa on the paraphrased controls reaches this
#: (0.4: "moderate" agreement on the common reading of kappa; the verbatim kinds are not used,
#: since a judge that matches text against the designed answers gets them right trivially).
USABLE_ORIENTATION_KAPPA = 0.4


def _none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _labels(rows: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series, pd.Series]]:
    """Per field: (checked mask, expected as text, given as text with ``unparsed``)."""
    rating_given = rows["rating"].map(lambda v: UNPARSED if pd.isna(v) else str(int(v)))
    orient_given = rows["orientation"].map(lambda v: v if isinstance(v, str) and v else UNPARSED)
    return {
        "rating": (
            rows["expected_rating"].notna(),
            rows["expected_rating"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            rating_given,
        ),
        "orientation": (rows["expected_orientation"] != "", rows["expected_orientation"], orient_given),
    }


def _kappa(expected: pd.Series, given: pd.Series, labels: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if expected.empty:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _none(float(cohen_kappa_score(expected.to_list(), given.to_list(), labels=labels)))


def _confusion(expected: pd.Series, given: pd.Series, rows: list[str], cols: list[str]) -> dict[str, dict[str, int]]:
    counts = pd.crosstab(expected, given).reindex(index=rows, columns=cols, fill_value=0)
    present = [r for r in rows if (expected == r).any()]
    return {r: {c: int(counts.loc[r, c]) for c in cols} for r in present}


def _scope_stats(
    rows: pd.DataFrame,
    labels: dict,
    correct: dict,
    scopes: list[tuple[str, pd.Series]],
    n_resamples: int,
    confidence: float,
    seed: int | None,
) -> list[dict[str, Any]]:
    """Per scope: rating and orientation accuracy with their intervals, every scope resampling the same clips."""
    ids = np.array(sorted(rows["id"].unique()))
    pos = pd.Series(np.arange(len(ids)), index=ids).loc[rows["id"]].to_numpy()
    num, den = [], []
    for _, in_scope in scopes:
        for field in ("rating", "orientation"):
            mask = (labels[field][0] & in_scope).to_numpy()
            num.append(
                np.bincount(pos, weights=(correct[field] & in_scope).to_numpy().astype(float), minlength=len(ids))
            )
            den.append(np.bincount(pos, weights=mask.astype(float), minlength=len(ids)))
    num, den = np.array(num), np.array(den)  # (statistics, clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = num.sum(axis=1) / den.sum(axis=1)
        if n_resamples > 0:
            w = resample_weights(resample_indices(len(ids), n_resamples, seed), len(ids))
            lo, hi = bootstrap_interval((w @ num.T) / (w @ den.T), point, None, confidence, "percentile")
        else:
            lo = hi = np.full(point.shape, np.nan)

    def stat(s: int) -> tuple[float | None, list[float | None] | None]:
        value = _none(point[s])
        return value, (None if value is None or n_resamples <= 0 else [_none(lo[s]), _none(hi[s])])

    out = []
    for i, (_, in_scope) in enumerate(scopes):
        (ra, ra_ci), (oa, oa_ci) = stat(2 * i), stat(2 * i + 1)
        out.append(
            {
                "n": int(in_scope.sum()),
                "rating_accuracy": ra,
                "orientation_accuracy": oa,
                "rating_accuracy_ci": ra_ci,
                "orientation_accuracy_ci": oa_ci,
            }
        )
    return out


def _agreement(labels: dict, in_scope: pd.Series) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Cohen's kappa against the expected labels, and the commonest label's share, on one scope."""
    cats = {"rating": [*RATING_ORDER, UNPARSED], "orientation": [*ORIENTATION_ORDER, UNPARSED]}
    kappa, majority = {}, {}
    for field, (mask, exp, giv) in labels.items():
        m = mask & in_scope
        kappa[field] = _kappa(exp[m], giv[m], cats[field])
        majority[field] = _none(float(exp[m].value_counts(normalize=True).max())) if m.any() else None
    return kappa, majority


def _judge_record(rows: pd.DataFrame, n_resamples: int, confidence: float, seed: int | None) -> dict[str, Any]:
    labels = _labels(rows)
    correct = {f: (mask & (exp == giv)) for f, (mask, exp, giv) in labels.items()}
    kinds = [k for k in CONTROL_KINDS if (rows["control_kind"] == k).any()]
    kinds += [k for k in in_order(rows["control_kind"]) if k not in kinds]
    groups = {g: [k for k in members if k in kinds] for g, members in KIND_GROUPS.items()}
    groups = {g: members for g, members in groups.items() if members}
    # statistics: overall, per kind, per group; each field a ratio of per-clip counts
    everything = pd.Series(True, index=rows.index)
    scopes = (
        [("all", everything)]
        + [(k, rows["control_kind"] == k) for k in kinds]
        + [(g, rows["control_kind"].isin(members)) for g, members in groups.items()]
    )
    stats = _scope_stats(rows, labels, correct, scopes, n_resamples, confidence, seed)
    per_kind = dict(zip(kinds, stats[1 : 1 + len(kinds)], strict=False))
    by_group = {}
    for (group, in_scope), st in zip(scopes[1 + len(kinds) :], stats[1 + len(kinds) :], strict=False):
        kappa, majority = _agreement(labels, in_scope)
        by_group[group] = {"kinds": groups[group], **st, "kappa": kappa, "majority_baseline": majority}
    overall = stats[0]
    kappa, majority = _agreement(labels, everything)
    mask_r, exp_r, giv_r = labels["rating"]
    mask_o, exp_o, giv_o = labels["orientation"]
    orient_cats, rating_cats = [*ORIENTATION_ORDER, UNPARSED], [*RATING_ORDER, UNPARSED]
    paraphrased = by_group.get("paraphrased", {}).get("kappa", {}).get("orientation")
    return {
        "judge": rows["judge"].iloc[0],
        "template": next((t for t in rows["template"] if t), None),
        "n_rows": len(rows),
        "n_clips": len(set(rows["id"])),
        "n_unparsed": int((rows["rating"].isna() | rows["orientation"].isna()).sum()),
        "rating_accuracy": overall["rating_accuracy"],
        "orientation_accuracy": overall["orientation_accuracy"],
        "per_kind": per_kind,
        "kappa": kappa,
        "majority_baseline": majority,
        "intervals": {
            "rating_accuracy": overall["rating_accuracy_ci"],
            "orientation_accuracy": overall["orientation_accuracy_ci"],
            "confidence": confidence,
            "n_resamples": n_resamples,
            "seed": seed,
            "unit": "clip",
        },
        "confusion": {
            "orientation": _confusion(exp_o[mask_o], giv_o[mask_o], list(ORIENTATION_ORDER), orient_cats),
            "rating": _confusion(exp_r[mask_r], giv_r[mask_r], list(RATING_ORDER), rating_cats),
        },
        "files": in_order(rows["file"]),
        "groups": by_group,
        "usable": paraphrased is not None and paraphrased >= USABLE_ORIENTATION_KAPPA,
        "usable_threshold": USABLE_ORIENTATION_KAPPA,
    }


def measure(
    rows: pd.DataFrame, n_resamples: int = 2000, confidence: float = 0.95, seed: int | None = 0
) -> list[dict[str, Any]]:
    """The judge check's numbers, one record per judge (in order of appearance).

    Args:
        rows: :func:`read_checked`'s rows.
        n_resamples: Bootstrap resamples of clips for the intervals (0: no intervals).
        confidence: Two-sided level of the intervals.
        seed: Seed of ``numpy.random.default_rng`` for the resampling.

    Returns:
        JSON-ready records: ``judge``, ``template``, ``n_rows``, ``n_clips``, ``n_unparsed``,
        ``rating_accuracy``, ``orientation_accuracy`` (``None`` where no row's value is
        checked), ``per_kind`` (kind -> ``n``, ``rating_accuracy``, ``orientation_accuracy``
        and their ``_ci``), ``kappa`` (``rating``, ``orientation``), ``majority_baseline``
        (the accuracy of always giving the most common expected value), ``intervals``
        (``[low, high]`` per accuracy, the level, resamples, seed and unit), ``confusion``
        (``orientation`` and ``rating``: expected -> given -> count) and ``files``; then
        ``groups`` (``verbatim`` and ``paraphrased``, those present: ``kinds``, ``n``, the two
        accuracies and their ``_ci``, ``kappa``, ``majority_baseline``), ``usable`` (the
        paraphrased kinds' orientation kappa reaches ``usable_threshold``,
        :data:`USABLE_ORIENTATION_KAPPA`; false when they were not judged).
    """
    return [_judge_record(group, n_resamples, confidence, seed) for _, group in rows.groupby("judge", sort=False)]


def _fmt(value: float | None, ci: list | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}"
    if ci and ci[0] is not None:
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return text


def check_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The records as one table: per judge a row ``all``, one per group of kinds (``verbatim``,
    ``paraphrased``; with their kappas), then one per kind."""
    out = []
    for rec in records:
        out.append(
            {
                "judge": rec["judge"],
                "kind": "all",
                "n": rec["n_rows"],
                "unparsed": rec["n_unparsed"],
                "rating_accuracy": rec["rating_accuracy"],
                "orientation_accuracy": rec["orientation_accuracy"],
                "rating_kappa": rec["kappa"]["rating"],
                "orientation_kappa": rec["kappa"]["orientation"],
            }
        )
        for group, g in rec.get("groups", {}).items():
            out.append(
                {
                    "judge": rec["judge"],
                    "kind": group,
                    "n": g["n"],
                    "rating_accuracy": g["rating_accuracy"],
                    "orientation_accuracy": g["orientation_accuracy"],
                    "rating_kappa": g["kappa"]["rating"],
                    "orientation_kappa": g["kappa"]["orientation"],
                }
            )
        for kind, k in rec["per_kind"].items():
            out.append(
                {
                    "judge": rec["judge"],
                    "kind": kind,
                    "n": k["n"],
                    "rating_accuracy": k["rating_accuracy"],
                    "orientation_accuracy": k["orientation_accuracy"],
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "judge",
            "kind",
            "n",
            "unparsed",
            "rating_accuracy",
            "orientation_accuracy",
            "rating_kappa",
            "orientation_kappa",
        ],
    )


def format_check(records: list[dict[str, Any]]) -> str:
    """What ``jasco check-judge`` prints: per judge the accuracies, kappas, per-kind table and confusion."""
    blocks = []
    for rec in records:
        iv = rec["intervals"]
        level = f"{round(100 * iv['confidence'])}% interval" if iv.get("n_resamples") else "no interval"
        head = [
            f"{rec['judge']}"
            + (f" ({rec['template']})" if rec.get("template") else "")
            + f": {rec['n_rows']} rows, {rec['n_clips']} clips, {rec['n_unparsed']} unparsed",
            f"  rating accuracy      {_fmt(rec['rating_accuracy'], iv['rating_accuracy'])}  "
            f"kappa {_fmt(rec['kappa']['rating'])}  (always the commonest label: "
            f"{_fmt(rec['majority_baseline']['rating'])})",
            f"  orientation accuracy {_fmt(rec['orientation_accuracy'], iv['orientation_accuracy'])}  "
            f"kappa {_fmt(rec['kappa']['orientation'])}  (always the commonest label: "
            f"{_fmt(rec['majority_baseline']['orientation'])})",
            f"  [{level}s, clips resampled]",
        ]
        head += _group_lines(rec)
        kinds = pd.DataFrame(
            [
                {
                    "kind": k,
                    "n": v["n"],
                    "rating": _fmt(v["rating_accuracy"]),
                    "orientation": _fmt(v["orientation_accuracy"]),
                }
                for k, v in rec["per_kind"].items()
            ]
        )
        conf = pd.DataFrame(rec["confusion"]["orientation"]).T
        blocks.append(
            "\n".join(head)
            + "\n\n"
            + _indent(kinds.to_string(index=False))
            + "\n\n  orientation, expected (rows) x given (columns):\n"
            + _indent(conf.to_string())
        )
    note = (
        "Accuracy counts an unreadable rating or orientation as wrong; '-': not checked for that kind. "
        "Kappa 0 is chance agreement with the expected labels. A judge is usable only when its orientation "
        f"kappa on the paraphrased kinds is {USABLE_ORIENTATION_KAPPA} or more (the verbatim kinds are the "
        "designed answers word for word: a text matcher gets them right)."
    )
    warned = judge_check_warnings(records)
    return "\n\n".join(blocks) + "\n\n" + note + ("\n\n" + "\n".join(warned) if warned else "")


def _group_lines(rec: dict[str, Any]) -> list[str]:
    """The verbatim and paraphrased groups' lines of :func:`format_check`, and the verdict on usability."""
    lines = []
    for group, g in rec.get("groups", {}).items():
        lines.append(
            f"  {group} kinds ({len(g['kinds'])}, {g['n']} rows): "
            f"rating {_fmt(g['rating_accuracy'], g['rating_accuracy_ci'])} "
            f"kappa {_fmt(g['kappa']['rating'])}; "
            f"orientation {_fmt(g['orientation_accuracy'], g['orientation_accuracy_ci'])} "
            f"kappa {_fmt(g['kappa']['orientation'])}"
        )
    if "usable" in rec:
        lines.append(
            f"  usable (paraphrased orientation kappa >= {rec['usable_threshold']}): {'yes' if rec['usable'] else 'no'}"
        )
    return lines


def judge_check_warnings(records: list[dict[str, Any]], threshold: float = USABLE_ORIENTATION_KAPPA) -> list[str]:
    """One warning per judge whose orientation kappa on the paraphrased controls is below ``threshold``.

    A judge whose check had no paraphrased controls is named too: nothing shows it usable.

    Args:
        records: :func:`measure`'s records (or those of ``judge_check.json``).
        threshold: The least orientation kappa on the paraphrased kinds.

    Returns:
        Sentences naming the judge and its kappa; empty when every judge reaches the threshold.

    >>> judge_check_warnings([{"judge": "J", "groups": {"paraphrased": {"kappa": {"orientation": 0.12}}}},
    ...                       {"judge": "K", "groups": {"paraphrased": {"kappa": {"orientation": 0.8}}}}])
    ['Warning: judge J is not usable: its orientation kappa on the paraphrased controls is 0.12, below 0.4; its Table II and Figure 2 numbers say little about the ALLMs.']
    """
    out = []
    for rec in records:
        kappa = rec.get("groups", {}).get("paraphrased", {}).get("kappa", {}).get("orientation")
        if kappa is None:
            out.append(
                f"Warning: judge {rec['judge']} has no orientation kappa on the paraphrased controls "
                "(none were judged, or they cannot be scored), so nothing shows it usable."
            )
        elif kappa < threshold:
            out.append(
                f"Warning: judge {rec['judge']} is not usable: its orientation kappa on the paraphrased "
                f"controls is {kappa:.2f}, below {threshold}; its Table II and Figure 2 numbers say little "
                "about the ALLMs."
            )
    return out


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def check_footnote(run_dir: str | os.PathLike[str]) -> str:
    """One sentence for Table II: each judge's accuracies on the run's judge check ("" when none ran)."""
    run = Run(run_dir)
    if not run.judge_check_files():
        return ""
    records = measure(run.judge_check(), n_resamples=0)
    parts = [
        f"{r['judge']} rating {_fmt(r['rating_accuracy'])}, orientation {_fmt(r['orientation_accuracy'])}"
        f" (kappa {_fmt(r['kappa']['rating'])}, {_fmt(r['kappa']['orientation'])})" + _paraphrased_note(r)
        for r in records
    ]
    warned = judge_check_warnings(records)
    return (
        f"Judge check (control answers with known labels, {clips_text(records)}; accuracy, Cohen's kappa): "
        + "; ".join(parts)
        + "."
        + ("".join(" " + w for w in warned))
    )


def usable_judges(run_dir: str | os.PathLike[str]) -> list[str] | None:
    """The judges the run's judge check finds usable (:data:`USABLE_ORIENTATION_KAPPA`), in order.

    Table II and Figure 2 add an Average over these judges beside the all-judge one
    (:func:`jasco_utils.analysis.averages.with_usable_average`) when some of the run's judges
    are not among them; a judge the check did not measure is not among them.

    Returns:
        The usable judges' names (possibly none); ``None`` when the run has no judge check.
    """
    run = Run(run_dir)
    if not run.judge_check_files():
        return None
    return [r["judge"] for r in measure(run.judge_check(), n_resamples=0) if r["usable"]]


def clips_text(records: list[dict[str, Any]]) -> str:
    """How many clips the judges were checked on: ``80 clips``, or each judge's where they differ.

    >>> clips_text([{"judge": "R", "n_clips": 80}, {"judge": "S", "n_clips": 3}])
    '80 clips for R, 3 for S'
    """
    counts = [r["n_clips"] for r in records]
    if len(set(counts)) == 1:
        return f"{counts[0]} clips"
    return f"{counts[0]} clips for {records[0]['judge']}, " + ", ".join(
        f"{r['n_clips']} for {r['judge']}" for r in records[1:]
    )


def _paraphrased_note(rec: dict[str, Any]) -> str:
    """``, paraphrased kinds: rating ..., orientation ... (kappa ..., ...), usable`` for a footnote."""
    g = rec.get("groups", {}).get("paraphrased")
    if not g:
        return ""
    return (
        f"; paraphrased kinds: rating {_fmt(g['rating_accuracy'])}, orientation {_fmt(g['orientation_accuracy'])}"
        f" (kappa {_fmt(g['kappa']['rating'])}, {_fmt(g['kappa']['orientation'])}), "
        + ("usable" if rec.get("usable") else "not usable")
    )
