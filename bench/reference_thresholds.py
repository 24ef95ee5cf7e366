"""Redo the search that fixed the reference judge's thresholds, on the odd clips only.

The reference engine (:mod:`jasco_utils.judging.reference`) decides with six thresholds. They
were chosen here: every combination of a small grid is scored on the **odd-numbered clips'**
control answers (all ten kinds), and the combination with the highest mean of the paraphrased
kinds' orientation and rating kappas wins, among those keeping the verbatim kinds' accuracy at
:data:`VERBATIM_FLOOR` or more (ties: the verbatim kinds' accuracy, then the grid's order,
smallest values first). The even clips are never read for the choice, so their judge check is
out of sample.

The floors start at 0.4: a clip's own audio- and speech-oriented answers, which share no
action, already reach cosines of 0.3 (their mean over the odd clips; up to 0.5), so a lower
floor would call unrelated texts related (on the paraphrases alone the search picks 0.3, the
grid's edge, and fits them more closely). The script prints the best combination, the one in
use (:data:`~jasco_utils.judging.reference.THRESHOLDS`), and both on the even clips::

    .venv/bin/python bench/reference_thresholds.py --data-dir ../shared/jasco-v0
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import cohen_kappa_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jasco_utils.judging.controls import CONTROL_KINDS, PARAPHRASED_KINDS, build_controls
from jasco_utils.judging.prompts import render_judge_prompt
from jasco_utils.judging.reference import THRESHOLDS, ReferenceBackend, Thresholds, decide, features
from jasco_utils.judging.reference_text import read_prompt

GRID = {
    "ref_floor": [0.4, 0.45, 0.5, 0.55, 0.6],
    "joint_margin": [0.0, 0.05, 0.1, 0.15],
    "keyword_floor": [0.4, 0.45, 0.5, 0.55, 0.6],
    "keyword_slack": [0.0, 0.05, 0.1, 0.15],
    "separate_floor": [0.4, 0.45, 0.5, 0.55, 0.6],
    "two_floor": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7],
}
#: The verbatim kinds' accuracy a combination must keep on the fit clips (the rules get them right).
VERBATIM_FLOOR = 0.95


def score(table: pd.DataFrame, feats: list, t: Thresholds) -> dict[str, float]:
    """Kappas and accuracies of the thresholds ``t`` on the rows of ``table``."""
    verdicts = [decide(f, t) for f in feats]
    given_r = pd.Series([v.rating for v in verdicts], index=table.index)
    given_o = pd.Series([v.orientation for v in verdicts], index=table.index)
    para = table["control_kind"].isin(PARAPHRASED_KINDS)
    verb = ~para
    checked = table["expected_orientation"] != ""
    out = {
        "para_orientation_kappa": cohen_kappa_score(table.loc[para, "expected_orientation"], given_o[para]),
        "para_rating_kappa": cohen_kappa_score(table.loc[para, "expected_rating"].astype(int), given_r[para]),
        "para_orientation_acc": float((table.loc[para, "expected_orientation"] == given_o[para]).mean()),
        "para_rating_acc": float((table.loc[para, "expected_rating"].astype(int) == given_r[para]).mean()),
        "verbatim_acc": float(
            (
                (table.loc[verb, "expected_rating"].astype(int) == given_r[verb]).mean()
                + (table.loc[verb & checked, "expected_orientation"] == given_o[verb & checked]).mean()
            )
            / 2
        ),
    }
    out["objective"] = (out["para_orientation_kappa"] + out["para_rating_kappa"]) / 2
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the dataset folder (default: JASCO_DATA_DIR or data/raw)")
    ap.add_argument("--template", default="judge_original")
    args = ap.parse_args()
    table = build_controls(args.data_dir).astype({"expected_rating": str})
    backend = ReferenceBackend()
    fields = [read_prompt(render_judge_prompt(row, template=args.template)) for row in table.to_dict(orient="records")]
    from jasco_utils.judging.reference import needed_texts

    backend.embed([t for f in fields for t in needed_texts(f)])
    feats = [features(f, backend._vectors.__getitem__) for f in fields]
    odd = (table["id"].astype(int) % 2 == 1).to_numpy()
    fit_t, fit_f = table[odd], [f for f, o in zip(feats, odd, strict=False) if o]
    held_t, held_f = table[~odd], [f for f, o in zip(feats, odd, strict=False) if not o]
    best = None
    for values in itertools.product(*GRID.values()):
        t = Thresholds(**dict(zip(GRID, values, strict=False)))
        s = score(fit_t, fit_f, t)
        key = (round(s["objective"], 6), round(s["verbatim_acc"], 6))
        if s["verbatim_acc"] >= VERBATIM_FLOOR and (best is None or key > best[0]):
            best = (key, t, s)
    print(f"kinds: {list(CONTROL_KINDS)}; fit on {odd.sum()} odd-clip rows, held out {(~odd).sum()}")
    print("best on the odd clips:", best[1], {k: round(v, 3) for k, v in best[2].items()})
    print("  the same on the even clips:", {k: round(v, 3) for k, v in score(held_t, held_f, best[1]).items()})
    print("in use:", THRESHOLDS)
    print("  odd clips:", {k: round(v, 3) for k, v in score(fit_t, fit_f, THRESHOLDS).items()})
    print("  even clips:", {k: round(v, 3) for k, v in score(held_t, held_f, THRESHOLDS).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
