"""The end-to-end run: manifest -> ALLM outputs -> judgements -> Table II and Figure 2.

Each step reads files the previous one wrote, so any step can be re-run alone, and each
model (every ALLM, every judge) runs in its own process (``python -m jasco_utils.cli``): a
model's memory, GPU memory included, is really released before the next loads, and vLLM's
spawned workers need no ``__main__`` guard in a notebook kernel. All calls go through the
same call store (``data/processed/calls.sqlite`` by default), so a re-run is fast and an
interrupted one resumes.

Run configurations are TOML files in ``jasco_utils/configs/runs/`` (``cpu``, ``paper``) or
any path: which clips, which ALLMs (``vllm``/``openai`` models, the ``cascade`` baseline, or
``import`` of answers made elsewhere), which judges, and sampling settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from jasco_utils.paths import FIGURES_DIR, PACKAGE_DIR, PROCESSED_DIR, PROJECT_ROOT, dataset_dir

#: Folder of the shipped run configurations.
RUN_CONFIGS_DIR = PACKAGE_DIR / "configs" / "runs"
#: The call store every run shares (cache and resume).
DEFAULT_STORE = PROCESSED_DIR / "calls.sqlite"


@dataclass
class RunConfig:
    """A named run configuration (see the files in ``configs/runs``)."""

    name: str
    path: Path
    description: str = ""
    clips: list[int] | None = None  # None: all 80
    paper: bool = False
    allms: list[dict[str, Any]] = field(default_factory=list)
    judges: list[str] = field(default_factory=list)
    judge_structured: str | None = None
    judge_max_tokens: int = 1000
    judge_explanation_chars: int | None = None
    allm_max_tokens: int = 512
    text: str = ""


def load_run_config(name_or_path: str | os.PathLike[str]) -> RunConfig:
    """Load ``configs/runs/NAME.toml`` or a TOML file at a path.

    Raises:
        ValueError: Unknown name, unreadable file or a malformed entry (the message says which).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = RUN_CONFIGS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in RUN_CONFIGS_DIR.glob("*.toml"))
        raise ValueError(f"no run configuration {str(name_or_path)!r}; shipped ones: {known}, or give a .toml path")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from None
    clips = raw.get("clips", "all")
    if clips != "all" and not (isinstance(clips, list) and all(isinstance(c, int) for c in clips)):
        raise ValueError(f"{path}: clips must be \"all\" or a list of clip ids")
    for i, allm in enumerate(raw.get("allms", [])):
        if allm.get("kind") not in ("vllm", "openai", "cascade", "import") or "name" not in allm:
            raise ValueError(f"{path}: allms[{i}] needs a name and a kind of vllm, openai, cascade or import")
    judging = raw.get("judging", {})
    return RunConfig(
        name=raw.get("name", path.stem),
        path=path,
        description=raw.get("description", ""),
        clips=None if clips == "all" else clips,
        paper=bool(raw.get("paper", False)),
        allms=list(raw.get("allms", [])),
        judges=list(judging.get("judges", [])),
        judge_structured=judging.get("structured"),
        judge_max_tokens=int(judging.get("max_tokens", 1000)),
        judge_explanation_chars=judging.get("max_explanation_chars"),
        allm_max_tokens=int(raw.get("allm_sampling", {}).get("max_tokens", 512)),
        text=text,
    )


def jasco(*args: str, echo: bool = True) -> str:
    """Run ``jasco ARGS`` in its own process; return its output.

    Raises:
        RuntimeError: The command failed; the message holds the end of its output.
    """
    cmd = [sys.executable, "-m", "jasco_utils.cli", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "TQDM_DISABLE": os.environ.get("TQDM_DISABLE", "1")})
    if echo and proc.stdout.strip():
        print(proc.stdout.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"`jasco {' '.join(map(str, args))}` failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def prepare_manifest(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                     all_clips: bool = False) -> Path:
    """Write the run's manifest (its clips x 8 instructions) to ``RUN_DIR/manifest.csv``."""
    path = Path(run_dir) / "manifest.csv"
    args = ["manifest", "--out", path, "--data-dir", str(dataset_dir(data_dir))]
    if config.clips and not all_clips:
        args += ["--clips", ",".join(map(str, config.clips))]
    jasco(*args)
    return path


def run_inference(config: RunConfig, run_dir: str | os.PathLike[str], data_dir: str | None = None,
                  all_clips: bool = False, store: str | os.PathLike[str] = DEFAULT_STORE) -> list[Path]:
    """Produce every ALLM's outputs table (one process per ALLM); return their paths."""
    run_dir = Path(run_dir)
    manifest = prepare_manifest(config, run_dir, data_dir, all_clips)
    data = str(dataset_dir(data_dir))
    outputs = []
    for allm in config.allms:
        out = run_dir / "outputs" / f"{allm['name']}.csv"
        common = ["infer", manifest, "--name", allm["name"], "--out", out, "--data-dir", data]
        kind = allm["kind"]
        if kind == "import":
            src = Path(allm["path"])
            src = src if src.is_absolute() else PROJECT_ROOT / src
            if not src.is_file():
                if allm.get("optional"):
                    print(f"{allm['name']}: no answers at {src}; skipped (run the model elsewhere and put them there)")
                    continue
                raise FileNotFoundError(f"{allm['name']}: no answers at {src}")
            jasco(*common, "--import", src)
        else:
            gen = ["--store", store, "--max-tokens", str(allm.get("max_tokens", config.allm_max_tokens))]
            if kind == "cascade":
                args = [*common, "--cascade", "--llm-engine", allm.get("llm_engine", "embedded"), *gen]
                if allm.get("llm_model"):
                    args += ["--llm-model", allm["llm_model"]]
            else:
                args = [*common, "--engine", kind, "--model", allm["model"], *gen]
            for key, value in allm.get("options", {}).items():
                for v in value if isinstance(value, list) else [value]:
                    args += [f"--{key.replace('_', '-')}", str(v)]
            jasco(*args)
        outputs.append(out)
    return outputs


def run_judging(config: RunConfig, run_dir: str | os.PathLike[str], outputs: list[Path] | None = None,
                store: str | os.PathLike[str] = DEFAULT_STORE) -> list[Path]:
    """Judge every outputs table with every judge (one process per judge and table)."""
    run_dir = Path(run_dir)
    outputs = outputs if outputs is not None else sorted((run_dir / "outputs").glob("*.csv"))
    judged = []
    for out in outputs:
        for judge in config.judges:
            args = ["judge", out, "--judge", judge, "--out-dir", run_dir / "judged", "--store", store,
                    "--max-tokens", str(config.judge_max_tokens)]
            if config.judge_structured:
                args += ["--structured", config.judge_structured]
            if config.judge_explanation_chars:
                args += ["--max-explanation-chars", str(config.judge_explanation_chars)]
            jasco(*args)
            judged.append(run_dir / "judged" / f"{Path(out).stem}__{judge}.csv")
    return judged


def run_analysis(config: RunConfig, run_dir: str | os.PathLike[str], judged: list[Path] | None = None,
                 figures_dir: str | os.PathLike[str] = FIGURES_DIR, data_dir: str | None = None,
                 started: float | None = None) -> dict[str, Any]:
    """Score the judged tables; write Table II, Figure 2, the scores and a provenance file.

    Returns:
        ``scores`` (the score records as a DataFrame), ``table2``, and the written ``paths``.
    """
    from jasco_utils.analysis.report import dataset_checksum, table2, write_figure2, write_provenance, write_table2
    from jasco_utils.analysis.scoring import read_judged_files, scores_from_rows

    run_dir, figures_dir = Path(run_dir), Path(figures_dir)
    judged = judged if judged is not None else sorted((run_dir / "judged").glob("*__*.csv"))
    judged = [p for p in judged if not p.name.endswith(".original.csv")]
    rows = read_judged_files(judged)
    scores = scores_from_rows(rows)
    table = table2(scores)
    paths = write_table2(table, figures_dir, with_paper=config.paper)
    paths += write_figure2(scores, figures_dir, title=f"Modality dependence ({config.name} configuration)")
    with open(figures_dir / "scores.json", "w", encoding="utf-8") as fh:
        json.dump(json.loads(scores.to_json(orient="records")), fh, indent=2)
    paths.append(figures_dir / "scores.json")
    frames = [pd.read_csv(p, keep_default_na=False) for p in judged]
    judged_all = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    outputs = [pd.read_csv(p, keep_default_na=False) for p in sorted((run_dir / "outputs").glob("*.csv"))]
    facts = {
        "configuration": config.name,
        "configuration_file": str(config.path),
        "configuration_text": config.text,
        "dataset": str(dataset_dir(data_dir)),
        "dataset_sha256": dataset_checksum(dataset_dir(data_dir)),
        "clips": sorted(int(c) for c in rows["id"].unique()),
        "allms": [
            {k: str(o[k].iloc[0]) for k in ("model", "allm_model", "engine", "engine_version", "sampling") if k in o}
            for o in outputs if len(o)
        ],
        "judges": [
            {k: str(g[k].iloc[0]) for k in ("judge", "judge_model", "engine", "engine_version", "template",
                                             "template_sha256", "sampling", "structured") if k in g}
            for _, g in judged_all.groupby("judge", sort=False)
        ] if len(judged_all) else [],
        "judged_files": [str(p) for p in judged],
        "seconds": round(time.time() - started, 1) if started else None,
        "not_the_papers_results": not config.paper,
    }
    paths.append(write_provenance(figures_dir / "provenance.json", **facts))
    return {"scores": scores, "table2": table, "paths": paths}


def run_statistics(run_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str] = FIGURES_DIR,
                   n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The statistics the paper lacks (:mod:`jasco_utils.analysis.stats`), written beside Table II.

    Writes ``table2_ci.{csv,png}`` (95% bootstrap intervals over clips), ``agreement.csv``
    and ``agreement.png`` (judge agreement; with two or more judges), ``prompt_sensitivity.png``,
    ``best_of_k.png``, ``comparisons.csv`` (paired tests between ALLMs; with two or more)
    and ``unsolved_clips.csv``.
    """
    from jasco_utils.analysis import stats
    from jasco_utils.io import write_csv
    from jasco_utils.analysis.scoring import read_judged_files

    run_dir, figures_dir = Path(run_dir), Path(figures_dir)
    judged = [p for p in sorted((run_dir / "judged").glob("*__*.csv")) if not p.name.endswith(".original.csv")]
    rows = read_judged_files(judged)
    out: dict[str, Any] = {"paths": []}

    def save(fig, name: str) -> None:
        path = figures_dir / name
        fig.savefig(path, dpi=130, bbox_inches="tight")
        out["paths"].append(path)

    out["ci"] = stats.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed)
    out["paths"].append(write_csv(out["ci"], figures_dir / "table2_ci.csv"))
    save(stats.plot_table2_with_ci(out["ci"]), "table2_ci.png")
    if rows["judge"].nunique() >= 2:
        out["alpha"] = stats.krippendorff_alphas(rows)
        out["kappa"] = stats.cohen_kappas(rows)
        out["offsets"] = stats.judge_offsets(rows)
        out["paths"].append(write_csv(out["alpha"], figures_dir / "agreement.csv"))
        save(stats.plot_agreement_heatmap(out["kappa"]), "agreement.png")
    if rows["model"].nunique() >= 2:
        out["comparisons"] = stats.compare_models(rows, n_resamples=n_resamples, seed=seed)
        out["paths"].append(write_csv(out["comparisons"], figures_dir / "comparisons.csv"))
    out["per_instruction"] = stats.instruction_means(rows)
    save(stats.plot_prompt_sensitivity(out["per_instruction"]), "prompt_sensitivity.png")
    out["best_of_k"] = stats.best_of_k(rows)
    save(stats.plot_best_of_k(out["best_of_k"]), "best_of_k.png")
    out["mean_vs_best"] = stats.mean_vs_best(rows)
    out["wording"] = stats.wording_test(rows, n_resamples=min(n_resamples, 2000), seed=seed)
    out["unsolved"] = stats.unsolved_clips(rows)
    out["paths"].append(write_csv(out["unsolved"], figures_dir / "unsolved_clips.csv"))
    return out
