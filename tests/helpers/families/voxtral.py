"""Tiny Voxtral: a random-weight model in transformers' layout and Mistral's, with a tiny tekken.json."""

from __future__ import annotations

import json
import os

from ..tiny_models import SEED, build_tokenizer, fill_weights
from .common import TEXT, prefix_renamer

#: Tekken's control tokens in their ranks (Voxtral's: "[AUDIO]" is 24, "[BEGIN_AUDIO]" 25,
#: "[TRANSCRIBE]" 34); the other ranks up to VOXTRAL_NUM_SPECIAL are fillers.
VOXTRAL_SPECIAL = {
    0: "<unk>",
    1: "<s>",
    2: "</s>",
    3: "[INST]",
    4: "[/INST]",
    5: "[AVAILABLE_TOOLS]",
    6: "[/AVAILABLE_TOOLS]",
    7: "[TOOL_RESULTS]",
    8: "[/TOOL_RESULTS]",
    9: "[TOOL_CALLS]",
    10: "[IMG]",
    11: "<pad>",
    12: "[IMG_BREAK]",
    13: "[IMG_END]",
    14: "[PREFIX]",
    15: "[MIDDLE]",
    16: "[SUFFIX]",
    17: "[SYSTEM_PROMPT]",
    18: "[/SYSTEM_PROMPT]",
    19: "[TOOL_CONTENT]",
    20: "[ARGS]",
    21: "[CALL_ID]",
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    34: "[TRANSCRIBE]",
}
VOXTRAL_SPECIAL_IDS = {v: k for k, v in VOXTRAL_SPECIAL.items()}
VOXTRAL_NUM_SPECIAL = 64
#: Tekken's pre-tokenization pattern
TEKKEN_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_tiny_tekken(path: str) -> int:
    """A tekken.json (mistral_common's tokenizer file, version v11, with Voxtral's audio settings)
    whose byte-level vocabulary is the tiny BPE's, in its merge order; returns the vocabulary size."""
    import base64

    from mistral_common.tokens.tokenizers.tekken import Tekkenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    bpe = build_tokenizer()
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    specials = set(bpe.all_special_tokens)
    # tekken's first 256 ranks are the single bytes, in byte order; the merges follow in BPE order
    merged = [bytes([i]) for i in range(256)]
    for token, _ in sorted(bpe.backend_tokenizer.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1]):
        raw = bytes(byte_of[c] for c in token) if token not in specials else b""
        if len(raw) > 1 and raw not in merged:
            merged.append(raw)
    vocab = [
        {"rank": r, "token_bytes": base64.b64encode(raw).decode(), "token_str": None} for r, raw in enumerate(merged)
    ]
    special = [
        {
            "rank": r,
            "token_str": VOXTRAL_SPECIAL.get(r, Tekkenizer.SPECIAL_TOKEN_TEMPLATE.format(id=r)),
            "is_control": True,
        }
        for r in range(VOXTRAL_NUM_SPECIAL)
    ]
    size = VOXTRAL_NUM_SPECIAL + len(vocab)
    data = {
        "config": {
            "pattern": TEKKEN_PATTERN,
            "num_vocab_tokens": len(vocab),
            "default_vocab_size": size,
            "default_num_special_tokens": VOXTRAL_NUM_SPECIAL,
            "version": "v11",
        },
        "vocab": vocab,
        "special_tokens": special,
        "version": 1,
        "type": "Tekken",
        "audio": {
            "sampling_rate": 16000,
            "frame_rate": 12.5,
            "chunk_length_s": 30.0,
            "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
        },
    }
    with open(path, "w") as f:
        json.dump(data, f)
    return size


def build_tiny_voxtral(out_dir: str, seed: int = SEED) -> str:
    """Voxtral: Whisper encoder (1 layer, width 64), four frames stacked into the projector, a
    Llama text model; mistral_common's tokenizer (a tiny tekken.json) does the chat format and the
    audio tokens. The folder holds both layouts of the same weights: transformers' (config.json,
    model.safetensors) and Mistral's that vLLM reads (params.json, consolidated.safetensors, with
    ``tokenizer_mode``/``config_format``/``load_format`` "mistral")."""
    import torch
    from safetensors.torch import save_file
    from transformers import (
        GenerationConfig,
        VoxtralConfig,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )
    from transformers.tokenization_mistral_common import MistralCommonBackend

    os.makedirs(out_dir, exist_ok=True)
    vocab = write_tiny_tekken(os.path.join(out_dir, "tekken.json"))
    bos_id, eos_id, pad_id = 1, 2, 11
    d, ffn, n_heads, head_dim = 64, 256, 2, 32  # ffn = 4 * d: the projector takes 4 stacked frames
    text = dict(TEXT, head_dim=head_dim)
    config = VoxtralConfig(
        audio_config=dict(
            hidden_size=d,
            intermediate_size=ffn,
            num_hidden_layers=1,
            num_attention_heads=n_heads,
            num_mel_bins=128,
            max_source_positions=1500,
            vocab_size=64,
        ),
        text_config=dict(
            **text,
            vocab_size=vocab,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        ),
        audio_token_id=VOXTRAL_SPECIAL_IDS["[AUDIO]"],
    )
    model = VoxtralForConditionalGeneration(config).to(torch.float32)
    torch.manual_seed(seed)
    fill_weights(model, seed)
    with torch.no_grad():  # Voxtral's encoder positions are Whisper's sinusoids (vLLM computes them)
        from transformers.models.whisper.modeling_whisper import sinusoids

        positions = model.get_submodule("model.audio_tower.embed_positions").weight
        positions.copy_(sinusoids(*positions.shape))
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    processor = VoxtralProcessor(
        WhisperFeatureExtractor(
            feature_size=128,
            sampling_rate=16000,
            hop_length=160,
            chunk_length=30,
            n_fft=400,
            return_attention_mask=True,
        ),
        MistralCommonBackend(tokenizer_path=os.path.join(out_dir, "tekken.json")),
    )
    processor.save_pretrained(out_dir)

    # Mistral's layout of the same weights: rotary q/k rows interleaved (vLLM undoes it on load)
    def interleave(w: torch.Tensor, heads: int) -> torch.Tensor:
        return w.view(heads, 2, head_dim // 2, w.shape[1]).transpose(1, 2).reshape(w.shape)

    lm_names = [
        ("self_attn.q_proj", "attention.wq"),
        ("self_attn.k_proj", "attention.wk"),
        ("self_attn.v_proj", "attention.wv"),
        ("self_attn.o_proj", "attention.wo"),
        ("mlp.gate_proj", "feed_forward.w1"),
        ("mlp.down_proj", "feed_forward.w2"),
        ("mlp.up_proj", "feed_forward.w3"),
        ("post_attention_layernorm", "ffn_norm"),
        ("input_layernorm", "attention_norm"),
        ("embed_tokens", "tok_embeddings"),
    ]
    encoder_prefixes = [
        ("conv1.", "conv_layers.0."),
        ("conv2.", "conv_layers.1."),
        ("layer_norm.", "transformer.norm."),
        ("layers.", "transformer.layers."),
    ]
    encoder_names = [
        ("self_attn.q_proj", "attention.wq"),
        ("self_attn.k_proj", "attention.wk"),
        ("self_attn.v_proj", "attention.wv"),
        ("self_attn.out_proj", "attention.wo"),
        ("self_attn_layer_norm", "attention_norm"),
        ("final_layer_norm", "ffn_norm"),
        ("fc1", "feed_forward.w1"),
        ("fc2", "feed_forward.w2"),
    ]
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().contiguous()
        if k == "lm_head.weight":
            out["output.weight"] = v
        elif k.startswith("model.language_model."):
            k = k[len("model.language_model.") :]
            for old, new in lm_names:
                k = k.replace(old, new)
            if k.endswith("attention.wq.weight"):
                v = interleave(v, text["num_attention_heads"]).contiguous()
            elif k.endswith("attention.wk.weight"):
                v = interleave(v, text["num_key_value_heads"]).contiguous()
            out[k] = v
        elif k.startswith("model.audio_tower."):
            k = k[len("model.audio_tower.") :]
            if k.startswith("embed_positions"):
                continue  # sinusoidal: vLLM computes it
            k = prefix_renamer(encoder_prefixes)(k)
            for old, new in encoder_names:
                k = k.replace(old, new)
            out["mm_whisper_embeddings.whisper_encoder." + k] = v
        elif k.startswith("model.multi_modal_projector.linear_"):
            layer = {"1": 0, "2": 2}[k[len("model.multi_modal_projector.linear_")]]
            out[f"mm_whisper_embeddings.audio_language_projection.{layer}.weight"] = v
        else:
            raise KeyError(k)
    save_file(out, os.path.join(out_dir, "consolidated.safetensors"), metadata={"format": "pt"})
    params = {
        "dim": d,
        "n_layers": text["num_hidden_layers"],
        "head_dim": head_dim,
        "hidden_dim": text["intermediate_size"],
        "n_heads": text["num_attention_heads"],
        "n_kv_heads": text["num_key_value_heads"],
        "rope_theta": 10000.0,
        "norm_eps": config.text_config.rms_norm_eps,
        "vocab_size": vocab,
        "max_seq_len": text["max_position_embeddings"],
        "max_position_embeddings": text["max_position_embeddings"],
        "multimodal": {
            "whisper_model_args": {
                "encoder_args": {
                    "dim": d,
                    "n_layers": 1,
                    "head_dim": d // n_heads,
                    "hidden_dim": ffn,
                    "n_heads": n_heads,
                    "vocab_size": 64,
                    "max_source_positions": 1500,
                    "audio_encoding_args": {
                        "num_mel_bins": 128,
                        "window_size": 400,
                        "sampling_rate": 16000,
                        "hop_length": 160,
                    },
                },
                "downsample_args": {"downsample_factor": 4},
            }
        },
    }
    with open(os.path.join(out_dir, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
    return out_dir
