"""Judging ALLM answers with an LLM judge: batched, cached, resumable.

Implements the judging step of Wang et al. (arXiv:2409.14526): for every row of an ALLM
outputs table (the manifest with ``allm_output`` filled), the judge gets the system message
and the filled judge prompt (:mod:`jasco_utils.judging.prompts`), and its answer is parsed into a
rating and an orientation (:mod:`jasco_utils.judging.parsing`). An answer whose orientation cannot be
read gets one follow-up with the original re-ask prompt; that exchange is kept with the row.

Differences from the original script, all recorded per row: the whole table goes to the
engine in batches (not one call per row); sampling defaults to greedy with a fixed seed
(``SamplingConfig.original()`` restores temperature 1.0 without a seed); every call is kept
in a :class:`~jasco_utils.models.store.Store`, so a re-run makes no call for what is stored and a
killed run resumes; the judge's answer goes to ``judge_output`` (the original wrote
``llama3_extract`` whichever judge ran; :func:`to_original_layout` writes that too).

The failure model: a row is ``ok`` only when every call it needed (the judgement, and the
re-ask when there was one) succeeded and was complete. A row whose judgement or re-ask failed
(after the backend's retries) has ``status == "failed"``, the reason in ``error`` and no
rating: it is never scored, and re-running retries it (what succeeded comes from the store).
A row whose judgement or re-ask stopped at the token limit has ``status == "truncated"``: it
is kept and parsed as the original script parsed whatever came back, and counted wherever
it is scored. ``allm_status`` carries the answer's own status from the outputs table (an
ALLM answer cut off at its limit is ``truncated`` there).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.core.io import TableError, lines_text, read_table_checked, write_table
from jasco_utils.data.manifest import MANIFEST_COLUMNS, check_rows
from jasco_utils.judging.parsing import ORIGINAL_OUTPUT_COLUMN, parse_judgement, read_verdict
from jasco_utils.judging.prompts import (
    DEFAULT_JUDGE_TEMPLATE,
    JUDGE_FIELDS,
    judge_messages,
    load_template,
    reask_messages,
)
from jasco_utils.models.base import Backend, SamplingConfig, StructuredOutput
from jasco_utils.models.runner import TOKEN_COLUMNS, CachedRunner, CallResult, CallStats, typed_tokens
from jasco_utils.models.store import Store

#: Columns a judged table has, after the manifest's. A re-asked row's token counts are those
#: of both calls, the judgement and its re-ask.
JUDGE_COLUMNS: tuple[str, ...] = (
    "model",
    "allm_status",
    "judge",
    "judge_model",
    "engine",
    "engine_version",
    "template",
    "template_sha256",
    "sampling",
    "structured",
    "chat_format",
    "judge_output",
    "rating",
    "orientation",
    "orientation_source",
    "reask_output",
    "status",
    "error",
    "from_cache",
    "cache_key",
    "judge_messages",
    "started_at",
    "finished_at",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
)
#: The re-ask template.
REASK_TEMPLATE = "reask_original"


@dataclass
class JudgeStats:
    """Counts of one judging run."""

    rows: int = 0
    from_cache: int = 0
    called: int = 0
    failed: int = 0
    truncated: int = 0
    reasked: int = 0
    reask_from_cache: int = 0
    reask_called: int = 0
    unparsed: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = (
            f"{self.rows} rows: {self.from_cache} from cache, {self.called} model calls, "
            f"{self.failed} failed, {self.truncated} truncated (cut off at --max-tokens; scored as the original did); "
            f"{self.reasked} re-asked ({self.reask_from_cache} from cache); "
            f"{self.unparsed} with a rating or orientation that could not be read"
        )
        if self.failures:
            s += "\nfailures (re-run to retry them):\n  " + "\n  ".join(self.failures[:10])
        return s


def check_outputs(
    outputs: pd.DataFrame, source: str = "outputs table", model: str | None = None, whole_clips: bool = True
) -> pd.DataFrame:
    """Check an ALLM outputs table and return it with a ``model`` column.

    ``whole_clips=False`` accepts rows that do not form whole clips (each clip with its 8
    instructions once): the judge check's control answers (:mod:`jasco_utils.judging.controls`).

    Raises:
        TableError: A missing column, an empty answer, or rows that do not form whole clips;
            the message names the lines.
    """
    need = ["id", "prompt", *JUDGE_FIELDS.values()]
    missing = [c for c in dict.fromkeys(need) if c not in outputs.columns]
    if missing:
        raise TableError(f"{source}: lacks column(s) {missing} (an outputs table has the manifest's columns)")
    df = outputs.copy()
    if model is not None:
        df["model"] = model
    elif "model" not in df.columns:
        raise TableError(f"{source}: no 'model' column: say which ALLM produced the answers (--model)")
    df = df.reset_index(drop=True)
    if "status" in df.columns:
        failed = df.index[df["status"].astype(str) == "failed"]
        if len(failed):
            raise TableError(
                f"{source}: {len(failed)} row(s) whose ALLM call failed ({lines_text(failed, source)}, "
                "column 'status'); "
                "re-run `jasco infer` to retry them: a failed answer is never judged"
            )
    empty = df.index[df["allm_output"].fillna("").astype(str).str.strip() == ""]
    if len(empty):
        raise TableError(
            f"{source}: {len(empty)} row(s) with an empty allm_output ({lines_text(empty, source)}, "
            "column 'allm_output'); fill them first"
        )
    if whole_clips:
        for _, group in df.groupby("model", sort=False):
            check_rows(group, source, what="outputs table")
    return df


def judge_table(
    outputs: pd.DataFrame,
    backend: Backend,
    store: Store,
    judge: str | None = None,
    template: str = DEFAULT_JUDGE_TEMPLATE,
    sampling: SamplingConfig | None = None,
    structured: StructuredOutput | None = None,
    reask: bool = True,
    chunk_size: int = 256,
    progress: bool = True,
    source: str = "outputs table",
    whole_clips: bool = True,
) -> tuple[pd.DataFrame, JudgeStats]:
    """Judge every row of an ALLM outputs table.

    Args:
        outputs: The outputs table (manifest columns with ``allm_output`` filled and a
            ``model`` column; see :func:`check_outputs`).
        backend: The judge model.
        store: The call store (cache and resume).
        judge: Name written in the ``judge`` column (default: the backend's model id).
        template: Judge prompt template (``judge_original`` or ``judge_paper``).
        sampling: Sampling settings (default: greedy, seed 0, max_tokens 1000).
        structured: A decoding constraint on the answer (see :func:`structured_output`).
        reask: Re-ask once where the orientation cannot be read (the original protocol).
        chunk_size: Rows per engine call; each chunk's results are stored as they arrive.
        progress: Show a progress bar.
        source: Name of the outputs table for error messages.
        whole_clips: Require whole clips (see :func:`check_outputs`); the rows come back
            in the order given either way.

    Returns:
        The judged table (manifest columns, then :data:`JUDGE_COLUMNS`) and the run's counts.
    """
    sampling = sampling or SamplingConfig()
    df = check_outputs(outputs, source, whole_clips=whole_clips)
    tpl = load_template(template)
    reask_tpl = load_template(REASK_TEMPLATE)
    conversations = [judge_messages(row, template=template) for row in df.to_dict(orient="records")]
    main, second = CallStats(), CallStats()
    bar = tqdm(total=len(df), desc=f"judging with {judge or backend.model}", unit="row", disable=not progress)
    runner = CachedRunner(backend, store, sampling, structured, chunk_size, bar)
    try:
        results = runner.run(conversations, {"template": tpl.id, "template_sha256": tpl.sha256}, main)
        parsed = [parse_judgement(r.text) if not r.error else None for r in results]
        need = [k for k, p in enumerate(parsed) if p is not None and p.orientation is None] if reask else []
        reasks: dict[int, CallResult] = {}
        if need:
            bar.total += len(need)
            bar.set_description(f"re-asking {judge or backend.model}")
            convs = [reask_messages(results[k].text) for k in need]
            extra = {"template": reask_tpl.id, "template_sha256": reask_tpl.sha256}
            reasks = dict(zip(need, runner.run(convs, extra, second), strict=False))
    finally:
        bar.close()
    stats = JudgeStats(
        rows=len(df),
        from_cache=main.from_cache,
        called=main.called,
        failed=main.failed,
        reasked=len(need),
        reask_from_cache=second.from_cache,
        reask_called=second.called,
        failures=main.failures + [f"re-ask: {e}" for e in second.failures],
    )

    rows = _judged_rows(
        df, conversations, results, reasks, backend, sampling, structured, tpl, judge or backend.model, stats
    )
    table = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *JUDGE_COLUMNS])
    table["rating"] = table["rating"].astype("Int64")
    return typed_tokens(table), stats


def _judged_rows(
    df: pd.DataFrame,
    conversations: list,
    results: list[CallResult],
    reasks: dict[int, CallResult],
    backend: Backend,
    sampling: SamplingConfig,
    structured: StructuredOutput | None,
    tpl,
    judge: str,
    stats: JudgeStats,
) -> list[dict]:
    """One judged row per answer: the manifest's columns, the provenance (a re-ask's tokens
    added), the verdict (the re-ask fallback applied); counts failed, truncated and unparsed
    rows into ``stats``."""
    rows = []
    for k, (row, conv, res) in enumerate(zip(df.to_dict(orient="records"), conversations, results, strict=False)):
        again = reasks.get(k)
        reask_text = again.text if again is not None else ""
        provenance = res.provenance(backend, sampling)
        if again is not None:  # the row took both calls' tokens
            both = [(provenance[col], (again.metadata or {}).get(col)) for col in TOKEN_COLUMNS]
            provenance.update(
                {col: None if None in pair else sum(pair) for col, pair in zip(TOKEN_COLUMNS, both, strict=False)}
            )
        if again is not None and again.error:  # the re-ask failed: the row has no verdict
            provenance.update(status="failed", error=f"re-ask failed: {again.error}")
            stats.failed += 1
        elif again is not None and again.truncated and provenance["status"] == "ok":
            provenance["status"] = "truncated"
        failed = provenance["status"] == "failed"
        stats.truncated += provenance["status"] == "truncated"
        verdict = read_verdict("" if failed else res.text, "" if failed else reask_text)
        rating, orientation, source_kind = verdict.rating, verdict.orientation, verdict.source
        if not failed and (rating is None or orientation is None):
            stats.unparsed += 1
        rows.append(
            {
                **{c: row.get(c, "") for c in MANIFEST_COLUMNS},
                "model": row["model"],
                "allm_status": str(row.get("status") or "ok"),
                "judge": judge,
                "judge_model": backend.model,
                **provenance,
                "template": tpl.id,
                "template_sha256": tpl.sha256,
                "structured": json.dumps(structured.as_dict()) if structured else "",
                "chat_format": res.metadata.get("chat_format", ""),
                "judge_output": res.text,
                "rating": rating,
                "orientation": orientation,
                "orientation_source": source_kind,
                "reask_output": reask_text,
                "judge_messages": json.dumps(conv, ensure_ascii=False),
            }
        )
    return rows


def to_original_layout(judged: pd.DataFrame) -> pd.DataFrame:
    """The original ``eval.py`` output: ``example.csv``'s columns plus ``llama3_extract``."""
    out = judged[list(MANIFEST_COLUMNS)].copy()
    out[ORIGINAL_OUTPUT_COLUMN] = judged["judge_output"]
    return out


def write_judged(judged: pd.DataFrame, path: str | os.PathLike[str], original_layout: bool = False) -> Path:
    """Write a judged table: ``.csv`` or ``.parquet`` by the file's suffix, atomically."""
    return write_table(to_original_layout(judged) if original_layout else judged, path)


def read_outputs(path: str | os.PathLike[str], model: str | None = None) -> pd.DataFrame:
    """Read an ALLM outputs table (CSV or Parquet) and check it (:func:`check_outputs`)."""
    path = Path(path)
    df = read_table_checked(path, what="outputs table")
    return check_outputs(df, str(path), model=model)
