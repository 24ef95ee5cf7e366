"""The interventions for people: their fidelity (a table, its summary, the failing clips, a figure)
and Figure 3 (a run's ALLMs under each condition).

``jasco data interventions`` measures (:func:`jasco_utils.inference.fidelity.measure_fidelity`)
and writes with :func:`write_fidelity`; :func:`plot_fidelity` draws the figure: per clip, the
level outside the speech before and after ``sound_suppressed`` and the word error rate before and
after; per masking method, the share of the sentence's words still recognised after ``speech_masked``.

:func:`run_interventions` (the analysis notebook) measures the fidelity on a run's clips, leaves the
failing ones out, and writes Figure 3 (:func:`plot_figure3`) with its numbers
(:mod:`jasco_utils.analysis.interventions`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, AVERAGES, USABLE_AVERAGE
from jasco_utils.analysis.interventions import MEASURES, conditions_of, intervention_table, label_check
from jasco_utils.analysis.judge_check import usable_judges
from jasco_utils.analysis.metrics import in_order
from jasco_utils.core.io import atomic_open, write_csv, write_pair
from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.inference.fidelity import (
    MAX_WER_RISE,
    MAX_WORDS_LEFT,
    MIN_SUPPRESSION_DB,
    failing_clips,
    fidelity_summary,
    measure_fidelity,
)
from jasco_utils.inference.interventions import DEFAULT_MASK_METHOD, MASK_METHODS
from jasco_utils.report.plots import legend_columns, new_figure, palette, save_figure, tidy
from jasco_utils.run import Run

#: Colours: a clip that passes, one that fails.
PASS, FAIL = "#4c72b0", "#c44e52"


def plot_fidelity(table: pd.DataFrame, title: str | None = None):
    """Three panels: suppression outside speech, WER before/after, words left after masking."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1, 1.2]})
    t = table.sort_values("suppression_db").reset_index(drop=True)
    x = np.arange(len(t))
    colours = [PASS if ok else FAIL for ok in t["sound_suppressed_ok"]]
    ax1.vlines(x, t["outside_after_db"], t["outside_before_db"], colors=colours, alpha=0.6)
    ax1.scatter(x, t["outside_before_db"], s=14, color="0.4", label="before", zorder=3)
    ax1.scatter(x, t["outside_after_db"], s=14, c=colours, marker="v", label="after RNNoise", zorder=3)
    ax1.set_xticks(x, t["id"].astype(str), fontsize=5, rotation=90)
    low = float(t[["outside_before_db", "outside_after_db"]].min().min())
    ax1.set(xlabel="clip (by suppression)", ylabel="level outside speech (dBFS)", ylim=(low - 5, None))
    ax1.set_title(f"sound_suppressed: level outside speech (median drop {t['suppression_db'].median():.0f} dB)")
    ax1.legend(loc="lower right", fontsize=8)
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, len(table))
    ax2.scatter(
        table["wer_before"] + jitter,
        table["wer_after"] - jitter,
        c=[PASS if ok else FAIL for ok in table["sound_suppressed_ok"]],
        s=16,
        alpha=0.7,
    )
    top = max(1.0, float(table[["wer_before", "wer_after"]].max().max()))
    ax2.plot([0, top], [0, top], color="0.6", lw=0.8)
    ax2.plot([0, top], [MAX_WER_RISE, top + MAX_WER_RISE], color=FAIL, lw=0.8, ls="--")
    ax2.set(
        xlabel="WER, original clip", ylabel="WER, sound suppressed", xlim=(-0.05, top + 0.05), ylim=(-0.05, top + 0.05)
    )
    ax2.set_title("sound_suppressed: the words kept?")
    words = table["speech"].map(lambda s: max(1, len(str(s).split())))
    for i, m in enumerate(MASK_METHODS):
        share = table[f"{m}_ref_words_found"] / words
        ok = table[f"{m}_ok"]
        xs = i + np.random.default_rng(i).uniform(-0.25, 0.25, len(table))
        ax3.scatter(xs, share, s=14, c=[PASS if o else FAIL for o in ok], alpha=0.7)
        ax3.text(i, 1.08, f"{int(ok.sum())}/{len(ok)} pass", ha="center", fontsize=8)
    ax3.axhline(MAX_WORDS_LEFT, color=FAIL, lw=0.8, ls="--")
    ax3.set_xticks(
        range(len(MASK_METHODS)), [f"{m}{' (default)' if m == DEFAULT_MASK_METHOD else ''}" for m in MASK_METHODS]
    )
    ax3.set(ylabel="share of the sentence's words still recognised", ylim=(-0.05, 1.15))
    ax3.set_title("speech_masked: words left")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(
        title
        or f"Do the interventions do what they claim? ({len(table)} clips; red: fails: < {MIN_SUPPRESSION_DB:.0f} dB "
        f"suppressed or WER up > {MAX_WER_RISE}; > {MAX_WORDS_LEFT:.0%} of the words left)"
    )
    return fig


def write_fidelity(table: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``fidelity.csv`` (and ``.parquet``), ``fidelity_summary.csv``, ``failing_clips.json``
    and ``fidelity.png`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    csv, parquet = write_pair(table, out / "fidelity.csv")
    summary = out / "fidelity_summary.csv"
    with atomic_open(summary, "w", newline="") as fh:
        fidelity_summary(table).to_csv(fh, index=False)
    failing = out / "failing_clips.json"
    with atomic_open(failing, "w") as fh:
        json.dump({"mask_method": DEFAULT_MASK_METHOD, **failing_clips(table)}, fh, indent=2)
    return [csv, parquet, summary, failing, save_figure(plot_fidelity(table), out / "fidelity.png")]


#: Figure 3's markers: a judge's, the Average's, the usable-judge Average's.
_AVERAGE_STYLE = {AVERAGE: ("D", (0.1, 0.1, 0.1)), USABLE_AVERAGE: ("s", (0.45, 0.45, 0.45))}


def _series(table: pd.DataFrame) -> list[str]:
    judges = in_order(j for j in table["judge"] if j not in AVERAGES)
    return judges + [a for a in AVERAGES if (table["judge"] == a).any()]


def _points(ax, table: pd.DataFrame, categories: list, column: str, by: str, horizontal: bool = False) -> None:
    """One marker with its interval per judge (and Average) at each category of ``by``."""
    series = _series(table)
    colours = palette(len(series))
    width = 0.8 / max(1, len(series))
    for s, judge in enumerate(series):
        sub = table[table["judge"] == judge].set_index(by)
        here = [c for c in categories if c in sub.index and pd.notna(sub.loc[c, column])]
        pos = [categories.index(c) - 0.4 + width * (s + 0.5) for c in here]
        value = sub.loc[here, column].to_numpy(float)
        err = [value - sub.loc[here, f"{column}_ci_low"], sub.loc[here, f"{column}_ci_high"] - value]
        marker, colour = _AVERAGE_STYLE.get(judge, ("o", colours[s]))
        xy = (value, pos) if horizontal else (pos, value)
        error = {"xerr": err} if horizontal else {"yerr": err}
        ax.errorbar(*xy, **error, fmt=marker, ms=6, capsize=3, color=colour, label=judge, lw=1.2)


def _condition_labels(rows: pd.DataFrame, conditions: list[str]) -> list[str]:
    """x labels: the condition, its clips (and those left out) and (the Average's) share of
    answers changed."""
    avg = rows[rows["judge"] == AVERAGE].set_index("condition")
    labels = []
    for c in conditions:
        label = c
        if c in avg.index:
            left = len(avg.loc[c, "clips_left_out"] or [])
            label += f"\n{int(avg.loc[c, 'n_clips'])} clips" + (f" ({left} left out)" if left else "")
            if pd.notna(avg.loc[c, "answers_changed"]):
                label += f"\n{avg.loc[c, 'answers_changed']:.0%} answers changed"
        labels.append(label)
    return labels


def plot_figure3(table: pd.DataFrame, title: str | None = None):
    """Figure 3: per ALLM, Best-Mean under each condition; its reliance on the sound, the speech
    (and the audio), original - condition; and its text sufficiency, transcript only / original;
    each judge and the Average with 95 % intervals over clips.

    Args:
        table: :func:`jasco_utils.analysis.interventions.intervention_table`'s output.
        title: The figure's title.
    """
    allms = in_order(table["allm"])
    has_ratio = (table["condition"] == "transcript_only").any()
    ratios = [1.7, 1.1, 0.8] if has_ratio else [1.7, 1.1]
    fig, axes = new_figure(
        16 if has_ratio else 12.5, 4.6 * len(allms), len(allms), len(ratios), gridspec_kw={"width_ratios": ratios}
    )
    fig.get_layout_engine().set(h_pad=0.25)
    for row, allm in zip(axes, allms, strict=True):
        rows = table[table["allm"] == allm]
        conditions = in_order(rows["condition"])
        ax = row[0]
        _points(ax, rows, conditions, "best_mean", "condition")
        ax.set_xticks(range(len(conditions)), _condition_labels(rows, conditions), fontsize=7.5)
        ax.set(ylim=(-0.08, 2.08), ylabel="Best-Mean (0-2)", xlim=(-0.6, len(conditions) - 0.4))
        ax.set_title(f"{allm}: Best-Mean under each condition", fontsize=10)
        diffs = [c for c in conditions if MEASURES.get(c, ("", ""))[1] == "difference"]
        ax = row[1]
        _points(ax, rows, diffs, "difference", "condition", horizontal=True)
        ax.set_yticks(range(len(diffs)), [f"{MEASURES[c][0]}\n(original - {c})" for c in diffs], fontsize=8)
        ax.axvline(0, color="0.5", lw=0.8)
        span = max(0.5, float(np.nanmax(np.abs(rows[["difference_ci_low", "difference_ci_high"]].to_numpy()))) + 0.1)
        ax.set(xlim=(-span, span), ylim=(-0.6, len(diffs) - 0.4), xlabel="Best-Mean difference")
        ax.set_title("reliance: what taking a modality away costs", fontsize=10)
        tidy(ax, "x")
        if has_ratio:
            ax = row[2]
            _points(ax, rows, ["transcript_only"], "ratio", "condition", horizontal=True)
            ax.set_yticks([0], ["transcript only\n/ original\n(1: the transcript\nis enough)"], fontsize=8)
            ax.axvline(1, color="0.5", lw=0.8)
            ax.set(xlim=(0, max(1.5, float(np.nanmax(rows["ratio_ci_high"].fillna(1))) + 0.1)), ylim=(-0.6, 0.6))
            ax.set_xlabel("Best-Mean ratio")
            ax.set_title("text sufficiency", fontsize=10)
            tidy(ax, "x")
        tidy(row[0])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    ncol = legend_columns(labels, fig.get_figwidth())
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center", ncol=ncol)
    fig.suptitle(title or "Figure 3: modality dependence by intervention (95% intervals over clips)")
    return fig


#: The conditions whose fidelity is measured (and whose failing clips are left out).
MEASURED_CONDITIONS = ("sound_suppressed", "speech_masked")


def run_interventions(
    run_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    leave_out_failing: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
    title: str | None = None,
) -> dict[str, Any] | None:
    """A run's ALLMs under their conditions (``NAME@CONDITION``): Figure 3 and its tables.

    When the run has ``sound_suppressed`` or ``speech_masked`` answers, the interventions' fidelity
    is measured on its clips (:func:`jasco_utils.inference.fidelity.measure_fidelity`; the
    transcripts from the call store) and written beside (``fidelity.csv``, ``fidelity_summary.csv``,
    ``failing_clips.json``, ``fidelity.png``); with ``leave_out_failing`` the clips where an
    intervention fails are left out of that condition's numbers.

    Writes into ``figures_dir`` (default ``RUN_DIR/figures``): ``interventions.{csv,json}``
    (:func:`jasco_utils.analysis.interventions.intervention_table`), ``intervention_labels.csv``
    (:func:`jasco_utils.analysis.interventions.label_check`) and ``figure3.{png,pdf}``.

    Returns:
        ``table``, ``labels``, ``left_out`` (per condition, the clips left out) and the written
        ``paths``; ``None`` when no ALLM of the run answered under a condition.
    """
    layout = Run(run_dir)
    figures_dir = Path(figures_dir or layout.figures_dir)
    rows = layout.scored()
    conditions = {c for cs in conditions_of(rows["model"]).values() for c in cs}
    if not conditions:
        return None
    paths: list[Path] = []
    left_out: dict[str, list[int]] = {}
    measured = [c for c in MEASURED_CONDITIONS if c in conditions]
    if measured:
        clips = sorted(int(c) for c in rows["id"].unique())
        fidelity = measure_fidelity(clips, data_dir, store or DEFAULT_STORE, progress=False)
        paths += write_fidelity(fidelity, figures_dir)
        if leave_out_failing:
            left_out = {c: v for c, v in failing_clips(fidelity).items() if c in measured}
    outputs = layout.outputs() if layout.output_files() else None
    usable = usable_judges(run_dir)
    table = intervention_table(rows, outputs, left_out, usable, n_resamples=n_resamples, seed=seed)
    labels = label_check(rows, outputs, left_out)
    records = json.loads(table.to_json(orient="records"))
    with atomic_open(figures_dir / "interventions.json", "w", encoding="utf-8") as fh:
        json.dump(
            {"left_out": left_out, "scores": records, "labels": json.loads(labels.to_json(orient="records"))},
            fh,
            indent=2,
        )
    paths.append(figures_dir / "interventions.json")
    flat = table.assign(clips_left_out=table["clips_left_out"].map(lambda c: " ".join(map(str, c))))
    paths.append(write_csv(flat, figures_dir / "interventions.csv"))
    paths.append(write_csv(labels, figures_dir / "intervention_labels.csv"))
    fig = plot_figure3(table, title)
    paths += [save_figure(fig, figures_dir / "figure3.png"), save_figure(fig, figures_dir / "figure3.pdf")]
    return {"table": table, "labels": labels, "left_out": left_out, "paths": paths}
