"""The judge check's control answers: ten kinds per clip (six verbatim, four paraphrased) with
the labels the judge prompt's rules give them, one instruction per clip, and a derangement that
never gives a clip its own correct answer or one equal to it (clips 52 and 53 share theirs)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from jasco_utils.core.io import TableError
from jasco_utils.data.manifest import INSTRUCTIONS, MANIFEST_COLUMNS
from jasco_utils.judging.controls import (
    CONTROL_COLUMNS,
    CONTROL_KINDS,
    CONTROL_MODEL,
    GENERIC_ANSWER,
    KIND_GROUPS,
    PARAPHRASED_KINDS,
    PARAPHRASES_PATH,
    VERBATIM_KINDS,
    build_controls,
    check_controls,
    controls_from_manifest,
    instruction_for_clip,
    other_clip_map,
)
from jasco_utils.judging.judge import check_outputs

EXPECTED = {  # the issue's table, written out independently of CONTROL_KINDS
    "reference": (2, "Both"),
    "audio_only": (0, "Audio"),
    "speech_only": (0, "Speech"),
    "description": (0, "Neither"),
    "generic": (0, ""),
    "other_clip": (0, ""),
    "reference_paraphrase": (2, "Both"),
    "audio_only_paraphrase": (0, "Audio"),
    "speech_only_paraphrase": (0, "Speech"),
    "both_separate": (1, "Both"),
}


@pytest.fixture(scope="module")
def v0(real_data_dir) -> pd.DataFrame:
    return pd.read_csv(real_data_dir / "v0.csv", dtype=str, keep_default_na=False).set_index("audio_id")


@pytest.fixture(scope="module")
def all_controls(real_data_dir) -> pd.DataFrame:
    return build_controls(real_data_dir)


def _assert_derangement(mapping: dict[int, int], answers: dict[int, str]) -> None:
    assert sorted(mapping) == sorted(answers) and sorted(mapping.values()) == sorted(answers)  # a permutation
    for clip, other in mapping.items():
        assert other != clip, f"clip {clip} maps to itself"
        assert answers[other].strip() != answers[clip].strip(), f"clip {clip} maps to {other}, same answer"


def test_ten_kinds_per_clip_with_the_prompts_labels(all_controls, v0):
    assert list(all_controls.columns) == [*MANIFEST_COLUMNS, "model", *CONTROL_COLUMNS]
    assert len(all_controls) == 80 * 10 and (all_controls["model"] == CONTROL_MODEL).all()
    shipped = pd.read_csv(PARAPHRASES_PATH, dtype=str, keep_default_na=False).set_index(["id", "control_kind"])
    for clip, group in all_controls.groupby("id"):
        assert group["control_kind"].tolist() == list(EXPECTED)
        for row in group.itertuples():
            assert (row.expected_rating, row.expected_orientation) == EXPECTED[row.control_kind]
        meta = v0.loc[str(clip)]
        by_kind = group.set_index("control_kind")["allm_output"]
        assert by_kind["reference"] == meta["Correct Answer"]
        assert by_kind["audio_only"] == meta["Audio-Only Answer"]
        assert by_kind["speech_only"] == meta["Speech-Only Answer"]
        assert by_kind["description"] == (
            f'The audio clip contains the sound of {meta["Audio"]}. The speaker says "{meta["Speech"]}".'
        )
        assert by_kind["generic"] == GENERIC_ANSWER
        assert by_kind["other_clip"] != meta["Correct Answer"]
        assert by_kind["other_clip"] in set(v0["Correct Answer"])
        assert (group["tgt_text"] == meta["Correct Answer"]).all()  # the judge still sees the clip's own reference
        for kind in ("reference_paraphrase", "audio_only_paraphrase", "speech_only_paraphrase", "both_separate"):
            assert by_kind[kind] == shipped.loc[(str(clip), kind), "answer"]
            assert by_kind[kind] not in (meta["Correct Answer"], meta["Audio-Only Answer"], meta["Speech-Only Answer"])


def test_clip_k_is_asked_instruction_k_mod_8(all_controls):
    for clip, group in all_controls.groupby("id"):
        assert set(group["prompt"]) == {INSTRUCTIONS[(clip - 1) % 8]}
        assert instruction_for_clip(clip) == (clip - 1) % 8 + 1
    first8 = all_controls[all_controls["id"] <= 8].drop_duplicates("id")["prompt"]
    assert sorted(first8.map(INSTRUCTIONS.index)) == list(range(8))  # 8 consecutive clips use all 8


def test_other_clip_is_a_derangement_avoiding_equal_answers_all_clips(all_controls, v0):
    answers = {int(c): a for c, a in v0["Correct Answer"].items()}
    assert answers[52] == answers[53]
    mapping = other_clip_map(answers)
    _assert_derangement(mapping, answers)
    assert mapping[52] not in (52, 53) and mapping[53] not in (52, 53)
    # the table holds exactly those answers
    got = all_controls[all_controls["control_kind"] == "other_clip"].set_index("id")["allm_output"]
    assert all(got[c] == answers[mapping[c]] for c in answers)


def test_other_clip_derangement_for_subsets(v0):
    answers = {int(c): a for c, a in v0["Correct Answer"].items()}
    rng = random.Random(0)
    for impossible in ([52, 53, 1], [51, 52, 53]):  # 52 and 53 need two targets besides themselves
        with pytest.raises(ValueError, match="share one answer"):
            other_clip_map({c: answers[c] for c in impossible})
    subsets = [[1, 52, 53, 54], [52, 53, 60, 61], [1, 2], list(range(1, 11))]
    subsets += [rng.sample(sorted(answers), rng.randint(2, 80)) + [52, 53] for _ in range(40)]
    for subset in subsets:
        sub = {c: answers[c] for c in set(subset)}
        mapping = other_clip_map(sub)
        _assert_derangement(mapping, sub)
        assert other_clip_map(dict(reversed(list(sub.items())))) == mapping  # fixed: not the dict's order


def test_other_clip_map_on_many_shared_answers():
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randint(1, 12)
        answers = {c: f"answer {rng.randint(0, rng.randint(0, 5))}" for c in rng.sample(range(1, 81), n)}
        largest = max(list(answers.values()).count(a) for a in answers.values())
        if 2 * largest > n:  # no derangement avoiding equal answers exists
            with pytest.raises(ValueError, match="other_clip needs clips whose correct answers differ"):
                other_clip_map(answers)
        else:
            _assert_derangement(other_clip_map(answers), answers)


def test_clips_52_and_53_alone_cannot_be_checked(real_data_dir):
    with pytest.raises(ValueError, match="share one answer"):
        build_controls(real_data_dir, [52, 53])
    with pytest.raises(ValueError, match="other_clip"):
        build_controls(real_data_dir, [7])


def test_a_subset_of_clips_from_any_manifest(real_data_dir):
    from jasco_utils.data.manifest import build_manifest

    manifest = build_manifest(real_data_dir, clips=[3, 9, 52, 53, 70])
    ctl = controls_from_manifest(manifest, clips=[9, 52, 53, 70])
    assert sorted(ctl["id"].unique()) == [9, 52, 53, 70] and len(ctl) == 40
    with pytest.raises(ValueError, match=r"clip\(s\) \[4\] are not in the manifest"):
        controls_from_manifest(manifest, clips=[3, 4])


def test_control_tables_pass_the_outputs_check_only_as_partial_clips(real_data_dir):
    ctl = build_controls(real_data_dir, [1, 2])
    assert check_outputs(ctl, whole_clips=False)["control_kind"].tolist() == ctl["control_kind"].tolist()
    with pytest.raises(TableError, match="more than once"):
        check_outputs(ctl)


def test_check_controls_names_the_line_and_column(real_data_dir):
    ctl = build_controls(real_data_dir, [1, 2])
    typed = check_controls(ctl.astype(str))  # as read from a CSV: text
    assert typed["expected_rating"].tolist() == [EXPECTED[k][0] for k in typed["control_kind"]]
    bad = ctl.copy()
    bad.loc[3, "expected_orientation"] = "Good"
    with pytest.raises(TableError, match=r"line 5, column 'expected_orientation': 'Good'"):
        check_controls(bad, "my.csv")
    bad = ctl.copy()
    bad.loc[0, "expected_rating"] = 3
    with pytest.raises(TableError, match=r"line 2, column 'expected_rating'"):
        check_controls(bad)
    with pytest.raises(TableError, match=r"lacks column\(s\) \['control_kind'\]"):
        check_controls(ctl.drop(columns="control_kind"))
    blank = ctl.copy()
    blank["expected_orientation"] = ""
    assert (check_controls(blank)["expected_orientation"] == "").all()  # not checked is allowed


def test_kinds_follow_the_issue_table():
    assert {k: (r, o or "") for k, (r, o) in CONTROL_KINDS.items()} == EXPECTED
    assert KIND_GROUPS == {"verbatim": tuple(VERBATIM_KINDS), "paraphrased": tuple(PARAPHRASED_KINDS)}
    assert set(VERBATIM_KINDS).isdisjoint(PARAPHRASED_KINDS) and len(CONTROL_KINDS) == 10


def test_a_subset_of_kinds(real_data_dir):
    ctl = build_controls(real_data_dir, [3, 4], kinds=["both_separate", "reference"])
    assert ctl["control_kind"].tolist() == ["reference", "both_separate"] * 2  # in CONTROL_KINDS' order
    one = build_controls(real_data_dir, [7], kinds=PARAPHRASED_KINDS)  # no other_clip: one clip is enough
    assert len(one) == 4
    with pytest.raises(ValueError, match=r"control kinds must be some of .* not \['paraphrase'\]"):
        build_controls(real_data_dir, [3, 4], kinds=["reference", "paraphrase"])


def test_paraphrases_of_other_designed_answers_are_refused(synthetic_dataset):
    with pytest.raises(
        ValueError,
        match=r"paraphrases.csv: clip 1's reference_paraphrase rewords other designed "
        r"answers than this manifest.s .*\(kinds=VERBATIM_KINDS\)",
    ):
        build_controls(synthetic_dataset)
    verbatim = build_controls(synthetic_dataset, kinds=VERBATIM_KINDS)
    assert len(verbatim) == 3 * 6 and set(verbatim["control_kind"]) == set(VERBATIM_KINDS)
