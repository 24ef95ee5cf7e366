"""The interventions on real clips (RNNoise, Silero VAD, Whisper tiny.en): each does what it
claims where it should, is deterministic, and goes into the cache key; the fidelity table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyrnnoise", reason="pyrnnoise is not installed")
pytest.importorskip("silero_vad", reason="silero-vad is not installed")
pytest.importorskip("faster_whisper", reason="faster-whisper is not installed")

from jasco_utils.data.clips import load_clip  # noqa: E402
from jasco_utils.data.dataset import load_metadata  # noqa: E402
from jasco_utils.data.manifest import build_manifest  # noqa: E402
from jasco_utils.inference.allm import clip_audio  # noqa: E402
from jasco_utils.inference.asr import normalize_text, speech_segments, transcribe_waves  # noqa: E402
from jasco_utils.inference.fidelity import failing_clips, level_db, measure_fidelity  # noqa: E402
from jasco_utils.inference.interventions import (  # noqa: E402
    audio_sha256,
    intervene,
    intervention_identity,
    mask_segments,
    suppress_sound,
    vad_segments,
)
from jasco_utils.models.store import Store  # noqa: E402
from jasco_utils.models.whisper import SpeechRecognizer  # noqa: E402

#: 12: heavy rain under "We need to get inside!"; 21: a dog barking under "Sit down, sit down.";
#: 1: waves and seagulls under "Let's build a castle over there." (all recognised word for word).
CLIPS = [1, 12, 21]


@pytest.fixture(scope="module")
def recognizer() -> SpeechRecognizer:
    return SpeechRecognizer()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("iv") / "calls.sqlite") as s:
        yield s


@pytest.fixture(scope="module")
def waves(real_data_dir) -> dict[int, np.ndarray]:
    return {c: load_clip(c, real_data_dir) for c in CLIPS}


@pytest.fixture(scope="module")
def speech(real_data_dir) -> dict[int, str]:
    meta = load_metadata(real_data_dir).set_index("audio_id")
    return {c: normalize_text(meta.loc[c, "Speech"]) for c in CLIPS}


def test_sound_suppressed_keeps_the_words_and_lowers_the_sound(waves, recognizer, store, speech):
    suppressed = {c: suppress_sound(w) for c, w in waves.items()}
    heard = transcribe_waves(suppressed, recognizer, store, progress=False)
    before = transcribe_waves(waves, recognizer, store, progress=False)
    for c, w in waves.items():
        assert suppressed[c].shape == w.shape and suppressed[c].dtype == np.float32
        outside = np.ones(len(w), dtype=bool)
        for a, b in speech_segments({c: before[c]})[c] + vad_segments(w):
            outside[int(a * 16000) : int(b * 16000)] = False
        assert level_db(w, outside) - level_db(suppressed[c], outside) > 20, c  # the sound is down
        ref, hyp = speech[c].split(), normalize_text(heard[c].text).split()
        assert len(set(ref) & set(hyp)) >= len(set(ref)) - 1, (c, heard[c].text)  # the words kept (clip 12: we/you)


def test_speech_masked_leaves_no_words(waves, recognizer, store, speech):
    before = speech_segments(transcribe_waves(waves, recognizer, store, progress=False))
    masked = {c: mask_segments(w, sorted([*before[c], *vad_segments(w)])) for c, w in waves.items()}
    heard = transcribe_waves(masked, recognizer, store, progress=False)
    for c in CLIPS:
        assert not set(normalize_text(heard[c].text).split()) & set(speech[c].split()), (c, heard[c].text)
        assert np.count_nonzero(masked[c]) > 0.5 * len(masked[c])  # the sound is still there


def test_vad_finds_the_speech(waves):
    segs = vad_segments(waves[1])  # "Let's build a castle over there." near the end of the clip
    assert segs and all(a < b for a, b in segs)
    assert any(a > 6.5 for a, _ in segs)


def test_every_intervention_is_deterministic(waves):
    w = waves[12]
    for condition in ("sound_suppressed", "speech_masked", "silence"):
        a, b = intervene(w, condition), intervene(w.copy(), condition)
        assert a.tobytes() == b.tobytes(), condition
        assert audio_sha256(a) == audio_sha256(b) != audio_sha256(w)
    assert not intervene(w, "silence").any()
    assert intervene(w, "audio") is w
    with pytest.raises(ValueError, match="not an audio condition"):
        intervene(w, "transcript_only")


def test_each_condition_sends_its_own_audio(real_data_dir):
    """What the ALLM gets under each condition differs, and is the same twice (so is its cache key,
    which hashes the audio sent: see tests/inference/test_allm_vllm.py for the keys themselves)."""
    row = build_manifest(real_data_dir, clips=[21]).to_dict(orient="records")[0]
    sent = {
        m: audio_sha256(clip_audio(row, real_data_dir, m, None, "vad"))
        for m in ("audio", "silence", "sound_suppressed", "speech_masked")
    }
    assert len(set(sent.values())) == 4
    assert audio_sha256(clip_audio(row, real_data_dir, "sound_suppressed", None)) == sent["sound_suppressed"]
    assert intervention_identity("speech_masked", "vad") != intervention_identity("speech_masked", "asr")
    with pytest.raises(ValueError, match="speech segments"):
        clip_audio(row, real_data_dir, "speech_masked", None, mask_method="both")


def test_fidelity_table_lists_what_fails(real_data_dir, tmp_path):
    table = measure_fidelity([12, 30], real_data_dir, store=tmp_path / "calls.sqlite", progress=False)
    assert list(table["id"]) == [12, 30]
    row = table.set_index("id").loc[12]
    assert row["suppression_db"] > 20 and row["sound_suppressed_ok"]
    assert row["both_ref_words_found"] == 0 and row["both_ok"]
    assert not table.set_index("id").loc[30, "vad_ok"]  # the VAD hears no speech in clip 30's music
    fails = failing_clips(table)
    assert 12 not in fails["sound_suppressed"] and 12 not in fails["speech_masked"]
    assert isinstance(table, pd.DataFrame) and table["wer_before"].between(0, 1).all()
