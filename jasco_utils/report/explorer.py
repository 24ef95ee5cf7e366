"""Per-clip failure exploration over a run's files (for the explorer notebook).

:func:`load_run` joins a run's judged tables into one long table (clip, instruction, ALLM,
judge, answer, rating, orientation, explanation). Filters find the clips every model
fails, the clips where judges disagree, and answers that depend on one modality only;
:func:`clip_view` renders one clip: its designed sound, speech and answers, and each ALLM's
8 answers with each judge's rating, orientation and explanation. An ALLM that also answered
under interventions (``NAME@CONDITION``, :mod:`jasco_utils.report.conditions`) is one table: a
row per instruction, a column per condition, with a player for each intervened clip;
:func:`allm_conditions` lists the ALLMs with their conditions.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping

import pandas as pd

from jasco_utils.analysis.interventions import split_condition
from jasco_utils.analysis.metrics import gate
from jasco_utils.judging.tables import SCORED_COLUMNS as _SCORED
from jasco_utils.report.conditions import CONDITION_NOTES, allm_conditions, condition_groups
from jasco_utils.run import Run

__all__ = [
    "allm_conditions",
    "clip_summary",
    "clip_view",
    "clips_all_fail",
    "clips_judges_disagree",
    "load_run",
    "one_modality_answers",
]

_KEEP = [
    "id",
    "prompt",
    "audio",
    "audio_sound",
    "spoken_text",
    "tgt_text",
    "audio_only_target",
    "speech_only_target",
    "target_keywords",
    "allm_output",
    "judge_output",
    "reask_output",
]


def load_run(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per (clip, instruction, ALLM, judge) of a run's judged tables.

    Columns: model, judge, id, instruction, rating, orientation, gated (the rating counted in
    Best-Mean, :func:`jasco_utils.analysis.metrics.gate`), the designed texts, the answer and
    the judge's raw text.
    """
    run = Run(run_dir)
    if not run.judged_files():
        raise FileNotFoundError(f"{run_dir}: no judged tables under judged/; run the judging step first")
    df = run.judged()
    df = df[[c for c in df.columns if c in _SCORED or c in _KEEP]].copy()
    df["gated"] = gate(df["rating"], df["orientation"]).astype(int)
    return df


def clip_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per clip, model and judge: the best gated rating of the 8 answers (Best-Mean's term)."""
    return df.groupby(["id", "model", "judge"])["gated"].max().unstack(["model", "judge"])


def clips_all_fail(df: pd.DataFrame) -> list[int]:
    """Clips where no ALLM gets a counted rating above 0 from any judge."""
    best = df.groupby("id")["gated"].max()
    return sorted(int(c) for c in best.index[best == 0])


def clips_judges_disagree(df: pd.DataFrame, min_spread: int = 2) -> list[int]:
    """Clips with an answer whose ratings differ by at least ``min_spread`` between judges."""
    spread = df.groupby(["id", "model", "instruction"])["rating"].agg(
        lambda r: r.max() - r.min() if r.notna().any() else 0
    )
    return sorted({int(i) for (i, _, _), s in spread.items() if s >= min_spread})


def one_modality_answers(df: pd.DataFrame, agreement: float = 1.0) -> pd.DataFrame:
    """Answers judged Audio- or Speech-oriented by at least ``agreement`` of the judges."""
    by = df.groupby(["id", "model", "instruction"])
    frames = []
    for label in ("Audio", "Speech"):
        share = by["orientation"].apply(lambda o, lab=label: (o == lab).mean())
        hit = share[share >= agreement].reset_index()[["id", "model", "instruction"]]
        frames.append(hit.assign(depends_on=label))
    keys = pd.concat(frames, ignore_index=True)
    answers = df.drop_duplicates(["id", "model", "instruction"])[["id", "model", "instruction", "allm_output"]]
    return keys.merge(answers, on=["id", "model", "instruction"]).sort_values(["id", "model", "instruction"])


def _players(intervened: Mapping[str, Mapping[str, str]]) -> str:
    """The intervened clips: a player each (``transcript_only``: the transcript it read)."""
    e = html.escape
    rows = []
    for condition, p in intervened.items():
        if "src" in p:
            shown = f"<audio controls preload='metadata' src='{e(p['src'])}'></audio>"
        elif "missing" in p:
            shown = f"<span style='color:#cf222e'>audio missing: {e(p['missing'])}</span>"
        elif "text" in p:
            shown = f"<q>{e(p['text'])}</q>"
        else:
            shown = ""
        heard = ""
        if "transcript" in p:  # what a cascade heard
            heard = f"<q>{e(p['transcript'])}</q>" if p["transcript"] else "nothing (no speech recognised)"
            heard = f"<br><small>heard: {heard}</small>"
        rows.append(
            f"<tr><th style='text-align:left' title='{e(CONDITION_NOTES.get(condition, ''))}'>{e(condition)}</th>"
            f"<td style='text-align:left'>{shown}{heard}</td></tr>"
        )
    return "<h4>The clip under each condition</h4><table>" + "".join(rows) + "</table>"


def _cell(rows: pd.DataFrame) -> str:
    """One answer and each judge's rating, orientation and explanation (folded)."""
    e = html.escape
    if rows.empty:
        return "<td><i>no answer</i></td>"
    lines = [f"<div style='white-space:pre-wrap'>{e(str(rows.iloc[0]['allm_output']))}</div>"]
    for _, r in rows.iterrows():
        rating = "—" if pd.isna(r["rating"]) else int(r["rating"])
        lines.append(
            f"<div><small><b>{e(r['judge'])}</b>: rating {rating} · {e(str(r['orientation'] or '—'))}</small>"
            f"<details><summary><small>explanation</small></summary><small>{e(str(r['judge_output']))}</small>"
            "</details></div>"
        )
    return f"<td style='text-align:left;vertical-align:top'>{''.join(lines)}</td>"


def _conditions_table(c: pd.DataFrame, base: str, models: Mapping[str, str]) -> str:
    """An ALLM under its conditions: a row per instruction, a column per condition."""
    e = html.escape
    head = "".join(f"<th style='text-align:left' title='{e(CONDITION_NOTES.get(k, ''))}'>{e(k)}</th>" for k in models)
    cols = "<col style='width:2.5em'>" + "<col>" * len(models)
    parts = [
        f"<h4>{e(base)} · the original clip and {len(models) - 1} conditions</h4>"
        f"<table style='table-layout:fixed;width:100%'><colgroup>{cols}</colgroup><tr><th>#</th>{head}</tr>"
    ]
    mine = c[c["model"].isin(list(models.values()))]
    for k in sorted(mine["instruction"].unique()):
        at = mine[mine["instruction"] == k]
        cells = "".join(_cell(at[at["model"] == m]) for m in models.values())
        parts.append(f"<tr><td style='vertical-align:top'>{k}</td>{cells}</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def clip_view(df: pd.DataFrame, clip: int, intervened: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """HTML for one clip: the design, then each ALLM's answers with every judge's verdict.

    An ALLM with conditions (:func:`allm_conditions`) is one table, its conditions side by side.

    Args:
        df: :func:`load_run`'s rows.
        clip: The clip's id.
        intervened: The clip's intervened clips (condition -> ``{"src"}``, ``{"text"}`` or
            ``{"missing"}``: :func:`jasco_utils.report.conditions.run_players`), shown after the design.
    """
    c = df[df["id"] == clip]
    if c.empty:
        raise KeyError(f"clip {clip} is not in this run (clips: {sorted(df['id'].unique().tolist())})")
    first = c.iloc[0]
    e = html.escape
    parts = [
        f"<h3>Clip {clip}</h3><table>",
        *(
            f"<tr><th style='text-align:left'>{e(k)}</th><td style='text-align:left'>{e(str(first[v]))}</td></tr>"
            for k, v in [
                ("sound", "audio_sound"),
                ("speech", "spoken_text"),
                ("correct answer", "tgt_text"),
                ("audio-oriented answer", "audio_only_target"),
                ("speech-oriented answer", "speech_only_target"),
                ("keywords", "target_keywords"),
            ]
        ),
        "</table>",
    ]
    if intervened:
        parts.append(_players(intervened))
    groups = condition_groups(c["model"].unique())
    grouped = {m for g in groups.values() for m in g.values()}
    for model, m in c.groupby("model", sort=False):
        if model in grouped:
            base = split_condition(model)[0]
            if base in groups:
                parts.append(_conditions_table(c, base, groups.pop(base)))
            continue
        parts.append(
            f"<h4>{e(model)}</h4><table><tr><th>#</th><th>answer</th><th>judge</th><th>rating</th>"
            "<th>orientation</th><th>judge's explanation</th></tr>"
        )
        for (k, answer), rows in m.groupby(["instruction", "allm_output"], sort=True):
            for j, (_, r) in enumerate(rows.iterrows()):
                lead = (
                    f"<td rowspan={len(rows)}>{k}</td><td rowspan={len(rows)} style='text-align:left'>{e(answer)}</td>"
                    if j == 0
                    else ""
                )
                rating = "—" if pd.isna(r["rating"]) else int(r["rating"])
                parts.append(
                    f"<tr>{lead}<td>{e(r['judge'])}</td><td>{rating}</td><td>{e(str(r['orientation'] or '—'))}</td>"
                    f"<td style='text-align:left'><small>{e(str(r['judge_output']))}</small></td></tr>"
                )
        parts.append("</table>")
    return "\n".join(parts)
