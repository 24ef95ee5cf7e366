"""Tiny GLM-ASR: a random-weight model that vLLM and transformers both load."""

from __future__ import annotations

import os

from ..tiny_models import SEED
from .common import TEXT, audio_part_test, make_tokenizer, prefix_renamer, rename_keys, save_model, token_ids

GLMASR_TOKENS = [
    "[gMASK]",
    "<sop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_audio|>",
    "<|pad|>",
    "<|end_of_audio|>",
]
# GLM-4's template, as GLM-ASR uses it: "[gMASK]<sop>", turns as "<|role|>\n...", an audio part
# renders as "<|begin_of_audio|><|pad|><|end_of_audio|>" (the processor expands "<|pad|>").
GLMASR_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if " + audio_part_test() + " %}<|begin_of_audio|><|pad|><|end_of_audio|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_glmasr(out_dir: str, seed: int = SEED) -> str:
    """GLM-ASR: Whisper-style encoder with rotary positions (1 layer, width 64), four frames
    merged into one by the projector, Llama text model (tied embeddings)."""
    import torch
    from transformers import GlmAsrConfig, GlmAsrForConditionalGeneration, GlmAsrProcessor, WhisperFeatureExtractor

    os.makedirs(out_dir, exist_ok=True)
    tok = make_tokenizer(extra_tokens=GLMASR_TOKENS, eos="<|endoftext|>", chat_template=GLMASR_TEMPLATE)
    eos_ids = token_ids(tok, "<|endoftext|>", "<|user|>", "<|observation|>")
    pad_id = eos_ids[0]
    config = GlmAsrConfig(
        # intermediate_size / hidden_size is the number of frames merged (4)
        audio_config=dict(
            hidden_size=64,
            intermediate_size=256,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            num_mel_bins=128,
            max_position_embeddings=1500,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        ),
        text_config=dict(
            **TEXT,
            vocab_size=len(tok),
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            eos_token_id=eos_ids,
            pad_token_id=pad_id,
        ),
        audio_token_id=tok.convert_tokens_to_ids("<|pad|>"),
        tie_word_embeddings=True,
    )
    model = GlmAsrForConditionalGeneration(config).to(torch.float32)
    save_model(model, out_dir, eos_ids, pad_id, seed)
    rename_keys(out_dir, prefix_renamer([("language_model.model.model.", "language_model.model.")]))
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    )
    GlmAsrProcessor(features, tok, chat_template=GLMASR_TEMPLATE, audio_token="<|pad|>").save_pretrained(out_dir)
    return out_dir
