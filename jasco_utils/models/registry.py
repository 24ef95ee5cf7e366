"""The engine registry: engine name -> backend, the options each takes, whether a spec can run.

A model, judge or ALLM, is ``engine + model + options``. :data:`ENGINES` is the registry:
engine name -> its backend class; :func:`make_backend` builds one, passing the options to the
backend's constructor unchanged, and :func:`check_options` refuses keys the backend does not
accept, listing those it does. The command line asks this registry for its engine choices
and engine flags, so adding an engine is adding one backend module and one line here.

Each engine's package is imported only when that engine is used.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import dataclass
from typing import Any

import docstring_parser
from pydantic import ConfigDict, ValidationError, create_model

from jasco_utils.core.errors import ConfigError, describe_errors
from jasco_utils.core.secrets import looks_secret
from jasco_utils.models.base import Backend, EngineError
from jasco_utils.models.spec import ALLM_SOURCES, ModelSpec

#: Engine name -> "module:class" of its backend.
ENGINES: dict[str, str] = {
    "vllm": "jasco_utils.models.vllm_backend:VLLMBackend",
    "openai": "jasco_utils.models.openai_backend:OpenAIBackend",
    "embedded": "jasco_utils.models.embedded:EmbeddedBackend",
    "reference": "jasco_utils.judging.reference:ReferenceBackend",
}


def backend_class(engine: str) -> type[Backend]:
    """The backend class of an engine (imports its module, not the engine's package).

    Raises:
        EngineError: Unknown engine.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}")
    module_name, _, cls_name = ENGINES[engine].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def default_model(engine: str) -> str | None:
    """The model an engine runs when none is named (the embedded one bundles its own), else ``None``."""
    param = inspect.signature(backend_class(engine).__init__).parameters.get("model")
    return None if param is None or param.default is param.empty else param.default


@dataclass(frozen=True)
class EngineOption:
    """One keyword argument of a backend's constructor.

    Attributes:
        name: The keyword.
        type: ``int``, ``float``, ``str``, ``bool``, ``list`` (of strings) or ``object``.
        default: The constructor's default.
        help: The first sentence of its docstring entry.
    """

    name: str
    type: type
    default: Any
    help: str


_SIMPLE = (bool, int, float, str)


def _option_type(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint in _SIMPLE:
        return hint
    if typing.get_origin(hint) is list or any(typing.get_origin(a) is list for a in args):
        return list
    for a in args:
        if a in _SIMPLE:
            return a
    return object


def _arg_docs(cls: type) -> dict[str, str]:
    """``Args:`` entries of a Google-style class docstring, name -> text (:mod:`docstring_parser`)."""
    doc = docstring_parser.parse(inspect.getdoc(cls) or "", docstring_parser.DocstringStyle.GOOGLE)
    return {p.arg_name: " ".join((p.description or "").split()) for p in doc.params}


def engine_options(engine: str) -> dict[str, EngineOption]:
    """The options an engine's backend takes (its constructor's keywords but ``model``).

    >>> sorted(engine_options("embedded"))
    ['n_ctx', 'revision', 'threads']
    """
    cls = backend_class(engine)
    hints = typing.get_type_hints(cls.__init__)
    docs = _arg_docs(cls)
    out = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.name == "model" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[p.name] = EngineOption(
            p.name,
            _option_type(hints.get(p.name, str)),
            None if p.default is p.empty else p.default,
            docs.get(p.name, ""),
        )
    return out


def _options_model(engine: str):
    """A pydantic model of a backend's keywords, from its constructor's type hints (cached)."""
    if engine not in _OPTION_MODELS:
        cls = backend_class(engine)
        hints = typing.get_type_hints(cls.__init__)
        fields = {
            p.name: (hints.get(p.name, Any), None if p.default is p.empty else p.default)
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.name != "model" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        _OPTION_MODELS[engine] = create_model(f"{cls.__name__}Options", __config__=ConfigDict(extra="allow"), **fields)
    return _OPTION_MODELS[engine]


_OPTION_MODELS: dict[str, Any] = {}


def option_problems(engine: str, options: dict[str, Any]) -> list[str]:
    """What is wrong with an engine's options, each naming the option: a key the backend does
    not take (with those it does), or a value its constructor's type hints refuse.

    A backend may take more than its named keywords (vLLM takes every field of
    ``vllm.EngineArgs``, read without starting vLLM): its ``extra_options()`` names them.

    >>> option_problems("embedded", {"n_ctx": "big", "n_ctxx": 1})
    ["engine embedded takes no option(s) ['n_ctxx']; it takes ['n_ctx', 'revision', 'threads']", "option n_ctx must be an integer, not 'big'"]
    """
    cls = backend_class(engine)
    named = sorted(engine_options(engine))
    extra = cls.extra_options() if set(options) - set(named) else ()
    unknown = sorted(set(options) - set(named) - set(extra))
    out = []
    if unknown:
        more = " (and any other argument of vllm.EngineArgs)" if extra else ""
        out.append(f"engine {engine} takes no option(s) {unknown}; it takes {named}{more}")
    try:
        _options_model(engine).model_validate({k: v for k, v in options.items() if k in named})
    except ValidationError as e:
        out += [f"option {p}" for p in describe_errors(e)]
    return out


def check_options(engine: str, options: dict[str, Any]) -> None:
    """Refuse options an engine's backend does not take, or values of the wrong type.

    Raises:
        ValueError: Naming the unknown keys and listing the accepted ones (see :func:`option_problems`).
    """
    problems = option_problems(engine, options)
    if problems:
        raise ValueError("; ".join(problems))


def check_structured(engine: str, kind: str | None, who: str = "") -> None:
    """Refuse, before any model loads, a decoding constraint (``regex``, ``json``) the engine
    cannot apply.

    Raises:
        EngineError: Naming the model, the engine and the kinds it takes.
    """
    kinds = backend_class(engine).structured_kinds
    if kind not in (None, "", "none") and kind not in kinds:
        raise EngineError(
            f"{who + ': ' if who else ''}--structured {kind}: the {engine} engine constrains answers "
            f"with {' or '.join(kinds)} only; give --structured {kinds[0]}"
        )


def make_backend(engine: str, model: str | None = None, **options: Any) -> Backend:
    """Build a backend.

    Args:
        engine: A key of :data:`ENGINES`.
        model: Model id, path or served name (the embedded engine has a default).
        **options: The backend's keyword arguments, passed unchanged.

    Raises:
        EngineError: Unknown engine or option, missing package, or a model that cannot be
            loaded.
    """
    try:
        check_options(engine, options)
    except ValueError as e:
        raise EngineError(str(e)) from None
    cls = backend_class(engine)
    return cls(model, **options) if model is not None else cls(**options)


def spec_problems(spec: ModelSpec) -> list[str]:
    """What is wrong with a spec on its engine (empty when it can run), each naming the field."""
    engines = sorted(ENGINES) + list(ALLM_SOURCES)
    if spec.engine not in engines:
        return [f"engine {spec.engine!r} is not one of {engines}"]
    if spec.engine == "import":
        return ([] if spec.path else ["an import needs a path (the file of answers)"]) + (
            ["an import takes no options"] if spec.options else []
        )
    out = []
    backend = spec.backend_engine
    if backend not in ENGINES:
        return [f"llm_engine {backend!r} is not one of {sorted(ENGINES)}"]
    if not spec.model and default_model(backend) is None:
        out.append(f"engine {backend} needs a model")
    if not spec.is_judge and backend_class(backend).judge_only:
        out.append(
            f"engine {backend} only rates answers to a judge prompt: it cannot answer as an ALLM or a "
            "cascade's text LLM"
        )
    out += [
        f"option {opt!r} looks like a secret; configurations never hold keys: name an environment variable "
        "with api_key_env instead"
        for opt in spec.options
        if looks_secret(opt)
    ]
    out += option_problems(backend, {k: v for k, v in spec.options.items() if not looks_secret(k)})
    gen = spec.generate
    if gen.max_explanation_chars is not None and gen.structured is None:
        out.append(
            "max_explanation_chars (--max-explanation-chars) bounds structured answers only: "
            "set structured (--structured) too"
        )
    return out


def check_spec(spec: ModelSpec, where: str = "", extra: list[str] | None = None) -> ModelSpec:
    """Validate a spec on its engine; return it.

    Args:
        spec: The model.
        where: The file (or flag) it came from, named in the message.
        extra: Problems found by a caller that knows more (a judge's template).

    Raises:
        ConfigError: Every problem (:func:`spec_problems`), naming the spec and the field.
    """
    problems = spec_problems(spec) + list(extra or ())
    if problems:
        at = f"{where}: " if where else ""
        raise ConfigError("\n".join(f"{at}{spec.key}: {p}" for p in problems))
    return spec


__all__ = [
    "ENGINES",
    "EngineOption",
    "backend_class",
    "check_options",
    "check_spec",
    "check_structured",
    "default_model",
    "engine_options",
    "make_backend",
    "option_problems",
    "spec_problems",
]
