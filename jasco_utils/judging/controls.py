"""Control answers with known labels: the judge check's measuring standard.

In JASCO (Wang et al., arXiv:2409.14526) the LLM judge is the measuring instrument: Table II
and Figure 2 are only as good as its ratings and orientations. The dataset makes an exact
check possible: every clip ships a designed correct answer, an audio-oriented answer and a
speech-oriented answer, and the judge prompt states rules for answers that describe
without inferring and for answers that are too general. :func:`build_controls` turns a set
of clips into six control answers per clip, each with the label the prompt's rules give it:

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

A control table is an outputs table (:data:`~jasco_utils.data.manifest.MANIFEST_COLUMNS`
with ``allm_output`` filled, ``model`` = :data:`CONTROL_MODEL`) plus :data:`CONTROL_COLUMNS`.
:func:`judge_controls` rates one with one judge through the normal judging path
(:func:`jasco_utils.judging.judge.judge_table`: same prompts, store, cache and progress)
and writes the judged control table; :mod:`jasco_utils.analysis.judge_check` measures it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from jasco_utils.config import ModelSpec
from jasco_utils.data.manifest import (
    INSTRUCTIONS,
    MANIFEST_COLUMNS,
    build_manifest,
    instruction_index,
)
from jasco_utils.io import TableError, line_of, make_folder, read_table_checked, write_pair
from jasco_utils.judging.judge import judge_table
from jasco_utils.judging.parsing import (
    AUDIO,
    BOTH,
    NEITHER,
    ORIENTATIONS,
    RATINGS,
    SPEECH,
)
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE, structured_output
from jasco_utils.judging.run import JudgeRun
from jasco_utils.models import SamplingConfig, check_structured, make_backend
from jasco_utils.models.store import Store
from jasco_utils.paths import judged_name

#: The ALLM name of a control table's rows.
CONTROL_MODEL = "judge-check"
#: Columns a control table has beside an outputs table's.
CONTROL_COLUMNS: tuple[str, ...] = ("control_kind", "expected_rating", "expected_orientation")
#: The too-general answer: the judge prompt's own example of one.
GENERIC_ANSWER = "They are talking to someone."
#: The description-only answer: the judge prompt's own example, filled with the clip's sound and speech.
DESCRIPTION_TEMPLATE = 'The audio clip contains the sound of {audio_sound}. The speaker says "{spoken_text}".'
#: Control kind -> (expected rating, expected orientation or ``None`` where not checked).
CONTROL_KINDS: dict[str, tuple[int, str | None]] = {
    "reference": (2, BOTH),
    "audio_only": (0, AUDIO),
    "speech_only": (0, SPEECH),
    "description": (0, NEITHER),
    "generic": (0, None),
    "other_clip": (0, None),
}
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


def controls_from_manifest(manifest: pd.DataFrame, clips: list[int] | None = None) -> pd.DataFrame:
    """The control table of some clips of a manifest (:func:`jasco_utils.data.manifest.build_manifest`).

    Args:
        manifest: Manifest rows (all 8 instructions of each clip used).
        clips: Clip ids (default: every clip of the manifest).

    Returns:
        Six rows per clip (ascending id), in :data:`CONTROL_KINDS`' order: the manifest's
        columns with ``allm_output`` filled, ``model`` = :data:`CONTROL_MODEL`, then
        :data:`CONTROL_COLUMNS` (``expected_orientation`` empty where not checked).

    Raises:
        ValueError: A clip is not in the manifest, or :func:`other_clip_map` has no map.
    """
    man = manifest.assign(_id=pd.to_numeric(manifest["id"]).astype(int),
                          _k=manifest["prompt"].map(instruction_index))
    have = set(man["_id"])
    clips = sorted(have if clips is None else {int(c) for c in clips})
    missing = [c for c in clips if c not in have]
    if missing:
        raise ValueError(f"clip(s) {missing} are not in the manifest")
    row_of = {c: man[(man["_id"] == c) & (man["_k"] == instruction_for_clip(c) - 1)].iloc[0] for c in clips}
    other = other_clip_map({c: row_of[c]["tgt_text"] for c in clips})
    rows = []
    for clip in clips:
        base = {col: row_of[clip][col] for col in MANIFEST_COLUMNS}
        answers = {
            "reference": base["tgt_text"],
            "audio_only": base["audio_only_target"],
            "speech_only": base["speech_only_target"],
            "description": DESCRIPTION_TEMPLATE.format(audio_sound=base["audio_sound"], spoken_text=base["spoken_text"]),
            "generic": GENERIC_ANSWER,
            "other_clip": row_of[other[clip]]["tgt_text"],
        }
        for kind, (rating, orientation) in CONTROL_KINDS.items():
            rows.append({**base, "allm_output": answers[kind], "model": CONTROL_MODEL, "control_kind": kind,
                         "expected_rating": rating, "expected_orientation": orientation or ""})
    return pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "model", *CONTROL_COLUMNS])


def build_controls(data_dir: str | os.PathLike[str] | None = None, clips: list[int] | None = None) -> pd.DataFrame:
    """The control table of some clips (all 80 when ``None``), from the dataset folder.

    See :func:`controls_from_manifest`.
    """
    return controls_from_manifest(build_manifest(data_dir, clips=clips))


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
        raise TableError(f"{source}: lacks column(s) {missing}; a control table has the manifest's columns plus "
                         f"{list(CONTROL_COLUMNS)} (see jasco_utils.judging.controls)")
    out = df.reset_index(drop=True).copy()
    ids = pd.to_numeric(out["id"], errors="coerce")
    kind = out["control_kind"].astype(str).str.strip()
    rating = out["expected_rating"].map(lambda v: "" if pd.isna(v) else str(v).strip())
    orient = out["expected_orientation"].map(lambda v: "" if pd.isna(v) else str(v).strip())
    checks = [
        ("id", ids.isna() | (ids != ids.round()) | (ids < 1) | (ids > 80), "is not a clip id 1..80"),
        ("control_kind", kind == "", "is empty"),
        ("expected_rating", ~rating.isin(["", *(str(r) for r in RATINGS), *(f"{r}.0" for r in RATINGS)]),
         "is not empty, 0, 1 or 2"),
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


def judge_controls(
    spec: ModelSpec,
    controls: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    store: str | os.PathLike[str],
    sampling: SamplingConfig | None = None,
    structured: str | None = None,
    max_explanation_chars: int | None = None,
    reask: bool = True,
    chunk_size: int = 256,
    progress: bool = True,
) -> JudgeRun:
    """Rate a control table with one judge; write ``CONTROLS__KEY.csv`` and ``.parquet`` in ``out_dir``.

    The rows go through :func:`jasco_utils.judging.judge.judge_table` as any outputs table
    does (the judge's prompt, the call store, re-ask, progress); the control columns are
    carried over by row order.

    Args:
        spec: The judge (its ``template`` picks the prompt).
        controls: The control table (:func:`build_controls`, written as CSV or Parquet).
        out_dir: Folder of the judged control tables.
        store: The call store (cache and resume).
        sampling: Sampling settings (default greedy, seed 0, the spec's ``max_tokens`` or 1000).
        structured: ``regex``, ``json`` or ``None``.
        max_explanation_chars: With ``structured``: bound on each explanation.
        reask: Re-ask once where the orientation cannot be read.
        chunk_size: Rows per engine call.
        progress: Show a progress bar.

    Returns:
        The paths written and the run's counts.
    """
    spec.check()
    template = spec.template or DEFAULT_JUDGE_TEMPLATE
    sampling = sampling or SamplingConfig(max_tokens=spec.max_tokens or 1000)
    table_in = read_controls(controls)
    bad = table_in.index[table_in["prompt"].map(instruction_index).isna()] if "prompt" in table_in else []
    if len(bad):
        raise TableError(f"{controls}: line {line_of(bad[0], controls)}, column 'prompt': not one of the 8 JASCO instructions")
    check_structured(spec.engine, structured)
    make_folder(out_dir)
    constraint = structured_output(structured, template, max_explanation_chars)
    with Store(store) as st, make_backend(spec.engine, spec.model, **spec.options) as backend:
        table, stats = judge_table(
            table_in, backend, st, judge=spec.name, template=template, sampling=sampling, structured=constraint,
            reask=reask, chunk_size=chunk_size, progress=progress, source=str(controls), whole_clips=False,
        )
    for col in CONTROL_COLUMNS:
        table[col] = table_in[col].to_numpy()
    run = JudgeRun(spec, stats=stats)
    run.paths.extend(write_pair(table, Path(out_dir) / judged_name(Path(controls).stem, spec.key, ".csv")))
    return run
