"""The judge prompt templates reproduce the original script's texts byte for byte."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from jasco_utils.core.paths import PROMPTS_DIR
from jasco_utils.judging.prompts import (
    JUDGE_FIELDS,
    judge_messages,
    list_templates,
    load_template,
    reask_explanation,
    reask_messages,
    render_judge_prompt,
)

# template name -> protocol file it must reproduce
PROTOCOL_FILES = {
    "judge_original": "judge_prompt_eval_py.txt",
    "judge_paper": "judge_prompt_readme.txt",
    "reask_original": "reask_prompt_eval_py.txt",
}


@pytest.fixture(scope="module")
def example(real_data_dir) -> pd.DataFrame:
    return pd.read_csv(real_data_dir / "example.csv", dtype=str, keep_default_na=False)


def _original_render(protocol_text: str, row) -> str:
    """What evaluation/eval.py builds: the prompt string filled with str.format."""
    return protocol_text.format(
        audio_sound=row["audio_sound"],
        spoken_text=row["spoken_text"],
        question=row["prompt"],
        audio_only_target=row["audio_only_target"],
        speech_only_target=row["speech_only_target"],
        reference=row["tgt_text"],
        keywords=row["target_keywords"],
        prediction=row["allm_output"],
    )


@pytest.mark.parametrize("template", ["judge_original", "judge_paper"])
def test_render_matches_original_script_on_all_640_rows(example, protocol_dir, template):
    protocol_text = (protocol_dir / PROTOCOL_FILES[template]).read_text(encoding="utf-8")
    assert len(example) == 640
    rendered = set()
    for i, row in example.iterrows():
        got = render_judge_prompt(row, template=template)
        assert got == _original_render(protocol_text, row), f"row {i} differs"
        rendered.add(got)
    assert len(rendered) == 640  # every row yields its own prompt (outputs differ per row)


def test_render_row0_by_hand(example):
    text = render_judge_prompt(example.iloc[0], template="judge_original")
    expected_head = (
        "[Audio Sound]\nWaves crashing,seagulls\n\n"
        "[Spoken Text]\nLet\u2019s build a castle over there.\n\n"
        "[Question]\nBased on both the audio sound and the spoken text, infer what the speakers are "
        "doing specifically?\n\n"
        "[Audio-Oriented Prediction]\nThey are at the beach enjoying the ocean.\n\n"
        "[Speech-Oriented Prediction]\nThey a planning to build a castle in a specific location.\n\n"
        "[Reference Answer]\nThey are planning to build a sandcastle.\n\n"
        "[Reference Answer Key Words]\nsandcastle\n\n"
        "[Model Prediction]\noutput_1\n\n"
        "[Task1]\nI am using a model to predict what the speakers are possibly doing"
    )
    assert text.startswith(expected_head)
    assert text.encode("utf-8").startswith(expected_head.encode("utf-8"))
    assert "\nGood: The predicted speaker's action is explicitly and strongly related to both" in text
    assert text.endswith("Orientation: Audio-Oriented/Speech-Oriented/Good/Neither\n")
    assert "{" not in text and "}" not in text


def test_default_template_is_judge_original(example):
    row = example.iloc[5]
    assert render_judge_prompt(row) == render_judge_prompt(row, template="judge_original")
    assert render_judge_prompt(row) != render_judge_prompt(row, template="judge_paper")


def test_prediction_argument_overrides_row(example):
    row = example.iloc[0]
    text = render_judge_prompt(row, prediction="They are building a sandcastle.")
    assert "[Model Prediction]\nThey are building a sandcastle.\n\n[Task1]" in text
    assert "output_1" not in text


def test_missing_column_is_named():
    row = {c: "x" for c in JUDGE_FIELDS.values() if c != "tgt_text"}
    with pytest.raises(KeyError, match="tgt_text"):
        render_judge_prompt(row)


@pytest.mark.parametrize("prediction", ["{x}", "{}", "use {prediction} and {0} here", "a }{ b {{c}}"])
def test_braces_in_prediction_render_literally(prediction):
    row = {c: f"<{c}>" for c in JUDGE_FIELDS.values()}
    text = render_judge_prompt(row, prediction=prediction)
    assert f"[Model Prediction]\n{prediction}\n\n[Task1]" in text
    assert "[Reference Answer]\n<tgt_text>\n" in text


@pytest.mark.parametrize("name, protocol_file", sorted(PROTOCOL_FILES.items()))
def test_package_templates_are_byte_identical_to_protocol(protocol_dir, name, protocol_file):
    package_bytes = (PROMPTS_DIR / f"{name}_v1.txt").read_bytes()
    assert package_bytes == (protocol_dir / protocol_file).read_bytes()
    assert load_template(name).text.encode("utf-8") == package_bytes


def test_system_template():
    assert load_template("system").text == "You are an NLP assistant"


def test_list_templates():
    assert list_templates() == {
        "judge_original": [1],
        "judge_paper": [1],
        "reask_original": [1],
        "system": [1],
    }


@pytest.mark.parametrize("name", ["judge_original", "judge_paper", "reask_original", "system"])
def test_sha256_is_of_file_bytes(name):
    tpl = load_template(name)
    assert tpl.sha256 == hashlib.sha256((PROMPTS_DIR / f"{name}_v1.txt").read_bytes()).hexdigest()
    assert tpl.id == f"{name}@v1"
    assert tpl.version == 1


def test_template_fields():
    assert load_template("judge_original").fields == tuple(JUDGE_FIELDS)
    assert load_template("judge_paper").fields == tuple(JUDGE_FIELDS)
    assert load_template("reask_original").fields == ("explanation",)
    assert load_template("system").fields == ()


def test_pinned_version():
    pinned = load_template("judge_original@v1")
    assert pinned == load_template("judge_original")
    assert pinned.name == "judge_original" and pinned.version == 1
    assert load_template("judge_original", version=1) == pinned


def test_unknown_template_name():
    with pytest.raises(KeyError, match=r"no prompt template named 'judge_nope'.*judge_original"):
        load_template("judge_nope")


@pytest.mark.parametrize("args", [("judge_original@v9",), ("judge_original", 9), ("judge_paper@v9",)])
def test_unknown_template_version(args):
    with pytest.raises(KeyError, match=r"has no version 9; available: \[1\]"):
        load_template(*args)


@pytest.mark.parametrize("name", ["judge_original@vx", "judge_original@v", "judge_original@v1.0"])
def test_malformed_version_is_a_clear_keyerror(name):
    with pytest.raises(KeyError, match="name@vN"):
        load_template(name)


def test_judge_messages(example):
    row = example.iloc[17]
    msgs = judge_messages(row, prediction="They are fishing.", template="judge_paper")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == "You are an NLP assistant"
    assert msgs[1]["content"] == render_judge_prompt(row, "They are fishing.", "judge_paper")
    assert "[Model Prediction]\nThey are fishing.\n" in msgs[1]["content"]


def test_reask_messages_use_text_after_last_explanation2(protocol_dir):
    judge_output = (
        "Explanation1: fine.\nRating: 2\n"
        "Explanation2: first try.\n"
        "Explanation2: The action relates to both the waves and the castle.\nOrientation: unclear"
    )
    expected_expl = "The action relates to both the waves and the castle.\nOrientation: unclear"
    assert reask_explanation(judge_output) == expected_expl
    msgs = reask_messages(judge_output)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == "You are an NLP assistant"
    original = (protocol_dir / "reask_prompt_eval_py.txt").read_text(encoding="utf-8")
    assert msgs[1]["content"] == original.format(explanation=expected_expl)
    assert msgs[1]["content"].startswith("[Model Explanation]\n" + expected_expl + "\n\n")
    assert "first try" not in msgs[1]["content"]


def test_reask_without_marker_uses_whole_text():
    msgs = reask_messages("no marker {here}")
    assert msgs[1]["content"].startswith("[Model Explanation]\nno marker {here}\n\n")


def test_judge_templates_differ_only_as_the_protocol_says(protocol_dir):
    original = load_template("judge_original").text.split("\n")
    paper = load_template("judge_paper").text.split("\n")
    assert len(original) == len(paper)
    differing = [i for i, (a, b) in enumerate(zip(original, paper, strict=False)) if a != b]
    # 1-based lines 34, 35, 38, 44, 45 (the protocol README's diff)
    assert [i + 1 for i in differing] == [34, 35, 38, 44, 45]
    label_lines = [i for i in differing if "Good" in original[i]]
    assert [i + 1 for i in label_lines] == [38, 44, 45]
    for i in label_lines:
        assert "Both" in paper[i] and "Good" not in paper[i]
        assert original[i].replace("Good", "Both") == paper[i]
    assert original[37].startswith("Good: ") and paper[37].startswith("Both: ")
    assert original[44] == "Orientation: Audio-Oriented/Speech-Oriented/Good/Neither"
    assert paper[44] == "Orientation: Audio-Oriented/Speech-Oriented/Both/Neither"
    # the other two lines differ in wording only, not in a label
    for i in (33, 34):
        for word in ("Good", "Both"):
            assert word not in original[i] and word not in paper[i]
    # "Good" appears nowhere in the paper's template, "Both" nowhere in the script's
    assert "Good" not in load_template("judge_paper").text
    assert "Both" not in load_template("judge_original").text
