"""Tiny Audio Flamingo 3: a random-weight model that vLLM and transformers both load."""

from __future__ import annotations

import os

from ..tiny_models import SEED
from .common import TEXT, audio_part_test, make_tokenizer, prefix_renamer, rename_keys, save_model, token_ids

# Audio Flamingo 3's template (ChatML with the default system message): the audio parts
# render as "<sound>" placeholders before the text of the turn.
AF3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}{% if " + audio_part_test() + " %}<sound>{% endif %}{% endfor %}"
    "{% for content in message['content'] %}{% if content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_audioflamingo3(out_dir: str, seed: int = SEED) -> str:
    """Audio Flamingo 3: Whisper-style encoder (1 layer, width 64), average pooling, a two-layer
    projector, Qwen2 text model; Whisper features in 30 s windows."""
    import torch
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    os.makedirs(out_dir, exist_ok=True)
    tok = make_tokenizer(extra_tokens=["<sound>"], chat_template=AF3_TEMPLATE)
    eos_id, pad_id = token_ids(tok, "<|im_end|>", "<|endoftext|>")
    config = AudioFlamingo3Config(
        audio_config=dict(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=128,
            num_mel_bins=128,
            max_source_positions=1500,
        ),
        text_config=dict(
            model_type="qwen2",
            **TEXT,
            vocab_size=len(tok),
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        ),
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
    )
    model = AudioFlamingo3ForConditionalGeneration(config).to(torch.float32)
    save_model(model, out_dir, eos_id, pad_id, seed)
    rename_keys(out_dir, prefix_renamer([("language_model.model.model.", "language_model.model.")]))
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    )
    AudioFlamingo3Processor(features, tok, chat_template=AF3_TEMPLATE).save_pretrained(out_dir)
    return out_dir
