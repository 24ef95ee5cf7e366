"""Metrics and `jasco score`: equality with the original script's rules, layouts, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers.judged_tables import make_rows, original_layout_file, project_layout_file

from jasco_utils.analysis.metrics import SCORE_KEYS
from jasco_utils.analysis.scoring import score_files
from jasco_utils.cli import main
from jasco_utils.core.io import TableError
from jasco_utils.judging.tables import read_judged


def original_rules(ids: list[int], outputs: list[str]) -> dict[str, float]:
    """The original script's metrics, written from its documented rules (protocol/README.md).

    Orientation: substring search in the order Neither, Audio, Speech, Good/Both; rating: the
    last line containing "Rating: ", first of 0, 1, 2 found in it; a rating counts only when
    the orientation is Good/Both; per clip the max; the mean over clips. Dependence: counts of
    A, S, G over all responses, each divided by their sum.
    """
    best: dict[int, int] = {}
    orientations = []
    score = None
    for cid, r in zip(ids, outputs, strict=False):
        if "Orientation: Neither" in r or "Orientation: \nNeither" in r:
            o = "N"
        elif "Orientation: Audio-Oriented" in r or "Orientation: \nAudio-Oriented" in r:
            o = "A"
        elif "Orientation: Speech-Oriented" in r or "Orientation: \nSpeech-Oriented" in r:
            o = "S"
        elif "Orientation: Good" in r or "Orientation: \nGood" in r or "Orientation: Both" in r:
            o = "G"
        else:
            o = "?"
        orientations.append(o)
        for line in r.split("\n"):
            if "Rating: " in line:
                score = 0 if "0" in line else 1 if "1" in line else 2 if "2" in line else 0
        best[cid] = max(best.get(cid, 0), score if o == "G" else 0)
    n = len(orientations)
    a, s, g = (orientations.count(k) / n for k in "ASG")
    return {
        "best_mean": sum(best.values()) / len(best),
        "audio_pct": 100 * a / (a + s + g),
        "both_pct": 100 * g / (a + s + g),
        "speech_pct": 100 * s / (a + s + g),
    }


@pytest.mark.parametrize("seed", range(8))
def test_equals_original_rules_on_generated_files(tmp_path, seed):
    ids, outputs = make_rows(seed)
    expected = original_rules(ids, outputs)
    for layout in ("original", "project"):
        path = tmp_path / f"{layout}.csv"
        (original_layout_file if layout == "original" else project_layout_file)(path, ids, outputs)
        [rec] = score_files([path])
        for key, value in expected.items():
            assert rec[key] == pytest.approx(value, abs=1e-12), (layout, key)
        assert rec["n_responses"] == 640 and rec["n_clips"] == 80 and rec["n_unparsed"] == 0


def test_equals_original_rules_on_real_example_layout(tmp_path, real_data_dir):
    example = pd.read_csv(real_data_dir / "example.csv", dtype=str, keep_default_na=False)
    ids, outputs = make_rows(123)
    path = original_layout_file(tmp_path / "llama_judge.csv", ids, outputs, real_example=example)
    [rec] = score_files([path])
    assert rec["best_mean"] == pytest.approx(original_rules(ids, outputs)["best_mean"], abs=1e-12)
    assert (rec["model"], rec["judge"]) == ("llama_judge", "llama_judge")


def test_original_layout_ids_written_as_floats_score_as_whole_ids(tmp_path):
    """pandas writes ids as ``1.0`` once a column held a missing value; the table is the same one."""
    ids, outputs = make_rows(5)
    whole = original_layout_file(tmp_path / "whole.csv", ids, outputs)
    floats = tmp_path / "floats.csv"
    df = pd.read_csv(whole, dtype=str, keep_default_na=False)
    df.assign(id=df["id"] + ".0").to_csv(floats, index=False)
    assert pd.read_csv(floats, dtype=str)["id"].iloc[0] == f"{ids[0]}.0"
    [a], [b] = score_files([whole]), score_files([floats])
    assert {k: v for k, v in a.items() if k not in ("model", "judge")} == {
        k: v for k, v in b.items() if k not in ("model", "judge")
    }
    assert b["n_clips"] == 80 and b["best_mean"] == pytest.approx(original_rules(ids, outputs)["best_mean"])


def test_unparsed_are_counted_not_defaulted(tmp_path):
    ids = [1] * 8 + [2] * 8
    good = "Rating: 2\nOrientation: Both"
    outputs = [good] * 16
    outputs[0] = "Rating: 3\nOrientation: Both"  # out of range: rating unreadable
    outputs[8:16] = ["No rating here.\nOrientation: Both"] * 7 + [
        "Rating: 1\nOrientation: Audio-Oriented/Speech-Oriented/Good/Neither"
    ]
    [rec] = score_files([project_layout_file(tmp_path / "m__j.csv", ids, outputs)])
    # clip 1: best of (None->0, 2, 2, ...) = 2; clip 2: nothing readable with Both -> 0
    assert rec["best_mean"] == 1.0
    assert rec["n_unparsed_rating"] == 8 and rec["n_unparsed_orientation"] == 1 and rec["n_unparsed"] == 9
    # the echoed orientation is left out of the denominator: 15 Both of 15
    assert rec["both_pct"] == 100.0


def test_ungated_and_reask(tmp_path):
    ids = [1] * 8
    outputs = ["Rating: 2\nOrientation: Speech-Oriented"] + ["Rating: 1\nExplanation2: unclear"] * 7
    reask = [""] + ["Good."] * 7
    [rec] = score_files([project_layout_file(tmp_path / "m__j.csv", ids, outputs, reask=reask)])
    assert rec["best_mean"] == 1.0  # the re-ask answers give Both for the 1s
    assert rec["best_mean_ungated"] == 2.0
    rows = read_judged(tmp_path / "m__j.csv")
    assert rows["orientation_source"].tolist() == ["judge"] + ["reask"] * 7


def test_average_over_judges_and_json_cli(tmp_path, capsys):
    paths = []
    for seed, judge in enumerate(["llama", "qwen", "mistral"]):
        ids, outputs = make_rows(seed, clips=range(1, 11))
        paths.append(str(original_layout_file(tmp_path / f"qwen2audio__{judge}.csv", ids, outputs)))
    assert main(["score", *paths, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["judge"] for r in records] == ["llama", "qwen", "mistral", "Average"]
    assert all(set(SCORE_KEYS) <= set(r) for r in records)
    avg = records[-1]
    assert avg["best_mean"] == pytest.approx(sum(r["best_mean"] for r in records[:3]) / 3)
    assert avg["both_pct"] == pytest.approx(sum(r["both_pct"] for r in records[:3]) / 3)
    assert main(["score", *paths]) == 0
    text = capsys.readouterr().out
    assert "Average" in text and "best-mean" in text


def test_cli_model_judge_override(tmp_path, capsys):
    ids, outputs = make_rows(5, clips=[1, 2])
    path = original_layout_file(tmp_path / "whatever.csv", ids, outputs)
    assert main(["score", str(path), "--json", "--model", "SALMONN", "--judge", "Qwen2.5-72B"]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert (rec["model"], rec["judge"]) == ("SALMONN", "Qwen2.5-72B")


def _line(df: pd.DataFrame, row: int) -> int:
    """The line an editor shows for data row ``row`` (the judge answers before it span several lines)."""
    return 2 + row + sum(str(v).count("\n") for v in df.iloc[:row].to_numpy().ravel())


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda df: df.drop(columns=["llama3_extract"]), "not a judged table"),
        (lambda df: df.drop(columns=["prompt"]), "lacks column(s) ['prompt']"),
        (lambda df: df.drop(index=5), "clip 1 lacks instruction(s) [6]"),
        (lambda df: df.assign(id=df["id"].replace({"2": "81"})), lambda df: f"line {_line(df, 8)}, column 'id': '81'"),
        (lambda df: df.assign(id=df["id"].replace({"1": "0"})), "line 2, column 'id': '0'"),
        (
            lambda df: df.assign(prompt=df["prompt"].where(df.index != 3, "What is happening?")),
            lambda df: f"line {_line(df, 3)}, column 'prompt'",
        ),
        (lambda df: pd.concat([df, df.iloc[[0]]]), "clip 1 has instruction 1 more than once"),
    ],
)
def test_bad_input_names_file_line_column(tmp_path, capsys, mutate, needle):
    ids, outputs = make_rows(1, clips=[1, 2])
    path = original_layout_file(tmp_path / "bad.csv", ids, outputs)
    df = mutate(pd.read_csv(path, dtype=str, keep_default_na=False))
    df.to_csv(path, index=False)
    needle = needle(df) if callable(needle) else needle
    with pytest.raises(TableError) as err:
        score_files([path])
    assert needle in str(err.value) and str(path) in str(err.value)
    assert main(["score", str(path)]) == 1
    assert needle in capsys.readouterr().err


def test_non_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    ids, outputs = make_rows(1, clips=[1])
    original_layout_file(path, ids, outputs)
    path.write_bytes(path.read_bytes().replace(b"walking", "caf\u00e9".encode("latin-1")))
    with pytest.raises(TableError, match=r"latin1.csv: line 2: not UTF-8"):
        score_files([path])


def test_same_model_and_judge_in_two_files(tmp_path):
    ids, outputs = make_rows(1, clips=[1])
    a = project_layout_file(tmp_path / "a.csv", ids, outputs)
    b = project_layout_file(tmp_path / "b.csv", ids, outputs)
    with pytest.raises(TableError, match="also in"):
        score_files([a, b])


def test_empty_model_cell(tmp_path):
    ids, outputs = make_rows(1, clips=[1])
    path = project_layout_file(tmp_path / "a.csv", ids, outputs, model="")
    with pytest.raises(TableError, match="line 2, column 'model': empty"):
        score_files([path])


def test_paper_numbers_are_consistent():
    from jasco_utils.analysis.paper import DEPENDENCE_AVERAGE, TABLE2, table2_frame

    t = table2_frame()
    assert list(t.index) == ["Llama-3.1-70B-Instruct", "Qwen2.5-72B-Instruct", "Mistral-123B-Instruct", "Average"]
    # Best-Mean over 80 clips is a multiple of 1/80. The published Average is the mean of the
    # unrounded per-judge values: e.g. WavLLM 0.49, 0.33, 0.13 average 0.3167 when rounded
    # first, but 39/80, 26/80, 10/80 average 0.3125, printed 0.31.
    for model in t.columns:
        candidates = [
            [k / 80 for k in range(161) if round(k / 80 + 1e-9, 2) == t.loc[judge, model]] for judge in t.index[:3]
        ]
        assert all(candidates), model
        averages = {round(sum(c) / 3 + 1e-9, 2) for c in __import__("itertools").product(*candidates)}
        assert t.loc["Average", model] in averages, model
    assert all(sum(v) == 100 for v in DEPENDENCE_AVERAGE.values())
    assert TABLE2["Average"]["Qwen2-Audio"] == 1.23
