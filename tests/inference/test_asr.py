"""Speech recognition with the real bundled Whisper tiny.en (faster-whisper) on real clips,
the transcript cache (the call store's runner), speech segments, and word error rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed")
pytest.importorskip("jiwer", reason="jiwer is not installed")

from jasco_utils.data.clips import load_clip  # noqa: E402
from jasco_utils.data.dataset import load_metadata  # noqa: E402
from jasco_utils.data.manifest import build_manifest  # noqa: E402
from jasco_utils.inference.allm import audio_conversation, wav_base64  # noqa: E402
from jasco_utils.inference.asr import (  # noqa: E402
    normalize_text,
    per_clip_wer,
    speech_segments,
    transcribe_clips,
    word_error_rate,
)
from jasco_utils.inference.interventions import mask_segments  # noqa: E402
from jasco_utils.models.base import (  # noqa: E402
    Backend,
    EngineError,
    SamplingConfig,
    StructuredOutput,
)
from jasco_utils.models.store import Store  # noqa: E402
from jasco_utils.models.whisper import (  # noqa: E402
    NO_SPEECH,
    SpeechRecognizer,
    Transcript,
    bundled_whisper_path,
)

try:
    bundled_whisper_path()
except EngineError as e:  # pragma: no cover - depends on the environment
    pytest.skip(str(e), allow_module_level=True)

#: Clips the bundled tiny.en transcribes word for word.
CLIPS = [1, 4, 7]


@pytest.fixture(scope="module")
def recognizer() -> SpeechRecognizer:
    return SpeechRecognizer()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    with Store(tmp_path_factory.mktemp("asr") / "calls.sqlite") as s:
        yield s


@pytest.fixture(scope="module")
def transcripts(real_data_dir, recognizer, store) -> dict[int, Transcript]:
    return transcribe_clips(CLIPS, recognizer, store, real_data_dir, progress=False)


@pytest.fixture(scope="module")
def speech(real_data_dir) -> dict[int, str]:
    return load_metadata(real_data_dir).set_index("audio_id")["Speech"].to_dict()


def test_bundled_model_and_identity(recognizer):
    assert (bundled_whisper_path() / "model.bin").is_file()
    ident = recognizer.identity
    assert ident["engine"] == "faster-whisper" and ident["model"] == "whisper-tiny.en"
    assert ident["revision"].startswith("sha256:") and len(ident["revision"]) == 7 + 64
    assert ident["beam_size"] == 5 and ident["temperature"] == 0.0 and ident["compute_type"] == "int8"
    assert SpeechRecognizer(beam_size=1).identity != ident


def test_transcripts_hold_the_spoken_text(transcripts, speech):
    assert sorted(transcripts) == CLIPS
    for cid, t in transcripts.items():
        assert normalize_text(speech[cid]) in normalize_text(t.text), (cid, t.text)
        assert t.language == "en" and t.text == t.text.strip() and t.segments


def test_word_timestamps_are_ordered_and_inside_the_clip(real_data_dir, transcripts):
    for cid, t in transcripts.items():
        duration = len(load_clip(cid, real_data_dir)) / 16_000
        assert t.duration_s == pytest.approx(duration, abs=1e-3)
        assert t.words, cid
        starts = [a for a, _, _ in t.words]
        assert starts == sorted(starts)
        for a, b, word in t.words:
            assert 0.0 <= a <= b <= duration + 1e-6 and word == word.strip() and word
        # the words are the text
        assert normalize_text(" ".join(w for _, _, w in t.words)) == normalize_text(t.text)


def test_rerun_reads_the_store_and_never_runs_the_model(real_data_dir, transcripts, store, monkeypatch):
    fresh = SpeechRecognizer()  # same identity, new instance: nothing loaded yet
    calls = []
    real = SpeechRecognizer.transcribe
    monkeypatch.setattr(SpeechRecognizer, "transcribe", lambda self, wave: calls.append(1) or real(self, wave))
    n_stored = store.count()
    again = transcribe_clips(CLIPS, fresh, store, real_data_dir, progress=False)
    assert calls == [] and fresh.calls == 0 and fresh._whisper is None
    assert store.count() == n_stored
    assert again == transcripts  # segments and words come back from the store too
    # a manifest is accepted too (its distinct clips)
    manifest = build_manifest(real_data_dir, clips=[CLIPS[0]])
    assert transcribe_clips(manifest, fresh, store, real_data_dir, progress=False) == {CLIPS[0]: transcripts[CLIPS[0]]}
    assert calls == []


def test_a_new_clip_is_transcribed_once(real_data_dir, recognizer, store, transcripts):
    before = recognizer.calls
    out = transcribe_clips([*CLIPS, 12], recognizer, store, real_data_dir, progress=False)
    assert recognizer.calls == before + 1 and list(out) == [*CLIPS, 12]
    assert normalize_text(out[12].text) == "we need to get inside"
    records = store.get_many(_keys(store)).values()
    assert len(records) == len(CLIPS) + 1
    for rec in records:  # what the key was made from is stored beside the result
        assert rec["request"]["identity"] == recognizer.identity and rec["metadata"]["words"]
        assert rec["request"]["extra"] == {"task": "asr"}
        (audio,) = rec["request"]["messages"][0]["content"]  # the audio, hashed
        assert rec["metadata"]["engine"] == "faster-whisper" and len(audio["input_audio"]["sha256"]) == 64


def test_the_recognizer_follows_the_backend_contract(real_data_dir, recognizer, transcripts):
    assert isinstance(recognizer, Backend)
    conv = audio_conversation(wav_base64(load_clip(1, real_data_dir), subtype="FLOAT"))
    (response,) = recognizer.generate([conv], SamplingConfig())
    assert response.ok and response.messages == conv
    # deterministic, and the same audio as through the store: the same transcript
    assert Transcript.from_record(response.text, response.metadata) == transcripts[1]
    assert response.metadata["model"] == "whisper-tiny.en" and response.metadata["latency_s"] >= 0
    (bad,) = recognizer.generate([[{"role": "user", "content": "no audio here"}]], SamplingConfig())
    assert not bad.ok and "one input_audio part" in bad.error
    with pytest.raises(EngineError, match="no decoding constraint"):
        recognizer.generate([conv], SamplingConfig(), StructuredOutput(regex="x"))


def test_the_recognizer_decodes_the_loaded_waveform_exactly(real_data_dir, tmp_path, monkeypatch):
    heard = []
    monkeypatch.setattr(SpeechRecognizer, "transcribe", lambda self, wave: heard.append(wave) or Transcript("x"))
    with Store(tmp_path / "calls.sqlite") as store:
        transcribe_clips([1, 47], SpeechRecognizer(), store, real_data_dir, progress=False)
    for cid, wave in zip([1, 47], heard, strict=False):  # clip 47 is 48 kHz: resampled float samples, not 16-bit
        expected = load_clip(cid, real_data_dir)
        assert wave.dtype == np.float32 and wave.tobytes() == expected.tobytes(), cid
    assert not np.array_equal(heard[1], np.round(heard[1] * 32768) / 32768)


def test_an_empty_transcript_is_not_stored_and_is_recognized_again(real_data_dir, tmp_path, monkeypatch):
    calls = []

    def silent(self, wave):
        calls.append(1)
        return Transcript("", language="en", duration_s=wave.size / 16_000)

    monkeypatch.setattr(SpeechRecognizer, "transcribe", silent)
    with Store(tmp_path / "calls.sqlite") as store:
        for run in (1, 2):
            out = transcribe_clips([4], SpeechRecognizer(), store, real_data_dir, progress=False)
            assert out[4].text == "" and out[4].words == [] and out[4].duration_s > 1.0
            assert len(calls) == run and store.count() == 0
            assert [f["error"] for f in store.failures()] == [NO_SPEECH] * run


def test_a_failed_recognition_raises_and_is_not_stored(real_data_dir, tmp_path, monkeypatch):
    def broken(self, wave):
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(SpeechRecognizer, "transcribe", broken)
    with Store(tmp_path / "calls.sqlite") as store:
        with pytest.raises(EngineError, match=r"clip\(s\) \[7\]: faster-whisper: RuntimeError: decoder crashed"):
            transcribe_clips([7], SpeechRecognizer(), store, real_data_dir, progress=False)
        assert store.count() == 0 and len(store.failures()) == 1


def _keys(store: Store) -> list[str]:
    return [k for (k,) in store._db.execute("SELECT key FROM calls").fetchall()]


def test_masking_the_speech_segments_removes_the_speech(real_data_dir, transcripts, recognizer):
    segs = speech_segments(transcripts)
    for cid, t in transcripts.items():
        assert segs[cid], cid
        for (a, b), nxt in zip(segs[cid], segs[cid][1:] + [(np.inf, np.inf)], strict=False):
            assert 0.0 <= a < b <= t.duration_s and b < nxt[0]
        words = [(a, b) for a, b, _ in t.words]
        assert all(any(s <= a and b <= e for s, e in segs[cid]) for a, b in words)
    masked = mask_segments(load_clip(1, real_data_dir), segs[1])
    heard = normalize_text(recognizer.transcribe(masked).text)
    assert "castle" not in heard, heard


def test_speech_segments_merge_close_words():
    t = Transcript("a b c", words=[(1.0, 1.2, "a"), (1.3, 1.5, "b"), (3.0, 3.4, "c")], duration_s=3.45)
    assert speech_segments({5: t}, max_gap=0.3, pad=0.1) == {5: [(0.9, 1.6), (2.9, 3.45)]}
    assert speech_segments({5: Transcript("")}) == {5: []}


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Let\u2019s build a castle over there.", "let's build a castle over there"),
        ("Let's build a castle over there!", "let's build a castle over there"),
        ("That's not a yellow, but a red!", "that's not a yellow but a red"),
        ("  Hands   UP  ", "hands up"),
        ("Well-known", "well known"),
        ("\u2018quoted\u2019 words", "quoted words"),
        ("It's taking off in 20 minutes.", "it's taking off in 20 minutes"),
        ("$1,000 dollars.", "1000 dollars"),
        ("Caf\u00e9?", "caf\u00e9"),
        ("...", ""),
    ],
)
def test_normalize_text(raw, normalized):
    assert normalize_text(raw) == normalized


def test_word_error_rate():
    assert word_error_rate(["Let\u2019s build a castle over there."], ["let's build a castle over there"]) == 0.0
    assert word_error_rate(["a b c d"], ["a x c"]) == pytest.approx(2 / 4)  # 1 substitution, 1 deletion
    # corpus WER: total edits / total reference words (not the mean of per-clip rates)
    assert word_error_rate(["a b c d", "e"], ["a b c d", "x"]) == pytest.approx(1 / 5)
    assert word_error_rate(["go get it"], ["yes yes yes yes yes yes"]) == pytest.approx(6 / 3)
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["?!"], ["a"])
    with pytest.raises(ValueError, match="2 references but 1"):
        word_error_rate(["a", "b"], ["a"])


def test_per_clip_wer_table(transcripts, speech):
    refs = {cid: speech[cid] for cid in transcripts}
    hyps = {cid: t.text for cid, t in transcripts.items()}
    hyps[CLIPS[1]] = ""  # nothing recognized: every word deleted
    df = per_clip_wer(refs, hyps)
    assert isinstance(df, pd.DataFrame) and df.shape == (3, 10) and df["id"].tolist() == CLIPS
    row = df.set_index("id").loc[CLIPS[1]]
    assert row["deletions"] == row["ref_words"] == row["errors"] and row["wer"] == 1.0
    assert df.set_index("id").loc[[CLIPS[0], CLIPS[2]], "wer"].tolist() == [0.0, 0.0]
    assert df["errors"].sum() / df["ref_words"].sum() == pytest.approx(
        word_error_rate(df["reference"], df["hypothesis"])
    )
    with pytest.raises(KeyError, match=r"\[7\]"):
        per_clip_wer(refs, {1: "x", 4: "y"})
