"""Table tests for the judge-output parser: one realistic judge answer per rule."""

from __future__ import annotations

import pytest

from jasco_utils.judging.parsing import (
    parse_judgement,
    parse_orientation_value,
    parse_rating_value,
    parse_reask,
)

E1 = (
    "Explanation1: The provided audio sound is rock music, the provided spoken text is \"Let's run "
    'through it one more time", the reference answer is "they are likely practicing a song in a band '
    'rehearsal", while the model\'s answer is "rehearsing". I think the prediction matches.'
)
E2 = (
    "Explanation2: The provided audio sound is rock music and the provided spoken text is \"Let's run "
    "through it one more time\". The predicted speaker's action is rehearsing, I think it is strongly "
    "related to both."
)

# (id, judge answer, expected rating, expected orientation)
CASES = [
    # the format the prompt asks for, as in the repository README's Llama examples
    ("readme-both", f"{E1}\nRating: 2\n{E2}\nOrientation: Both", 2, "Both"),
    (
        "readme-blank-lines",
        f"Explanation1: \n{E1}\n\nRating: 1\n\nExplanation2: \n{E2}\n\nOrientation: Both\n",
        1,
        "Both",
    ),
    ("readme-speech", f"{E1}\nRating: 0\n{E2}\nOrientation: Speech-Oriented", 0, "Speech"),
    ("original-good", f"{E1}\nRating: 2\n{E2}\nOrientation: Good", 2, "Both"),
    # rule 1: Markdown emphasis, headings, bullets
    (
        "md-bold-label",
        f"**Explanation1:** {E1}\n**Rating:** 2\n**Explanation2:** {E2}\n**Orientation:** Both",
        2,
        "Both",
    ),
    ("md-bold-value", f"{E1}\nRating: **1**\n{E2}\nOrientation: **Audio-Oriented**", 1, "Audio"),
    (
        "md-heading",
        f"### Explanation1\n{E1}\n### Rating\n2\n### Explanation2\n{E2}\n### Orientation\nSpeech-Oriented",
        2,
        "Speech",
    ),
    ("md-bullets", f"- {E1}\n- Rating: 0\n- {E2}\n- Orientation: Neither", 0, "Neither"),
    ("md-label-bold-colon-out", f"{E1}\n**Rating**: 2\n{E2}\n**Orientation**: Good", 2, "Both"),
    # rule 3: value on the following line
    ("next-line", f"{E1}\nRating:\n1\n{E2}\nOrientation:\nSpeech-Oriented", 1, "Speech"),
    ("original-space-newline", f"{E1}\nRating: 2\n{E2}\nOrientation: \nNeither", 2, "Neither"),
    # rule 6: case, hyphen and suffix variants
    ("lower-space", f"{E1}\nrating: 2\n{E2}\norientation: speech oriented", 2, "Speech"),
    ("upper", f"{E1}\nRATING: 1\n{E2}\nORIENTATION: AUDIO-ORIENTED", 1, "Audio"),
    ("orientated", f"{E1}\nRating: 0\n{E2}\nOrientation: Audio-Orientated", 0, "Audio"),
    ("both-oriented", f"{E1}\nRating: 2\n{E2}\nOrientation: Both-Oriented", 2, "Both"),
    ("speech-based", f"{E1}\nRating: 0\n{E2}\nOrientation: Speech-based.", 0, "Speech"),
    ("audio-and-speech", f"{E1}\nRating: 2\n{E2}\nOrientation: Audio and Speech", 2, "Both"),
    ("a-s", f"{E1}\nRating: 1\n{E2}\nOrientation: A-S", 1, "Both"),
    ("quoted", f"{E1}\nRating: 1\n{E2}\nOrientation: 'Speech-Oriented'", 1, "Speech"),
    ("value-then-reason", f"{E1}\nRating: 2\n{E2}\nOrientation: Both (related to the sound and the speech)", 2, "Both"),
    ("final-prefix", f"{E1}\nFinal Rating: 1\n{E2}\nFinal Orientation: Speech-Oriented", 1, "Speech"),
    ("fullwidth-colon", f"{E1}\nRating：2\n{E2}\nOrientation：Both", 2, "Both"),
    # rule 5: ratings with extra text around them
    ("rating-paren", f"{E1}\nRating: 2 (highly accurate, captures the keywords)\n{E2}\nOrientation: Both", 2, "Both"),
    ("rating-float", f"{E1}\nRating: 2.0\n{E2}\nOrientation: Both", 2, "Both"),
    ("rating-fraction", f"{E1}\nRating: 1/2\n{E2}\nOrientation: Both", 1, "Both"),
    ("rating-score-word", f"{E1}\nRating: Score2\n{E2}\nOrientation: Good", 2, "Both"),
    ("rating-sentence", f"{E1}\nRating: I would rate this prediction a 1.\n{E2}\nOrientation: Both", 1, "Both"),
    ("rating-out-of", f"{E1}\nRating: 0 out of 2\n{E2}\nOrientation: Audio-Oriented", 0, "Audio"),
    ("rating-int-label", f"{E1}\nRating (int): 2\n{E2}\nOrientation: Both", 2, "Both"),
    # rule 2: explanations that mention a label before the real answer line
    (
        "label-in-explanation",
        f"{E1} A Rating: 0 would be too harsh here.\nRating: 1\nExplanation2: One could argue "
        "Orientation: Audio-Oriented, but the action uses the speech too.\nOrientation: Both",
        1,
        "Both",
    ),
    (
        "two-answers-last-wins",
        f"{E1}\nRating: 2\n{E2}\nOrientation: Audio-Oriented\nOn reflection:\nOrientation: Both",
        2,
        "Both",
    ),
    # rule 4: an echoed list of options is not an answer
    ("echo-only", f"{E1}\nRating: (int)\n{E2}\nOrientation: Audio-Oriented/Speech-Oriented/Good/Neither", None, None),
    (
        "echo-then-answer",
        f"Rating: (int)\nOrientation: Audio-Oriented/Speech-Oriented/Both/Neither\n\n{E1}\nRating: 2\n{E2}\nOrientation: Both",
        2,
        "Both",
    ),
    (
        "answer-then-echo",
        f"{E1}\nRating: 1\n{E2}\nOrientation: Speech-Oriented\n\n(Format: Rating: 0-2, Orientation: Audio-Oriented/Speech-Oriented/Good/Neither)",
        1,
        "Speech",
    ),
    # rule 5: out-of-range and unreadable values stay None
    ("rating-3", f"{E1}\nRating: 3\n{E2}\nOrientation: Both", None, "Both"),
    ("rating-negative", f"{E1}\nRating: -1\n{E2}\nOrientation: Both", None, "Both"),
    ("rating-ten-scale", f"{E1}\nRating: 8/10\n{E2}\nOrientation: Both", None, "Both"),
    ("rating-half", f"{E1}\nRating: 1.5\n{E2}\nOrientation: Both", None, "Both"),
    ("rating-na", f"{E1}\nRating: N/A\n{E2}\nOrientation: Neither", None, "Neither"),
    ("rating-range-echo", f"{E1}\nRating: 0-2\n{E2}\nOrientation: Both", None, "Both"),
    ("ambiguous-orientation", f"{E1}\nRating: 1\n{E2}\nOrientation: Audio-Oriented or Speech-Oriented", 1, None),
    # no line at all: None, never the previous row's value
    ("no-rating-line", f"{E1}\n{E2}\nOrientation: Both", None, "Both"),
    ("no-orientation", f"{E1}\nRating: 2\n{E2}", 2, None),
    ("refusal", "I'm sorry, but I can't evaluate this prediction.", None, None),
    ("empty", "", None, None),
    # rule 7: inline labels
    ("same-line", f"{E1}\nRating: 1 Orientation: Speech-Oriented", 1, "Speech"),
    ("inline-only", f"{E1} So my Rating: 2. {E2} Hence the Orientation: Both.", 2, "Both"),
    # rule 8: JSON (structured output)
    ("json", '{"rating": 2, "orientation": "Both"}', 2, "Both"),
    ("json-fenced", '```json\n{"Rating": "1", "Orientation": "Speech-Oriented"}\n```', 1, "Speech"),
    ("json-out-of-range", '{"rating": 5, "orientation": "Good"}', None, "Both"),
]


@pytest.mark.parametrize("text,rating,orientation", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_judgement_cases(text, rating, orientation):
    j = parse_judgement(text)
    assert (j.rating, j.orientation) == (rating, orientation), j.notes


def test_unparsed_fields_explain_why():
    j = parse_judgement(f"{E1}\nRating: 3\n{E2}")
    assert j.rating is None and j.orientation is None
    assert any("out of range" in n for n in j.notes)
    assert any("no orientation" in n for n in j.notes)
    assert not j.parsed


def test_echo_is_reported_as_skipped():
    j = parse_judgement("Rating: (int)\nOrientation: Audio-Oriented/Speech-Oriented/Good/Neither")
    assert j.rating is None and j.orientation is None
    assert sum("skipped echo" in n for n in j.notes) == 2


@pytest.mark.parametrize(
    "value,expected",
    [("2", 2), ("0", 0), ("1 point", 1), ("Score 0", 0), ("0/2", 0), ("2 of 2", 2), ("", None), ("two", None)],
)
def test_rating_values(value, expected):
    assert parse_rating_value(value)[0] == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Neither", "Neither"),
        ("None", "Neither"),
        ("Speech-Orientation", "Speech"),
        ("audio_oriented", "Audio"),
        ("SpeechOriented", "Speech"),
        ("audiobook", None),  # a word that merely contains a label is not a label
        ("Good", "Both"),
        ("Speech-Oriented / Audio-Oriented", None),
    ],
)
def test_orientation_values(value, expected):
    assert parse_orientation_value(value)[0] == expected


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("Good", "Both"),
        ("Speech-Oriented.", "Speech"),
        ("The final choice the model makes is Neither.", "Neither"),
        ("Based on the explanation, the model chose:\n\n**Audio-Oriented**", "Audio"),
        ("Orientation: Good", "Both"),
        ("Audio-Oriented/Speech-Oriented/Good/Neither.", None),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_reask(answer, expected):
    assert parse_reask(answer) == expected
