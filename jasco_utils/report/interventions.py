"""The interventions' fidelity, for people: the table, its summary, the clips that fail, a figure.

``jasco data interventions`` measures (:func:`jasco_utils.inference.fidelity.measure_fidelity`)
and writes with :func:`write_fidelity`; :func:`plot_fidelity` draws the figure: per clip, the
level outside the speech before and after ``sound_suppressed`` and the word error rate before and
after; per masking method, the share of the sentence's words still recognised after ``speech_masked``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from jasco_utils.core.io import atomic_open, write_pair
from jasco_utils.inference.fidelity import (
    MAX_WER_RISE,
    MAX_WORDS_LEFT,
    MIN_SUPPRESSION_DB,
    failing_clips,
    fidelity_summary,
)
from jasco_utils.inference.interventions import DEFAULT_MASK_METHOD, MASK_METHODS
from jasco_utils.report.plots import save_figure

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
