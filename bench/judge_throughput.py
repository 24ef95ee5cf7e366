"""Judging throughput, measured in one run on one engine and one model.

(a) the original script's loop: one ``generate`` call per row, prompt built with the
    tokenizer's chat template (as ``evaluation/eval.py`` does);
(b) this project's batched judging (``judge_table``, empty store);
(c) the engine's own batched call of the same conversations (``LLM.chat``, one call).
Then (d) a fully cached re-run of 640 rows x 3 judges.

Prints the ratios (a)/(b) (speed-up over the original) and (b)/(c) (overhead of this
project over the bare engine). Prefix caching is off so that no variant profits from an
earlier one's prompts.

Usage (CPU, a tiny random-weight model built on the spot; any vLLM model on a GPU)::

    .venv/bin/python bench/judge_throughput.py [--model DIR_OR_ID] [--rows 640] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model dir or id (default: build the tiny test model)")
    ap.add_argument("--rows", type=int, default=640, help="rows to judge (a multiple of 8)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    args = ap.parse_args()

    from helpers.outputs import outputs_table
    from helpers.tiny_models import build_tiny_text_model

    from jasco_utils.judging.judge import judge_table
    from jasco_utils.judging.prompts import judge_messages
    from jasco_utils.models import SamplingConfig, make_backend
    from jasco_utils.models.store import Store

    work = Path(tempfile.mkdtemp(prefix="jasco-bench-"))
    model = args.model or build_tiny_text_model(str(work / "tiny"))
    backend = make_backend(
        "vllm",
        model,
        dtype=args.dtype,
        enforce_eager=True,
        max_model_len=4096,
        tensor_parallel_size=args.tensor_parallel_size,
        enable_prefix_caching=False,
    )
    outputs = outputs_table(range(1, args.rows // 8 + 1))
    convs = [judge_messages(r) for r in outputs.to_dict(orient="records")]
    sampling = SamplingConfig(max_tokens=args.max_tokens)
    params = backend.sampling_params(sampling)
    llm = backend.llm
    tokenizer = llm.get_tokenizer()
    llm.chat(convs[:8], params, use_tqdm=False)  # warm-up

    t = time.perf_counter()
    for conv in convs:  # (a) the original: one call per row
        prompt = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        llm.generate(prompt, params, use_tqdm=False)
    t_a = time.perf_counter() - t

    def engine_alone() -> float:  # (c) the engine alone
        t = time.perf_counter()
        llm.chat(convs, params, use_tqdm=False)
        return time.perf_counter() - t

    with Store(work / "calls.sqlite") as store:
        t_c1 = engine_alone()  # (c) before and after (b), so that neither profits from going second
        t = time.perf_counter()  # (b) this project
        _, stats = judge_table(
            outputs, backend, store, sampling=sampling, reask=False, chunk_size=len(convs), progress=False
        )
        t_b = time.perf_counter() - t
        assert stats.called == len(convs)
        t_c = (t_c1 + engine_alone()) / 2

        for seed in (1, 2):  # fill the cache for two more "judges"
            judge_table(
                outputs,
                backend,
                store,
                sampling=SamplingConfig(max_tokens=args.max_tokens, seed=seed),
                reask=False,
                chunk_size=len(convs),
                progress=False,
            )
        t = time.perf_counter()  # (d) a fully cached re-run of 3 judges
        for seed in (0, 1, 2):
            _, s = judge_table(
                outputs,
                backend,
                store,
                sampling=SamplingConfig(max_tokens=args.max_tokens, seed=seed),
                reask=False,
                progress=False,
            )
            assert s.called == 0
        t_d = time.perf_counter() - t
    backend.close()

    n = len(convs)
    print(f"engine: {backend.engine_version}, model: {model}, rows: {n}, max_tokens: {args.max_tokens}")
    print(f"(a) original one-call-per-row loop : {t_a:8.2f} s  ({n / t_a:7.1f} rows/s)")
    print(f"(b) jasco batched judging          : {t_b:8.2f} s  ({n / t_b:7.1f} rows/s)")
    print(
        f"(c) engine's own batched chat      : {t_c:8.2f} s  ({n / t_c:7.1f} rows/s; mean of a run before and after (b))"
    )
    print(f"(d) cached re-run, {n} rows x 3 judges: {t_d:6.2f} s")
    print(f"speed-up (a)/(b): {t_a / t_b:.1f}x   (target >= 20x)")
    print(f"overhead (b)/(c): {t_b / t_c:.3f}    (target <= 1.10)")


if __name__ == "__main__":
    main()
