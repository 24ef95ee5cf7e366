"""The notebooks and `jasco reproduce`: sources without outputs, Table II = `jasco score`,
and the CPU default executed end to end with papermill (real embedded models)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pandas as pd
import papermill
import pytest
from judged_tables import make_rows, project_layout_file

from jasco_utils.analysis.results import run_analysis
from jasco_utils.analysis.scoring import score_files
from jasco_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT, judged_files
from jasco_utils.pipeline import load_run_config, notebooks


def test_notebook_sources_have_no_outputs_and_a_parameters_cell():
    names = [p.name for p in notebooks()]
    assert names == sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) and len(names) == 4
    for name in names:
        nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        assert "parameters" in nb.cells[1].metadata.get("tags", []), f"{name}: 2nd cell is not the parameters cell"
        declared = papermill.inspect_notebook(str(NOTEBOOKS_DIR / name))  # what papermill can parse (and pass)
        body = "\n".join(c.source for c in code[1:])
        unused = [p for p in declared if not re.search(rf"\b{p}\b", body)]
        assert declared and not unused, f"{name}: parameters {unused} are declared but never used"


def test_shipped_configurations_load():
    cpu, paper = load_run_config("cpu"), load_run_config("paper")
    assert cpu.clips and len(cpu.clips) < 80 and not cpu.paper
    assert paper.clips is None and paper.paper
    assert [j.key for j in paper.judges] == ["llama-3.1-70b", "qwen2.5-72b", "mistral-large-2411"]
    with pytest.raises(ValueError, match="no run configuration"):
        load_run_config("nope")


def test_table2_equals_jasco_score(tmp_path, real_data_dir):
    run = tmp_path / "run"
    for seed, (model, judge) in enumerate([(m, j) for m in ("A", "B") for j in ("j1", "j2", "j3")]):
        ids, outputs = make_rows(seed, clips=range(1, 11))
        project_layout_file((run / "judged").mkdir(parents=True, exist_ok=True) or run / "judged" / f"{model}__{judge}.csv",
                            ids, outputs, model=model, judge=judge)
    result = run_analysis(load_run_config("cpu"), run, figures_dir=tmp_path / "fig", data_dir=str(real_data_dir))
    table = pd.read_csv(tmp_path / "fig" / "table2.csv").set_index("LLM-Judge")
    for rec in score_files(sorted((run / "judged").glob("*.csv"))):
        assert table.loc[rec["judge"], rec["model"]] == pytest.approx(rec["best_mean"], abs=1e-12)
    assert list(table.index) == ["j1", "j2", "j3", "Average"]
    assert (tmp_path / "fig" / "figure2.png").stat().st_size > 10_000
    prov = json.loads((tmp_path / "fig" / "provenance.json").read_text())
    assert prov["not_the_papers_results"] is True and prov["clips"] == list(range(1, 11))
    assert len(prov["dataset_sha256"]) == 64 and prov["code_version"].startswith("jasco ")
    assert len(result["scores"]) == 8


@pytest.mark.slow
def test_reproduce_cpu_default_end_to_end(tmp_path, real_data_dir):
    """The CPU default through papermill: every notebook runs, Table II equals `jasco score`."""
    pytest.importorskip("faster_whisper", reason="the cascade needs faster-whisper (make setup installs it)")
    run, fig = tmp_path / "run", tmp_path / "fig"
    env = {**os.environ, "JASCO_DATA_DIR": str(real_data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "jasco_utils.cli", "reproduce", "--config", "cpu", "--run-dir", str(run),
         "--figures-dir", str(fig), "--store", str(tmp_path / "calls.sqlite")],
        capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for source in notebooks():
        name = source.name
        nb = nbformat.read(run / "notebooks" / name, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{name}: {errors}"
    judged = judged_files(run / "judged")
    assert len(judged) == len(load_run_config("cpu").judges)
    table = pd.read_csv(fig / "table2.csv").set_index("LLM-Judge")
    for rec in score_files(judged):
        assert table.loc[rec["judge"], rec["model"]] == pytest.approx(rec["best_mean"], abs=1e-12)
    for name in ("figure2.png", "figure2.pdf", "table2.md", "table2.tex", "provenance.json", "table2_ci.csv"):
        assert (fig / name).stat().st_size > 0, name
    outputs = pd.read_csv(run / "outputs" / "Cascade-Whisper-SmolLM2.csv", keep_default_na=False)
    assert (outputs["transcript"] != "").all() and (outputs["allm_output"] != "").all()
