"""jasco_utils.analysis.sensitivity: wording labels, best of k by enumeration, prompt effects.

Every fixture is synthetic scored rows: no model runs, no files.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from helpers.judged_tables import random_scored_rows, scored_rows
from scipy import stats as sps

from jasco_utils.analysis import sensitivity
from jasco_utils.analysis.averages import AVERAGE
from jasco_utils.analysis.scoring import scores_from_rows
from jasco_utils.data.manifest import INSTRUCTIONS

# --------------------------------------------------------------------------------------
# Instruction wording
# --------------------------------------------------------------------------------------


def test_instruction_wording_is_derived_from_the_text():
    assert [k for k, w in sensitivity.INSTRUCTION_WORDING.items() if w == sensitivity.SPEECH_FIRST] == [2, 3, 5, 8]
    assert [k for k, w in sensitivity.INSTRUCTION_WORDING.items() if w == sensitivity.AUDIO_FIRST] == [1, 4, 6, 7]
    # The "both X and Y" phrase names the modalities in the same order as the questions.
    for k, text in enumerate(INSTRUCTIONS, start=1):
        first = re.search(r"both the (spoken text|audio sound) and the", text).group(1)
        assert (first == "spoken text") == (sensitivity.INSTRUCTION_WORDING[k] == sensitivity.SPEECH_FIRST)


# --------------------------------------------------------------------------------------
# Best of k
# --------------------------------------------------------------------------------------


def test_expected_best_of_k_by_enumeration():
    rng = np.random.default_rng(15)
    for _ in range(20):
        values = rng.integers(0, 3, size=8).astype(float)
        for k in range(1, 9):
            subsets = list(itertools.combinations(values, k))
            assert sensitivity.expected_best_of_k(values, k) == pytest.approx(np.mean([max(s) for s in subsets]))


def test_best_of_k_endpoints_and_a_hand_checked_k2():
    rows = random_scored_rows(seed=16)
    curve = sensitivity.best_of_k(rows).set_index(["model", "judge", "k"])
    table = scores_from_rows(rows).set_index(["model", "judge"])
    for model, judge in table.index:
        assert curve.loc[(model, judge, 8), "best_of_k"] == pytest.approx(table.loc[(model, judge), "best_mean"])
        assert curve.loc[(model, judge, 8), "best_of_k_ungated"] == pytest.approx(
            table.loc[(model, judge), "best_mean_ungated"]
        )
    means = sensitivity.mean_vs_best(rows).set_index(["model", "judge"])
    for model, judge in means.index:
        assert curve.loc[(model, judge, 1), "best_of_k"] == pytest.approx(means.loc[(model, judge), "mean_gated"])
        assert curve.loc[(model, judge, 1), "best_of_k_ungated"] == pytest.approx(
            means.loc[(model, judge), "mean_ungated"]
        )
    # By hand: one clip, 4 responses gated to 0, 0, 1, 2 (the Speech one counts 0 gated).
    tiny = scored_rows(
        {("m", "j"): lambda c, k: ([0, 1, 2, 2][k - 1], ["Both", "Both", "Both", "Speech"][k - 1])},
        clips=[1],
        instructions=range(1, 5),
    )
    k2 = sensitivity.best_of_k(tiny, ks=[2]).iloc[0]
    # pairs of gated (0, 1, 2, 0): max over the 6 pairs = 1, 2, 0, 2, 1, 2 -> 8/6
    assert k2["best_of_k"] == pytest.approx(8 / 6)
    # ungated (0, 1, 2, 2): 1, 2, 2, 2, 2, 2 -> 11/6
    assert k2["best_of_k_ungated"] == pytest.approx(11 / 6)
    curve = sensitivity.best_of_k(rows)
    assert (curve.groupby(["model", "judge"])["best_of_k"].diff().dropna() >= -1e-12).all()


# --------------------------------------------------------------------------------------
# Prompt sensitivity
# --------------------------------------------------------------------------------------


def test_instruction_means_and_mean_vs_best():
    # Instruction k gets rating k % 3; Both on even instructions, else Speech.
    spec = {("m", j): (lambda c, k: (k % 3, "Both" if k % 2 == 0 else "Speech")) for j in ("j1", "j2")}
    rows = scored_rows(spec, clips=range(1, 6))
    got = sensitivity.instruction_means(rows)
    j1 = got[got["judge"] == "j1"].set_index("instruction")
    assert j1["mean_ungated"].tolist() == [k % 3 for k in range(1, 9)]
    assert j1["mean_gated"].tolist() == [k % 3 if k % 2 == 0 else 0 for k in range(1, 9)]
    assert j1.loc[2, "wording"] == sensitivity.SPEECH_FIRST and j1.loc[1, "wording"] == sensitivity.AUDIO_FIRST
    avg = got[got["judge"] == AVERAGE].set_index("instruction")
    assert avg["mean_ungated"].tolist() == j1["mean_ungated"].tolist()
    assert avg["n_responses"].tolist() == [10] * 8
    mvb = sensitivity.mean_vs_best(rows).set_index("judge")
    # gated values per clip: 0, 2, 0, 1, 0, 0, 0, 2 -> mean 5/8, best 2
    assert mvb.loc["j1", "mean_gated"] == pytest.approx(5 / 8)
    assert mvb.loc["j1", "best_mean"] == 2
    assert mvb.loc["j1", "best_minus_mean"] == pytest.approx(2 - 5 / 8)
    assert mvb.loc["j1", "mean_ungated"] == pytest.approx(sum(k % 3 for k in range(1, 9)) / 8)


def test_orientation_shares_follow_the_wording():
    def f(c, k):
        first = sensitivity.INSTRUCTION_WORDING[k] == sensitivity.SPEECH_FIRST
        return 1, ("Speech" if first else "Audio") if k != 8 else "Both"

    rows = scored_rows({("m", "j1"): f, ("m", "j2"): f}, clips=range(1, 21))
    shares = sensitivity.orientation_by_wording(rows).set_index(["judge", "wording"])
    sf = shares.loc[("j1", sensitivity.SPEECH_FIRST)]
    # speech-first instructions 2, 3, 5 -> Speech, 8 -> Both
    assert (sf["speech_pct"], sf["both_pct"], sf["audio_pct"]) == pytest.approx((75, 25, 0))
    assert shares.loc[("j1", sensitivity.AUDIO_FIRST), "audio_pct"] == 100
    assert shares.loc[(AVERAGE, sensitivity.AUDIO_FIRST), "n_oriented"] == 160
    test = sensitivity.wording_test(rows, n_resamples=999)
    assert (test["permutation_p_value"] <= 0.002).all()
    assert (test["chi2_p_value"] < 1e-10).all()
    assert test["chi2"].iloc[0] == pytest.approx(
        sps.chi2_contingency(np.array([[0, 20, 60], [80, 0, 0]]), correction=False).statistic
    )


def test_wording_test_without_an_effect():
    # The orientation depends on the clip only: chi-square 0, nothing to detect.
    rows = scored_rows({("m", "j"): lambda c, k: (2, ["Audio", "Both", "Speech"][c % 3])}, clips=range(1, 31))
    got = sensitivity.wording_test(rows, n_resamples=499).iloc[0]
    assert got["chi2"] == pytest.approx(0)
    assert got["permutation_p_value"] == 1.0
    assert got["chi2_p_value"] == pytest.approx(1.0)


def test_wording_permutation_is_stratified_by_clip():
    # Random orientations, no effect: the permutation p-value is not small.
    rows = random_scored_rows(seed=17, models=("m",), judges=("j",))
    got = sensitivity.wording_test(rows, n_resamples=499).iloc[0]
    assert 0 < got["permutation_p_value"] <= 1
    assert got["n_clips"] == 80
    assert abs(got["permutation_p_value"] - got["chi2_p_value"]) < 0.15
