"""The tiny audio LLM families the tests run: how to build each, run it in vLLM and in transformers.

Only families with a builder are listed; the ones considered and not running here (and why)
are in ``docs/development/family-notes.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .audioflamingo3 import build_tiny_audioflamingo3
from .funaudiochat import build_tiny_funaudiochat
from .glmasr import build_tiny_glmasr
from .moss_audio import build_tiny_moss_audio
from .ultravox import build_tiny_ultravox
from .voxtral import build_tiny_voxtral


@dataclass
class Family:
    """One architecture family: how to build it, run it in vLLM and in transformers."""

    name: str
    builder: Callable[[str], str]
    #: transformers class that generates (name in ``transformers``), None when it has none
    hf_class: str | None
    #: make_backend keyword arguments beyond dtype/enforce_eager/max_model_len
    engine_args: dict[str, Any] = field(default_factory=dict)
    max_model_len: int = 4096
    #: why transformers cannot run it (when hf_class is None)
    hf_note: str = ""
    #: the processor's chat template takes the audio itself (as a base64 ``audio`` part) and
    #: tokenizes: Voxtral's, whose prompt mistral_common builds
    hf_audio_in_chat: bool = False


FAMILIES: dict[str, Family] = {
    "audioflamingo3": Family(
        "audioflamingo3",
        build_tiny_audioflamingo3,
        "AudioFlamingo3ForConditionalGeneration",
        engine_args={"limit_mm_per_prompt": {"audio": 1}},
    ),
    "ultravox": Family(
        "ultravox",
        build_tiny_ultravox,
        None,
        engine_args={"limit_mm_per_prompt": {"audio": 1}, "trust_remote_code": True},
        hf_note="transformers does not implement Ultravox (the hub model runs its own code)",
    ),
    "glmasr": Family(
        "glmasr",
        build_tiny_glmasr,
        "GlmAsrForConditionalGeneration",
        engine_args={"limit_mm_per_prompt": {"audio": 1}},
    ),
    "funaudiochat": Family(
        "funaudiochat",
        build_tiny_funaudiochat,
        None,
        engine_args={"limit_mm_per_prompt": {"audio": 1}},
        hf_note="transformers does not implement Fun-Audio-Chat (vLLM has its own config, processor and model)",
    ),
    "moss_audio": Family(
        "moss_audio",
        build_tiny_moss_audio,
        None,
        engine_args={"limit_mm_per_prompt": {"audio": 1}, "trust_remote_code": True},
        hf_note="transformers does not implement MOSS-Audio (vLLM has its own model and processor)",
    ),
    "voxtral": Family(
        "voxtral",
        build_tiny_voxtral,
        "VoxtralForConditionalGeneration",
        engine_args={
            "limit_mm_per_prompt": {"audio": 1},
            "tokenizer_mode": "mistral",
            "config_format": "mistral",
            "load_format": "mistral",
        },
        hf_audio_in_chat=True,
    ),
}
