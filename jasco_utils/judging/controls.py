"""Control answers with known labels: the judge check's measuring standard.

In JASCO (Wang et al., arXiv:2409.14526) the LLM judge is the measuring instrument: Table II
and Figure 2 are only as good as its ratings and orientations. The dataset makes an exact
check possible: every clip ships a designed correct answer, an audio-oriented answer and a
speech-oriented answer, and the judge prompt states rules for answers that describe
without inferring and for answers that are too general. :func:`build_controls` turns a set
of clips into ten control answers per clip, each with the label the prompt's rules give it.
Six are *verbatim* (:data:`VERBATIM_KINDS`: the dataset's own texts, or fixed ones):

- ``reference``: the clip's correct answer (``tgt_text``); rating 2, orientation Both;
- ``audio_only``: the clip's audio-oriented answer; rating 0, Audio;
- ``speech_only``: the clip's speech-oriented answer; rating 0, Speech;
- ``description``: ``The audio clip contains the sound of {audio_sound}. The speaker says
  "{spoken_text}".``; rating 0, Neither;
- ``generic``: :data:`GENERIC_ANSWER`, too general; rating 0, orientation not checked;
- ``other_clip``: another clip's correct answer (:func:`other_clip_map`); rating 0,
  orientation not checked.

The last three rules are the prompt's own: an answer that only describes the sound and the
speech is "rated directly 0" and its orientation is "directly 'Neither'"; an answer "too
general such as 'talking to someone'" scores 0; another clip's answer is "completely
misaligned". Clip ``k`` is asked instruction ``((k - 1) mod 8) + 1``, so a set of clips uses
all eight instructions.

Four are *paraphrased* (:data:`PARAPHRASED_KINDS`), written for the project and shipped in
``judging/data/paraphrases.csv`` (derived from the dataset, CC BY-NC 4.0; its README gives
each label's reasons): a judge that matches text against the designed answers gets the
verbatim kinds right trivially, so only these say whether it reads meaning:

- ``reference_paraphrase``: the correct answer reworded, keyword meaning kept; 2, Both;
- ``audio_only_paraphrase``: the audio-oriented answer reworded; 0, Audio;
- ``speech_only_paraphrase``: the speech-oriented answer reworded; 0, Speech;
- ``both_separate``: one inference from the sound and one from the speech, side by side,
  without the joint one; 1, Both (Score1: "based on both ... not the most possible").

Each paraphrase row records the SHA-256 of the designed answers it rewords
(:func:`design_digest`), so a manifest whose answers differ is refused rather than checked
against the wrong labels; ``kinds=VERBATIM_KINDS`` builds the verbatim kinds alone.

A control table is an outputs table (:data:`~jasco_utils.data.manifest.MANIFEST_COLUMNS`
with ``allm_output`` filled, ``model`` = :data:`CONTROL_MODEL`) plus :data:`CONTROL_COLUMNS`.
:func:`jasco_utils.judging.run.judge_controls` rates one with one judge through the normal judging path
(:func:`jasco_utils.judging.run.judge_rows`: same prompts, settings, store, cache and progress)
and writes the judged control table; :mod:`jasco_utils.analysis.judge_check` measures it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from jasco_utils.core.io import TableError, line_of, read_table_checked, write_csv
from jasco_utils.core.paths import PACKAGE_DIR
from jasco_utils.data.manifest import (
    INSTRUCTIONS,
    MANIFEST_COLUMNS,
    build_manifest,
    clip_ids,
    instruction_index,
)
from jasco_utils.judging.parsing import (
    AUDIO,
    BOTH,
    NEITHER,
    ORIENTATIONS,
    RATINGS,
    SPEECH,
)

#: The ALLM name of a control table's rows.
CONTROL_MODEL = "judge-check"
#: Columns a control table has beside an outputs table's.
CONTROL_COLUMNS: tuple[str, ...] = ("control_kind", "expected_rating", "expected_orientation")
#: The too-general answer: the judge prompt's own example of one.
GENERIC_ANSWER = "They are talking to someone."
#: The description-only answer: the judge prompt's own example, filled with the clip's sound and speech.
DESCRIPTION_TEMPLATE = 'The audio clip contains the sound of {audio_sound}. The speaker says "{spoken_text}".'
#: Verbatim control kind -> (expected rating, expected orientation or ``None`` where not checked).
VERBATIM_KINDS: dict[str, tuple[int, str | None]] = {
    "reference": (2, BOTH),
    "audio_only": (0, AUDIO),
    "speech_only": (0, SPEECH),
    "description": (0, NEITHER),
    "generic": (0, None),
    "other_clip": (0, None),
}
#: Paraphrased control kind -> (expected rating, expected orientation); texts in :data:`PARAPHRASES_PATH`.
PARAPHRASED_KINDS: dict[str, tuple[int, str | None]] = {
    "reference_paraphrase": (2, BOTH),
    "audio_only_paraphrase": (0, AUDIO),
    "speech_only_paraphrase": (0, SPEECH),
    "both_separate": (1, BOTH),
}
#: Every control kind, in the order a control table lists a clip's rows.
CONTROL_KINDS: dict[str, tuple[int, str | None]] = {**VERBATIM_KINDS, **PARAPHRASED_KINDS}
#: The groups the judge check reports apart; a judge is called usable on ``paraphrased`` only.
KIND_GROUPS: dict[str, tuple[str, ...]] = {"verbatim": tuple(VERBATIM_KINDS), "paraphrased": tuple(PARAPHRASED_KINDS)}
#: The paraphrased controls (one row per clip and kind), shipped in the package.
PARAPHRASES_PATH = PACKAGE_DIR / "judging" / "data" / "paraphrases.csv"
#: Its columns.
PARAPHRASE_COLUMNS: tuple[str, ...] = (
    "id",
    "control_kind",
    "answer",
    "expected_rating",
    "expected_orientation",
    "design_sha256",
)
#: File name of the control table in a judge-check folder (judged tables are ``CONTROLS_STEM__KEY.csv``).
CONTROLS_STEM = CONTROL_MODEL


def instruction_for_clip(clip: int) -> int:
    """The instruction (1-8) clip ``clip`` is asked in the judge check: ``((clip - 1) mod 8) + 1``.

    >>> [instruction_for_clip(k) for k in (1, 8, 9, 52, 80)]
    [1, 8, 1, 4, 8]
    """
    return (int(clip) - 1) % len(INSTRUCTIONS) + 1


def other_clip_map(answers: dict[int, str]) -> dict[int, int]:
    """The fixed derangement of ``other_clip``: clip -> the clip whose correct answer it gets.

    No clip maps to itself or to a clip with the same correct answer (clips 52 and 53 share
    theirs). Rule: order the clips by ascending id, but with the clips sharing a correct
    answer placed together where the first of them stands; then map the clip at position
    ``i`` to the one at ``(i + m) mod n``, where ``m`` is the size of the largest group of
    clips sharing an answer (1 when all answers differ: each clip gets the next clip's
    answer, the last the first's). Groups are runs of at most ``m`` positions, so a shift by
    ``m`` leaves every group whenever ``2 m <= n``; when ``2 m > n`` no such map exists.

    Args:
        answers: Clip id -> its correct answer (compared after stripping spaces).

    Raises:
        ValueError: Fewer than two clips, or more than half of them share one answer.

    >>> other_clip_map({1: "a", 2: "b", 3: "c"})
    {1: 2, 2: 3, 3: 1}
    >>> other_clip_map({51: "a", 52: "kite", 53: "kite", 54: "b"})
    {51: 53, 52: 54, 53: 51, 54: 52}
    """
    groups: dict[str, list[int]] = {}
    for clip in sorted(answers):
        groups.setdefault(str(answers[clip]).strip(), []).append(clip)
    order = [clip for members in groups.values() for clip in members]
    n, m = len(order), max((len(g) for g in groups.values()), default=0)
    if n < 2 or 2 * m > n:
        raise ValueError(
            f"other_clip needs clips whose correct answers differ: {m} of clips {sorted(answers)} share one "
            "answer (at most half may); add clips with other answers"
        )
    return {order[i]: order[(i + m) % n] for i in range(n)}


def design_digest(row: Mapping[str, object]) -> str:
    """SHA-256 (16 hex digits) of a clip's designed answers and keywords, as a manifest row holds them.

    >>> design_digest({"tgt_text": "a", "audio_only_target": "b", "speech_only_target": "c", "target_keywords": "k"})
    'd4a329d04bd6c63b'
    """
    blob = "\x1f".join(str(row[c]) for c in ("tgt_text", "audio_only_target", "speech_only_target", "target_keywords"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_paraphrases(path: str | os.PathLike[str] = PARAPHRASES_PATH) -> pd.DataFrame:
    """Read and check the paraphrased controls: :data:`PARAPHRASE_COLUMNS`, one row per clip and kind.

    Each row's kind is one of :data:`PARAPHRASED_KINDS` with that kind's labels, its answer is
    not empty, and no (clip, kind) appears twice.

    Raises:
        TableError: Naming the file, line and column at fault.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PARAPHRASE_COLUMNS if c not in df.columns]
    if missing:
        raise TableError(f"{path}: lacks column(s) {missing}; a paraphrase file has {list(PARAPHRASE_COLUMNS)}")
    for i, row in df.iterrows():
        where = f"{path}: line {line_of(i, path)}"
        if not (row["id"].isdigit() and 1 <= int(row["id"]) <= 80):
            raise TableError(f"{where}, column 'id': {row['id']!r} is not a clip id 1..80")
        if row["control_kind"] not in PARAPHRASED_KINDS:
            raise TableError(
                f"{where}, column 'control_kind': {row['control_kind']!r} is not one of {list(PARAPHRASED_KINDS)}"
            )
        rating, orientation = PARAPHRASED_KINDS[row["control_kind"]]
        for col, want in (("expected_rating", str(rating)), ("expected_orientation", orientation or "")):
            if row[col] != want:
                raise TableError(f"{where}, column {col!r}: {row[col]!r}; kind {row['control_kind']} expects {want!r}")
        if not row["answer"].strip():
            raise TableError(f"{where}, column 'answer': empty")
    dup = df.duplicated(["id", "control_kind"])
    if dup.any():
        i = int(dup.idxmax())
        raise TableError(
            f"{path}: line {line_of(i, path)}: clip {df.at[i, 'id']} has kind {df.at[i, 'control_kind']} twice"
        )
    return df.assign(id=clip_ids(df["id"]))


def _paraphrases_for(rows: Mapping[int, pd.Series], kinds: Iterable[str]) -> dict[tuple[int, str], str]:
    """(clip, kind) -> answer for the paraphrased kinds asked, checked against the clips' designed answers."""
    kinds = [k for k in kinds if k in PARAPHRASED_KINDS]
    if not kinds:
        return {}
    table = read_paraphrases().set_index(["id", "control_kind"])
    out = {}
    for clip, row in rows.items():
        for kind in kinds:
            if (clip, kind) not in table.index:
                raise ValueError(f"{PARAPHRASES_PATH}: no {kind} row for clip {clip}")
            entry = table.loc[(clip, kind)]
            if entry["design_sha256"] != design_digest(row):
                raise ValueError(
                    f"{PARAPHRASES_PATH}: clip {clip}'s {kind} rewords other designed answers than this manifest's "
                    f"(design_sha256 {entry['design_sha256']}, the manifest's {design_digest(row)}); the paraphrases "
                    "are of JASCO v0: build the verbatim kinds alone (kinds=VERBATIM_KINDS)"
                )
            out[(clip, kind)] = entry["answer"]
    return out


def controls_from_manifest(
    manifest: pd.DataFrame, clips: list[int] | None = None, kinds: Iterable[str] | None = None
) -> pd.DataFrame:
    """The control table of some clips of a manifest (:func:`jasco_utils.data.manifest.build_manifest`).

    Args:
        manifest: Manifest rows (all 8 instructions of each clip used).
        clips: Clip ids (default: every clip of the manifest).
        kinds: The control kinds (default :data:`CONTROL_KINDS`, all ten).

    Returns:
        One row per clip and kind (ascending id; kinds in :data:`CONTROL_KINDS`' order): the
        manifest's columns with ``allm_output`` filled, ``model`` = :data:`CONTROL_MODEL`, then
        :data:`CONTROL_COLUMNS` (``expected_orientation`` empty where not checked).

    Raises:
        ValueError: A clip is not in the manifest, an unknown kind, :func:`other_clip_map` has
            no map, or a paraphrase is missing or rewords other answers than the manifest's.
    """
    asked = list(CONTROL_KINDS) if kinds is None else list(kinds)
    unknown = sorted(set(asked) - set(CONTROL_KINDS))
    if unknown or not asked:
        raise ValueError(f"control kinds must be some of {list(CONTROL_KINDS)}, not {unknown or 'none'}")
    kinds = [k for k in CONTROL_KINDS if k in set(asked)]
    man = manifest.assign(_id=pd.to_numeric(manifest["id"]).astype(int), _k=manifest["prompt"].map(instruction_index))
    have = set(man["_id"])
    clips = sorted(have if clips is None else {int(c) for c in clips})
    missing = [c for c in clips if c not in have]
    if missing:
        raise ValueError(f"clip(s) {missing} are not in the manifest")
    row_of = {c: man[(man["_id"] == c) & (man["_k"] == instruction_for_clip(c) - 1)].iloc[0] for c in clips}
    other = other_clip_map({c: row_of[c]["tgt_text"] for c in clips}) if "other_clip" in kinds else {}
    paraphrased = _paraphrases_for(row_of, kinds)
    rows = []
    for clip in clips:
        base = {col: row_of[clip][col] for col in MANIFEST_COLUMNS}
        answers = {
            "reference": base["tgt_text"],
            "audio_only": base["audio_only_target"],
            "speech_only": base["speech_only_target"],
            "description": DESCRIPTION_TEMPLATE.format(
                audio_sound=base["audio_sound"], spoken_text=base["spoken_text"]
            ),
            "generic": GENERIC_ANSWER,
            "other_clip": row_of[other[clip]]["tgt_text"] if other else "",
            **{kind: text for (c, kind), text in paraphrased.items() if c == clip},
        }
        for kind in kinds:
            rating, orientation = CONTROL_KINDS[kind]
            rows.append(
                {
                    **base,
                    "allm_output": answers[kind],
                    "model": CONTROL_MODEL,
                    "control_kind": kind,
                    "expected_rating": rating,
                    "expected_orientation": orientation or "",
                }
            )
    return pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "model", *CONTROL_COLUMNS])


def build_controls(
    data_dir: str | os.PathLike[str] | None = None, clips: list[int] | None = None, kinds: Iterable[str] | None = None
) -> pd.DataFrame:
    """The control table of some clips (all 80 when ``None``), from the dataset folder.

    See :func:`controls_from_manifest`.
    """
    return controls_from_manifest(build_manifest(data_dir, clips=clips), kinds=kinds)


def check_controls(df: pd.DataFrame, source: str = "control table") -> pd.DataFrame:
    """Check the control columns of a control table (judged or not); return it with typed expectations.

    ``control_kind`` must be filled; ``expected_rating`` empty or 0, 1, 2;
    ``expected_orientation`` empty or one of Audio, Speech, Both, Neither (empty: not
    checked); ``id`` a clip id 1-80 (the clip is the bootstrap's unit).

    Returns:
        A copy with ``expected_rating`` as ``Int64`` (missing where not checked) and
        ``expected_orientation`` as text ("" where not checked).

    Raises:
        TableError: Naming the file, line and column at fault.
    """
    missing = [c for c in ("id", *CONTROL_COLUMNS) if c not in df.columns]
    if missing:
        raise TableError(
            f"{source}: lacks column(s) {missing}; a control table has the manifest's columns plus "
            f"{list(CONTROL_COLUMNS)} (see jasco_utils.judging.controls)"
        )
    out = df.reset_index(drop=True).copy()
    ids = pd.to_numeric(out["id"], errors="coerce")
    kind = out["control_kind"].astype(str).str.strip()
    rating = out["expected_rating"].map(lambda v: "" if pd.isna(v) else str(v).strip())
    orient = out["expected_orientation"].map(lambda v: "" if pd.isna(v) else str(v).strip())
    checks = [
        ("id", ids.isna() | (ids != ids.round()) | (ids < 1) | (ids > 80), "is not a clip id 1..80"),
        ("control_kind", kind == "", "is empty"),
        (
            "expected_rating",
            ~rating.isin(["", *(str(r) for r in RATINGS), *(f"{r}.0" for r in RATINGS)]),
            "is not empty, 0, 1 or 2",
        ),
        ("expected_orientation", ~orient.isin(["", *ORIENTATIONS]), f"is not empty or one of {list(ORIENTATIONS)}"),
    ]
    for col, bad, what in checks:
        if bad.any():
            i = bad.idxmax()
            raise TableError(f"{source}: line {line_of(i, source)}, column {col!r}: {out.at[i, col]!r} {what}")
    out["id"] = ids.astype(int)
    out["control_kind"] = kind
    out["expected_rating"] = pd.array([int(float(r)) if r else None for r in rating], dtype="Int64")
    out["expected_orientation"] = orient
    return out


def read_controls(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a control table (CSV or Parquet) and check it (:func:`check_controls`)."""
    path = Path(path)
    df = read_table_checked(path, what="control table")
    return check_controls(df, str(path))


def write_controls(
    clips: list[int] | None, data_dir: str | os.PathLike[str] | None, out_dir: str | os.PathLike[str]
) -> Path:
    """Build the control table of ``clips`` (all 80 when ``None``) and write ``OUT_DIR/judge-check.csv``."""
    return write_csv(build_controls(data_dir, clips), Path(out_dir) / f"{CONTROLS_STEM}.csv")
