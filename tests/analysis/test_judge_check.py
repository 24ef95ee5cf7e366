"""The judge check's measurements: accuracy and Cohen's kappa against a hand computation, an
unreadable answer counted as wrong, clip-bootstrap intervals against an independent
resampling, the `jasco check-judge --json` shape, Table II's footnote, the run configuration's
section, and one real run of the embedded judge on the CPU."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file

from jasco_utils.analysis.bootstrap import resample_indices
from jasco_utils.analysis.judge_check import (
    USABLE_ORIENTATION_KAPPA,
    check_footnote,
    check_table,
    format_check,
    judge_check_warnings,
    measure,
)
from jasco_utils.cli import main
from jasco_utils.config import load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.judging.tables import read_checked
from jasco_utils.report.check import write_check_report
from jasco_utils.report.plots import plot_judge_check
from jasco_utils.report.results import run_analysis

KINDS = ["reference", "audio_only", "speech_only", "description", "generic", "other_clip"]
PARA_KINDS = ["reference_paraphrase", "audio_only_paraphrase", "speech_only_paraphrase", "both_separate"]
ALL_KINDS = KINDS + PARA_KINDS
PARA_EXPECTED = {
    "reference_paraphrase": (2, "Both"),
    "audio_only_paraphrase": (0, "Audio"),
    "speech_only_paraphrase": (0, "Speech"),
    "both_separate": (1, "Both"),
}
EXPECTED = {
    "reference": (2, "Both"),
    "audio_only": (0, "Audio"),
    "speech_only": (0, "Speech"),
    "description": (0, "Neither"),
    "generic": (0, ""),
    "other_clip": (0, ""),
}
LABEL = {"Both": "Good", "Audio": "Audio-Oriented", "Speech": "Speech-Oriented", "Neither": "Neither"}

# (judge_output, reask_output) per clip and kind; what a careful reader reads is in comments
HAND = {
    1: [
        ("Explanation1: fits.\nRating: 2\nExplanation2: both.\nOrientation: Good", ""),  # 2, Both
        ("Rating: 0\nOrientation: Audio-Oriented", ""),  # 0, Audio
        ("Rating: 1\nOrientation: Both", ""),  # 1, Both
        ("Rating: 0\nOrientation: Neither", ""),  # 0, Neither
        ("Rating: 0\nOrientation: Speech-Oriented", ""),  # 0, (Speech)
        ("Rating: 2\nOrientation: Good", ""),
    ],  # 2, (Both)
    2: [
        ("Rating: 2\nExplanation2: I cannot tell.", "Good"),  # 2, Both (re-ask)
        ("", ""),  # unreadable
        ("Rating: 0\nOrientation: Speech-Oriented", ""),  # 0, Speech
        ("Rating: 0\nOrientation: Audio-Oriented", ""),  # 0, Audio
        ("Rating: 1\nOrientation: Neither", ""),  # 1, (Neither)
        ("Rating: 0\nExplanation2: no idea", ""),
    ],  # 0, unreadable
}
# what those answers say, by hand: (rating, orientation), None where unreadable
GIVEN = {
    1: [(2, "Both"), (0, "Audio"), (1, "Both"), (0, "Neither"), (0, "Speech"), (2, "Both")],
    2: [(2, "Both"), (None, None), (0, "Speech"), (0, "Audio"), (1, "Neither"), (0, None)],
}


def control_table(answers: dict[int, list[tuple[str, str]]], judge: str = "J", kinds=KINDS) -> pd.DataFrame:
    rows = []
    for clip, outs in answers.items():
        for kind, (text, reask) in zip(kinds, outs, strict=True):
            rating, orientation = {**EXPECTED, **PARA_EXPECTED}[kind]
            rows.append(
                {
                    "id": clip,
                    "prompt": INSTRUCTIONS[(clip - 1) % 8],
                    "allm_output": f"{kind} answer",
                    "model": "judge-check",
                    "judge": judge,
                    "template": "judge_original@v1",
                    "judge_output": text,
                    "reask_output": reask,
                    "status": "ok",
                    "control_kind": kind,
                    "expected_rating": rating,
                    "expected_orientation": orientation,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def hand_file(tmp_path):
    path = tmp_path / "judge-check__j.csv"
    control_table(HAND).to_csv(path, index=False)
    return path


def _kappa_by_hand(expected: list[str], given: list[str]) -> float:
    """Cohen's kappa from its definition: (p_o - p_e) / (1 - p_e), p_e from the two marginals."""
    n = len(expected)
    p_o = Fraction(sum(e == g for e, g in zip(expected, given, strict=True)), n)
    ce, cg = Counter(expected), Counter(given)
    p_e = sum(Fraction(ce[k], n) * Fraction(cg[k], n) for k in set(ce) | set(cg))
    return float((p_o - p_e) / (1 - p_e))


def test_accuracy_kappa_and_confusion_against_a_hand_computation(hand_file):
    rows = read_checked([hand_file])
    (rec,) = measure(rows, n_resamples=200)
    pairs = [(k, e, g) for c in HAND for k, e, g in zip(KINDS, [EXPECTED[k] for k in KINDS], GIVEN[c], strict=True)]
    show = lambda v: "unparsed" if v is None else str(v)  # noqa: E731
    r_exp, r_giv = [str(e[0]) for _, e, _ in pairs], [show(g[0]) for _, _, g in pairs]
    o_pairs = [(e[1], show(g[1])) for _, e, g in pairs if e[1]]
    assert rec["n_rows"] == 12 and rec["n_clips"] == 2
    assert rec["n_unparsed"] == sum(g[0] is None or g[1] is None for _, _, g in pairs) == 2
    assert (
        rec["rating_accuracy"]
        == pytest.approx(sum(a == b for a, b in zip(r_exp, r_giv, strict=False)) / 12)
        == pytest.approx(8 / 12)
    )
    assert rec["orientation_accuracy"] == pytest.approx(sum(a == b for a, b in o_pairs) / len(o_pairs)) == 5 / 8
    assert rec["kappa"]["rating"] == pytest.approx(_kappa_by_hand(r_exp, r_giv)) == pytest.approx(5 / 13)
    assert (
        rec["kappa"]["orientation"]
        == pytest.approx(_kappa_by_hand(*zip(*o_pairs, strict=False)))
        == pytest.approx(13 / 25)
    )
    assert rec["majority_baseline"] == {"rating": pytest.approx(10 / 12), "orientation": 0.25}
    per = rec["per_kind"]
    assert list(per) == KINDS and all(per[k]["n"] == 2 for k in KINDS)
    assert [per[k]["rating_accuracy"] for k in KINDS] == [1.0, 0.5, 0.5, 1.0, 0.5, 0.5]
    assert [per[k]["orientation_accuracy"] for k in KINDS] == [1.0, 0.5, 0.5, 0.5, None, None]
    assert per["generic"]["orientation_accuracy_ci"] is None
    conf = rec["confusion"]["orientation"]
    assert conf["Both"] == {"Audio": 0, "Both": 2, "Speech": 0, "Neither": 0, "unparsed": 0}
    assert conf["Audio"]["unparsed"] == 1 and conf["Speech"]["Both"] == 1 and conf["Neither"]["Audio"] == 1
    assert rec["confusion"]["rating"]["0"] == {"0": 6, "1": 2, "2": 1, "unparsed": 1}  # 10 expected 0
    assert rec["template"] == "judge_original@v1" and rec["files"] == [str(hand_file)]


def test_an_unreadable_answer_counts_as_wrong_never_left_out(tmp_path):
    right = {
        c: [(f"Rating: {EXPECTED[k][0]}\nOrientation: {LABEL.get(EXPECTED[k][1], 'Neither')}", "") for k in KINDS]
        for c in (1, 2)
    }
    (rec,) = measure(read_checked([_write(tmp_path / "a__j.csv", right)]), n_resamples=0)
    assert rec["rating_accuracy"] == rec["orientation_accuracy"] == 1.0 and rec["n_unparsed"] == 0
    assert rec["kappa"] == {"rating": 1.0, "orientation": 1.0}
    right[2][0] = ("I think this is fine.", "")  # the reference answer: neither value readable
    (rec,) = measure(read_checked([_write(tmp_path / "b__j.csv", right)]), n_resamples=0)
    assert rec["n_unparsed"] == 1
    assert rec["rating_accuracy"] == pytest.approx(11 / 12) and rec["orientation_accuracy"] == pytest.approx(7 / 8)
    assert rec["per_kind"]["reference"]["rating_accuracy"] == 0.5
    assert rec["confusion"]["orientation"]["Both"]["unparsed"] == 1
    assert rec["intervals"]["rating_accuracy"] is None  # no resamples asked


def _write(path, answers, judge="J"):
    control_table(answers, judge).to_csv(path, index=False)
    return path


def test_intervals_resample_clips_as_an_independent_computation(tmp_path):
    rng = random.Random(3)
    labels = ["Audio-Oriented", "Speech-Oriented", "Good", "Neither", "unsure"]
    answers = {
        c: [(f"Rating: {rng.choice([0, 0, 1, 2])}\nOrientation: {rng.choice(labels)}", "") for _ in KINDS]
        for c in range(1, 13)
    }
    rows = read_checked([_write(tmp_path / "r__j.csv", answers)])
    (rec,) = measure(rows, n_resamples=500, seed=7)
    (again,) = measure(rows, n_resamples=500, seed=7)
    assert rec == again
    idx = resample_indices(12, 500, 7)
    for field, key, checked_kinds in (
        ("rating", "rating_accuracy", KINDS),
        ("orientation", "orientation_accuracy", KINDS[:4]),
    ):
        given = rows[field].map(lambda v: None if pd.isna(v) else v)
        expected = rows[f"expected_{field}"].map(lambda v: None if pd.isna(v) or v == "" else v)
        ok = np.array([g is not None and g == e for g, e in zip(given, expected, strict=True)], dtype=float)
        checked = rows["control_kind"].isin(checked_kinds).to_numpy()
        clips = rows["id"].to_numpy()
        per_clip_ok = np.array([ok[(clips == c) & checked].sum() for c in range(1, 13)])
        per_clip_n = np.array([checked[clips == c].sum() for c in range(1, 13)])
        reps = [per_clip_ok[i].sum() / per_clip_n[i].sum() for i in idx]
        assert rec[key] == pytest.approx(per_clip_ok.sum() / per_clip_n.sum())
        assert rec["intervals"][key] == pytest.approx(list(np.quantile(reps, [0.025, 0.975])))
        assert rec["intervals"][key][0] <= rec[key] <= rec["intervals"][key][1]
    assert rec["intervals"]["unit"] == "clip" and rec["intervals"]["n_resamples"] == 500


def test_json_shape_of_check_judge(hand_file, tmp_path, capsys):
    second = _write(tmp_path / "judge-check__k.csv", HAND, judge="K")
    assert main(["check-judge", "--judged", str(hand_file), str(second), "--json", "--n-resamples", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["judge"] for r in out] == ["J", "K"]
    for rec in out:
        assert {
            "judge",
            "n_rows",
            "n_unparsed",
            "rating_accuracy",
            "orientation_accuracy",
            "per_kind",
            "kappa",
            "intervals",
            "confusion",
        } <= set(rec)
        assert isinstance(rec["n_rows"], int) and isinstance(rec["rating_accuracy"], float)
        assert set(rec["per_kind"]) == set(KINDS)
        for kind, v in rec["per_kind"].items():
            assert {"n", "rating_accuracy", "orientation_accuracy"} <= set(v)
            assert (v["orientation_accuracy"] is None) == (kind in ("generic", "other_clip"))
        assert set(rec["kappa"]) == {"rating", "orientation"} and len(rec["intervals"]["rating_accuracy"]) == 2
    assert main(["check-judge", "--judged", str(hand_file)]) == 0
    text = capsys.readouterr().out
    assert "rating accuracy      0.67" in text and "orientation accuracy 0.62" in text and "generic" in text


def test_bad_tables_are_refused_with_the_file_and_line(hand_file, tmp_path, capsys):
    failed = control_table(HAND).assign(status=lambda d: ["ok"] * 3 + ["failed"] + ["ok"] * 8)
    failed.to_csv(tmp_path / "f.csv", index=False)
    # the line an editor shows: the judge answers before row 3 span several lines each
    line = 2 + 3 + sum(str(v).count("\n") for v in failed.iloc[:3].to_numpy().ravel())
    assert line > 5
    with pytest.raises(TableError, match=rf"f.csv: 1 row\(s\) whose judge call failed \(line {line}, column 'status'"):
        read_checked([tmp_path / "f.csv"])
    with pytest.raises(TableError, match="judge 'J' is also in"):
        read_checked([hand_file, _write(tmp_path / "again.csv", HAND)])
    control_table(HAND).drop(columns="expected_rating").to_csv(tmp_path / "m.csv", index=False)
    assert main(["check-judge", "--judged", str(tmp_path / "m.csv")]) == 1
    assert "lacks column(s) ['expected_rating']" in capsys.readouterr().err
    assert main(["check-judge", "--judged", str(hand_file), "--judge", "smollm2"]) == 2


def test_report_files_and_figure(hand_file, tmp_path):
    records = measure(
        read_checked([hand_file, _write(tmp_path / "judge-check__k.csv", HAND, judge="K")]), n_resamples=100
    )
    paths = write_check_report(records, tmp_path / "fig")
    assert sorted(p.name for p in paths) == ["judge_check.csv", "judge_check.json", "judge_check.png"]
    assert json.loads((tmp_path / "fig" / "judge_check.json").read_text()) == records
    table = check_table(records)
    assert table.groupby("judge").size().tolist() == [8, 8]  # all + the verbatim group + six kinds
    assert table[table["kind"] == "verbatim"]["orientation_kappa"].tolist() == [records[0]["kappa"]["orientation"]] * 2
    assert (tmp_path / "fig" / "judge_check.png").stat().st_size > 20_000
    fig = plot_judge_check(records)
    assert len([ax for ax in fig.axes if ax.get_visible()]) >= 4  # 2 confusion matrices (+ colour bar), 2 panels
    assert "orientation, expected (rows) x given (columns)" in format_check(records)


def test_table2_footnote_and_provenance_show_the_check(hand_file, tmp_path):
    run = tmp_path / "run"
    (run / "judged").mkdir(parents=True)
    ids, outputs = make_rows(0, clips=range(1, 5))
    project_layout_file(run / "judged" / "A__j.csv", ids, outputs, model="A", judge="J")
    assert check_footnote(run) == ""
    (run / "judge_check").mkdir()
    control_table(HAND).to_csv(run / "judge_check" / "judge-check__j.csv", index=False)
    control_table(HAND).iloc[:0].to_csv(run / "judge_check" / "judge-check.csv", index=False)  # not a judged table
    result = run_analysis(load_run_config("cpu"), run, figures_dir=tmp_path / "fig", data_dir=str(tmp_path))
    assert result["footnote"].startswith("Judge check (control answers with known labels, 2 clips")
    assert "J rating 0.67, orientation 0.62 (kappa 0.38, 0.52)" in result["footnote"]
    assert result["footnote"] in (tmp_path / "fig" / "table2.md").read_text()
    assert "\\footnotesize Judge check" in (tmp_path / "fig" / "table2.tex").read_text()
    assert json.loads((tmp_path / "fig" / "provenance.json").read_text())["judge_check"] == result["footnote"]


def test_run_configuration_section(tmp_path):
    cpu, llm, paper = load_run_config("cpu"), load_run_config("cpu-llm-judge"), load_run_config("paper")
    assert cpu.judge_check and cpu.judge_check_clips is None  # the reference judge: all 80 clips
    assert {j.engine for j in cpu.judges} == {"reference"} and not cpu.judge_check_judge_clips
    assert llm.judge_check and llm.judge_check_clips is None
    slow = {j.key for j in llm.judges if j.engine == "embedded"}
    assert slow and set(llm.judge_check_judge_clips) == slow  # SmolLM2: a few clips only
    assert all(len(c) * len(ALL_KINDS) <= 30 for c in llm.judge_check_judge_clips.values())
    assert paper.judge_check and paper.judge_check_clips is None
    path = tmp_path / "r.toml"
    path.write_text('name = "r"\n')
    assert not load_run_config(path).judge_check
    path.write_text("[judge_check]\nclips = [3, 1, 3]\n")
    assert load_run_config(path).judge_check and load_run_config(path).judge_check_clips == [1, 3]
    path.write_text("[judge_check]\nenabled = false\n")
    assert not load_run_config(path).judge_check
    for text, message in (
        ("[judge_check]\nclip = [1, 2]\n", r"\[judge_check\] has unknown field\(s\) \['clip'\]"),
        ("[judge_check]\nclips = [5]\n", "needs two clips or more"),
        ("[judge_check]\nclips = [0, 81]\n", "judge_check.clips must be"),
        ('[judge_check]\nenabled = "yes"\n', "judge_check.enabled must be true or false"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_run_config(path)


def test_pipeline_skips_the_check_when_off(tmp_path):
    from jasco_utils.pipeline.reproduce import run_judge_check

    path = tmp_path / "r.toml"
    path.write_text('name = "r"\n[judge_check]\nenabled = false\n')
    assert run_judge_check(load_run_config(path), tmp_path / "run") == []
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_check_judge_with_the_embedded_judge_on_the_cpu(tmp_path, real_data_dir):
    """`jasco check-judge --judge smollm2 --clips 1-2`: 20 control answers through the real judging path."""
    out_dir, store = tmp_path / "check", tmp_path / "calls.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "jasco_utils.cli",
        "check-judge",
        "--judge",
        "smollm2",
        "--clips",
        "1-2",
        "--structured",
        "json",
        "--max-tokens",
        "160",
        "--max-explanation-chars",
        "60",
        "--data-dir",
        str(real_data_dir),
        "--store",
        str(store),
        "--out-dir",
        str(out_dir),
        "--json",
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    (rec,) = json.loads(first.stdout)
    assert rec["judge"] == "SmolLM2-135M-Instruct" and rec["n_rows"] == 20 and rec["n_clips"] == 2
    assert {k: v["n"] for k, v in rec["per_kind"].items()} == dict.fromkeys(ALL_KINDS, 2)
    assert set(rec["groups"]) == {"verbatim", "paraphrased"} and rec["groups"]["paraphrased"]["n"] == 8
    assert 0 <= rec["rating_accuracy"] <= 1 and rec["template"].startswith("judge_original")
    assert "20 model calls" in first.stderr
    controls = pd.read_csv(out_dir / "judge-check.csv", keep_default_na=False)
    judged = pd.read_csv(out_dir / "judge-check__smollm2.csv", keep_default_na=False)
    assert len(judged) == 20
    for col in ("id", "allm_output", "control_kind", "expected_rating", "expected_orientation"):
        assert judged[col].tolist() == controls[col].tolist(), col  # carried over row by row
    assert (judged["judge"] == "SmolLM2-135M-Instruct").all() and judged["status"].isin(["ok", "truncated"]).all()
    assert pd.read_parquet(out_dir / "judge-check__smollm2.parquet").shape == judged.shape
    assert (out_dir / "judge_check.png").stat().st_size > 20_000
    # measuring the written table gives the same numbers; a re-run makes no call
    (again,) = measure(read_checked([out_dir / "judge-check__smollm2.csv"]))
    assert {k: again[k] for k in ("rating_accuracy", "orientation_accuracy", "kappa", "intervals")} == {
        k: rec[k] for k in ("rating_accuracy", "orientation_accuracy", "kappa", "intervals")
    }
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT, env=env)
    assert rerun.returncode == 0 and "20 from cache, 0 model calls" in rerun.stderr
    assert json.loads(rerun.stdout)[0]["per_kind"] == rec["per_kind"]


def _answer(rating: int, orientation: str) -> tuple[str, str]:
    return f"Explanation1: x\nRating: {rating}\nExplanation2: y\nOrientation: {LABEL[orientation]}", ""


RIGHT = [_answer(*EXPECTED[k]) if EXPECTED[k][1] else _answer(EXPECTED[k][0], "Audio") for k in KINDS]
# the paraphrased kinds' answers of judge J, per clip: (rating, orientation) given
J_PARA = {
    1: [(2, "Both"), (0, "Audio"), (0, "Speech"), (1, "Both")],
    2: [(1, "Both"), (0, "Speech"), (0, "Speech"), (0, "Audio")],
    3: [(2, "Both"), (0, "Audio"), (2, "Both"), (1, "Both")],
}


def _both_groups(tmp_path):
    j = {c: RIGHT + [_answer(*g) for g in J_PARA[c]] for c in J_PARA}
    k = {c: RIGHT + [_answer(0, "Audio")] * 4 for c in J_PARA}  # right on the verbatim kinds, constant on the rest
    paths = []
    (tmp_path / "both").mkdir(exist_ok=True)
    for name, answers in (("J", j), ("K", k)):
        path = tmp_path / "both" / f"judge-check__{name.lower()}.csv"
        control_table(answers, judge=name, kinds=ALL_KINDS).to_csv(path, index=False)
        paths.append(path)
    return paths


def test_verbatim_and_paraphrased_kinds_are_reported_apart(tmp_path):
    rec_j, rec_k = measure(read_checked(_both_groups(tmp_path)), n_resamples=300)
    exp = [PARA_EXPECTED[kind] for _ in J_PARA for kind in PARA_KINDS]
    giv = [g for c in J_PARA for g in J_PARA[c]]
    para = rec_j["groups"]["paraphrased"]
    assert para["kinds"] == PARA_KINDS and para["n"] == 12
    assert (
        para["rating_accuracy"]
        == pytest.approx(sum(e[0] == g[0] for e, g in zip(exp, giv, strict=False)) / 12)
        == 9 / 12
    )
    assert para["orientation_accuracy"] == pytest.approx(9 / 12)
    assert para["kappa"]["orientation"] == pytest.approx(_kappa_by_hand([e[1] for e in exp], [g[1] for g in giv]))
    assert para["kappa"]["rating"] == pytest.approx(_kappa_by_hand([str(e[0]) for e in exp], [str(g[0]) for g in giv]))
    assert para["majority_baseline"] == {"rating": 0.5, "orientation": 0.5}
    lo, hi = para["orientation_accuracy_ci"]
    assert lo <= 0.75 <= hi and 0.5 <= lo  # three clips: 3/4, 2/4 and 3/4 right
    verbatim = rec_j["groups"]["verbatim"]
    assert verbatim["kinds"] == KINDS and verbatim["n"] == 18 and verbatim["rating_accuracy"] == 1.0
    assert verbatim["kappa"] == {"rating": 1.0, "orientation": 1.0}
    assert rec_j["usable"] is True and rec_j["usable_threshold"] == USABLE_ORIENTATION_KAPPA == 0.4
    # K: perfect on the verbatim kinds, chance on the paraphrased ones: not usable
    assert rec_k["groups"]["verbatim"]["kappa"]["orientation"] == 1.0
    assert rec_k["groups"]["paraphrased"]["kappa"]["orientation"] == 0.0 and rec_k["usable"] is False
    # existing keys unchanged: overall figures pool all ten kinds
    assert rec_j["n_rows"] == 30 and set(rec_j["per_kind"]) == set(ALL_KINDS)
    assert rec_j["orientation_accuracy"] == pytest.approx((12 + 9) / 24)


def test_warnings_name_each_judge_below_the_threshold(tmp_path, hand_file):
    records = measure(read_checked(_both_groups(tmp_path)), n_resamples=0)
    (warning,) = judge_check_warnings(records)
    assert warning.startswith("Warning: judge K is not usable") and "0.00, below 0.4" in warning
    assert judge_check_warnings(records, threshold=0.99)[0].startswith("Warning: judge J")
    assert len(judge_check_warnings(records, threshold=0.99)) == 2
    (verbatim_only,) = judge_check_warnings(measure(read_checked([hand_file]), n_resamples=0))
    assert "J has no orientation kappa on the paraphrased controls" in verbatim_only
    text = format_check(records)
    assert "paraphrased kinds (4, 12 rows): rating 0.75" in text and "verbatim kinds (6, 18 rows)" in text
    assert text.count("usable (paraphrased orientation kappa >= 0.4): yes") == 1
    assert text.count("usable (paraphrased orientation kappa >= 0.4): no") == 1
    assert text.rstrip().endswith(warning)
    table = check_table(records)
    assert table[table["kind"] == "paraphrased"]["orientation_kappa"].tolist() == [
        pytest.approx(records[0]["groups"]["paraphrased"]["kappa"]["orientation"]),
        0.0,
    ]


def test_footnote_shows_the_paraphrased_kinds_and_the_warning(tmp_path):
    run = tmp_path / "run"
    (run / "judge_check").mkdir(parents=True)
    for path in _both_groups(tmp_path):
        path.rename(run / "judge_check" / path.name)
    note = check_footnote(run)
    assert note.startswith("Judge check (control answers with known labels, 3 clips")
    assert "J rating 0.90, orientation 0.88" in note  # all ten kinds, as before
    assert "; paraphrased kinds: rating 0.75, orientation 0.75" in note and "usable;" in note
    assert note.endswith(
        "not usable. Warning: judge K is not usable: its orientation kappa on the paraphrased "
        "controls is 0.00, below 0.4; its Table II and Figure 2 numbers say little about the ALLMs."
    )
