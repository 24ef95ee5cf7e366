"""The analysis stage (notebooks/03_analysis): a run's judged tables -> Table II, Figure 2, statistics.

- :func:`run_analysis`: the paper's results (Wang et al., arXiv:2409.14526): the scores,
  Table II, Figure 2, and a provenance file beside them.
- :func:`run_statistics`: what the paper lacks, written beside Table II: bootstrap
  intervals, judge agreement, paired comparisons, prompt sensitivity, unsolved clips.
- :func:`write_results`: the run's numbers in one file, ``RUN_DIR/results.json``.

When the run has a judge check (``RUN_DIR/judge_check``, :mod:`jasco_utils.analysis.judge_check`),
Table II's footnote and the provenance give each judge's accuracy on it. When the check finds
some of the run's judges not usable (and some usable), Table II, Figure 2 and the intervals
add ``Average (usable judges)``, the mean over the usable judges, beside the all-judge
``Average`` (kept as the paper computes it); the footnote, the provenance and ``results.json``
(``averages``) name the judges each covers. Without a check, or with every judge usable, the
results are as before.

Both read a run's judged tables (:class:`jasco_utils.core.paths.Run`: ``RUN_DIR/judged/
MODEL__JUDGE.csv``, without the original-layout copies) and write under a figures folder
(default ``RUN_DIR/figures``, so that runs never overwrite each other's results).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from jasco_utils.analysis import agreement, bootstrap, comparisons, difficulty, judge_check, sensitivity, usage
from jasco_utils.analysis.averages import AVERAGE, AVERAGES, USABLE_AVERAGE, usable_subset, with_usable_average
from jasco_utils.analysis.metrics import in_order
from jasco_utils.analysis.scoring import scores_from_rows
from jasco_utils.core.io import atomic_open, write_csv
from jasco_utils.core.paths import ORIGINAL_SUFFIX, dataset_dir
from jasco_utils.report import plots
from jasco_utils.report.tables import (
    dataset_checksum,
    table2,
    usable_average_note,
    write_provenance,
    write_table2,
)
from jasco_utils.run import Run


class RunDescription(Protocol):
    """What the analysis needs of a run configuration (:class:`jasco_utils.config.RunConfig`)."""

    name: str
    path: Path
    text: str
    paper: bool


#: What the provenance gives of each ALLM (from its outputs table) and each judge (from its judged tables).
_ALLM_FACTS = ("model", "allm_model", "engine", "engine_version", "sampling")
_JUDGE_FACTS = (
    "judge",
    "judge_model",
    "engine",
    "engine_version",
    "template",
    "template_sha256",
    "sampling",
    "structured",
)


def averages_covered(scores: pd.DataFrame, usable: list[str] | None) -> dict[str, list[str]] | None:
    """The judges each average of ``scores`` covers, when they hold ``Average (usable judges)`` records.

    Args:
        scores: Score records, with the averages
            (:func:`jasco_utils.analysis.averages.with_usable_average`).
        usable: The judges the run's judge check finds usable
            (:func:`jasco_utils.analysis.judge_check.usable_judges`).

    Returns:
        ``{"Average": [all judges], "Average (usable judges)": [usable judges]}``, judges in
        order of appearance; ``None`` when there is no usable-judge average.
    """
    covered = usable_subset(scores["judge"], usable)
    if covered is None or not (scores["judge"] == USABLE_AVERAGE).any():
        return None
    return {AVERAGE: in_order(j for j in scores["judge"] if j not in AVERAGES), USABLE_AVERAGE: covered}


def run_analysis(
    config: RunDescription,
    run_dir: str | os.PathLike[str],
    judged: list[Path] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    data_dir: str | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Score the judged tables; write Table II, Figure 2, the scores and a provenance file.

    When the run's judge check finds some judges not usable, the scores, Table II and
    Figure 2 hold ``Average (usable judges)`` beside ``Average``
    (:func:`jasco_utils.analysis.averages.with_usable_average`), and the footnote and the
    provenance (``averages``) name the judges each covers.

    Args:
        config: The run configuration (its ``name``, ``path``, ``text`` and whether it is
            the ``paper``'s, which adds the published numbers to Table II).
        run_dir: The run's folder.
        judged: The judged tables (default: the run's, :meth:`jasco_utils.core.paths.Run.judged_files`).
        figures_dir: Where the results go.
        data_dir: The dataset folder (for its checksum in the provenance).
        started: When the run started (``time.time()``), for the time taken.

    Returns:
        ``scores`` (the score records as a DataFrame), ``table2``, ``footnote`` (the judge
        check's accuracies under Table II, "" without one), ``averages``
        (:func:`averages_covered`; ``None`` without a usable-judge average) and the written
        ``paths``.
    """
    layout = Run(run_dir)
    figures_dir = Path(figures_dir or layout.figures_dir)
    judged = layout.judged_files() if judged is None else [p for p in judged if not p.name.endswith(ORIGINAL_SUFFIX)]
    run = Run(run_dir)
    rows = run.scored(judged)
    usable = judge_check.usable_judges(run_dir)
    scores = with_usable_average(scores_from_rows(rows), usable)
    table = table2(scores)
    footnote = judge_check.check_footnote(run_dir)
    averages = averages_covered(scores, usable)
    if averages:
        footnote += " " + usable_average_note(averages[AVERAGE], averages[USABLE_AVERAGE])
    paths = write_table2(table, figures_dir, with_paper=config.paper, footnote=footnote)
    paths += plots.write_figure2(scores, figures_dir, title=f"Modality dependence ({config.name} configuration)")
    with atomic_open(figures_dir / "scores.json", "w", encoding="utf-8") as fh:
        json.dump(json.loads(scores.to_json(orient="records")), fh, indent=2)
    paths.append(figures_dir / "scores.json")
    judged_all = run.judged(files=judged) if judged else pd.DataFrame()
    outputs = [g for _, g in run.outputs().groupby("model", sort=False)] if layout.output_files() else []
    facts = {
        "configuration": config.name,
        "configuration_file": str(config.path),
        "configuration_text": config.text,
        "dataset": str(dataset_dir(data_dir)),
        "dataset_sha256": dataset_checksum(dataset_dir(data_dir)),
        "clips": sorted(int(c) for c in rows["id"].unique()),
        "allms": [{k: str(o[k].iloc[0]) for k in _ALLM_FACTS if k in o} for o in outputs if len(o)],
        "judges": [
            {k: str(g[k].iloc[0]) for k in _JUDGE_FACTS if k in g} for _, g in judged_all.groupby("judge", sort=False)
        ]
        if len(judged_all)
        else [],
        "judged_files": [str(p) for p in judged],
        "judge_check": footnote or None,
        "seconds": round(time.time() - started, 1) if started else None,
        "not_the_papers_results": not config.paper,
    }
    if averages:
        facts["averages"] = averages
    paths.append(write_provenance(figures_dir / "provenance.json", **facts))
    return {"scores": scores, "table2": table, "footnote": footnote, "averages": averages, "paths": paths}


def run_statistics(
    run_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The statistics the paper lacks, written beside Table II.

    Writes ``table2_ci.{csv,png}`` (95% bootstrap intervals over clips; with ``Average (usable
    judges)`` when the run's judge check finds some judges not usable), ``agreement.csv``
    and ``agreement.png`` (judge agreement; with two or more judges), ``prompt_sensitivity.png``,
    ``best_of_k.png``, ``comparisons.csv`` (paired tests between ALLMs; with two or more)
    and ``unsolved_clips.csv``.

    Returns:
        The written ``paths`` and the tables: ``ci``, ``alpha``/``kappa``/``offsets`` (two or
        more judges), ``comparisons`` (two or more ALLMs), ``per_instruction``,
        ``best_of_k``, ``mean_vs_best``, ``wording``, ``unsolved``.
    """
    figures_dir = Path(figures_dir or Run(run_dir).figures_dir)
    rows = Run(run_dir).scored()
    out: dict[str, Any] = {"paths": []}

    def save(fig, name: str) -> None:
        out["paths"].append(plots.save_figure(fig, figures_dir / name, dpi=130))

    usable = judge_check.usable_judges(run_dir)
    out["ci"] = bootstrap.bootstrap_scores(rows, n_resamples=n_resamples, seed=seed, usable=usable)
    out["paths"].append(write_csv(out["ci"], figures_dir / "table2_ci.csv"))
    save(plots.plot_table2_with_ci(out["ci"]), "table2_ci.png")
    if rows["judge"].nunique() >= 2:
        out["alpha"] = agreement.krippendorff_alphas(rows)
        out["kappa"] = agreement.cohen_kappas(rows)
        out["offsets"] = agreement.judge_offsets(rows)
        out["paths"].append(write_csv(out["alpha"], figures_dir / "agreement.csv"))
        save(plots.plot_agreement_heatmap(out["kappa"]), "agreement.png")
    if rows["model"].nunique() >= 2:
        out["comparisons"] = comparisons.compare_models(rows, n_resamples=n_resamples, seed=seed)
        out["paths"].append(write_csv(out["comparisons"], figures_dir / "comparisons.csv"))
    out["per_instruction"] = sensitivity.instruction_means(rows)
    save(plots.plot_prompt_sensitivity(out["per_instruction"]), "prompt_sensitivity.png")
    out["best_of_k"] = sensitivity.best_of_k(rows)
    save(plots.plot_best_of_k(out["best_of_k"]), "best_of_k.png")
    out["mean_vs_best"] = sensitivity.mean_vs_best(rows)
    out["wording"] = sensitivity.wording_test(rows, n_resamples=min(n_resamples, 2000), seed=seed)
    out["unsolved"] = difficulty.unsolved_clips(rows)
    out["paths"].append(write_csv(out["unsolved"], figures_dir / "unsolved_clips.csv"))
    return out


def write_results(run_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str] | None = None) -> Path:
    """Gather a run's numbers into one file, ``RUN_DIR/results.json``.

    Reads what :func:`run_analysis`, :func:`run_statistics` and the judge check wrote in
    ``figures_dir`` (default ``RUN_DIR/figures``): ``table2`` (one record per judge and the
    Average), ``scores`` (per ALLM and judge: Best-Mean, dependence, counts), ``averages``
    (only when Table II has ``Average (usable judges)``: the judges each average covers,
    :func:`averages_covered`), ``intervals``
    (the bootstrap intervals, when computed), ``judge_check`` (when the run has one),
    ``interventions`` (only when some ALLM answered under a condition: Figure 3's numbers per ALLM,
    judge and condition, the judges' labels held against them and the clips left out,
    :func:`jasco_utils.report.interventions.run_interventions`),
    ``provenance`` (configuration, dataset checksum, models, engines, code version),
    ``usage`` (rows, calls, tokens, wall time, GPU-seconds and cost per model and stage, and
    their totals: :func:`jasco_utils.analysis.usage.usage_report`) and ``files``
    (everything in ``figures_dir``).

    Raises:
        FileNotFoundError: :func:`run_analysis` has not written Table II there yet.
    """
    layout = Run(run_dir)
    figures_dir = Path(figures_dir or layout.figures_dir)
    if not (figures_dir / "table2.csv").is_file():
        raise FileNotFoundError(f"{figures_dir}: no table2.csv; run the analysis (notebook 03) first")

    def read_json(name: str) -> Any:
        path = figures_dir / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def read_table(name: str) -> list[dict[str, Any]] | None:
        path = figures_dir / name
        return json.loads(pd.read_csv(path).to_json(orient="records")) if path.is_file() else None

    provenance = read_json("provenance.json")
    averages = (provenance or {}).get("averages")
    interventions = read_json("interventions.json")
    results = {
        "run_dir": str(layout.root.resolve()),
        "table2": read_table("table2.csv"),
        "scores": read_json("scores.json"),
        **({"averages": averages} if averages else {}),
        "intervals": read_table("table2_ci.csv"),
        "judge_check": read_json("judge_check.json"),
        **({"interventions": interventions} if interventions else {}),
        "provenance": provenance,
        "usage": usage.usage_report(run_dir),
        "files": sorted(str(p.resolve()) for p in figures_dir.iterdir() if p.is_file()),
    }
    with atomic_open(layout.results, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return layout.results


def list_runs(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The runs in a folder (``runs/``; folders with a manifest, outputs or judged tables), one
    row each: ``run``, ``ALLMs`` (outputs tables),
    ``judged`` (judged tables), ``results`` (whether ``results.json`` is there) and
    ``Table II average`` (each ALLM's Best-Mean averaged over judges, from ``results.json``)."""
    rows = []
    for run in sorted(Path(runs_dir).glob("*")) if Path(runs_dir).is_dir() else []:
        layout = Run(run)
        if not (layout.manifest_path.is_file() or layout.outputs_dir.is_dir() or layout.judged_dir.is_dir()):
            continue  # not a run
        try:
            results = json.loads(layout.results.read_text(encoding="utf-8"))
            avg = next((r for r in results.get("table2") or [] if r.get("LLM-Judge") == "Average"), {})
        except (OSError, ValueError):
            results, avg = None, {}
        rows.append(
            {
                "run": run.name,
                "ALLMs": len(layout.output_files()),
                "judged": len(layout.judged_files()),
                "results": "yes" if results else "no",
                "Table II average": ", ".join(
                    f"{k} {v:.2f}" for k, v in avg.items() if k != "LLM-Judge" and isinstance(v, float)
                )
                or "-",
            }
        )
    return pd.DataFrame(rows, columns=["run", "ALLMs", "judged", "results", "Table II average"])
