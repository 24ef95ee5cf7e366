"""jasco_utils.analysis.bootstrap against the metrics, plain loops, scipy and enumeration.

Every fixture is synthetic scored rows: no model runs, no files.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers.judged_tables import random_scored_rows, scored_rows
from scipy import stats as sps

from jasco_utils.analysis import agreement, bootstrap, comparisons
from jasco_utils.analysis.averages import AVERAGE
from jasco_utils.analysis.metrics import best_mean, dependence
from jasco_utils.analysis.scoring import scores_from_rows

# --------------------------------------------------------------------------------------
# Bootstrap over clips
# --------------------------------------------------------------------------------------


def test_bootstrap_point_equals_the_metrics():
    rows = random_scored_rows(seed=5)
    got = bootstrap.bootstrap_scores(rows, n_resamples=200)
    ref = scores_from_rows(rows)
    merged = got.merge(ref, on=["model", "judge"], suffixes=("", "_ref"))
    assert len(merged) == 8  # 2 models x (3 judges + Average)
    for col in bootstrap.BOOTSTRAP_STATS:
        assert np.allclose(merged[col], merged[f"{col}_ref"])
    one = rows[(rows["model"] == "m1") & (rows["judge"] == "j2")]
    rec = got[(got["model"] == "m1") & (got["judge"] == "j2")].iloc[0]
    assert rec["best_mean"] == pytest.approx(best_mean(one))
    assert rec["both_pct"] == pytest.approx(dependence(one)["both_pct"])
    for col in bootstrap.BOOTSTRAP_STATS:
        assert (got[f"{col}_ci_low"] <= got[col] + 1e-12).all()
        assert (got[col] <= got[f"{col}_ci_high"] + 1e-12).all()
    assert got.attrs["unit"] == "clip"


def test_bootstrap_identical_clips_collapse_to_the_point():
    spec = {("m", j): (lambda c, k: (k % 3, ["Audio", "Both", "Speech", "Both"][k % 4])) for j in ("j1", "j2")}
    rows = scored_rows(spec, clips=range(1, 31))
    for method in bootstrap.METHODS:
        got = bootstrap.bootstrap_scores(rows, n_resamples=300, method=method)
        for col in bootstrap.BOOTSTRAP_STATS:
            assert np.allclose(got[f"{col}_ci_low"], got[col])
            assert np.allclose(got[f"{col}_ci_high"], got[col])


def test_bootstrap_is_reproducible_and_seeded():
    rows = random_scored_rows(seed=6, clips=range(1, 31))
    a = bootstrap.bootstrap_scores(rows, n_resamples=300, seed=11)
    b = bootstrap.bootstrap_scores(rows, n_resamples=300, seed=11)
    c = bootstrap.bootstrap_scores(rows, n_resamples=300, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["best_mean_ci_low"], c["best_mean_ci_low"]) or not np.allclose(
        a["both_pct_ci_high"], c["both_pct_ci_high"]
    )


def test_bootstrap_percentile_equals_a_plain_loop():
    rows = random_scored_rows(seed=7, models=("m2",), clips=range(1, 13))
    n_resamples, seed = 150, 3
    got = bootstrap.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed)
    ids = np.sort(rows["id"].unique())
    idx = np.random.default_rng(seed).integers(0, len(ids), size=(n_resamples, len(ids)))
    assert (bootstrap.resample_indices(len(ids), n_resamples, seed) == idx).all()
    model = rows[rows["model"] == "m2"]
    by_clip = {c: g for c, g in model.groupby("id")}
    per_judge = {j: [] for j in ("j1", "j2", "j3")}
    both = {j: [] for j in per_judge}
    for draw in idx:
        sample = pd.concat([by_clip[ids[i]].assign(id=n) for n, i in enumerate(draw)])
        for j, values in per_judge.items():
            s = sample[sample["judge"] == j]
            values.append(best_mean(s))
            both[j].append(dependence(s)["both_pct"])
    for j in ("j1", "j2", "j3"):
        rec = got[(got["model"] == "m2") & (got["judge"] == j)].iloc[0]
        assert [rec["best_mean_ci_low"], rec["best_mean_ci_high"]] == pytest.approx(
            np.quantile(per_judge[j], [0.025, 0.975]), abs=1e-12
        )
        assert [rec["both_pct_ci_low"], rec["both_pct_ci_high"]] == pytest.approx(
            np.quantile(both[j], [0.025, 0.975]), abs=1e-9
        )
    avg = np.mean([per_judge[j] for j in per_judge], axis=0)
    rec = got[(got["model"] == "m2") & (got["judge"] == AVERAGE)].iloc[0]
    assert [rec["best_mean_ci_low"], rec["best_mean_ci_high"]] == pytest.approx(
        np.quantile(avg, [0.025, 0.975]), abs=1e-12
    )


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_agrees_with_scipy_within_monte_carlo_error(method):
    rows = random_scored_rows(seed=8, models=("m1",), judges=("j1",))
    got = bootstrap.bootstrap_scores(rows, n_resamples=4000, method=method).iloc[0]
    per_clip = comparisons.clip_scores(rows, "m1", "j1").to_numpy()
    ref = sps.bootstrap((per_clip,), np.mean, n_resamples=4000, method=method, rng=np.random.default_rng(99))
    assert got["best_mean_ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert got["best_mean_ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.03)


# --------------------------------------------------------------------------------------
# Paired comparison
# --------------------------------------------------------------------------------------


def test_paired_identical_models():
    rows = random_scored_rows(seed=9, models=("a",))
    rows = pd.concat([rows, rows.assign(model="b")], ignore_index=True)
    res = comparisons.paired_comparison(rows, "a", "b")
    assert res["difference"] == 0
    assert res["ci_low"] == res["ci_high"] == 0
    assert res["p_value"] == 1.0
    assert res["n_clips"] == 80 and res["judge"] == AVERAGE and res["ties"] == 80


def test_paired_better_on_every_clip():
    rng = np.random.default_rng(10)
    worse = {c: int(rng.integers(0, 2)) for c in range(1, 81)}
    spec = {
        ("good", "j"): lambda c, k: (2 if k == 1 else 0, "Both"),
        ("bad", "j"): lambda c, k: (worse[c] if k == 1 else 0, "Both"),
    }
    res = comparisons.paired_comparison(scored_rows(spec), "good", "bad", judge="j")
    assert res["p_value"] < 0.01
    assert res["wins"] == 80
    assert res["difference"] == pytest.approx(2 - np.mean(list(worse.values())))
    assert 0 < res["ci_low"] < res["difference"] < res["ci_high"] <= 2


def test_paired_p_value_equals_sign_flip_enumeration():
    rng = np.random.default_rng(11)
    score_a = {c: int(rng.integers(0, 3)) for c in range(1, 9)}
    score_b = {c: int(rng.integers(0, 3)) for c in range(1, 9)}
    spec = {
        ("a", "j"): lambda c, k: (score_a[c] if k == 1 else 0, "Both"),
        ("b", "j"): lambda c, k: (score_b[c] if k == 1 else 0, "Both"),
    }
    res = comparisons.paired_comparison(scored_rows(spec, clips=range(1, 9)), "a", "b", judge="j")
    d = np.array([score_a[c] - score_b[c] for c in range(1, 9)], dtype=float)
    observed = d.mean()
    flips = np.array(list(itertools.product([1, -1], repeat=8)))  # all 256 sign flips
    null = (flips * d).mean(axis=1)
    p_exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    assert res["exact"]
    assert res["p_value"] == pytest.approx(p_exact, abs=1e-9)
    assert res["difference"] == pytest.approx(observed)


def test_paired_average_over_judges_matches_table2_difference():
    rows = random_scored_rows(seed=12)
    res = comparisons.paired_comparison(rows, "m1", "m2", n_resamples=999)
    table = scores_from_rows(rows).set_index(["model", "judge"])
    expected = table.loc[("m1", AVERAGE), "best_mean"] - table.loc[("m2", AVERAGE), "best_mean"]
    assert res["difference"] == pytest.approx(expected)
    assert res["ci_low"] <= res["difference"] <= res["ci_high"]


def test_paired_names_missing_clips_and_judges():
    rows = random_scored_rows(seed=13, clips=range(1, 11))
    drop = (rows["model"] == "m2") & rows["id"].isin([3, 7])
    with pytest.raises(ValueError, match=r"clip\(s\) \[3, 7\] are scored for 'm1' but not for 'm2'"):
        comparisons.paired_comparison(rows[~drop], "m1", "m2", judge="j1")
    drop = (rows["model"] == "m2") & (rows["judge"] == "j3") & (rows["id"] == 5)
    with pytest.raises(ValueError, match=r"judge 'j3' lacks clip\(s\) \[5\]"):
        comparisons.paired_comparison(rows[~drop], "m1", "m2")
    with pytest.raises(ValueError, match="same judges"):
        comparisons.paired_comparison(rows[~((rows["model"] == "m2") & (rows["judge"] == "j3"))], "m1", "m2")
    with pytest.raises(ValueError, match="model 'zz' is not in the scored rows"):
        comparisons.paired_comparison(rows, "m1", "zz")


def test_compare_models_holm():
    rows = random_scored_rows(seed=14, models=("a", "b", "c"), judges=("j",), clips=range(1, 31))
    got = comparisons.compare_models(rows, judge="j", n_resamples=499)
    assert list(zip(got["model_a"], got["model_b"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert (got["p_holm"] >= got["p_value"]).all() and (got["p_holm"] <= 1).all()
    assert comparisons.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def test_bad_input_is_named():
    rows = random_scored_rows(seed=18, clips=range(1, 3))
    with pytest.raises(ValueError, match=r"lack column\(s\) \['orientation'\]"):
        bootstrap.bootstrap_scores(rows.drop(columns="orientation"))
    with pytest.raises(ValueError, match="repeat a"):
        agreement.cohen_kappas(pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(ValueError, match="method must be one of"):
        bootstrap.bootstrap_scores(rows, method="studentized")
