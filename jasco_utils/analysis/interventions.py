"""Modality dependence measured by intervention: what an ALLM's scores and answers do when the
sound is suppressed, the speech masked or the audio replaced by its transcript.

Figure 2 of the JASCO paper (Wang et al., arXiv:2409.14526) says which modality an answer *looks*
like it came from, as a judge reads it. Here the question is causal: an ALLM answers the clips
again under the conditions of :mod:`jasco_utils.inference.interventions` (``NAME@CONDITION`` in a
run, :data:`jasco_utils.models.spec.CONDITIONS`) and its Best-Mean under each is compared, clip by
clip, with the original's:

- sound reliance = Best-Mean(original) - Best-Mean(``sound_suppressed``);
- speech reliance = Best-Mean(original) - Best-Mean(``speech_masked``);
- text sufficiency = Best-Mean(``transcript_only``) / Best-Mean(original);
- audio reliance = Best-Mean(original) - Best-Mean(``silence``);

each on the clips both were scored on, less the clips where the intervention does not do what it
claims (:func:`jasco_utils.inference.fidelity.failing_clips`), with 95 % intervals by resampling
clips (paired: a clip is drawn for both conditions at once), and the share of answers (and of a
judge's ratings) that changed.

:func:`label_check` holds the judges' labels against the interventions: an answer a judge calls
Speech-oriented should survive the sound's suppression, one it calls Audio-oriented the speech's
masking, more often than the judge's other answers do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from jasco_utils.analysis.averages import AVERAGE, USABLE_AVERAGE, usable_subset
from jasco_utils.analysis.bootstrap import bootstrap_interval, resample_indices
from jasco_utils.analysis.metrics import AUDIO, SPEECH, clip_table, in_order, prepare_rows
from jasco_utils.data.manifest import instruction_index
from jasco_utils.models.spec import CONDITION_SEP, CONDITIONS

#: The condition of an ALLM's own answers on the original clips.
ORIGINAL = "original"

#: Per condition: the name of what its paired comparison with the original measures, and how
#: (``difference``: original - condition; ``ratio``: condition / original).
MEASURES: dict[str, tuple[str, str]] = {
    "sound_suppressed": ("sound reliance", "difference"),
    "speech_masked": ("speech reliance", "difference"),
    "transcript_only": ("text sufficiency", "ratio"),
    "silence": ("audio reliance", "difference"),
}

#: Per orientation label: the condition that should leave an answer so labelled unchanged.
LABEL_CONDITIONS: dict[str, str] = {SPEECH: "sound_suppressed", AUDIO: "speech_masked"}

#: The columns of :func:`intervention_table`.
TABLE_COLUMNS = (
    "allm",
    "judge",
    "condition",
    "measure",
    "n_clips",
    "clips_left_out",
    "best_mean",
    "best_mean_ci_low",
    "best_mean_ci_high",
    "original_best_mean",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "answers_changed",
    "ratings_changed",
)


def split_condition(model: str) -> tuple[str, str]:
    """An ALLM's name and condition.

    >>> split_condition("Qwen2-Audio@speech_masked")
    ('Qwen2-Audio', 'speech_masked')
    >>> split_condition("Qwen2-Audio")
    ('Qwen2-Audio', 'original')
    >>> split_condition("name@with-at")
    ('name@with-at', 'original')
    """
    base, sep, condition = model.rpartition(CONDITION_SEP)
    return (base, condition) if sep and condition in CONDITIONS else (model, ORIGINAL)


def conditions_of(models: Iterable[str]) -> dict[str, list[str]]:
    """The ALLMs that answered under some condition, each with its conditions (in
    :data:`CONDITIONS` order); ALLMs without one are left out.

    >>> conditions_of(["A", "A@silence", "A@sound_suppressed", "B", "C@silence"])
    {'A': ['sound_suppressed', 'silence']}
    """
    models = list(models)
    present: dict[str, set[str]] = {}
    for m in models:
        base, condition = split_condition(m)
        if condition != ORIGINAL:
            present.setdefault(base, set()).add(condition)
    return {b: [c for c in CONDITIONS if c in present[b]] for b in in_order(present) if b in models}


def _by_condition(rows: pd.DataFrame) -> pd.DataFrame:
    """Scored rows, prepared (:func:`jasco_utils.analysis.metrics.prepare_rows`), with each row's
    ``allm`` and ``condition`` (:func:`split_condition`)."""
    prepared = prepare_rows(rows)
    split = prepared["model"].map(split_condition)
    return prepared.assign(allm=split.str[0], condition=split.str[1])


def _clip_best(prepared: pd.DataFrame, usable: Iterable[str] | None) -> pd.DataFrame:
    """Per (ALLM, condition, clip): each judge's best gated value, and the Average over judges
    (and over the usable judges, when the check finds some but not all usable): judges as columns."""
    clips = clip_table(prepared, by=("allm", "condition", "judge"))
    wide = clips.pivot_table(index=["allm", "condition", "id"], columns="judge", values="best_gated", sort=False)
    judges = in_order(clips["judge"])
    wide = wide.reindex(columns=judges)
    wide[AVERAGE] = wide[judges].mean(axis=1, skipna=False)
    covered = usable_subset(judges, usable)
    if covered:
        wide[USABLE_AVERAGE] = wide[covered].mean(axis=1, skipna=False)
    wide.attrs["judges"] = {j: [j] for j in judges} | {AVERAGE: judges} | ({USABLE_AVERAGE: covered} if covered else {})
    return wide


def _changed(a: pd.Series, b: pd.Series) -> float:
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return float((both["a"] != both["b"]).mean()) if len(both) else float("nan")


def _paired(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int, confidence: float) -> dict[str, float]:
    """Best-Mean of ``b`` (the condition), ``a - b`` and ``b / a`` with percentile intervals from
    the same resampled clips."""
    idx = resample_indices(len(a), n_resamples, seed)
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.stack([mb, ma - mb, np.where(ma > 0, mb / ma, np.nan)], axis=1)
        point = np.array([b.mean(), a.mean() - b.mean(), b.mean() / a.mean() if a.mean() > 0 else np.nan])
    lo, hi = bootstrap_interval(reps, point, None, confidence, "percentile")
    keys = ("best_mean", "difference", "ratio")
    out = {k: float(v) for k, v in zip(keys, point, strict=True)}
    for k, low, high in zip(keys, lo, hi, strict=True):
        out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float(low), float(high)
    return out


def _answer_changes(outputs: pd.DataFrame | None) -> dict[tuple[str, str], pd.Series]:
    """Per (ALLM, condition): its answers indexed by (clip, instruction number, 1-8)."""
    if outputs is None or outputs.empty:
        return {}
    out = {}
    for model, g in outputs.groupby("model", sort=False):
        key = split_condition(str(model))
        instruction = g["prompt"].map(instruction_index).astype(float) + 1
        index = pd.MultiIndex.from_arrays([g["id"].astype(int), instruction.fillna(0).astype(int)])
        out[key] = pd.Series(g["allm_output"].astype(str).str.strip().to_numpy(), index=index)
    return out


def intervention_table(
    rows: pd.DataFrame,
    outputs: pd.DataFrame | None = None,
    leave_out: Mapping[str, Iterable[int]] | None = None,
    usable: Iterable[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Best-Mean per ALLM, judge and condition, and each condition against the original clip.

    Args:
        rows: Scored rows (:meth:`jasco_utils.run.Run.scored`) of ALLMs and their ``NAME@CONDITION``s.
        outputs: The ALLMs' outputs tables (``model``, ``id``, ``prompt``, ``allm_output``),
            for the share of answers that changed; ``None``: that share is left empty.
        leave_out: Per condition, the clips to leave out (where the intervention fails).
        usable: The judges the run's judge check finds usable, for ``Average (usable judges)``.
        n_resamples, seed, confidence: The clip bootstrap.

    Returns:
        :data:`TABLE_COLUMNS`, one row per ALLM with conditions, judge (each, ``Average`` and, when
        some but not all are usable, ``Average (usable judges)``) and condition, ``original``
        first (its Best-Mean and interval over all its clips). A condition's row compares it with
        the original on the clips both have, less those left out (``clips_left_out``):
        ``original_best_mean`` is the original's Best-Mean on those clips, ``difference`` the
        original's minus the condition's, ``ratio`` the condition's over the original's (empty
        when the original's is 0); ``answers_changed``: the share of (clip, instruction) whose
        answer differs from the original's; ``ratings_changed``: the share whose gated rating
        (the judge's, or for an Average any of its judges') differs. Empty without conditions.
    """
    prepared = _by_condition(rows)
    wide = _clip_best(prepared, usable)
    gated = prepared.set_index(["allm", "condition", "judge", "id", "instruction"])["gated"].sort_index()
    answers = _answer_changes(outputs)
    leave_out = {c: {int(i) for i in ids} for c, ids in (leave_out or {}).items()}
    records = []
    for allm, conditions in conditions_of(prepared["model"]).items():
        for judge in wide.columns:
            original = wide.loc[(allm, ORIGINAL), judge].dropna()
            base = _paired(original.to_numpy(), original.to_numpy(), n_resamples, seed, confidence)
            records.append(
                {"allm": allm, "judge": judge, "condition": ORIGINAL, "n_clips": len(original), "clips_left_out": []}
                | {k: base[k] for k in ("best_mean", "best_mean_ci_low", "best_mean_ci_high")}
            )
            for condition in conditions:
                under = wide.loc[(allm, condition), judge].dropna()
                clips = sorted(set(original.index) & set(under.index))
                dropped = [c for c in clips if c in leave_out.get(condition, ())]
                kept = [c for c in clips if c not in dropped]
                record = {"allm": allm, "judge": judge, "condition": condition, "measure": MEASURES[condition][0]}
                record |= {"n_clips": len(kept), "clips_left_out": dropped}
                if kept:
                    a, b = original.loc[kept].to_numpy(), under.loc[kept].to_numpy()
                    record |= _paired(a, b, n_resamples, seed, confidence) | {"original_best_mean": float(a.mean())}
                    record |= _changes(gated, answers, allm, condition, wide.attrs["judges"][judge], kept)
                records.append(record)
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))


def _changes(
    gated: pd.Series, answers: dict, allm: str, condition: str, judges: list[str], kept: list[int]
) -> dict[str, float]:
    """The share of answers, and of ratings (any of ``judges``'), that changed on the kept clips."""
    out = {}
    if (allm, ORIGINAL) in answers and (allm, condition) in answers:
        a, b = answers[(allm, ORIGINAL)], answers[(allm, condition)]
        out["answers_changed"] = _changed(a[a.index.isin(kept, level=0)], b)
    before = gated.loc[(allm, ORIGINAL)].fillna(-1).unstack("judge").reindex(columns=judges)
    after = gated.loc[(allm, condition)].fillna(-1).unstack("judge").reindex(columns=judges)
    both = before.index[before.index.isin(kept, level="id")].intersection(after.index)
    changed = (before.loc[both] != after.loc[both]).any(axis=1)
    out["ratings_changed"] = float(changed.mean()) if len(changed) else float("nan")
    return out


def label_check(
    rows: pd.DataFrame,
    outputs: pd.DataFrame | None = None,
    leave_out: Mapping[str, Iterable[int]] | None = None,
) -> pd.DataFrame:
    """The judges' orientation labels held against the interventions, per judge.

    For each judge and label in :data:`LABEL_CONDITIONS` (Speech: ``sound_suppressed``; Audio:
    ``speech_masked``): of the original answers the judge labels so, on the clips where the
    ALLM also answered under that condition (less those left out), the share whose answer under
    the condition is the same text (``kept_answer``) and whose gated rating by the same judge is
    the same (``kept_rating``); beside them, the same shares for the judge's other labelled
    answers (``others_kept_answer``, ``others_kept_rating``). A judge whose labels mean what they
    say shows ``kept_*`` above ``others_kept_*``: a check on the ALLM's own answers, no designed
    controls.

    Returns:
        One row per (judge, label): ``judge``, ``label``, ``condition``, ``n_labelled``,
        ``kept_answer``, ``kept_rating``, ``n_others``, ``others_kept_answer``,
        ``others_kept_rating``. Empty when no ALLM answered under those conditions.
    """
    prepared = _by_condition(rows)
    answers = _answer_changes(outputs)
    leave_out = {c: {int(i) for i in ids} for c, ids in (leave_out or {}).items()}
    key = ["allm", "judge", "id", "instruction"]
    records = []
    for judge in in_order(prepared["judge"]):
        for label, condition in LABEL_CONDITIONS.items():
            mine = prepared[prepared["judge"] == judge]
            before = mine[mine["condition"] == ORIGINAL].set_index(key)
            after = mine[mine["condition"] == condition].set_index(key)
            both = before.join(after[["gated"]].rename(columns={"gated": "gated_after"}), how="inner")
            both = both[~both.index.get_level_values("id").isin(leave_out.get(condition, set()))]
            if both.empty:
                continue
            both["same_rating"] = both["gated"].fillna(-1) == both["gated_after"].fillna(-1)
            both["same_answer"] = [
                _same_answer(answers, allm, condition, clip, ins) for allm, _, clip, ins in both.index
            ]
            labelled = both["orientation"] == label
            others = both["orientation"].isin([AUDIO, SPEECH, "Both"]) & ~labelled
            records.append(
                {
                    "judge": judge,
                    "label": label,
                    "condition": condition,
                    "n_labelled": int(labelled.sum()),
                    "kept_answer": _share(both.loc[labelled, "same_answer"]),
                    "kept_rating": _share(both.loc[labelled, "same_rating"]),
                    "n_others": int(others.sum()),
                    "others_kept_answer": _share(both.loc[others, "same_answer"]),
                    "others_kept_rating": _share(both.loc[others, "same_rating"]),
                }
            )
    return pd.DataFrame.from_records(records, columns=LABEL_COLUMNS)


#: The columns of :func:`label_check`.
LABEL_COLUMNS = [
    "judge",
    "label",
    "condition",
    "n_labelled",
    "kept_answer",
    "kept_rating",
    "n_others",
    "others_kept_answer",
    "others_kept_rating",
]


def _same_answer(answers: dict, allm: str, condition: str, clip: int, instruction: int) -> float:
    try:
        return float(answers[(allm, ORIGINAL)][(clip, instruction)] == answers[(allm, condition)][(clip, instruction)])
    except KeyError:
        return float("nan")


def _share(values: pd.Series) -> float:
    values = values.astype(float).dropna()
    return float(values.mean()) if len(values) else float("nan")
