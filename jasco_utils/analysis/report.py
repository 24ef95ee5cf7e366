"""The paper's Table II and Figure 2 for any set of judged tables, and provenance.

- :func:`table2`: Best-Mean, rows the judges and ``Average``, columns the ALLMs (Table II of
  Wang et al., arXiv:2409.14526); :func:`table2_with_paper` puts the published numbers beside.
- :func:`figure2`: one panel per judge and one for the average, each with a horizontal 100%
  stacked bar per ALLM: audio-dependent (A, red), both (A-S, green), speech-dependent (S,
  blue), percentages printed on the segments (Figure 2).
- :func:`write_provenance`: what produced a result (dataset checksum, code version,
  configuration, models, engines, sampling, time taken), written beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jasco_utils import __version__
from jasco_utils.io import atomic_open, write_csv
from jasco_utils.analysis.metrics import AVERAGE
from jasco_utils.analysis.paper import DEPENDENCE_AVERAGE, PAPER_MODELS, TABLE2
from jasco_utils.paths import PROJECT_ROOT

#: Figure 2's colours: audio red, both green, speech blue (light fills, as the paper's).
COLORS = {"audio_pct": "#f4c7c3", "both_pct": "#d5e8d4", "speech_pct": "#dae8fc"}
EDGES = {"audio_pct": "#b85450", "both_pct": "#82b366", "speech_pct": "#6c8ebf"}
LABELS = {"audio_pct": "A", "both_pct": "A-S", "speech_pct": "S"}


def _ordered(values: Sequence[str], first: Sequence[str] = ()) -> list[str]:
    seen = list(dict.fromkeys(values))
    head = [v for v in first if v in seen]
    return head + [v for v in seen if v not in head]


def table2(scores: pd.DataFrame, metric: str = "best_mean") -> pd.DataFrame:
    """Table II: rows the judges then ``Average``, columns the ALLMs, values ``metric``.

    Args:
        scores: Score records (:func:`jasco_utils.analysis.scoring.scores_from_rows`), including
            the ``Average`` records.
        metric: ``best_mean`` (the paper's) or another score column.
    """
    t = scores.pivot_table(index="judge", columns="model", values=metric, aggfunc="first", sort=False)
    judges = _ordered([j for j in scores["judge"] if j != AVERAGE]) + ([AVERAGE] if AVERAGE in t.index else [])
    return t.loc[judges, _ordered(scores["model"], list(PAPER_MODELS))].rename_axis(index="LLM-Judge", columns="ALLM")


def table2_with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Each reproduced cell with the published one beside it: ``"1.21 (paper 1.23)"``.

    Judges are matched by position (the paper's three, then Average); ALLMs by name.
    """
    paper_rows = list(TABLE2)
    out = table.copy().astype(object)
    judges = [j for j in table.index if j != AVERAGE]
    for i, judge in enumerate(table.index):
        paper_judge = AVERAGE if judge == AVERAGE else (paper_rows[i] if i < 3 and len(judges) == 3 else None)
        for model in table.columns:
            value = table.loc[judge, model]
            published = TABLE2.get(paper_judge, {}).get(model) if paper_judge else None
            cell = "n/a" if pd.isna(value) else f"{value:.2f}"
            out.loc[judge, model] = f"{cell} (paper {published:.2f})" if published is not None else cell
    return out


def write_table2(table: pd.DataFrame, out_dir: str | os.PathLike[str], with_paper: bool = False,
                 caption: str = "Best-Mean (0-2) per LLM judge and their average.") -> list[Path]:
    """Write ``table2.csv``, ``table2.md`` and ``table2.tex``; return their paths."""
    out_dir = Path(out_dir)
    shown = table2_with_paper(table) if with_paper else table.map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    paths = [write_csv(table.reset_index(), out_dir / "table2.csv")]
    md = shown.reset_index().to_markdown(index=False) if _has_tabulate() else _markdown(shown.reset_index())
    with atomic_open(out_dir / "table2.md", "w", encoding="utf-8") as fh:
        fh.write(f"**Table II.** {caption}\n\n{md}\n")
    paths.append(out_dir / "table2.md")
    with atomic_open(out_dir / "table2.tex", "w", encoding="utf-8") as fh:
        fh.write(shown.to_latex(caption=caption, label="tab:table2", escape=True))
    paths.append(out_dir / "table2.tex")
    return paths


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def figure2(scores: pd.DataFrame, title: str | None = None, paper_average: bool = False):
    """Figure 2: modality dependence, one panel per judge and one for their average.

    Args:
        scores: Score records with the ``Average`` records.
        title: A title over the panels.
        paper_average: Add a panel with the paper's published averages.

    Returns:
        A matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = _ordered([j for j in scores["judge"] if j != AVERAGE])
    panels = judges + ([AVERAGE] if (scores["judge"] == AVERAGE).any() else [])
    data = {p: scores[scores["judge"] == p].set_index("model") for p in panels}
    if paper_average:
        panels.append("Paper (average of 3 judges)")
        data[panels[-1]] = pd.DataFrame(DEPENDENCE_AVERAGE, index=["audio_pct", "both_pct", "speech_pct"]).T
    models = _ordered(scores["model"], list(PAPER_MODELS))
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 0.75 * len(models) * nrows + 1.4 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        frame = data[panel]
        names = [m for m in models if m in frame.index][::-1]
        for y, model in enumerate(names):
            left = 0.0
            for key in ("audio_pct", "both_pct", "speech_pct"):
                value = frame.loc[model, key]
                value = 0.0 if pd.isna(value) else float(value)
                ax.barh(y, value, left=left, height=0.5, color=COLORS[key], edgecolor=EDGES[key])
                if value >= 4:
                    ax.text(left + value / 2, y, LABELS[key], ha="center", va="center", fontsize=9, fontweight="bold")
                    ax.text(left + value / 2, y + 0.36, f"{value:.0f}%", ha="center", va="bottom", fontsize=9, fontweight="bold")
                left += value
            if left == 0:
                ax.text(50, y, "no Audio/Both/Speech answer", ha="center", va="center", fontsize=8, color="gray")
        ax.set_yticks(range(len(names)), names, fontweight="bold")
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.6, len(names) - 0.2)
        ax.set_xticks([20, 40, 60, 80, 100], [f"{v}%" for v in (20, 40, 60, 80, 100)])
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(panel, fontsize=11)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k], ec=EDGES[k]) for k in COLORS]
    fig.legend(handles, ["audio-dependent (A)", "both (A-S)", "speech-dependent (S)"], loc="lower center",
               ncol=3, frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97 if title else 1))
    return fig


def write_figure2(scores: pd.DataFrame, out_dir: str | os.PathLike[str], **kwargs) -> list[Path]:
    """Write ``figure2.png`` and ``figure2.pdf``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = figure2(scores, **kwargs)
    paths = []
    for suffix in ("png", "pdf"):
        path = out_dir / f"figure2.{suffix}"
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=suffix, dpi=150)
        paths.append(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def code_version() -> str:
    """``jasco X.Y.Z`` and the git commit (with ``-dirty`` when the tree has changes)."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return f"jasco {__version__}" + (f" ({commit[:12]}{'-dirty' if dirty else ''})" if commit else "")


def dataset_checksum(data_dir: str | os.PathLike[str]) -> str:
    """SHA-256 over the dataset's files (``v0.csv`` and the clips), in name order."""
    h = hashlib.sha256()
    root = Path(data_dir)
    for path in sorted([root / "v0.csv", *root.glob("*.wav")], key=lambda p: p.name):
        if path.is_file():
            h.update(path.name.encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def write_provenance(path: str | os.PathLike[str], **facts: Any) -> Path:
    """Write a provenance JSON: the given facts plus code version, platform and time."""
    import time

    record = {
        "code_version": code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **facts,
    }
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, default=str, ensure_ascii=False)
        fh.write("\n")
    return Path(path)
