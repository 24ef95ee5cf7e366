"""Shared fixtures: the real dataset copy (skipped when absent) and a synthetic dataset.

The real *What Are They Doing* v0 dataset (Wang et al., arXiv:2409.14526) is looked for at
``../shared/jasco-v0`` relative to the repository root; tests that need it are skipped
with a clear reason when it is not there. ``synthetic_dataset`` writes a tiny fake dataset
under ``tmp_path`` for tests that must not depend on the real data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from jasco_utils.data.dataset import V0_COLUMNS

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where the read-only copy of the real dataset lives (outside the repository).
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "jasco-v0"

#: The columns of the real ``v0.csv``.
SYNTHETIC_COLUMNS = V0_COLUMNS


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real dataset folder (``v0.csv``, ``1.wav`` ... ``80.wav``, ``example.csv``)."""
    if not (REAL_DATA_DIR / "v0.csv").is_file():
        pytest.skip(
            f"real JASCO dataset not found at {REAL_DATA_DIR} (expected a copy of "
            "What_Are_They_Doing dataset/v0 beside the repository, at ../shared/jasco-v0)"
        )
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def protocol_dir(real_data_dir: Path) -> Path:
    """The original protocol texts (judge prompts, instructions) beside the real dataset."""
    path = real_data_dir / "protocol"
    if not path.is_dir():
        pytest.skip(f"original protocol files not found at {path}")
    return path


@pytest.fixture
def real_data_copy(real_data_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the real dataset (``v0.csv`` and the 80 clips only) in tmp_path."""
    dest = tmp_path / "jasco-v0"
    dest.mkdir()
    shutil.copy2(real_data_dir / "v0.csv", dest / "v0.csv")
    for wav in real_data_dir.glob("*.wav"):
        shutil.copy2(wav, dest / wav.name)
    return dest


def _tone(freq: float, sr: int, frames: int, amp: float) -> np.ndarray:
    t = np.arange(frames) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def synthetic_dataset(tmp_path: Path) -> Path:
    """A fake 3-clip dataset folder with the real ``v0.csv`` columns.

    Clips:
        1.wav: 16 kHz mono, 1 s 440 Hz sine (amplitude 0.5), FLOAT samples.
        2.wav: 48 kHz mono, 48001 frames of a 440 Hz sine (amplitude 0.5), PCM_16
            (like clip 47 of the real v0).
        3.wav: 16 kHz stereo, 0.5 s; left 440 Hz (0.5), right 1000 Hz (0.25), FLOAT.

    Returns:
        The folder holding ``v0.csv`` and ``1.wav`` ... ``3.wav``.
    """
    root = tmp_path / "synthetic"
    root.mkdir()
    rows = [
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
    pd.DataFrame(rows, columns=list(SYNTHETIC_COLUMNS)).to_csv(root / "v0.csv", index=False)
    sf.write(root / "1.wav", _tone(440, 16_000, 16_000, 0.5), 16_000, subtype="FLOAT")
    sf.write(root / "2.wav", _tone(440, 48_000, 48_001, 0.5), 48_000, subtype="PCM_16")
    stereo = np.stack([_tone(440, 16_000, 8_000, 0.5), _tone(1000, 16_000, 8_000, 0.25)], axis=1)
    sf.write(root / "3.wav", stereo, 16_000, subtype="FLOAT")
    return root


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2 chat model built locally (tokenizer, weights, template)."""
    pytest.importorskip("transformers", reason="building the tiny model needs transformers (installed with vLLM)")
    from tiny_models import build_tiny_text_model

    return Path(build_tiny_text_model(str(tmp_path_factory.mktemp("tiny-qwen2"))))


def outputs_table(clips, answer: str = "They are building a sandcastle at the beach.") -> pd.DataFrame:
    """An ALLM outputs table for the given clips (synthetic text, the 8 real instructions)."""
    from jasco_utils.data.manifest import INSTRUCTIONS

    rows = []
    for cid in clips:
        for k, instruction in enumerate(INSTRUCTIONS):
            rows.append(
                {
                    "id": cid,
                    "audio": f"{cid}.wav",
                    "n_frames": 16000,
                    "audio_sound": f"Waves and gulls {cid}",
                    "spoken_text": f"Let's build it here {cid}",
                    "prompt": instruction,
                    "with_speech": True,
                    "audio_only_target": "They are at the beach.",
                    "speech_only_target": "They are building.",
                    "target_keywords": "sandcastle",
                    "tgt_text": "They are building a sandcastle.",
                    "allm_output": f"{answer} (clip {cid}, instruction {k + 1})",
                    "model": "allm",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tiny_audio_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2-Audio model built locally (processor, weights, template)."""
    pytest.importorskip("transformers", reason="building the tiny model needs transformers (installed with vLLM)")
    from tiny_models import build_tiny_audio_model

    return Path(build_tiny_audio_model(str(tmp_path_factory.mktemp("tiny-qwen2-audio"))))


def sent_wave(conversation) -> np.ndarray:
    """The waveform a conversation's ``input_audio`` part carries, decoded as vLLM does (16 kHz)."""
    import base64
    import io

    part = conversation[-1]["content"][0]
    wave, sr = sf.read(io.BytesIO(base64.b64decode(part["input_audio"]["data"])), dtype="float32")
    assert sr == 16_000
    return wave


def dataset_and_clips(request, real_clips) -> tuple[Path, list[int]]:
    """(dataset folder, clip ids): the real dataset with ``real_clips`` when present, else the
    synthetic 3-clip one (its clip 2 is 48 kHz, as clip 47 of the real one)."""
    if (REAL_DATA_DIR / "v0.csv").is_file():
        return request.getfixturevalue("real_data_dir"), list(real_clips)
    return request.getfixturevalue("synthetic_dataset"), [1, 2, 3]


@contextlib.contextmanager
def local_ray_cluster(stage_dir: Path, nodes: tuple[int, ...] = (2, 2, 1)):
    """A real Ray cluster on this machine (``ray.cluster_utils.Cluster``): one node per entry of
    ``nodes`` (its logical CPUs), the first the head; shut down on leaving, so that its processes
    do not slow the tests after it. Tasks' call stores go to ``stage_dir`` (``JASCO_STAGE_DIR``,
    forwarded to the workers like every ``JASCO_`` setting)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (make setup installs the ray extra)")
    from ray.cluster_utils import Cluster

    os.environ["JASCO_STAGE_DIR"] = str(stage_dir)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": nodes[0], "include_dashboard": False})
    for cpus in nodes[1:]:
        cluster.add_node(num_cpus=cpus)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
