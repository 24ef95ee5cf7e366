"""The clips of the *What Are They Doing* dataset as waveforms: the one audio loader.

Every clip a model hears (Wang et al., arXiv:2409.14526: 80 clips, each a designed sound
mixed with designed speech) is read here. Models receive 16 kHz mono float32 audio:
:func:`load_audio` averages channels and resamples with soxr where a file is not at 16 kHz
(clip 47 of v0 is 48 kHz). :func:`load_clip` finds a clip by id, in the dataset folder or
at the path a manifest row names; :func:`load_clips` loads the distinct clips of a manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from jasco_utils.core.paths import dataset_dir

#: Sample rate every model receives.
TARGET_SR = 16_000


def clip_file(clip_id: int) -> str:
    """File name of a clip: ``f"{clip_id}.wav"``.

    >>> clip_file(47)
    '47.wav'
    """
    return f"{int(clip_id)}.wav"


def clip_path(
    clip_id: int, data_dir: str | os.PathLike[str] | None = None, audio: str | os.PathLike[str] | None = None
) -> Path:
    """Where clip ``clip_id``'s audio is.

    Args:
        clip_id: The clip's id (1..80).
        data_dir: The dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        audio: A path given for the clip (a manifest row's ``audio``); used when it names a
            file, otherwise the clip is looked for in ``data_dir``.

    Raises:
        FileNotFoundError: Neither ``audio`` nor the dataset folder holds the clip.
    """
    if audio:
        given = Path(str(audio))
        if given.is_file():
            return given
    path = dataset_dir(data_dir) / clip_file(clip_id)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: audio of clip {clip_id} not found; run `jasco data download` or set --data-dir"
        )
    return path


def load_audio(source: str | os.PathLike[str] | BinaryIO, target_sr: int = TARGET_SR) -> np.ndarray:
    """Decode audio as mono float32 at ``target_sr``.

    Channels are averaged; audio at another rate is resampled with soxr (high quality).
    A 16 kHz mono file of float samples comes back sample for sample.

    Args:
        source: An audio file's path, or a binary file object holding one (e.g. a WAV in
            :class:`io.BytesIO`).
        target_sr: The sample rate wanted.

    >>> import tempfile, soundfile
    >>> p = tempfile.mktemp(suffix=".wav")
    >>> soundfile.write(p, np.zeros((4800, 2)), 48000)
    >>> load_audio(p).shape, load_audio(p).dtype
    ((1600,), dtype('float32'))
    """
    wave, sr = sf.read(source if hasattr(source, "read") else str(source), dtype="float32", always_2d=True)
    mono = wave.mean(axis=1, dtype=np.float32)
    if sr != target_sr:
        mono = soxr.resample(mono, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return mono


def load_clip(
    clip_id: int, data_dir: str | os.PathLike[str] | None = None, audio: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Load clip ``clip_id`` as 16 kHz mono float32 (found as :func:`clip_path` says).

    Raises:
        FileNotFoundError: The clip's file is not there.
    """
    return load_audio(clip_path(clip_id, data_dir, audio))


def load_clips(
    manifest_or_clip_ids: pd.DataFrame | Iterable[int], data_dir: str | os.PathLike[str] | None = None
) -> dict[int, np.ndarray]:
    """Clip id -> 16 kHz mono float32 waveform, in ascending id, each clip loaded once.

    Args:
        manifest_or_clip_ids: A manifest (its distinct ``id``; a row's ``audio`` path is used
            when it names a file) or clip ids.
        data_dir: The dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).

    Raises:
        FileNotFoundError: A clip's file is not there.
    """
    if isinstance(manifest_or_clip_ids, pd.DataFrame):
        rows = manifest_or_clip_ids.drop_duplicates("id").to_dict(orient="records")
        audio = {int(r["id"]): r.get("audio") for r in rows}
    else:
        audio = {int(c): None for c in manifest_or_clip_ids}
    return {cid: load_clip(cid, data_dir, audio[cid]) for cid in sorted(audio)}
