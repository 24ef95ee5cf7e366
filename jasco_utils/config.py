"""Models and runs as data, every setting with one owner: :class:`GenerateConfig`, :class:`ModelSpec`, :class:`RunConfig`.

A model is ``engine + model + options`` (as in lm-evaluation-harness and inspect_ai): the
options reach the engine's backend constructor unchanged, checked against the constructor's
own type hints. Judges and ALLMs are both models; a judge adds its prompt template, an ALLM
may be the ``cascade`` baseline or answers to ``import``.

What changes an answer (length limit, temperature, top-p, seed, structured output) is one
:class:`GenerateConfig`, a field of every :class:`ModelSpec`, resolved once by one rule,
lowest first (:func:`resolve_generate`):

1. the built-in default (:data:`JUDGE_DEFAULTS`, :data:`ALLM_DEFAULTS`);
2. the model's entry (``judges.toml``, ``allms.toml``);
3. the run configuration: its ``[judging]`` / ``[allm_sampling]`` section, then the
   ``[[allms]]`` entry's own fields;
4. the command line.

Every stage and every cache key reads the resolved object. Named judges live in
:file:`jasco_utils/configs/judges.toml`, named ALLMs in :file:`configs/allms.toml`, run
configurations in :file:`configs/runs/` or any TOML file. The schemas are pydantic models;
everything is checked when loaded, every problem listed at once with the file and field at
fault: a misspelled key, an unknown judge or engine, a value of the wrong type, an option the
backend does not take, or something that looks like a secret (keys are read from
environment variables only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jasco_utils.models.base import SamplingConfig
from jasco_utils.paths import PACKAGE_DIR, looks_secret

#: The judges shipped with the package.
JUDGES_FILE = PACKAGE_DIR / "configs" / "judges.toml"
#: The named ALLMs (``jasco infer --allm KEY``, ``allm = "KEY"`` in a run configuration).
ALLMS_FILE = PACKAGE_DIR / "configs" / "allms.toml"
#: Folder of the shipped run configurations.
RUN_CONFIGS_DIR = PACKAGE_DIR / "configs" / "runs"
#: ALLM sources besides the model engines: the speech-recognition cascade and imported answers.
ALLM_SOURCES: tuple[str, ...] = ("cascade", "import")
#: The cascade's text-LLM engine when none is named (runs on a CPU, nothing downloaded).
CASCADE_LLM_ENGINE = "embedded"
#: Structured-output modes of the judges' answers.
STRUCTURED_MODES: tuple[str, ...] = ("regex", "json")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


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
        return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed)


#: The built-in default of judges: greedy, seed 0, 1000 tokens (the original's limit), free answers.
JUDGE_DEFAULTS = GenerateConfig(max_tokens=1000, temperature=0.0, top_p=1.0, seed=0, structured=None,
                                max_explanation_chars=None)
#: The built-in default of ALLMs: greedy, seed 0, 512 tokens.
ALLM_DEFAULTS = GenerateConfig(max_tokens=512, temperature=0.0, top_p=1.0, seed=0)
#: ``--original-sampling``: the original script's settings (vLLM's defaults: temperature 1.0,
#: no seed). A preset level like any other: a length limit set above it still applies.
ORIGINAL_SAMPLING = GenerateConfig(temperature=1.0, top_p=1.0, seed=None)


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
    what :func:`jasco_utils.executor.job_resources` works out from its engine and options.

    >>> Resources(num_gpus=2).num_cpus is None
    True
    """

    num_cpus: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    num_gpus: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


#: Where a run's model stages execute (:mod:`jasco_utils.executor`).
EXECUTORS = ("local", "ray")


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
        tested: A named ALLM's test here (a tiny model of its family through the same code
            path), or why none runs here.
        system: An ALLM's system message, where its model card requires one (``None``: the
            model's chat template decides).
        price: What its tokens cost (a hosted API's price), for the run's usage report.
        replicas: On the Ray executor, its rows split by whole clips over this many replicas,
            each a task of its own (the local executor runs one).
        resources: On the Ray executor, what each replica asks for, over the defaults.
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
    tested: str = ""
    system: str | None = None
    price: TokenPrice | None = None
    replicas: Annotated[int, Field(ge=1, le=1024)] = 1
    resources: Resources | None = None

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

    def problems(self) -> list[str]:
        """What is wrong with this spec (empty when it can run), each naming the field."""
        from jasco_utils.models import ENGINES, default_model, option_problems

        engines = sorted(ENGINES) + list(ALLM_SOURCES)
        if self.engine not in engines:
            return [f"engine {self.engine!r} is not one of {engines}"]
        if self.engine == "import":
            return ([] if self.path else ["an import needs a path (the file of answers)"]) + (
                ["an import takes no options"] if self.options else [])
        out = []
        backend = self.backend_engine
        if backend not in ENGINES:
            return [f"llm_engine {backend!r} is not one of {sorted(ENGINES)}"]
        if not self.model and default_model(backend) is None:
            out.append(f"engine {backend} needs a model")
        from jasco_utils.models import backend_class

        if not self.is_judge and backend_class(backend).judge_only:
            out.append(f"engine {backend} only rates answers to a judge prompt: it cannot answer as an ALLM or a "
                       "cascade's text LLM")
        out += [f"option {opt!r} looks like a secret; configurations never hold keys: name an environment variable "
                "with api_key_env instead" for opt in self.options if looks_secret(opt)]
        out += option_problems(backend, {k: v for k, v in self.options.items() if not looks_secret(k)})
        if self.template is not None:
            from jasco_utils.judging.prompts import judge_templates

            if self.template not in judge_templates():
                out.append(f"template {self.template!r} is not one of {judge_templates()}")
        gen = self.generate
        if gen.max_explanation_chars is not None and gen.structured is None:
            out.append("max_explanation_chars (--max-explanation-chars) bounds structured answers only: "
                       "set structured (--structured) too")
        return out

    def check(self, where: str = "") -> ModelSpec:
        """Validate the spec; return it.

        Raises:
            ConfigError: Every problem (:meth:`problems`), naming the spec and the field.
        """
        problems = self.problems()
        if problems:
            at = f"{where}: " if where else ""
            raise ConfigError("\n".join(f"{at}{self.key}: {p}" for p in problems))
        return self


def resolve_generate(spec: ModelSpec, *levels: GenerateConfig) -> ModelSpec:
    """The spec with its generation settings resolved: built-in default < its own < ``levels``.

    ``spec.generate`` holds its entry's level (``judges.toml``, ``allms.toml``); ``levels`` are
    the run configuration's and the command line's, lowest first. Resolving a resolved spec
    again changes nothing.
    """
    return spec.replace(generate=(JUDGE_DEFAULTS if spec.is_judge else ALLM_DEFAULTS).over(spec.generate, *levels))


class RunConfig(BaseModel):
    """A run configuration (see the files in ``configs/runs``), checked and resolved when loaded.

    Attributes:
        name: The run's name (its folder under ``runs/``).
        path: The file it was read from.
        description: One line for people.
        clips: Clip ids, or ``None`` for all 80.
        paper: Whether Table II shows the published numbers beside these (the paper's protocol).
        allms: The ALLMs, in order, their generation settings resolved.
        judges: The judges, in order, their generation settings resolved.
        judging: The ``[judging]`` section's generation level (what the file set).
        allm_sampling: The ``[allm_sampling]`` section's generation level.
        judge_check: Whether the judging stage also runs the judge check (control answers
            with known labels, :mod:`jasco_utils.judging.controls`) with every judge.
        judge_check_clips: The judge check's clips, or ``None`` for all 80.
        judge_check_judge_clips: Judges checked on fewer clips (a slow judge), by key: a
            subset of ``judge_check_clips``.
        executor: Where the model stages run (:data:`EXECUTORS`; ``--executor`` overrides it).
        text: The file's text (recorded in the provenance).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: Path
    description: str = ""
    clips: list[int] | None = None
    paper: bool = False
    allms: list[ModelSpec] = Field(default_factory=list)
    judges: list[ModelSpec] = Field(default_factory=list)
    judging: GenerateConfig = Field(default_factory=GenerateConfig)
    allm_sampling: GenerateConfig = Field(default_factory=GenerateConfig)
    judge_check: bool = False
    judge_check_clips: list[int] | None = None
    judge_check_judge_clips: dict[str, list[int] | None] = Field(default_factory=dict)
    executor: Literal["local", "ray"] = "local"
    text: str = ""

    def to_json(self) -> str:
        """The resolved configuration as JSON (``RUN_DIR/config.json``)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Inverse of :meth:`to_json`."""
        return cls.model_validate_json(text)


# The files: named judges and ALLMs, run configurations (their schemas and loaders).
from jasco_utils.config_files import (  # noqa: E402  (they build the models above)
    allm_spec,
    describe_errors,
    get_judge,
    load_allms,
    load_judges,
    load_run_config,
    run_config_file,
)

__all__ = ["ALLM_DEFAULTS", "ALLMS_FILE", "ALLM_SOURCES", "CASCADE_LLM_ENGINE", "ConfigError", "EXECUTORS",
           "GenerateConfig", "Resources",
           "JUDGES_FILE", "JUDGE_DEFAULTS", "ModelSpec", "ORIGINAL_SAMPLING", "RUN_CONFIGS_DIR", "RunConfig",
           "STRUCTURED_MODES", "TokenPrice", "allm_spec", "describe_errors", "get_judge", "load_allms", "load_judges",
           "load_run_config", "resolve_generate", "run_config_file"]
