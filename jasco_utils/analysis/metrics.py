"""The paper's metrics: Best-Mean and modality dependence (Wang et al., arXiv:2409.14526).

Input is a table of *scored rows*, one per (model, judge, clip, instruction), with the
columns ``model``, ``judge``, ``id`` (clip), ``rating`` (0, 1, 2 or missing) and
``orientation`` (``Audio``, ``Speech``, ``Both``, ``Neither`` or missing).

- **Best-Mean** (Table II): a response's rating counts only when its orientation is Both,
  else 0 (the original script's rule); per clip the best of its 8 responses; the mean over
  clips. ``best_mean_ungated`` drops the Both condition (an extra column, not the paper's).
  An unreadable rating counts 0.
- **Modality dependence** (Figure 2): the shares of Audio, Both and Speech among the
  responses whose orientation is one of those three, in percent. Neither and unreadable
  orientations are left out of the denominator (they are counted and reported).
- **Average** (the paper's "Average" row): per model, the mean over judges of each
  judge's Best-Mean and of each judge's percentages.
"""

from __future__ import annotations

import math

import pandas as pd

from jasco_utils.judging.parsing import AUDIO, BOTH, NEITHER, SPEECH

#: Keys of one score record, in display order (``jasco score --json`` writes these).
SCORE_KEYS: tuple[str, ...] = (
    "model",
    "judge",
    "best_mean",
    "best_mean_ungated",
    "audio_pct",
    "both_pct",
    "speech_pct",
    "n_responses",
    "n_unparsed",
    "n_clips",
    "n_unparsed_rating",
    "n_unparsed_orientation",
    "n_neither",
)
#: The judge name of the average-over-judges record.
AVERAGE = "Average"


def gated_ratings(rows: pd.DataFrame) -> pd.Series:
    """Per row: the rating when the orientation is Both and the rating was read, else 0."""
    rating = pd.to_numeric(rows["rating"], errors="coerce")
    keep = rows["orientation"].eq(BOTH) & rating.notna()
    return rating.where(keep, 0).astype(float)


def best_mean(rows: pd.DataFrame, gated: bool = True) -> float:
    """Mean over clips of the best rating among each clip's responses.

    Args:
        rows: Scored rows of one (model, judge).
        gated: Count a rating only when the orientation is Both (the paper's metric).

    >>> rows = pd.DataFrame({"id": [1, 1, 2, 2], "rating": [2, 1, 2, None],
    ...                      "orientation": ["Speech", "Both", "Both", "Both"]})
    >>> best_mean(rows), best_mean(rows, gated=False)
    (1.5, 2.0)
    """
    if rows.empty:
        return math.nan
    values = gated_ratings(rows) if gated else pd.to_numeric(rows["rating"], errors="coerce").fillna(0)
    return float(values.groupby(rows["id"]).max().mean())


def dependence(rows: pd.DataFrame) -> dict[str, float]:
    """Audio, Both and Speech shares (percent) among responses with one of those orientations.

    >>> rows = pd.DataFrame({"orientation": ["Audio", "Both", "Both", "Neither", None]})
    >>> {k: round(v, 2) for k, v in dependence(rows).items()}
    {'audio_pct': 33.33, 'both_pct': 66.67, 'speech_pct': 0.0}
    """
    counts = rows["orientation"].value_counts()
    a, b, s = (int(counts.get(k, 0)) for k in (AUDIO, BOTH, SPEECH))
    total = a + b + s
    if total == 0:
        return {"audio_pct": math.nan, "both_pct": math.nan, "speech_pct": math.nan}
    return {"audio_pct": 100 * a / total, "both_pct": 100 * b / total, "speech_pct": 100 * s / total}


def score_group(rows: pd.DataFrame) -> dict[str, float | int]:
    """All metrics and counts of one (model, judge)'s scored rows."""
    rating_missing = pd.to_numeric(rows["rating"], errors="coerce").isna()
    orientation_missing = rows["orientation"].isna()
    return {
        "best_mean": best_mean(rows, gated=True),
        "best_mean_ungated": best_mean(rows, gated=False),
        **dependence(rows),
        "n_responses": len(rows),
        "n_unparsed": int((rating_missing | orientation_missing).sum()),
        "n_clips": int(rows["id"].nunique()),
        "n_unparsed_rating": int(rating_missing.sum()),
        "n_unparsed_orientation": int(orientation_missing.sum()),
        "n_neither": int(rows["orientation"].eq(NEITHER).sum()),
    }


def score_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One record per (model, judge) with :data:`SCORE_KEYS`, in order of first appearance."""
    records = [
        {"model": model, "judge": judge, **score_group(group)}
        for (model, judge), group in rows.groupby(["model", "judge"], sort=False)
    ]
    return pd.DataFrame(records, columns=list(SCORE_KEYS))


def average_over_judges(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's "Average" row: per model, the mean of the judges' metrics.

    Counts are summed over judges. Only models scored by two or more judges get one.
    """
    metrics = ["best_mean", "best_mean_ungated", "audio_pct", "both_pct", "speech_pct"]
    counts = [k for k in SCORE_KEYS if k.startswith("n_") and k != "n_clips"]
    per_judge = scores[scores["judge"] != AVERAGE]
    out = []
    for model, group in per_judge.groupby("model", sort=False):
        if group["judge"].nunique() < 2:
            continue
        rec = {"model": model, "judge": AVERAGE}
        rec.update({m: float(group[m].mean()) for m in metrics})
        rec.update({c: int(group[c].sum()) for c in counts})
        rec["n_clips"] = int(group["n_clips"].max())
        out.append(rec)
    return pd.DataFrame(out, columns=list(SCORE_KEYS))
