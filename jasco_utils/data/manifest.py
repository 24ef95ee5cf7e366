"""The 640-row inference manifest: 80 clips x the paper's 8 instructions.

Columns and row order are those of the original ``evaluation/example.csv`` (Wang et al.,
arXiv:2409.14526): clip by clip, and within a clip the 8 instructions in the paper's order.
Users fill ``allm_output`` with their ALLM's answer to (``audio``, ``prompt``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
import soundfile as sf

from jasco_utils.core.io import TableError, line_of, write_csv
from jasco_utils.core.paths import dataset_dir
from jasco_utils.data.clips import clip_file
from jasco_utils.data.dataset import N_CLIPS, load_metadata

#: The 8 instructions every clip is asked with, exact text, in the paper's order.
INSTRUCTIONS: tuple[str, ...] = (
    "Based on both the audio sound and the spoken text, infer what the speakers are doing specifically?",
    "Based on both the spoken text and the audio sound, infer what the speakers are doing specifically?",
    "What is the spoken text? What is the audio sound? Based on both the spoken text and the audio sound, "
    "infer what the speakers are doing specifically?",
    "What is the audio sound? What is the spoken text? Based on both the audio sound and the spoken text, "
    "infer what the speakers are doing specifically?",
    "What is the spoken text? What is the audio sound? Based on both the spoken text and the audio sound, "
    "infer what specific scenario are the speakers in?",
    "What is the audio sound? What is the spoken text? Based on both the audio sound and the spoken text, "
    "infer what specific scenario are the speakers in?",
    "What sound can you hear? What does the speaker say? Guess what activity the speakers are engaged in "
    "using both the audio sound and the spoken text.",
    "What does the speaker say? What sound can you hear? Guess what activity the speakers are engaged in "
    "using both the spoken text and the audio sound.",
)

#: Columns of the manifest, in the order of the original ``example.csv``.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "id",
    "audio",
    "n_frames",
    "audio_sound",
    "spoken_text",
    "prompt",
    "with_speech",
    "audio_only_target",
    "speech_only_target",
    "target_keywords",
    "tgt_text",
    "allm_output",
)

#: Manifest column -> ``v0.csv`` column it is copied from.
FROM_METADATA: dict[str, str] = {
    "audio_sound": "Audio",
    "spoken_text": "Speech",
    "audio_only_target": "Audio-Only Answer",
    "speech_only_target": "Speech-Only Answer",
    "target_keywords": "Correct Answer Keyword",
    "tgt_text": "Correct Answer",
}

#: The ``audio`` cell the original ``example.csv`` holds (a placeholder for the data folder).
ORIGINAL_AUDIO_PATTERN = "{{data_folder}}/dataset/v0/{clip}"


def instruction_index(prompt: str) -> int | None:
    """0-based position of ``prompt`` among :data:`INSTRUCTIONS`, or ``None``."""
    try:
        return INSTRUCTIONS.index(prompt)
    except ValueError:
        return None


def build_manifest(
    data_dir: str | os.PathLike[str] | None = None,
    clips: list[int] | None = None,
    original_layout: bool = False,
) -> pd.DataFrame:
    """Build the inference manifest.

    Args:
        data_dir: Dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        clips: Clip ids to include (all 80 when ``None``), kept in ascending order.
        original_layout: Reproduce ``example.csv`` exactly: ``audio`` as the placeholder
            ``{data_folder}/dataset/v0/N.wav`` and ``allm_output`` as ``output_1`` ...
            ``output_8``. Otherwise ``audio`` is the clip's absolute path and
            ``allm_output`` is empty, ready to fill.

    Returns:
        One row per (clip, instruction), clip-major, with :data:`MANIFEST_COLUMNS`.
    """
    root = dataset_dir(data_dir)
    meta = load_metadata(root).set_index("audio_id")
    wanted = sorted(set(meta.index) if clips is None else {int(c) for c in clips})
    unknown = [c for c in wanted if c not in meta.index]
    if unknown:
        raise ValueError(f"clip id(s) {unknown} are not in {root / 'v0.csv'} (ids are 1..{N_CLIPS})")
    rows = []
    for cid in wanted:
        m = meta.loc[cid]
        wav = root / clip_file(cid)
        if not wav.is_file():
            raise FileNotFoundError(f"{wav}: clip {cid} is missing; run `jasco data download`")
        try:
            n_frames = sf.info(str(wav)).frames
        except (sf.LibsndfileError, RuntimeError) as e:
            raise TableError(
                f"{wav}: clip {cid} cannot be decoded as audio ({e}); re-run `jasco data download`, "
                "and `jasco data validate` to check the others"
            ) from None
        audio = ORIGINAL_AUDIO_PATTERN.format(clip=clip_file(cid)) if original_layout else str(wav)
        for k, instruction in enumerate(INSTRUCTIONS):
            row = {
                "id": cid,
                "audio": audio,
                "n_frames": n_frames,
                "prompt": instruction,
                "with_speech": True,
                "allm_output": f"output_{k + 1}" if original_layout else "",
            }
            row.update({col: m[src] for col, src in FROM_METADATA.items()})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def write_manifest(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a manifest as CSV, atomically."""
    return write_csv(df, path)


def check_rows(df: pd.DataFrame, path: str | os.PathLike[str], what: str = "table") -> None:
    """Check that a table has the manifest's row structure.

    Every ``id`` is an integer in 1..80; every ``prompt`` is one of the 8 instructions; every
    clip present has each instruction exactly once. A subset of the clips is allowed.

    Raises:
        TableError: Naming the file, line and column of the first rows at fault.
    """
    problems: list[str] = []
    ids = pd.to_numeric(df["id"], errors="coerce")
    for i in df.index[ids.isna() | (ids != ids.round()) | (ids < 1) | (ids > N_CLIPS)][:5]:
        problems.append(f"line {line_of(i, path)}, column 'id': {df.at[i, 'id']!r} is not a clip id 1..{N_CLIPS}")
    kinds = df["prompt"].map(instruction_index)
    for i in df.index[kinds.isna()][:5]:
        problems.append(
            f"line {line_of(i, path)}, column 'prompt': {df.at[i, 'prompt'][:80]!r} is not one of the 8 JASCO instructions"
        )
    if not problems:
        pairs = pd.DataFrame({"id": ids.astype(int), "k": kinds.astype(int)})
        dups = pairs[pairs.duplicated(keep=False)]
        for (cid, k), grp in list(dups.groupby(["id", "k"]))[:5]:
            lines = ", ".join(str(line_of(i, path)) for i in grp.index)
            problems.append(f"lines {lines}: clip {cid} has instruction {k + 1} more than once")
        counts = pairs.groupby("id")["k"].nunique()
        for cid in counts[counts < len(INSTRUCTIONS)].head(5).index:
            have = sorted(pairs.loc[pairs["id"] == cid, "k"] + 1)
            lack = sorted(set(range(1, len(INSTRUCTIONS) + 1)) - set(have))
            problems.append(f"clip {cid} lacks instruction(s) {lack} (each clip needs all 8)")
    if problems:
        raise TableError(f"{path}: {what} is malformed:\n  " + "\n  ".join(problems))


def clip_ids(ids: pd.Series) -> pd.Series:
    """A checked table's ``id`` column as whole numbers (:func:`check_rows` accepts ``1.0`` for clip 1).

    >>> clip_ids(pd.Series(["1", "2.0", 3])).tolist()
    [1, 2, 3]
    """
    return pd.to_numeric(ids).astype(int)


def format_clip_list(clips: list[int]) -> str:
    """Clip ids as the ``--clips`` flag takes them, runs joined.

    >>> format_clip_list([1, 2, 3, 7, 9, 10])
    '1-3,7,9-10'
    """
    parts: list[str] = []
    for c in sorted(set(clips)):
        if parts and c == int(parts[-1].rsplit("-", 1)[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{c}"
        else:
            parts.append(str(c))
    return ",".join(parts)


def select_clips(
    df: pd.DataFrame, clips: list[int] | None = None, limit: int | None = None, source: str = "table"
) -> pd.DataFrame:
    """The rows of some clips only: those in ``clips``, then the first ``limit`` of them.

    A subset is whole clips (each with its 8 instructions), so Best-Mean stays defined.

    Raises:
        ValueError: A clip in ``clips`` is not in the table, or ``limit`` is below 1; the
            message names the clips the table has.
    """
    ids = pd.to_numeric(df["id"], errors="coerce")
    have = sorted({int(c) for c in ids.dropna()})
    if clips is not None:
        absent = sorted(set(clips) - set(have))
        if absent:
            raise ValueError(
                f"{source}: clip(s) {format_clip_list(absent)} are not in it (it has clips "
                f"{format_clip_list(have)}); choose --clips among those"
            )
        have = sorted(set(clips))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be 1 or more clips, not {limit}")
        have = have[:limit]
    return df[ids.isin(have)].reset_index(drop=True) if (clips is not None or limit is not None) else df


def parse_clip_list(spec: str) -> list[int]:
    """Parse ``"1-5,9,12"`` into ``[1, 2, 3, 4, 5, 9, 12]``: clip ids 1..80, at least one.

    The ``--clips`` option's type, and the notebooks' ``clips`` parameter: an error is an
    :class:`argparse.ArgumentTypeError`, which the command line shows as the option's message.

    >>> parse_clip_list("1-3,7")
    [1, 2, 3, 7]
    >>> parse_clip_list("3-1")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: bad clip list '3-1': the range 3-1 runs backwards; write 1-3
    """
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad clip list {spec!r}: use e.g. 1-5,9,12") from None
        if first > last:
            raise argparse.ArgumentTypeError(
                f"bad clip list {spec!r}: the range {part} runs backwards; write {last}-{first}"
            )
        if first < 1 or last > N_CLIPS:
            raise argparse.ArgumentTypeError(f"bad clip list {spec!r}: clip ids are 1..{N_CLIPS}")
        out.extend(range(first, last + 1))
    if not out:
        raise argparse.ArgumentTypeError(f"bad clip list {spec!r}: no clip; use e.g. 1-5,9,12")
    return sorted(set(out))
