"""jasco_utils.analysis.stats against worked examples and independent computations.

Every fixture is synthetic scored rows (model, judge, id, instruction, rating, orientation):
no model runs, no files. Reference values come from published worked examples
(Krippendorff 2011), from formulas written out here (Cohen's kappa, the coincidence
matrix, best-of-k by enumeration, sign-flip enumeration), or from a plain loop.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from jasco_utils.analysis import stats
from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.analysis.metrics import AVERAGE, best_mean, dependence
from jasco_utils.analysis.scoring import scores_from_rows

ORIENTS = ["Audio", "Both", "Speech", "Neither", None]


def make_rows(spec, clips=range(1, 81), instructions=range(1, 9)) -> pd.DataFrame:
    """Scored rows from ``spec``: (model, judge) -> f(clip, instruction) -> (rating, orientation)."""
    recs = []
    for (model, judge), f in spec.items():
        for c in clips:
            for k in instructions:
                rating, orientation = f(c, k)
                recs.append({"model": model, "judge": judge, "id": c, "instruction": k, "rating": rating,
                             "orientation": orientation})
    rows = pd.DataFrame(recs)
    rows["rating"] = pd.array(rows["rating"], dtype="Int64")
    rows["orientation"] = pd.array(rows["orientation"], dtype=object)
    return rows


def random_rows(seed=0, models=("m1", "m2"), judges=("j1", "j2", "j3"), clips=range(1, 81), p_missing=0.05):
    rng = np.random.default_rng(seed)

    def f(_c, _k):
        rating = None if rng.random() < p_missing else int(rng.integers(0, 3))
        return rating, ORIENTS[rng.choice(5, p=[0.25, 0.4, 0.25, 0.05, 0.05])]

    return make_rows({(m, j): f for m in models for j in judges}, clips=clips)


# --------------------------------------------------------------------------------------
# Instruction wording
# --------------------------------------------------------------------------------------


def test_instruction_wording_is_derived_from_the_text():
    assert [k for k, w in stats.INSTRUCTION_WORDING.items() if w == stats.SPEECH_FIRST] == [2, 3, 5, 8]
    assert [k for k, w in stats.INSTRUCTION_WORDING.items() if w == stats.AUDIO_FIRST] == [1, 4, 6, 7]
    # The "both X and Y" phrase names the modalities in the same order as the questions.
    for k, text in enumerate(INSTRUCTIONS, start=1):
        first = re.search(r"both the (spoken text|audio sound) and the", text).group(1)
        assert (first == "spoken text") == (stats.INSTRUCTION_WORDING[k] == stats.SPEECH_FIRST)


# --------------------------------------------------------------------------------------
# Krippendorff's alpha: a coincidence-matrix reference, checked on Krippendorff (2011)
# --------------------------------------------------------------------------------------

#: Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x
#: 12 units, nominal values 1..5 with missing values. Published: nominal 0.743, ordinal 0.815.
K2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ]
)


def alpha_by_hand(matrix: np.ndarray, level: str, domain=None) -> float:
    """Alpha from the coincidence matrix: 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck."""
    values = sorted(set(matrix[~np.isnan(matrix)])) if domain is None else list(domain)
    pos = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in matrix.T:
        vals = unit[~np.isnan(unit)]
        m = len(vals)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            o[pos[vals[i]], pos[vals[j]]] += 1 / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        d = 1.0 - np.eye(len(values))
    else:  # ordinal: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2
        d = np.zeros_like(o)
        for c, k in itertools.product(range(len(values)), repeat=2):
            lo, hi = min(c, k), max(c, k)
            d[c, k] = (n_c[lo : hi + 1].sum() - (n_c[c] + n_c[k]) / 2) ** 2
    return 1 - (n - 1) * (o * d).sum() / (np.outer(n_c, n_c) * d).sum()


def test_reference_alpha_reproduces_krippendorff_2011():
    assert alpha_by_hand(K2011, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert alpha_by_hand(K2011, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_alphas_match_the_coincidence_matrix():
    rows = random_rows(seed=3, models=("m1",), clips=range(1, 21))
    # Make the judges agree more than chance, so alpha is not ~0.
    j1 = rows[rows["judge"] == "j1"].set_index(["id", "instruction"])
    for j in ("j2", "j3"):
        sel = (rows["judge"] == j) & (np.random.default_rng(1).random(len(rows)) < 0.6)
        key = pd.MultiIndex.from_frame(rows.loc[sel, ["id", "instruction"]])
        rows.loc[sel, "rating"] = j1.loc[key, "rating"].to_numpy()
        rows.loc[sel, "orientation"] = j1.loc[key, "orientation"].to_numpy()
    got = stats.krippendorff_alphas(rows, per_model=True, pooled=False).set_index("variable")
    ratings = stats.reliability_matrix(rows, "rating").to_numpy()
    orients = stats.reliability_matrix(rows, "orientation").to_numpy()
    assert ratings.shape == (3, 160)
    assert got.loc["rating", "alpha"] == pytest.approx(alpha_by_hand(ratings, "ordinal"), abs=1e-9)
    assert got.loc["orientation", "alpha"] == pytest.approx(alpha_by_hand(orients, "nominal"), abs=1e-9)
    assert 0.3 < got.loc["rating", "alpha"] < 0.9
    # Unreadable values are missing: units with fewer than two values are not pairable.
    assert got.loc["rating", "n_pairable"] == int(((~np.isnan(ratings)).sum(axis=0) >= 2).sum())


def test_krippendorff_perfect_agreement_and_pooling():
    rows = random_rows(seed=4, judges=("j1",), clips=range(1, 11))
    rows = pd.concat([rows, rows.assign(judge="j2")], ignore_index=True)
    got = stats.krippendorff_alphas(rows)
    assert list(got["model"]) == ["m1", "m1", "m2", "m2", stats.POOLED, stats.POOLED]
    assert np.allclose(got["alpha"], 1.0)
    assert got.loc[got["model"] == stats.POOLED, "n_units"].tolist() == [160, 160]


# --------------------------------------------------------------------------------------
# Cohen's kappa and confusion matrices
# --------------------------------------------------------------------------------------

#: Judge A's rating (rows) x judge B's (columns), counts.
TABLE = np.array([[10, 4, 1], [3, 12, 5], [2, 3, 20]])


def rows_from_table(table: np.ndarray, labels, field: str) -> pd.DataFrame:
    pairs = [(labels[i], labels[j]) for i in range(3) for j in range(3) for _ in range(table[i, j])]
    recs = []
    for n, (a, b) in enumerate(pairs):
        cid, k = n // 8 + 1, n % 8 + 1
        for judge, v in (("A", a), ("B", b)):
            rec = {"model": "m", "judge": judge, "id": cid, "instruction": k, "rating": 1, "orientation": "Both"}
            rec[field] = v
            recs.append(rec)
    return pd.DataFrame(recs)


def kappa_by_hand(table: np.ndarray, weights=None) -> float:
    p = table / table.sum()
    expected = np.outer(p.sum(axis=1), p.sum(axis=0))
    if weights is None:
        p_o, p_e = np.trace(p), np.trace(expected)
        return (p_o - p_e) / (1 - p_e)
    w = (np.subtract.outer(np.arange(3), np.arange(3))) ** 2
    return 1 - (w * p).sum() / (w * expected).sum()


def test_cohen_kappa_by_hand_ratings():
    rows = rows_from_table(TABLE, [0, 1, 2], "rating")
    got = stats.cohen_kappas(rows, pooled=False).set_index(["variable", "weights"])
    # p_o = 42/60 = 0.7; p_e = (15*15 + 20*19 + 25*26) / 3600 = 0.34861; kappa = 0.53963
    assert kappa_by_hand(TABLE) == pytest.approx((0.7 - 1255 / 3600) / (1 - 1255 / 3600))
    assert got.loc[("rating", "none"), "kappa"] == pytest.approx(kappa_by_hand(TABLE), abs=1e-12)
    assert got.loc[("rating", "quadratic"), "kappa"] == pytest.approx(kappa_by_hand(TABLE, "quadratic"), abs=1e-12)
    assert got.loc[("rating", "none"), "agreement"] == pytest.approx(0.7)
    assert got.loc[("rating", "none"), "n"] == 60


def test_cohen_kappa_by_hand_orientations_2x2():
    table = np.array([[20, 5, 0], [10, 15, 0], [0, 0, 0]])  # Audio/Both only
    rows = rows_from_table(table, ["Audio", "Both", "Speech"], "orientation")
    got = stats.cohen_kappas(rows, pooled=False)
    got = got[got["variable"] == "orientation"].iloc[0]
    p_o = 35 / 50
    p_e = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    assert got["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-12)
    assert got["weights"] == "none"


def test_confusion_matrix_counts_and_unparsed():
    rows = rows_from_table(TABLE, [0, 1, 2], "rating")
    rows.loc[(rows["judge"] == "B") & (rows["id"] == 1) & (rows["instruction"] == 1), "rating"] = None
    conf = stats.confusion_matrices(rows, pooled=False)
    table = stats.confusion_table(conf, "m", "rating", "A", "B")
    expected = TABLE.copy()
    expected[0, 0] -= 1  # the first pair was (0, 0); B's value is now unreadable
    assert table.loc[["0", "1", "2"], ["0", "1", "2"]].to_numpy().tolist() == expected.tolist()
    assert table.loc["0", stats.UNPARSED] == 1
    assert int(table.to_numpy().sum()) == 60
    orient = stats.confusion_table(conf, "m", "orientation", "A", "B")
    assert list(orient.index) == ["Audio", "Both", "Speech", "Neither", "unparsed"]
    assert orient.loc["Both", "Both"] == 60


def test_judge_offsets_on_the_same_responses():
    spec = {
        ("m", "hi"): lambda c, k: (2, "Both"),
        ("m", "mid"): lambda c, k: (1, "Both"),
        ("m", "lo"): lambda c, k: (None if k == 1 else 0, "Both"),
    }
    rows = make_rows(spec, clips=range(1, 5))
    got = stats.judge_offsets(rows, pooled=False).set_index("judge")
    # "hi" vs mean(mid, lo): where lo is readable (1 + 0) / 2, else 1 -> others' mean = (28*0.5 + 4*1)/32
    assert got.loc["hi", "offset"] == pytest.approx(2 - (28 * 0.5 + 4 * 1) / 32)
    assert got.loc["lo", "offset"] == pytest.approx(0 - 1.5)
    assert got.loc["lo", "n"] == 28
    assert got.loc["hi", "n"] == 32


# --------------------------------------------------------------------------------------
# Bootstrap over clips
# --------------------------------------------------------------------------------------


def test_bootstrap_point_equals_the_metrics():
    rows = random_rows(seed=5)
    got = stats.bootstrap_scores(rows, n_resamples=200)
    ref = scores_from_rows(rows)
    merged = got.merge(ref, on=["model", "judge"], suffixes=("", "_ref"))
    assert len(merged) == 8  # 2 models x (3 judges + Average)
    for col in stats.BOOTSTRAP_STATS:
        assert np.allclose(merged[col], merged[f"{col}_ref"])
    one = rows[(rows["model"] == "m1") & (rows["judge"] == "j2")]
    rec = got[(got["model"] == "m1") & (got["judge"] == "j2")].iloc[0]
    assert rec["best_mean"] == pytest.approx(best_mean(one))
    assert rec["both_pct"] == pytest.approx(dependence(one)["both_pct"])
    for col in stats.BOOTSTRAP_STATS:
        assert (got[f"{col}_ci_low"] <= got[col] + 1e-12).all()
        assert (got[col] <= got[f"{col}_ci_high"] + 1e-12).all()
    assert got.attrs["unit"] == "clip"


def test_bootstrap_identical_clips_collapse_to_the_point():
    spec = {("m", j): (lambda c, k: (k % 3, ["Audio", "Both", "Speech", "Both"][k % 4])) for j in ("j1", "j2")}
    rows = make_rows(spec, clips=range(1, 31))
    for method in stats.METHODS:
        got = stats.bootstrap_scores(rows, n_resamples=300, method=method)
        for col in stats.BOOTSTRAP_STATS:
            assert np.allclose(got[f"{col}_ci_low"], got[col])
            assert np.allclose(got[f"{col}_ci_high"], got[col])


def test_bootstrap_is_reproducible_and_seeded():
    rows = random_rows(seed=6, clips=range(1, 31))
    a = stats.bootstrap_scores(rows, n_resamples=300, seed=11)
    b = stats.bootstrap_scores(rows, n_resamples=300, seed=11)
    c = stats.bootstrap_scores(rows, n_resamples=300, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["best_mean_ci_low"], c["best_mean_ci_low"]) or not np.allclose(
        a["both_pct_ci_high"], c["both_pct_ci_high"])


def test_bootstrap_percentile_equals_a_plain_loop():
    rows = random_rows(seed=7, models=("m2",), clips=range(1, 13))
    n_resamples, seed = 150, 3
    got = stats.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed)
    ids = np.sort(rows["id"].unique())
    idx = np.random.default_rng(seed).integers(0, len(ids), size=(n_resamples, len(ids)))
    assert (stats.resample_indices(len(ids), n_resamples, seed) == idx).all()
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
            np.quantile(per_judge[j], [0.025, 0.975]), abs=1e-12)
        assert [rec["both_pct_ci_low"], rec["both_pct_ci_high"]] == pytest.approx(
            np.quantile(both[j], [0.025, 0.975]), abs=1e-9)
    avg = np.mean([per_judge[j] for j in per_judge], axis=0)
    rec = got[(got["model"] == "m2") & (got["judge"] == AVERAGE)].iloc[0]
    assert [rec["best_mean_ci_low"], rec["best_mean_ci_high"]] == pytest.approx(
        np.quantile(avg, [0.025, 0.975]), abs=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_agrees_with_scipy_within_monte_carlo_error(method):
    rows = random_rows(seed=8, models=("m1",), judges=("j1",))
    got = stats.bootstrap_scores(rows, n_resamples=4000, method=method).iloc[0]
    per_clip = stats.clip_scores(rows, "m1", "j1").to_numpy()
    ref = sps.bootstrap((per_clip,), np.mean, n_resamples=4000, method=method, rng=np.random.default_rng(99))
    assert got["best_mean_ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert got["best_mean_ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.03)


# --------------------------------------------------------------------------------------
# Paired comparison
# --------------------------------------------------------------------------------------


def test_paired_identical_models():
    rows = random_rows(seed=9, models=("a",))
    rows = pd.concat([rows, rows.assign(model="b")], ignore_index=True)
    res = stats.paired_comparison(rows, "a", "b")
    assert res["difference"] == 0
    assert res["ci_low"] == res["ci_high"] == 0
    assert res["p_value"] == 1.0
    assert res["n_clips"] == 80 and res["judge"] == AVERAGE and res["ties"] == 80


def test_paired_better_on_every_clip():
    rng = np.random.default_rng(10)
    worse = {c: int(rng.integers(0, 2)) for c in range(1, 81)}
    spec = {("good", "j"): lambda c, k: (2 if k == 1 else 0, "Both"),
            ("bad", "j"): lambda c, k: (worse[c] if k == 1 else 0, "Both")}
    res = stats.paired_comparison(make_rows(spec), "good", "bad", judge="j")
    assert res["p_value"] < 0.01
    assert res["wins"] == 80
    assert res["difference"] == pytest.approx(2 - np.mean(list(worse.values())))
    assert 0 < res["ci_low"] < res["difference"] < res["ci_high"] <= 2


def test_paired_p_value_equals_sign_flip_enumeration():
    rng = np.random.default_rng(11)
    score_a = {c: int(rng.integers(0, 3)) for c in range(1, 9)}
    score_b = {c: int(rng.integers(0, 3)) for c in range(1, 9)}
    spec = {("a", "j"): lambda c, k: (score_a[c] if k == 1 else 0, "Both"),
            ("b", "j"): lambda c, k: (score_b[c] if k == 1 else 0, "Both")}
    res = stats.paired_comparison(make_rows(spec, clips=range(1, 9)), "a", "b", judge="j")
    d = np.array([score_a[c] - score_b[c] for c in range(1, 9)], dtype=float)
    observed = d.mean()
    flips = np.array(list(itertools.product([1, -1], repeat=8)))  # all 256 sign flips
    null = (flips * d).mean(axis=1)
    p_exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    assert res["exact"]
    assert res["p_value"] == pytest.approx(p_exact, abs=1e-9)
    assert res["difference"] == pytest.approx(observed)


def test_paired_average_over_judges_matches_table2_difference():
    rows = random_rows(seed=12)
    res = stats.paired_comparison(rows, "m1", "m2", n_resamples=999)
    table = scores_from_rows(rows).set_index(["model", "judge"])
    expected = table.loc[("m1", AVERAGE), "best_mean"] - table.loc[("m2", AVERAGE), "best_mean"]
    assert res["difference"] == pytest.approx(expected)
    assert res["ci_low"] <= res["difference"] <= res["ci_high"]


def test_paired_names_missing_clips_and_judges():
    rows = random_rows(seed=13, clips=range(1, 11))
    drop = (rows["model"] == "m2") & rows["id"].isin([3, 7])
    with pytest.raises(ValueError, match=r"clip\(s\) \[3, 7\] are scored for 'm1' but not for 'm2'"):
        stats.paired_comparison(rows[~drop], "m1", "m2", judge="j1")
    drop = (rows["model"] == "m2") & (rows["judge"] == "j3") & (rows["id"] == 5)
    with pytest.raises(ValueError, match=r"judge 'j3' lacks clip\(s\) \[5\]"):
        stats.paired_comparison(rows[~drop], "m1", "m2")
    with pytest.raises(ValueError, match="same judges"):
        stats.paired_comparison(rows[~((rows["model"] == "m2") & (rows["judge"] == "j3"))], "m1", "m2")
    with pytest.raises(ValueError, match="model 'zz' is not in the scored rows"):
        stats.paired_comparison(rows, "m1", "zz")


def test_compare_models_holm():
    rows = random_rows(seed=14, models=("a", "b", "c"), judges=("j",), clips=range(1, 31))
    got = stats.compare_models(rows, judge="j", n_resamples=499)
    assert list(zip(got["model_a"], got["model_b"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert (got["p_holm"] >= got["p_value"]).all() and (got["p_holm"] <= 1).all()
    assert stats.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])


# --------------------------------------------------------------------------------------
# Best of k
# --------------------------------------------------------------------------------------


def test_expected_best_of_k_by_enumeration():
    rng = np.random.default_rng(15)
    for _ in range(20):
        values = rng.integers(0, 3, size=8).astype(float)
        for k in range(1, 9):
            subsets = list(itertools.combinations(values, k))
            assert stats.expected_best_of_k(values, k) == pytest.approx(np.mean([max(s) for s in subsets]))


def test_best_of_k_endpoints_and_a_hand_checked_k2():
    rows = random_rows(seed=16)
    curve = stats.best_of_k(rows).set_index(["model", "judge", "k"])
    table = scores_from_rows(rows).set_index(["model", "judge"])
    for model, judge in table.index:
        assert curve.loc[(model, judge, 8), "best_of_k"] == pytest.approx(table.loc[(model, judge), "best_mean"])
        assert curve.loc[(model, judge, 8), "best_of_k_ungated"] == pytest.approx(
            table.loc[(model, judge), "best_mean_ungated"])
    means = stats.mean_vs_best(rows).set_index(["model", "judge"])
    for model, judge in means.index:
        assert curve.loc[(model, judge, 1), "best_of_k"] == pytest.approx(means.loc[(model, judge), "mean_gated"])
        assert curve.loc[(model, judge, 1), "best_of_k_ungated"] == pytest.approx(
            means.loc[(model, judge), "mean_ungated"])
    # By hand: one clip, 4 responses gated to 0, 0, 1, 2 (the Speech one counts 0 gated).
    tiny = make_rows({("m", "j"): lambda c, k: ([0, 1, 2, 2][k - 1], ["Both", "Both", "Both", "Speech"][k - 1])},
                     clips=[1], instructions=range(1, 5))
    k2 = stats.best_of_k(tiny, ks=[2]).iloc[0]
    # pairs of gated (0, 1, 2, 0): max over the 6 pairs = 1, 2, 0, 2, 1, 2 -> 8/6
    assert k2["best_of_k"] == pytest.approx(8 / 6)
    # ungated (0, 1, 2, 2): 1, 2, 2, 2, 2, 2 -> 11/6
    assert k2["best_of_k_ungated"] == pytest.approx(11 / 6)
    curve = stats.best_of_k(rows)
    assert (curve.groupby(["model", "judge"])["best_of_k"].diff().dropna() >= -1e-12).all()


# --------------------------------------------------------------------------------------
# Prompt sensitivity
# --------------------------------------------------------------------------------------


def test_instruction_means_and_mean_vs_best():
    # Instruction k gets rating k % 3; Both on even instructions, else Speech.
    spec = {("m", j): (lambda c, k: (k % 3, "Both" if k % 2 == 0 else "Speech")) for j in ("j1", "j2")}
    rows = make_rows(spec, clips=range(1, 6))
    got = stats.instruction_means(rows)
    j1 = got[got["judge"] == "j1"].set_index("instruction")
    assert j1["mean_ungated"].tolist() == [k % 3 for k in range(1, 9)]
    assert j1["mean_gated"].tolist() == [k % 3 if k % 2 == 0 else 0 for k in range(1, 9)]
    assert j1.loc[2, "wording"] == stats.SPEECH_FIRST and j1.loc[1, "wording"] == stats.AUDIO_FIRST
    avg = got[got["judge"] == AVERAGE].set_index("instruction")
    assert avg["mean_ungated"].tolist() == j1["mean_ungated"].tolist()
    assert avg["n_responses"].tolist() == [10] * 8
    mvb = stats.mean_vs_best(rows).set_index("judge")
    # gated values per clip: 0, 2, 0, 1, 0, 0, 0, 2 -> mean 5/8, best 2
    assert mvb.loc["j1", "mean_gated"] == pytest.approx(5 / 8)
    assert mvb.loc["j1", "best_mean"] == 2
    assert mvb.loc["j1", "best_minus_mean"] == pytest.approx(2 - 5 / 8)
    assert mvb.loc["j1", "mean_ungated"] == pytest.approx(sum(k % 3 for k in range(1, 9)) / 8)


def test_orientation_shares_follow_the_wording():
    def f(c, k):
        first = stats.INSTRUCTION_WORDING[k] == stats.SPEECH_FIRST
        return 1, ("Speech" if first else "Audio") if k != 8 else "Both"

    rows = make_rows({("m", "j1"): f, ("m", "j2"): f}, clips=range(1, 21))
    shares = stats.orientation_by_wording(rows).set_index(["judge", "wording"])
    sf = shares.loc[("j1", stats.SPEECH_FIRST)]
    # speech-first instructions 2, 3, 5 -> Speech, 8 -> Both
    assert (sf["speech_pct"], sf["both_pct"], sf["audio_pct"]) == pytest.approx((75, 25, 0))
    assert shares.loc[("j1", stats.AUDIO_FIRST), "audio_pct"] == 100
    assert shares.loc[(AVERAGE, stats.AUDIO_FIRST), "n_oriented"] == 160
    test = stats.wording_test(rows, n_resamples=999)
    assert (test["permutation_p_value"] <= 0.002).all()
    assert (test["chi2_p_value"] < 1e-10).all()
    assert test["chi2"].iloc[0] == pytest.approx(sps.chi2_contingency(
        np.array([[0, 20, 60], [80, 0, 0]]), correction=False).statistic)


def test_wording_test_without_an_effect():
    # The orientation depends on the clip only: chi-square 0, nothing to detect.
    rows = make_rows({("m", "j"): lambda c, k: (2, ["Audio", "Both", "Speech"][c % 3])}, clips=range(1, 31))
    got = stats.wording_test(rows, n_resamples=499).iloc[0]
    assert got["chi2"] == pytest.approx(0)
    assert got["permutation_p_value"] == 1.0
    assert got["chi2_p_value"] == pytest.approx(1.0)


def test_wording_permutation_is_stratified_by_clip():
    # Random orientations, no effect: the permutation p-value is not small.
    rows = random_rows(seed=17, models=("m",), judges=("j",))
    got = stats.wording_test(rows, n_resamples=499).iloc[0]
    assert 0 < got["permutation_p_value"] <= 1
    assert got["n_clips"] == 80
    assert abs(got["permutation_p_value"] - got["chi2_p_value"]) < 0.15


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
    rows = make_rows(spec, clips=range(1, 5))
    success = stats.clip_success(rows).set_index(["judge", "id", "model"])
    assert success.loc[("j1", 4, "b"), "fully_solved"]
    assert not success.loc[("j1", 2, "b"), "solved"]
    assert success.loc[(AVERAGE, 2, "a"), "best"] == 0.5
    diff = stats.clip_difficulty(rows).set_index(["judge", "id"])
    assert diff.loc[("j1", 1), "solved_by"] == "a, b"
    assert diff.loc[("j1", 1), "fully_solved_by"] == "a"
    assert diff.loc[("j1", 2), "n_solved"] == 1
    assert diff.loc[("j2", 3), "solved_by"] == "b"
    unsolved = stats.unsolved_clips(rows)
    assert unsolved[["judge", "id"]].values.tolist() == [["j1", 3], ["j2", 2], [AVERAGE, 2], [AVERAGE, 3]]
    never_full = stats.unsolved_clips(rows, threshold=2)
    assert never_full[never_full["judge"] == "j2"]["id"].tolist() == [2, 3, 4]
    assert never_full[never_full["judge"] == AVERAGE]["id"].tolist() == [2, 3, 4]


# --------------------------------------------------------------------------------------
# Input checks and plots
# --------------------------------------------------------------------------------------


def test_bad_input_is_named():
    rows = random_rows(seed=18, clips=range(1, 3))
    with pytest.raises(ValueError, match=r"lack column\(s\) \['orientation'\]"):
        stats.bootstrap_scores(rows.drop(columns="orientation"))
    with pytest.raises(ValueError, match="repeat a"):
        stats.cohen_kappas(pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(ValueError, match="method must be one of"):
        stats.bootstrap_scores(rows, method="studentized")


def test_plots_render(tmp_path):
    rows = random_rows(seed=19, clips=range(1, 21))
    figures = {
        "table2_ci": stats.plot_table2_with_ci(stats.bootstrap_scores(rows, n_resamples=100)),
        "kappa": stats.plot_agreement_heatmap(stats.cohen_kappas(rows)),
        "prompts": stats.plot_prompt_sensitivity(stats.instruction_means(rows)),
        "best_of_k": stats.plot_best_of_k(stats.best_of_k(rows)),
    }
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=60)
        assert path.stat().st_size > 1000, name
