"""Reading a JASCO judge's answer: the rating (0, 1, 2) and the orientation.

The judge prompt of Wang et al. (arXiv:2409.14526) asks for::

    Explanation1: ...
    Rating: (int)
    Explanation2: ...
    Orientation: Audio-Oriented/Speech-Oriented/Good/Neither

Real judges (Llama-, Qwen-, Mistral-class) answer with Markdown emphasis, a value on the
line after its label, "2.0", "Good" (the original script's word) or "Both" (the paper's),
"speech oriented", "Audio-Orientated", or an echo of the format line before the answer.
:func:`parse_judgement` reads what a careful person reads and returns ``None`` for a field
it cannot read: never a default class, never the previous row's value. How many fields
stay ``None`` is a reported number.

Rules (each with realistic judge answers in ``tests/test_parsing.py``):

1. Labels are read at the start of a line, after Markdown is removed (``**``, ``__``,
   backticks, headings, list bullets, block quotes): ``**Rating:** 2`` reads 2.
2. Binding to the answer line: when a label occurs more than once, the *last* occurrence
   that holds a value wins, because the judge's answer comes after its reasoning, and an
   explanation may name a label before the real answer line.
3. An empty value is taken from the next non-empty line (``Rating:\\n2``).
4. A value that only echoes the requested format is not an answer and is skipped:
   ``Rating: (int)``, ``Rating: 0-2``,
   ``Orientation: Audio-Oriented/Speech-Oriented/Good/Neither``.
5. Ratings: the first number of the value, written with extra text around it
   (``2 (highly accurate)``, ``Score 2``, ``2/2``, ``2.0``). A value that is not a whole
   number, a fraction over anything but 2, or a number outside 0..2 is unreadable (None),
   never clamped.
6. Orientations: the label at the start of the value, in any case, with a hyphen, a space
   or nothing between the parts and any of the suffixes -Oriented, -Orientated,
   -Orientation, -Based, -Dependent, -Only. ``Good`` means Both (the original script's
   label), as do ``Audio and Speech`` and ``A-S``. When the value does not start with a
   label, exactly one label mentioned in it is taken; two different labels are ambiguous
   (None).
7. When no line starts with the label, an inline ``Orientation: X`` (or ``Rating: N``) is
   used, the last one, e.g. at the end of ``Explanation2``.
8. A JSON object with ``rating`` and ``orientation`` keys (what structured output asks
   for) is read directly, with the same value rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: The orientation classes, as reported.
AUDIO, SPEECH, BOTH, NEITHER = "Audio", "Speech", "Both", "Neither"
ORIENTATIONS: tuple[str, ...] = (AUDIO, SPEECH, BOTH, NEITHER)
#: The column holding the judge's raw answer in the original ``eval.py`` layout.
ORIGINAL_OUTPUT_COLUMN = "llama3_extract"
#: Valid ratings.
RATINGS: tuple[int, ...] = (0, 1, 2)

_SUFFIX = r"(?:[\s_-]*(?:oriented|orientated|orientation|based|dependent|dependence|only|focused))?"
#: Orientation label patterns, tried at each position; Both first so that
#: "Audio and Speech" is not read as Audio.
ORIENTATION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        BOTH,
        re.compile(
            r"(?:both|good|joint|a\s*-\s*s\b|audio[\s_-]*(?:and|&|\+|-|/)[\s_-]*speech|"
            r"speech[\s_-]*(?:and|&|\+|-|/)[\s_-]*audio)" + _SUFFIX,
            re.I,
        ),
    ),
    (NEITHER, re.compile(r"(?:neither|none)" + _SUFFIX, re.I)),
    (AUDIO, re.compile(r"audio" + _SUFFIX, re.I)),
    (SPEECH, re.compile(r"speech" + _SUFFIX, re.I)),
)

# A label line: optional "Final"/"Task 2" prefix, the label, an optional parenthesis
# ("Rating (int)"), then a separator; or the label alone on its line ("### Rating").
_LABEL_LINE = re.compile(
    r"^(?:task\s*\d\s*[:.)-]?\s*)?(?:(?:final|overall|predicted)\s+)?"
    r"(?P<label>rating|score|orientation|modality[\s-]+orientation)"
    r"(?:\s*\([^)]{0,20}\))?"
    r"(?:\s*(?:[:：=]|\s[-–]\s)\s*(?P<value>.*)|\s*)$",
    re.I,
)
_INLINE = {
    "rating": re.compile(r"\brating\s*[:：]\s*(?P<value>[^\n]+)", re.I),
    "orientation": re.compile(r"\borientation\s*[:：]\s*(?P<value>[^\n]+)", re.I),
}
_RATING_ECHO = re.compile(
    r"^\(?\s*(?:int|integer|number|score|rating|\.\.\.|…)?\s*\)?$"  # (int)
    r"|^\(?\s*0\s*(?:-|–|to)\s*2\b"  # 0-2, 0 to 2
    r"|^\(?\s*0\s*[/,]?\s*(?:or\s*)?1\s*[/,]?\s*(?:or\s*)?2\b",  # 0/1/2, 0, 1 or 2
    re.I,
)
_RATING_VALUE = re.compile(
    r"^[^\d\n]{0,40}?(?P<num>-?\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of|of)\s*(?P<den>\d+(?:\.\d+)?))?",
    re.I,
)
_MARKDOWN = re.compile(r"\*+|`+|(?<!\w)__|__(?!\w)")
_LEADING = re.compile(r"^\s*(?:#{1,6}\s*|>\s*|[-•+]\s+|\d+[.)]\s+)*")
_QUOTES = "\"'“”‘’[](){}<>"


@dataclass(frozen=True)
class Judgement:
    """A judge answer, read.

    Attributes:
        rating: 0, 1 or 2; ``None`` when unreadable.
        orientation: ``"Audio"``, ``"Speech"``, ``"Both"`` or ``"Neither"``; ``None`` when
            unreadable.
        rating_text: The value text the rating was read from (or rejected from).
        orientation_text: The value text the orientation was read from (or rejected from).
        notes: Why a field is ``None`` or what was skipped, for audits.
    """

    rating: int | None
    orientation: str | None
    rating_text: str | None = None
    orientation_text: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def parsed(self) -> bool:
        """True when both the rating and the orientation were read."""
        return self.rating is not None and self.orientation is not None


def _clean(line: str) -> str:
    """Strip Markdown decoration from a line.

    >>> _clean("  **Rating:** `2`")
    'Rating: 2'
    >>> _clean("### Orientation: __Both__")
    'Orientation: Both'
    """
    return _LEADING.sub("", _MARKDOWN.sub("", line)).strip()


def _strip_value(value: str) -> str:
    return value.strip().strip(_QUOTES + " .,;:!").strip()


def parse_rating_value(value: str) -> tuple[int | None, str]:
    """Read a rating from the text after ``Rating:``.

    Returns:
        ``(rating, status)`` where status is ``"ok"``, ``"echo"`` (the format was echoed:
        not an answer), ``"empty"``, or why the value was rejected.

    >>> parse_rating_value("2")
    (2, 'ok')
    >>> parse_rating_value("**1** (aligns generally)")
    (1, 'ok')
    >>> parse_rating_value("2.0")
    (2, 'ok')
    >>> parse_rating_value("Score 2 out of 2")
    (2, 'ok')
    >>> parse_rating_value("(int)")
    (None, 'echo')
    >>> parse_rating_value("3")
    (None, 'out of range: 3')
    >>> parse_rating_value("1.5")
    (None, 'not a whole number: 1.5')
    >>> parse_rating_value("8/10")
    (None, 'not on the 0-2 scale: 8/10')
    """
    v = _strip_value(_clean(value))
    if not v:
        return None, "empty"
    if _RATING_ECHO.search(v):
        return None, "echo"
    m = _RATING_VALUE.match(v)
    if not m:
        return None, f"no number in {v[:40]!r}"
    num = float(m["num"])
    if m["den"] is not None and float(m["den"]) != 2:
        return None, f"not on the 0-2 scale: {m['num']}/{m['den']}"
    if num != int(num):
        return None, f"not a whole number: {m['num']}"
    if int(num) not in RATINGS:
        return None, f"out of range: {m['num']}"
    return int(num), "ok"


def _label_mentions(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping label mentions ``(start, end, label)`` in order of position."""
    found: list[tuple[int, int, str]] = []
    taken = [False] * (len(text) + 1)
    for label, pattern in ORIENTATION_PATTERNS:
        for m in pattern.finditer(text):
            if any(taken[m.start() : m.end()]):
                continue
            # a label is a word on its own: "audiobook" is not Audio
            before = text[m.start() - 1] if m.start() else " "
            after = text[m.end()] if m.end() < len(text) else " "
            if before.isalnum() or after.isalnum():
                continue
            found.append((m.start(), m.end(), label))
            for k in range(m.start(), m.end()):
                taken[k] = True
    return sorted(found)


def parse_orientation_value(value: str) -> tuple[str | None, str]:
    """Read an orientation from the text after ``Orientation:``.

    Returns:
        ``(orientation, status)`` with status ``"ok"``, ``"echo"``, ``"empty"``,
        ``"ambiguous"`` or ``"no label"``.

    >>> parse_orientation_value("Good")
    ('Both', 'ok')
    >>> parse_orientation_value("**speech oriented**")
    ('Speech', 'ok')
    >>> parse_orientation_value("Audio-Orientated.")
    ('Audio', 'ok')
    >>> parse_orientation_value("Both (the action relies on the audio and the speech)")
    ('Both', 'ok')
    >>> parse_orientation_value("Audio-Oriented/Speech-Oriented/Good/Neither")
    (None, 'echo')
    >>> parse_orientation_value("I would say it is Speech-Oriented")
    ('Speech', 'ok')
    >>> parse_orientation_value("Audio-Oriented or Speech-Oriented")
    (None, 'ambiguous')
    """
    v = _strip_value(_clean(value))
    if not v:
        return None, "empty"
    mentions = _label_mentions(v)
    if not mentions:
        return None, "no label"
    labels = {m[2] for m in mentions}
    # An echo: the value is nothing but two or more labels joined by separators.
    rest = v
    for start, end, _ in reversed(mentions):
        rest = rest[:start] + rest[end:]
    if len(mentions) >= 2 and re.fullmatch(r"[\s/|,.;]*(?:(?:or|and)?[\s/|,.;]*)*", rest, re.I):
        return None, "echo" if len(labels) >= 2 and re.search(r"[/|]", v) else "ambiguous"
    first_start, _, first = mentions[0]
    if first_start == 0 or len(labels) == 1:
        # the value starts with a label, or mentions just one
        if first_start != 0 and len(labels) > 1:
            return None, "ambiguous"
        return first, "ok"
    return None, "ambiguous"


def _label_occurrences(lines: list[str], kind: str) -> list[tuple[int, str]]:
    """(line index, value) of each line labelled ``kind`` (rating or orientation)."""
    out = []
    for i, raw in enumerate(lines):
        m = _LABEL_LINE.match(_clean(raw))
        if not m:
            continue
        label = m["label"].lower()
        is_rating = label in ("rating", "score")
        if (kind == "rating") != is_rating:
            continue
        value = (m["value"] or "").strip()
        if not _strip_value(_clean(value)):
            # rule 3: the value is on the next non-empty line, unless that is a label
            for nxt in lines[i + 1 :]:
                if nxt.strip():
                    if not _LABEL_LINE.match(_clean(nxt)):
                        value = nxt
                    break
        out.append((i, value))
    return out


def _pick(occurrences: list[str], reader) -> tuple[object | None, str | None, list[str]]:
    """Apply rule 2 and 4: the last occurrence that is not an echo or empty wins."""
    notes: list[str] = []
    for value in reversed(occurrences):
        result, status = reader(value)
        if status in ("echo", "empty"):
            notes.append(f"skipped {status} value {value.strip()[:60]!r}")
            continue
        if status != "ok":
            notes.append(f"unreadable value {value.strip()[:60]!r}: {status}")
        return result, value.strip(), notes
    return None, None, notes


def _parse_json(text: str) -> Judgement | None:
    """Rule 8: a JSON object holding rating and orientation."""
    candidates = re.findall(r"\{[^{}]*\}", text)
    for blob in reversed(candidates):
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = {k.lower(): v for k, v in obj.items()}
        if "rating" not in keys and "orientation" not in keys:
            continue
        notes: list[str] = []
        rating = orientation = None
        if "rating" in keys:
            rating, status = parse_rating_value(str(keys["rating"]))
            if status != "ok":
                notes.append(f"rating {keys['rating']!r}: {status}")
        if "orientation" in keys:
            orientation, status = parse_orientation_value(str(keys["orientation"]))
            if status != "ok":
                notes.append(f"orientation {keys['orientation']!r}: {status}")
        return Judgement(
            rating,
            orientation,
            None if "rating" not in keys else str(keys["rating"]),
            None if "orientation" not in keys else str(keys["orientation"]),
            tuple(notes),
        )
    return None


def parse_judgement(text: str | None) -> Judgement:
    """Read the rating and the orientation from a judge's answer.

    Args:
        text: The judge's raw answer.

    Returns:
        A :class:`Judgement`; a field that cannot be read is ``None`` (see the module's
        rules).

    >>> j = parse_judgement("Explanation1: ...\\nRating: 2\\nExplanation2: ...\\nOrientation: Good")
    >>> j.rating, j.orientation
    (2, 'Both')
    >>> parse_judgement("I cannot judge this.").parsed
    False
    """
    if not text or not text.strip():
        return Judgement(None, None, notes=("empty answer",))
    as_json = _parse_json(text) if "{" in text else None
    if as_json is not None:
        return as_json
    lines = text.splitlines()
    notes: list[str] = []

    found = {}
    for kind, reader in (("rating", parse_rating_value), ("orientation", parse_orientation_value)):
        value, value_text, n = _pick([v for _, v in _label_occurrences(lines, kind)], reader)
        notes += n
        if value_text is None:
            # rule 7: no line starts with the label; take an inline "Label: value"
            inline = [m["value"] for m in _INLINE[kind].finditer(text)]
            value, value_text, n = _pick(inline, reader)
            notes += n
            if value_text is None:
                notes.append(f"no {kind} line")
        found[kind] = (value, value_text)
    (rating, rating_text), (orientation, orientation_text) = found["rating"], found["orientation"]
    notes = list(dict.fromkeys(notes))  # a line may be seen as labelled and as inline
    return Judgement(rating, orientation, rating_text, orientation_text, tuple(notes))  # type: ignore[arg-type]


def parse_reask(text: str | None) -> str | None:
    """Read the orientation from the judge's answer to the re-ask prompt.

    The re-ask prompt asks for one of ``Audio-Oriented/Speech-Oriented/Good/Neither``. An
    ``Orientation:`` line is read as in :func:`parse_judgement`; otherwise the last line
    that names exactly one label gives it. An echo of the options stays ``None``.

    >>> parse_reask("Good.")
    'Both'
    >>> parse_reask("The model explains that the action fits the sound.\\n\\nAudio-Oriented")
    'Audio'
    >>> parse_reask("Audio-Oriented/Speech-Oriented/Good/Neither.") is None
    True
    """
    if not text or not text.strip():
        return None
    first = parse_judgement(text).orientation
    if first is not None:
        return first
    for line in reversed(text.splitlines()):
        label, status = parse_orientation_value(line)
        if status == "ok" and len({m[2] for m in _label_mentions(_clean(line))}) == 1:
            return label
    return None


@dataclass(frozen=True)
class Verdict:
    """What one judged row says: the rating, the orientation, and where the orientation came from.

    Attributes:
        rating: 0, 1, 2, or ``None`` when unreadable.
        orientation: ``Audio``, ``Speech``, ``Both``, ``Neither``, or ``None``.
        source: ``judge`` (the judge's answer), ``reask`` (the answer to the re-ask prompt,
            read because the first answer had no readable orientation) or ``none``.
    """

    rating: int | None
    orientation: str | None
    source: str


def read_verdict(judge_output: str | None, reask_output: str | None = None) -> Verdict:
    """The rating and orientation of a judged row, with the original protocol's re-ask fallback.

    The judge's answer is read with :func:`parse_judgement`; where its orientation cannot be
    read and the judge was re-asked, the orientation comes from the re-ask answer
    (:func:`parse_reask`). The rating always comes from the first answer (the re-ask prompt
    asks for the orientation only). Judging and scoring both use this one rule.

    >>> read_verdict("Rating: 2\\nOrientation: Good")
    Verdict(rating=2, orientation='Both', source='judge')
    >>> read_verdict("Rating: 1\\nI am unsure.", "Speech-Oriented")
    Verdict(rating=1, orientation='Speech', source='reask')
    >>> read_verdict("Rating: 1", "")
    Verdict(rating=1, orientation=None, source='none')
    """
    j = parse_judgement(judge_output)
    if j.orientation is not None:
        return Verdict(j.rating, j.orientation, "judge")
    orientation = parse_reask(reask_output) if reask_output else None
    return Verdict(j.rating, orientation, "reask" if orientation is not None else "none")
