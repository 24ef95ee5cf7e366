"""A run as one self-contained HTML page, to read and to share (``RUN_DIR/browse.html``).

The page shows every clip of a run of JASCO (Wang et al., arXiv:2409.14526: 80 clips, each
a designed sound mixed with designed speech, answered by each ALLM under 8 instructions):
its audio, its design from ``v0.csv``, and each ALLM's 8 answers in full with every judge's
rating, orientation and explanation side by side. Its filters are the explorer's
(:mod:`jasco_utils.report.explorer`: clips every model fails, clips where judges disagree,
one-modality answers), computed here and stored with the data, plus unparsed and failed rows,
model, judge, instruction and a text search; the page's script only shows, hides and sorts.
Where the run has a judge check (``RUN_DIR/judge_check``), its accuracies are shown
(:func:`jasco_utils.analysis.judge_check.measure`, without intervals); a table gives the
run's usage per model and stage (rows, calls, tokens, time, cost:
:func:`jasco_utils.analysis.usage.usage_report`).

The page needs no server and fetches nothing. The data is inline JSON (``<``, ``>`` and ``&``
written as ``\\u003c``, ``\\u003e``, ``\\u0026``, so no text can close its script block),
the script builds the page with ``textContent`` only (no text is ever read as HTML), and each
clip's audio is either inline (``audio="embed"``: 16 kHz mono Ogg/Opus, about 3.5 kB a second,
the first of :data:`AUDIO_FORMATS` that libsndfile can write) or a link, relative to the
page's folder, to the dataset's WAV (``audio="link"``). A clip whose WAV is missing shows
"audio missing".

An ALLM that also answered under interventions (``NAME@CONDITION``) is one table per clip: a row
per instruction, the answer under each condition side by side with every judge's verdict, and a
player for each intervened clip, made again as inference made it and always embedded
(:mod:`jasco_utils.report.conditions`). A run without conditions has none of these keys.

Judged tables are read as :func:`jasco_utils.analysis.scoring.read_judged` reads them, except
that rows whose judge call failed are kept and marked (scoring refuses such tables); they are
left out of the rows the explorer's filters see, which are otherwise
:func:`~jasco_utils.report.explorer.load_run`'s. ALLM rows whose call failed (outputs
tables, never judged) are shown and marked too.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.analysis.judge_check import measure
from jasco_utils.analysis.metrics import gate
from jasco_utils.analysis.usage import usage_report
from jasco_utils.core.io import TableError, atomic_open
from jasco_utils.data.dataset import load_metadata
from jasco_utils.data.manifest import INSTRUCTIONS, clip_ids, instruction_index
from jasco_utils.judging.tables import SCORED_COLUMNS as _SCORED
from jasco_utils.report import explorer
from jasco_utils.report.audio import AUDIO_MODES, player_source
from jasco_utils.report.conditions import condition_page_data
from jasco_utils.run import Run

#: The page's file name in the run folder.
PAGE_NAME = "browse.html"
#: The page template (HTML, CSS and script), package data beside this module.
TEMPLATE = "templates/browse.html"
#: A clip's design: (label on the page, ``v0.csv`` column, manifest column used without the dataset).
DESIGN: tuple[tuple[str, str, str], ...] = (
    ("sound", "Audio", "audio_sound"),
    ("speech", "Speech", "spoken_text"),
    ("correct answer", "Correct Answer", "tgt_text"),
    ("audio-only answer", "Audio-Only Answer", "audio_only_target"),
    ("speech-only answer", "Speech-Only Answer", "speech_only_target"),
    ("keywords", "Correct Answer Keyword", "target_keywords"),
)
#: :func:`~jasco_utils.report.explorer.clips_judges_disagree`'s ``min_spread`` on the page.
DISAGREE_SPREAD = 2
#: :func:`~jasco_utils.report.explorer.one_modality_answers`'s ``agreement`` on the page.
ONE_MODALITY_AGREEMENT = 1.0
#: The note in the page's header, unless the run's provenance says it ran the paper's configuration.
CONFIG_NOTE = (
    "Numbers from the CPU default configuration (small local models standing in for the paper's "
    "ALLMs and judges) are not the paper's: they show that the pipeline works, not Table II."
)


def _note(layout: Run) -> str:
    """:data:`CONFIG_NOTE`, or "" when the run's provenance says it ran the paper's configuration."""
    try:
        prov = json.loads((layout.figures_dir / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return CONFIG_NOTE
    return "" if prov.get("not_the_papers_results") is False else CONFIG_NOTE


_DATA_MARK, _TITLE_MARK = "__JASCO_RUN_DATA__", "__JASCO_RUN_TITLE__"
#: Texts of a judged table kept with its verdicts.
_TEXTS = ("audio", "allm_output", "judge_output", "reask_output", *(col for _, _, col in DESIGN))


def _failed(df: pd.DataFrame) -> pd.Series:
    return df["status"].eq("failed") if "status" in df.columns else pd.Series(False, index=df.index)


def _instructions(df: pd.DataFrame) -> pd.Series:
    return df["prompt"].map(instruction_index).astype(int) + 1


def _read_outputs(run: Run) -> pd.DataFrame:
    """The run's ALLM outputs tables, one row per answer (model, id, instruction, answer, status)."""
    df = run.outputs()
    if df.empty:
        return df
    design = {col: df[col] for _, _, col in DESIGN if col in df.columns}
    return pd.DataFrame(
        {
            "model": df["model"],
            "id": clip_ids(df["id"]),
            "instruction": _instructions(df),
            "allm_output": df["allm_output"],
            "status": df["status"],
            "error": df.get("error", ""),
            **design,
        }
    )


def _read_verdicts(run: Run) -> pd.DataFrame:
    """The judged tables: the scored columns, the texts, ``status`` and ``error``.

    A row whose judge call failed is kept (``keep_failed=True``: no rating, no orientation):
    scoring refuses such a table, the page shows the row.

    Raises:
        TableError: As :func:`jasco_utils.analysis.scoring.read_judged` (except for failed rows).
    """
    df = run.judged(keep_failed=True)
    if df.empty:
        return df
    keep = [c for c in df.columns if c not in ("file", "line")]
    return df[[c for c in keep if c in _SCORED or c in (*_TEXTS, "status", "error")]]


def read_run(run_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's answers (outputs tables) and verdicts (judged tables, failed judge calls kept).

    Returns:
        ``(outputs, verdicts)``; either may be empty, not both.

    Raises:
        FileNotFoundError: The run has neither outputs nor judged tables.
        TableError: A table is malformed (named file, line and column).
    """
    layout = Run(run_dir)
    outputs = _read_outputs(layout)
    verdicts = _read_verdicts(layout)
    if outputs.empty and verdicts.empty:
        where = "does not exist" if not layout.root.is_dir() else "has no outputs/*.csv and no judged/*__*.csv"
        raise FileNotFoundError(
            f"{layout.root}: run folder {where}; run inference and judging first (`jasco infer`, `jasco judge`, "
            "or `jasco reproduce`), or give the folder of a run that has them"
        )
    return outputs, verdicts


def scored_rows(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts the explorer's filters see: failed judge calls left out, ``gated`` added
    (:func:`~jasco_utils.analysis.metrics.gate`); :func:`explorer.load_run`'s rows for a run
    without failed calls."""
    if verdicts.empty:
        return verdicts
    rows = verdicts[~_failed(verdicts)].reset_index(drop=True)
    return rows.assign(gated=gate(rows["rating"], rows["orientation"]).astype(int))


def _filters(rows: pd.DataFrame) -> dict[str, Any]:
    """The explorer's filters over ``rows`` (:func:`scored_rows`), as JSON-ready lists."""
    if rows.empty:
        return {"all_fail": [], "disagree": [], "one_modality": [], "best": {}}
    one = explorer.one_modality_answers(rows, agreement=ONE_MODALITY_AGREEMENT)
    best = explorer.clip_summary(rows)
    return {
        "all_fail": explorer.clips_all_fail(rows),
        "disagree": explorer.clips_judges_disagree(rows, min_spread=DISAGREE_SPREAD),
        "one_modality": [[int(r.id), r.model, int(r.instruction), r.depends_on] for r in one.itertuples()],
        "best": {
            int(c): {"mean": float(v.mean()), "by": [[m, j, None if pd.isna(x) else int(x)] for (m, j), x in v.items()]}
            for c, v in best.iterrows()
        },
    }


def _design(clips: list[int], data_dir, tables: pd.DataFrame) -> tuple[dict[int, dict[str, str]], str]:
    """Each clip's design, from ``v0.csv`` (:func:`load_metadata`), else from the tables' columns."""
    try:
        meta = load_metadata(data_dir).set_index("audio_id")
        return {
            c: {label: str(meta.at[c, col]) if c in meta.index else "" for label, col, _ in DESIGN} for c in clips
        }, "v0.csv"
    except FileNotFoundError:
        first = tables.drop_duplicates("id").set_index("id") if len(tables) else pd.DataFrame()
        return {
            c: {
                label: str(first.at[c, col]) if col in first.columns and c in first.index else ""
                for label, _, col in DESIGN
            }
            for c in clips
        }, "the run's tables (dataset not found)"


def _judge_check(layout: Run) -> dict[str, Any] | None:
    """The judge check's records (no intervals), an ``error``, or ``None`` when the run has none."""
    run = Run(layout.root)
    files = run.judge_check_files()
    if not files:
        return None
    try:
        return {"records": measure(run.judge_check(), n_resamples=0), "files": [p.name for p in files]}
    except TableError as e:
        return {"error": str(e), "files": [p.name for p in files]}


def _usage(layout: Run) -> dict[str, Any]:
    """The run's usage (:func:`~jasco_utils.analysis.usage.usage_report`), or an ``error``."""
    try:
        return usage_report(layout.root)
    except TableError as e:
        return {"error": str(e)}


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _answers(
    clip_rows: pd.DataFrame, clip_verdicts: pd.DataFrame, models: list[str], one_modality: dict[tuple[str, int], str]
) -> list[dict[str, Any]]:
    """One record per (model, instruction) of a clip: the answer, its status, each judge's verdict.

    ``one_modality`` maps (model, instruction) to the modality the judges agree the answer
    depends on (:func:`explorer.one_modality_answers`); ``problem`` marks a failed call or
    an unparsed verdict.
    """
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in clip_rows.itertuples():
        out[(r.model, r.instruction)] = {
            "model": r.model,
            "k": int(r.instruction),
            "text": _text(r.allm_output),
            "status": r.status or "ok",
            "error": _text(r.error),
            "verdicts": {},
        }
    for r in clip_verdicts.to_dict(orient="records"):
        key = (r["model"], int(r["instruction"]))
        rec = out.setdefault(
            key, {"model": r["model"], "k": key[1], "text": "", "status": "ok", "error": "", "verdicts": {}}
        )
        if "allm_output" in r:  # the answer the judges read
            rec["text"] = _text(r["allm_output"])
        rating = None if pd.isna(r["rating"]) else int(r["rating"])
        orientation = r["orientation"] if isinstance(r["orientation"], str) and r["orientation"] else None
        failed = r["status"] == "failed"
        rec["verdicts"][r["judge"]] = {
            "rating": rating,
            "orientation": orientation,
            "source": _text(r["orientation_source"]),
            "gated": None if failed else int(r["gated"]),
            "output": _text(r.get("judge_output")),
            "reask": _text(r.get("reask_output")),
            "error": _text(r["error"]),
            "status": "failed" if failed else ("unparsed" if rating is None or orientation is None else "ok"),
        }
    for key, rec in out.items():
        rec["one_modality"] = one_modality.get(key)
        rec["problem"] = rec["status"] == "failed" or any(v["status"] != "ok" for v in rec["verdicts"].values())
    order = {m: i for i, m in enumerate(models)}
    return sorted(out.values(), key=lambda a: (order.get(a["model"], len(order)), a["k"]))


def _clip_records(
    clips: list[int],
    outputs: pd.DataFrame,
    verdicts: pd.DataFrame,
    models: list[str],
    filters: dict[str, Any],
    design: dict[int, dict[str, str]],
    audio_of: Callable[[int], dict[str, str]],
    progress: Iterable[int],
) -> list[dict[str, Any]]:
    """:func:`page_data`'s clips: per clip its design, audio (``audio_of``), best, tags and answers.

    ``progress`` iterates over ``clips`` (a progress bar, or the list itself).
    """
    flagged = {t: set(filters[t]) for t in ("all_fail", "disagree")}
    flagged["one_modality"] = {c for c, *_ in filters["one_modality"]}
    one: dict[int, dict[tuple[str, int], str]] = {}
    for c, m, k, label in filters["one_modality"]:
        one.setdefault(c, {})[(m, k)] = label
    records = []
    for clip in progress:
        answers = _answers(
            outputs[outputs["id"] == clip] if len(outputs) else outputs,
            verdicts[verdicts["id"] == clip] if len(verdicts) else verdicts,
            models,
            one.get(clip, {}),
        )
        tags = [t for t in ("all_fail", "disagree", "one_modality") if clip in flagged[t]]
        if any(a["problem"] for a in answers):
            tags.append("problems")
        best = filters["best"].get(clip, {"mean": None, "by": []})
        records.append(
            {
                "id": clip,
                "design": design[clip],
                "audio": audio_of(clip),
                "best": best["mean"],
                "best_by": best["by"],
                "tags": tags,
                "answers": answers,
            }
        )
    return records


def _counts(
    clips: list[int],
    models: list[str],
    judges: list[str],
    records: list[dict[str, Any]],
    outputs: pd.DataFrame,
    verdicts: pd.DataFrame,
    rows: pd.DataFrame,
) -> dict[str, int]:
    """:func:`page_data`'s counts: clips, models, judges, answers, verdicts, unparsed and failed rows."""
    return {
        "clips": len(clips),
        "models": len(models),
        "judges": len(judges),
        "answers": sum(len(r["answers"]) for r in records),
        "verdicts": len(verdicts),
        "unparsed": int((rows["rating"].isna() | rows["orientation"].isna()).sum()) if len(rows) else 0,
        "failed_judge": int(_failed(verdicts).sum()) if len(verdicts) else 0,
        "failed_allm": int(_failed(outputs).sum()) if len(outputs) else 0,
    }


def page_data(
    run_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    audio: str = "embed",
    page_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    store: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, JSON-ready: header, filters, clips, judge check, usage; for ALLMs
    that answered under interventions, their conditions and each clip's intervened audio
    (:func:`~jasco_utils.report.conditions.condition_page_data`).

    Args:
        run_dir: The run folder (``outputs/``, ``judged/``, optionally ``judge_check/``).
        data_dir: The dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        audio: ``embed`` or ``link`` (see :data:`AUDIO_MODES`; intervened clips are always embedded).
        page_dir: The folder the page goes to (``link`` paths are relative to it; default ``run_dir``).
        progress: Show a progress bar over the clips.
        store: The call store with the recogniser's transcripts, for ``speech_masked`` clips
            (default :data:`~jasco_utils.core.paths.DEFAULT_STORE`).

    Raises:
        FileNotFoundError: The run has neither outputs nor judged tables.
        ValueError: ``audio`` is not one of :data:`AUDIO_MODES`.
    """
    if audio not in AUDIO_MODES:
        raise ValueError(f"audio must be one of {AUDIO_MODES}, not {audio!r}")
    layout = Run(run_dir)
    outputs, verdicts = read_run(run_dir)
    if len(verdicts):
        verdicts["gated"] = gate(verdicts["rating"], verdicts["orientation"]).astype(int)
    rows = scored_rows(verdicts)
    filters = _filters(rows)
    tables = verdicts if len(verdicts) else outputs
    clips = sorted(int(c) for c in tables["id"].unique())
    models = list(dict.fromkeys([*outputs.get("model", []), *verdicts.get("model", [])]))
    judges = list(dict.fromkeys(verdicts.get("judge", [])))
    design, design_source = _design(clips, data_dir, pd.concat([verdicts, outputs], ignore_index=True))
    given = dict(zip(clip_ids(tables["id"]), tables["audio"], strict=False)) if "audio" in tables.columns else {}
    page_dir = Path(page_dir or layout.root)
    records = _clip_records(
        clips,
        outputs,
        verdicts,
        models,
        filters,
        design,
        lambda clip: player_source(clip, audio, data_dir, page_dir, given.get(clip)),
        tqdm(clips, desc=f"clips ({audio} audio)", unit="clip", disable=not progress),
    )
    counts = _counts(clips, models, judges, records, outputs, verdicts, rows)
    conditions, per_clip = condition_page_data(layout.root, models, clips, data_dir, store, progress)
    for record in records:
        record.update(per_clip.get(record["id"], {}))
    return {
        "run": layout.root.resolve().name,
        "run_dir": str(layout.root),
        "models": models,
        "judges": judges,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": _note(layout),
        "audio_mode": audio,
        "design_source": design_source,
        "instructions": list(INSTRUCTIONS),
        "counts": counts,
        "settings": {"disagree_spread": DISAGREE_SPREAD, "one_modality_agreement": ONE_MODALITY_AGREEMENT},
        "filters": {k: filters[k] for k in ("all_fail", "disagree", "one_modality")},
        "judge_check": _judge_check(layout),
        "usage": _usage(layout),
        "clips": records,
        **conditions,
    }


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>``, ``&`` escaped.

    >>> script_json({"a": "</script><b>&'\\""})
    '{"a": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026\\'\\\\""}'
    >>> json.loads(script_json({"a": "</script>"}))["a"]
    '</script>'
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    # these characters occur only inside JSON strings, where the escapes mean the same
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(data: dict[str, Any]) -> str:
    """The page's HTML: :data:`TEMPLATE` with the run's name and ``data`` (:func:`page_data`) inline."""
    template = resources.files("jasco_utils.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    head, sep, tail = template.partition(_DATA_MARK)
    if not sep:
        raise RuntimeError(f"{TEMPLATE}: no {_DATA_MARK} in the template")
    return head.replace(_TITLE_MARK, html.escape(f"JASCO run {data['run']}")) + script_json(data) + tail


def write_run_page(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    audio: str = "embed",
    progress: bool = True,
    store: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the run's page: one self-contained HTML file (default ``RUN_DIR/browse.html``).

    Args:
        run_dir: The run folder.
        out: The page's path (default ``RUN_DIR/browse.html``).
        data_dir: The dataset folder (``v0.csv`` and the clips; see :func:`jasco_utils.core.paths.dataset_dir`).
        audio: ``embed`` (each clip inline, compressed: the 80 clips of v0 add about 2.7 MB)
            or ``link`` (paths relative to the page's folder: the page then needs the dataset's
            WAVs where they were when it was written).
        progress: Show a progress bar over the clips.
        store: The call store with the recogniser's transcripts (see :func:`page_data`).

    Returns:
        The page's path.

    Raises:
        FileNotFoundError: The run has neither outputs nor judged tables (the message says what to do).
    """
    out = Path(out) if out else Run(run_dir).root / PAGE_NAME
    text = render_page(page_data(run_dir, data_dir, audio, out.parent, progress, store))
    with atomic_open(out, "w", encoding="utf-8") as fh:
        fh.write(text)
    return out
