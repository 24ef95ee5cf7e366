"""The JASCO judge prompts as versioned template files, loaded by name.

Templates live in ``jasco_utils/judging/templates/<name>_v<version>.txt`` and are filled with
:py:meth:`str.format`, exactly as the original evaluation script of Wang et al.
(arXiv:2409.14526, repository ``BenoitWang/What_Are_They_Doing``, ``evaluation/eval.py``)
fills its prompt strings, so rendering reproduces the texts it sent byte for byte.

Templates:

- ``judge_original``: the judge prompt of the original evaluation script. Its orientation
  labels are Audio-Oriented / Speech-Oriented / **Good** / Neither. It is what the released
  script sends, so it is the default; whether it or ``judge_paper`` produced the published
  numbers the sources do not settle (the README's example judgements answer ``Both``).
- ``judge_paper``: the judge prompt as the paper and the repository README print it
  (labels ... / **Both** / ...; a few other words differ).
- ``reask_original``: the follow-up prompt the script sends when it finds no orientation;
  ``{explanation}`` is the judge's text after its last ``Explanation2: ``.
- ``system``: the system message, ``You are an NLP assistant``.

Every judged row records the template name, version and SHA-256 of the template file.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jasco_utils.core.paths import PROMPTS_DIR
from jasco_utils.models.base import StructuredOutput
from jasco_utils.models.spec import ModelSpec

#: The template used when none is named: the one the released evaluation script sends.
DEFAULT_JUDGE_TEMPLATE = "judge_original"

#: Judge template field -> manifest column that fills it (as the original script does).
JUDGE_FIELDS: dict[str, str] = {
    "audio_sound": "audio_sound",
    "spoken_text": "spoken_text",
    "question": "prompt",
    "audio_only_target": "audio_only_target",
    "speech_only_target": "speech_only_target",
    "reference": "tgt_text",
    "keywords": "target_keywords",
    "prediction": "allm_output",
}

#: The marker after which the re-ask prompt takes the judge's orientation explanation.
EXPLANATION2_MARKER = "Explanation2: "

_FILE_RE = re.compile(r"^(?P<name>[a-z0-9_]+?)_v(?P<version>\d+)\.txt$")
#: The line of a judge template that lists the orientation labels.
_OPTIONS_LINE = re.compile(r"^Orientation: (?P<options>[\w-]+(?:/[\w-]+)+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template file.

    Attributes:
        name: Template name, e.g. ``judge_original``.
        version: Integer version from the file name.
        text: The template text, exactly as stored.
        sha256: SHA-256 of the UTF-8 bytes of ``text``.
    """

    name: str
    version: int
    text: str
    sha256: str

    @property
    def id(self) -> str:
        """``name@vN``, the form written into judged rows."""
        return f"{self.name}@v{self.version}"

    @property
    def fields(self) -> tuple[str, ...]:
        """The ``{field}`` names the template expects, in order of first appearance."""
        seen: dict[str, None] = {}
        for _, field, _, _ in string.Formatter().parse(self.text):
            if field:
                seen.setdefault(field, None)
        return tuple(seen)

    @property
    def labels(self) -> tuple[str, ...]:
        """The orientation labels a judge template asks for, read from its ``Orientation:`` line.

        Empty for templates that are not judge prompts.

        >>> load_template("judge_original").labels
        ('Audio-Oriented', 'Speech-Oriented', 'Good', 'Neither')
        """
        m = _OPTIONS_LINE.search(self.text)
        return tuple(m["options"].split("/")) if m else ()

    def render(self, **values: object) -> str:
        """Fill the template with ``str.format``.

        Raises:
            KeyError: A field the template needs is missing; the message names it.
        """
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise KeyError(f"template {self.id} needs the field(s) {missing}; got {sorted(values)}")
        return self.text.format(**values)


def _versions() -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, str]] = {}
    for path in PROMPTS_DIR.glob("*.txt"):
        m = _FILE_RE.match(path.name)
        if m:
            found.setdefault(m["name"], {})[int(m["version"])] = path.name
    return found


def list_templates() -> dict[str, list[int]]:
    """Return each template name with its available versions, ascending."""
    return {name: sorted(v) for name, v in sorted(_versions().items())}


def judge_templates() -> list[str]:
    """Names of the judge templates: those whose text lists orientation labels.

    Adding a judge prompt is adding one file ``NAME_v1.txt`` to the templates folder.

    >>> judge_templates()
    ['judge_original', 'judge_paper']
    """
    return [name for name in list_templates() if load_template(name).labels]


def template_problem(spec: ModelSpec) -> list[str]:
    """A judge whose prompt template is not one
    of the shipped ones, in words (empty otherwise)."""
    if spec.template is not None and spec.template not in judge_templates():
        return [f"template {spec.template!r} is not one of {judge_templates()}"]
    return []


@cache
def load_template(name: str, version: int | None = None) -> PromptTemplate:
    """Load a template by name (and version; the newest when ``None``).

    Args:
        name: ``judge_original``, ``judge_paper``, ``reask_original`` or ``system``, or
            ``name@vN`` to pin a version.
        version: Version to load; overrides a version given in ``name``.

    Raises:
        KeyError: No such template or version; the message lists what exists.
    """
    if "@v" in name:
        name, _, v = name.partition("@v")
        if not (v.isascii() and v.isdigit()):
            raise KeyError(f"bad template version {v!r} in {name + '@v' + v!r}; write name@vN, e.g. {name}@v1")
        version = int(v) if version is None else version
    versions = _versions().get(name)
    if not versions:
        raise KeyError(f"no prompt template named {name!r}; available: {list_templates()}")
    version = max(versions) if version is None else version
    if version not in versions:
        raise KeyError(f"template {name!r} has no version {version}; available: {sorted(versions)}")
    raw = (PROMPTS_DIR / versions[version]).read_bytes()
    return PromptTemplate(name, version, raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())


def render_judge_prompt(
    row: Mapping[str, object],
    prediction: str | None = None,
    template: str = DEFAULT_JUDGE_TEMPLATE,
) -> str:
    """Fill a judge template from a manifest row and an ALLM prediction.

    Args:
        row: A manifest row (mapping with the columns named in :data:`JUDGE_FIELDS`).
        prediction: The ALLM's answer; ``row["allm_output"]`` when ``None``.
        template: Template name (``judge_original`` or ``judge_paper``).

    Returns:
        The user message, byte for byte the text the original script builds.
    """
    values = {}
    for field, column in JUDGE_FIELDS.items():
        if field == "prediction" and prediction is not None:
            values[field] = prediction
            continue
        if column not in row:
            raise KeyError(f"manifest row has no column {column!r} (needed for {{{field}}})")
        values[field] = row[column]
    return load_template(template).render(**values)


def judge_messages(
    row: Mapping[str, object],
    prediction: str | None = None,
    template: str = DEFAULT_JUDGE_TEMPLATE,
) -> list[dict[str, str]]:
    """The judge conversation: the system message, then the filled judge prompt."""
    return [
        {"role": "system", "content": load_template("system").text},
        {"role": "user", "content": render_judge_prompt(row, prediction, template)},
    ]


def reask_explanation(judge_output: str) -> str:
    """The text after the last ``Explanation2: `` (the whole text when there is none).

    This is what the original script passes as ``{explanation}`` to the re-ask prompt.

    >>> reask_explanation("Rating: 1\\nExplanation2: It is Good.\\nOrientation: ?")
    'It is Good.\\nOrientation: ?'
    """
    return judge_output.split(EXPLANATION2_MARKER)[-1]


def reask_messages(judge_output: str, template: str = "reask_original") -> list[dict[str, str]]:
    """The re-ask conversation for a judge output whose orientation could not be read."""
    return [
        {"role": "system", "content": load_template("system").text},
        {"role": "user", "content": load_template(template).render(explanation=reask_explanation(judge_output))},
    ]


# --------------------------------------------------------------------------------------
# The answer format a judge template asks for, as a decoding constraint (structured output)
# --------------------------------------------------------------------------------------


def answer_regex(template: str = DEFAULT_JUDGE_TEMPLATE, max_explanation_chars: int = 1200) -> str:
    """A regex for the answer format the judge prompt asks for (for structured output).

    >>> import re
    >>> bool(re.fullmatch(answer_regex(), "Explanation1: ok\\nRating: 2\\nExplanation2: fine\\nOrientation: Good"))
    True
    """
    labels = "|".join(load_template(template).labels)
    n = max_explanation_chars
    return (
        rf"Explanation1: [^\n]{{1,{n}}}\nRating: [012]\nExplanation2: [^\n]{{1,{n}}}\n"
        rf"Orientation: ({labels})"
    )


def answer_json_schema(template: str = DEFAULT_JUDGE_TEMPLATE, max_explanation_chars: int = 600) -> dict[str, Any]:
    """A JSON schema for the judge's answer (for servers with ``response_format``).

    The explanations are bounded (600 characters by default) so that a weak model cannot
    spend its whole token budget on one.
    """
    return {
        "type": "object",
        "properties": {
            "explanation1": {"type": "string", "maxLength": max_explanation_chars},
            "rating": {"type": "integer", "minimum": 0, "maximum": 2},
            "explanation2": {"type": "string", "maxLength": max_explanation_chars},
            "orientation": {"type": "string", "enum": list(load_template(template).labels)},
        },
        "required": ["explanation1", "rating", "explanation2", "orientation"],
        "additionalProperties": False,
    }


def structured_output(
    kind: str | None, template: str = DEFAULT_JUDGE_TEMPLATE, max_explanation_chars: int | None = None
) -> StructuredOutput | None:
    """``"regex"``, ``"json"`` or ``None`` -> the constraint for the judge's answers.

    ``max_explanation_chars`` bounds each explanation (default 1200 for the regex, 600 for
    JSON).
    """
    if kind in (None, "", "none"):
        if max_explanation_chars:
            raise ValueError(
                "--max-explanation-chars (max_explanation_chars) bounds a structured answer: "
                "give --structured regex or json with it"
            )
        return None
    if not load_template(template).labels:
        raise ValueError(f"template {template!r} is not a judge prompt (no Orientation line)")
    if kind == "regex":
        return StructuredOutput(regex=answer_regex(template, max_explanation_chars or 1200))
    if kind == "json":
        return StructuredOutput(json_schema=answer_json_schema(template, max_explanation_chars or 600))
    raise ValueError(f"structured output must be 'regex', 'json' or none, not {kind!r}")
