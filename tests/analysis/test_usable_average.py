"""The Average over the judges the judge check finds usable, beside the all-judge Average.

A run of 2 ALLMs and 3 judges (j1, j2, j3) whose judge check finds j2 not usable: Table II,
Figure 2, the scores, the intervals and ``results.json`` carry ``Average (usable judges)``,
its values checked against a computation from the judged rows by hand; a run whose judges are
all usable (or none) writes what a run without a check writes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file, random_scored_rows

from jasco_utils.analysis import bootstrap
from jasco_utils.analysis.averages import AVERAGE, USABLE_AVERAGE, usable_subset, with_usable_average
from jasco_utils.analysis.judge_check import judge_check_warnings, measure, usable_judges
from jasco_utils.analysis.scoring import scores_from_rows
from jasco_utils.config import load_run_config
from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.judging.controls import PARAPHRASED_KINDS, VERBATIM_KINDS
from jasco_utils.judging.tables import read_checked, read_judged_files
from jasco_utils.report import plots
from jasco_utils.report.results import run_analysis, run_statistics, write_results
from jasco_utils.report.tables import table2, table2_with_paper

JUDGES = ("j1", "j2", "j3")
MODELS = ("A", "B")
CLIPS = range(1, 11)
# the control kinds and the (rating, orientation) each expects ("": orientation not checked)
VERBATIM = {k: (r, o or "") for k, (r, o) in VERBATIM_KINDS.items()}
PARAPHRASED = dict(PARAPHRASED_KINDS)
LABEL = {"Both": "Good", "Audio": "Audio-Oriented", "Speech": "Speech-Oriented", "Neither": "Neither"}


def control_table(judge: str, usable: bool) -> pd.DataFrame:
    """A judged control table on 3 clips: right on every kind (usable), or right on the verbatim
    kinds only and "0, Audio" on the paraphrased ones (orientation kappa 0 there: not usable)."""
    rows = []
    for clip in (1, 2, 3):
        for kind, (rating, orientation) in {**VERBATIM, **PARAPHRASED}.items():
            right = usable or kind in VERBATIM
            given = (rating, orientation or "Audio") if right else (0, "Audio")
            rows.append(
                {
                    "id": clip,
                    "prompt": INSTRUCTIONS[clip - 1],
                    "allm_output": f"{kind} answer",
                    "model": "judge-check",
                    "judge": judge,
                    "template": "judge_original@v1",
                    "judge_output": f"Explanation1: x\nRating: {given[0]}\nExplanation2: y\nOrientation: {LABEL[given[1]]}",
                    "reask_output": "",
                    "status": "ok",
                    "control_kind": kind,
                    "expected_rating": rating,
                    "expected_orientation": orientation,
                }
            )
    return pd.DataFrame(rows)


def make_run(root, check: dict[str, bool] | None):
    """A run folder: judged tables of every (ALLM, judge), and the judge check ``check`` (judge -> usable)."""
    run = root / "run"
    (run / "judged").mkdir(parents=True)
    for seed, (model, judge) in enumerate([(m, j) for m in MODELS for j in JUDGES]):
        ids, outputs = make_rows(seed, clips=CLIPS)
        project_layout_file(run / "judged" / f"{model}__{judge}.csv", ids, outputs, model=model, judge=judge)
    if check is not None:
        (run / "judge_check").mkdir()
        for judge, usable in check.items():
            control_table(judge, usable).to_csv(run / "judge_check" / f"judge-check__{judge}.csv", index=False)
    return run


def analyse(root, check: dict[str, bool] | None) -> tuple:
    run = make_run(root, check)
    result = run_analysis(load_run_config("cpu"), run, figures_dir=root / "fig", data_dir=str(root))
    return run, root / "fig", result


def best_mean_by_hand(run) -> pd.DataFrame:
    """Best-Mean per (model, judge) from the judged rows: per clip the best rating whose
    orientation is Both (0 otherwise, or unreadable), averaged over clips."""
    rows = read_judged_files(sorted((run / "judged").glob("*.csv")))
    value = [
        float(r) if o == "Both" and pd.notna(r) else 0.0
        for r, o in zip(rows["rating"], rows["orientation"], strict=True)
    ]
    best = rows.assign(value=value).groupby(["model", "judge", "id"])["value"].max()
    return best.groupby(["model", "judge"]).mean().unstack("model")


@pytest.fixture(scope="module")
def one_out(tmp_path_factory):
    """The run whose check finds j2 not usable, analysed, with statistics and results.json."""
    root = tmp_path_factory.mktemp("one_out")
    run, fig, result = analyse(root, {"j1": True, "j2": False, "j3": True})
    run_statistics(run, figures_dir=fig, n_resamples=50)
    write_results(run, fig)
    return run, fig, result


def test_usable_judges_follow_the_check(tmp_path):
    assert usable_judges(make_run(tmp_path / "none", None)) is None
    run = make_run(tmp_path / "one", {"j1": True, "j2": False, "j3": True})
    assert usable_judges(run) == ["j1", "j3"]
    records = measure(read_checked(sorted((run / "judge_check").glob("*.csv"))), n_resamples=0)
    assert [r["usable"] for r in records] == [True, False, True]
    assert usable_subset([*JUDGES, AVERAGE], ["j3", "j1"]) == ["j1", "j3"]
    assert usable_subset(JUDGES, JUDGES) is None and usable_subset(JUDGES, []) is None
    assert usable_subset(JUDGES, None) is None


def test_table2_has_both_averages(one_out):
    run, fig, result = one_out
    by_hand = best_mean_by_hand(run)
    table = result["table2"]
    assert table.index.tolist() == [*JUDGES, AVERAGE, USABLE_AVERAGE]
    for model in MODELS:
        assert table.loc[list(JUDGES), model].tolist() == pytest.approx(by_hand.loc[list(JUDGES), model].tolist())
        assert table.loc[AVERAGE, model] == pytest.approx(by_hand.loc[list(JUDGES), model].mean())
        assert table.loc[USABLE_AVERAGE, model] == pytest.approx(
            (by_hand.loc["j1", model] + by_hand.loc["j3", model]) / 2
        )
    csv = pd.read_csv(fig / "table2.csv").set_index("LLM-Judge")
    assert csv.index.tolist() == [*JUDGES, AVERAGE, USABLE_AVERAGE]
    assert csv.loc[USABLE_AVERAGE].tolist() == pytest.approx(table.loc[USABLE_AVERAGE].tolist())
    # the footnote names the judges it covers and the one left out, under the check's warning
    sentence = (
        "Average: the mean over all judges; Average (usable judges): over j1 and j3 only, "
        "leaving out j2 (not usable per the judge check)."
    )
    assert result["footnote"].endswith(sentence) and "Warning: judge j2 is not usable" in result["footnote"]
    md = (fig / "table2.md").read_text()
    assert f"| {USABLE_AVERAGE} |" in md and md.rstrip().endswith(sentence)
    assert "Average (usable judges): over j1 and j3 only" in (fig / "table2.tex").read_text()
    # beside the paper's numbers the usable row has no published value
    shown = table2_with_paper(table)
    assert all("paper" not in cell for cell in shown.loc[USABLE_AVERAGE])


def test_scores_and_figure2_carry_the_usable_average(one_out):
    run, fig, result = one_out
    scores = json.loads((fig / "scores.json").read_text())
    assert [r["judge"] for r in scores] == [*JUDGES, *JUDGES, AVERAGE, AVERAGE, USABLE_AVERAGE, USABLE_AVERAGE]
    per_judge = pd.DataFrame(scores).set_index(["model", "judge"])
    for model in MODELS:
        usable = per_judge.loc[[(model, "j1"), (model, "j3")]]
        mine = per_judge.loc[(model, USABLE_AVERAGE)]
        for key in ("audio_pct", "both_pct", "speech_pct", "best_mean_ungated"):
            assert mine[key] == pytest.approx(usable[key].mean())
        assert mine["n_responses"] == usable["n_responses"].sum() == 2 * len(CLIPS) * 8
        assert mine["n_clips"] == len(CLIPS)
    fig2 = plots.figure2(result["scores"])
    titles = [ax.get_title() for ax in fig2.axes if ax.get_visible()]
    assert titles == [*JUDGES, "Average (all judges)", USABLE_AVERAGE]
    assert len(fig2.axes) == 5
    assert fig2.axes[-1].title.get_fontweight() == "bold"


def test_results_json_and_intervals_carry_both(one_out):
    run, fig, result = one_out
    results = json.loads((run / "results.json").read_text())
    averages = {AVERAGE: list(JUDGES), USABLE_AVERAGE: ["j1", "j3"]}
    assert results["averages"] == result["averages"] == averages
    assert json.loads((fig / "provenance.json").read_text())["averages"] == averages
    assert [r["LLM-Judge"] for r in results["table2"]] == [*JUDGES, AVERAGE, USABLE_AVERAGE]
    intervals = pd.DataFrame(results["intervals"])
    usable = intervals[intervals["judge"] == USABLE_AVERAGE].set_index("model")
    assert usable.index.tolist() == list(MODELS)
    table = result["table2"]
    for model in MODELS:
        assert usable.loc[model, "best_mean"] == pytest.approx(table.loc[USABLE_AVERAGE, model])
        assert (
            usable.loc[model, "best_mean_ci_low"]
            <= usable.loc[model, "best_mean"]
            <= usable.loc[model, "best_mean_ci_high"]
        )


def test_usable_interval_resamples_the_same_clips():
    rows = random_scored_rows(seed=7, clips=range(1, 16))
    n_resamples, seed = 300, 3
    got = bootstrap.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed, usable=["j1", "j3"])
    plain = bootstrap.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed)
    # the other rows are those of the run without a usable average
    pd.testing.assert_frame_equal(got[got["judge"] != USABLE_AVERAGE].reset_index(drop=True), plain)
    assert got["judge"].tolist()[-1] == USABLE_AVERAGE and (got["judge"] == USABLE_AVERAGE).sum() == 2
    # by hand: per replicate, each usable judge's Best-Mean over the drawn clips, then their mean
    rating = pd.to_numeric(rows["rating"], errors="coerce")
    value = np.where((rows["orientation"] == "Both").to_numpy() & rating.notna().to_numpy(), rating.fillna(0), 0.0)
    best = rows.assign(value=value).groupby(["model", "judge", "id"])["value"].max()
    draws = np.random.default_rng(seed).integers(0, 15, size=(n_resamples, 15))
    for model in ("m1", "m2"):
        per_clip = np.stack([best.loc[(model, j)].sort_index().to_numpy() for j in ("j1", "j3")])
        reps = per_clip[:, draws].mean(axis=2).mean(axis=0)
        low, high = np.quantile(reps, [0.025, 0.975])
        row = got[(got["model"] == model) & (got["judge"] == USABLE_AVERAGE)].iloc[0]
        assert row["best_mean"] == pytest.approx(per_clip.mean())
        assert (row["best_mean_ci_low"], row["best_mean_ci_high"]) == pytest.approx((low, high))
    # every judge usable, none, or no check: no usable-average row
    plain = bootstrap.bootstrap_scores(rows, n_resamples=50)
    for usable in (["j1", "j2", "j3"], [], None):
        pd.testing.assert_frame_equal(bootstrap.bootstrap_scores(rows, n_resamples=50, usable=usable), plain)


def test_with_usable_average_only_when_some_judges_are_left_out():
    scores = scores_from_rows(random_scored_rows(seed=2, clips=range(1, 6)))
    assert with_usable_average(scores, None) is scores
    assert with_usable_average(scores, ["j1", "j2", "j3"]) is scores
    assert with_usable_average(scores, []) is scores
    one = with_usable_average(scores, ["j2"])
    assert table2(one).index.tolist() == ["j1", "j2", "j3", AVERAGE, USABLE_AVERAGE]
    assert table2(one).loc[USABLE_AVERAGE].tolist() == table2(one).loc["j2"].tolist()


@pytest.mark.parametrize("check", [{"j1": True, "j2": True, "j3": True}, {"j1": False, "j2": False, "j3": False}])
def test_all_or_no_judge_usable_writes_what_a_run_without_a_check_writes(tmp_path, check):
    _, plain_fig, plain = analyse(tmp_path / "plain", None)
    run, fig, result = analyse(tmp_path / "checked", check)
    assert result["averages"] is None and "averages" not in json.loads((fig / "provenance.json").read_text())
    for name in ("table2.csv", "scores.json"):
        assert (fig / name).read_bytes() == (plain_fig / name).read_bytes(), name
    # Markdown and LaTeX: the same table, with the check's footnote under it (and nothing else)
    footnote = result["footnote"]
    assert footnote and USABLE_AVERAGE not in footnote
    assert (fig / "table2.md").read_text() == (plain_fig / "table2.md").read_text() + f"\n{footnote}\n"
    tex = [line for line in (fig / "table2.tex").read_text().splitlines() if not line.startswith("\\par\\footnotesize")]
    assert tex == (plain_fig / "table2.tex").read_text().splitlines()
    assert result["table2"].index.tolist() == [*JUDGES, AVERAGE]
    titles = [ax.get_title() for ax in plots.figure2(result["scores"]).axes]
    assert titles == [*JUDGES, AVERAGE]
    warned = judge_check_warnings(measure(read_checked(sorted((run / "judge_check").glob("*.csv"))), n_resamples=0))
    assert len(warned) == sum(not usable for usable in check.values())
    assert all(w in footnote for w in warned)


def test_jasco_score_adds_the_usable_average_from_a_runs_judge_check(tmp_path, capsys):
    from jasco_utils.cli import main

    run = make_run(tmp_path / "one", {"j1": True, "j2": False, "j3": True})
    by_hand = best_mean_by_hand(run)
    ci = ["--json", "--ci", "--n-resamples", "50"]
    assert main(["score", str(run / "judged"), *ci]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert USABLE_AVERAGE not in {r["judge"] for r in plain}  # without the flag: as before
    assert main(["score", str(run / "judged"), "--judge-check", str(run), *ci]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r for r in records if r["judge"] != USABLE_AVERAGE] == plain  # the flag only adds records
    usable = {r["model"]: r for r in records if r["judge"] == USABLE_AVERAGE}
    assert set(usable) == set(MODELS)
    for model in MODELS:
        assert usable[model]["best_mean"] == pytest.approx((by_hand.loc["j1", model] + by_hand.loc["j3", model]) / 2)
        assert usable[model]["best_mean_ci_low"] <= usable[model]["best_mean"] <= usable[model]["best_mean_ci_high"]
    assert main(["score", str(run / "judged"), "--judge-check", str(run)]) == 0
    assert "Average (usable judges): mean over the judges the judge check finds usable" in capsys.readouterr().out
    bare = make_run(tmp_path / "none", None)
    assert main(["score", str(bare / "judged"), "--judge-check", str(bare)]) == 1
    assert "no judge check there" in capsys.readouterr().err
