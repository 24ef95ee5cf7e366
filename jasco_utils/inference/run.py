"""The inference stage for one ALLM: the manifest in, an outputs table on disk out.

``jasco infer``, the inference notebook (through :mod:`jasco_utils.pipeline.reproduce`) and Python code
call :func:`answer_manifest` with a :class:`~jasco_utils.config.ModelSpec`: an audio LLM on a
model engine (options passed to the backend unchanged), the ``cascade`` baseline (speech
recognition, then a text LLM), or ``import`` of answers made elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from jasco_utils.core.io import prepare_target, read_csv_checked, write_pair
from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.data.clips import load_clips
from jasco_utils.data.manifest import MANIFEST_COLUMNS, check_rows, clip_ids, select_clips
from jasco_utils.inference.allm import answer_diversity_warnings, import_outputs, infer_table, run_conversations
from jasco_utils.inference.asr import mask_spans, transcribe_clips
from jasco_utils.inference.cascade import cascade_extra, cascade_messages, cascade_table, transcript_wer
from jasco_utils.models.base import Backend
from jasco_utils.models.registry import check_spec, make_backend
from jasco_utils.models.runner import CallStats
from jasco_utils.models.spec import ModelSpec, resolve_generate
from jasco_utils.models.store import Store
from jasco_utils.models.whisper import SpeechRecognizer


@dataclass
class InferRun:
    """What one ALLM's pass wrote, and its counts.

    Attributes:
        spec: The ALLM.
        path: The outputs table (CSV; a Parquet copy lies beside it).
        rows: Rows written.
        stats: Model-call counts (``None`` for imported answers).
        notes: Lines worth printing (e.g. the transcripts' word error rate).
        warnings: Signs that something is off (e.g. the same answer for many clips).
    """

    spec: ModelSpec
    path: Path
    rows: int = 0
    stats: CallStats | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.stats.failed if self.stats else 0

    def summary(self) -> str:
        """One paragraph for people: counts and where the table went."""
        if self.stats is None:
            return f"imported {self.rows} answers of {self.spec.name}; wrote {self.path}"
        s = self.stats
        text = (
            f"{self.spec.name}: {s.total} rows: {s.from_cache} from cache, {s.called} model calls, "
            f"{s.failed} failed, {s.truncated} truncated (cut off at max_tokens; judged as the original did)"
            f"\nwrote {self.path} and .parquet"
        )
        return text


def read_manifest(path: str | os.PathLike[str]):
    """Read and check a manifest (or a subset of its clips).

    Raises:
        TableError: Naming the file, line and column at fault.
    """
    manifest = read_csv_checked(path, MANIFEST_COLUMNS, what="manifest")
    check_rows(manifest, path, what="manifest")
    return manifest


def answer_manifest(
    spec: ModelSpec,
    manifest: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    audio_mode: str = "audio",
    chunk_size: int = 64,
    progress: bool = True,
    clips: list[int] | None = None,
    limit: int | None = None,
) -> InferRun:
    """Answer every row of a manifest with one ALLM and write its outputs table (CSV and Parquet).

    Args:
        spec: The ALLM (``engine`` a model engine, ``cascade`` or ``import``; ``generate``
            how it answers: default greedy, seed 0, 512 tokens).
        manifest: The manifest CSV (``jasco manifest``).
        out: The outputs table (the run folder's ``outputs/KEY.csv``: :meth:`jasco_utils.run.Run.output_path`).
        data_dir: Where clips are found when a row's ``audio`` is not a file.
        store: The call store (cache and resume).
        audio_mode: ``audio`` or a condition of :mod:`jasco_utils.inference.interventions` (model
            engines only; the spec's ``condition``, when it has one, wins: it also applies to the cascade).
        chunk_size: Rows per engine call.
        progress: Show progress bars.
        clips, limit: Answer these clips of the manifest only, then the first ``limit`` of
            them (:func:`jasco_utils.data.manifest.select_clips`).

    Raises:
        TableError: The manifest or the imported answers are malformed.
        EngineError: The engine cannot run the model.
        FileNotFoundError: A clip or the imported file is missing.
        ValueError: A clip asked for is not in the manifest.
    """
    spec = resolve_generate(check_spec(spec))
    full = read_manifest(manifest)
    rows = select_clips(full, clips, limit, str(manifest))
    out = prepare_target(Path(out))
    run = InferRun(spec, out)
    if spec.engine == "import":
        skipped = set(clip_ids(full["id"])) - set(clip_ids(rows["id"]))
        df = import_outputs(rows, spec.path, model=spec.name, skip_clips=skipped)
    elif spec.engine == "cascade":
        df = _answer_by_cascade(spec, rows, run, store, data_dir, chunk_size, progress)
    else:
        df = _answer_by_model(spec, rows, run, store, data_dir, spec.condition or audio_mode, chunk_size, progress)
    write_pair(df, out)
    run.rows = len(df)
    if run.stats is not None:
        run.warnings = answer_diversity_warnings(df[df["status"] != "failed"])
    return run


def _answer_by_model(
    spec: ModelSpec,
    rows: pd.DataFrame,
    run: InferRun,
    store: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None,
    condition: str,
    chunk_size: int,
    progress: bool,
) -> pd.DataFrame:
    with Store(store) as st, make_backend(spec.engine, spec.model, **spec.options) as backend:
        df, run.stats = answer_under(condition, rows, backend, st, spec, data_dir, chunk_size, progress)
    return df


def answer_under(
    condition: str,
    rows: pd.DataFrame,
    backend: Backend,
    store: Store,
    spec: ModelSpec,
    data_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = 64,
    progress: bool = True,
) -> tuple[pd.DataFrame, CallStats]:
    """An ALLM's answers under a condition: the clip (``audio``), an intervention on it
    (:mod:`jasco_utils.inference.interventions`), or, for ``transcript_only``, the clip's transcript
    as text (the cascade's prompt, without its system message, the ALLM as the text LLM).

    Args:
        condition: ``audio`` or one of :data:`jasco_utils.models.spec.CONDITIONS`.
        rows: The manifest rows.
        backend: The ALLM's backend (vLLM in-process or an OpenAI-compatible audio server).
        store: The call store.
        spec: The ALLM (its ``name``, ``generate`` and ``system`` are used).
        data_dir, chunk_size, progress: As :func:`answer_manifest`'s.
    """
    sampling = spec.generate.sampling()
    transcripts = segments = None
    recognizer = SpeechRecognizer() if condition in ("speech_masked", "transcript_only") else None
    if recognizer is not None:
        transcripts = transcribe_clips(rows, recognizer, store, data_dir, progress)
    if condition == "speech_masked":
        segments = mask_spans(load_clips(rows, data_dir), transcripts)
    if condition != "transcript_only":
        return infer_table(
            rows,
            backend,
            store,
            model=spec.name,
            data_dir=data_dir,
            sampling=sampling,
            audio_mode=condition,
            speech_segments=segments,
            chunk_size=chunk_size,
            progress=progress,
            system=spec.system,
        )
    conversations = [
        cascade_messages(transcripts[int(r["id"])].text, r["prompt"], system=spec.system)
        for r in rows.to_dict(orient="records")
    ]
    extra = {"task": "allm", "audio_mode": condition, **cascade_extra(recognizer)}
    texts = {c: t.text for c, t in transcripts.items()}
    return run_conversations(
        rows, conversations, backend, store, spec.name, sampling, extra, condition, texts, chunk_size, progress
    )


def _answer_by_cascade(
    spec: ModelSpec,
    rows: pd.DataFrame,
    run: InferRun,
    store: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None,
    chunk_size: int,
    progress: bool,
) -> pd.DataFrame:
    """The cascade's answers (speech recognition, then the text LLM); its stats and the
    transcripts' word error rate go on ``run``."""
    recognizer = SpeechRecognizer(spec.asr_model) if spec.asr_model else SpeechRecognizer()
    with Store(store) as st, make_backend(spec.backend_engine, spec.model, **spec.options) as text_backend:
        df, run.stats, transcripts = cascade_table(
            rows,
            recognizer,
            text_backend,
            st,
            model=spec.name,
            data_dir=data_dir,
            sampling=spec.generate.sampling(),
            chunk_size=chunk_size,
            progress=progress,
            condition=spec.condition,
        )
    wer, _ = transcript_wer(transcripts, data_dir)
    run.notes.append(f"transcripts: {len(transcripts)} clips, word error rate {100 * wer:.1f}% against v0.csv Speech")
    return df
