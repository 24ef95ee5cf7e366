"""The command line as a user meets it: folders and Parquet for score/compare, the listing
commands, help for every option, a closed pipe, runs that keep their own results."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file

from jasco_utils.analysis.scoring import score_files
from jasco_utils.cli import build_parser, main
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.judging.tables import expand_judged
from jasco_utils.report.results import write_results
from jasco_utils.run import Run


@pytest.fixture
def judged_run(tmp_path):
    """A run folder with judged tables of two ALLMs by two judges, each as CSV and Parquet."""
    run = tmp_path / "run"
    layout = Run(run)
    layout.judged_dir.mkdir(parents=True)
    for seed, (model, judge) in enumerate([(m, j) for m in ("A", "B") for j in ("j1", "j2")]):
        ids, outputs = make_rows(seed, clips=range(1, 6))
        path = project_layout_file(layout.judged_path(model, judge), ids, outputs, model=model, judge=judge)
        pd.read_csv(path, keep_default_na=False).to_parquet(path.with_suffix(".parquet"))
    return run


def _score_json(capsys, *args) -> list[dict]:
    assert main(["score", "--json", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_takes_a_run_folder_a_judged_folder_and_parquet(judged_run, capsys):
    judged = Run(judged_run).judged_dir
    csvs = sorted(judged.glob("*.csv"))
    expected = _score_json(capsys, *csvs)
    assert len(expected) == 6  # 2 ALLMs x 2 judges, and each ALLM's average
    assert _score_json(capsys, judged_run) == expected
    assert _score_json(capsys, judged) == expected
    assert _score_json(capsys, *sorted(judged.glob("*.parquet"))) == expected
    # judged/*: each table as CSV and Parquet is one table, read once
    assert expand_judged(sorted(judged.iterdir())) == csvs
    assert score_files(csvs) == score_files(sorted(judged.glob("*.parquet")))


def test_score_names_what_is_missing(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope")]) == 1
    assert "no such judged table file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["score", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "no judged tables" in err and "Traceback" not in err
    bad = tmp_path / "x__j.parquet"
    bad.write_text("not parquet")
    with pytest.raises(TableError, match="cannot be read as Parquet"):
        score_files([bad])


def test_compare_takes_a_run_folder(judged_run, capsys):
    assert main(["compare", "A", "B", str(judged_run), "--json", "--n-resamples", "99"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_a"] == "A" and result["model_b"] == "B"


def test_a_closed_pipe_ends_quietly(judged_run):
    cmd = f"{sys.executable} -m jasco_utils.cli score {judged_run} | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_every_option_has_help_and_says_its_default():
    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, p in action.choices.items():
                    yield from walk(p, f"{name} {sub}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
                yield name, action

    missing = []
    for name, action in walk(build_parser(), "jasco"):
        text = action.help or ""
        has_default = action.default not in (None, False, [], argparse.SUPPRESS)
        if not text or (has_default and "default" not in text):
            missing.append(f"{name} {action.option_strings or action.dest}")
    assert not missing, missing


def test_judges_and_allms_list_the_named_models(capsys):
    assert main(["judges"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["key", "name", "engine", "model", "template"]
    assert any(line.startswith("llama-3.1-70b ") and "meta-llama/Llama-3.1-70B-Instruct" in line for line in out)
    assert any(line.startswith("smollm2-paper ") and line.rstrip().endswith("judge_paper") for line in out)
    assert main(["allms"]) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen2-Audio-7B-Instruct" in out and "Cascade-Whisper-SmolLM2" in out


def test_results_json_and_jasco_runs(judged_run, tmp_path, capsys):
    from jasco_utils.config import load_run_config
    from jasco_utils.report.results import run_analysis

    with pytest.raises(FileNotFoundError, match="run the analysis"):
        write_results(judged_run)
    run_analysis(load_run_config("cpu"), judged_run, data_dir=str(tmp_path / "no-dataset"))
    figures = Run(judged_run).figures_dir
    assert (figures / "table2.csv").is_file() and (figures / "figure2.png").is_file()
    path = write_results(judged_run)
    results = json.loads(path.read_text())
    assert path == Run(judged_run).results
    assert {"table2", "scores", "intervals", "judge_check", "provenance", "files"} <= set(results)
    average = next(r for r in results["table2"] if r["LLM-Judge"] == "Average")
    table = pd.read_csv(figures / "table2.csv").set_index("LLM-Judge")
    assert average["A"] == pytest.approx(table.loc["Average", "A"])
    assert results["provenance"]["configuration"] == "cpu" and results["intervals"] is None

    assert main(["runs", "--runs-dir", str(judged_run.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["run", "ALLMs", "judged", "results"]
    row = out[1]
    assert row.split()[1:4] == ["0", "4", "yes"] and f"A {table.loc['Average', 'A']:.2f}" in row
    assert main(["runs", "--runs-dir", str(tmp_path / "none")]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_no_option_is_matched_by_a_prefix(tmp_path, capsys):
    """`--api-key KEY` would otherwise be read as `--api-key-env KEY`, and the key printed."""
    canary = "sk-canary-5e1f"
    with pytest.raises(SystemExit) as exit_:
        main(["judge", str(tmp_path / "o.csv"), "--engine", "openai", "--model", "m", "--api-key", canary])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unrecognized arguments: --api-key" in err
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path), "--n-res", "5"])
    assert "unrecognized arguments: --n-res" in capsys.readouterr().err
