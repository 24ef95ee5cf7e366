"""Tiny MOSS-Audio: a random-weight model and its config (code beside the weights), for vLLM."""

from __future__ import annotations

import json
import os

from ..tiny_models import SEED, fill_weights
from .common import TEXT, copy_source, make_tokenizer, token_ids
from .funaudiochat import FUNAUDIOCHAT_TEMPLATE

# MOSS-Audio's template (ChatML, Qwen3-style): an audio part renders as
# "<|audio_bos|><|AUDIO|><|audio_eos|>" (vLLM's processor expands "<|AUDIO|>").
MOSS_AUDIO_TEMPLATE = FUNAUDIOCHAT_TEMPLATE


# MOSS-Audio ships its config as code beside the weights (trust_remote_code); the one in
# sources/configuration_moss_audio.py.txt holds what vLLM reads: the audio encoder's settings,
# the Qwen3 language model's config (also the text config vLLM sizes the engine by), the
# adapter width and the number of DeepStack layers.
def build_tiny_moss_audio(out_dir: str, seed: int = SEED) -> str:
    """MOSS-Audio: an audio encoder with a three-convolution 2-D stem (8x in time), 2 layers of
    width 64 (the first one's output also injected into the language model's first layer,
    DeepStack), gated-MLP adapters and a Qwen3 text model. vLLM implements the model and the
    processor (Whisper log-mel features, token ids from processor_config.json); the config is
    code beside the weights (``trust_remote_code``); transformers does not implement it."""
    import torch
    from safetensors.torch import save_file
    from torch import nn
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    os.makedirs(out_dir, exist_ok=True)
    tok = make_tokenizer(
        extra_tokens=["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"], chat_template=MOSS_AUDIO_TEMPLATE
    )
    eos_id, pad_id, audio_id, bos_a, eos_a = token_ids(
        tok, "<|im_end|>", "<|endoftext|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"
    )
    d, ffn, down, adapter = 64, 128, 8, 128
    audio_cfg = dict(
        d_model=d,
        output_dim=d,
        num_mel_bins=128,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=ffn,
        downsample_rate=8,
        downsample_hidden_size=down,
        max_source_positions=1500,
        dropout=0.0,
        attention_dropout=0.0,
        activation_function="gelu",
        n_window=200,
        conv_chunksize=64,
        deepstack_encoder_layer_indexes=[0],
    )
    text_cfg = dict(
        **TEXT,
        head_dim=32,
        vocab_size=len(tok),
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )

    def gated(n_in: int) -> nn.Module:
        m = nn.Module()
        m.gate_proj, m.up_proj = nn.Linear(n_in, adapter, bias=False), nn.Linear(n_in, adapter, bias=False)
        m.down_proj = nn.Linear(adapter, d, bias=False)
        return m

    # the checkpoint's modules, under its names
    root = nn.Module()
    enc = root.audio_encoder = nn.Module()
    enc.conv1 = nn.Conv2d(1, down, 3, 2, padding=1)
    enc.conv2 = nn.Conv2d(down, down, 3, 2, padding=1)
    enc.conv3 = nn.Conv2d(down, down, 3, 2, padding=1)
    enc.stem_proj = nn.Linear(down * 16, d)  # 128 mel bins -> 16 after three stride-2 convolutions
    enc.layers = nn.ModuleList()
    for _ in range(audio_cfg["encoder_layers"]):
        layer = nn.Module()
        layer.self_attn = nn.Module()
        layer.self_attn.q_proj = nn.Linear(d, d)
        layer.self_attn.k_proj = nn.Linear(d, d, bias=False)
        layer.self_attn.v_proj = nn.Linear(d, d)
        layer.self_attn.out_proj = nn.Linear(d, d)
        layer.self_attn_layer_norm, layer.final_layer_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        layer.fc1, layer.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        enc.layers.append(layer)
    enc.layer_norm = nn.LayerNorm(d)
    root.audio_adapter = gated(d)
    root.deepstack_audio_merger_list = nn.ModuleList([gated(d)])
    lm = Qwen3ForCausalLM(Qwen3Config(**text_cfg))
    root.language_model, root.lm_head = lm.model, lm.lm_head
    root = root.to(torch.float32)
    fill_weights(root, seed)
    state = {k: v.detach().contiguous() for k, v in root.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = dict(
        architectures=["MossAudioModel"],
        model_type="moss_audio",
        auto_map={"AutoConfig": "configuration_moss_audio.MossAudioConfig"},
        audio_config=audio_cfg,
        language_config=text_cfg,
        adapter_hidden_size=adapter,
        deepstack_num_inject_layers=1,
        torch_dtype="float32",
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    copy_source("configuration_moss_audio.py", out_dir)
    GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "processor_config.json"), "w") as f:
        json.dump(
            {
                "audio_token_id": audio_id,
                "audio_start_id": bos_a,
                "audio_end_id": eos_a,
                "enable_time_marker": False,
                "mel_config": {"mel_dim": 128, "mel_sr": 16000, "mel_hop_length": 160, "mel_n_fft": 400},
            },
            f,
            indent=2,
        )
    return out_dir
