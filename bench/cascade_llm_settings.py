"""The cascade's text LLM (the bundled SmolLM2-135M in llama.cpp) under engine settings that could
make it faster, in one run: seconds a row, the ratio to the CPU default's settings, and how many
greedy answers stay the same.

The rows are the CPU default's: the cascade prompt of each (clip, instruction) with the
clip's Whisper tiny.en transcript, greedy, seed 0, ``max_tokens`` 96. The settings:

- ``default``: the engine as the project runs it (all cores, one sequence, no prompt cache);
- ``1 thread``: one CPU thread;
- ``prompt cache``: llama.cpp's ``cache_prompt`` (the system message and a clip's transcript
  are shared by its 8 prompts): fewer prompt tokens to read;
- ``4 slots`` / ``8 slots``: that many sequences decoded together (``n_parallel``), the rows
  sent from as many threads.

An answer that changes under a setting would change the cache key's meaning (the same request,
another answer, depending on which rows ran before it or beside it): the project keeps the
default. A benchmark, not a test: its numbers depend on the machine and its load.

    .venv/bin/python bench/cascade_llm_settings.py --data-dir ../shared/jasco-v0 --clips 1-4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: name -> (threads, parallel sequences, cache_prompt); threads None = all cores.
SETTINGS = {
    "default": (None, 1, False),
    "1 thread": (1, 1, False),
    "prompt cache": (None, 1, True),
    "4 slots": (None, 4, False),
    "8 slots": (None, 8, False),
}


def _clips(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def conversations(data_dir: str | None, clips: list[int], work: Path) -> list:
    """The cascade's conversations for the clips (transcripts from the bundled Whisper tiny.en)."""
    from jasco_utils.data.manifest import build_manifest
    from jasco_utils.inference.asr import transcribe_clips
    from jasco_utils.inference.cascade import cascade_messages
    from jasco_utils.models.store import Store
    from jasco_utils.models.whisper import SpeechRecognizer

    manifest = build_manifest(data_dir, clips=clips)
    with Store(work / "calls.sqlite") as store:
        transcripts = transcribe_clips(manifest, SpeechRecognizer(), store, data_dir, False)
    return [cascade_messages(transcripts[int(r["id"])].text, r["prompt"]) for r in manifest.to_dict(orient="records")]


def answer(convs: list, threads: int | None, parallel: int, cache_prompt: bool, max_tokens: int) -> tuple[float, list]:
    """Seconds taken and the answers, under one setting (a fresh llama.cpp server each time)."""
    import xllamacpp

    from jasco_utils.models.embedded import bundled_model_path

    params = xllamacpp.CommonParams()
    params.model.path = str(bundled_model_path())
    params.n_ctx = 4096 * parallel
    params.n_parallel = parallel
    n = threads or os.cpu_count() or 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = n
    params.warmup, params.verbosity = False, -1
    server = xllamacpp.Server(params)

    def one(conv):
        body = {
            "messages": conv,
            "temperature": 0.0,
            "top_p": 1.0,
            "max_tokens": max_tokens,
            "seed": 0,
            "cache_prompt": cache_prompt,
        }
        return server.handle_chat_completions(body)["choices"][0]["message"]["content"]

    t0 = time.perf_counter()
    if parallel == 1:
        texts = [one(c) for c in convs]
    else:
        with ThreadPoolExecutor(parallel) as pool:
            texts = list(pool.map(one, convs))
    return time.perf_counter() - t0, texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the dataset folder (default: JASCO_DATA_DIR or data/raw)")
    ap.add_argument("--clips", default="1-4", help="clips whose 8 prompts are answered, e.g. 1-4 (default)")
    ap.add_argument("--max-tokens", type=int, default=96, help="the answers' token limit (cpu run: 96)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jasco-bench-") as tmp:
        convs = conversations(args.data_dir, _clips(args.clips), Path(tmp))
    print(f"{len(convs)} cascade prompts (clips {args.clips}), max_tokens {args.max_tokens}, {os.cpu_count()} cores")
    results = {}
    for name, (threads, parallel, cache) in SETTINGS.items():
        results[name] = answer(convs, threads, parallel, cache, args.max_tokens)
        print(f"  {name}: {results[name][0]:.1f} s", flush=True)
    base_s, base_texts = results["default"]
    for name, (seconds, texts) in results.items():
        same = sum(a == b for a, b in zip(base_texts, texts, strict=False))
        print(
            f"{name:>13}: {seconds / len(convs):.2f} s a row, {base_s / seconds:.2f}x the default's speed, "
            f"{same}/{len(convs)} answers as the default's"
        )
    print(f"640 rows at the default's speed: {base_s / len(convs) * 640 / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
