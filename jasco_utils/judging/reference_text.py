"""Reading a JASCO judge prompt and a prediction's text, for the reference judge (:mod:`jasco_utils.judging.reference`).

The prompt's fields (the designed answers, keywords, labels), the prediction cut into
fragments with those that only describe the clip set apart, and keyword matching: text
rules only, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jasco_utils.judging.parsing import parse_orientation_value

# --- Reading the judge prompt ---

_PROMPT = re.compile(
    r"\[Audio Sound\]\n(?P<audio_sound>.*?)\n\n\[Spoken Text\]\n(?P<spoken_text>.*?)\n\n"
    r"\[Question\]\n(?P<question>.*?)\n\n\[Audio-Oriented Prediction\]\n(?P<audio>.*?)\n\n"
    r"\[Speech-Oriented Prediction\]\n(?P<speech>.*?)\n\n\[Reference Answer\]\n(?P<reference>.*?)\n\n"
    r"\[Reference Answer Key Words\]\n(?P<keywords>.*?)\n\n\[Model Prediction\]\n(?P<prediction>.*)\n\n\[Task1\]\n",
    re.S,
)
_OPTIONS = re.compile(r"^Orientation: (?P<options>[\w-]+(?:/[\w-]+)+)\s*$", re.M)


@dataclass(frozen=True)
class PromptFields:
    """What a JASCO judge prompt carries; ``labels``: Audio, Speech, Both, Neither -> the prompt's word."""

    audio_sound: str
    spoken_text: str
    audio: str
    speech: str
    reference: str
    keywords: tuple[str, ...]
    prediction: str
    labels: dict[str, str]


def read_prompt(text: str) -> PromptFields:
    """The fields of a filled judge prompt (``judge_original`` or ``judge_paper``).

    Raises:
        ValueError: The text is not a JASCO judge prompt (its sections or its
            ``Orientation:`` line are missing).
    """
    m = _PROMPT.search(text)
    options = list(_OPTIONS.finditer(text))
    if m is None or not options:
        raise ValueError(
            "not a JASCO judge prompt: the reference engine reads the sections [Audio Sound] ... "
            "[Model Prediction] and the Orientation: line of judge_original or judge_paper"
        )
    labels = {}
    for word in options[-1]["options"].split("/"):
        canonical, _ = parse_orientation_value(word)
        labels.setdefault(canonical, word)
    if set(labels) != {"Audio", "Speech", "Both", "Neither"}:
        raise ValueError(f"the prompt's Orientation: line {options[-1]['options']!r} does not name the four classes")
    keywords = tuple(k.strip() for k in m["keywords"].split(",") if k.strip())
    return PromptFields(
        m["audio_sound"], m["spoken_text"], m["audio"], m["speech"], m["reference"], keywords, m["prediction"], labels
    )


# --- Cutting a prediction into fragments, and which of them describe ---

_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(
    r",?\s*\b(?:which|this|that|it)\s+(?:suggests?|indicates?|implies|imply|means|shows)\s+(?:that\s+)?"
    r"|\s+(?:suggests?|indicates?|implies|imply)\s+(?:that\s+)?"
    r"|,\s*(?:suggesting|indicating|implying|meaning)\s+(?:that\s+)?"
    r"|,\s*so\s+|;\s*|,\s*and\s+|,\s*while\s+|,\s*but\s+|,\s*whereas\s+|\s+therefore,?\s+|\s+thus,?\s+",
    re.I,
)
_LEAD_IN = re.compile(
    r"^(?:(?:based on|considering|given|from|combining|using|judging from|according to)\b[^,]{0,80},\s*"
    r"|(?:in this (?:scenario|case|clip|context)|overall|therefore|thus|so|hence|also|and|then|separately)\b,?\s*"
    r"|(?:it is|it's|it seems|it appears|i think|we can infer)\s+(?:likely|possible|probable)?\s*(?:that\s+)?)+",
    re.I,
)
_HEDGE = re.compile(r"\b(?:most likely|likely|probably|possibly|perhaps|presumably|seem to be|seems to be)\b", re.I)
#: A fragment whose subject is the input: the clip, its sound, its speech.
_DESCRIBES = re.compile(
    r"^(?:the |this |an? )?(?:audio|audio clip|audio sound|clip|recording|sound|sounds|background|spoken text|speech|"
    r"transcript|transcription|words)\b"
    r"|^(?:there (?:is|are)|i (?:can )?hear|we (?:can )?hear|you (?:can )?hear|one (?:can )?hear)\b",
    re.I,
)
#: Reported speech ("The speaker says ..."): a description when it quotes or repeats the spoken text.
_REPORTS = re.compile(
    r"^(?:the |a |one )?(?:speaker|speakers|someone|man|woman|person|voice|child|he|she|they|one of them)\s+"
    r"(?:says|said|asks|asked|shouts|shouted|exclaims|exclaimed|states|stated|mentions|mentioned"
    r"|is saying|are saying)\b",
    re.I,
)
#: Words that carry no action: an action made only of them is "too general".
GENERAL_WORDS = frozenset(
    "talk talks talking talked speak speaks speaking someone somebody something conversation conversations have has "
    "having chat chatting discuss discussing communicate communicating interact interacting do does doing engaged "
    "engaging engage activity activities thing things people person persons speaker speakers they them their each "
    "other together with to a an the are is be been being in on at of some one another use uses using used both "
    "convey conveying message messages statement point topic topics make making try trying scenario situation "
    "context based combination specific specifically kind sort hear hearing heard unable able".split()
)
#: Words about the clip rather than the speakers' action ("using both the audio sound and the spoken
#: text"): the prompt's Part1 and Part2, never Part3. Removed from a fragment before it is read.
_META = re.compile(
    r"\b(?:(?:both|the|this|an?|their)\s+)*(?:audio[\s-]+(?:sound|clip|text|recording)s?|spoken[\s-]+text|transcript"
    r"|transcription|narrator|the\s+(?:audio|speech|video|recording|clip))\b(?:\s+(?:and|or)\b)?",
    re.I,
)
#: Function words (neither general nor content).
_STOPWORDS = frozenset(
    "i me my we us our you your he him his she her it its it's let's this that these those there here what which who "
    "how why when where not no yes so too very all can can't will would should must need just please oh look much "
    "more over up down out off than then now for from by as or and but if into about".split()
)
#: Words that only frame a quotation ("The scenario is: '...'").
_FRAME_WORDS = frozenset("scenario situation answer context case setting action says said saying that".split())
#: The prompt's general terms that rule out Both ("activity", "something", "somewhere").
GENERAL_TERMS = re.compile(r"\b(?:activity|activities|something|somewhere)\b", re.I)
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_PLACEHOLDER = "QUOTEDSPEECH"


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content: not general, not a stopword, not the placeholder."""
    return [
        w
        for w in _WORD.findall(text.lower().replace("’", "'"))
        if w not in GENERAL_WORDS and w not in _STOPWORDS and w != _PLACEHOLDER.lower()
    ]


def _describes(piece: str, spoken: set[str]) -> bool:
    """Whether a fragment describes the input instead of predicting an action."""
    if _DESCRIBES.search(piece):
        return True
    words = content_words(piece)
    if _PLACEHOLDER in piece and all(w in _FRAME_WORDS for w in words):
        return True  # only a quotation, perhaps framed
    if _REPORTS.search(piece):
        heard = {_stem(w) for w in words} & spoken
        return _PLACEHOLDER in piece or (len(spoken) >= 2 and len(heard) >= 0.6 * len(spoken))
    return False


def fragments(prediction: str, spoken_text: str = "") -> tuple[list[str], list[str]]:
    """Cut a prediction into (action fragments, describing fragments), hedges removed.

    >>> fragments('The audio clip contains the sound of rain. The speaker says "Look! Run."')
    ([], ['The audio clip contains the sound of rain', 'The speaker says QUOTEDSPEECH'])
    >>> fragments("Based on both the audio sound and the spoken text, they are probably flying a kite.")[0]
    ['they are flying a kite']
    >>> fragments("The speaker says we should build a castle.", "Let's build a castle over there.")[0]
    []
    """
    spoken = {_stem(w) for w in content_words(spoken_text)}
    text = _HEDGE.sub("", _QUOTED.sub(_PLACEHOLDER, prediction))
    actions, describing = [], []
    for sentence in _SENTENCE.split(text):
        for piece in _CLAUSE.split(sentence):
            piece = re.sub(r"\s+", " ", _LEAD_IN.sub("", piece.strip(" \t.,;:!?-")).strip(" \t.,;:!?-"))
            if not _DESCRIBES.search(piece):  # "The audio sound is ..." stays whole: it describes
                piece = re.sub(r"\s+", " ", _META.sub("", piece)).strip(" \t.,;:!?-")
            if not piece:
                continue
            if not _WORD.search(piece.lower().replace(_PLACEHOLDER.lower(), "")):
                describing.append(piece)
                continue
            (describing if _describes(piece, spoken) else actions).append(piece)
    return actions, describing


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def keyword_in(keyword: str, text: str) -> bool:
    """Whether every content word of a keyword appears in the text (crude stems, hyphens ignored).

    >>> keyword_in("sport", "They watch sports."), keyword_in("drive-thru", "at a drive thru")
    (True, True)
    """
    have = {_stem(w) for w in _WORD.findall(text.lower().replace("-", " "))}
    want = content_words(keyword.replace("-", " ")) or _WORD.findall(keyword.lower())
    return bool(want) and all(_stem(w) in have for w in want)


def normalise(text: str) -> str:
    """``text`` without hedges, its spaces collapsed."""
    return re.sub(r"\s+", " ", _HEDGE.sub("", text)).strip()
