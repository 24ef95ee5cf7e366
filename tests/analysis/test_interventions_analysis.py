"""Figure 3's numbers on rows whose answers are known: Best-Mean under each condition, the paired
differences against the original clip, the clips left out, the answers and ratings that changed,
and the judges' labels held against the interventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jasco_utils.analysis.interventions import (
    ORIGINAL,
    conditions_of,
    intervention_table,
    label_check,
)
from jasco_utils.data.manifest import INSTRUCTIONS

CLIPS = [1, 2, 3, 4]


def _rows_and_outputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """ALLM A under the original clip and three conditions, rated by two identical judges.

    original: clips 1-3 answered right on instruction 1 (2, Both), clip 4 never: Best-Mean 1.5;
    its other answers are labelled Speech on clips 1-2 and Audio on clips 3-4. sound_suppressed:
    the same answers. speech_masked: every answer different and rated 0 (Audio). transcript_only:
    only clip 1 right (and answers on clips 2-4 changed).
    """
    rows, outputs = [], []
    for model, condition in [
        ("A", ORIGINAL),
        *((f"A@{c}", c) for c in ("sound_suppressed", "speech_masked", "transcript_only")),
    ]:
        for clip in CLIPS:
            for ins in range(1, 9):
                right = ins == 1 and (
                    (condition in (ORIGINAL, "sound_suppressed") and clip <= 3)
                    or (condition == "transcript_only" and clip == 1)
                )
                label = "Speech" if clip <= 2 else "Audio"
                orientation = "Both" if right else ("Audio" if condition == "speech_masked" else label)
                same = condition == "sound_suppressed" or (condition == "transcript_only" and clip == 1)
                answer = f"answer {clip}.{ins}" + ("" if condition == ORIGINAL or same else f" under {condition}")
                outputs.append({"model": model, "id": clip, "prompt": INSTRUCTIONS[ins - 1], "allm_output": answer})
                for judge in ("J1", "J2"):
                    rows.append(
                        {
                            "model": model,
                            "judge": judge,
                            "id": clip,
                            "instruction": ins,
                            "rating": 2 if right else 0,
                            "orientation": orientation,
                        }
                    )
    return pd.DataFrame(rows), pd.DataFrame(outputs)


def test_conditions_are_grouped_under_their_allm():
    rows, _ = _rows_and_outputs()
    assert conditions_of(rows["model"]) == {"A": ["sound_suppressed", "speech_masked", "transcript_only"]}
    assert conditions_of(["A", "B"]) == {}


def test_best_mean_under_each_condition_and_the_paired_differences():
    rows, outputs = _rows_and_outputs()
    table = intervention_table(rows, outputs, n_resamples=500)
    assert list(table["judge"].unique()) == ["J1", "J2", "Average"]
    t = table[table["judge"] == "Average"].set_index("condition")
    assert list(t.index) == [ORIGINAL, "sound_suppressed", "speech_masked", "transcript_only"]
    assert t.loc[ORIGINAL, "best_mean"] == 1.5 and t.loc[ORIGINAL, "n_clips"] == 4
    assert t.loc["sound_suppressed", "difference"] == 0 and t.loc["sound_suppressed", "answers_changed"] == 0
    assert t.loc["sound_suppressed", "measure"] == "sound reliance"
    assert t.loc["sound_suppressed", ["difference_ci_low", "difference_ci_high"]].tolist() == [0, 0]
    assert t.loc["speech_masked", "best_mean"] == 0 and t.loc["speech_masked", "difference"] == 1.5
    assert t.loc["speech_masked", "answers_changed"] == 1 and t.loc["speech_masked", "ratings_changed"] == 3 / 32
    assert t.loc["speech_masked", "difference_ci_low"] <= 1.5 <= t.loc["speech_masked", "difference_ci_high"]
    assert t.loc["speech_masked", "difference_ci_low"] > 0  # 3 of 4 clips lose 2 points, none gains
    assert t.loc["transcript_only", "ratio"] == pytest.approx(0.5 / 1.5)
    assert t.loc["transcript_only", "measure"] == "text sufficiency"
    assert t.loc["transcript_only", "answers_changed"] == pytest.approx(24 / 32)
    lo, hi = t.loc["transcript_only", ["ratio_ci_low", "ratio_ci_high"]]
    assert 0 <= lo <= 1 / 3 <= hi <= 1
    assert t.loc[ORIGINAL, "best_mean_ci_low"] < 1.5 < t.loc[ORIGINAL, "best_mean_ci_high"]
    assert intervention_table(rows, outputs, n_resamples=500).equals(table)


def test_failing_clips_are_left_out_of_their_condition_only():
    rows, outputs = _rows_and_outputs()
    table = intervention_table(rows, outputs, leave_out={"speech_masked": [2]}, n_resamples=200)
    t = table[table["judge"] == "J1"].set_index("condition")
    assert t.loc["speech_masked", "n_clips"] == 3 and t.loc["speech_masked", "clips_left_out"] == [2]
    assert t.loc["speech_masked", "original_best_mean"] == pytest.approx(4 / 3)
    assert t.loc["speech_masked", "difference"] == pytest.approx(4 / 3)
    assert t.loc["sound_suppressed", "n_clips"] == 4 and t.loc[ORIGINAL, "n_clips"] == 4


def test_without_outputs_the_answer_share_is_left_empty():
    rows, _ = _rows_and_outputs()
    table = intervention_table(rows, None, n_resamples=50)
    assert table["answers_changed"].isna().all()
    assert table.loc[table["condition"] == "speech_masked", "ratings_changed"].notna().all()


def test_no_conditions_no_table():
    rows, outputs = _rows_and_outputs()
    plain = rows[rows["model"] == "A"]
    assert intervention_table(plain, outputs, n_resamples=50).empty
    assert label_check(plain, outputs).empty


def test_the_judges_labels_held_against_the_interventions():
    rows, outputs = _rows_and_outputs()
    check = label_check(rows, outputs).set_index(["judge", "label"])
    speech = check.loc[("J1", "Speech")]
    assert speech["condition"] == "sound_suppressed" and speech["n_labelled"] == 14  # clips 1-2, 7 each
    assert speech["kept_answer"] == 1 and speech["kept_rating"] == 1
    assert speech["n_others"] == 18 and speech["others_kept_answer"] == 1
    audio = check.loc[("J1", "Audio")]
    assert audio["condition"] == "speech_masked" and audio["n_labelled"] == 15  # clips 3-4 less clip 3's right answer
    assert audio["kept_answer"] == 0 and audio["kept_rating"] == 1  # rated 0 before and after
    assert audio["others_kept_answer"] == 0
    assert audio["n_others"] == 17 and np.isclose(audio["others_kept_rating"], 14 / 17)  # 3 Both lost their 2
    left = label_check(rows, outputs, leave_out={"speech_masked": [3, 4]}).set_index(["judge", "label"])
    assert left.loc[("J1", "Audio"), "n_labelled"] == 0


def test_the_usable_judges_average_covers_only_them():
    rows, outputs = _rows_and_outputs()
    worse = rows["judge"].eq("J2") & rows["model"].eq("A@speech_masked")
    rows.loc[worse, "rating"] = 2  # J2 rates every masked answer 2 ...
    rows.loc[worse, "orientation"] = "Both"
    table = intervention_table(rows, outputs, usable=["J1"], n_resamples=50)
    t = table.set_index(["judge", "condition"])
    assert list(table["judge"].unique()) == ["J1", "J2", "Average", "Average (usable judges)"]
    assert t.loc[("Average (usable judges)", "speech_masked"), "best_mean"] == 0  # ... and is left out
    assert t.loc[("Average", "speech_masked"), "best_mean"] == 1
    assert t.loc[("Average (usable judges)", "speech_masked"), "ratings_changed"] == 3 / 32
    assert t.loc[("Average", "speech_masked"), "ratings_changed"] == 1  # J2's ratings all changed
