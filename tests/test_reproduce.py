"""The notebooks and `jasco reproduce`: sources without outputs, Table II = `jasco score`,
and the CPU default executed end to end with papermill (real embedded models)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from helpers.judged_tables import make_rows, project_layout_file

from jasco_utils.analysis.scoring import score_files
from jasco_utils.core.paths import DEFAULT_STORE, NOTEBOOKS_DIR, PROJECT_ROOT, judged_files
from jasco_utils.pipeline.reproduce import load_run_config, notebooks
from jasco_utils.report.results import run_analysis
from jasco_utils.run import Run


def test_notebook_sources_have_no_outputs_and_a_parameters_cell():
    names = [p.name for p in notebooks()]
    assert names == sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) and len(names) == 4
    for name in names:
        raw = json.loads((NOTEBOOKS_DIR / name).read_text(encoding="utf-8"))
        assert all("id" in c for c in raw["cells"]), f"{name}: a cell without an id (nbformat 4.5 requires them)"
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
    modern = load_run_config("modern")  # current ALLMs, each a named one, with the paper's judges
    assert [j.key for j in modern.judges] == [j.key for j in paper.judges] and modern.clips is None
    assert len(modern.allms) >= 10 and all(s.family and s.engine == "vllm" for s in modern.allms)
    with pytest.raises(ValueError, match="no run configuration"):
        load_run_config("nope")


def test_table2_equals_jasco_score(tmp_path, real_data_dir):
    run = tmp_path / "run"
    for seed, (model, judge) in enumerate([(m, j) for m in ("A", "B") for j in ("j1", "j2", "j3")]):
        ids, outputs = make_rows(seed, clips=range(1, 11))
        project_layout_file(
            (run / "judged").mkdir(parents=True, exist_ok=True) or run / "judged" / f"{model}__{judge}.csv",
            ids,
            outputs,
            model=model,
            judge=judge,
        )
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


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, real_data_dir):
    """`jasco reproduce --config cpu` into a fresh folder: (folder, run folder, the process)."""
    pytest.importorskip("faster_whisper", reason="the cascade needs faster-whisper (make setup installs it)")
    root = tmp_path_factory.mktemp("cpu-run")
    run = root / "run"
    env = {**os.environ, "JASCO_DATA_DIR": str(real_data_dir)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jasco_utils.cli",
            "reproduce",
            "--config",
            "cpu",
            "--run-dir",
            str(run),
            "--store",
            str(root / "calls.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, run, proc


@pytest.mark.slow
def test_reproduce_cpu_default_end_to_end(cpu_run):
    """The CPU default through papermill: every notebook runs, Table II equals `jasco score`."""
    _, run, proc = cpu_run
    fig = Run(run).figures_dir
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
    for name in (
        "figure2.png",
        "figure2.pdf",
        "table2.md",
        "table2.tex",
        "provenance.json",
        "table2_ci.csv",
        "judge_check.png",
    ):
        assert (fig / name).stat().st_size > 0, name
    outputs = pd.read_csv(run / "outputs" / "Cascade-Whisper-SmolLM2.csv", keep_default_na=False)
    assert (outputs["transcript"] != "").all() and (outputs["allm_output"] != "").all()
    results = json.loads(Run(run).results.read_text())
    assert results["table2"] and results["judge_check"] and results["provenance"]["configuration"] == "cpu"
    assert (run / "browse.html").stat().st_size > 10_000


@pytest.mark.slow
def test_reproduce_shows_progress_and_ends_with_table2(cpu_run):
    """What a user watching `make run` sees: each stage's progress as it runs, then Table II."""
    _, run, proc = cpu_run
    seen = proc.stdout + proc.stderr
    assert "judging with" in seen and any(unit in seen for unit in ("row/s", "s/row")), seen[-3000:]
    assert "Kernel is running over TCP" not in seen and "Traceback" not in seen
    table = (Run(run).figures_dir / "table2.md").read_text()
    assert proc.stdout.rstrip().splitlines()[-1].startswith("(the cpu configuration")
    assert table.splitlines()[2] in proc.stdout  # Table II's header row, printed
    assert str(Run(run).results) in proc.stdout
    # the cascade's answers stop at the cpu configuration's 96 tokens: said, with the count
    truncated = pd.read_csv(Run(run).output_files()[0], keep_default_na=False)["status"].eq("truncated").sum()
    assert (f"{truncated} answer(s) cut off at max_tokens" in proc.stdout) == (truncated > 0)


@pytest.mark.slow
def test_the_cpu_default_on_a_ray_cluster_equals_the_local_run(cpu_run, real_data_dir, tmp_path):
    """The CPU default's model stages on a two-node Ray cluster, with the local run's store: every
    stage is a Ray task seeded from that store (no model is asked again), and every table is the
    local run's (Table II and Figure 2 are computed from them)."""
    from helpers.ray_cluster import local_ray_cluster
    from test_executor import assert_same_tables

    from jasco_utils.pipeline.reproduce import run_stages

    root, run, _ = cpu_run
    lines: list[str] = []
    with local_ray_cluster(tmp_path / "stage-dir", nodes=(2, 2)) as cluster:
        run_stages(
            load_run_config("cpu"),
            tmp_path / "ray-run",
            str(real_data_dir),
            store=root / "calls.sqlite",
            executor="ray",
            address=cluster.address,
            log=lines.append,
        )
    assert_same_tables(run, tmp_path / "ray-run")
    records = Run(tmp_path / "ray-run").stage_records().to_dict("records")
    assert {r["executor"] for r in records} == {"ray"} and len(records) == 5  # 1 ALLM, 2 judges, 2 checks
    new_calls = re.findall(r"\((\d+) new call\(s\)", "\n".join(lines))
    assert len(new_calls) == 5 and set(new_calls) == {"0"}, lines


@pytest.mark.slow
def test_notebooks_run_from_the_notebooks_folder(cpu_run, real_data_dir, monkeypatch):
    """As JupyterLab starts them: in notebooks/, with the default parameters (paths relative to
    the project root). The defaults name runs/cpu and data/processed/calls.sqlite: where a
    checkout has none (CI's clean clone) they are links to the CPU run made above, for the
    test's time; where it has its own, they are left alone and the notebooks get paths of
    the same form under runs/."""
    root, run, _ = cpu_run
    default_run, default_store = PROJECT_ROOT / "runs" / "cpu", DEFAULT_STORE
    free = not any(os.path.lexists(p) for p in (default_run, default_store, f"{default_store}-wal"))
    if free:
        links = {default_run: run, default_store: root / "calls.sqlite"}
        parameters: dict[str, str] = {}
    else:
        name = f"test-{os.getpid()}-{root.name}"
        links = {PROJECT_ROOT / "runs" / name: root}
        parameters = {"run_dir": f"runs/{name}/run", "store": f"runs/{name}/calls.sqlite"}
    monkeypatch.setenv("JASCO_DATA_DIR", str(real_data_dir))
    before = sorted(p.name for p in NOTEBOOKS_DIR.iterdir())
    (Run(run).figures_dir / "table2.md").unlink()
    Run(run).results.unlink()
    (run / "browse.html").unlink()
    try:
        for link, target in links.items():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=target.is_dir())
        for source in notebooks():
            declared = papermill.inspect_notebook(str(source))
            papermill.execute_notebook(
                str(source),
                str(root / f"from-notebooks-{source.name}"),
                cwd=str(NOTEBOOKS_DIR),
                parameters={k: v for k, v in parameters.items() if k in declared},
                progress_bar=False,
                kernel_name="python3",
            )
    finally:
        for link in links:
            if link.is_symlink():
                link.unlink()
    assert sorted(p.name for p in NOTEBOOKS_DIR.iterdir()) == before  # nothing written beside the notebooks
    assert (Run(run).figures_dir / "table2.md").is_file() and Run(run).results.is_file()
    assert (run / "browse.html").is_file()


@pytest.mark.slow
def test_jupyterlab_starts_and_lists_the_notebooks(tmp_path):
    """`make lab`'s server: starts on 127.0.0.1, lists the four notebooks over HTTP, stops."""
    import shutil
    import socket
    import time
    import urllib.request

    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if jupyter is None:
        pytest.skip("JupyterLab is not installed (make setup installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "jasco-test-token"
    proc = subprocess.Popen(
        [
            jupyter,
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--notebook-dir={NOTEBOOKS_DIR}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    try:
        deadline, names = time.time() + 120, None
        while time.time() < deadline and names is None:
            try:
                url = f"http://127.0.0.1:{port}/api/contents?token={token}"
                with urllib.request.urlopen(url, timeout=5) as r:
                    names = [c["name"] for c in json.load(r)["content"]]
            except OSError:
                time.sleep(1)
        assert names is not None, "JupyterLab did not answer within 120 s"
        assert [p.name for p in notebooks()] == sorted(n for n in names if n.endswith(".ipynb"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_an_installed_wheel_runs_in_an_empty_folder(cpu_run, real_data_dir, tmp_path):
    """`pip install` of the built wheel (not an editable clone): `jasco reproduce` finds the
    notebooks it carries and writes its run under the working folder, nothing beside
    site-packages. The CPU run's store is copied in, so no model is asked again."""
    import shutil
    import site
    import sqlite3

    root, _, _ = cpu_run
    source = tmp_path / "source"
    local = {".git", "runs", "data", "site", "build"}  # the clone's own folders, at its top only

    def leave_out(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == PROJECT_ROOT
        return {n for n in names if (top and (n in local or n.startswith(".venv"))) or n.endswith(".egg-info")}

    shutil.copytree(PROJECT_ROOT, source, symlinks=True, ignore=leave_out)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source], check=True)
    [wheel] = (tmp_path / "dist").glob("jasco-*.whl")
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True)
    python = env_dir / "bin" / "python"
    packages = Path(
        subprocess.check_output([python, "-c", "import site; print(site.getsitepackages()[0])"], text=True).strip()
    )
    (packages / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")  # this environment's libraries
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], check=True)
    installed = sorted(p.relative_to(packages) for p in packages.rglob("*") if "__pycache__" not in p.parts)
    where = subprocess.check_output(  # from an empty folder: not the clone's package
        [python, "-c", "import jasco_utils; print(jasco_utils.__file__)"], text=True, cwd=env_dir
    )
    assert Path(where.strip()).is_relative_to(packages), where

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(root / "calls.sqlite", work / "calls.sqlite")
    env = {k: v for k, v in os.environ.items() if k != "JASCO_HOME"} | {"JASCO_DATA_DIR": str(real_data_dir)}
    proc = subprocess.run(
        [env_dir / "bin" / "jasco", "reproduce", "--config", "cpu", "--clips", "1", "--store", "calls.sqlite"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = Run(work / "runs" / "cpu")
    assert (run.figures_dir / "table2.md").is_file() and run.results.is_file()
    assert sorted(p.name for p in run.notebooks_dir.glob("*.ipynb")) == [p.name for p in notebooks()]
    with sqlite3.connect(work / "calls.sqlite") as db, sqlite3.connect(root / "calls.sqlite") as before:
        assert (
            db.execute("SELECT COUNT(*) FROM calls").fetchone()
            == before.execute("SELECT COUNT(*) FROM calls").fetchone()
        )
    after = sorted(p.relative_to(packages) for p in packages.rglob("*") if "__pycache__" not in p.parts)
    assert after == installed  # nothing written beside site-packages
