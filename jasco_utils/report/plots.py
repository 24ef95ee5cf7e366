"""Every figure of the analysis, in one style: the paper's Figure 2 and the statistics' plots.

- :func:`figure2`: modality dependence (Figure 2 of Wang et al., arXiv:2409.14526): one
  panel per judge and one for their average (and one for the average over the usable judges,
  when the judge check finds some not usable), a horizontal 100% stacked bar per ALLM:
  audio-dependent (A, red), both (A-S, green), speech-dependent (S, blue), in the paper's
  colours, percentages printed on the segments.
- :func:`plot_table2_with_ci`: a metric per model with its bootstrap interval
  (:func:`jasco_utils.analysis.bootstrap.bootstrap_scores`).
- :func:`plot_agreement_heatmap`: pairwise Cohen's kappa between judges
  (:func:`jasco_utils.analysis.agreement.cohen_kappas`).
- :func:`plot_prompt_sensitivity`: mean rating per instruction
  (:func:`jasco_utils.analysis.sensitivity.instruction_means`).
- :func:`plot_best_of_k`: expected best of k answers against k
  (:func:`jasco_utils.analysis.sensitivity.best_of_k`).
- :func:`plot_judge_check`: the judge check, orientation confusion matrices per judge and
  accuracy by kind of control answer (:func:`jasco_utils.analysis.judge_check.measure`).

Each returns a matplotlib ``Figure`` drawn on the Agg canvas, without pyplot (no global
state, nothing shown); categorical colours (judges, models) come from seaborn's
colour-blind palette. :func:`save_figure` writes one atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from jasco_utils.analysis.agreement import POOLED
from jasco_utils.analysis.averages import AVERAGE, AVERAGES, USABLE_AVERAGE
from jasco_utils.analysis.judge_check import clips_text
from jasco_utils.analysis.metrics import METRICS, in_order
from jasco_utils.analysis.paper import in_paper_order
from jasco_utils.analysis.sensitivity import INSTRUCTION_WORDING, SPEECH_FIRST
from jasco_utils.core.io import atomic_open

#: Figure 2's colours: audio red, both green, speech blue (light fills, as the paper's).
COLORS = {"audio_pct": "#f4c7c3", "both_pct": "#d5e8d4", "speech_pct": "#dae8fc"}
#: Figure 2's segment edges.
EDGES = {"audio_pct": "#b85450", "both_pct": "#82b366", "speech_pct": "#6c8ebf"}
#: Figure 2's segment labels.
LABELS = {"audio_pct": "A", "both_pct": "A-S", "speech_pct": "S"}
_LEGEND = {"audio_pct": "audio-dependent (A)", "both_pct": "both (A-S)", "speech_pct": "speech-dependent (S)"}
#: Shading of speech-first instructions (Figure 2's speech blue).
_SPEECH_FIRST_SHADE = COLORS["speech_pct"]
#: What the all-judge Average is called where the usable-judge Average is shown beside it.
ALL_JUDGES_AVERAGE = "Average (all judges)"


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A Figure on an Agg canvas, outside pyplot's state, and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def legend_columns(labels: list[str], width: float, fontsize: float = 8) -> int:
    """How many legend entries fit side by side in a figure ``width`` inches wide (each: its
    marker and about 0.55 em a character), so that none is cut off at the edge.

    >>> labels = ["Reference judge (paper prompt)"] * 3
    >>> legend_columns(["a", "b", "c"], 5.0), legend_columns(labels, 5.0), legend_columns(labels, 3.0)
    (3, 2, 1)
    """
    em = fontsize / 72  # inches
    sizes = [2.5 * em + 0.55 * em * len(label) for label in labels]
    for ncol in range(len(labels), 1, -1):
        rows = [sizes[i : i + ncol] for i in range(0, len(sizes), ncol)]
        if max(sum(r) for r in rows) <= 0.95 * width:
            return ncol
    return 1


def palette(n: int) -> list:
    """``n`` categorical colours (judges, models): seaborn's colour-blind palette."""
    import seaborn as sns

    return sns.color_palette("colorblind", n)


def tidy(ax, grid: str = "y") -> None:
    """The figures' one style on ``ax``: a light grid along ``grid``, no top and right spines."""
    ax.grid(axis=grid, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _panels(n: int, width: float, height: float, **kwargs):
    """Up to two panels a row; the unused ones hidden."""
    ncols = min(2, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(width * ncols, height * nrows, nrows, ncols, **kwargs)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def save_figure(fig, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write ``fig`` atomically, in the format of ``path``'s suffix; return the path."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip("."), dpi=dpi)
    return path


def _average_labels(judges) -> dict[str, str]:
    """How the averages present in ``judges`` are shown: the all-judge Average is called
    :data:`ALL_JUDGES_AVERAGE` when the usable-judge Average is beside it."""
    present = set(judges)
    return {AVERAGE: ALL_JUDGES_AVERAGE} if USABLE_AVERAGE in present and AVERAGE in present else {}


def figure2(scores: pd.DataFrame, title: str | None = None):
    """Figure 2: modality dependence, one panel per judge and one for their average.

    As the paper's: one row of panels (judges in order, then Average), each a 100% stacked
    bar per model (A red, A-S green, S blue), the models named once on the left and their
    bars aligned across panels; no cell is left empty. When ``scores`` hold ``Average (usable
    judges)`` records, their panel comes last and the Average's is titled "Average (all judges)".

    Args:
        scores: Score records (:func:`jasco_utils.analysis.scoring.scores_from_rows`), with
            the ``Average`` records.
        title: A title over the panels.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.patches import Rectangle

    judges = in_order(j for j in scores["judge"] if j not in AVERAGES)
    panels = judges + [a for a in AVERAGES if (scores["judge"] == a).any()]
    titles = _average_labels(panels)
    models = in_paper_order(scores["model"])
    fig, axes = new_figure(1.6 + 3.4 * len(panels), 0.62 * len(models) + 1.7, 1, len(panels), sharey=True)
    for ax, panel in zip(axes.flat, panels, strict=True):
        frame = scores[scores["judge"] == panel].set_index("model")
        names = [m for m in models if m in frame.index][::-1]
        for y, model in enumerate(names):
            left = 0.0
            for key in COLORS:
                value = frame.loc[model, key]
                value = 0.0 if pd.isna(value) else float(value)
                ax.barh(y, value, left=left, height=0.5, color=COLORS[key], edgecolor=EDGES[key])
                if value >= 9:  # narrower segments: the legend and the intervals say it
                    ax.text(left + value / 2, y, LABELS[key], ha="center", va="center", fontsize=8, fontweight="bold")
                    ax.text(left + value / 2, y + 0.3, f"{value:.0f}%", ha="center", va="bottom", fontsize=8)
                left += value
            if left == 0:
                ax.text(50, y, "no Audio/Both/Speech answer", ha="center", va="center", fontsize=8, color="gray")
        ax.set_yticks(range(len(names)), names, fontweight="bold")
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.6, len(names) - 0.2)
        ax.set_xticks(range(0, 101, 25), [f"{v}%" for v in range(0, 101, 25)])
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(titles.get(panel, panel), fontsize=11, fontweight="bold" if panel in AVERAGES else "normal")
    handles = [Rectangle((0, 0), 1, 1, facecolor=COLORS[k], edgecolor=EDGES[k]) for k in COLORS]
    fig.legend(handles, list(_LEGEND.values()), loc="outside lower center", ncol=3, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def write_figure2(scores: pd.DataFrame, out_dir: str | os.PathLike[str], title: str | None = None) -> list[Path]:
    """Write ``figure2.png`` and ``figure2.pdf`` (:func:`figure2`); return their paths."""
    fig = figure2(scores, title=title)
    return [save_figure(fig, Path(out_dir) / f"figure2.{suffix}") for suffix in ("png", "pdf")]


def plot_table2_with_ci(ci_frame: pd.DataFrame, stat: str = "best_mean", title: str | None = None):
    """A metric per model with its confidence interval, one marker per judge and Average (and
    Average (usable judges), when ``ci_frame`` has it).

    Args:
        ci_frame: :func:`jasco_utils.analysis.bootstrap.bootstrap_scores`' output.
        stat: Which registered metric to draw (default Best-Mean, Table II's).
        title: Axes title (default names the interval).

    Returns:
        A matplotlib Figure.
    """
    need = [stat, f"{stat}_ci_low", f"{stat}_ci_high"]
    missing = [c for c in ["model", "judge", *need] if c not in ci_frame.columns]
    if missing:
        raise ValueError(f"ci_frame lacks column(s) {missing}; pass bootstrap_scores()'s output")
    models = in_order(ci_frame["model"])
    judges = in_order(j for j in ci_frame["judge"] if j not in AVERAGES)
    series = judges + [a for a in AVERAGES if (ci_frame["judge"] == a).any()]
    labels = _average_labels(series)
    fig, axes = new_figure(max(5.0, 1.6 * len(models) + 2), 4.0)
    ax = axes[0, 0]
    colors = palette(len(judges))
    average_colors = {AVERAGE: (0.1, 0.1, 0.1), USABLE_AVERAGE: (0.45, 0.45, 0.45)}
    width = 0.8 / max(1, len(series))
    for s, judge in enumerate(series):
        sub = ci_frame[ci_frame["judge"] == judge].set_index("model")
        xs, ys, lo, hi = [], [], [], []
        for m, model in enumerate(models):
            if model in sub.index:
                xs.append(m - 0.4 + width * (s + 0.5))
                ys.append(sub.loc[model, stat])
                lo.append(sub.loc[model, stat] - sub.loc[model, f"{stat}_ci_low"])
                hi.append(sub.loc[model, f"{stat}_ci_high"] - sub.loc[model, stat])
        is_avg = judge in AVERAGES
        ax.errorbar(
            xs,
            ys,
            yerr=[lo, hi],
            fmt=("D" if judge == AVERAGE else "s") if is_avg else "o",
            ms=7 if is_avg else 5,
            capsize=3,
            color=average_colors[judge] if is_avg else colors[s],
            label=labels.get(judge, judge),
            lw=1.6 if is_avg else 1.1,
        )
    ax.set_xticks(range(len(models)), models)
    ax.set_xlim(-0.6, len(models) - 0.4)
    metric = METRICS.get(stat)
    if metric is not None:
        low, high = metric.scale
        ax.set_ylim(low - 0.04 * (high - low), high + 0.04 * (high - low))  # a point at the scale's end stays in view
        ax.set_ylabel(metric.axis_label)
    else:
        ax.set_ylabel(stat)
    tidy(ax)
    conf = ci_frame.attrs.get("confidence")
    method = ci_frame.attrs.get("method", "bootstrap")
    ax.set_title(title or (f"{round(100 * conf)}% {method} bootstrap CI over clips" if conf else "bootstrap CI"))
    handles, labels = ax.get_legend_handles_labels()
    ncol = legend_columns(labels, fig.get_figwidth())
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center", ncol=ncol)
    return fig


def plot_agreement_heatmap(kappa_frame: pd.DataFrame, model: str | None = None, title: str | None = None):
    """Pairwise Cohen's kappa between judges as heatmaps, one per (variable, weights).

    Args:
        kappa_frame: :func:`jasco_utils.analysis.agreement.cohen_kappas`' output.
        model: Which scope to draw (default :data:`~jasco_utils.analysis.agreement.POOLED`
            when present, else the first).
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    import seaborn as sns

    if kappa_frame.empty:
        raise ValueError("kappa_frame is empty (fewer than two judges?)")
    scopes = in_order(kappa_frame["model"])
    model = model or (POOLED if POOLED in scopes else scopes[0])
    sub = kappa_frame[kappa_frame["model"] == model]
    if sub.empty:
        raise ValueError(f"no kappas for {model!r}; scopes: {scopes}")
    panels = in_order(zip(sub["variable"], sub["weights"], strict=True))
    judges = in_order([*sub["judge_a"], *sub["judge_b"]])
    n = len(judges)
    fig, axes = new_figure(max(3.5, 0.9 * n + 1.6) * len(panels) + 0.8, max(3.0, 0.8 * n + 1.6), 1, len(panels))
    for ax, (variable, weights) in zip(axes.flat, panels, strict=False):
        mat = pd.DataFrame(np.nan, index=judges, columns=judges)  # the diagonal stays blank
        for r in sub[(sub["variable"] == variable) & (sub["weights"] == weights)].itertuples():
            mat.loc[r.judge_a, r.judge_b] = mat.loc[r.judge_b, r.judge_a] = r.kappa
        first = ax is axes.flat[0]
        sns.heatmap(
            mat.astype(float),
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="viridis",
            annot=True,
            fmt=".2f",
            square=True,
            cbar=ax is axes.flat[len(panels) - 1],
            cbar_kws={"label": "Cohen's kappa"},
            yticklabels=judges if first else False,
        )  # the judges named once, on the left
        ax.set_title(f"{variable}" + (f" ({weights}-weighted)" if weights != "none" else ""), fontsize=10)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xticks(ax.get_xticks(), ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.tick_params(axis="y", labelrotation=0)
    fig.suptitle(title or f"Judge agreement: {model}")
    return fig


def plot_prompt_sensitivity(per_instruction: pd.DataFrame, value: str = "mean_gated", title: str | None = None):
    """Mean rating per instruction, a line per model, a panel per judge (and Average).

    Speech-first instructions are shaded; tick labels say S (speech-first) or A.

    Args:
        per_instruction: :func:`jasco_utils.analysis.sensitivity.instruction_means`' output.
        value: ``mean_gated`` or ``mean_ungated``.
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    judges = in_order(per_instruction["judge"])
    models = in_order(per_instruction["model"])
    fig, axes = _panels(len(judges), 5.5, 3.4, sharey=True)
    colors = palette(len(models))
    ks = sorted(per_instruction["instruction"].unique())
    for ax, judge in zip(axes.flat, judges, strict=False):
        sub = per_instruction[per_instruction["judge"] == judge]
        for k in ks:
            if INSTRUCTION_WORDING.get(int(k)) == SPEECH_FIRST:
                ax.axvspan(k - 0.5, k + 0.5, color=_SPEECH_FIRST_SHADE, alpha=0.6, lw=0)
        for c, model in enumerate(models):
            g = sub[sub["model"] == model].sort_values("instruction")
            if not g.empty:
                ax.plot(g["instruction"], g[value], marker="o", color=colors[c], label=model)
        ax.set_xticks(ks, [f"{int(k)}\n{'S' if INSTRUCTION_WORDING.get(int(k)) == SPEECH_FIRST else 'A'}" for k in ks])
        ax.set_title(judge, fontsize=10)
        ax.set_ylim(0, 2.05)
        tidy(ax)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean rating" + (" (gated)" if value == "mean_gated" else ""))
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "Prompt sensitivity: mean rating per instruction (shaded/S: speech named first)")
    return fig


def plot_best_of_k(curve: pd.DataFrame, value: str = "best_of_k", title: str | None = None):
    """Expected best-of-k rating against k, a line per model, a panel per judge.

    Args:
        curve: :func:`jasco_utils.analysis.sensitivity.best_of_k`' output.
        value: ``best_of_k`` (gated) or ``best_of_k_ungated``.
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    judges = in_order(curve["judge"])
    models = in_order(curve["model"])
    fig, axes = _panels(len(judges), 5.0, 3.4, sharey=True)
    colors = palette(len(models))
    for ax, judge in zip(axes.flat, judges, strict=False):
        sub = curve[curve["judge"] == judge]
        for c, model in enumerate(models):
            g = sub[sub["model"] == model].sort_values("k")
            if not g.empty:
                ax.plot(g["k"], g[value], marker="o", color=colors[c], label=model)
        ax.set_title(judge, fontsize=10)
        ax.set_xticks(sorted(curve["k"].unique()))
        ax.set_xlabel("k (instructions per clip)")
        ax.set_ylim(0, 2.05)
        tidy(ax, grid="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("expected best of k")
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "Best-Mean as a function of k (k = 8: the paper's Best-Mean; k = 1: the mean)")
    return fig


#: Accuracy of a judge that picks uniformly at random: 3 ratings, 4 orientations.
_UNIFORM_GUESS = {"rating_accuracy": 1 / 3, "orientation_accuracy": 1 / 4}


def plot_judge_check(records: list[dict], title: str | None = None):
    """The judge check: per judge its orientation confusion matrix, then accuracy by kind.

    Top row: one heatmap per judge, expected orientation (rows) x given (columns, with
    ``unparsed``), cells the counts, colour the share of the row. Bottom: rating accuracy
    and orientation accuracy per kind of control answer, a bar per judge with its bootstrap
    interval; the dashed line is a uniform random guess (1/3 for ratings, 1/4 for
    orientations).

    Args:
        records: :func:`jasco_utils.analysis.judge_check.measure`' output.
        title: Figure title.

    Returns:
        A matplotlib Figure.
    """
    if not records:
        raise ValueError("no judge-check records to draw")
    n = len(records)
    fig, axes = new_figure(max(8.0, 3.6 * n), 7.4, 2, 2 * n)
    grid = axes[0, 0].get_subplotspec().get_gridspec()
    for ax in axes.flat:
        ax.remove()
    for j, rec in enumerate(records):
        _check_confusion(fig.add_subplot(grid[0, 2 * j : 2 * j + 2]), rec, first=j == 0, colour_bar=j == n - 1)
    for panel, key in enumerate(("rating_accuracy", "orientation_accuracy")):
        ax = fig.add_subplot(grid[1, panel * n : (panel + 1) * n])
        _check_accuracies(ax, records, key)
    handles, labels = ax.get_legend_handles_labels()
    ncol = legend_columns(labels, fig.get_figwidth())
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center", ncol=ncol)

    fig.suptitle(
        title or "Judge check: control answers with known labels (95% intervals over clips)\n" + clips_text(records)
    )
    return fig


def _check_confusion(ax, rec: dict, first: bool, colour_bar: bool) -> None:
    """One judge's orientation confusion matrix of :func:`plot_judge_check`, on ``ax`` (hidden when empty)."""
    import seaborn as sns

    counts = pd.DataFrame(rec["confusion"]["orientation"]).T
    if counts.empty:
        ax.set_visible(False)
        return
    share = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).astype(float)
    sns.heatmap(
        share,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="Blues",
        annot=counts.to_numpy(),
        fmt="d",
        cbar=colour_bar,
        cbar_kws={"label": "share of the expected row"},
        linewidths=0.5,
    )
    acc = rec["orientation_accuracy"]
    ax.set_title(f"{rec['judge']}\norientation accuracy {'-' if acc is None else f'{acc:.2f}'}", fontsize=10)
    ax.set_xlabel("given")
    ax.set_ylabel("expected" if first else "")
    ax.tick_params(axis="x", labelrotation=30)
    ax.tick_params(axis="y", labelrotation=0)


def _check_accuracies(ax, records: list[dict], key: str) -> None:
    """One accuracy (``key``) per kind of control answer of :func:`plot_judge_check`: a bar per judge."""
    n = len(records)
    colors = palette(n)
    kinds = in_order(k for rec in records for k, v in rec["per_kind"].items() if v[key] is not None)
    width = 0.8 / n
    for j, rec in enumerate(records):
        xs, ys, err = [], [], [[], []]
        for i, kind in enumerate(kinds):
            v = rec["per_kind"].get(kind, {})
            if v.get(key) is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(v[key])
            ci = v.get(f"{key}_ci") or [v[key], v[key]]
            err[0].append(max(0.0, v[key] - ci[0]))
            err[1].append(max(0.0, ci[1] - v[key]))
        bars = ax.bar(
            xs,
            ys,
            width=width * 0.92,
            color=colors[j],
            label=rec["judge"],
            yerr=err,
            capsize=2,
            error_kw={"lw": 0.9, "ecolor": "0.3"},
        )
        # a 0.00 bar stays visible; with three judges or more the labels would overlap: rotated
        ax.bar_label(bars, fmt="%.2f", fontsize=6 if n > 2 else 7, padding=2, rotation=90 if n > 2 else 0)
    ax.axhline(_UNIFORM_GUESS[key], ls="--", lw=1, color="gray", label="uniform random guess")
    ax.set_xticks(
        range(len(kinds)), [k.replace("_", " ") for k in kinds], rotation=25, ha="right", rotation_mode="anchor"
    )
    ax.set_xlim(-0.6, len(kinds) - 0.4)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(key.replace("_", " "))
    tidy(ax)
