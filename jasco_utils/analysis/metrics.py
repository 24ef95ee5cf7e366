"""The paper's metrics, each defined once: Best-Mean and modality dependence (arXiv:2409.14526).

Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning", report Best-Mean
(Table II) and modality dependence (Figure 2). Input is a table of *scored rows*, one per
(model, judge, clip ``id``, ``instruction``), with ``rating`` (0, 1, 2 or missing) and
``orientation`` (``Audio``, ``Speech``, ``Both``, ``Neither`` or missing).

From scored rows to numbers, in three steps:

1. **Per response**, the gating rule (:func:`gate`, the original script's): a rating counts
   only when the orientation is Both, else 0; an unreadable rating counts 0.
2. **Per clip** (:func:`clip_table`): the best gated and ungated value of the clip's
   responses and its counts (Audio, Both, Speech, Neither, unparsed, responses).
3. **Per metric**, one registered function of the per-clip values and clip weights
   (:data:`METRICS`, :func:`register_metric`). Weights 1 give the point value; the bootstrap
   (:mod:`jasco_utils.analysis.bootstrap`) passes resampled weights (how often each clip is
   drawn) and leave-one-clip-out weights (the jackknife), so the point value and every
   interval come from the same definition:

   - ``best_mean`` (Table II): the mean over clips of each clip's best gated value;
   - ``best_mean_ungated``: the same without the Both condition (an extra column, not the
     paper's);
   - ``audio_pct``, ``both_pct``, ``speech_pct`` (Figure 2): the shares of Audio, Both and
     Speech among the responses with one of those orientations, in percent (Neither and
     unreadable orientations are left out of the denominator; they are counted).

The **Average** over judges (the paper's "Average" row), and the Average over the judges
the judge check finds usable, are :mod:`jasco_utils.analysis.averages`'.

Adding a metric is one new function decorated with :func:`register_metric`: ``jasco
score`` (text and ``--json``), the Average row, :func:`jasco_utils.analysis.scoring.format_scores`,
the bootstrap intervals and ``jasco score --ci`` all read :data:`METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jasco_utils.judging.parsing import AUDIO, BOTH, NEITHER, SPEECH

#: Columns every statistic needs (:func:`prepare_rows`).
REQUIRED_COLUMNS: tuple[str, ...] = ("model", "judge", "id", "instruction", "rating", "orientation")
#: Per-clip columns of :func:`clip_table` (besides the keys); ``n_clips`` is 1 for every clip.
CLIP_COLUMNS: tuple[str, ...] = (
    "best_gated",
    "best_ungated",
    "n_audio",
    "n_both",
    "n_speech",
    "n_oriented",
    "n_neither",
    "n_responses",
    "n_unparsed",
    "n_unparsed_rating",
    "n_unparsed_orientation",
    "n_clips",
    "n_truncated",
)
#: Counts of a score record, each the sum of the per-clip column of that name (the Average
#: sums them over judges, except ``n_clips``: the most any judge has).
COUNT_KEYS: tuple[str, ...] = (
    "n_responses",
    "n_unparsed",
    "n_clips",
    "n_unparsed_rating",
    "n_unparsed_orientation",
    "n_neither",
    "n_truncated",
)


# --------------------------------------------------------------------------------------
# Per response: the gating rule
# --------------------------------------------------------------------------------------


def gate(rating: pd.Series, orientation: pd.Series) -> pd.Series:
    """The value a response adds to Best-Mean: its rating when the orientation is Both, else 0.

    An unreadable rating (missing) counts 0.

    >>> gate(pd.Series([2, 1, None]), pd.Series(["Both", "Speech", "Both"])).tolist()
    [2.0, 0.0, 0.0]
    """
    value = pd.to_numeric(rating, errors="coerce").astype(float)
    return value.where(orientation.isin([BOTH]).to_numpy() & value.notna().to_numpy(), 0.0)


def _orientations(values: pd.Series) -> pd.Series:
    """Orientations as labels, ``None`` where missing (NaN, NA or empty)."""
    return pd.Series(
        [
            None if v is None or v is pd.NA or v == "" or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in values.to_numpy(dtype=object)
        ],
        index=values.index,
        dtype=object,
    )


def response_values(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``rating`` as float (NaN unreadable), ``orientation`` as label or ``None``,
    and each response's ``gated`` (:func:`gate`) and ``ungated`` value (the rating, 0 when
    unreadable)."""
    rating = pd.to_numeric(rows["rating"], errors="coerce").astype(float)
    orientation = _orientations(rows["orientation"])
    return rows.assign(
        rating=rating, orientation=orientation, ungated=rating.fillna(0.0), gated=gate(rating, orientation)
    )


def prepare_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Check scored rows and return them typed, with :func:`response_values`' columns.

    Raises:
        ValueError: A column of :data:`REQUIRED_COLUMNS` is missing, there are no rows, or a
            (model, judge, id, instruction) repeats (the first is named).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(
            f"scored rows lack column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            "(as jasco_utils.analysis.scoring.read_judged_files returns)"
        )
    if rows.empty:
        raise ValueError("no scored rows")
    out = pd.DataFrame(
        {
            "model": rows["model"].astype(str).to_numpy(),
            "judge": rows["judge"].astype(str).to_numpy(),
            "id": pd.to_numeric(rows["id"]).astype(int).to_numpy(),
            "instruction": pd.to_numeric(rows["instruction"]).astype(int).to_numpy(),
            "rating": pd.to_numeric(rows["rating"], errors="coerce").astype(float).to_numpy(),
            "orientation": rows["orientation"].to_numpy(dtype=object),
        }
    )
    dup = out.duplicated(["model", "judge", "id", "instruction"], keep=False)
    if dup.any():
        first = out[dup].iloc[0]
        raise ValueError(
            f"{int(dup.sum())} scored rows repeat a (model, judge, id, instruction), e.g. "
            f"({first['model']!r}, {first['judge']!r}, {first['id']}, {first['instruction']}); "
            "each response must be rated once per judge"
        )
    return response_values(out)


# --------------------------------------------------------------------------------------
# Per clip
# --------------------------------------------------------------------------------------


def clip_table(rows: pd.DataFrame, by: Sequence[str] = ("model", "judge")) -> pd.DataFrame:
    """Per (``by``..., clip): the values every metric is a function of (:data:`CLIP_COLUMNS`).

    ``best_gated``/``best_ungated``: the best gated/ungated value of the clip's responses;
    ``n_*``: counts of its responses (``n_oriented``: Audio, Both or Speech; ``n_unparsed``:
    rating or orientation unreadable; ``n_truncated``: the judge's or the ALLM's answer was cut
    off at its token limit, from a ``truncated`` column when the rows have one); ``n_clips``: 1.
    Groups in order of first appearance.
    """
    r = response_values(rows)
    o, rating_missing = r["orientation"], r["rating"].isna().to_numpy()
    no_orientation = o.isna().to_numpy()
    truncated = r["truncated"].fillna(False).astype(bool).to_numpy() if "truncated" in r else np.zeros(len(r), bool)
    counts = pd.DataFrame(
        {
            "n_audio": o.eq(AUDIO).to_numpy(),
            "n_both": o.eq(BOTH).to_numpy(),
            "n_speech": o.eq(SPEECH).to_numpy(),
            "n_oriented": o.isin([AUDIO, BOTH, SPEECH]).to_numpy(),
            "n_neither": o.eq(NEITHER).to_numpy(),
            "n_responses": np.ones(len(r), dtype=bool),
            "n_unparsed": rating_missing | no_orientation,
            "n_unparsed_rating": rating_missing,
            "n_unparsed_orientation": no_orientation,
            "n_truncated": truncated,
        },
    ).astype(int)
    keys = [r[k].to_numpy() for k in (*by, "id")]
    best = pd.DataFrame({"best_gated": r["gated"].to_numpy(), "best_ungated": r["ungated"].to_numpy()})
    out = pd.concat([best.groupby(keys, sort=False).max(), counts.groupby(keys, sort=False).sum()], axis=1)
    out = out.rename_axis([*by, "id"]).reset_index()
    out["n_clips"] = 1
    return out[[*by, "id", *CLIP_COLUMNS]]


@dataclass(frozen=True)
class ClipValues:
    """Per-clip columns as arrays of shape (units, clips); a clip a unit lacks holds 0.

    A *unit* is what one metric value is computed for (a judge, or one (model, judge)).
    """

    arrays: Mapping[str, np.ndarray]
    units: tuple
    ids: tuple

    def total(self, column: str, weights: np.ndarray) -> np.ndarray:
        """Weighted total over clips: weights (replicates, clips) -> (replicates, units)."""
        return weights @ self.arrays[column].T

    @classmethod
    def of(cls, clips: pd.DataFrame, unit: str = "judge") -> ClipValues:
        """From one model's :func:`clip_table` rows, one unit per value of ``unit``.

        Units in order of first appearance, clips in ascending id.
        """
        units = tuple(in_order(clips[unit]))
        ids = tuple(np.sort(clips["id"].unique()))
        wide = clips.pivot(index=unit, columns="id", values=list(CLIP_COLUMNS))
        arrays = {
            c: wide[c].reindex(index=list(units), columns=list(ids)).fillna(0).to_numpy(dtype=float)
            for c in CLIP_COLUMNS
        }
        return cls(arrays, units, ids)


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

#: A metric: per-clip values and clip weights (replicates, clips) -> values (replicates, units).
MetricFunction = Callable[[ClipValues, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A registered metric: a function of per-clip values and clip weights, and how to show it.

    Attributes:
        name: Key in score records, ``jasco score --json`` and the bootstrap table.
        func: ``func(clips, weights)``: :class:`ClipValues` and weights (replicates, clips)
            -> values (replicates, units); NaN where undefined.
        label: Column header of ``jasco score``'s table.
        digits: Decimals shown.
        axis_label: Axis label in plots.
        scale: The metric's range, for plot axes.
        headline: One of the paper's numbers (Table II, Figure 2): shown by ``jasco score --ci``.
        note: What the column means (starting with its label), for the legend under
            ``jasco score``'s table; metrics explained together give it once.
    """

    name: str
    func: MetricFunction
    label: str
    digits: int
    axis_label: str
    scale: tuple[float, float]
    headline: bool = True
    note: str = ""

    def format(self, value: float | None) -> str:
        """``value`` rounded to :attr:`digits`; ``n/a`` when undefined."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return f"{value:.{self.digits}f}"


#: The registered metrics, in display order (name -> :class:`Metric`).
METRICS: dict[str, Metric] = {}


def register_metric(
    name: str,
    *,
    label: str,
    digits: int,
    axis_label: str,
    scale: tuple[float, float],
    headline: bool = True,
    note: str = "",
) -> Callable[[MetricFunction], MetricFunction]:
    """Register ``func(clips, weights)`` as metric ``name`` (see :class:`Metric`).

    Example: the share of clips with a fully correct answer, one more column of ``jasco
    score`` (and its ``--json``), of the Average and of the bootstrap table::

        @register_metric("fully_correct", label="full", digits=2, axis_label="clips fully correct",
                         scale=(0, 1), headline=False, note="full: share of clips whose best is 2")
        def fully_correct(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
            solved = (clips.arrays["best_gated"] == 2).astype(float)
            return (weights @ solved.T) / clips.total("n_clips", weights)
    """

    def register(func: MetricFunction) -> MetricFunction:
        METRICS[name] = Metric(name, func, label, digits, axis_label, scale, headline, note)
        return func

    return register


@register_metric(
    "best_mean",
    label="best-mean",
    digits=2,
    axis_label="Best-Mean (0-2)",
    scale=(0, 2),
    note="best-mean: per clip the best of 8 ratings, a rating counting only when the orientation is Both",
)
def best_of_clip_gated(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
    """Best-Mean (Table II): the weighted mean over clips of each clip's best gated value."""
    return clips.total("best_gated", weights) / clips.total("n_clips", weights)


@register_metric(
    "best_mean_ungated",
    label="ungated",
    digits=2,
    axis_label="Best-Mean, ungated (0-2)",
    scale=(0, 2),
    headline=False,
    note="ungated: without that condition",
)
def best_of_clip_ungated(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
    """Best-Mean without the Both condition: the mean over clips of each clip's best rating."""
    return clips.total("best_ungated", weights) / clips.total("n_clips", weights)


def _share(clips: ClipValues, weights: np.ndarray, column: str) -> np.ndarray:
    return 100 * clips.total(column, weights) / clips.total("n_oriented", weights)


@register_metric(
    "audio_pct",
    label="audio%",
    digits=1,
    axis_label="audio %",
    scale=(0, 100),
    note="audio/both/speech%: among responses with one of those orientations",
)
def audio_share(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
    """Figure 2's A: percent of the Audio/Both/Speech-oriented responses that are Audio."""
    return _share(clips, weights, "n_audio")


@register_metric("both_pct", label="both%", digits=1, axis_label="both %", scale=(0, 100))
def both_share(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
    """Figure 2's A-S: percent of the Audio/Both/Speech-oriented responses that are Both."""
    return _share(clips, weights, "n_both")


@register_metric("speech_pct", label="speech%", digits=1, axis_label="speech %", scale=(0, 100))
def speech_share(clips: ClipValues, weights: np.ndarray) -> np.ndarray:
    """Figure 2's S: percent of the Audio/Both/Speech-oriented responses that are Speech."""
    return _share(clips, weights, "n_speech")


def evaluate(clips: ClipValues, weights: np.ndarray, names: Iterable[str] | None = None) -> np.ndarray:
    """Registered metrics (default all) under clip weights: (replicates, units, metrics)."""
    names = list(METRICS) if names is None else list(names)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([METRICS[n].func(clips, weights) for n in names], axis=-1)


def score_keys() -> tuple[str, ...]:
    """Keys of one score record: ``model``, ``judge``, the registered metrics, the counts."""
    return ("model", "judge", *METRICS, *COUNT_KEYS)


#: Keys of one score record, in display order (``jasco score --json`` writes these).
SCORE_KEYS: tuple[str, ...] = score_keys()


# --------------------------------------------------------------------------------------
# Point values
# --------------------------------------------------------------------------------------


def _point(clips: pd.DataFrame, names: Iterable[str] | None = None) -> dict[str, float]:
    """Metrics of one unit's :func:`clip_table` rows at weights 1."""
    names = list(METRICS) if names is None else list(names)
    if clips.empty:
        return dict.fromkeys(names, math.nan)
    values = ClipValues({c: clips[c].to_numpy(dtype=float)[None, :] for c in CLIP_COLUMNS}, (0,), tuple(clips["id"]))
    point = evaluate(values, np.ones((1, len(clips))), names)[0, 0]
    return {n: float(v) for n, v in zip(names, point, strict=True)}


def best_mean(rows: pd.DataFrame, gated: bool = True) -> float:
    """Mean over clips of the best rating among each clip's responses.

    Args:
        rows: Scored rows of one (model, judge).
        gated: Count a rating only when the orientation is Both (the paper's metric).

    >>> rows = pd.DataFrame({"id": [1, 1, 2, 2], "rating": [2, 1, 2, None],
    ...                      "orientation": ["Speech", "Both", "Both", "Both"]})
    >>> best_mean(rows), best_mean(rows, gated=False)
    (1.5, 2.0)
    """
    name = "best_mean" if gated else "best_mean_ungated"
    return _point(clip_table(rows, by=()), [name])[name]


def dependence(rows: pd.DataFrame) -> dict[str, float]:
    """Audio, Both and Speech shares (percent) among responses with one of those orientations.

    >>> rows = pd.DataFrame({"orientation": ["Audio", "Both", "Both", "Neither", None]})
    >>> {k: round(v, 2) for k, v in dependence(rows).items()}
    {'audio_pct': 33.33, 'both_pct': 66.67, 'speech_pct': 0.0}
    """
    # The shares are ratios of counts, so all the responses can be taken as one clip.
    one_clip = rows.assign(id=0, rating=np.nan) if len(rows) else pd.DataFrame(columns=["id", "rating", "orientation"])
    return _point(clip_table(one_clip, by=()), ["audio_pct", "both_pct", "speech_pct"])


def score_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One record per (model, judge): the registered metrics and the counts, in order of
    first appearance (columns :func:`score_keys`)."""
    records = []
    for (model, judge), clips in clip_table(rows).groupby(["model", "judge"], sort=False):
        counts = {k: int(clips[k].sum()) for k in COUNT_KEYS}
        records.append({"model": model, "judge": judge, **_point(clips), **counts})
    return pd.DataFrame(records, columns=list(score_keys()))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def in_order(values: Iterable) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def require_models(rows: pd.DataFrame, *models: str) -> None:
    """Raise ``ValueError`` naming a model that is not in the scored rows."""
    known = in_order(rows["model"])
    for m in models:
        if m not in known:
            raise ValueError(f"model {m!r} is not in the scored rows; models: {known}")
