"""Clips as the pages play them: embedded in the page as ``data:`` URLs, or linked.

The run's page (:mod:`jasco_utils.report.browser`) and the explorer play each clip; a page
that must travel alone embeds it (the first of :data:`AUDIO_FORMATS` libsndfile can write),
one that stays beside the dataset links to its WAV file.
"""

from __future__ import annotations

import base64
import io
import os
import urllib.parse
from pathlib import Path

import soundfile as sf

from jasco_utils.data.clips import TARGET_SR, clip_path, load_audio

#: ``embed``: audio inline as ``data:`` URLs; ``link``: relative paths to the dataset's WAVs.
AUDIO_MODES = ("embed", "link")
#: Formats tried in turn for embedded audio: (libsndfile format, subtype, MIME type).
AUDIO_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("OGG", "OPUS", "audio/ogg"),
    ("OGG", "VORBIS", "audio/ogg"),
    ("WAV", "PCM_16", "audio/wav"),
)


def encode_audio(wave, sr: int = TARGET_SR) -> str:
    """A waveform as a ``data:`` URL in the first of :data:`AUDIO_FORMATS` libsndfile writes.

    >>> import numpy as np
    >>> encode_audio(np.zeros(1600, dtype="float32"))[:20]
    'data:audio/ogg;base6'
    """
    for fmt, subtype, mime in AUDIO_FORMATS:
        if subtype not in sf.available_subtypes(fmt):
            continue
        buf = io.BytesIO()
        try:
            sf.write(buf, wave, sr, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            continue
        return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
    raise RuntimeError(f"libsndfile {sf.__libsndfile_version__} writes none of {AUDIO_FORMATS}")


def player_source(clip: int, audio: str, data_dir, page_dir: Path, given: str | None) -> dict[str, str]:
    """``{"src": ...}`` for a clip's player on a page in ``page_dir`` (``audio``: one of
    :data:`AUDIO_MODES`; ``given``: the clip's file as a table names it), or ``{"missing": why}``."""
    try:
        path = clip_path(clip, data_dir, given)
        if audio == "link":
            try:
                rel = Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
            except ValueError:  # another drive: only an absolute file URL reaches it
                return {"src": path.resolve().as_uri()}
            return {"src": urllib.parse.quote(rel)}
        return {"src": encode_audio(load_audio(path))}
    except (FileNotFoundError, sf.LibsndfileError, RuntimeError) as e:
        return {"missing": str(e)}
