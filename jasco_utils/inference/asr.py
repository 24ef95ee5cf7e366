"""Speech recognition of the clips, cached in the call store; speech segments; word error rate.

The JASCO clips (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning",
arXiv:2409.14526) mix a designed sound with one designed spoken sentence. Recognizing that
sentence serves three purposes here:

* the cascade baseline (:mod:`jasco_utils.inference.cascade`): speech recognition, then a text LLM;
* the ``speech_masked`` ablation of :mod:`jasco_utils.inference.allm`: :func:`speech_segments`
  gives, per clip, where the words are (from word timestamps) so they can be zeroed;
* a check of the clips themselves: :func:`word_error_rate` and :func:`per_clip_wer`
  compare transcripts with the ``Speech`` column of ``v0.csv``.

The recognizer is a model like the judges and ALLMs
(:class:`~jasco_utils.models.whisper.SpeechRecognizer`: Whisper tiny.en by default, decoding
deterministic), and :func:`transcribe_clips` runs it through the same
:class:`~jasco_utils.models.runner.CachedRunner` and SQLite
:class:`~jasco_utils.models.store.Store`. Each clip is transcribed once: the key holds the
recognizer's identity (engine, model, SHA-256 of the weights, every option that changes the
output) and the audio sent, hashed. A re-run reads the store and does not even load the
model. An empty transcript (no speech recognized) is not a storable result (the store
refuses empty outputs): it is recorded in the store's ``failures`` table and recognized
again next run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.data.clips import load_clips
from jasco_utils.inference.allm import audio_conversation, wav_base64
from jasco_utils.inference.interventions import DEFAULT_MASK_METHOD, MASK_METHODS, intervene, vad_segments
from jasco_utils.models.base import EngineError, SamplingConfig
from jasco_utils.models.runner import CachedRunner, CallStats
from jasco_utils.models.store import Store
from jasco_utils.models.whisper import NO_SPEECH, SpeechRecognizer, Transcript

#: Words closer than this (seconds) are merged into one speech segment.
SEGMENT_MAX_GAP_S = 0.3
#: Margin added on each side of a speech segment (Whisper's word times are approximate).
SEGMENT_PAD_S = 0.1

#: What the cache key adds to the recognizer's identity and the audio.
_EXTRA = {"task": "asr"}


def transcribe_clips(
    manifest_or_clip_ids: pd.DataFrame | Iterable[int],
    recognizer: SpeechRecognizer,
    store: Store,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[int, Transcript]:
    """Transcribe each clip once, through the store.

    Each clip goes to the recognizer as a float32 WAV, so the waveform it decodes is the
    loaded clip's, sample for sample (:func:`jasco_utils.data.clips.load_clip`).

    Args:
        manifest_or_clip_ids: A manifest (its distinct ``id``; ``audio`` paths are used when
            they are files) or clip ids.
        recognizer: The speech recognizer.
        store: The call store (a stored transcript is never recomputed).
        data_dir: The dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        progress: Show a progress bar.

    Returns:
        Clip id -> transcript, in ascending clip id. A clip where nothing was recognized
        gets an empty transcript (and is recognized again next run).

    Raises:
        FileNotFoundError: A clip's file is not there.
        EngineError: The recognizer cannot run, or failed on a clip for another reason than
            hearing no speech (the failure is recorded in the store; a re-run retries it).
    """
    return transcribe_waves(load_clips(manifest_or_clip_ids, data_dir), recognizer, store, progress)


def transcribe_waves(
    waves: Mapping[int, np.ndarray], recognizer: SpeechRecognizer, store: Store, progress: bool = True
) -> dict[int, Transcript]:
    """Transcribe waveforms (e.g. intervened clips) once each, through the store.

    Args:
        waves: Clip id -> 16 kHz mono float32 waveform (sent as a float32 WAV, sample for sample).
        recognizer: The speech recognizer.
        store: The call store (the key holds the recognizer's identity and the audio, hashed).
        progress: Show a progress bar.

    Returns:
        Clip id -> transcript, in the order of ``waves`` (empty where nothing was recognized).

    Raises:
        EngineError: As :func:`transcribe_clips`.
    """
    conversations = [audio_conversation(wav_base64(w, subtype="FLOAT")) for w in waves.values()]
    with tqdm(total=len(waves), desc="speech recognition", unit="clip", disable=not progress) as bar:
        runner = CachedRunner(recognizer, store, SamplingConfig(), bar=bar)
        results = dict(zip(waves, runner.run(conversations, _EXTRA, CallStats()), strict=True))
    failed = {cid: r.error for cid, r in results.items() if r.error and r.error != NO_SPEECH}
    if failed:
        raise EngineError(
            f"speech recognition failed on clip(s) {sorted(failed)}: {next(iter(failed.values()))} "
            "(recorded in the store's failures; re-run to retry)"
        )
    return {cid: Transcript.from_record(r.text, r.metadata) for cid, r in results.items()}


def _merge_spans(
    spans: Iterable[tuple[float, float]], max_gap: float, pad: float, end: float | None = None
) -> list[tuple[float, float]]:
    """Pad (start, end) spans and merge those less than ``max_gap`` apart.

    >>> _merge_spans([(1.0, 1.2), (1.3, 1.5), (3.0, 3.4)], max_gap=0.3, pad=0.0)
    [(1.0, 1.5), (3.0, 3.4)]
    >>> _merge_spans([(0.05, 0.5), (2.0, 2.9)], max_gap=0.3, pad=0.1, end=2.95)
    [(0.0, 0.6), (1.9, 2.95)]
    """
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] < max_gap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = []
    for a, b in merged:
        hi = round(b + pad, 3)
        out.append((round(max(0.0, a - pad), 3), hi if end is None else min(hi, end)))
    # padding can make neighbours touch: merge again without padding
    final: list[tuple[float, float]] = []
    for a, b in out:
        if final and a <= final[-1][1]:
            final[-1] = (final[-1][0], max(final[-1][1], b))
        else:
            final.append((a, b))
    return final


def speech_segments(
    transcripts: Mapping[int, Transcript], max_gap: float = SEGMENT_MAX_GAP_S, pad: float = SEGMENT_PAD_S
) -> dict[int, list[tuple[float, float]]]:
    """Per clip, where the speech is: word spans padded and merged (for ``speech_masked``).

    Args:
        transcripts: Clip id -> transcript (with word timestamps).
        max_gap: Words closer than this (seconds) are one segment.
        pad: Seconds added before and after each segment (clamped to the clip).

    Returns:
        Clip id -> sorted, disjoint (start_s, end_s) segments; an empty list where no word
        was recognized (nothing would be masked: check such clips by hand).
    """
    return {
        cid: _merge_spans(((a, b) for a, b, _ in t.words), max_gap, pad, t.duration_s or None)
        for cid, t in transcripts.items()
    }


def mask_spans(
    waves: Mapping[int, np.ndarray], transcripts: Mapping[int, Transcript] | None, method: str = DEFAULT_MASK_METHOD
) -> dict[int, list[tuple[float, float]]]:
    """Per clip, what ``speech_masked`` zeroes: where the VAD hears speech (``vad``), where the
    recogniser's words are (``asr``: :func:`speech_segments`), or both (``both``).

    Raises:
        ValueError: An unknown method, or ``asr``/``both`` without the clips' transcripts.
    """
    if method not in MASK_METHODS:
        raise ValueError(f"mask method must be one of {MASK_METHODS}, not {method!r}")
    if method != "vad" and transcripts is None:
        raise ValueError(f"mask method {method!r} needs the clips' transcripts")
    words = speech_segments({c: transcripts[c] for c in waves}) if transcripts is not None else {}
    vad = {c: vad_segments(w) for c, w in waves.items()} if method != "asr" else {}
    return {c: sorted([*vad.get(c, []), *words.get(c, [])]) for c in waves}


def intervene_clips(
    waves: Mapping[int, np.ndarray], condition: str, transcripts: Mapping[int, Transcript] | None = None
) -> dict[int, np.ndarray]:
    """The clips under an audio condition, as inference makes them: ``speech_masked`` zeroes
    :func:`mask_spans`' spans (the default method, from the clips' ``transcripts``), the others are
    :func:`jasco_utils.inference.interventions.intervene` of each clip."""
    spans = mask_spans(waves, transcripts) if condition == "speech_masked" else {}
    return {c: intervene(w, condition, spans.get(c)) for c, w in waves.items()}


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})


def normalize_text(s: str) -> str:
    """Text for word error rate: lowercase, punctuation dropped, spaces collapsed.

    Typographic apostrophes become ``'``, which is kept inside words (``it's`` and ``its``
    differ); commas and points between digits are kept (``1,000`` -> ``1000``); other
    punctuation and symbols become spaces. Numbers are not spelled out (``20`` and
    ``twenty`` still differ).

    >>> normalize_text("Let\u2019s build a castle over there.")
    "let's build a castle over there"
    >>> normalize_text("  That's not a yellow, but a RED! ")
    "that's not a yellow but a red"
    >>> normalize_text("'Well-known' \u2014 he said... $1,000 or 2.5?")
    'well known he said 1000 or 2.5'
    >>> normalize_text("rock 'n' roll") == normalize_text("Rock \u2018n\u2019 roll")
    True
    >>> normalize_text("")
    ''
    """
    s = s.lower().translate(_APOSTROPHES)
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)
    s = re.sub(r"(?<=\d)\.(?=\d)", "\x00", s)  # decimal point: keep
    s = re.sub(r"[^\w\s'\x00]|_", " ", s)
    s = re.sub(r"(?<!\w)'|'(?!\w)", " ", s)  # quotes, not apostrophes inside words
    return " ".join(s.replace("\x00", ".").split())


def _jiwer():
    try:
        import jiwer
    except ImportError as e:
        raise ImportError("word error rate needs jiwer: pip install jiwer") from e
    return jiwer


def _normalized_pairs(references: Sequence[str], hypotheses: Sequence[str], labels: Sequence[Any] | None = None):
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalize_text(str(r)) for r in references]
    hyps = [normalize_text(str(h)) for h in hypotheses]
    for i, r in enumerate(refs):
        if not r:
            where = f"clip {labels[i]}" if labels is not None else f"reference {i}"
            raise ValueError(f"{where}: the reference {references[i]!r} has no words after normalization")
    return refs, hyps


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate: total edits over total reference words, after :func:`normalize_text`.

    Raises:
        ValueError: Lengths differ, or a reference has no words.
    """
    refs, hyps = _normalized_pairs(references, hypotheses)
    if not refs:
        raise ValueError("no reference to score")
    return float(_jiwer().process_words(refs, hyps).wer)


def per_clip_wer(references: Mapping[int, str], hypotheses: Mapping[int, str]) -> pd.DataFrame:
    """Word errors per clip, after :func:`normalize_text`.

    Args:
        references: Clip id -> what was said.
        hypotheses: Clip id -> what was recognized (every reference's clip must be here).

    Returns:
        One row per clip, in ascending id: ``id``, ``reference``, ``hypothesis`` (both
        normalized), ``ref_words``, ``hits``, ``substitutions``, ``deletions``,
        ``insertions``, ``errors``, ``wer``.

    Raises:
        KeyError: A reference's clip has no hypothesis.
    """
    ids = sorted(int(c) for c in references)
    missing = [c for c in ids if c not in hypotheses]
    if missing:
        raise KeyError(f"no hypothesis for clip(s) {missing}")
    refs, hyps = _normalized_pairs([references[c] for c in ids], [hypotheses[c] for c in ids], ids)
    jiwer = _jiwer()
    rows = []
    for cid, r, h in zip(ids, refs, hyps, strict=False):
        o = jiwer.process_words(r, h)
        n = o.hits + o.substitutions + o.deletions
        errors = o.substitutions + o.deletions + o.insertions
        rows.append(
            {
                "id": cid,
                "reference": r,
                "hypothesis": h,
                "ref_words": n,
                "hits": o.hits,
                "substitutions": o.substitutions,
                "deletions": o.deletions,
                "insertions": o.insertions,
                "errors": errors,
                "wer": errors / n,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "reference",
            "hypothesis",
            "ref_words",
            "hits",
            "substitutions",
            "deletions",
            "insertions",
            "errors",
            "wer",
        ],
    )
