"""What a model is and how it generates: :class:`ModelSpec`, :class:`GenerateConfig` and the only defaults.

A model, judge or ALLM, is ``engine + model + options`` (as in lm-evaluation-harness and
inspect_ai): the options reach the engine's backend constructor unchanged. Judges and ALLMs are
both models; a judge adds its prompt template, an ALLM may be the ``cascade`` baseline or
answers to ``import``.

What changes an answer (length limit, temperature, top-p, seed, structured output) is one
:class:`GenerateConfig`, a field of every :class:`ModelSpec`, resolved once by one rule,
lowest first (:func:`resolve_generate`):

1. the built-in default (:data:`JUDGE_DEFAULTS`, :data:`ALLM_DEFAULTS`: this module is their
   only owner; :class:`SamplingConfig`'s defaults are the judges');
2. the model's entry (``judges.toml``, ``allms.toml``);
3. the run configuration: its ``[judging]`` / ``[allm_sampling]`` section, then the
   ``[[allms]]`` entry's own fields;
4. the command line.

Every stage and every cache key reads the resolved object. Whether a spec can run on its
engine is checked by :func:`jasco_utils.models.registry.check_spec`, which knows the engines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from jasco_utils.core.errors import ConfigError

#: ALLM sources besides the model engines: the speech-recognition cascade and imported answers.
ALLM_SOURCES: tuple[str, ...] = ("cascade", "import")
#: The cascade's text-LLM engine when none is named (runs on a CPU, nothing downloaded).
CASCADE_LLM_ENGINE = "embedded"
#: Structured-output modes of the judges' answers.
STRUCTURED_MODES: tuple[str, ...] = ("regex", "json")


class StrictModel(BaseModel):
    """No unknown field, no silent conversion (``"4"`` is not 4), immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


#: A whole number of 1 or more (a count or a limit).
Count = Annotated[int, Field(ge=1)]


class GenerateConfig(StrictModel):
    """How a model generates: every setting that changes an answer, in one place.

    A field left unset takes the value of the level below (:meth:`over`); a resolved config
    (:func:`resolve_generate`) has every field. ``seed = None`` set explicitly means no seed.
    ``chat_format`` (how vLLM turns a conversation into tokens) stays an option of the vLLM
    backend: only that engine has it, and the backend writes it into the cache key.

    >>> level = GenerateConfig(max_tokens=160)
    >>> JUDGE_DEFAULTS.over(level).max_tokens, JUDGE_DEFAULTS.over(level).temperature
    (160, 0.0)
    >>> JUDGE_DEFAULTS.over(ORIGINAL_SAMPLING).over(level).sampling()
    SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=160, seed=None)
    """

    max_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    structured: Literal["regex", "json"] | None = None
    max_explanation_chars: Count | None = None

    def over(self, *levels: GenerateConfig) -> GenerateConfig:
        """This config with each level's set fields on top, in order (the last wins)."""
        merged = self.model_dump(exclude_unset=True)
        for level in levels:
            merged.update(level.model_dump(exclude_unset=True))
        return GenerateConfig.model_validate(merged)

    def settings(self) -> dict[str, Any]:
        """The fields set at this level (what a configuration file or a flag said)."""
        return self.model_dump(exclude_unset=True)

    def sampling(self) -> SamplingConfig:
        """The engine's sampling settings (part of every cache key)."""
        missing = [f for f in ("max_tokens", "temperature", "top_p") if getattr(self, f) is None]
        if missing:
            raise ConfigError(f"generation settings not resolved: {missing} unset (resolve_generate fills them)")
        return SamplingConfig(
            temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens, seed=self.seed
        )


#: The built-in default of judges: greedy, seed 0, 1000 tokens (the original's limit), free answers.
JUDGE_DEFAULTS = GenerateConfig(
    max_tokens=1000, temperature=0.0, top_p=1.0, seed=0, structured=None, max_explanation_chars=None
)
#: The built-in default of ALLMs: greedy, seed 0, 512 tokens.
ALLM_DEFAULTS = GenerateConfig(max_tokens=512, temperature=0.0, top_p=1.0, seed=0)
#: ``--original-sampling``: the original script's settings (vLLM's defaults: temperature 1.0,
#: no seed). A preset level like any other: a length limit set above it still applies.
ORIGINAL_SAMPLING = GenerateConfig(temperature=1.0, top_p=1.0, seed=None)


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings, recorded with every response and part of every cache key.

    What a backend receives (:meth:`GenerateConfig.sampling`); its defaults are the judges'
    (:data:`JUDGE_DEFAULTS`): greedy with a fixed seed (reproducible). :meth:`original` gives the
    original JASCO script's settings: only ``max_tokens=1000`` set, so vLLM's defaults apply
    (temperature 1.0, no seed: judgements differ run to run).
    """

    temperature: float = JUDGE_DEFAULTS.temperature
    top_p: float = JUDGE_DEFAULTS.top_p
    max_tokens: int = JUDGE_DEFAULTS.max_tokens
    seed: int | None = JUDGE_DEFAULTS.seed

    @classmethod
    def original(cls) -> SamplingConfig:
        """The original evaluation script's sampling: temperature 1.0, no seed."""
        return JUDGE_DEFAULTS.over(ORIGINAL_SAMPLING).sampling()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class TokenPrice(StrictModel):
    """What a hosted model's tokens cost, in US dollars per million tokens (``price = {prompt =
    2.5, completion = 10.0}``): :mod:`jasco_utils.analysis.usage` turns a run's tokens into a cost.

    >>> TokenPrice(prompt=2.5, completion=10).cost(1_000_000, 200_000)
    4.5
    """

    prompt: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    completion: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """The dollars these tokens cost."""
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


class Resources(StrictModel):
    """What one replica of a model asks a Ray cluster for (``resources = {num_gpus = 2}``), over
    what :func:`jasco_utils.pipeline.jobs.job_resources` works out from its engine and options.

    >>> Resources(num_gpus=2).num_cpus is None
    True
    """

    num_cpus: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    num_gpus: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


#: The conditions an ALLM can answer under besides the original clip (interventions on it:
#: :mod:`jasco_utils.inference.interventions`); an ALLM answering under one is named ``NAME@CONDITION``.
CONDITIONS = ("sound_suppressed", "speech_masked", "transcript_only", "silence")
#: What joins an ALLM's name and its condition.
CONDITION_SEP = "@"
Condition = Literal["sound_suppressed", "speech_masked", "transcript_only", "silence"]


class ModelSpec(BaseModel):
    """One model, judge or ALLM: which engine runs it, with which options, generating how.

    Attributes:
        key: The short name used on the command line and in file names (``llama-3.1-70b``).
        engine: A model engine (``vllm``, ``openai``, ``embedded``: see
            :data:`jasco_utils.models.ENGINES`) or, for ALLMs, ``cascade`` or ``import``.
        model: Model id, path or served name (the cascade's text LLM; none for ``import``).
        name: The name tables show (default: ``key``).
        options: Keyword arguments for the engine's backend, passed unchanged (for the
            cascade: its text LLM's backend).
        template: A judge's prompt template (``None`` for ALLMs).
        generate: How it generates; resolved (:func:`resolve_generate`) before a stage runs.
        llm_engine: The cascade's text-LLM engine.
        asr_model: The cascade's speech recogniser (a faster-whisper model folder; default the
            bundled Whisper tiny.en).
        path: ``import``: the file of answers made elsewhere.
        optional: ``import``: skip this ALLM, with a message, when the file is absent.
        family: A named ALLM's architecture (``qwen2_audio``, ``ultravox``, ...).
        system: An ALLM's system message, where its model card requires one (``None``: the
            model's chat template decides).
        price: What its tokens cost (a hosted API's price), for the run's usage report.
        replicas: On the Ray executor, its rows split by whole clips over this many replicas,
            each a task of its own (the local executor runs one).
        resources: On the Ray executor, what each replica asks for, over the defaults.
        condition: An ALLM answering under an intervention (:data:`CONDITIONS`); ``None``: the
            original clip. Left out of the spec's JSON when ``None`` (a run without interventions
            records what it always did).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    key: str
    engine: str
    model: str | None = None
    name: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    template: str | None = None
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    llm_engine: str | None = None
    asr_model: str | None = None
    path: str | None = None
    optional: bool = False
    family: str | None = None
    system: str | None = None
    price: TokenPrice | None = None
    replicas: Annotated[int, Field(ge=1, le=1024)] = 1
    resources: Resources | None = None
    condition: Condition | None = None

    @model_serializer(mode="wrap")
    def _without_no_condition(self, handler):
        data = handler(self)
        if isinstance(data, dict) and data.get("condition", "") is None:
            del data["condition"]
        return data

    def under(self, condition: str) -> ModelSpec:
        """This ALLM answering under an intervention: ``key`` and ``name`` get ``@condition``.

        >>> ModelSpec(key="q", engine="vllm", model="m").under("speech_masked").name
        'q@speech_masked'
        """
        return self.replace(
            key=f"{self.key}{CONDITION_SEP}{condition}",
            name=f"{self.name}{CONDITION_SEP}{condition}",
            condition=condition,
        )

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and "key" in data:
            data = {**data, "name": data["key"]}
        return data

    @property
    def backend_engine(self) -> str | None:
        """The engine whose backend this spec builds (the cascade's text LLM's), or ``None``."""
        if self.engine == "cascade":
            return self.llm_engine or CASCADE_LLM_ENGINE
        return None if self.engine == "import" else self.engine

    @property
    def is_judge(self) -> bool:
        return self.template is not None

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed, checked like a new spec."""
        return ModelSpec.model_validate({**self.model_dump(exclude_unset=True), **changes})

    def with_generate(self, *levels: GenerateConfig) -> ModelSpec:
        """A copy whose ``generate`` has the levels' set fields on top (the last wins)."""
        return self.replace(generate=self.generate.over(*levels))

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (for a stage run in its own process, ``config.json``)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls.model_validate(dict(data))


def resolve_generate(spec: ModelSpec, *levels: GenerateConfig) -> ModelSpec:
    """The spec with its generation settings resolved: built-in default < its own < ``levels``.

    ``spec.generate`` holds its entry's level (``judges.toml``, ``allms.toml``); ``levels`` are
    the run configuration's and the command line's, lowest first. Resolving a resolved spec
    again changes nothing.
    """
    return spec.replace(generate=(JUDGE_DEFAULTS if spec.is_judge else ALLM_DEFAULTS).over(spec.generate, *levels))


__all__ = [
    "ALLM_DEFAULTS",
    "ALLM_SOURCES",
    "CASCADE_LLM_ENGINE",
    "CONDITIONS",
    "CONDITION_SEP",
    "Condition",
    "GenerateConfig",
    "JUDGE_DEFAULTS",
    "ModelSpec",
    "ORIGINAL_SAMPLING",
    "Resources",
    "STRUCTURED_MODES",
    "SamplingConfig",
    "StrictModel",
    "TokenPrice",
    "resolve_generate",
]
