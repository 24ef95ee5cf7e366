"""The configuration files' schemas: what each file may say, checked by pydantic.

A named judge (:class:`JudgeEntry`, ``judges.toml``), a named ALLM (:class:`NamedAllmEntry`,
``allms.toml``), a run configuration (:class:`RunFile` and its sections; an ``[[allms]]`` entry is
an :class:`AllmEntry`) and the checked, resolved run configuration (:class:`RunConfig`). No unknown
field, no silent conversion (``"4"`` is not 4). The documentation's configuration reference is
generated from these models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jasco_utils.models.spec import Condition, Count, GenerateConfig, ModelSpec, Resources, StrictModel, TokenPrice

#: Where a run's model stages execute (:mod:`jasco_utils.pipeline`): the run configuration's
#: ``executor``, which ``--executor`` overrides.
EXECUTORS: tuple[str, ...] = ("local", "ray")


Executor = Literal["local", "ray"]


def field_names(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


class SamplingFields(StrictModel):
    """The sampling fields a file may set at any level."""

    max_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None

    def level(self, *extra: str) -> GenerateConfig:
        """The generation level these fields (and ``extra`` ones) set."""
        names = {*SamplingFields.model_fields, *extra}
        return GenerateConfig.model_validate(
            {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in names}
        )


class PlacementFields(StrictModel):
    """Where a model runs on the Ray executor: its replicas and what each asks for."""

    replicas: Annotated[int, Field(ge=1, le=1024)] | None = None
    resources: Resources | None = None

    def placement(self) -> dict[str, Any]:
        """The set fields, for :class:`ModelSpec`."""
        return {k: v for k, v in (("replicas", self.replicas), ("resources", self.resources)) if v is not None}


class JudgeEntry(SamplingFields, PlacementFields):
    engine: str
    model: str | None = None
    name: str | None = None
    template: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    structured: Literal["regex", "json"] | None = None
    max_explanation_chars: Count | None = None
    price: TokenPrice | None = None


class AllmEntry(SamplingFields, PlacementFields):
    """An ``[[allms]]`` entry of a run configuration."""

    name: str | None = None
    engine: str | None = None
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    llm_engine: str | None = None
    llm_model: str | None = None
    asr_model: str | None = None
    path: str | None = None
    optional: bool = False
    allm: str | None = None
    system: str | None = None
    price: TokenPrice | None = None
    #: Conditions this ALLM also answers under (over the run's ``interventions``).
    interventions: list[Condition] | None = None


class NamedAllmEntry(SamplingFields, PlacementFields):
    """An entry of :data:`ALLMS_FILE`."""

    engine: Literal["vllm", "openai"]
    model: str
    name: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    family: str | None = None
    system: str | None = None
    price: TokenPrice | None = None


def _check_clips(value: Any) -> list[int] | None:
    """``"all"`` (``None``) or a non-empty list of clip ids 1..80 (sorted, once each)."""
    if value != "all" and not (
        isinstance(value, list)
        and value
        and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 80 for c in value)
    ):
        raise ValueError(f'must be "all" or a list of clip ids 1..80, not {value!r}')
    return None if value == "all" else sorted(set(value))


class JudgingSection(SamplingFields):
    judges: list[str] = Field(default_factory=list)
    judges_file: str | None = None
    #: ``[judging.replicas]``: judge key -> replicas on the Ray executor (over the judge's entry).
    replicas: dict[str, Annotated[int, Field(ge=1, le=1024)]] = Field(default_factory=dict)
    structured: Literal["regex", "json"] | None = None
    max_explanation_chars: Count | None = None


def _check_clips_of_check(value: Any) -> list[int] | None:
    clips = _check_clips(value)
    if clips is not None and len(clips) < 2:
        raise ValueError("needs two clips or more (other_clip gives each clip another clip's answer)")
    return clips


class JudgeCheckSection(StrictModel):
    enabled: bool | None = None
    clips: Any = None
    judge_clips: dict[str, Any] = Field(default_factory=dict)

    @field_validator("clips", mode="before")
    @classmethod
    def _clips(cls, value: Any) -> list[int] | None:
        return _check_clips_of_check(value)

    @field_validator("judge_clips", mode="before")
    @classmethod
    def _judge_clips(cls, value: Any) -> dict[str, list[int] | None]:
        if not isinstance(value, dict):
            raise ValueError(f"must be a table of judge = clips, not {value!r}")
        return {k: _check_clips_of_check(v) for k, v in value.items()}


class RunFile(StrictModel):
    """The schema of a run configuration file."""

    name: str | None = None
    description: str = ""
    clips: Any = None
    paper: bool = False
    executor: Executor = "local"
    allm_sampling: SamplingFields = Field(default_factory=SamplingFields)
    judging: JudgingSection = Field(default_factory=JudgingSection)
    allms: list[AllmEntry] = Field(default_factory=list)
    judge_check: JudgeCheckSection = Field(default_factory=JudgeCheckSection)
    #: Conditions every ALLM also answers under, each as ``NAME@CONDITION`` (an entry's own list wins).
    interventions: list[Condition] = Field(default_factory=list)

    @field_validator("clips", mode="before")
    @classmethod
    def _clips(cls, value: Any) -> list[int] | None:
        return _check_clips(value)


RUN_SECTIONS = {
    (): field_names(RunFile),
    ("allm_sampling",): field_names(SamplingFields),
    ("judging",): field_names(JudgingSection),
    ("judge_check",): field_names(JudgeCheckSection),
    ("allms",): field_names(AllmEntry),
    ("allms", "price"): field_names(TokenPrice),
    ("allms", "resources"): field_names(Resources),
}


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
    executor: Executor = "local"
    text: str = ""

    def to_json(self) -> str:
        """The resolved configuration as JSON (``RUN_DIR/config.json``)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Inverse of :meth:`to_json`."""
        return cls.model_validate_json(text)
