"""The datasets tests read: the real *What Are They Doing* v0 copy, or a synthetic one.

The real dataset (Wang et al., arXiv:2409.14526) is looked for at ``../shared/jasco-v0``
relative to the repository root; :func:`write_synthetic_dataset` writes a tiny fake one for
tests that must not depend on the real data.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from jasco_utils.data.dataset import V0_COLUMNS

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the read-only copy of the real dataset lives (outside the repository).
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "jasco-v0"

#: The synthetic dataset's rows: (id, audio sound, spoken text, the three targets, keywords).
SYNTHETIC_ROWS = [
    (
        "1",
        "Waves crashing,seagulls",
        "Let\u2019s build a castle over there.",
        "At the beach.",
        "Planning to build a castle.",
        "They are building a sandcastle.",
        "sandcastle",
    ),
    (
        "2",
        "Crowd",
        "That's not a yellow but a red!",
        "At an event.",
        "Discussing a colour.",
        "At a sports match, reacting to the referee.",
        "sport,referee",
    ),
    (
        "3",
        "Wind",
        "Hold the string tight!",
        "Outdoors on a windy day.",
        "Holding something.",
        "They are flying a kite.",
        "kite",
    ),
]


def _tone(freq: float, sr: int, frames: int, amp: float) -> np.ndarray:
    t = np.arange(frames) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_synthetic_dataset(root: Path) -> Path:
    """Write a fake 3-clip dataset folder with the real ``v0.csv`` columns to ``root``.

    Clips:
        1.wav: 16 kHz mono, 1 s 440 Hz sine (amplitude 0.5), FLOAT samples.
        2.wav: 48 kHz mono, 48001 frames of a 440 Hz sine (amplitude 0.5), PCM_16
            (like clip 47 of the real v0).
        3.wav: 16 kHz stereo, 0.5 s; left 440 Hz (0.5), right 1000 Hz (0.25), FLOAT.

    Returns:
        ``root``, holding ``v0.csv`` and ``1.wav`` ... ``3.wav``.
    """
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(SYNTHETIC_ROWS, columns=list(V0_COLUMNS)).to_csv(root / "v0.csv", index=False)
    sf.write(root / "1.wav", _tone(440, 16_000, 16_000, 0.5), 16_000, subtype="FLOAT")
    sf.write(root / "2.wav", _tone(440, 48_000, 48_001, 0.5), 48_000, subtype="PCM_16")
    stereo = np.stack([_tone(440, 16_000, 8_000, 0.5), _tone(1000, 16_000, 8_000, 0.25)], axis=1)
    sf.write(root / "3.wav", stereo, 16_000, subtype="FLOAT")
    return root


def dataset_and_clips(request, real_clips) -> tuple[Path, list[int]]:
    """(dataset folder, clip ids): the real dataset with ``real_clips`` when present, else the
    synthetic 3-clip one (its clip 2 is 48 kHz, as clip 47 of the real one)."""
    if (REAL_DATA_DIR / "v0.csv").is_file():
        return request.getfixturevalue("real_data_dir"), list(real_clips)
    return request.getfixturevalue("synthetic_dataset"), [1, 2, 3]


def sent_wave(conversation) -> np.ndarray:
    """The waveform a conversation's ``input_audio`` part carries, decoded as vLLM does (16 kHz)."""
    part = conversation[-1]["content"][0]
    wave, sr = sf.read(io.BytesIO(base64.b64decode(part["input_audio"]["data"])), dtype="float32")
    assert sr == 16_000
    return wave
