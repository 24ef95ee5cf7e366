"""Do the interventions do what they claim? Measured on every clip (``jasco data interventions``).

The interventions of :mod:`jasco_utils.inference.interventions` claim to take one modality
away and keep the other. Per clip this module measures:

* ``sound_suppressed``: the level (RMS, dB full scale) of the clip outside the speech, before and
  after (the suppression is their difference), the level inside the speech before and after, and
  the recogniser's word error rate against ``v0.csv``'s ``Speech`` before and after;
* ``speech_masked``, for each way of finding the speech (the voice-activity detector, ``vad``; the
  recogniser's word timestamps, ``asr``): the share of the clip zeroed, and the words the
  recogniser still finds after masking (all of them, and those of the spoken sentence).

"The speech" for the levels is where either the VAD or the recogniser's words (padded by
:data:`jasco_utils.inference.asr.SEGMENT_PAD_S`) place it in the original clip. Transcripts go
through the call store, so a second measurement is read from it. A clip fails an intervention
when it does not do what it claims (:data:`MIN_SUPPRESSION_DB`, :data:`MAX_WER_RISE`,
:data:`MAX_WORDS_LEFT`); :func:`failing_clips` lists them so the analysis can leave them out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.data.clips import TARGET_SR, load_clips
from jasco_utils.data.dataset import load_metadata
from jasco_utils.inference.asr import normalize_text, per_clip_wer, speech_segments, transcribe_waves
from jasco_utils.inference.interventions import (
    DEFAULT_MASK_METHOD,
    MASK_METHODS,
    mask_segments,
    suppress_sound,
    vad_segments,
)
from jasco_utils.models.store import Store
from jasco_utils.models.whisper import SpeechRecognizer

#: ``sound_suppressed`` fails a clip that lost less than this outside the speech (dB).
MIN_SUPPRESSION_DB = 10.0
#: ``sound_suppressed`` fails a clip whose word error rate rose by more than this.
MAX_WER_RISE = 0.25
#: ``speech_masked`` fails a clip where the recogniser still finds more than this share of the
#: sentence's words (a word or two of a hallucinated "Thank you." may match by chance).
MAX_WORDS_LEFT = 0.2
#: Below this RMS level (dBFS) a stretch counts as silent (the level of digital silence).
FLOOR_DB = -100.0


def level_db(wave: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RMS level in dB full scale of the samples where ``mask`` is true (all by default).

    >>> round(level_db(np.full(10, 0.5, dtype=np.float32)), 2)
    -6.02
    >>> level_db(np.zeros(4, dtype=np.float32))
    -100.0
    """
    x = np.asarray(wave, np.float64) if mask is None else np.asarray(wave, np.float64)[mask]
    if x.size == 0:
        return float("nan")
    rms = float(np.sqrt(np.mean(x * x)))
    return max(FLOOR_DB, float(20 * np.log10(rms))) if rms > 0 else FLOOR_DB


def _span_mask(n: int, spans: Iterable[tuple[float, float]], sr: int = TARGET_SR) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for a, b in spans:
        mask[max(0, int(round(a * sr))) : max(0, int(round(b * sr)))] = True
    return mask


def _words(text: str) -> int:
    return len(normalize_text(text).split())


def _wer_of(transcripts, refs: dict[int, str]) -> pd.DataFrame:
    return per_clip_wer(refs, {c: t.text for c, t in transcripts.items()}).set_index("id")


def measure_fidelity(
    clips: Sequence[int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] = DEFAULT_STORE,
    recognizer: SpeechRecognizer | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Measure every intervention on every clip (see the module).

    Args:
        clips: Clip ids (default: every clip of ``v0.csv``).
        data_dir: The dataset folder.
        store: The call store's file, for the transcripts (they are cached there).
        recognizer: The speech recognizer (default Whisper tiny.en, as the cascade's).
        progress: Show progress bars.

    Returns:
        One row per clip: ``id``, ``audio`` and ``speech`` (v0.csv), ``duration_s``, the levels
        (``outside_before_db``, ``outside_after_db``, ``suppression_db``, ``speech_before_db``,
        ``speech_after_db``), ``wer_before``, ``wer_after``, ``transcript_before``,
        ``transcript_after``; per masking method M: ``M_masked_share``, ``M_words_found``,
        ``M_ref_words_found``, ``M_transcript``; then the verdicts ``sound_suppressed_ok`` and
        ``speech_masked_ok`` (the default method's) and ``M_ok``.
    """
    meta = load_metadata(data_dir).set_index("audio_id")
    ids = sorted(int(c) for c in (clips if clips is not None else meta.index))
    recognizer = recognizer or SpeechRecognizer()
    waves = load_clips(ids, data_dir)
    refs = {c: str(meta.loc[c, "Speech"]) for c in ids}
    vad = {c: vad_segments(w) for c, w in tqdm(waves.items(), desc="voice activity", disable=not progress)}
    suppressed = {c: suppress_sound(w) for c, w in tqdm(waves.items(), desc="RNNoise", disable=not progress)}
    with Store(store) as st:
        before = transcribe_waves(waves, recognizer, st, progress)
        words = speech_segments(before)
        after = transcribe_waves(suppressed, recognizer, st, progress)
        spans = {"vad": vad, "asr": words, "both": {c: sorted([*vad[c], *words[c]]) for c in ids}}
        masked = {m: {c: mask_segments(w, spans[m][c]) for c, w in waves.items()} for m in MASK_METHODS}
        heard = {m: transcribe_waves(masked[m], recognizer, st, progress) for m in MASK_METHODS}
    wer_b, wer_a = _wer_of(before, refs), _wer_of(after, refs)
    rows = []
    for c in ids:
        w, y = waves[c], suppressed[c]
        speech = _span_mask(len(w), [*vad[c], *words[c]])
        row = {
            "id": c,
            "audio": meta.loc[c, "Audio"],
            "speech": refs[c],
            "duration_s": round(len(w) / TARGET_SR, 3),
            "outside_before_db": level_db(w, ~speech),
            "outside_after_db": level_db(y, ~speech),
            "speech_before_db": level_db(w, speech),
            "speech_after_db": level_db(y, speech),
            "wer_before": wer_b.loc[c, "wer"],
            "wer_after": wer_a.loc[c, "wer"],
            "transcript_before": before[c].text,
            "transcript_after": after[c].text,
        }
        row["suppression_db"] = row["outside_before_db"] - row["outside_after_db"]
        for m in MASK_METHODS:
            found = _wer_of({c: heard[m][c]}, {c: refs[c]}).loc[c]
            row[f"{m}_masked_share"] = round(float((masked[m][c] != w).mean() if w.any() else 0.0), 4)
            row[f"{m}_segments"] = len(spans[m][c])
            row[f"{m}_words_found"] = _words(heard[m][c].text)
            row[f"{m}_ref_words_found"] = int(found["hits"])
            row[f"{m}_transcript"] = heard[m][c].text
        rows.append(row)
    return judge_fidelity(pd.DataFrame(rows))


def judge_fidelity(table: pd.DataFrame) -> pd.DataFrame:
    """Add the verdicts: does each intervention do what it claims on each clip?

    ``sound_suppressed_ok``: at least :data:`MIN_SUPPRESSION_DB` less outside the speech, and the
    word error rate up by at most :data:`MAX_WER_RISE`. ``M_ok`` (per masking method): at most
    :data:`MAX_WORDS_LEFT` of the sentence's words still recognised, and something was masked.
    """
    out = table.copy()
    out["sound_suppressed_ok"] = (out["suppression_db"] >= MIN_SUPPRESSION_DB) & (
        out["wer_after"] - out["wer_before"] <= MAX_WER_RISE
    )
    ref_words = out["speech"].map(_words).clip(lower=1)
    for m in MASK_METHODS:
        out[f"{m}_ok"] = (out[f"{m}_ref_words_found"] / ref_words <= MAX_WORDS_LEFT) & (out[f"{m}_segments"] > 0)
    return out


def failing_clips(table: pd.DataFrame, mask_method: str = DEFAULT_MASK_METHOD) -> dict[str, list[int]]:
    """Per condition, the clips where the intervention does not do what it claims.

    >>> t = pd.DataFrame({"id": [1, 2], "sound_suppressed_ok": [True, False], "vad_ok": [False, True]})
    >>> failing_clips(t, "vad")
    {'sound_suppressed': [2], 'speech_masked': [1]}
    """
    return {
        "sound_suppressed": sorted(int(c) for c in table.loc[~table["sound_suppressed_ok"], "id"]),
        "speech_masked": sorted(int(c) for c in table.loc[~table[f"{mask_method}_ok"], "id"]),
    }


def fidelity_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers over clips: median, quartiles and range of each measure, and the clips passing."""
    ref_words = table["speech"].map(_words)
    measures = {
        "sound_suppressed: suppression outside speech (dB)": table["suppression_db"],
        "sound_suppressed: level change inside speech (dB)": table["speech_after_db"] - table["speech_before_db"],
        "sound_suppressed: WER before": table["wer_before"],
        "sound_suppressed: WER after": table["wer_after"],
    }
    for m in MASK_METHODS:
        measures[f"speech_masked ({m}): share of clip masked"] = table[f"{m}_masked_share"]
        measures[f"speech_masked ({m}): words recognised"] = table[f"{m}_words_found"]
        measures[f"speech_masked ({m}): sentence words recognised (share)"] = table[f"{m}_ref_words_found"] / ref_words
    rows = []
    for name, v in measures.items():
        q = v.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).round(3).tolist()
        rows.append({"measure": name, "mean": round(float(v.mean()), 3), "min": q[0], "q1": q[1], "median": q[2]})
        rows[-1].update({"q3": q[3], "max": q[4]})
    verdicts = {"sound_suppressed": "sound_suppressed_ok", **{f"speech_masked ({m})": f"{m}_ok" for m in MASK_METHODS}}
    for name, col in verdicts.items():
        rows.append(
            {"measure": f"{name}: clips passing", "mean": float(table[col].mean()), "max": int(table[col].sum())}
        )
    return pd.DataFrame(rows)
