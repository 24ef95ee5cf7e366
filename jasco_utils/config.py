"""Named judges (and, later, run configurations) read from TOML files.

The package ships :file:`jasco_utils/configs/judges.toml` with the paper's three judges and
an embedded CPU judge; users add their own in a file of the same shape.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jasco_utils.models import ENGINES
from jasco_utils.paths import PACKAGE_DIR
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE

#: The judges shipped with the package.
JUDGES_FILE = PACKAGE_DIR / "configs" / "judges.toml"
_SECRET_WORDS = ("api_key", "token", "secret", "password")


@dataclass(frozen=True)
class JudgeSpec:
    """A judge: which model, on which engine, with which prompt.

    Attributes:
        key: The short name used on the command line (``llama-3.1-70b``).
        name: The name tables show (``Llama-3.1-70B-Instruct``).
        engine: ``vllm``, ``openai`` or ``embedded``.
        model: Model id, path or served name.
        template: Judge prompt template.
        options: Keyword arguments for the engine's backend.
    """

    key: str
    name: str
    engine: str
    model: str
    template: str = DEFAULT_JUDGE_TEMPLATE
    options: dict[str, Any] = field(default_factory=dict)


def _spec(key: str, raw: dict[str, Any], source: str) -> JudgeSpec:
    where = f"{source}: [{key}]"
    for required in ("engine", "model"):
        if required not in raw:
            raise ValueError(f"{where} lacks {required!r}")
    if raw["engine"] not in ENGINES:
        raise ValueError(f"{where}: engine {raw['engine']!r} is not one of {sorted(ENGINES)}")
    options = dict(raw.get("options", {}))
    for opt in options:
        if any(w in opt.lower() for w in _SECRET_WORDS) and not opt.lower().endswith("_env"):
            raise ValueError(
                f"{where}: option {opt!r} looks like a secret; configurations never hold keys: "
                "name an environment variable with api_key_env instead"
            )
    unknown = set(raw) - {"name", "engine", "model", "template", "options"}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    return JudgeSpec(key, raw.get("name", key), raw["engine"], raw["model"], raw.get("template", DEFAULT_JUDGE_TEMPLATE), options)


def load_judges(path: str | os.PathLike[str] | None = None) -> dict[str, JudgeSpec]:
    """The judges of a TOML file (the shipped ones when ``path`` is ``None``), by key."""
    path = Path(path) if path else JUDGES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read judges: {e}") from None
    return {key: _spec(key, raw, str(path)) for key, raw in data.items()}


def get_judge(key: str, path: str | os.PathLike[str] | None = None) -> JudgeSpec:
    """One named judge; the error lists the known keys."""
    judges = load_judges(path)
    if key not in judges:
        raise KeyError(f"no judge named {key!r}; known: {', '.join(judges)}")
    return judges[key]
