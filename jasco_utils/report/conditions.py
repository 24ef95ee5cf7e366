"""An ALLM's answers under interventions, side by side, and the intervened clips it heard.

An ALLM that answered the clips again under an intervention (:data:`jasco_utils.models.spec.CONDITIONS`:
``sound_suppressed``, ``speech_masked``, ``transcript_only``, ``silence``; see
:mod:`jasco_utils.inference.interventions`) is its own model in a run, ``NAME@CONDITION``, with its
own outputs and judged tables. The run's page (:mod:`jasco_utils.report.browser`) and the explorer
(:mod:`jasco_utils.report.explorer`) group such models under ``NAME``
(:func:`~jasco_utils.analysis.interventions.conditions_of`): per clip, each instruction's answer to
the original clip beside its answers under each condition, and a player for each intervened clip.

The intervened clips are made again here as inference made them, sample for sample: every
intervention is a pure function of the clip. ``speech_masked`` zeroes where the voice-activity
detector or the recogniser's words find speech (:func:`jasco_utils.inference.asr.mask_spans`, the
default method); the recogniser's transcripts come from the call store where inference left them,
else the recogniser (Whisper, on the CPU) runs again and stores them. ``transcript_only`` has no
audio: its entry is the transcript the ALLM read. A clip whose audio cannot be made (its file
missing, an intervention's library absent) gets the reason instead. Intervened clips are always
embedded (:func:`~jasco_utils.report.audio.encode_audio`): they exist in no file to link to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from jasco_utils.analysis.interventions import ORIGINAL, conditions_of, split_condition
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.data.clips import load_clip
from jasco_utils.inference.asr import intervene_clips, transcribe_waves
from jasco_utils.models.base import EngineError
from jasco_utils.models.spec import CONDITION_SEP, CONDITIONS
from jasco_utils.models.store import StorageError, Store
from jasco_utils.models.whisper import SpeechRecognizer
from jasco_utils.report.audio import encode_audio
from jasco_utils.run import Run

#: Per condition, what the ALLM got (the tooltips of the pages' condition headers).
CONDITION_NOTES: dict[str, str] = {
    ORIGINAL: "the clip as it is",
    "sound_suppressed": "the speech kept, the other sounds suppressed (RNNoise)",
    "speech_masked": "the speech zeroed where the voice-activity detector or the recogniser finds it",
    "transcript_only": "no audio: the clip's transcript as text, with the instruction",
    "silence": "silence of the clip's length",
}
#: What can keep an intervened clip from being made (its reason is shown instead of a player).
_UNMADE = (FileNotFoundError, ImportError, EngineError, StorageError, ConfigError, sf.LibsndfileError, RuntimeError)


def condition_groups(models: Iterable[str]) -> dict[str, dict[str, str]]:
    """Per ALLM that answered under some condition: condition -> model name, ``original`` first.

    >>> condition_groups(["A", "A@speech_masked", "B", "A@sound_suppressed"])
    {'A': {'original': 'A', 'sound_suppressed': 'A@sound_suppressed', 'speech_masked': 'A@speech_masked'}}
    >>> condition_groups(["A", "B"])
    {}
    """
    return {
        base: {ORIGINAL: base, **{c: f"{base}{CONDITION_SEP}{c}" for c in conds}}
        for base, conds in conditions_of(models).items()
    }


def allm_conditions(models: pd.DataFrame | Iterable[str]) -> dict[str, list[str]]:
    """Every ALLM with the conditions it answered under, ``original`` first (in the models' order).

    Args:
        models: Model names, or a table with a ``model`` column (e.g. the explorer's rows).

    >>> allm_conditions(["A", "A@transcript_only", "A@silence", "B"])
    {'A': ['original', 'transcript_only', 'silence'], 'B': ['original']}
    """
    models = list(dict.fromkeys(models["model"] if isinstance(models, pd.DataFrame) else models))
    groups = condition_groups(models)
    out: dict[str, list[str]] = {}
    for m in models:
        base, _ = split_condition(m)
        if base not in groups:
            out[m] = [ORIGINAL]
        elif base not in out:
            out[base] = list(groups[base])
    return out


def _first_text(outputs: pd.DataFrame, model: str, clip: int, column: str) -> str:
    if column not in outputs.columns:
        return ""
    rows = outputs[(outputs["model"] == model) & (outputs["id"].astype(int) == clip)][column]
    texts = [t for t in rows.astype(str) if t and t != "nan"]
    return texts[0] if texts else ""


def _reads_transcripts(outputs: pd.DataFrame, model: str) -> bool:
    """Whether ``model`` answered from transcripts (a cascade: its outputs hold some)."""
    if "transcript" not in outputs.columns:
        return False
    texts = outputs.loc[outputs["model"] == model, "transcript"].astype(str)
    return bool((texts.ne("") & texts.ne("nan")).any())


def run_recognizer(run_dir: str | os.PathLike[str]) -> SpeechRecognizer:
    """The recogniser whose words ``speech_masked`` masked in a run: the ``NAME@speech_masked``
    cascade's own (``asr_model``) where the run's ``config.json`` names one, else the default.

    Raises:
        EngineError: The configured recogniser's folder holds no model.
    """
    try:
        specs = Run(run_dir).config().allms
    except ConfigError:
        return SpeechRecognizer()
    own = [s.asr_model for s in specs if s.condition == "speech_masked" and s.engine == "cascade" and s.asr_model]
    return SpeechRecognizer(own[0]) if own else SpeechRecognizer()


def intervened_waves(
    waves: Mapping[int, np.ndarray],
    condition: str,
    store: str | os.PathLike[str] | None = None,
    recognizer: Callable[[], SpeechRecognizer] = SpeechRecognizer,
    progress: bool = False,
) -> dict[int, np.ndarray]:
    """The clips under an audio condition, as inference made them (see the module).

    Args:
        waves: Clip id -> the clip, 16 kHz mono float32.
        condition: ``sound_suppressed``, ``speech_masked`` or ``silence``.
        store: The call store holding the recogniser's transcripts (``speech_masked``; default
            :data:`~jasco_utils.core.paths.DEFAULT_STORE`).
        recognizer: Makes the recogniser (``speech_masked``; default Whisper tiny.en, as inference's).
        progress: Show progress bars.

    Raises:
        ValueError: Not an audio condition.
        ImportError: The intervention's library is not installed.
        EngineError: The recogniser cannot run.
    """
    transcripts = None
    if condition == "speech_masked" and waves:
        with Store(store or DEFAULT_STORE) as st:
            transcripts = transcribe_waves(waves, recognizer(), st, progress)
    return intervene_clips(waves, condition, transcripts)


def intervened_players(
    outputs: pd.DataFrame,
    clips: Mapping[int, str | None],
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    recognizer: Callable[[], SpeechRecognizer] = SpeechRecognizer,
    progress: bool = False,
) -> dict[int, dict[str, dict[str, str]]]:
    """Per clip, per condition the run's ALLMs answered under: what the page plays or shows.

    Args:
        outputs: The run's outputs tables (``model``, ``id``; ``transcript`` where the ALLM read one).
        clips: Clip id -> the clip's file as a table names it (or ``None``: the dataset's).
        data_dir: The dataset folder (see :func:`jasco_utils.core.paths.dataset_dir`).
        store, recognizer: For ``speech_masked``: as :func:`intervened_waves`'s.
        progress: Show progress bars.

    Returns:
        Clip id -> condition (in :data:`~jasco_utils.models.spec.CONDITIONS` order) ->
        ``{"src": data URL}`` (an audio condition), ``{"text": transcript}`` (``transcript_only``)
        or ``{"missing": why}``; each with ``"transcript"`` where the condition's first ALLM
        answered from a transcript (a cascade; ``""``: it recognised no speech). Empty for a run
        without conditions.
    """
    models = list(dict.fromkeys(outputs["model"])) if len(outputs) else []
    groups = condition_groups(models)
    present = [c for c in CONDITIONS if any(c in g for g in groups.values())]
    first = {c: next(g[c] for g in groups.values() if c in g) for c in present}
    out: dict[int, dict[str, dict[str, str]]] = {c: {} for c in clips}
    waves: dict[int, np.ndarray] = {}
    for c, given in clips.items():
        try:
            waves[c] = load_clip(c, data_dir, given)
        except (FileNotFoundError, sf.LibsndfileError) as e:
            out[c] = {cond: {"missing": str(e)} for cond in present}
    for cond in present:
        if cond == "transcript_only":
            made = {c: {"text": _first_text(outputs, first[cond], c, "transcript")} for c in clips}
        else:
            try:
                made = {
                    c: {"src": encode_audio(w)}
                    for c, w in intervened_waves(waves, cond, store, recognizer, progress).items()
                }
            except _UNMADE as e:
                made = {c: {"missing": f"{cond}: {e}"} for c in waves}
        reads = cond != "transcript_only" and _reads_transcripts(outputs, first[cond])
        for c in clips:
            entry = out[c].get(cond) or made.get(c, {"missing": "no clip"})
            out[c][cond] = (
                {**entry, "transcript": _first_text(outputs, first[cond], c, "transcript")} if reads else entry
            )
    return out


def original_transcripts(outputs: pd.DataFrame, clips: Iterable[int]) -> dict[int, str]:
    """Per clip, the transcript the first ALLM with conditions read of the original clip, where it
    read one (a cascade; ``""``: it recognised no speech)."""
    models = list(dict.fromkeys(outputs["model"])) if len(outputs) else []
    bases = list(condition_groups(models))
    if not bases or not _reads_transcripts(outputs, bases[0]):
        return {}
    return {c: _first_text(outputs, bases[0], c, "transcript") for c in clips}


def run_players(
    run_dir: str | os.PathLike[str],
    clips: Iterable[int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> dict[int, dict[str, dict[str, Any]]]:
    """:func:`intervened_players` for a run folder's clips (all, or those given), with the run's
    recogniser (:func:`run_recognizer`); ``original`` carries the transcript of the original clip
    where an ALLM read one."""
    outputs = Run(run_dir).outputs()
    if outputs.empty:
        return {}
    outputs = outputs.assign(id=outputs["id"].astype(int))
    given = dict(zip(outputs["id"], outputs.get("audio", pd.Series(None, index=outputs.index)), strict=True))
    wanted = sorted(given) if clips is None else [int(c) for c in clips]
    players = intervened_players(
        outputs, {c: given.get(c) for c in wanted}, data_dir, store, lambda: run_recognizer(run_dir), progress
    )
    for c, text in original_transcripts(outputs, wanted).items():
        players[c] = {ORIGINAL: {"transcript": text}, **players[c]}
    return players


def condition_page_data(
    run_dir: str | os.PathLike[str],
    models: Iterable[str],
    clips: Iterable[int],
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """What the run's page adds for ALLMs with conditions: its keys, and each clip's.

    Returns:
        ``({"conditions": base -> condition -> model, "condition_notes": ...}, clip id ->
        {"intervened": condition -> player}`` (:func:`run_players`)``)``; both empty for a run
        without conditions, whose page keeps its keys.
    """
    groups = condition_groups(models)
    if not groups:
        return {}, {}
    clips = list(clips)
    used = {c for g in groups.values() for c in g}
    players = run_players(run_dir, clips, data_dir, store, progress)
    top = {"conditions": groups, "condition_notes": {c: n for c, n in CONDITION_NOTES.items() if c in used}}
    return top, {c: {"intervened": players.get(c, {})} for c in clips}
