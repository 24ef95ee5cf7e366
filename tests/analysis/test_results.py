"""The analysis stage functions and the explorer over a run folder of generated judged tables."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file

from jasco_utils.analysis.metrics import gate
from jasco_utils.analysis.scoring import scores_from_rows
from jasco_utils.judging.tables import read_judged_files
from jasco_utils.report import explorer
from jasco_utils.report.results import run_statistics


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "judged").mkdir(parents=True)
    for seed, (model, judge) in enumerate([(m, j) for m in ("A", "B") for j in ("j1", "j2")]):
        ids, outputs = make_rows(seed, clips=range(1, 11))
        project_layout_file(run / "judged" / f"{model}__{judge}.csv", ids, outputs, model=model, judge=judge)
    return run


def test_run_statistics_writes_the_tables_and_figures(run_dir, tmp_path):
    fig = tmp_path / "fig"
    out = run_statistics(run_dir, figures_dir=fig, n_resamples=50)
    names = sorted(p.name for p in out["paths"])
    assert names == sorted(
        [
            "table2_ci.csv",
            "table2_ci.png",
            "agreement.csv",
            "agreement.png",
            "comparisons.csv",
            "prompt_sensitivity.png",
            "best_of_k.png",
            "unsolved_clips.csv",
        ]
    )
    assert all((fig / n).stat().st_size > 0 for n in names)
    scores = scores_from_rows(read_judged_files(sorted((run_dir / "judged").glob("*.csv"))))
    ci = pd.read_csv(fig / "table2_ci.csv").merge(scores, on=["model", "judge"], suffixes=("", "_scored"))
    assert len(ci) == 6  # 2 ALLMs x (2 judges + Average)
    assert ci["best_mean"].tolist() == pytest.approx(ci["best_mean_scored"].tolist(), abs=1e-12)


def test_explorer_gates_as_best_mean(run_dir):
    df = explorer.load_run(run_dir)
    assert df["gated"].tolist() == gate(df["rating"], df["orientation"]).astype(int).tolist()
    best = explorer.clip_summary(df)
    scores = scores_from_rows(df).set_index(["model", "judge"])
    for (model, judge), column in best.items():
        assert column.mean() == pytest.approx(scores.loc[(model, judge), "best_mean"])
    assert set(explorer.clips_all_fail(df)) <= set(range(1, 11))
