"""jasco_utils.analysis.difficulty on hand-made per-clip bests."""

from __future__ import annotations

from helpers.judged_tables import scored_rows

from jasco_utils.analysis import difficulty
from jasco_utils.analysis.averages import AVERAGE

# --------------------------------------------------------------------------------------
# Clip difficulty
# --------------------------------------------------------------------------------------


def test_clip_success_and_unsolved_clips():
    best = {  # (model, judge) -> clip -> best gated rating
        ("a", "j1"): {1: 2, 2: 1, 3: 0, 4: 0},
        ("b", "j1"): {1: 1, 2: 0, 3: 0, 4: 2},
        ("a", "j2"): {1: 2, 2: 0, 3: 0, 4: 1},
        ("b", "j2"): {1: 2, 2: 0, 3: 1, 4: 1},
    }
    spec = {key: (lambda c, k, v=v: (v[c] if k == 3 else 0, "Both")) for key, v in best.items()}
    rows = scored_rows(spec, clips=range(1, 5))
    success = difficulty.clip_success(rows).set_index(["judge", "id", "model"])
    assert success.loc[("j1", 4, "b"), "fully_solved"]
    assert not success.loc[("j1", 2, "b"), "solved"]
    assert success.loc[(AVERAGE, 2, "a"), "best"] == 0.5
    diff = difficulty.clip_difficulty(rows).set_index(["judge", "id"])
    assert diff.loc[("j1", 1), "solved_by"] == "a, b"
    assert diff.loc[("j1", 1), "fully_solved_by"] == "a"
    assert diff.loc[("j1", 2), "n_solved"] == 1
    assert diff.loc[("j2", 3), "solved_by"] == "b"
    unsolved = difficulty.unsolved_clips(rows)
    assert unsolved[["judge", "id"]].values.tolist() == [["j1", 3], ["j2", 2], [AVERAGE, 2], [AVERAGE, 3]]
    never_full = difficulty.unsolved_clips(rows, threshold=2)
    assert never_full[never_full["judge"] == "j2"]["id"].tolist() == [2, 3, 4]
    assert never_full[never_full["judge"] == AVERAGE]["id"].tolist() == [2, 3, 4]
