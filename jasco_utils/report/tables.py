"""The paper's Table II for any set of judged tables, and the provenance written beside results.

- :func:`table2`: Best-Mean, rows the judges and ``Average``, columns the ALLMs (Table II of
  Wang et al., arXiv:2409.14526), and ``Average (usable judges)`` when the run's judge check
  finds some judges not usable; :func:`table2_with_paper` puts the published numbers beside;
  :func:`write_table2` writes it as CSV, Markdown and LaTeX; :func:`usable_average_note` is
  the footnote's sentence on the usable-judge Average.
- :func:`write_provenance`: what produced a result (dataset checksum, code version,
  configuration, models, engines, sampling, time taken), written beside it.

Figure 2 is drawn by :func:`jasco_utils.report.plots.figure2`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, AVERAGES, USABLE_AVERAGE
from jasco_utils.analysis.metrics import in_order
from jasco_utils.analysis.paper import TABLE2, in_paper_order
from jasco_utils.core import __version__
from jasco_utils.core.io import atomic_open, write_csv
from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.core.secrets import redact


def table2(scores: pd.DataFrame, metric: str = "best_mean") -> pd.DataFrame:
    """Table II: rows the judges then ``Average``, columns the ALLMs, values ``metric``.

    When ``scores`` hold ``Average (usable judges)`` records
    (:func:`jasco_utils.analysis.averages.with_usable_average`), their row follows ``Average``.

    Args:
        scores: Score records (:func:`jasco_utils.analysis.scoring.scores_from_rows`), including
            the ``Average`` records.
        metric: ``best_mean`` (the paper's) or another score column.
    """
    t = scores.pivot_table(index="judge", columns="model", values=metric, aggfunc="first", sort=False)
    judges = in_order(j for j in scores["judge"] if j not in AVERAGES) + [a for a in AVERAGES if a in t.index]
    return t.loc[judges, in_paper_order(scores["model"])].rename_axis(index="LLM-Judge", columns="ALLM")


def table2_with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Each reproduced cell with the published one beside it: ``"1.21 (paper 1.23)"``.

    Judges are matched by position (the paper's three, then Average); ALLMs by name. The
    ``Average (usable judges)`` row has no published counterpart.
    """
    paper_rows = list(TABLE2)
    out = table.copy().astype(object)
    judges = [j for j in table.index if j not in AVERAGES]
    for i, judge in enumerate(table.index):
        if judge in AVERAGES:
            paper_judge = AVERAGE if judge == AVERAGE else None
        else:
            paper_judge = paper_rows[i] if i < 3 and len(judges) == 3 else None
        for model in table.columns:
            value = table.loc[judge, model]
            published = TABLE2.get(paper_judge, {}).get(model) if paper_judge else None
            cell = "n/a" if pd.isna(value) else f"{value:.2f}"
            out.loc[judge, model] = f"{cell} (paper {published:.2f})" if published is not None else cell
    return out


def write_table2(
    table: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    with_paper: bool = False,
    caption: str = "Best-Mean (0-2) per LLM judge and their average.",
    footnote: str = "",
) -> list[Path]:
    """Write ``table2.csv``, ``table2.md`` and ``table2.tex``; return their paths.

    ``footnote`` (e.g. each judge's accuracy on the judge check) goes under the table in
    the Markdown and LaTeX files.
    """
    out_dir = Path(out_dir)
    shown = table2_with_paper(table) if with_paper else table.map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    paths = [write_csv(table.reset_index(), out_dir / "table2.csv")]
    # the cells are already formatted ("0.00", "1.10"): tabulate must not read them as numbers again
    align = ("left",) + ("right",) * len(shown.columns)
    md = shown.reset_index().to_markdown(index=False, disable_numparse=True, colalign=align)
    with atomic_open(out_dir / "table2.md", "w", encoding="utf-8") as fh:
        fh.write(f"**Table II.** {caption}\n\n{md}\n" + (f"\n{footnote}\n" if footnote else ""))
    paths.append(out_dir / "table2.md")
    with atomic_open(out_dir / "table2.tex", "w", encoding="utf-8") as fh:
        tex = shown.to_latex(caption=caption, label="tab:table2", escape=True)
        if footnote:
            tex = tex.replace("\\end{table}", f"\\par\\footnotesize {_latex_escape(footnote)}\n\\end{{table}}")
        fh.write(tex)
    paths.append(out_dir / "table2.tex")
    return paths


def usable_average_note(judges: list[str], usable: list[str]) -> str:
    """The footnote's sentence on the ``Average (usable judges)`` row: the judges it covers and those left out.

    Args:
        judges: The run's judges (what ``Average`` covers).
        usable: The judges the usable-judge Average covers
            (:func:`jasco_utils.analysis.averages.usable_subset`).

    >>> first, second = usable_average_note(["j1", "j2", "j3"], ["j1", "j3"]).split("; ")
    >>> first
    'Average: the mean over all judges'
    >>> second
    'Average (usable judges): over j1 and j3 only, leaving out j2 (not usable per the judge check).'
    """
    left = [j for j in judges if j not in usable]
    return (
        f"{AVERAGE}: the mean over all judges; {USABLE_AVERAGE}: over {_names(usable)} only, "
        f"leaving out {_names(left)} (not usable per the judge check)."
    )


def _names(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def _latex_escape(text: str) -> str:
    r"""Text with LaTeX's special characters escaped.

    >>> _latex_escape("50% of a_b & {c}")
    '50\\% of a\\_b \\& \\{c\\}'
    """
    special = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(special.get(ch, ch) for ch in text)


def code_version() -> str:
    """``jasco X.Y.Z`` and the git commit (with ``-dirty`` when the tree has changes)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
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


def _redacted(value: Any, redact) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    return value


def write_provenance(path: str | os.PathLike[str], **facts: Any) -> Path:
    """Write a provenance JSON: the given facts plus code version, platform and time.

    Every text in it passes through :func:`jasco_utils.core.secrets.redact` (a configuration's
    text, a base URL with credentials): provenance never holds a secret.
    """

    record = {
        "code_version": code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **facts,
    }
    text = json.dumps(record, indent=2, default=str, ensure_ascii=False)
    clean = json.dumps(_redacted(json.loads(text), redact), indent=2, ensure_ascii=False)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(clean + "\n")
    return Path(path)
