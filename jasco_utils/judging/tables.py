"""Reading judged tables: the judged answers (two layouts) and the judged control tables, as rows.

Layouts read:

- **this project's** (written by ``jasco judge``): the manifest columns plus ``model``,
  ``judge`` and ``judge_output`` (the judge's raw answer), optionally ``reask_output`` (the
  answer to the re-ask prompt); the parsed columns it also holds are for reading only, and
  the rating and orientation are always read again from the raw text with
  :mod:`jasco_utils.judging.parsing`.
- **the original's** (written by the original ``eval.py``): ``example.csv``'s columns plus the
  judge's raw answer in ``llama3_extract`` (whichever judge ran). Model and judge come from
  the caller, else from the file name: ``MODEL__JUDGE.csv`` gives both, any other name is
  used for both.

Where an answer's orientation cannot be read and a re-ask answer is stored, the orientation
comes from the re-ask answer, as in the original protocol. The judge check's tables
(:mod:`jasco_utils.judging.controls` judged) are read into expected and given labels by
:func:`read_checked`. Scoring (:mod:`jasco_utils.analysis.scoring`) and measuring the judges
(:mod:`jasco_utils.analysis.judge_check`) start from these rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from jasco_utils.core.io import TableError, line_of, lines_text, read_table_checked
from jasco_utils.core.paths import JUDGED_SEP, judged_files
from jasco_utils.data.manifest import check_rows, clip_ids, instruction_index
from jasco_utils.judging.controls import check_controls
from jasco_utils.judging.parsing import ORIGINAL_OUTPUT_COLUMN, read_verdict

#: Columns that identify this project's layout.
PROJECT_REQUIRED: tuple[str, ...] = ("id", "prompt", "model", "judge", "judge_output")


#: Columns the original layout must have.
ORIGINAL_REQUIRED: tuple[str, ...] = ("id", "prompt", ORIGINAL_OUTPUT_COLUMN)


#: Columns of a scored-rows table.
SCORED_COLUMNS: tuple[str, ...] = (
    "model",
    "judge",
    "id",
    "instruction",
    "rating",
    "orientation",
    "orientation_source",
    "truncated",
    "file",
    "line",
)


def detect_layout(df: pd.DataFrame) -> str:
    """``"project"`` or ``"original"``; ``"unknown"`` when neither's columns are there."""
    if "judge_output" in df.columns:
        return "project"
    if ORIGINAL_OUTPUT_COLUMN in df.columns:
        return "original"
    return "unknown"


def names_from_path(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(model, judge) from a file name: ``MODEL__JUDGE.csv``, else the stem for both.

    >>> names_from_path("runs/qwen2-audio__llama-3.1-70b.csv")
    ('qwen2-audio', 'llama-3.1-70b')
    >>> names_from_path("llama_judge.csv")
    ('llama_judge', 'llama_judge')
    """
    stem = Path(path).stem
    model, sep, judge = stem.partition(JUDGED_SEP)
    return (model, judge) if sep and model and judge else (stem, stem)


def parse_rows(outputs: Iterable[str], reasks: Iterable[str] | None = None) -> pd.DataFrame:
    """Parse judge answers into ``rating``, ``orientation`` and ``orientation_source``.

    ``orientation_source`` is ``judge``, ``reask`` (read from the re-ask answer) or ``none``.
    """
    outputs = list(outputs)
    reasks = list(reasks) if reasks is not None else [""] * len(outputs)
    verdicts = [read_verdict(text, reask) for text, reask in zip(outputs, reasks, strict=True)]
    ratings = [v.rating for v in verdicts]
    orientations = [v.orientation for v in verdicts]
    sources = [v.source for v in verdicts]
    return pd.DataFrame(
        {
            "rating": pd.array(ratings, dtype="Int64"),
            "orientation": pd.array(orientations, dtype=object),
            "orientation_source": sources,
        }
    )


def read_judged(
    path: str | os.PathLike[str],
    model: str | None = None,
    judge: str | None = None,
    keep_failed: bool = False,
) -> pd.DataFrame:
    """Read one judged table, CSV or Parquet (either layout), into scored rows (:data:`SCORED_COLUMNS`).

    Args:
        path: The judged table.
        model: ALLM name for an original-layout file (default: from the file name).
        judge: Judge name for an original-layout file (default: from the file name).
        keep_failed: Keep rows whose judge call failed, unparsed (no rating, no orientation),
            instead of refusing the table: for showing a run, never for scoring it.

    Raises:
        TableError: Naming the file, line and column at fault.
    """
    path = Path(path)
    df = read_table_checked(path, what="judged table")
    layout = detect_layout(df)
    if layout == "unknown":
        raise TableError(
            f"{path}: not a judged table: expected a column 'judge_output' (this project's layout, "
            f"from `jasco judge`) or {ORIGINAL_OUTPUT_COLUMN!r} (the original eval.py's); "
            f"it has {list(df.columns)}"
        )
    required = PROJECT_REQUIRED if layout == "project" else ORIGINAL_REQUIRED
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"{path}: judged table ({layout} layout) lacks column(s) {missing}")
    if df.empty:
        raise TableError(f"{path}: judged table has no rows")
    if layout == "original":
        file_model, file_judge = names_from_path(path)
        df["model"] = model or file_model
        df["judge"] = judge or file_judge
        outputs, reasks = df[ORIGINAL_OUTPUT_COLUMN], None
    else:
        for col in ("model", "judge"):
            empty = df.index[df[col].str.strip() == ""]
            if len(empty):
                raise TableError(f"{path}: line {line_of(empty[0], path)}, column {col!r}: empty")
        failed_rows = df["status"].eq("failed") if "status" in df.columns else pd.Series(False, index=df.index)
        if failed_rows.any() and not keep_failed:
            failed = df.index[failed_rows]
            raise TableError(
                f"{path}: {len(failed)} row(s) whose judge call failed ({lines_text(failed, path)}, column 'status'); "
                "re-run `jasco judge` to retry them: a failed call is never scored"
            )
        outputs = df["judge_output"].where(~failed_rows, "")
        reasks = df["reask_output"].where(~failed_rows, "") if "reask_output" in df.columns else None
    for _, group in df.groupby(["model", "judge"], sort=False):
        check_rows(group, path, what="judged table")
    parsed = parse_rows(outputs, reasks)
    return pd.DataFrame(
        {
            "model": df["model"].to_numpy(),
            "judge": df["judge"].to_numpy(),
            "id": clip_ids(df["id"]).to_numpy(),
            "instruction": df["prompt"].map(instruction_index).astype(int).to_numpy() + 1,
            "rating": parsed["rating"].to_numpy(),
            "orientation": parsed["orientation"].to_numpy(),
            "orientation_source": parsed["orientation_source"].to_numpy(),
            "truncated": _truncated(df).to_numpy(),
            "file": str(path),
            "line": [line_of(i, path) for i in df.index],
        },
        columns=list(SCORED_COLUMNS),
    )


def _truncated(df: pd.DataFrame) -> pd.Series:
    """Rows whose judge answer or ALLM answer stopped at the token limit (``status`` or
    ``allm_status`` is ``truncated``; the original layout records neither)."""
    out = pd.Series(False, index=df.index)
    for col in ("status", "allm_status"):
        if col in df.columns:
            out |= df[col].astype(str).eq("truncated")
    return out


def expand_judged(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The judged tables that files and folders name.

    A folder stands for its judged tables (``ALLM__JUDGE.csv``), or for its ``judged/``
    folder's when it is a run folder. A Parquet file given beside the CSV of the same name
    (``judged/*``) is the same table: the CSV is read.

    Raises:
        TableError: A path does not exist, or a folder holds no judged table.
    """
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            folder = path / "judged" if (path / "judged").is_dir() else path
            found = judged_files(folder)
            if not found:
                raise TableError(
                    f"{path}: no judged tables (ALLM{JUDGED_SEP}JUDGE.csv) in this folder; "
                    "give the judged files, or a run folder with judged/"
                )
            out.extend(found)
        elif not path.exists():
            raise TableError(f"{path}: no such judged table file or folder")
        else:
            out.append(path)
    given = {p.with_suffix("") for p in out if p.suffix.lower() == ".csv"}
    return list(dict.fromkeys(p for p in out if not (p.suffix.lower() == ".parquet" and p.with_suffix("") in given)))


def read_judged_files(
    paths: Sequence[str | os.PathLike[str]], model: str | None = None, judge: str | None = None
) -> pd.DataFrame:
    """Read several judged tables (files, or folders: :func:`expand_judged`) into one scored-rows table.

    Raises:
        TableError: A file is malformed, or two files hold the same (model, judge).
    """
    frames = [read_judged(p, model=model, judge=judge) for p in expand_judged(paths)]
    seen: dict[tuple[str, str], str] = {}
    for frame in frames:
        for key in frame[["model", "judge"]].drop_duplicates().itertuples(index=False):
            key = tuple(key)
            file = frame["file"].iloc[0]
            if key in seen and seen[key] != file:
                raise TableError(
                    f"{file}: model {key[0]!r} judged by {key[1]!r} is also in {seen[key]}; "
                    "name each file MODEL__JUDGE.csv or pass --model/--judge"
                )
            seen[key] = file
    return pd.concat(frames, ignore_index=True)


#: Columns of the rows :func:`read_checked` returns.
CHECK_ROW_COLUMNS: tuple[str, ...] = (
    "judge",
    "template",
    "id",
    "control_kind",
    "expected_rating",
    "expected_orientation",
    "rating",
    "orientation",
    "file",
    "line",
)


def checked_rows(df: pd.DataFrame, source: str = "judged control table") -> pd.DataFrame:
    """The rows of one judged control table, read: expected and given labels (:data:`CHECK_ROW_COLUMNS`).

    Raises:
        TableError: A missing column, an empty ``judge``, a failed judge call, or a control
            column out of range (named file, line and column).
    """
    missing = [c for c in ("judge", "judge_output") if c not in df.columns]
    if missing:
        raise TableError(
            f"{source}: lacks column(s) {missing}; judge the control table first (jasco check-judge, "
            "or judging.controls.judge_controls)"
        )
    if df.empty:
        raise TableError(f"{source}: judged control table has no rows")
    df = check_controls(df, source)
    empty = df.index[df["judge"].astype(str).str.strip() == ""]
    if len(empty):
        raise TableError(f"{source}: line {line_of(empty[0], source)}, column 'judge': empty")
    if "status" in df.columns and (df["status"] == "failed").any():
        failed = df.index[df["status"] == "failed"]
        raise TableError(
            f"{source}: {len(failed)} row(s) whose judge call failed ({lines_text(failed, source)}, "
            "column 'status'); re-run to retry them"
        )
    parsed = parse_rows(
        df["judge_output"].astype(str), df["reask_output"].astype(str) if "reask_output" in df.columns else None
    )
    return pd.DataFrame(
        {
            "judge": df["judge"].to_numpy(),
            "template": df["template"].to_numpy() if "template" in df.columns else "",
            "id": df["id"].to_numpy(),
            "control_kind": df["control_kind"].to_numpy(),
            "expected_rating": df["expected_rating"].to_numpy(),
            "expected_orientation": df["expected_orientation"].to_numpy(),
            "rating": parsed["rating"].to_numpy(),
            "orientation": parsed["orientation"].to_numpy(),
            "file": source,
            "line": [line_of(i, source) for i in df.index],
        },
        columns=list(CHECK_ROW_COLUMNS),
    )


def read_checked(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read judged control tables (CSV or Parquet) into one table of :func:`checked_rows`.

    Raises:
        TableError: A file is malformed, or two files hold the same judge.
    """
    frames, seen = [], {}
    for path in map(Path, paths):
        df = read_table_checked(path, what="judged control table")
        frame = checked_rows(df, str(path))
        for judge in dict.fromkeys(frame["judge"]):
            if judge in seen:
                raise TableError(f"{path}: judge {judge!r} is also in {seen[judge]}; give each judge's table once")
            seen[judge] = str(path)
        frames.append(frame)
    if not frames:
        raise TableError("no judged control tables given")
    return pd.concat(frames, ignore_index=True)
