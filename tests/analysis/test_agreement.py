"""jasco_utils.analysis.agreement against worked examples and independent computations.

Every fixture is synthetic scored rows: no model runs, no files. Reference values come from
the published worked example of Krippendorff (2011) and from formulas written out here (the
coincidence matrix, Cohen's kappa).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers.judged_tables import random_scored_rows, scored_rows

from jasco_utils.analysis import agreement

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
    rows = random_scored_rows(seed=3, models=("m1",), clips=range(1, 21))
    # Make the judges agree more than chance, so alpha is not ~0.
    j1 = rows[rows["judge"] == "j1"].set_index(["id", "instruction"])
    for j in ("j2", "j3"):
        sel = (rows["judge"] == j) & (np.random.default_rng(1).random(len(rows)) < 0.6)
        key = pd.MultiIndex.from_frame(rows.loc[sel, ["id", "instruction"]])
        rows.loc[sel, "rating"] = j1.loc[key, "rating"].to_numpy()
        rows.loc[sel, "orientation"] = j1.loc[key, "orientation"].to_numpy()
    got = agreement.krippendorff_alphas(rows, per_model=True, pooled=False).set_index("variable")
    ratings = agreement.reliability_matrix(rows, "rating").to_numpy()
    orients = agreement.reliability_matrix(rows, "orientation").to_numpy()
    assert ratings.shape == (3, 160)
    assert got.loc["rating", "alpha"] == pytest.approx(alpha_by_hand(ratings, "ordinal"), abs=1e-9)
    assert got.loc["orientation", "alpha"] == pytest.approx(alpha_by_hand(orients, "nominal"), abs=1e-9)
    assert 0.3 < got.loc["rating", "alpha"] < 0.9
    # Unreadable values are missing: units with fewer than two values are not pairable.
    assert got.loc["rating", "n_pairable"] == int(((~np.isnan(ratings)).sum(axis=0) >= 2).sum())


def test_krippendorff_perfect_agreement_and_pooling():
    rows = random_scored_rows(seed=4, judges=("j1",), clips=range(1, 11))
    rows = pd.concat([rows, rows.assign(judge="j2")], ignore_index=True)
    got = agreement.krippendorff_alphas(rows)
    assert list(got["model"]) == ["m1", "m1", "m2", "m2", agreement.POOLED, agreement.POOLED]
    assert np.allclose(got["alpha"], 1.0)
    assert got.loc[got["model"] == agreement.POOLED, "n_units"].tolist() == [160, 160]


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
    got = agreement.cohen_kappas(rows, pooled=False).set_index(["variable", "weights"])
    # p_o = 42/60 = 0.7; p_e = (15*15 + 20*19 + 25*26) / 3600 = 0.34861; kappa = 0.53963
    assert kappa_by_hand(TABLE) == pytest.approx((0.7 - 1255 / 3600) / (1 - 1255 / 3600))
    assert got.loc[("rating", "none"), "kappa"] == pytest.approx(kappa_by_hand(TABLE), abs=1e-12)
    assert got.loc[("rating", "quadratic"), "kappa"] == pytest.approx(kappa_by_hand(TABLE, "quadratic"), abs=1e-12)
    assert got.loc[("rating", "none"), "agreement"] == pytest.approx(0.7)
    assert got.loc[("rating", "none"), "n"] == 60


def test_cohen_kappa_by_hand_orientations_2x2():
    table = np.array([[20, 5, 0], [10, 15, 0], [0, 0, 0]])  # Audio/Both only
    rows = rows_from_table(table, ["Audio", "Both", "Speech"], "orientation")
    got = agreement.cohen_kappas(rows, pooled=False)
    got = got[got["variable"] == "orientation"].iloc[0]
    p_o = 35 / 50
    p_e = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    assert got["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-12)
    assert got["weights"] == "none"


def test_confusion_matrix_counts_and_unparsed():
    rows = rows_from_table(TABLE, [0, 1, 2], "rating")
    rows.loc[(rows["judge"] == "B") & (rows["id"] == 1) & (rows["instruction"] == 1), "rating"] = None
    conf = agreement.confusion_matrices(rows, pooled=False)
    table = agreement.confusion_table(conf, "m", "rating", "A", "B")
    expected = TABLE.copy()
    expected[0, 0] -= 1  # the first pair was (0, 0); B's value is now unreadable
    assert table.loc[["0", "1", "2"], ["0", "1", "2"]].to_numpy().tolist() == expected.tolist()
    assert table.loc["0", agreement.UNPARSED] == 1
    assert int(table.to_numpy().sum()) == 60
    orient = agreement.confusion_table(conf, "m", "orientation", "A", "B")
    assert list(orient.index) == ["Audio", "Both", "Speech", "Neither", "unparsed"]
    assert orient.loc["Both", "Both"] == 60


def test_judge_offsets_on_the_same_responses():
    spec = {
        ("m", "hi"): lambda c, k: (2, "Both"),
        ("m", "mid"): lambda c, k: (1, "Both"),
        ("m", "lo"): lambda c, k: (None if k == 1 else 0, "Both"),
    }
    rows = scored_rows(spec, clips=range(1, 5))
    got = agreement.judge_offsets(rows, pooled=False).set_index("judge")
    # "hi" vs mean(mid, lo): where lo is readable (1 + 0) / 2, else 1 -> others' mean = (28*0.5 + 4*1)/32
    assert got.loc["hi", "offset"] == pytest.approx(2 - (28 * 0.5 + 4 * 1) / 32)
    assert got.loc["lo", "offset"] == pytest.approx(0 - 1.5)
    assert got.loc["lo", "n"] == 28
    assert got.loc["hi", "n"] == 32
