"""Clip difficulty: which clips the ALLMs solve, and which none does.

Best-Mean (Table II of Wang et al., arXiv:2409.14526) averages each clip's best answer;
here that per-clip best (:func:`jasco_utils.analysis.metrics.clip_table`) is read per clip:

- :func:`clip_success`: per clip, judge and model, the best value and whether it solves the
  clip (best >= 1) or fully solves it (best == 2);
- :func:`clip_difficulty`: per clip and judge, how many models solve it, and which;
- :func:`unsolved_clips`: the clips no model solves.
"""

from __future__ import annotations

import pandas as pd

from jasco_utils.analysis.averages import with_average
from jasco_utils.analysis.metrics import clip_table, in_order, prepare_rows


def clip_success(rows: pd.DataFrame, gated: bool = True) -> pd.DataFrame:
    """Per clip, judge and model: the best rating and whether the model succeeds.

    ``solved``: best >= 1 (a partly correct answer among the 8); ``fully_solved``: best ==
    2. Under ``Average`` (models with two or more judges) ``best`` is the mean over
    judges of each judge's best, so ``solved`` means the judges' mean best is at least 1
    and ``fully_solved`` that every judge gave some answer a 2.

    Returns:
        ``id``, ``judge``, ``model``, ``best``, ``solved``, ``fully_solved``.
    """
    prep = prepare_rows(rows)
    col = "best_gated" if gated else "best_ungated"
    clips = clip_table(prep)[["model", "judge", "id", col]].rename(columns={col: "best"})
    out = with_average(clips, ["id"], ["best"])
    out["solved"] = out["best"] >= 1
    out["fully_solved"] = out["best"] >= 2
    judges = in_order(out["judge"])
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
    models = in_order(success["model"])
    recs = []
    for (cid, judge), g in success.groupby(["id", "judge"], sort=False):
        ordered = g.assign(_m=g["model"].map(models.index)).sort_values("_m")
        recs.append(
            {
                "id": int(cid),
                "judge": judge,
                "n_models": len(g),
                "n_solved": int(g["solved"].sum()),
                "n_fully_solved": int(g["fully_solved"].sum()),
                "solved_by": ", ".join(ordered.loc[ordered["solved"], "model"]),
                "fully_solved_by": ", ".join(ordered.loc[ordered["fully_solved"], "model"]),
                "mean_best": float(g["best"].mean()),
                "unsolved": not bool(g["solved"].any()),
            }
        )
    return pd.DataFrame.from_records(recs)


def unsolved_clips(rows: pd.DataFrame, threshold: float = 1.0, gated: bool = True) -> pd.DataFrame:
    """Clips that no model solves: every model's best is below ``threshold``.

    ``threshold=1`` (default): no model has even a partly correct answer; ``2``: no model
    has a fully correct one. Per judge and under ``Average`` (see :func:`clip_success`).

    Returns:
        ``judge``, ``id``, ``best_any_model`` (the highest best among models), ``n_models``.
    """
    success = clip_success(rows, gated=gated)
    agg = (
        success.groupby(["judge", "id"], sort=False)
        .agg(best_any_model=("best", "max"), n_models=("model", "size"))
        .reset_index()
    )
    return agg[agg["best_any_model"] < threshold].reset_index(drop=True)
