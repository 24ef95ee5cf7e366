"""Interventions on a clip: what an ALLM answers when one modality is taken away.

JASCO (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning", arXiv:2409.14526)
asks for answers that need both the sound and the speech of a clip. Figure 2 says which
modality an answer *looks* like it came from; whether a model *used* one is causal, and is
measured by answering again with that modality removed. The conditions (:data:`CONDITIONS`):

* ``sound_suppressed``: the speech kept, the other sounds suppressed by RNNoise
  (:func:`suppress_sound`; Valin, "A Hybrid DSP/Deep Learning Approach to Real-Time
  Full-Band Speech Enhancement", 2018; weights compiled into ``pyrnnoise``);
* ``speech_masked``: the speech removed, the sound kept: the clip zeroed where a voice-activity
  detector finds speech (``mask_method="vad"``: :func:`vad_segments`, Silero VAD, whose model
  ships in ``silero-vad``), where the recogniser's words are (``"asr"``:
  :func:`jasco_utils.inference.asr.speech_segments`), or where either does (``"both"``, the default);
* ``transcript_only``: no audio; the clip's transcript as text with the instruction (built by
  :mod:`jasco_utils.inference.run`, since it needs the recogniser);
* ``silence``: silence of the clip's length (is the audio reaching the model at all?).

Every intervened clip is a pure function of the clip: the same samples twice (resampling with
soxr, RNNoise and the VAD run single-threaded on the CPU). The audio an ALLM gets is hashed into
its cache key with the rest of the messages, and :func:`intervention_identity` (method, its
settings, the library versions) is added to the key, so a change of method re-runs the calls.
How well each does what it claims is measured on the 80 clips by
:mod:`jasco_utils.inference.fidelity` (``jasco data interventions``).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soxr

from jasco_utils.data.clips import TARGET_SR
from jasco_utils.models.spec import CONDITIONS

#: The conditions that change the audio (``transcript_only`` sends none).
AUDIO_CONDITIONS = ("sound_suppressed", "speech_masked", "silence")
#: Where ``speech_masked`` finds the speech: the voice-activity detector, the recogniser's words, or
#: wherever either finds it.
MASK_METHODS = ("vad", "asr", "both")
#: The default: see docs/guides/interventions.md for the measurement that chose it.
DEFAULT_MASK_METHOD = "both"

#: Silero VAD's settings (its defaults but for the padding: speech onsets and breaths are soft).
VAD_SETTINGS: dict[str, Any] = {"threshold": 0.5, "min_speech_duration_ms": 100, "speech_pad_ms": 100}
#: RNNoise works on 48 kHz, 10 ms frames of 16-bit-scaled samples.
RNNOISE_SR = 48_000
#: RNNoise's output lags its input by two frames (measured on the clips: 20 ms); undone.
RNNOISE_DELAY = 960
#: Segments (start, end) in seconds, per clip id: where the speech is.
SpeechSegments = Mapping[int, Sequence[tuple[float, float]]]

_VAD_MODEL: list[Any] = []


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def intervention_identity(condition: str, mask_method: str = DEFAULT_MASK_METHOD) -> dict[str, Any]:
    """What determines a condition's audio besides the clip (part of every cache key under it).

    >>> intervention_identity("silence")
    {'condition': 'silence'}
    >>> intervention_identity("speech_masked", "asr")["method"]
    'asr word timestamps'
    """
    if condition == "sound_suppressed":
        return {"condition": condition, "method": "rnnoise", "pyrnnoise": _version("pyrnnoise"), "delay": RNNOISE_DELAY}
    if condition == "speech_masked":
        if mask_method not in MASK_METHODS:
            raise ValueError(f"mask_method must be one of {MASK_METHODS}, not {mask_method!r}")
        vad = {"silero_vad": _version("silero-vad"), **VAD_SETTINGS}
        if mask_method == "asr":
            return {"condition": condition, "method": "asr word timestamps"}
        if mask_method == "both":
            return {"condition": condition, "method": "silero-vad or asr word timestamps", **vad}
        return {"condition": condition, "method": "silero-vad", **vad}
    if condition in CONDITIONS:
        return {"condition": condition}
    raise ValueError(f"condition must be one of {CONDITIONS}, not {condition!r}")


def audio_sha256(wave: np.ndarray) -> str:
    """SHA-256 of a waveform's float32 samples (little-endian): equal hashes, equal clips.

    >>> audio_sha256(np.zeros(3, dtype=np.float32))[:12]
    '15ec7bf0b507'
    """
    return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()


def mask_segments(wave: np.ndarray, segments: Sequence[tuple[float, float]], sr: int = TARGET_SR) -> np.ndarray:
    """The waveform with the given (start, end) second ranges set to zero.

    >>> mask_segments(np.ones(10, dtype=np.float32), [(0.2, 0.5)], sr=10).tolist()
    [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    out = wave.copy()
    for start, end in segments:
        out[max(0, int(round(start * sr))) : max(0, int(round(end * sr)))] = 0.0
    return out


def _vad_model():
    """Silero VAD's ONNX model (one CPU thread: the same probabilities on every machine)."""
    if not _VAD_MODEL:
        try:
            import torch
        except ImportError as e:
            raise ImportError(
                "speech_masked by VAD needs torch and silero-vad: pip install 'jasco[interventions]'"
            ) from e
        threads = torch.get_num_threads()
        try:
            import silero_vad
        except ImportError as e:
            raise ImportError("speech_masked by VAD needs silero-vad: pip install 'jasco[interventions]'") from e
        finally:
            torch.set_num_threads(threads)  # importing silero_vad sets it to 1 for the whole process
        _VAD_MODEL.append((silero_vad, silero_vad.load_silero_vad(onnx=True)))
    return _VAD_MODEL[0]


def vad_segments(wave: np.ndarray, sr: int = TARGET_SR) -> list[tuple[float, float]]:
    """Where a voice-activity detector (Silero VAD, :data:`VAD_SETTINGS`) hears speech, in seconds.

    Returns:
        Sorted, disjoint (start_s, end_s) segments; empty when it hears none.
    """
    import torch

    silero_vad, model = _vad_model()
    model.reset_states()
    stamps = silero_vad.get_speech_timestamps(
        torch.from_numpy(np.ascontiguousarray(wave, np.float32)), model, sampling_rate=sr, **VAD_SETTINGS
    )
    return [(round(s["start"] / sr, 4), round(s["end"] / sr, 4)) for s in stamps]


def _rnnoise():
    try:
        from pyrnnoise import rnnoise
    except ImportError as e:
        raise ImportError("sound_suppressed needs pyrnnoise: pip install 'jasco[interventions]'") from e
    return rnnoise


def suppress_sound(wave: np.ndarray, sr: int = TARGET_SR) -> np.ndarray:
    """The clip with its non-speech sounds suppressed by RNNoise, speech kept.

    The clip is resampled to 48 kHz (soxr, very high quality), denoised frame by frame from a
    fresh RNNoise state, its two-frame lag undone, and resampled back: the same length, float32.
    """
    rn = _rnnoise()
    frame = rn.FRAME_SIZE
    x = soxr.resample(np.asarray(wave, np.float64), sr, RNNOISE_SR, quality="VHQ") * 32767.0
    padded = np.zeros(len(x) + RNNOISE_DELAY + (-(len(x) + RNNOISE_DELAY) % frame), dtype=np.float32)
    padded[: len(x)] = x
    out = np.empty_like(padded)
    buf = np.empty(frame, dtype=np.float32)
    ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    state = rn.create()
    try:
        for i in range(0, len(padded), frame):
            buf[:] = padded[i : i + frame]
            rn.lib.rnnoise_process_frame(state, ptr, ptr)
            out[i : i + frame] = buf
    finally:
        rn.destroy(state)
    y = out[RNNOISE_DELAY : RNNOISE_DELAY + len(x)].astype(np.float64) / 32767.0
    back = soxr.resample(y, RNNOISE_SR, sr, quality="VHQ").astype(np.float32)
    return _fit_length(back, len(wave))


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    if len(wave) >= n:
        return np.ascontiguousarray(wave[:n])
    return np.concatenate([wave, np.zeros(n - len(wave), dtype=wave.dtype)])


def intervene(wave: np.ndarray, condition: str, segments: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """The clip under an audio condition (:data:`AUDIO_CONDITIONS`), or unchanged for ``audio``.

    Args:
        wave: The clip, 16 kHz mono float32.
        condition: ``audio``, ``sound_suppressed``, ``speech_masked`` or ``silence``.
        segments: For ``speech_masked``: where the speech is (:func:`vad_segments`, or the
            recogniser's words); ``None`` finds them with the VAD.

    Raises:
        ValueError: Not an audio condition.
    """
    if condition == "audio":
        return wave
    if condition == "silence":
        return np.zeros_like(wave)
    if condition == "sound_suppressed":
        return suppress_sound(wave)
    if condition == "speech_masked":
        return mask_segments(wave, vad_segments(wave) if segments is None else segments)
    raise ValueError(f"not an audio condition: {condition!r} (one of audio, {', '.join(AUDIO_CONDITIONS)})")
