"""Tiny Fun-Audio-Chat (its speech-to-text path): a random-weight model and speech tokenizer, for vLLM."""

from __future__ import annotations

import json
import os

from ..tiny_models import SEED, fill_weights
from .common import TEXT, audio_part_test, make_tokenizer, token_ids

# Fun-Audio-Chat's template (ChatML, Qwen-style): an audio part renders as
# "<|audio_bos|><|AUDIO|><|audio_eos|>" (vLLM expands "<|AUDIO|>", one per 5 frames at 25 Hz).
FUNAUDIOCHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if " + audio_part_test() + " %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: the speech tokenizer's vocabulary (the discrete speech codes; only its pad token is used for
#: speech-to-text, one per 25 Hz frame)
FUNAUDIOCHAT_CODEBOOK = 8


def build_tiny_funaudiochat(out_dir: str, seed: int = SEED) -> str:
    """Fun-Audio-Chat (speech-to-text path): a Whisper-style continuous encoder (1 layer, width 64,
    average pooling to 25 Hz) whose frames replace the discrete speech-code embeddings, grouped
    by 5, and a Qwen3 text model. vLLM implements it with its own config and processor
    (Whisper features, plus a speech tokenizer in ``speech_tokenizer/``); transformers does not."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models
    from torch import nn
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen3Config,
        Qwen3ForCausalLM,
        WhisperFeatureExtractor,
    )

    os.makedirs(out_dir, exist_ok=True)
    tok = make_tokenizer(
        extra_tokens=["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"], chat_template=FUNAUDIOCHAT_TEMPLATE
    )
    eos_id, pad_id, audio_id = token_ids(tok, "<|im_end|>", "<|endoftext|>", "<|AUDIO|>")
    d, out_dim, ffn = 64, 64, 128
    audio_cfg = dict(
        model_type="funaudiochat_audio_encoder",
        num_mel_bins=128,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=ffn,
        d_model=d,
        max_source_positions=1500,
        n_window=100,
        output_dim=out_dim,
        codebook_size=FUNAUDIOCHAT_CODEBOOK,
        pad_token_id=0,
        group_size=5,
        continuous_features_mode="replace",
        enable_audio_invert_tower=False,
    )
    text_cfg = dict(
        model_type="qwen3",
        **TEXT,
        head_dim=32,
        vocab_size=len(tok),
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    # the checkpoint's modules, under its names
    root = nn.Module()
    enc = root.continuous_audio_tower = nn.Module()
    enc.conv1 = nn.Conv1d(128, d, kernel_size=3, padding=1)
    enc.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
    enc.layers = nn.ModuleList()
    layer = nn.Module()
    layer.self_attn = nn.Module()
    layer.self_attn.q_proj = nn.Linear(d, d)
    layer.self_attn.k_proj = nn.Linear(d, d, bias=False)
    layer.self_attn.v_proj = nn.Linear(d, d)
    layer.self_attn.out_proj = nn.Linear(d, d)
    layer.self_attn_layer_norm = nn.LayerNorm(d)
    layer.fc1, layer.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
    layer.final_layer_norm = nn.LayerNorm(d)
    enc.layers.append(layer)
    enc.ln_post = nn.LayerNorm(d)
    enc.proj = nn.Linear(d, out_dim)
    enc.audio_bos_eos_token = nn.Embedding(2, out_dim)
    disc = root.audio_tower = nn.Module()
    disc.embed_tokens = nn.Embedding(FUNAUDIOCHAT_CODEBOOK, out_dim)
    disc.output_matching = nn.Linear(out_dim, out_dim, bias=False)
    disc.continual_output_matching = nn.Linear(out_dim, out_dim, bias=False)
    root.language_model = Qwen3ForCausalLM(Qwen3Config(**{k: v for k, v in text_cfg.items() if k != "model_type"}))
    root = root.to(torch.float32)
    fill_weights(root, seed)
    state = {k: v.detach().contiguous() for k, v in root.state_dict().items()}
    # vLLM 0.32 cannot load separate q/k/v projections of the audio encoder (its attention's
    # mapper looks for ".q_proj" in names that reach it as "q_proj.weight"): write them fused,
    # as vLLM's qkv_proj holds them (the k projection has no bias: zeros there)
    for n in range(len(enc.layers)):
        pre = f"continuous_audio_tower.layers.{n}.self_attn."
        q, k, v = (state.pop(f"{pre}{x}_proj.weight") for x in "qkv")
        state[f"{pre}qkv_proj.weight"] = torch.cat([q, k, v]).contiguous()
        qb, vb = state.pop(f"{pre}q_proj.bias"), state.pop(f"{pre}v_proj.bias")
        state[f"{pre}qkv_proj.bias"] = torch.cat([qb, torch.zeros_like(qb), vb]).contiguous()
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = dict(
        architectures=["FunAudioChatForConditionalGeneration"],
        model_type="funaudiochat",
        audio_config=audio_cfg,
        text_config=text_cfg,
        audio_token_index=audio_id,
        hidden_size=64,
        torch_dtype="float32",
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    ).save_pretrained(out_dir)
    # the speech tokenizer: one token per speech code, the pad token first (the codebook's padding index)
    codes = ["<|audio_pad|>"] + [f"<|speech_{i}|>" for i in range(1, FUNAUDIOCHAT_CODEBOOK)]
    speech = Tokenizer(models.WordLevel({c: i for i, c in enumerate(codes)}, unk_token="<|audio_pad|>"))
    speech.add_special_tokens(codes)
    PreTrainedTokenizerFast(
        tokenizer_object=speech, pad_token="<|audio_pad|>", unk_token="<|audio_pad|>", model_max_length=100000
    ).save_pretrained(os.path.join(out_dir, "speech_tokenizer"))
    return out_dir
