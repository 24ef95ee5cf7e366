"""The configuration files: named judges (``judges.toml``), named ALLMs (``allms.toml``), run configurations.

Files become checked :class:`~jasco_utils.models.spec.ModelSpec` objects and a
:class:`~jasco_utils.config.schema.RunConfig`. A file is checked whole against its schema
(:mod:`jasco_utils.config.schema`) and every problem is listed at once, each naming the file and
the field, in words (:func:`~jasco_utils.core.errors.describe_errors`): a misspelled key, an
unknown judge, engine or prompt template, a value of the wrong type, an option the backend does
not take, or something that looks like a secret (keys are read from environment variables only).
The loaders resolve a run configuration's generation settings
(:func:`~jasco_utils.models.spec.resolve_generate`, the only owner of their defaults).

Named judges live in :file:`jasco_utils/configs/judges.toml`, named ALLMs in
:file:`configs/allms.toml`, run configurations in :file:`configs/runs/` or any TOML file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from jasco_utils.config.schema import (
    RUN_SECTIONS,
    AllmEntry,
    JudgeEntry,
    NamedAllmEntry,
    RunConfig,
    RunFile,
    field_names,
)
from jasco_utils.core.errors import ConfigError, describe_errors
from jasco_utils.core.paths import PACKAGE_DIR
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE, template_problem
from jasco_utils.models.registry import ENGINES, backend_class, check_spec, spec_problems
from jasco_utils.models.spec import ALLM_SOURCES, GenerateConfig, ModelSpec, TokenPrice, resolve_generate

#: The judges shipped with the package.
JUDGES_FILE = PACKAGE_DIR / "configs" / "judges.toml"


#: The named ALLMs (``jasco infer --allm KEY``, ``allm = "KEY"`` in a run configuration).
ALLMS_FILE = PACKAGE_DIR / "configs" / "allms.toml"


#: Folder of the shipped run configurations.
RUN_CONFIGS_DIR = PACKAGE_DIR / "configs" / "runs"


def _read_toml(path: Path, what: str) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from None


def _raise(where: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError("\n".join(f"{where}: {p}" for p in problems))


def _judge_spec(key: str, entry: JudgeEntry) -> ModelSpec:
    return ModelSpec(
        key=key,
        engine=entry.engine,
        model=entry.model,
        name=entry.name or key,
        options=entry.options,
        template=entry.template or DEFAULT_JUDGE_TEMPLATE,
        generate=entry.level("structured", "max_explanation_chars"),
        price=entry.price,
        **entry.placement(),
    )


def _load_named(
    path: Path, what: str, schema: type[BaseModel], build: Callable[[str, Any], ModelSpec]
) -> dict[str, ModelSpec]:
    """The models of a named-models file, by key: each table validated by ``schema``, built into
    a spec by ``build`` and checked; every problem of the file at once."""
    data, _ = _read_toml(path, f"named {what}s")
    out, problems = {}, []
    for key, raw in data.items():
        if not isinstance(raw, dict):
            problems.append(f"[{key}]: {what} is a table with engine and model")
            continue
        try:
            entry = schema.model_validate(raw)
        except ValidationError as e:
            fields_of = {(): field_names(schema), ("price",): field_names(TokenPrice)}
            problems += [f"[{key}]: {p}" for p in describe_errors(e, fields_of)]
            continue
        out[key] = build(key, entry)
        if what == "judge" and out[key].engine in ALLM_SOURCES:
            problems.append(f"[{key}]: engine {out[key].engine!r} is for ALLMs; a judge runs on a model engine")
        else:
            problems += [f"{key}: {p}" for p in spec_problems(out[key]) + template_problem(out[key])]
    _raise(str(path), problems)
    return out


def load_judges(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """The judges of a TOML file (the shipped ones when ``path`` is ``None``), by key.

    Raises:
        ConfigError: The file cannot be read or entries are malformed (each named).
    """
    return _load_named(Path(path) if path else JUDGES_FILE, "judge", JudgeEntry, _judge_spec)


def get_judge(key: str, path: str | os.PathLike[str] | None = None) -> ModelSpec:
    """One named judge (its entry's generation level, unresolved).

    Raises:
        KeyError: No such judge; the message lists the known keys.
    """
    judges = load_judges(path)
    if key not in judges:
        raise KeyError(f"no judge named {key!r}; known: {', '.join(judges)}")
    return judges[key]


def _allm_from_entry(entry: AllmEntry) -> tuple[ModelSpec | None, list[str]]:
    """An ``[[allms]]`` entry as a spec (a named ALLM's generation level, the entry's own not yet applied),
    or the problems."""
    if entry.allm is not None:
        named = load_allms()
        if entry.allm not in named:
            return None, [f"allm: no ALLM named {entry.allm!r}; known: {', '.join(named)} (jasco allms)"]
        base = named[entry.allm]
        changes: dict[str, Any] = {"options": {**base.options, **entry.options}}
        if entry.name:
            changes.update(key=entry.name, name=entry.name)
        if entry.system is not None:
            changes["system"] = entry.system
        if entry.price is not None:
            changes["price"] = entry.price
        changes.update(entry.placement())
        return base.replace(**changes), []
    if not entry.name:
        return None, ["an ALLM needs a name"]
    if entry.engine is None:
        return None, ["an ALLM needs an engine (vllm, openai, cascade or import)"]
    if entry.engine in ENGINES and not backend_class(entry.engine).takes_audio:
        return None, [f"the {entry.engine} engine takes text only; use it as the cascade's llm_engine"]
    spec = ModelSpec(
        key=entry.name,
        engine=entry.engine,
        model=entry.model or entry.llm_model,
        options=entry.options,
        llm_engine=entry.llm_engine,
        asr_model=entry.asr_model,
        path=entry.path,
        optional=entry.optional,
        system=entry.system,
        price=entry.price,
        **entry.placement(),
    )
    return spec, []


def allm_spec(raw: Mapping[str, Any], where: str) -> ModelSpec:
    """An ALLM entry of a run configuration as a :class:`ModelSpec` (its own generation level).

    ``engine`` names the engine (``vllm``, ``openai``, ``cascade`` or ``import``). The
    cascade's text LLM is ``llm_engine`` / ``llm_model``. ``allm`` names an ALLM of
    :data:`ALLMS_FILE` instead; the entry's other fields override its own (``options`` are
    merged).

    Raises:
        ConfigError: Every problem of the entry, each naming its field.
    """
    try:
        entry = AllmEntry.model_validate(dict(raw))
    except ValidationError as e:
        _raise(where, describe_errors(e, {(): field_names(AllmEntry), ("price",): field_names(TokenPrice)}))
    spec, problems = _allm_from_entry(entry)
    _raise(where, problems)
    return check_spec(spec.with_generate(entry.level()), where)


def load_allms(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """The named ALLMs of a TOML file (the shipped :data:`ALLMS_FILE` when ``path`` is ``None``), by key.

    Raises:
        ConfigError: The file cannot be read or entries are malformed (each named).
    """
    return _load_named(Path(path) if path else ALLMS_FILE, "ALLM", NamedAllmEntry, _named_allm_spec)


def _named_allm_spec(key: str, entry: NamedAllmEntry) -> ModelSpec:
    return ModelSpec(
        key=key,
        engine=entry.engine,
        model=entry.model,
        name=entry.name or key,
        options=entry.options,
        generate=entry.level(),
        family=entry.family or None,
        system=entry.system,
        price=entry.price,
        **entry.placement(),
    )


def run_config_file(name_or_path: str | os.PathLike[str]) -> Path:
    """The file of a run configuration: ``configs/runs/NAME.toml`` for a name, else the path.

    Raises:
        ConfigError: No such file; the message lists the shipped configurations.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = RUN_CONFIGS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in RUN_CONFIGS_DIR.glob("*.toml"))
        raise ConfigError(f"no run configuration {str(name_or_path)!r}; shipped ones: {known}, or give a .toml path")
    return path


def _run_allms(run: RunFile, allm_level: GenerateConfig) -> tuple[list[ModelSpec], list[str]]:
    """A run file's ALLMs, resolved, each followed by itself under its interventions
    (``NAME@CONDITION``); and what is wrong with them."""
    problems: list[str] = []
    allms: list[ModelSpec] = []
    for i, entry in enumerate(run.allms):
        spec, bad = _allm_from_entry(entry)
        bad = bad or [f"{spec.key}: {p}" for p in spec_problems(spec)]
        problems += [f"allms[{i}]: {p}" for p in bad]
        if spec is not None and not bad:
            spec = resolve_generate(spec, allm_level, entry.level())
            allms.append(spec)
            conditions = run.interventions if entry.interventions is None else entry.interventions
            if conditions and spec.engine == "import":
                problems.append(
                    f"allms[{i}]: {spec.key}: imported answers cannot be answered again under interventions"
                )
            elif len(set(conditions)) != len(conditions):
                problems.append(f"allms[{i}]: {spec.key}: a condition listed twice in interventions {conditions}")
            else:
                allms += [spec.under(c) for c in conditions]
    return allms, problems


def load_run_config(name_or_path: str | os.PathLike[str]) -> RunConfig:
    """Load ``configs/runs/NAME.toml`` or a TOML file at a path, check all of it, resolve its models.

    Raises:
        ConfigError: Unknown name, unreadable file, or every problem of the file (each naming
            the file and the field).
    """
    path = run_config_file(name_or_path)
    raw, text = _read_toml(path, "run configuration")
    where = str(path)
    try:
        run = RunFile.model_validate(raw)
    except ValidationError as e:
        _raise(where, describe_errors(e, RUN_SECTIONS))
    judging, problems = run.judging, []
    judges_file = judging.judges_file
    if judges_file is not None:
        judges_file = Path(judges_file) if Path(judges_file).is_absolute() else path.parent / judges_file
    known = load_judges(judges_file)
    judge_level = judging.level("structured", "max_explanation_chars")
    judges = []
    for key in judging.judges:
        if key not in known:
            problems.append(f"judging.judges: no judge named {key!r}; known: {', '.join(known)}")
        else:
            spec = known[key].replace(replicas=judging.replicas[key]) if key in judging.replicas else known[key]
            judges.append(resolve_generate(spec, judge_level))
    problems += [
        f"judging.replicas: {key!r} is not one of judging.judges {judging.judges}"
        for key in judging.replicas
        if key not in judging.judges
    ]
    allm_level = run.allm_sampling.level()
    allms, bad_allms = _run_allms(run, allm_level)
    problems += bad_allms
    if any(s.generate.max_explanation_chars is not None and s.generate.structured is None for s in judges):
        problems.append("judging.max_explanation_chars bounds structured answers only: set judging.structured too")
    check_clips = run.judge_check.clips
    for key, clips in run.judge_check.judge_clips.items():
        if key not in judging.judges:
            problems.append(f"judge_check.judge_clips: {key!r} is not one of judging.judges {judging.judges}")
        elif clips is not None and check_clips is not None and set(clips) - set(check_clips):
            problems.append(
                f"judge_check.judge_clips.{key}: clips {sorted(set(clips) - set(check_clips))} are not "
                f"among judge_check.clips"
            )
    names = [s.key for s in allms]
    if len(set(names)) != len(names):
        problems.append(f"two ALLMs share a name: {names}")
    _raise(where, problems)
    return RunConfig(
        name=run.name or path.stem,
        path=path,
        description=run.description,
        clips=run.clips,
        paper=run.paper,
        allms=allms,
        judges=judges,
        judging=judge_level,
        allm_sampling=allm_level,
        judge_check=run.judge_check.enabled
        if run.judge_check.enabled is not None
        else "judge_check" in raw and bool(raw["judge_check"]),
        judge_check_clips=check_clips,
        judge_check_judge_clips=run.judge_check.judge_clips,
        executor=run.executor,
        text=text,
    )
