"""The cascade baseline for real: bundled Whisper tiny.en, then the embedded SmolLM2 text
model (llama.cpp), on a real clip; the cache, and the sound-tagger slot."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed")
pytest.importorskip("jiwer", reason="jiwer is not installed")
pytest.importorskip("xllamacpp", reason="xllamacpp is not installed (make setup installs it)")

from jasco_utils.data.manifest import INSTRUCTIONS, build_manifest  # noqa: E402
from jasco_utils.inference import cascade  # noqa: E402
from jasco_utils.inference.asr import normalize_text  # noqa: E402
from jasco_utils.inference.cascade import (  # noqa: E402
    CASCADE_SYSTEM,
    NO_SOUNDS_LINE,
    Tagger,
    cascade_extra,
    cascade_messages,
    cascade_prompt,
    cascade_table,
    transcript_wer,
)
from jasco_utils.models import EngineError, SamplingConfig, make_backend  # noqa: E402
from jasco_utils.models.embedded import bundled_model_path  # noqa: E402
from jasco_utils.models.runner import PROVENANCE_COLUMNS, TOKEN_COLUMNS  # noqa: E402
from jasco_utils.models.store import Store  # noqa: E402
from jasco_utils.models.whisper import (  # noqa: E402
    SpeechRecognizer,
    Transcript,
    bundled_whisper_path,
)

try:
    bundled_model_path()
    bundled_whisper_path()
except EngineError as e:  # pragma: no cover - depends on the environment
    pytest.skip(str(e), allow_module_level=True)

FAST = SamplingConfig(max_tokens=32)


class FixedTagger:
    """A stand-in tagger: the same labels for every clip, and a count of its calls."""

    identity: ClassVar[dict[str, Any]] = {"tagger": "fixed", "labels": ["Waves", "Seagull"]}

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, wave) -> list[str]:
        self.calls += 1
        assert wave.ndim == 1 and wave.size > 16_000  # it gets the clip's waveform
        return ["Waves", "Seagull"]


@pytest.fixture(scope="module")
def embedded():
    backend = make_backend("embedded")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def recognizer() -> SpeechRecognizer:
    return SpeechRecognizer()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    with Store(tmp_path_factory.mktemp("cascade") / "calls.sqlite") as s:
        yield s


@pytest.fixture(scope="module")
def manifest(real_data_dir):
    return build_manifest(real_data_dir, clips=[1])


@pytest.fixture(scope="module")
def first_run(manifest, recognizer, embedded, store, real_data_dir):
    return cascade_table(manifest, recognizer, embedded, store, data_dir=real_data_dir, sampling=FAST, progress=False)


def test_cascade_answers_every_instruction(first_run, recognizer):
    out, stats, transcripts = first_run
    assert len(out) == 8 and out["prompt"].tolist() == list(INSTRUCTIONS)
    assert out["status"].isin(["ok", "truncated"]).all() and all(a.strip() for a in out["allm_output"])
    assert stats.called == 8 and stats.from_cache == 0 and stats.failed == 0
    assert set(out["model"]) == {"cascade"} and set(out["engine"]) == {"embedded"}
    assert [c for c in out.columns if c in PROVENANCE_COLUMNS] == list(PROVENANCE_COLUMNS)
    assert json.loads(out["sampling"].iloc[0]) == FAST.as_dict() and out["cache_key"].str.len().eq(64).all()
    assert list(transcripts) == [1] and isinstance(transcripts[1], Transcript)
    assert normalize_text(transcripts[1].text) == "let's build a castle over there"
    assert set(out["transcript"]) == {transcripts[1].text}
    assert recognizer.calls == 1


def test_rerun_makes_no_call(first_run, manifest, recognizer, embedded, store, real_data_dir):
    out, _, _ = first_run
    again, stats, _ = cascade_table(
        manifest, SpeechRecognizer(), embedded, store, data_dir=real_data_dir, sampling=FAST, progress=False
    )
    assert stats.called == 0 and stats.from_cache == 8
    assert again["allm_output"].tolist() == out["allm_output"].tolist() and again["from_cache"].all()
    assert again[list(TOKEN_COLUMNS)].equals(out[list(TOKEN_COLUMNS)])  # the counts recorded with the call
    assert recognizer.calls == 1


def test_what_was_sent_is_stored(first_run, store, recognizer):
    out, _, transcripts = first_run
    rec = store.get_many([out["cache_key"].iloc[0]])[out["cache_key"].iloc[0]]
    system, user = rec["request"]["messages"]
    # the cascade's tokens are its text LLM's, as the engine counted them
    assert (out["prompt_tokens"].iloc[0], out["completion_tokens"].iloc[0]) == (
        rec["metadata"]["prompt_tokens"],
        rec["metadata"]["completion_tokens"],
    )
    assert out["prompt_tokens"].gt(len(user["content"]) // 8).all()
    assert out["completion_tokens"].between(1, FAST.max_tokens).all()
    assert system == {"role": "system", "content": CASCADE_SYSTEM}
    assert user["content"] == cascade_prompt(transcripts[1].text, INSTRUCTIONS[0])
    assert f'"{transcripts[1].text}"' in user["content"] and NO_SOUNDS_LINE in user["content"]
    extra = rec["request"]["extra"]
    assert extra["asr"] == recognizer.identity and extra["tagger"] is None
    assert extra["prompt"] == {"name": "cascade_v1", "sha256": cascade.prompt_sha256()}


def test_the_tagger_slot_puts_the_sounds_in_the_prompt(manifest, recognizer, embedded, store, real_data_dir, first_run):
    tagger = FixedTagger()
    assert isinstance(tagger, Tagger)
    out, stats, _ = cascade_table(
        manifest,
        recognizer,
        embedded,
        store,
        data_dir=real_data_dir,
        sampling=SamplingConfig(max_tokens=8),
        tagger=tagger,
        progress=False,
    )
    assert tagger.calls == 1  # once per clip, not per row
    assert stats.called == 8 and out["status"].isin(["ok", "truncated"]).all()
    assert not set(out["cache_key"]) & set(first_run[0]["cache_key"])
    rec = store.get_many([out["cache_key"].iloc[3]])[out["cache_key"].iloc[3]]
    user = rec["request"]["messages"][-1]["content"]
    assert "Audio sound (detected sound events): Waves, Seagull." in user and NO_SOUNDS_LINE not in user
    assert user.endswith(INSTRUCTIONS[3])
    assert rec["request"]["extra"]["tagger"] == FixedTagger.identity


def test_prompt_builder():
    conv = cascade_messages("Go get it!", "What does the speaker say?", ["Dog barking", " ", "Ball bouncing"])
    assert conv[0]["role"] == "system" and conv[1]["role"] == "user"
    assert conv[1]["content"] == (
        'Spoken text (automatic transcript): "Go get it!"\n'
        "Audio sound (detected sound events): Dog barking, Ball bouncing.\n\n"
        "What does the speaker say?"
    )
    assert cascade_messages("x", "q", system=None)[0]["role"] == "user"
    assert '"(no speech recognized)"' in cascade_prompt("  ", "q")


def test_cache_key_follows_prompt_and_asr(recognizer, monkeypatch):
    base = cascade_extra(recognizer)
    assert cascade_extra(SpeechRecognizer(beam_size=1)) != base
    assert cascade_extra(recognizer, FixedTagger()) != base
    monkeypatch.setattr(cascade, "CASCADE_PROMPT", cascade.CASCADE_PROMPT.replace("Spoken text", "Speech"))
    assert cascade_extra(recognizer)["prompt"]["sha256"] != base["prompt"]["sha256"]


def test_transcript_wer(first_run, real_data_dir):
    _, _, transcripts = first_run
    wer, table = transcript_wer(transcripts, real_data_dir)
    assert wer == 0.0 and table.shape == (1, 10)
    wer, table = transcript_wer({1: "let's build a house over there", 4: ""}, real_data_dir)
    # clip 1: 1 substitution of 6 words; clip 4 (7 words): all deleted
    assert wer == pytest.approx((1 + 7) / (6 + 7)) and table["errors"].tolist() == [1, 7]
    with pytest.raises(KeyError, match="99"):
        transcript_wer({99: "x"}, real_data_dir)
