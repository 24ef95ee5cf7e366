"""Dataset folder lookup, clip loading (16 kHz mono float32, data.clips) and validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from jasco_utils.cli import main
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import (
    DATA_DIR_ENV,
    DEFAULT_DATASET_DIR,
    PROJECT_ROOT,
    dataset_dir,
)
from jasco_utils.data.clips import (
    TARGET_SR,
    clip_path,
    load_audio,
    load_clip,
    load_clips,
)
from jasco_utils.data.dataset import (
    N_CLIPS,
    V0_COLUMNS,
    load_metadata,
    validate_dataset,
)

# ---------------------------------------------------------------- dataset_dir


def test_dataset_dir_default(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert dataset_dir() == PROJECT_ROOT / "data" / "raw" / "jasco-v0" == DEFAULT_DATASET_DIR
    assert dataset_dir().is_absolute()
    assert dataset_dir(None) == dataset_dir("")


def test_dataset_dir_env_over_default(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert dataset_dir() == tmp_path / "from-env"


def test_dataset_dir_explicit_over_env(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert dataset_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert dataset_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"


def test_dataset_dir_relative_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, "rel-env")
    assert dataset_dir() == tmp_path.resolve() / "rel-env"
    assert dataset_dir("rel-arg") == tmp_path.resolve() / "rel-arg"


def test_env_is_used_by_loaders(monkeypatch, synthetic_dataset):
    monkeypatch.setenv(DATA_DIR_ENV, str(synthetic_dataset))
    assert load_metadata()["audio_id"].tolist() == [1, 2, 3]
    assert load_clip(1).shape == (16_000,)


# ---------------------------------------------------------------- load_audio (synthetic)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


def test_load_audio_16k_mono_unchanged(synthetic_dataset):
    path = synthetic_dataset / "1.wav"
    got = load_audio(path)
    written, sr = sf.read(str(path), dtype="float32")
    assert sr == TARGET_SR
    assert got.dtype == np.float32 and got.shape == (16_000,)
    np.testing.assert_array_equal(got, written)
    t = np.arange(16_000) / 16_000
    np.testing.assert_array_equal(got, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


def test_load_audio_resamples_48k(synthetic_dataset):
    got = load_audio(synthetic_dataset / "2.wav")
    assert sf.info(str(synthetic_dataset / "2.wav")).samplerate == 48_000
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(len(got) - 48_001 / 3) <= 1
    assert _peak_hz(got, TARGET_SR) == pytest.approx(440, abs=1.0)
    # amplitude preserved away from the edges (soxr's filter settles quickly)
    middle = got[1000:-1000]
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.01)
    t = (np.arange(len(got)) / TARGET_SR)[1000:-1000]
    np.testing.assert_allclose(middle, 0.5 * np.sin(2 * np.pi * 440 * t), atol=2e-3)


def test_load_audio_to_other_rate(synthetic_dataset):
    got = load_audio(synthetic_dataset / "1.wav", target_sr=8_000)
    assert got.dtype == np.float32 and abs(len(got) - 8_000) <= 1
    assert _peak_hz(got, 8_000) == pytest.approx(440, abs=1.0)


def test_load_audio_averages_stereo(synthetic_dataset):
    path = synthetic_dataset / "3.wav"
    both, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert both.shape == (8_000, 2) and sr == TARGET_SR
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == (8_000,)
    np.testing.assert_allclose(got, (both[:, 0] + both[:, 1]) / 2, rtol=0, atol=1e-7)
    assert not np.allclose(got, both[:, 0])  # really a mix of both channels


def test_load_clip_prefers_a_given_file_and_names_a_missing_one(synthetic_dataset, tmp_path):
    elsewhere = tmp_path / "elsewhere.wav"
    sf.write(elsewhere, np.full(800, 0.25, dtype=np.float32), 16_000, subtype="FLOAT")
    assert clip_path(1, synthetic_dataset, elsewhere) == elsewhere
    assert load_clip(1, synthetic_dataset, elsewhere).tolist() == [0.25] * 800
    # a given path that is not a file (a manifest's original layout): the dataset folder's clip
    for audio in (None, "", "audio/1.wav", float("nan")):
        assert clip_path(1, synthetic_dataset, audio) == synthetic_dataset / "1.wav"
    with pytest.raises(FileNotFoundError, match=r"4\.wav: audio of clip 4 not found; run `jasco data download`"):
        load_clip(4, synthetic_dataset)


def test_load_clips_once_each_in_id_order(synthetic_dataset):
    manifest = pd.DataFrame({"id": [3, 3, 1, 1], "audio": ["", "", str(synthetic_dataset / "2.wav"), ""]})
    waves = load_clips(manifest, synthetic_dataset)
    assert list(waves) == [1, 3]
    np.testing.assert_array_equal(waves[1], load_audio(synthetic_dataset / "2.wav"))  # the row's own file
    np.testing.assert_array_equal(waves[3], load_clip(3, synthetic_dataset))
    assert list(load_clips([3, 1, 3], synthetic_dataset)) == [1, 3]


def test_load_metadata_synthetic(synthetic_dataset):
    meta = load_metadata(synthetic_dataset)
    assert tuple(meta.columns) == V0_COLUMNS
    assert meta["audio_id"].dtype.kind == "i"
    assert meta.loc[0, "Audio"] == "Waves crashing,seagulls"


def test_load_metadata_bad_id(synthetic_dataset):
    path = synthetic_dataset / "v0.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[1, "audio_id"] = "two"
    df.to_csv(path, index=False)
    with pytest.raises(TableError, match=r"line 3, column 'audio_id': 'two'"):
        load_metadata(synthetic_dataset)


def test_load_metadata_missing_column(synthetic_dataset):
    path = synthetic_dataset / "v0.csv"
    pd.read_csv(path, dtype=str).drop(columns="Speech").to_csv(path, index=False)
    with pytest.raises(TableError, match="Speech"):
        load_metadata(synthetic_dataset)


def test_synthetic_dataset_validation(synthetic_dataset):
    report = validate_dataset(synthetic_dataset, check_checksums=False)
    msgs = [str(f) for f in report.findings]
    assert any(f.where == "2.wav" and "48000 Hz" in f.message for f in report.findings)
    assert any(f.where == "3.wav" and "2 channels" in f.message for f in report.findings)
    # a 3-clip folder is not v0: rows 4..80 are missing
    assert not report.ok
    assert any("no row for clip(s) [4, 5," in m for m in msgs)
    assert report.clips["audio_id"].tolist() == [1, 2, 3]


# ---------------------------------------------------------------- real data


def test_load_clip_47_is_resampled(real_data_dir):
    info = sf.info(str(real_data_dir / "47.wav"))
    assert info.samplerate == 48_000
    got = load_clip(47, real_data_dir)
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(len(got) - info.frames / 3) <= 1


def test_all_clips_load(real_data_dir):
    for cid in range(1, N_CLIPS + 1):
        info = sf.info(str(real_data_dir / f"{cid}.wav"))
        x = load_clip(cid, real_data_dir)
        assert x.dtype == np.float32 and x.ndim == 1, cid
        assert abs(len(x) - info.frames * TARGET_SR / info.samplerate) <= 1, cid
        assert np.isfinite(x).all() and np.abs(x).max() > 0.01, cid


def test_load_metadata_real(real_data_dir):
    meta = load_metadata(real_data_dir)
    assert len(meta) == 80
    assert meta["audio_id"].tolist() == list(range(1, 81))


@pytest.fixture(scope="module")
def real_report(real_data_dir):
    return validate_dataset(real_data_dir)


def test_validate_real_dataset_ok(real_report, real_data_dir):
    assert real_report.ok, [str(f) for f in real_report.errors]
    assert real_report.errors == []
    assert real_report.data_dir == real_data_dir.resolve()
    assert {f.level for f in real_report.findings} == {"warning"}


def test_validate_real_clips_table(real_report):
    clips = real_report.clips
    assert len(clips) == 80
    assert clips["audio_id"].tolist() == list(range(1, 81))
    assert (clips["sample_rate"] == 16_000).sum() == 79
    assert clips.loc[clips["sample_rate"] != 16_000, "audio_id"].tolist() == [47]
    assert clips.loc[clips["audio_id"] == 47, "sample_rate"].item() == 48_000
    assert (clips["channels"] == 1).all()
    assert clips["checksum_ok"].all()


def test_validate_real_findings(real_report):
    by_where: dict[str, list[str]] = {}
    for f in real_report.findings:
        by_where.setdefault(f.where, []).append(f.message)

    assert any("48000 Hz" in m for m in by_where["47.wav"])

    # typographic apostrophes U+2019 in these cells
    apostrophes = {w for w, ms in by_where.items() for m in ms if "U+2019" in m}
    assert apostrophes == {
        "v0.csv line 2 (clip 1), column 'Speech'",
        "v0.csv line 29 (clip 28), column 'Speech'",
        "v0.csv line 35 (clip 34), column 'Speech'",
        "v0.csv line 44 (clip 43), column 'Speech'",
        "v0.csv line 75 (clip 74), column 'Correct Answer'",
    }

    for clip in ("9.wav", "16.wav", "17.wav"):
        assert any("clipping" in m for m in by_where[clip]), clip
    heavy = {w for w, ms in by_where.items() for m in ms if "clipping" in m and int(m.split(" sample")[0]) >= 100}
    assert heavy == {"9.wav", "16.wav", "17.wav"}

    repeated = [w for w in by_where if "clips [" in w]
    assert repeated == ["v0.csv clips [52, 53]"]
    assert "same sound 'Wind'" in by_where["v0.csv clips [52, 53]"][0]


def test_validate_summary_real(real_report):
    text = real_report.summary()
    assert "Clips decoded: 80" in text
    assert "79 clip(s) at 16000 Hz" in text and "1 clip(s) at 48000 Hz" in text
    assert "Findings: 0 error(s)" in text
    assert text.endswith("OK")


# ---------------------------------------------------------------- broken copies


def _errors(report) -> list[str]:
    return [f"{f.where}: {f.message}" for f in report.errors]


def test_copy_is_ok(real_data_copy):
    report = validate_dataset(real_data_copy)
    assert report.ok, _errors(report)


def test_missing_clip(real_data_copy):
    (real_data_copy / "5.wav").unlink()
    report = validate_dataset(real_data_copy)
    assert not report.ok
    assert _errors(report) == ["5.wav: has a row in v0.csv but the file is missing"]
    assert len(report.clips) == 79


def test_extra_clip(real_data_copy):
    (real_data_copy / "81.wav").write_bytes((real_data_copy / "1.wav").read_bytes())
    report = validate_dataset(real_data_copy)
    errors = _errors(report)
    assert any(e.startswith("81.wav:") and "no row" in e for e in errors), errors


def test_non_clip_wav_is_a_warning(real_data_copy):
    (real_data_copy / "notes.wav").write_bytes((real_data_copy / "1.wav").read_bytes())
    report = validate_dataset(real_data_copy)
    assert report.ok
    assert any(f.where == "notes.wav" and f.level == "warning" for f in report.findings)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda b: b[:30], id="truncated-header"),
        pytest.param(lambda b: b"\0" * 64 + b[64:], id="zeroed-header"),
        pytest.param(lambda b: b"not a wav file at all", id="garbage"),
    ],
)
def test_undecodable_clip(real_data_copy, corrupt):
    path = real_data_copy / "7.wav"
    path.write_bytes(corrupt(path.read_bytes()))
    for checks in (True, False):
        report = validate_dataset(real_data_copy, check_checksums=checks)
        errors = _errors(report)
        assert any(e.startswith("7.wav: does not decode") for e in errors), errors
        assert 7 not in report.clips["audio_id"].tolist()


def test_clip_with_no_frames(real_data_copy):
    path = real_data_copy / "7.wav"
    path.write_bytes(path.read_bytes()[:44])  # the header alone
    report = validate_dataset(real_data_copy, check_checksums=False)
    assert "7.wav: has no audio frames" in _errors(report)


def test_modified_clip_fails_checksum(real_data_copy):
    path = real_data_copy / "8.wav"
    raw = bytearray(path.read_bytes())
    pos = raw.index(b"data") + 8 + 1001  # inside the sample data
    raw[pos] ^= 0x01
    path.write_bytes(bytes(raw))
    assert sf.info(str(path)).frames > 0  # still a valid wav

    report = validate_dataset(real_data_copy)
    errors = [f for f in report.errors if f.where == "8.wav"]
    assert len(errors) == 1 and "SHA-256 mismatch" in errors[0].message
    assert "--no-checksums" in errors[0].message
    assert len(report.errors) == 1
    assert not report.clips.loc[report.clips["audio_id"] == 8, "checksum_ok"].item()

    relaxed = validate_dataset(real_data_copy, check_checksums=False)
    assert relaxed.ok, _errors(relaxed)
    assert not any("SHA-256" in f.message for f in relaxed.findings)
    assert relaxed.clips["checksum_ok"].isna().all()


def _edit_v0(root: Path, row: int, column: str, value: str) -> None:
    path = root / "v0.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, index=False)


def test_empty_cell(real_data_copy):
    _edit_v0(real_data_copy, 9, "Speech", "")
    report = validate_dataset(real_data_copy, check_checksums=False)
    assert _errors(report) == ["v0.csv line 11 (clip 10), column 'Speech': empty"]
    # with checksums on, the edited v0.csv is reported as well
    strict = validate_dataset(real_data_copy)
    assert any(f.where == "v0.csv" and "--no-checksums" in f.message for f in strict.errors)


def test_whitespace_cell_is_a_warning(real_data_copy):
    _edit_v0(real_data_copy, 2, "Audio", " Waves ")
    report = validate_dataset(real_data_copy, check_checksums=False)
    assert report.ok
    assert any(
        f.where == "v0.csv line 4 (clip 3), column 'Audio'" and "whitespace" in f.message for f in report.findings
    )


@pytest.mark.parametrize(
    "value, expected",
    [("0", "audio_id outside 1..80: [0]"), ("3", "audio_id repeated: [3]")],
)
def test_bad_ids(real_data_copy, value, expected):
    _edit_v0(real_data_copy, 3, "audio_id", value)  # clip 4's row
    errors = _errors(validate_dataset(real_data_copy, check_checksums=False))
    assert any(expected in e for e in errors), errors
    assert any("no row for clip(s) [4]" in e for e in errors), errors


def test_non_integer_id(real_data_copy):
    _edit_v0(real_data_copy, 3, "audio_id", "four")
    errors = _errors(validate_dataset(real_data_copy))
    assert len(errors) == 1
    assert "v0.csv: line 5, column 'audio_id': 'four' is not a clip id" in errors[0]


def test_missing_metadata(real_data_copy):
    (real_data_copy / "v0.csv").unlink()
    report = validate_dataset(real_data_copy)
    assert not report.ok
    assert len(report.errors) == 1 and "jasco data download" in report.errors[0].message
    assert "FAILED" in report.summary()


def test_missing_folder(tmp_path):
    report = validate_dataset(tmp_path / "nowhere")
    assert not report.ok
    assert "jasco data download" in report.errors[0].message


# ---------------------------------------------------------------- CLI


def test_cli_validate(real_data_dir, capsys):
    assert main(["data", "validate", "--data-dir", str(real_data_dir), "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "47.wav" in out and "48000" in out
    assert out.rstrip().endswith("OK")


def test_cli_validate_ends_with_one_line(real_data_dir, real_data_copy, capsys):
    assert main(["data", "validate", "--data-dir", str(real_data_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"OK: {real_data_dir.resolve()}, 80 clips decoded, 0 error(s), 25 irregularities (--verbose lists them)"
    ]
    (real_data_copy / "3.wav").unlink()
    assert main(["data", "validate", "--data-dir", str(real_data_copy)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) >= 2 and "3.wav" in " ".join(out[:-1]) and out[-1].startswith("FAILED: ")


def test_cli_validate_json(real_data_dir, capsys):
    assert main(["data", "validate", "--data-dir", str(real_data_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"data_dir", "ok", "clips", "findings"}
    assert data["ok"] is True
    assert data["data_dir"] == str(real_data_dir.resolve())
    assert len(data["clips"]) == 80
    clip47 = next(c for c in data["clips"] if c["audio_id"] == 47)
    assert clip47["sample_rate"] == 48_000
    assert all(set(f) == {"level", "where", "message"} for f in data["findings"])
    assert any(f["where"] == "47.wav" for f in data["findings"])


def test_cli_validate_broken_copy(real_data_copy, capsys):
    (real_data_copy / "5.wav").unlink()
    assert main(["data", "validate", "--data-dir", str(real_data_copy)]) == 1
    out = capsys.readouterr().out
    assert "5.wav" in out and "FAILED" in out


def test_cli_validate_json_broken_copy(real_data_copy, capsys):
    (real_data_copy / "v0.csv").unlink()
    assert main(["data", "validate", "--data-dir", str(real_data_copy), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["clips"] == []
    assert data["findings"][0]["level"] == "error"


def test_cli_no_checksums(real_data_copy, capsys):
    path = real_data_copy / "8.wav"
    raw = bytearray(path.read_bytes())
    raw[-2] ^= 0x01
    path.write_bytes(bytes(raw))
    assert main(["data", "validate", "--data-dir", str(real_data_copy)]) == 1
    assert "--no-checksums" in capsys.readouterr().out
    assert main(["data", "validate", "--data-dir", str(real_data_copy), "--no-checksums"]) == 0
