"""The 640-row manifest reproduces the original example.csv; check_rows catches bad tables."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from jasco_utils.cli import main
from jasco_utils.core.io import TableError, read_csv_checked
from jasco_utils.data.dataset import checksums
from jasco_utils.data.manifest import (
    INSTRUCTIONS,
    MANIFEST_COLUMNS,
    build_manifest,
    check_rows,
    instruction_index,
    write_manifest,
)


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def example(real_data_dir) -> pd.DataFrame:
    return _read(real_data_dir / "example.csv")


@pytest.fixture(scope="module")
def manifest(real_data_dir) -> pd.DataFrame:
    return build_manifest(real_data_dir)


def test_original_layout_is_byte_identical_to_example_csv(real_data_dir, tmp_path):
    out = write_manifest(build_manifest(real_data_dir, original_layout=True), tmp_path / "example.csv")
    written = out.read_bytes()
    assert written == (real_data_dir / "example.csv").read_bytes()
    assert hashlib.sha256(written).hexdigest() == checksums()["example.csv"]


def test_write_manifest_gives_ordinary_permissions(real_data_dir, tmp_path):
    """Written like open(path, "w") would: mode 0o666 less the umask (not mkstemp's 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    out = write_manifest(build_manifest(real_data_dir, clips=[1]), tmp_path / "m.csv")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]  # no temporary file left behind
    out.chmod(0o640)
    write_manifest(build_manifest(real_data_dir, clips=[2]), out)  # overwriting keeps the mode
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert _read(out)["id"].unique().tolist() == ["2"]


def test_default_layout(manifest, example, real_data_dir):
    assert len(manifest) == 640
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert (manifest["allm_output"] == "").all()
    for cid, audio in zip(manifest["id"], manifest["audio"], strict=False):
        p = Path(audio)
        assert p.is_absolute() and p.is_file()
        assert p == (real_data_dir / f"{cid}.wav").resolve()
    # every other column equals example.csv cell for cell, after a CSV round trip
    as_written = manifest.astype(str).reset_index(drop=True)
    others = [c for c in MANIFEST_COLUMNS if c not in ("audio", "allm_output")]
    pd.testing.assert_frame_equal(as_written[others], example[others])


def test_default_layout_round_trips_through_csv(manifest, example, tmp_path):
    back = _read(write_manifest(manifest, tmp_path / "m.csv"))
    others = [c for c in MANIFEST_COLUMNS if c not in ("audio", "allm_output")]
    pd.testing.assert_frame_equal(back[others], example[others])
    assert (back["allm_output"] == "").all()


def test_row_order_is_clip_major_in_paper_order(manifest):
    assert manifest["id"].tolist() == [c for c in range(1, 81) for _ in range(8)]
    assert manifest["prompt"].tolist() == list(INSTRUCTIONS) * 80
    assert manifest["with_speech"].map(bool).all()


def test_clip_47_n_frames_counts_48khz_frames(manifest, real_data_dir):
    import soundfile as sf

    n47 = manifest.loc[manifest["id"] == 47, "n_frames"].unique()
    assert n47.tolist() == [sf.info(str(real_data_dir / "47.wav")).frames]
    assert sf.info(str(real_data_dir / "47.wav")).samplerate == 48_000


def test_instructions_match_protocol(protocol_dir):
    lines = (protocol_dir / "instructions.txt").read_text(encoding="utf-8").splitlines()
    assert lines == list(INSTRUCTIONS)
    assert len(set(INSTRUCTIONS)) == 8


def test_instruction_index():
    assert [instruction_index(p) for p in INSTRUCTIONS] == list(range(8))
    assert instruction_index(INSTRUCTIONS[0] + " ") is None
    assert instruction_index("What are they doing?") is None


def test_clips_subset_sorted(real_data_dir):
    df = build_manifest(real_data_dir, clips=[3, 1])
    assert len(df) == 16
    assert df["id"].tolist() == [1] * 8 + [3] * 8
    assert df["prompt"].tolist() == list(INSTRUCTIONS) * 2
    assert df["audio"].iloc[8].endswith("3.wav")


def test_unknown_clip(real_data_dir):
    with pytest.raises(ValueError, match=r"\b99\b"):
        build_manifest(real_data_dir, clips=[1, 99])


def test_synthetic_dataset_manifest(synthetic_dataset):
    df = build_manifest(synthetic_dataset)
    assert len(df) == 24
    assert df["n_frames"].tolist() == [16_000] * 8 + [48_001] * 8 + [8_000] * 8
    assert df.loc[0, "spoken_text"] == "Let\u2019s build a castle over there."
    assert df.loc[8, "target_keywords"] == "sport,referee"
    check_rows(df, "synthetic.csv")


def test_missing_clip_file(synthetic_dataset):
    (synthetic_dataset / "2.wav").unlink()
    build_manifest(synthetic_dataset, clips=[1, 3])  # the missing clip is not needed
    with pytest.raises(FileNotFoundError, match=r"2\.wav.*jasco data download"):
        build_manifest(synthetic_dataset)


# ---------------------------------------------------------------- check_rows


def test_check_rows_accepts_manifest_and_subset_and_only_whole_clips(manifest, example):
    subset = manifest[manifest["id"].isin([2, 40, 80])]
    for table in (manifest, example, subset, subset.reset_index(drop=True)):  # example: string ids, as read
        assert check_rows(table, "t.csv") is None
    assert len(subset) == 24
    with pytest.raises(TableError, match=r"clip 40 lacks instruction\(s\) \[3\]"):
        check_rows(subset.drop(subset.index[10]), "subset.csv")
    assert check_rows(example.assign(id=example["id"] + ".0"), "floats.csv") is None  # 1.0 is clip 1


def _bad(example: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    df = example.copy()
    df.loc[row, column] = value
    return df


@pytest.mark.parametrize(
    "row, column, value",
    [
        (0, "id", "0"),
        (9, "id", "abc"),
        (20, "id", "81"),
        (30, "id", "2.5"),
        (41, "prompt", "What are they doing?"),
        (50, "prompt", INSTRUCTIONS[3] + " "),
    ],
)
def test_check_rows_names_line_and_column(example, row, column, value):
    with pytest.raises(TableError) as info:
        check_rows(_bad(example, row, column, value), "bad.csv", what="manifest")
    msg = str(info.value)
    assert msg.startswith("bad.csv: manifest is malformed")
    assert f"line {row + 2}, column '{column}'" in msg
    assert repr(value)[:20] in msg


def test_check_rows_duplicated_instruction(example):
    # line 3 (row 1) of clip 1 repeats instruction 1 instead of instruction 2
    df = _bad(example, 1, "prompt", INSTRUCTIONS[0])
    with pytest.raises(TableError) as info:
        check_rows(df, "dup.csv")
    msg = str(info.value)
    assert "lines 2, 3: clip 1 has instruction 1 more than once" in msg
    assert "clip 1 lacks instruction(s) [2]" in msg


def test_check_rows_duplicated_row(example):
    df = pd.concat([example, example.iloc[[100]]], ignore_index=True)
    with pytest.raises(TableError, match=r"lines 102, 642: clip 13 has instruction 5 more than once"):
        check_rows(df, "dup.csv")


def test_check_rows_clip_missing_an_instruction(example):
    df = example.drop(index=77).reset_index(drop=True)  # clip 10, instruction 6
    with pytest.raises(TableError, match=r"clip 10 lacks instruction\(s\) \[6\]"):
        check_rows(df, "short.csv")


def test_check_rows_reports_several_problems(example):
    df = _bad(_bad(example, 3, "id", "0"), 600, "prompt", "?")
    with pytest.raises(TableError) as info:
        check_rows(df, "bad.csv")
    assert "line 5, column 'id'" in str(info.value)
    assert "line 602, column 'prompt'" in str(info.value)


# ---------------------------------------------------------------- CLI


def test_cli_manifest(real_data_dir, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["manifest", "--data-dir", str(real_data_dir), "--out", str(out)]) == 0
    df = read_csv_checked(out, MANIFEST_COLUMNS, what="manifest")
    assert len(df) == 640
    check_rows(df, out)
    assert "640 rows" in capsys.readouterr().out


def test_cli_manifest_clips(real_data_dir, tmp_path):
    out = tmp_path / "sub" / "m.csv"
    assert main(["manifest", "--data-dir", str(real_data_dir), "--out", str(out), "--clips", "1-2"]) == 0
    df = _read(out)
    assert len(df) == 16
    assert df["id"].tolist() == ["1"] * 8 + ["2"] * 8


def test_cli_manifest_original_layout(real_data_dir, tmp_path):
    out = tmp_path / "example.csv"
    args = ["manifest", "--data-dir", str(real_data_dir), "--out", str(out), "--original-layout"]
    assert main(args) == 0
    assert out.read_bytes() == (real_data_dir / "example.csv").read_bytes()


def test_cli_manifest_unknown_clip(real_data_dir, tmp_path, capsys):
    out = tmp_path / "m.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["manifest", "--data-dir", str(real_data_dir), "--out", str(out), "--clips", "80-81"])
    assert exit_.value.code == 2 and "'80-81': clip ids are 1..80" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["manifest", "--data-dir", str(real_data_dir), "--out", str(out), "--clips", "3-1"])
    assert "runs backwards; write 1-3" in capsys.readouterr().err and not out.exists()


def test_cli_manifest_missing_data_dir(tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["manifest", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "jasco data download" in err
    assert "nowhere" in err
    assert not out.exists()
