"""Models and runs as data: one :class:`ModelSpec` for judges and ALLMs, and :class:`RunConfig`.

A model is ``engine + model + options`` (as in lm-evaluation-harness and inspect_ai): the
options reach the engine's backend constructor unchanged, and keys the backend does not
accept are refused with the list of those it does. Judges and ALLMs are both models; a judge
adds its prompt template, an ALLM may be the ``cascade`` baseline or answers to ``import``.

Named judges live in :file:`jasco_utils/configs/judges.toml` (the paper's three and an
embedded CPU judge); run configurations in :file:`jasco_utils/configs/runs/` (``cpu``,
``paper``) or any TOML file. Everything is checked when loaded, with the file and field at
fault named: a misspelled key, an unknown judge or engine, a value of the wrong type, or
something that looks like a secret (keys are read from environment variables only).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class ModelSpec:
    """One model, judge or ALLM: which engine runs it, with which options.

    Attributes:
        key: The short name used on the command line and in file names (``llama-3.1-70b``).
        engine: A model engine (``vllm``, ``openai``, ``embedded``: see
            :data:`jasco_utils.models.ENGINES`) or, for ALLMs, ``cascade`` or ``import``.
        model: Model id, path or served name (the cascade's text LLM; none for ``import``).
        name: The name tables show (default: ``key``).
        options: Keyword arguments for the engine's backend, passed unchanged (for the
            cascade: its text LLM's backend).
        template: A judge's prompt template (``None`` for ALLMs).
        max_tokens: Answer length limit for this model (``None``: the run's).
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
    """

    key: str
    engine: str
    model: str | None = None
    name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    template: str | None = None
    max_tokens: int | None = None
    llm_engine: str | None = None
    asr_model: str | None = None
    path: str | None = None
    optional: bool = False
    family: str | None = None
    tested: str = ""
    system: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.key)
        object.__setattr__(self, "options", dict(self.options))

    @property
    def backend_engine(self) -> str | None:
        """The engine whose backend this spec builds (the cascade's text LLM's), or ``None``."""
        if self.engine == "cascade":
            return self.llm_engine or CASCADE_LLM_ENGINE
        return None if self.engine == "import" else self.engine

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (for a stage run in its own process)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))

    def check(self, where: str = "") -> ModelSpec:
        """Validate the spec; return it.

        Raises:
            ConfigError: Unknown engine, a missing model or path, an option the backend does
                not accept, or an option that looks like a secret.
        """
        from jasco_utils.models import ENGINES, check_options, default_model

        at = f"{where}: " if where else ""
        engines = sorted(ENGINES) + list(ALLM_SOURCES)
        if self.engine not in engines:
            raise ConfigError(f"{at}{self.key}: engine {self.engine!r} is not one of {engines}")
        if self.engine == "import":
            if not self.path:
                raise ConfigError(f"{at}{self.key}: an import needs a path (the file of answers)")
            if self.options:
                raise ConfigError(f"{at}{self.key}: an import takes no options")
            return self
        backend = self.backend_engine
        if backend not in ENGINES:
            raise ConfigError(f"{at}{self.key}: llm_engine {backend!r} is not one of {sorted(ENGINES)}")
        if not self.model and default_model(backend) is None:
            raise ConfigError(f"{at}{self.key}: engine {backend} needs a model")
        for opt in self.options:
            if looks_secret(opt):
                raise ConfigError(
                    f"{at}{self.key}: option {opt!r} looks like a secret; configurations never hold keys: "
                    "name an environment variable with api_key_env instead"
                )
        try:
            check_options(backend, self.options)
        except ValueError as e:
            raise ConfigError(f"{at}{self.key}: {e}") from None
        if self.template is not None:
            from jasco_utils.judging.prompts import judge_templates

            if self.template not in judge_templates():
                raise ConfigError(f"{at}{self.key}: template {self.template!r} is not one of {judge_templates()}")
        return self


_JUDGE_FIELDS = {"name", "engine", "model", "template", "options", "max_tokens"}


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {what}, not {value!r}")
    if kind is int and value < 1:  # every whole number of a configuration is a count or a limit
        raise ConfigError(f"{where}: {key} must be 1 or more, not {value!r}")
    return value


def _read_toml(path: Path, what: str) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from None


def _named_entry(where: str, raw: Any, fields: set[str], what: str) -> dict[str, Any]:
    """A named model's table (a judge, an ALLM), checked for its shape and its field names."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {what} is a table with engine and model")
    unknown = set(raw) - fields
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; fields: {sorted(fields)}")
    return raw


def _judge_spec(key: str, raw: Any, source: str) -> ModelSpec:
    where = f"{source}: [{key}]"
    raw = _named_entry(where, raw, _JUDGE_FIELDS, "a judge")
    if "engine" not in raw:
        raise ConfigError(f"{where} lacks 'engine'")
    from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE

    spec = ModelSpec(
        key=key,
        engine=_typed(where, "engine", raw["engine"], str, "a string"),
        model=_typed(where, "model", raw["model"], str, "a string") if "model" in raw else None,
        name=_typed(where, "name", raw.get("name", key), str, "a string"),
        options=_typed(where, "options", raw.get("options", {}), dict, "a table"),
        template=_typed(where, "template", raw.get("template", DEFAULT_JUDGE_TEMPLATE), str, "a string"),
        max_tokens=_typed(where, "max_tokens", raw["max_tokens"], int, "an integer") if "max_tokens" in raw else None,
    )
    if spec.engine in ALLM_SOURCES:
        raise ConfigError(f"{where}: engine {spec.engine!r} is for ALLMs; a judge runs on a model engine")
    return spec.check(source)


def load_judges(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """The judges of a TOML file (the shipped ones when ``path`` is ``None``), by key.

    Raises:
        ConfigError: The file cannot be read or an entry is malformed (named).
    """
    path = Path(path) if path else JUDGES_FILE
    data, _ = _read_toml(path, "judges")
    return {key: _judge_spec(key, raw, str(path)) for key, raw in data.items()}


def get_judge(key: str, path: str | os.PathLike[str] | None = None) -> ModelSpec:
    """One named judge.

    Raises:
        KeyError: No such judge; the message lists the known keys.
    """
    judges = load_judges(path)
    if key not in judges:
        raise KeyError(f"no judge named {key!r}; known: {', '.join(judges)}")
    return judges[key]


_ALLM_FIELDS = {"name", "engine", "kind", "model", "options", "max_tokens", "llm_engine", "llm_model", "asr_model",
                "path", "optional", "allm", "system"}
#: The fields of a named ALLM (:data:`ALLMS_FILE`).
_NAMED_ALLM_FIELDS = {"name", "engine", "model", "options", "max_tokens", "family", "tested", "system"}


def allm_spec(raw: Mapping[str, Any], where: str) -> ModelSpec:
    """An ALLM entry of a run configuration as a :class:`ModelSpec`.

    ``engine`` names the engine (``vllm``, ``openai``, ``cascade`` or ``import``; ``kind`` is
    read as its older name). The cascade's text LLM is ``llm_engine`` / ``llm_model``.
    ``allm`` names an ALLM of :data:`ALLMS_FILE` instead; the entry's other fields override
    its own (``options`` are merged).
    """
    unknown = set(raw) - _ALLM_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; fields: {sorted(_ALLM_FIELDS - {'kind'})}")
    if "allm" in raw:
        named = load_allms()
        key = raw["allm"]
        if key not in named:
            raise ConfigError(f"{where}: allm: no ALLM named {key!r}; known: {', '.join(named)} (jasco allms)")
        base = named[key]
        options = {**base.options, **_typed(where, "options", raw.get("options", {}), dict, "a table")}
        spec = replace(base, key=raw.get("name", base.key), name=raw.get("name", base.name), options=options,
                       max_tokens=raw.get("max_tokens", base.max_tokens), system=raw.get("system", base.system))
        return spec.check(where)
    if "name" not in raw:
        raise ConfigError(f"{where}: an ALLM needs a name")
    engine = raw.get("engine", raw.get("kind"))
    if engine is None:
        raise ConfigError(f"{where}: an ALLM needs an engine (vllm, openai, cascade or import)")
    name = _typed(where, "name", raw["name"], str, "a string")
    from jasco_utils.models import ENGINES, backend_class

    if engine in ENGINES and not backend_class(engine).takes_audio:
        raise ConfigError(f"{where}: the {engine} engine takes text only; use it as the cascade's llm_engine")
    spec = ModelSpec(
        key=name,
        engine=_typed(where, "engine", engine, str, "a string"),
        model=_typed(where, "model", raw.get("model", raw.get("llm_model")), (str, type(None)), "a string"),
        options=_typed(where, "options", raw.get("options", {}), dict, "a table"),
        max_tokens=_typed(where, "max_tokens", raw["max_tokens"], int, "an integer") if "max_tokens" in raw else None,
        llm_engine=_typed(where, "llm_engine", raw["llm_engine"], str, "a string") if "llm_engine" in raw else None,
        asr_model=_typed(where, "asr_model", raw["asr_model"], str, "a string") if "asr_model" in raw else None,
        path=_typed(where, "path", raw["path"], str, "a string") if "path" in raw else None,
        optional=_typed(where, "optional", raw.get("optional", False), bool, "true or false"),
        system=_typed(where, "system", raw["system"], str, "a string") if "system" in raw else None,
    )
    return spec.check(where)


def load_allms(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """The named ALLMs of a TOML file (the shipped :data:`ALLMS_FILE` when ``path`` is ``None``), by key.

    Raises:
        ConfigError: The file cannot be read or an entry is malformed (named).
    """
    path = Path(path) if path else ALLMS_FILE
    data, _ = _read_toml(path, "named ALLMs")
    out = {}
    for key, raw in data.items():
        where = f"{path}: [{key}]"
        raw = _named_entry(where, raw, _NAMED_ALLM_FIELDS, "an ALLM")
        if raw.get("engine") not in ("vllm", "openai"):
            raise ConfigError(f"{where}: engine must be vllm or openai, not {raw.get('engine')!r}")
        base = allm_spec({"name": key, **{k: v for k, v in raw.items() if k not in ("name", "family", "tested")}}, where)
        out[key] = replace(base, name=_typed(where, "name", raw.get("name", key), str, "a string"),
                           family=_typed(where, "family", raw.get("family", ""), str, "a string") or None,
                           tested=_typed(where, "tested", raw.get("tested", ""), str, "a string"))
    return out


@dataclass
class RunConfig:
    """A run configuration (see the files in ``configs/runs``), checked when loaded.

    Attributes:
        name: The run's name (its folder under ``runs/``).
        path: The file it was read from.
        description: One line for people.
        clips: Clip ids, or ``None`` for all 80.
        paper: Whether Table II shows the published numbers beside these (the paper's protocol).
        allms: The ALLMs, in order.
        judges: The judges, in order.
        judge_structured: ``regex``, ``json`` or ``None`` (free answers, as the paper's judges).
        judge_max_tokens: Judge answer length limit.
        judge_explanation_chars: With structured output: bound on each explanation.
        allm_max_tokens: ALLM answer length limit (a spec's ``max_tokens`` overrides it).
        judge_check: Whether the judging stage also runs the judge check (control answers
            with known labels, :mod:`jasco_utils.judging.controls`) with every judge.
        judge_check_clips: The judge check's clips, or ``None`` for all 80.
        text: The file's text (recorded in the provenance).
    """

    name: str
    path: Path
    description: str = ""
    clips: list[int] | None = None
    paper: bool = False
    allms: list[ModelSpec] = field(default_factory=list)
    judges: list[ModelSpec] = field(default_factory=list)
    judge_structured: str | None = None
    judge_max_tokens: int = 1000
    judge_explanation_chars: int | None = None
    allm_max_tokens: int = 512
    judge_check: bool = False
    judge_check_clips: list[int] | None = None
    text: str = ""


_RUN_FIELDS = {"name", "description", "clips", "paper", "allm_sampling", "judging", "allms", "judge_check"}
_JUDGING_FIELDS = {"judges", "judges_file", "structured", "max_tokens", "max_explanation_chars"}
_JUDGE_CHECK_FIELDS = {"enabled", "clips"}


def _clips(where: str, key: str, clips: Any) -> list[int] | None:
    """``"all"`` (``None``) or a non-empty list of clip ids 1..80 (sorted, once each)."""
    if clips != "all" and not (isinstance(clips, list) and clips
                               and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 80 for c in clips)):
        raise ConfigError(f"{where}: {key} must be \"all\" or a list of clip ids 1..80, not {clips!r}")
    return None if clips == "all" else sorted(set(clips))


def load_run_config(name_or_path: str | os.PathLike[str]) -> RunConfig:
    """Load ``configs/runs/NAME.toml`` or a TOML file at a path, and check all of it.

    Raises:
        ConfigError: Unknown name, unreadable file or a malformed entry (the message says
            which file and field).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = RUN_CONFIGS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in RUN_CONFIGS_DIR.glob("*.toml"))
        raise ConfigError(f"no run configuration {str(name_or_path)!r}; shipped ones: {known}, or give a .toml path")
    raw, text = _read_toml(path, "run configuration")
    where = str(path)
    unknown = set(raw) - _RUN_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; fields: {sorted(_RUN_FIELDS)}")
    clips = _clips(where, "clips", raw.get("clips", "all"))
    judging = _typed(where, "judging", raw.get("judging", {}), dict, "a table")
    unknown = set(judging) - _JUDGING_FIELDS
    if unknown:
        raise ConfigError(f"{where}: [judging] has unknown field(s) {sorted(unknown)}; fields: {sorted(_JUDGING_FIELDS)}")
    sampling = _typed(where, "allm_sampling", raw.get("allm_sampling", {}), dict, "a table")
    if set(sampling) - {"max_tokens"}:
        raise ConfigError(f"{where}: [allm_sampling] has unknown field(s) {sorted(set(sampling) - {'max_tokens'})}")
    judges_file = judging.get("judges_file")
    if judges_file is not None:
        judges_file = Path(judges_file) if Path(judges_file).is_absolute() else path.parent / judges_file
    known = load_judges(judges_file)
    judges = []
    for key in _typed(where, "judging.judges", judging.get("judges", []), list, "a list of judge names"):
        if key not in known:
            raise ConfigError(f"{where}: judging.judges: no judge named {key!r}; known: {', '.join(known)}")
        judges.append(known[key])
    structured = judging.get("structured")
    if structured is not None and structured not in STRUCTURED_MODES:
        raise ConfigError(f"{where}: judging.structured must be one of {list(STRUCTURED_MODES)}, not {structured!r}")
    chars = judging.get("max_explanation_chars")
    check = _typed(where, "judge_check", raw.get("judge_check", {}), dict, "a table")
    unknown = set(check) - _JUDGE_CHECK_FIELDS
    if unknown:
        raise ConfigError(f"{where}: [judge_check] has unknown field(s) {sorted(unknown)}; "
                          f"fields: {sorted(_JUDGE_CHECK_FIELDS)}")
    check_clips = _clips(where, "judge_check.clips", check.get("clips", "all"))
    if check_clips is not None and len(check_clips) < 2:
        raise ConfigError(f"{where}: judge_check.clips needs two clips or more (other_clip gives each clip "
                          "another clip's answer)")
    allms = _typed(where, "allms", raw.get("allms", []), list, "a list of [[allms]] tables")
    specs = [allm_spec(a if isinstance(a, dict) else {}, f"{where}: allms[{i}]") for i, a in enumerate(allms)]
    names = [s.key for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two ALLMs share a name: {names}")
    return RunConfig(
        name=_typed(where, "name", raw.get("name", path.stem), str, "a string"),
        path=path,
        description=_typed(where, "description", raw.get("description", ""), str, "a string"),
        clips=clips,
        paper=_typed(where, "paper", raw.get("paper", False), bool, "true or false"),
        allms=specs,
        judges=judges,
        judge_structured=structured,
        judge_max_tokens=_typed(where, "judging.max_tokens", judging.get("max_tokens", 1000), int, "an integer"),
        judge_explanation_chars=None if chars is None else _typed(where, "judging.max_explanation_chars", chars, int,
                                                                  "an integer"),
        allm_max_tokens=_typed(where, "allm_sampling.max_tokens", sampling.get("max_tokens", 512), int, "an integer"),
        judge_check=_typed(where, "judge_check.enabled", check.get("enabled", bool(check)), bool, "true or false"),
        judge_check_clips=check_clips,
        text=text,
    )
