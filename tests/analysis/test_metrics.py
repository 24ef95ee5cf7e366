"""jasco_utils.analysis.metrics: the gating rule, the per-clip table, and the metric registry
driving every consumer (scores, Average, `jasco score`'s table, the bootstrap, `--ci`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.judged_tables import random_scored_rows, scored_rows

from jasco_utils.analysis import bootstrap
from jasco_utils.analysis.averages import AVERAGE, average_over_judges
from jasco_utils.analysis.metrics import (
    METRICS,
    SCORE_KEYS,
    ClipValues,
    Metric,
    best_mean,
    clip_table,
    dependence,
    evaluate,
    gate,
    score_rows,
)
from jasco_utils.analysis.scoring import format_scores, score_records


def test_score_keys_are_stable():
    assert SCORE_KEYS == (
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
        "n_truncated",
    )


def test_gate_counts_a_rating_only_when_both():
    rating = pd.Series([2, 2, 1, None, 0, 2], dtype="Int64")
    orientation = pd.Series(["Both", "Audio", "Both", "Both", "Both", None], dtype=object)
    assert gate(rating, orientation).tolist() == [2.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_clip_table_by_hand():
    answers = [
        (2, "Speech"),
        (1, "Both"),
        (None, "Both"),
        (0, "Neither"),
        (2, None),
        (1, "Audio"),
        (0, "Both"),
        (1, "Both"),
    ]
    rows = scored_rows({("m", "j"): lambda c, k: answers[k - 1] if c == 1 else (2, "Both")}, clips=[1, 2])
    clips = clip_table(rows).set_index("id")
    one = clips.loc[1]
    assert (one["best_gated"], one["best_ungated"]) == (1, 2)
    assert (one["n_audio"], one["n_both"], one["n_speech"], one["n_oriented"], one["n_neither"]) == (1, 4, 1, 6, 1)
    assert (one["n_unparsed_rating"], one["n_unparsed_orientation"], one["n_unparsed"]) == (1, 1, 2)
    assert (one["n_responses"], one["n_clips"]) == (8, 1)
    assert clips.loc[2, "best_gated"] == 2


def test_weights_one_give_the_point_and_leave_one_out_the_jackknife():
    rows = random_scored_rows(seed=1, models=("m",), judges=("j1", "j2"), clips=range(1, 11))
    clips = clip_table(rows)
    values = ClipValues.of(clips, unit="judge")
    names = list(METRICS)
    point = evaluate(values, np.ones((1, 10)), names)[0]
    jack = evaluate(values, 1.0 - np.eye(10), names)
    for j, judge in enumerate(values.units):
        one = rows[rows["judge"] == judge]
        assert point[j, names.index("best_mean")] == pytest.approx(best_mean(one), abs=1e-12)
        assert point[j, names.index("both_pct")] == pytest.approx(dependence(one)["both_pct"], abs=1e-12)
        for i, clip in enumerate(values.ids):
            rest = one[one["id"] != clip]
            assert jack[i, j, names.index("best_mean_ungated")] == pytest.approx(best_mean(rest, gated=False))
            assert jack[i, j, names.index("audio_pct")] == pytest.approx(dependence(rest)["audio_pct"])
    # Bootstrap weights: a clip drawn twice counts twice.
    w = np.zeros((1, 10))
    w[0, [0, 3]] = [2, 1]
    twice = pd.concat([rows[rows["id"] == 1], rows[rows["id"] == 1].assign(id=99), rows[rows["id"] == 4]])
    got = evaluate(values, w, ["best_mean"])[0, :, 0]
    assert got.tolist() == pytest.approx([best_mean(twice[twice["judge"] == j]) for j in values.units])


def test_undefined_shares_are_nan():
    rows = scored_rows({("m", "j"): lambda c, k: (2, "Neither")}, clips=[1, 2])
    [rec] = score_rows(rows).to_dict(orient="records")
    assert np.isnan(rec["both_pct"]) and rec["best_mean"] == 0 and rec["best_mean_ungated"] == 2
    assert all(np.isnan(v) for v in dependence(rows.iloc[0:0]).values())


def test_a_registered_metric_reaches_every_consumer(monkeypatch):
    """Adding a metric is one registered function: scores, Average, table, bootstrap, --ci."""

    def fully_correct(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
        """Share of clips whose best gated rating is 2 (a per-clip indicator, so a mean)."""
        best = clips.arrays["best_gated"]
        return weights @ (best == 2).T.astype(float) / clips.total("n_clips", weights)

    monkeypatch.setitem(
        METRICS,
        "fully_correct",
        Metric("fully_correct", fully_correct, "full", 3, "clips fully correct", (0, 1), note="full: best is 2"),
    )
    rows = random_scored_rows(seed=2, models=("m",), judges=("j1", "j2"), clips=range(1, 21))
    scores = score_rows(rows)
    assert list(scores.columns[:8]) == [
        "model",
        "judge",
        "best_mean",
        "best_mean_ungated",
        "audio_pct",
        "both_pct",
        "speech_pct",
        "fully_correct",
    ]
    for judge, group in rows.groupby("judge"):
        per_clip = group.assign(g=gate(group["rating"], group["orientation"])).groupby("id")["g"].max()
        assert scores.set_index("judge").loc[judge, "fully_correct"] == pytest.approx((per_clip == 2).mean())
    avg = average_over_judges(scores)
    assert avg["judge"].tolist() == [AVERAGE]
    assert avg["fully_correct"].iloc[0] == pytest.approx(scores["fully_correct"].mean())
    records = score_records(rows)
    assert "fully_correct" in records[0]
    table = format_scores(records)
    assert "full" in table.splitlines()[0] and "full: best is 2" in table
    ci = bootstrap.bootstrap_scores(rows, n_resamples=50)
    assert {"fully_correct", "fully_correct_ci_low", "fully_correct_ci_high"} <= set(ci.columns)
    assert ci["fully_correct"].tolist() == pytest.approx([*scores["fully_correct"], avg["fully_correct"].iloc[0]])
    assert "fully_correct_ci_high" in bootstrap.with_intervals(records, ci)[0]
    assert "fully_correct" in bootstrap.format_intervals(ci).splitlines()[1]
