"""A CSV whose first data row has one field more than its header is refused, by every reader.

pandas does not call such a file malformed: it takes the first column as the row index and
shifts every column one place left. Later rows one field too wide are a parser error, and
always were; these tests hold the first row to the same rule, in each table reader and in
``jasco score``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from jasco_utils.cli import main
from jasco_utils.core.io import TableError, read_csv_checked, read_table_checked
from jasco_utils.data.dataset import load_metadata
from jasco_utils.data.manifest import INSTRUCTIONS, MANIFEST_COLUMNS, build_manifest, write_manifest
from jasco_utils.inference.allm import import_outputs
from jasco_utils.inference.run import read_manifest
from jasco_utils.judging.tables import read_judged
from jasco_utils.run import Run

ANSWER = "Explanation1: fits.\nRating: 2\nExplanation2: fits.\nOrientation: Both"


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def widen(path: Path, row: int = 0, extra: str = "extra") -> Path:
    """Add one field to data row ``row`` of a CSV (cells with line breaks stay whole)."""
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    rows[row].append(extra)
    return write_rows(path, header, rows)


def original_judged(path: Path, clips=(1,)) -> Path:
    """A judged table in the original eval.py's layout: id, prompt, answer, judge answer."""
    rows = [[str(c), p, "They are walking.", ANSWER] for c in clips for p in INSTRUCTIONS]
    return write_rows(path, ["id", "prompt", "allm_output", "llama3_extract"], rows)


def first_row_message(path: Path, fields: int, header: int) -> str:
    return f"{path}: cannot be read as CSV: line 2: {fields} fields, but the header has {header} ("


def test_a_good_table_is_read_as_written(tmp_path):
    df = read_csv_checked(write_rows(tmp_path / "t.csv", ["a", "b"], [["1", "x"], ["2", "y"]]))
    assert df.to_dict("list") == {"a": ["1", "2"], "b": ["x", "y"]}
    assert list(df.index) == [0, 1]


@pytest.mark.parametrize("extra", ["extra", ""], ids=["a value", "a trailing comma"])
def test_the_first_row_one_field_too_wide_is_refused(tmp_path, extra):
    path = widen(write_rows(tmp_path / "t.csv", ["a", "b"], [["1", "x"], ["2", "y"]]), extra=extra)
    for reader in (read_csv_checked, read_table_checked):
        with pytest.raises(TableError) as err:
            reader(path)
        assert str(err.value).startswith(first_row_message(path, 3, 2))
        assert "(a, b); quote the cells that hold commas, or remove the extra fields" in str(err.value)


def test_a_later_row_one_field_too_wide_is_refused_as_before(tmp_path):
    path = widen(write_rows(tmp_path / "t.csv", ["a", "b"], [["1", "x"], ["2", "y"]]), row=1)
    with pytest.raises(TableError, match=r"line 3: 3 fields, but the header has 2"):
        read_csv_checked(path)


def test_blank_lines_before_the_first_row_count_as_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n\n1,x,extra\n2,y\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"t.csv: cannot be read as CSV: line 3: 3 fields, but the header has 2"):
        read_csv_checked(path)


def test_a_first_row_answer_spanning_lines_is_named_by_its_first_line(tmp_path):
    path = widen(original_judged(tmp_path / "m__j.csv"))
    with pytest.raises(TableError) as err:
        read_judged(path)
    assert str(err.value).startswith(first_row_message(path, 5, 4))


def test_the_judged_table_reader_refuses_it(tmp_path):
    good = original_judged(tmp_path / "m__j.csv")
    rows = read_judged(good)
    assert rows["id"].tolist() == [1] * 8 and rows["rating"].tolist() == [2] * 8
    bad = widen(original_judged(tmp_path / "bad__j.csv"))
    with pytest.raises(TableError) as err:
        read_judged(bad)
    assert str(err.value).startswith(first_row_message(bad, 5, 4))


def test_jasco_score_refuses_it_with_one_message(tmp_path, capsys):
    assert main(["score", str(original_judged(tmp_path / "m__j.csv", clips=range(1, 81)))]) == 0
    capsys.readouterr()
    path = widen(original_judged(tmp_path / "bad__j.csv", clips=range(1, 81)))
    assert main(["score", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"jasco score: {first_row_message(path, 5, 4)}id, prompt, allm_output, llama3_extract)")
    assert "remove the extra fields" in err
    assert err.count("\n") == 1 and "dtype" not in err and "Name:" not in err


def test_the_manifest_reader_refuses_it(synthetic_dataset, tmp_path):
    path = write_manifest(build_manifest(synthetic_dataset, clips=[1]), tmp_path / "manifest.csv")
    assert len(read_manifest(path)) == 8
    widen(path)
    with pytest.raises(TableError) as err:
        read_manifest(path)
    n = len(MANIFEST_COLUMNS)
    assert str(err.value).startswith(first_row_message(path, n + 1, n))


def test_the_outputs_readers_refuse_it(synthetic_dataset, tmp_path):
    manifest = build_manifest(synthetic_dataset, clips=[1])
    answers = manifest[["id", "prompt"]].assign(allm_output="They are walking.")
    path = tmp_path / "salmonn.csv"
    answers.to_csv(path, index=False)
    assert import_outputs(manifest, path)["allm_output"].eq("They are walking.").all()
    widen(path)
    with pytest.raises(TableError) as err:
        import_outputs(manifest, path)
    assert str(err.value).startswith(first_row_message(path, 4, 3))

    run = Run(tmp_path / "run")
    run.outputs_dir.mkdir(parents=True)
    path = run.output_path("salmonn")
    answers.to_csv(path, index=False)
    assert len(run.outputs()) == 8
    widen(path)
    with pytest.raises(TableError) as err:
        run.outputs()
    assert str(err.value).startswith(first_row_message(path, 4, 3))


def test_the_dataset_metadata_reader_refuses_it(synthetic_dataset):
    assert len(load_metadata(synthetic_dataset)) == 3
    path = widen(synthetic_dataset / "v0.csv")
    with pytest.raises(TableError) as err:
        load_metadata(synthetic_dataset)
    assert str(err.value).startswith(first_row_message(path, 8, 7))
