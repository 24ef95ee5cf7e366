"""Tiny Ultravox: a random-weight model, its config and its processor (code beside the weights), for vLLM."""

from __future__ import annotations

import json
import os

from ..tiny_models import SEED, fill_weights
from .common import TEXT, audio_part_test, copy_source, make_tokenizer, token_ids

# Llama 3's template, as Ultravox (Llama-3.2 based) uses it: an audio part renders as the
# "<|audio|>" placeholder, in place, within the user turn.
ULTRAVOX_TEMPLATE = (
    "<|begin_of_text|>"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if " + audio_part_test() + " %}<|audio|>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] | trim }}{% endif %}"
    "{% endfor %}"
    "{% endif %}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
ULTRAVOX_TOKENS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|audio|>"]


# Ultravox ships its processor as code beside the weights (trust_remote_code); the one in
# sources/ultravox_processing.py.txt does what it does: Whisper features per 30 s chunk, and
# "<|audio|>" expanded to one placeholder per projector frame (encoder frames / stack_factor).
def build_tiny_ultravox(out_dir: str, seed: int = SEED) -> str:
    """Ultravox (v0.5 layout): Whisper encoder (1 layer, width 64), frames stacked by 8 and a
    SwiGLU projector, Llama text model. The config is vLLM's ``ultravox`` one; the processor is
    code beside the weights, as on the hub (the engine needs ``trust_remote_code``)."""
    import torch
    from safetensors.torch import save_file
    from torch import nn
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    os.makedirs(out_dir, exist_ok=True)
    tok = make_tokenizer(
        extra_tokens=ULTRAVOX_TOKENS, eos="<|eot_id|>", bos="<|begin_of_text|>", chat_template=ULTRAVOX_TEMPLATE
    )
    eos_id, pad_id, bos_id, audio_id = token_ids(tok, "<|eot_id|>", "<|endoftext|>", "<|begin_of_text|>", "<|audio|>")
    stack, proj_hidden = 8, 128
    audio_cfg = dict(
        model_type="whisper",
        d_model=64,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=128,
        num_mel_bins=128,
        max_source_positions=1500,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=128,
        vocab_size=64,
    )
    text_cfg = dict(
        model_type="llama",
        **TEXT,
        vocab_size=len(tok),
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    root = nn.Module()
    root.audio_tower = WhisperEncoder(WhisperConfig(**{k: v for k, v in audio_cfg.items() if k != "model_type"}))
    projector = root.multi_modal_projector = nn.Module()
    projector.ln_pre = nn.Module()
    projector.ln_pre.weight = nn.Parameter(torch.ones(64 * stack))
    projector.linear_1 = nn.Linear(64 * stack, proj_hidden, bias=False)
    projector.ln_mid = nn.Module()
    projector.ln_mid.weight = nn.Parameter(torch.ones(proj_hidden // 2))
    projector.linear_2 = nn.Linear(proj_hidden // 2, 64, bias=False)
    root.language_model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in text_cfg.items() if k != "model_type"}))
    root = root.to(torch.float32)
    fill_weights(root, seed)
    with torch.no_grad():  # the projector's RMS norms start at 1, as the other norms
        root.multi_modal_projector.ln_pre.weight.fill_(1.0)
        root.multi_modal_projector.ln_mid.weight.fill_(1.0)
    state = {k: v.detach().contiguous() for k, v in root.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = dict(
        architectures=["UltravoxModel"],
        model_type="ultravox",
        audio_config=audio_cfg,
        text_config=text_cfg,
        audio_token_index=audio_id,
        hidden_size=proj_hidden,
        stack_factor=stack,
        projector_act="swiglu",
        projector_ln_mid=True,
        norm_init=0.4,
        torch_dtype="float32",
        vocab_size=len(tok),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=bos_id, do_sample=False).save_pretrained(
        out_dir
    )
    tok.save_pretrained(out_dir)
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    )
    copy_source("ultravox_processing.py", out_dir)
    with open(os.path.join(out_dir, "processor_config.json"), "w") as f:
        json.dump(
            {
                "processor_class": "UltravoxProcessor",
                "auto_map": {"AutoProcessor": "ultravox_processing.UltravoxProcessor"},
                "feature_extractor": features.to_dict(),
                "audio_placeholder": "<|audio|>",
                "stack_factor": stack,
                "encoder_ds_factor": 2,
                "audio_context_size": 3000,
            },
            f,
            indent=2,
        )
    return out_dir
