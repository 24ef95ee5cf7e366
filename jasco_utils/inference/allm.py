"""ALLM inference over the manifest: every clip with each of the 8 instructions.

An ALLM gets one user turn: the clip (16 kHz mono, sent as a base64 WAV ``input_audio``
part, which vLLM's chat and OpenAI-compatible audio servers both read) followed by the
instruction text, with the model's own chat template and audio placeholders. The calls go
through the same store, cache and resume as judging (:mod:`jasco_utils.models.runner`).

Answers made elsewhere (SALMONN, LTU-AS and WavLLM need their own repositories) come in
through :func:`import_outputs`, which checks them against the manifest.

Checks that the audio reaches the model, and which modality it uses: ``audio_mode`` feeds the
clip under an intervention of :mod:`jasco_utils.inference.interventions` (``silence``,
``speech_masked``, ``sound_suppressed``), for :func:`ablation_report`;
:func:`answer_diversity_warnings` flags answers repeated across many different clips.
"""

from __future__ import annotations

import base64
import difflib
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from jasco_utils.core.io import TableError, line_of, read_csv_checked
from jasco_utils.data.clips import TARGET_SR, load_clip
from jasco_utils.data.manifest import (
    INSTRUCTIONS,
    MANIFEST_COLUMNS,
    check_rows,
    format_clip_list,
    instruction_index,
)
from jasco_utils.inference.interventions import (
    AUDIO_CONDITIONS,
    DEFAULT_MASK_METHOD,
    SpeechSegments,
    intervene,
    intervention_identity,
    mask_segments,
)
from jasco_utils.models.base import Backend, Conversation, SamplingConfig
from jasco_utils.models.runner import CachedRunner, CallResult, CallStats, typed_tokens
from jasco_utils.models.store import Store

#: Ways to feed a clip: the clip itself, or an intervention on it
#: (:mod:`jasco_utils.inference.interventions`).
AUDIO_MODES = ("audio", *AUDIO_CONDITIONS)
#: Columns an outputs table has after the manifest's (the provenance ones, engine to
#: the token counts, are :data:`jasco_utils.models.runner.PROVENANCE_COLUMNS`).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "model",
    "allm_model",
    "engine",
    "engine_version",
    "sampling",
    "audio_mode",
    "transcript",
    "status",
    "error",
    "from_cache",
    "cache_key",
    "started_at",
    "finished_at",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
)


def wav_base64(wave: np.ndarray, sr: int = TARGET_SR, subtype: str = "PCM_16") -> str:
    """A waveform as a base64 WAV.

    Args:
        wave: Mono samples (nominally within [-1, 1]).
        sr: Sample rate.
        subtype: ``PCM_16`` (what ALLMs get: exact for 16-bit sources; samples clipped to
            [-1, 1]) or ``FLOAT`` (float32 samples kept exactly, unclipped: what speech
            recognition gets).

    >>> w = np.array([0.5, -1.5, 0.1234567], dtype=np.float32)
    >>> back = sf.read(io.BytesIO(base64.b64decode(wav_base64(w, subtype="FLOAT"))), dtype="float32")[0]
    >>> bool((back == w).all())
    True
    >>> wav_base64(w, subtype="FLOAT") == wav_base64(w.copy(), subtype="FLOAT")  # no time stamp inside
    True
    """
    buf = io.BytesIO()
    samples = wave if subtype in ("FLOAT", "DOUBLE") else np.clip(wave, -1.0, 1.0)
    sf.write(buf, samples, sr, format="WAV", subtype=subtype)
    return base64.b64encode(_without_timestamp(buf.getvalue())).decode("ascii")


def _without_timestamp(wav: bytes) -> bytes:
    """The WAV with the time stamp of its ``PEAK`` chunk zeroed.

    libsndfile writes a ``PEAK`` chunk into float WAVs, stamped with the time of writing;
    zeroed, the same samples always give the same bytes, and so the same cache key.
    """
    out = bytearray(wav)
    pos = 12  # after "RIFF", the size and "WAVE"
    while pos + 8 <= len(out):
        size = int.from_bytes(out[pos + 4 : pos + 8], "little")
        if out[pos : pos + 4] == b"PEAK":  # version (4 bytes), time stamp (4 bytes), peaks
            out[pos + 12 : pos + 16] = bytes(4)
            break
        pos += 8 + size + (size & 1)
    return bytes(out)


def audio_conversation(audio_b64: str, prompt: str | None = None, system: str | None = None) -> Conversation:
    """One user turn: the audio part, then the instruction (the order ALLM chat templates use).

    Without ``prompt`` the turn holds the audio only (what speech recognition gets).
    """
    conv: Conversation = [{"role": "system", "content": system}] if system else []
    content = [{"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}}]
    if prompt is not None:
        content.append({"type": "text", "text": prompt})
    conv.append({"role": "user", "content": content})
    return conv


def clip_audio(
    row: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None,
    audio_mode: str,
    segments: SpeechSegments | None,
    mask_method: str = DEFAULT_MASK_METHOD,
) -> np.ndarray:
    """The 16 kHz mono waveform a row's model gets, in the given audio mode.

    The clip is the row's ``audio`` file when there is one, else clip ``id`` of the dataset
    folder (:func:`jasco_utils.data.clips.load_clip`); an audio mode other than ``audio`` is an
    intervention on it (:func:`jasco_utils.inference.interventions.intervene`).

    Raises:
        FileNotFoundError: The clip's file is not there.
        ValueError: ``speech_masked`` by the recogniser's words without the clip's segments.
    """
    wave = load_clip(int(row["id"]), data_dir, row.get("audio"))
    if audio_mode == "speech_masked" and (segments is not None or mask_method != "vad"):
        if segments is None or int(row["id"]) not in segments:
            raise ValueError(f"audio_mode speech_masked needs the speech segments of clip {row['id']}")
        return mask_segments(wave, segments[int(row["id"])])
    return intervene(wave, audio_mode)


def _output_rows(
    manifest: pd.DataFrame,
    results: Sequence[CallResult],
    backend: Backend,
    model: str,
    sampling: SamplingConfig,
    audio_mode: str,
    transcripts: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    rows = []
    for row, res in zip(manifest.to_dict(orient="records"), results, strict=True):
        rows.append(
            {
                **{c: row.get(c, "") for c in MANIFEST_COLUMNS},
                "allm_output": res.text,
                "model": model,
                "allm_model": backend.model,
                **res.provenance(backend, sampling),
                "audio_mode": audio_mode,
                "transcript": (transcripts or {}).get(int(row["id"]), ""),
            }
        )
    return typed_tokens(pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *OUTPUT_COLUMNS]))


def run_conversations(
    manifest: pd.DataFrame,
    conversations: list[Conversation],
    backend: Backend,
    store: Store,
    model: str,
    sampling: SamplingConfig,
    extra: dict[str, Any],
    audio_mode: str = "audio",
    transcripts: Mapping[int, str] | None = None,
    chunk_size: int = 64,
    progress: bool = True,
) -> tuple[pd.DataFrame, CallStats]:
    """Run one conversation per manifest row and return the outputs table and the counts."""
    stats = CallStats()
    with tqdm(total=len(conversations), desc=f"{model}: answering", unit="row", disable=not progress) as bar:
        results = CachedRunner(backend, store, sampling, None, chunk_size, bar).run(conversations, extra, stats)
    return _output_rows(manifest, results, backend, model, sampling, audio_mode, transcripts), stats


def infer_table(
    manifest: pd.DataFrame,
    backend: Backend,
    store: Store,
    model: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    sampling: SamplingConfig | None = None,
    audio_mode: str = "audio",
    speech_segments: SpeechSegments | None = None,
    mask_method: str = DEFAULT_MASK_METHOD,
    system: str | None = None,
    chunk_size: int = 64,
    progress: bool = True,
) -> tuple[pd.DataFrame, CallStats]:
    """Answer every manifest row with an audio LLM.

    Args:
        manifest: The manifest (or a subset of whole clips).
        backend: The ALLM (vLLM or an OpenAI-compatible audio server).
        store: The call store (cache and resume).
        model: Name written in the ``model`` column (default: the backend's model id).
        data_dir: Where clips are found when a row's ``audio`` is not a file.
        sampling: Sampling settings; greedy with seed 0 by default. ``max_tokens`` is
            recorded with each answer.
        audio_mode: ``audio`` or an intervention: ``silence``, ``speech_masked``, ``sound_suppressed``
            (:mod:`jasco_utils.inference.interventions`).
        speech_segments: Per clip, the speech segments (for ``speech_masked``; without them the
            voice-activity detector finds them, unless ``mask_method`` is ``asr``).
        mask_method: What found the segments (``vad`` or ``asr``): recorded in the cache key.
        system: An optional system message (none by default: the model's template decides).
        chunk_size: Rows per engine call.
        progress: Show a progress bar.

    Returns:
        The outputs table (manifest columns with ``allm_output`` filled, then
        :data:`OUTPUT_COLUMNS`) and the counts. Failed rows have ``status == "failed"``
        and an empty answer: judging refuses them until a re-run fills them.
    """
    if audio_mode not in AUDIO_MODES:
        raise ValueError(f"audio_mode must be one of {AUDIO_MODES}, not {audio_mode!r}")
    check_rows(manifest, "manifest", what="manifest")
    sampling = sampling or SamplingConfig(max_tokens=512)
    audio_b64: dict[int, str] = {}
    conversations = []
    for row in manifest.to_dict(orient="records"):
        cid = int(row["id"])
        if cid not in audio_b64:
            audio_b64[cid] = wav_base64(clip_audio(row, data_dir, audio_mode, speech_segments, mask_method))
        conversations.append(audio_conversation(audio_b64[cid], row["prompt"], system))
    return run_conversations(
        manifest,
        conversations,
        backend,
        store,
        model or backend.model,
        sampling,
        _allm_extra(audio_mode, mask_method),
        audio_mode,
        chunk_size=chunk_size,
        progress=progress,
    )


def _allm_extra(audio_mode: str, mask_method: str) -> dict[str, Any]:
    """What an ALLM's cache key adds to the messages; the original clip's (and silence's) as before
    interventions existed, so their stored answers stay valid."""
    extra: dict[str, Any] = {"task": "allm", "audio_mode": audio_mode}
    if audio_mode in ("sound_suppressed", "speech_masked"):
        extra["intervention"] = intervention_identity(audio_mode, mask_method)
    return extra


def _read_jsonl_answers(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A JSONL file of answers as a table, with each row's line number.

    Raises:
        TableError: Naming the line: not UTF-8, not JSON, not an object, a field that is not text,
            an instruction that is not 1..8.
    """
    records = []
    if not path.is_file():
        raise TableError(f"{path}: no such answers file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TableError(
            f"{path}: line {line}: not UTF-8 (byte {raw[e.start]:#04x}); re-save the file as UTF-8"
        ) from None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TableError(f"{path}: line {n}: not JSON ({e.msg}); each line holds one JSON object") from None
        if not isinstance(obj, dict):
            raise TableError(
                f"{path}: line {n}: a JSON {type(obj).__name__}, not an object; each line holds one "
                'object such as {"id": 1, "instruction": 1, "allm_output": "..."}'
            )
        for key in ("allm_output", "prompt"):
            if key in obj and not isinstance(obj[key], str):
                raise TableError(f"{path}: line {n}, field {key!r}: a JSON {type(obj[key]).__name__}, not text")
        if "prompt" not in obj and "instruction" in obj:
            try:
                obj["prompt"] = INSTRUCTIONS[int(obj["instruction"]) - 1]
            except (ValueError, IndexError):
                raise TableError(f"{path}: line {n}: instruction {obj['instruction']!r} is not 1..8") from None
        records.append({**obj, "_line": n})
    df = pd.DataFrame(records)
    line_no = df.get("_line", pd.Series(dtype=int)).tolist()
    return df, line_no


#: The longest imported answer accepted, in bytes of UTF-8 (an ALLM's answer is a few sentences;
#: the judge prompt carries it whole, so a runaway one would fill the judge's context).
MAX_IMPORTED_ANSWER_BYTES = 100_000


def _read_answers(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """An answers file (CSV or JSONL) and each row's line number in it."""
    if path.suffix == ".jsonl":
        df, line_no = _read_jsonl_answers(path)
    else:
        df = read_csv_checked(path, what="ALLM outputs")
        line_no = [line_of(i, path) for i in df.index]
    for col in ("id", "prompt", "allm_output"):
        if col not in df.columns:
            raise TableError(f"{path}: lacks {col!r} (need id, prompt or instruction, allm_output)")
    return df, line_no


def _answer_problem(answer: Any) -> str | None:
    """What is wrong with an imported answer (empty, or too long to be one), or None."""
    if answer is None or (isinstance(answer, float) and pd.isna(answer)) or not str(answer).strip():
        return "empty allm_output"
    size = len(str(answer).encode("utf-8"))
    if size > MAX_IMPORTED_ANSWER_BYTES:
        return (
            f"allm_output is {size / 1e3:.0f} kB, over the {MAX_IMPORTED_ANSWER_BYTES // 1000} kB an answer may "
            "hold (an answer to one instruction is a few sentences: is the column shifted, or a transcript or "
            "log pasted in?)"
        )
    return None


def import_outputs(
    manifest: pd.DataFrame,
    path: str | os.PathLike[str],
    model: str | None = None,
    skip_clips: set[int] = frozenset(),
) -> pd.DataFrame:
    """Fill the manifest's ``allm_output`` from answers made elsewhere.

    Reads a CSV (the original ``example.csv`` layout, or any table with ``id``, ``prompt``
    and ``allm_output``) or JSONL (one object per line with ``id``, ``allm_output`` and
    either ``prompt`` or ``instruction``, 1-8). Every manifest row must get exactly one
    non-empty answer of at most :data:`MAX_IMPORTED_ANSWER_BYTES`. Answers for ``skip_clips`` (clips of a larger manifest left out by
    ``--clips``/``--limit``) are passed over.

    Raises:
        TableError: Listing the offending rows: missing or duplicated (clip, instruction)
            pairs, ids or instructions that are not in the manifest, empty or oversized answers.
    """
    path = Path(path)
    df, line_no = _read_answers(path)
    problems: list[str] = []
    ids = pd.to_numeric(df["id"], errors="coerce")
    want = {(int(r["id"]), r["prompt"]) for r in manifest.to_dict(orient="records")}
    seen: dict[tuple[int, str], int] = {}
    for i, (cid, prompt, answer) in enumerate(zip(ids, df["prompt"], df["allm_output"], strict=False)):
        where = f"line {line_no[i]}"
        if pd.isna(cid) or cid != int(cid):
            problems.append(f"{where}: id {df['id'].iloc[i]!r} is not a clip id")
            continue
        pair = (int(cid), str(prompt))
        if pair[0] in skip_clips:
            continue
        if instruction_index(str(prompt)) is None:
            problems.append(f"{where}: prompt {str(prompt)[:60]!r} is not one of the 8 instructions")
        elif pair not in want:
            problems.append(f"{where}: clip {int(cid)} is not in the manifest")
        elif pair in seen:
            problems.append(
                f"{where}: clip {pair[0]}, instruction {instruction_index(pair[1]) + 1} again (first on line {seen[pair]})"
            )
        else:
            seen[pair] = line_no[i]
        problem = _answer_problem(answer)
        if problem:
            problems.append(f"{where}: {problem}")
    unanswered = want - set(seen)
    answered_clips = {c for c, _ in seen}
    absent = sorted({c for c, _ in unanswered} - answered_clips)
    if absent and answered_clips and not problems and not {c for c, _ in unanswered} & answered_clips:
        clips = format_clip_list(sorted(answered_clips))
        raise TableError(
            f"{path}: answers clips {clips} only (all 8 instructions each), and the manifest has "
            f"{len(absent)} more; import them for those clips with --clips {clips} "
            "(or a manifest of those clips: jasco manifest --clips ...)"
        )
    for cid, prompt in sorted(unanswered, key=lambda p: (p[0], instruction_index(p[1]))):
        problems.append(f"clip {cid}, instruction {instruction_index(prompt) + 1}: no answer")
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise TableError(f"{path}: {len(problems)} problem(s) with the imported answers:\n  {shown}{more}")
    answers = {
        k: str(a)
        for k, a in zip(zip(ids.astype(int), df["prompt"].astype(str), strict=False), df["allm_output"], strict=False)
    }
    out = manifest.copy()
    out["allm_output"] = [answers[(int(r["id"]), r["prompt"])] for r in manifest.to_dict(orient="records")]
    out["model"] = model or path.stem
    out["status"] = "ok"
    return out


def answer_diversity_warnings(outputs: pd.DataFrame, share: float = 0.25) -> list[str]:
    """Warnings for answers repeated across many different clips (audio not reaching the model?).

    An answer given, word for word, for more than ``share`` of the clips is flagged.
    """
    warnings = []
    n_clips = outputs["id"].nunique()
    for (model, answer), grp in outputs.groupby(["model", "allm_output"]):
        clips = grp["id"].nunique()
        if n_clips >= 4 and clips > share * n_clips:
            warnings.append(
                f"{model}: the same answer for {clips} of {n_clips} clips ({str(answer)[:80]!r}); "
                "check that the audio reaches the model"
            )
    return warnings


def ablation_report(
    normal: pd.DataFrame, ablated: pd.DataFrame, similarity: Callable[[str, str], float] | None = None
) -> pd.DataFrame:
    """How much the answers change when the audio is ablated, per instruction and overall.

    Returns:
        Rows per instruction (1..8) and ``all``: ``identical`` (share of answers unchanged,
        word for word) and ``similarity`` (mean ``difflib`` ratio; 1 = unchanged).
    """

    sim = similarity or (lambda a, b: difflib.SequenceMatcher(None, a, b).ratio())
    key = ["id", "prompt"]
    merged = normal[[*key, "allm_output"]].merge(ablated[[*key, "allm_output"]], on=key, suffixes=("", "_ablated"))
    merged["identical"] = merged["allm_output"] == merged["allm_output_ablated"]
    merged["similarity"] = [
        sim(a, b) for a, b in zip(merged["allm_output"], merged["allm_output_ablated"], strict=False)
    ]
    merged["instruction"] = merged["prompt"].map(instruction_index) + 1
    per = merged.groupby("instruction")[["identical", "similarity"]].mean()
    per.loc["all"] = merged[["identical", "similarity"]].mean()
    per["rows"] = list(merged.groupby("instruction").size()) + [len(merged)]
    return per
