"""Models behind one contract: what a model is (:mod:`~jasco_utils.models.spec`), the engines
(:mod:`~jasco_utils.models.registry`), the contract (:mod:`~jasco_utils.models.base`), the call store
(:mod:`~jasco_utils.models.store`) and the runner that puts them together
(:mod:`~jasco_utils.models.runner`).

The registry's functions and the contract's types are importable from here.
"""

from jasco_utils.models.base import Backend, EngineError, Response, StructuredOutput, request_key
from jasco_utils.models.registry import (
    ENGINES,
    EngineOption,
    backend_class,
    check_options,
    check_spec,
    check_structured,
    default_model,
    engine_options,
    make_backend,
    option_problems,
    spec_problems,
)
from jasco_utils.models.spec import SamplingConfig

__all__ = [
    "ENGINES",
    "Backend",
    "EngineError",
    "EngineOption",
    "Response",
    "SamplingConfig",
    "StructuredOutput",
    "backend_class",
    "check_options",
    "check_spec",
    "check_structured",
    "default_model",
    "engine_options",
    "make_backend",
    "option_problems",
    "request_key",
    "spec_problems",
]
