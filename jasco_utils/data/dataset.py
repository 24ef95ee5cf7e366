"""The *What Are They Doing* dataset, v0 (Wang et al., arXiv:2409.14526).

80 clips ``1.wav`` ... ``80.wav``, each mixing a designed sound with designed speech, and
``v0.csv``: per clip the sound (``Audio``), the speech (``Speech``), the audio-only,
speech-only and correct answers, and the correct answer's keyword(s). The folder comes
from :func:`jasco_utils.core.paths.dataset_dir` (argument, ``$JASCO_DATA_DIR``, or
``data/raw/jasco-v0``).

This module reads the metadata, holds the pinned checksums and validates a dataset folder
(:func:`validate_dataset`); the clips themselves are loaded by :mod:`jasco_utils.data.clips`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from jasco_utils.core.io import TableError, line_of, read_csv_checked, sha256_file
from jasco_utils.core.paths import dataset_dir
from jasco_utils.data.clips import TARGET_SR, clip_file

#: Number of clips in v0.
N_CLIPS = 80
#: The metadata file of v0.
METADATA_FILE = "v0.csv"
#: Columns of ``v0.csv``.
V0_COLUMNS = (
    "audio_id",
    "Audio",
    "Speech",
    "Audio-Only Answer",
    "Speech-Only Answer",
    "Correct Answer",
    "Correct Answer Keyword",
)
#: SHA-256 of every file of the dataset at the pinned commit.
CHECKSUMS_FILE = Path(__file__).with_name("SHA256SUMS")

# Thresholds for what `validate` reports as irregular (not errors).
_CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale)
_DC_LEVEL = 0.02  # |mean| above this counts as a DC offset
_MISMATCH = (
    "differs from the pinned release (SHA-256 mismatch): re-run `jasco data download`, "
    "or pass --no-checksums to accept a modified copy"
)


def checksums() -> dict[str, str]:
    """File name -> SHA-256 of the pinned dataset (``v0.csv``, the clips, ``example.csv``)."""
    out = {}
    for line in CHECKSUMS_FILE.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*")] = digest
    return out


def _require_dir(data_dir: Path) -> Path:
    if not (data_dir / METADATA_FILE).is_file():
        raise FileNotFoundError(
            f"{data_dir}: no {METADATA_FILE} here. Run `jasco data download` (it writes "
            f"data/raw/jasco-v0), or point $JASCO_DATA_DIR or --data-dir at a folder holding "
            f"{METADATA_FILE} and 1.wav ... {N_CLIPS}.wav"
        )
    return data_dir


def load_metadata(data_dir: str | os.PathLike[str] | None = None, allow_repeats: bool = False) -> pd.DataFrame:
    """Read ``v0.csv``: one row per clip, text columns as strings, ``audio_id`` as int.

    ``allow_repeats`` keeps a repeated ``audio_id`` (for :func:`validate_dataset`, which
    reports every irregularity); otherwise it is an error naming both lines.

    Raises:
        FileNotFoundError: The folder has no ``v0.csv``.
        TableError: A column is missing, an ``audio_id`` is not written as a whole number, or
            (unless allowed) repeats.
    """
    path = _require_dir(dataset_dir(data_dir)) / METADATA_FILE
    df = read_csv_checked(path, V0_COLUMNS, what="dataset metadata")
    bad = ~df["audio_id"].str.fullmatch(r"\s*\d+\s*")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TableError(
            f"{path}: line {line_of(i, path)}, column 'audio_id': {df['audio_id'].iloc[i]!r} is not "
            "a clip id (a whole number written as digits, e.g. 7)"
        )
    ids = df["audio_id"].astype(int)
    repeated = ids.duplicated(keep="first")
    if repeated.any() and not allow_repeats:
        i = int(np.flatnonzero(repeated.to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
        raise TableError(
            f"{path}: line {line_of(i, path)}, column 'audio_id': clip {ids.iloc[i]} again (first on "
            f"line {line_of(first, path)}); each clip has one row"
        )
    df["audio_id"] = ids
    return df


@dataclass
class Finding:
    """One thing ``validate`` noticed.

    Attributes:
        level: ``error`` (the dataset cannot be used as is) or ``warning`` (an irregularity
            to know about; the project handles it).
        where: The file (and line or field) concerned.
        message: What is wrong and, for errors, what to do.
    """

    level: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper():7s} {self.where}: {self.message}"


@dataclass
class ValidationReport:
    """The result of :func:`validate_dataset`.

    Attributes:
        data_dir: The folder checked.
        clips: One row per clip file found: id, sample rate, channels, frames, duration,
            subtype, peak, clipped sample count, DC offset, checksum status.
        findings: Errors and irregularities, in the order found.
    """

    data_dir: Path
    clips: pd.DataFrame
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def summary(self, verbose: bool = True) -> str:
        """A human-readable report; ``verbose=False``: the errors, then one line."""
        n_err, n_warn = len(self.errors), len(self.findings) - len(self.errors)
        if not verbose:
            lines = [f"  {f}" for f in self.errors]
            state = "OK" if self.ok else "FAILED: fix the errors above (re-run `jasco data download`)"
            lines.append(
                f"{state}: {self.data_dir}, {len(self.clips)} clips decoded, {n_err} error(s), "
                f"{n_warn} irregularit{'y' if n_warn == 1 else 'ies'} (--verbose lists them)"
            )
            return "\n".join(lines)
        lines = [f"Dataset: {self.data_dir}"]
        c = self.clips
        if len(c):
            lines.append(f"Clips decoded: {len(c)}")
            for (sr, ch, st), n in c.groupby(["sample_rate", "channels", "subtype"]).size().items():
                lines.append(f"  {n:3d} clip(s) at {sr} Hz, {ch} channel(s), {st}")
            d = c["duration_s"]
            lines.append(
                f"Duration: min {d.min():.2f} s (clip {int(c.loc[d.idxmin(), 'audio_id'])}), "
                f"max {d.max():.2f} s (clip {int(c.loc[d.idxmax(), 'audio_id'])}), "
                f"mean {d.mean():.2f} s, total {d.sum():.1f} s"
            )
        lines.append(f"Findings: {n_err} error(s), {n_warn} irregularit{'y' if n_warn == 1 else 'ies'}")
        lines += [f"  {f}" for f in self.findings]
        lines.append("OK" if self.ok else "FAILED: fix the errors above (re-run `jasco data download`)")
        return "\n".join(lines)


def validate_dataset(data_dir: str | os.PathLike[str] | None = None, check_checksums: bool = True) -> ValidationReport:
    """Check the dataset folder and describe every irregularity found.

    Errors: ``v0.csv`` missing or malformed; a clip without a row or a row without a clip;
    a clip that does not decode; ids other than 1..80; duplicated ids; empty text cells.
    Irregularities (warnings): a sample rate other than 16 kHz or more than one channel
    (the loader converts), samples at full scale (clipping), a DC offset, non-ASCII
    characters in the text (typographic apostrophes), repeated designs (two clips with the
    same sound and the same correct answer), and (errors) files that differ from the pinned checksums.

    Args:
        data_dir: Dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        check_checksums: Compare each file with the checksums kept in the package.
    """
    root = dataset_dir(data_dir)
    report = ValidationReport(root, pd.DataFrame())
    if not root.is_dir():
        report.findings = [Finding("error", str(root), "folder does not exist; run `jasco data download`")]
        return report
    try:
        meta = load_metadata(root, allow_repeats=True)
    except (FileNotFoundError, TableError) as e:
        where = str(root / METADATA_FILE)
        message = str(e)[len(where) + 2 :] if str(e).startswith(where + ": ") else str(e)
        report.findings = [Finding("error", where, message)]
        return report
    meta_path = root / METADATA_FILE
    findings = _metadata_findings(meta, meta_path)
    wavs = {int(p.stem): p for p in root.glob("*.wav") if p.stem.isdigit()}
    findings += _file_set_findings(root, set(meta["audio_id"]), wavs)
    sums = checksums() if check_checksums else {}
    if check_checksums and meta_path.is_file() and sums.get(METADATA_FILE) != sha256_file(meta_path):
        findings.append(Finding("error", METADATA_FILE, _MISMATCH))
    rows = []
    for cid in sorted(wavs):
        row = _clip_facts(cid, wavs[cid], sums if check_checksums else None, findings)
        if row is not None:
            rows.append(row)
    report.clips = pd.DataFrame(rows)
    report.findings = findings
    return report


def _metadata_findings(meta: pd.DataFrame, meta_path: Path) -> list[Finding]:
    """``v0.csv``'s problems: repeated, out-of-range and missing ids; empty, padded or
    non-ASCII text cells; repeated designs."""
    findings: list[Finding] = []
    ids = meta["audio_id"].tolist()
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        findings.append(Finding("error", str(meta_path), f"audio_id repeated: {dup}"))
    outside = sorted(i for i in set(ids) if not 1 <= i <= N_CLIPS)
    if outside:
        findings.append(Finding("error", str(meta_path), f"audio_id outside 1..{N_CLIPS}: {outside}"))
    missing_rows = sorted(set(range(1, N_CLIPS + 1)) - set(ids))
    if missing_rows:
        findings.append(Finding("error", str(meta_path), f"no row for clip(s) {missing_rows}"))
    for i, row in meta.iterrows():
        for col in V0_COLUMNS[1:]:
            text = row[col]
            where = f"{meta_path.name} line {line_of(int(i), meta_path)} (clip {row['audio_id']}), column {col!r}"
            if not text.strip():
                findings.append(Finding("error", where, "empty"))
            elif text != text.strip():
                findings.append(Finding("warning", where, f"leading/trailing whitespace in {text!r}"))
            odd = sorted({ch for ch in text if ord(ch) > 127})
            if odd:
                names = ", ".join(f"U+{ord(ch):04X} {ch!r}" for ch in odd)
                findings.append(Finding("warning", where, f"non-ASCII character(s) {names} in {text!r}"))
    repeated = meta[meta.duplicated(["Audio", "Correct Answer"], keep=False)]
    for (_, answer), grp in repeated.groupby(["Audio", "Correct Answer"]):
        findings.append(
            Finding(
                "warning",
                f"{meta_path.name} clips {grp['audio_id'].tolist()}",
                f"same sound {grp['Audio'].iloc[0]!r} and same correct answer {answer!r}; only the speech differs",
            )
        )
    return findings


def _file_set_findings(root: Path, ids: set[int], wavs: dict[int, Path]) -> list[Finding]:
    """Files that are not clips, rows without a clip and clips without a row."""
    findings = [
        Finding("warning", p.name, "a .wav file that is not a clip of the dataset (ignored)")
        for p in sorted(root.glob("*.wav"), key=lambda p: p.name)
        if not p.stem.isdigit()
    ]
    findings += [
        Finding("error", clip_file(cid), "has a row in v0.csv but the file is missing")
        for cid in sorted(ids - set(wavs))
    ]
    findings += [Finding("error", clip_file(cid), "the file has no row in v0.csv") for cid in sorted(set(wavs) - ids)]
    return findings


def _clip_facts(cid: int, path: Path, sums: dict[str, str] | None, findings: list[Finding]) -> dict | None:
    """One clip's row of the report (None when it does not decode); its irregularities are
    appended to ``findings``. ``sums``: the pinned checksums (None: not checked)."""
    try:
        info = sf.info(str(path))
        wave, _ = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        findings.append(Finding("error", path.name, f"does not decode: {e}"))
        return None
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    n_clipped = int((np.abs(wave) >= _CLIP_LEVEL).sum())
    dc = float(wave.mean()) if wave.size else 0.0
    checksum_ok = None if sums is None else sums.get(path.name) == sha256_file(path)
    if info.frames == 0:
        findings.append(Finding("error", path.name, "has no audio frames"))
    if info.samplerate != TARGET_SR:
        findings.append(
            Finding(
                "warning",
                path.name,
                f"sample rate {info.samplerate} Hz, not {TARGET_SR} (the loader resamples it; "
                f"its n_frames in the manifest counts {info.samplerate} Hz frames)",
            )
        )
    if info.channels != 1:
        findings.append(Finding("warning", path.name, f"{info.channels} channels (the loader averages them)"))
    if n_clipped:
        findings.append(
            Finding("warning", path.name, f"{n_clipped} sample(s) at full scale (clipping), peak {peak:.4f}")
        )
    if abs(dc) > _DC_LEVEL:
        findings.append(Finding("warning", path.name, f"DC offset {dc:+.3f}"))
    if checksum_ok is False:
        findings.append(Finding("error", path.name, _MISMATCH))
    return dict(
        audio_id=cid,
        sample_rate=info.samplerate,
        channels=info.channels,
        frames=info.frames,
        duration_s=info.frames / info.samplerate,
        subtype=info.subtype,
        peak=peak,
        clipped_samples=n_clipped,
        dc_offset=dc,
        checksum_ok=checksum_ok,
    )
