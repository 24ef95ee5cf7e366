"""Shared fixtures: the real dataset copy (skipped when absent), a synthetic dataset, tiny models.

The real *What Are They Doing* v0 dataset (Wang et al., arXiv:2409.14526) is looked for at
``../shared/jasco-v0`` relative to the repository root; tests that need it are skipped
with a clear reason when it is not there. ``synthetic_dataset`` writes a tiny fake dataset
under ``tmp_path`` for tests that must not depend on the real data. What tests import (tables,
servers, tiny model builders) is in :mod:`helpers`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.clips import REAL_DATA_DIR, write_synthetic_dataset


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


@pytest.fixture
def synthetic_dataset(tmp_path: Path) -> Path:
    """A fake 3-clip dataset folder with the real ``v0.csv`` columns
    (:func:`helpers.clips.write_synthetic_dataset`)."""
    return write_synthetic_dataset(tmp_path / "synthetic")


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2 chat model built locally (tokenizer, weights, template)."""
    pytest.importorskip("transformers", reason="building the tiny model needs transformers (installed with vLLM)")
    from helpers.tiny_models import build_tiny_text_model

    return Path(build_tiny_text_model(str(tmp_path_factory.mktemp("tiny-qwen2"))))


@pytest.fixture(scope="session")
def tiny_audio_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2-Audio model built locally (processor, weights, template)."""
    pytest.importorskip("transformers", reason="building the tiny model needs transformers (installed with vLLM)")
    from helpers.tiny_models import build_tiny_audio_model

    return Path(build_tiny_audio_model(str(tmp_path_factory.mktemp("tiny-qwen2-audio"))))
