"""The cascade baseline: speech recognition, then a text LLM (optionally with sound tags).

JASCO (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning",
arXiv:2409.14526) asks a model to infer what the speakers are doing from *both* the
non-speech sound and the speech of a clip. A cascade turns the clip into text first:
:class:`~jasco_utils.models.whisper.SpeechRecognizer` writes what was said, an optional sound-event
:class:`Tagger` lists the sounds heard, and a text-only LLM answers each of the 8
instructions from :data:`CASCADE_PROMPT`.

This is a *baseline*, and a speech-oriented one: no sound tagger ships with the project
(none has weights that install from a package; taggers such as CLAP, PANNs, AST or BEATs
download theirs at run time), so by default the text model never learns what the sound is
and :data:`CASCADE_PROMPT` says so to it. Its answers then show how far the speech alone
takes a model: the "speech-only answer" of ``v0.csv``, the dominant-modality failure the
paper describes. Plug a tagger in (any object with ``identity`` and
``__call__(wave) -> labels``) to get a sound-and-speech cascade.

The LLM calls go through :func:`jasco_utils.inference.allm.run_conversations` (the call store,
cache and resume); their cache key includes this prompt's name and a hash of the templates,
the recognizer's identity and the tagger's, so changing any of them re-runs the calls.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from jasco_utils.data.clips import load_clips
from jasco_utils.data.dataset import load_metadata
from jasco_utils.data.manifest import check_rows
from jasco_utils.inference.allm import run_conversations
from jasco_utils.inference.asr import intervene_clips, per_clip_wer, transcribe_waves, word_error_rate
from jasco_utils.inference.interventions import AUDIO_CONDITIONS
from jasco_utils.models.base import Backend, Conversation, SamplingConfig
from jasco_utils.models.runner import CallStats
from jasco_utils.models.store import Store
from jasco_utils.models.whisper import SpeechRecognizer, Transcript

#: Name of the prompt version below; recorded in every cache key with the templates' hash.
CASCADE_PROMPT_NAME = "cascade_v1"
#: The system message the text LLM gets.
CASCADE_SYSTEM = (
    "You answer questions about a short audio clip that you cannot hear. You are given an "
    "automatic transcript of the speech in the clip and, when available, the non-speech "
    "sounds detected in it. Answer the question directly and briefly, using only this information."
)
#: The user turn: the transcript, a line about the sounds, then the JASCO instruction.
CASCADE_PROMPT = 'Spoken text (automatic transcript): "{transcript}"\n{sounds_line}\n\n{instruction}'
#: The sounds line when a tagger gave labels.
SOUNDS_LINE = "Audio sound (detected sound events): {tags}."
#: The sounds line without a tagger (or when it found nothing).
NO_SOUNDS_LINE = "Audio sound: not available (only the speech was transcribed)."
#: The transcript placeholder when nothing was recognized.
NO_SPEECH = "(no speech recognized)"


def prompt_sha256() -> str:
    """SHA-256 of the cascade's templates (system message, prompt and its lines)."""
    blob = "\x1e".join((CASCADE_SYSTEM, CASCADE_PROMPT, SOUNDS_LINE, NO_SOUNDS_LINE, NO_SPEECH))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@runtime_checkable
class Tagger(Protocol):
    """A sound-event tagger: a 16 kHz mono waveform in, labels out (e.g. AudioSet classes).

    ``identity`` (a JSON-ready dict: model, revision, threshold, ...) goes into the cache key.
    Labels are used in the order given. The tagger runs on every :func:`cascade_table` call
    (its labels are not stored): cache inside it if it is slow.
    """

    @property
    def identity(self) -> dict[str, Any]: ...

    def __call__(self, wave: np.ndarray) -> list[str]: ...


def cascade_prompt(transcript: str, instruction: str, tags: Sequence[str] | None = None) -> str:
    """The user message for one (clip, instruction).

    >>> print(cascade_prompt("Let's build a castle over there.", "What is the audio sound?"))
    Spoken text (automatic transcript): "Let's build a castle over there."
    Audio sound: not available (only the speech was transcribed).
    <BLANKLINE>
    What is the audio sound?
    >>> print(cascade_prompt("", "Q?", ["Waves", "Seagull"]).splitlines()[:2])
    ['Spoken text (automatic transcript): "(no speech recognized)"', 'Audio sound (detected sound events): Waves, Seagull.']
    """
    labels = [t.strip() for t in (tags or []) if t and t.strip()]
    sounds = SOUNDS_LINE.format(tags=", ".join(labels)) if labels else NO_SOUNDS_LINE
    return CASCADE_PROMPT.format(
        transcript=transcript.strip() or NO_SPEECH, sounds_line=sounds, instruction=instruction
    )


def cascade_messages(
    transcript: str, instruction: str, tags: Sequence[str] | None = None, system: str | None = CASCADE_SYSTEM
) -> Conversation:
    """The conversation the text LLM gets: :data:`CASCADE_SYSTEM`, then :func:`cascade_prompt`."""
    conv: Conversation = [{"role": "system", "content": system}] if system else []
    conv.append({"role": "user", "content": cascade_prompt(transcript, instruction, tags)})
    return conv


def cascade_extra(recognizer: SpeechRecognizer, tagger: Tagger | None = None) -> dict[str, Any]:
    """What the cache key adds to the messages: the prompt's name and hash, ASR and tagger identity."""
    return {
        "task": "cascade",
        "prompt": {"name": CASCADE_PROMPT_NAME, "sha256": prompt_sha256()},
        "asr": recognizer.identity,
        "tagger": dict(tagger.identity) if tagger is not None else None,
    }


def cascade_table(
    manifest: pd.DataFrame,
    recognizer: SpeechRecognizer,
    text_backend: Backend,
    store: Store,
    model: str = "cascade",
    data_dir: str | os.PathLike[str] | None = None,
    sampling: SamplingConfig | None = None,
    tagger: Tagger | None = None,
    chunk_size: int = 64,
    progress: bool = True,
    condition: str | None = None,
) -> tuple[pd.DataFrame, CallStats, dict[int, Transcript]]:
    """Answer every manifest row with the cascade: transcript (and tags) -> text LLM.

    Args:
        manifest: The manifest (or a subset of whole clips).
        recognizer: The speech recognizer (transcripts are cached in ``store``).
        text_backend: The text LLM (any engine taking text messages).
        store: The call store (cache and resume, for transcripts and answers).
        model: Name written in the ``model`` column.
        data_dir: Where clips are found when a row's ``audio`` is not a file.
        sampling: Sampling settings; greedy with seed 0 and 512 tokens by default.
        tagger: An optional sound-event tagger; without one the text LLM is told the sound
            is not available (see the module).
        chunk_size: Rows per engine call.
        progress: Show progress bars.
        condition: An intervention (:mod:`jasco_utils.inference.interventions`): the intervened clip is
            transcribed (``speech_masked``: where the VAD or the recogniser found speech is zeroed);
            ``transcript_only`` is the cascade itself. The text LLM's cache key is its prompt, so an
            unchanged transcript gets the original's answer.

    Returns:
        The outputs table (as :func:`jasco_utils.inference.allm.infer_table`'s, with the
        ``transcript`` column filled), the LLM call counts, and clip id -> transcript.
    """
    check_rows(manifest, "manifest", what="manifest")
    sampling = sampling or SamplingConfig(max_tokens=512)
    waves = load_clips(manifest, data_dir)
    transcripts = transcribe_waves(waves, recognizer, store, progress)
    if condition in AUDIO_CONDITIONS:
        waves = intervene_clips(waves, condition, transcripts)
        transcripts = transcribe_waves(waves, recognizer, store, progress)
    tags: dict[int, list[str]] = {}
    if tagger is not None:
        tags = {cid: list(tagger(wave)) for cid, wave in waves.items()}
    conversations = [
        cascade_messages(transcripts[int(r["id"])].text, r["prompt"], tags.get(int(r["id"])))
        for r in manifest.to_dict(orient="records")
    ]
    outputs, stats = run_conversations(
        manifest,
        conversations,
        text_backend,
        store,
        model,
        sampling,
        cascade_extra(recognizer, tagger),
        audio_mode=condition or "audio",
        transcripts={cid: t.text for cid, t in transcripts.items()},
        chunk_size=chunk_size,
        progress=progress,
    )
    return outputs, stats, transcripts


def transcript_wer(
    transcripts: Mapping[int, Transcript | str], data_dir: str | os.PathLike[str] | None = None
) -> tuple[float, pd.DataFrame]:
    """Word error rate of transcripts against ``v0.csv``'s ``Speech`` column.

    Returns:
        The corpus WER over the given clips (total edits over total reference words) and
        the per-clip table of :func:`jasco_utils.inference.asr.per_clip_wer`.

    Raises:
        KeyError: A clip id is not in ``v0.csv``.
    """
    speech = load_metadata(data_dir).set_index("audio_id")["Speech"]
    unknown = sorted(int(c) for c in transcripts if int(c) not in speech.index)
    if unknown:
        raise KeyError(f"clip(s) {unknown} are not in v0.csv")
    hyps = {int(c): t.text if isinstance(t, Transcript) else str(t) for c, t in transcripts.items()}
    refs = {c: str(speech[c]) for c in hyps}
    ids = sorted(hyps)
    return word_error_rate([refs[c] for c in ids], [hyps[c] for c in ids]), per_clip_wer(refs, hyps)
