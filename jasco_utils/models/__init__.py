"""Model backends behind one contract (:class:`~jasco_utils.models.base.Backend`).

``make_backend("vllm" | "openai" | "embedded", model, **options)`` builds one; each engine's
package is imported only when that engine is asked for.
"""

from __future__ import annotations

from typing import Any

from jasco_utils.models.base import (
    Backend,
    EngineError,
    Response,
    SamplingConfig,
    StructuredOutput,
    request_key,
)

#: Engine name -> "module:class".
ENGINES: dict[str, str] = {
    "vllm": "jasco_utils.models.vllm_backend:VLLMBackend",
    "openai": "jasco_utils.models.openai_backend:OpenAIBackend",
    "embedded": "jasco_utils.models.embedded:EmbeddedBackend",
}


def make_backend(engine: str, model: str | None = None, **options: Any) -> Backend:
    """Build a backend.

    Args:
        engine: ``vllm``, ``openai`` or ``embedded``.
        model: Model id, path or served name (the embedded engine has a default).
        **options: The backend class's keyword arguments.

    Raises:
        EngineError: Unknown engine, missing package, or a model that cannot be loaded.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}")
    module_name, _, cls_name = ENGINES[engine].partition(":")
    import importlib

    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(model, **options) if model is not None else cls(**options)


__all__ = ["Backend", "EngineError", "Response", "SamplingConfig", "StructuredOutput", "make_backend", "request_key"]
