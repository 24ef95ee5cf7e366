"""The shipped paraphrased controls: the file's schema, every clip with every kind, labels that
follow the kind, texts that reword (not copy) the designed answers, the licence beside the file,
and clear errors for a malformed file."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from jasco_utils.core.io import TableError
from jasco_utils.judging.controls import (
    PARAPHRASE_COLUMNS,
    PARAPHRASED_KINDS,
    PARAPHRASES_PATH,
    design_digest,
    read_paraphrases,
)

LABELS = {  # written out independently of PARAPHRASED_KINDS, from the data folder's README
    "reference_paraphrase": ("2", "Both"),
    "audio_only_paraphrase": ("0", "Audio"),
    "speech_only_paraphrase": ("0", "Speech"),
    "both_separate": ("1", "Both"),
}
SOURCE = {
    "reference_paraphrase": "Correct Answer",
    "audio_only_paraphrase": "Audio-Only Answer",
    "speech_only_paraphrase": "Speech-Only Answer",
}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(PARAPHRASES_PATH, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def v0(real_data_dir) -> pd.DataFrame:
    return pd.read_csv(real_data_dir / "v0.csv", dtype=str, keep_default_na=False).set_index("audio_id")


def test_schema_and_coverage(raw):
    assert tuple(raw.columns) == PARAPHRASE_COLUMNS
    assert len(raw) == 80 * 4
    cover = raw.groupby("id")["control_kind"].apply(sorted)
    assert sorted(cover.index.astype(int)) == list(range(1, 81))
    assert all(kinds == sorted(LABELS) for kinds in cover)
    for row in raw.itertuples():
        assert (row.expected_rating, row.expected_orientation) == LABELS[row.control_kind], row
        assert row.answer.strip() and row.answer == row.answer.strip()
        assert re.fullmatch(r"[0-9a-f]{16}", row.design_sha256)
    assert set(PARAPHRASED_KINDS) == set(LABELS)
    typed = read_paraphrases()
    assert typed["id"].dtype.kind == "i" and len(typed) == 320


def _words(text: str) -> set[str]:
    stop = set(
        "they are is a an the likely probably of or and to in on at with their them for be by it this that".split()
    )
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in stop}


def test_each_row_rewords_its_own_clips_answers(raw, v0):
    overlaps = []
    for row in raw.itertuples():
        meta = v0.loc[row.id]
        if row.control_kind in SOURCE:  # a rewording, not a copy: most content words change
            source = _words(meta[SOURCE[row.control_kind]])
            shared = len(_words(row.answer) & source) / len(source)
            assert shared < 0.8, (row, meta[SOURCE[row.control_kind]], shared)
            overlaps.append(shared)
        assert row.answer.casefold() != meta["Correct Answer"].casefold()
        digest = design_digest(
            {
                "tgt_text": meta["Correct Answer"],
                "audio_only_target": meta["Audio-Only Answer"],
                "speech_only_target": meta["Speech-Only Answer"],
                "target_keywords": meta["Correct Answer Keyword"],
            }
        )
        assert row.design_sha256 == digest, f"clip {row.id}: written for other designed answers"
    assert sum(overlaps) / len(overlaps) < 0.35  # on average about a quarter of the words are kept


def test_joint_and_separate_answers_avoid_the_prompts_general_terms(raw):
    # "if Part3 contains general terms like 'activity' ... 'something' or 'somewhere' you can't choose Good"
    both = raw[raw["expected_orientation"] == "Both"]
    general = both["answer"].str.contains(r"\b(?:activity|activities|something|somewhere)\b", case=False)
    assert not general.any(), both[general]
    separate = raw[raw["control_kind"] == "both_separate"]["answer"]
    assert separate.str.contains(", and ").all()  # two facts side by side


def test_keyword_kept_in_reference_paraphrases_where_no_synonym(raw, v0):
    ref = raw[raw["control_kind"] == "reference_paraphrase"].set_index("id")["answer"]
    for clip, word in (("3", "crab"), ("11", "tent"), ("37", "tea"), ("52", "kite"), ("67", "chess")):
        assert word in ref[clip].lower(), (clip, ref[clip])
    for clip, word in (("1", "sandcastle"), ("23", "exam"), ("64", "auction")):  # a synonym exists: reworded
        assert word not in ref[clip].lower(), (clip, ref[clip])


def test_licence_and_readme_beside_the_file():
    folder = PARAPHRASES_PATH.parent
    licence = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "CC BY-NC 4.0" in licence and "arXiv:2409.14526" in licence
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert all(kind in readme for kind in LABELS)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.drop(columns="design_sha256"), r"lacks column\(s\) \['design_sha256'\]"),
        (lambda d: d.assign(id=d["id"].where(d.index != 5, "81")), r"line 7, column 'id': '81'"),
        (
            lambda d: d.assign(control_kind=d["control_kind"].where(d.index != 2, "reference")),
            r"line 4, column 'control_kind': 'reference'",
        ),
        (
            lambda d: d.assign(expected_rating=d["expected_rating"].where(d.index != 3, "2")),
            r"line 5, column 'expected_rating': '2'; kind both_separate expects '1'",
        ),
        (lambda d: d.assign(answer=d["answer"].where(d.index != 0, " ")), r"line 2, column 'answer': empty"),
        (lambda d: pd.concat([d, d.iloc[[1]]], ignore_index=True), r"clip 1 has kind audio_only_paraphrase twice"),
    ],
)
def test_malformed_files_are_refused_naming_file_line_column(raw, tmp_path, edit, message):
    path = tmp_path / "p.csv"
    edit(raw.copy()).to_csv(path, index=False)
    with pytest.raises(TableError, match=message):
        read_paraphrases(path)
