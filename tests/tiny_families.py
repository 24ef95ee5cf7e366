"""Tiny random-weight audio LLMs of several architecture families, built locally for tests.

One builder per family (``build_tiny_<family>(out_dir)``), each writing a folder that vLLM
loads, and transformers too where it implements the family: a config with tiny sizes (hidden
size 64, one or two layers, attention head sizes that vLLM's CPU attention accepts), the
family's processor, feature extractor and tokenizer made in code (the BPE tokenizer of
:mod:`tiny_models` with the family's special tokens; for Voxtral the same vocabulary as
mistral_common's tekken.json), a chat template that places the audio where the family's own
template does (and also renders vLLM's ``input_audio`` parts), weights drawn with
:func:`tiny_models._fill_weights` and the weight names vLLM expects (for Voxtral, both
transformers' layout and Mistral's). Where the hub model ships its config or processor as code
(Ultravox, MOSS-Audio), a small one written here goes beside the weights.

:data:`FAMILIES` lists every family considered, with the engine options it needs and what
is known about it (proven, or the error that stops it). Only the families a test runs keep a
builder; the others keep the error that stopped them here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiny_models import SEED, _fill_weights, build_tokenizer

#: What every tiny language model shares (head size 32).
TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=4096,
)


def _tokenizer(
    extra_tokens=(),
    named: dict[str, str] | None = None,
    eos="<|im_end|>",
    bos=None,
    pad="<|endoftext|>",
    unk=None,
    chat_template: str | None = None,
    vocab_size: int | None = None,
):
    """The tiny BPE tokenizer with extra special tokens; ``named`` ones (``audio_token=...``)
    also become tokenizer attributes, as processors look them up there."""
    from transformers import PreTrainedTokenizerFast

    named = dict(named or {})
    extra = list(dict.fromkeys([*extra_tokens, *named.values(), *(t for t in (bos, unk) if t)]))
    base = build_tokenizer(**({"vocab_size": vocab_size} if vocab_size else {}), extra_special_tokens=extra)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        extra_special_tokens=["<|im_start|>", "<|im_end|>", *extra],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
        **named,
    )
    tok.chat_template = chat_template
    return tok


def _ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _rename_keys(out_dir: str, rename: Callable[[str], str | None]) -> int:
    """Rewrite model.safetensors with renamed (or, for ``None``, dropped) weight names."""
    from safetensors.torch import load_file, save_file

    path = os.path.join(out_dir, "model.safetensors")
    state = load_file(path)
    new = {}
    for k, v in state.items():
        nk = rename(k)
        if nk is not None:
            new[nk] = v.contiguous()
    save_file(new, path, metadata={"format": "pt"})
    return sum(rename(k) != k for k in state)


def _prefix_renamer(pairs: list[tuple[str, str]]) -> Callable[[str], str]:
    def rename(k: str) -> str:
        for old, new in pairs:
            if k.startswith(old):
                return new + k[len(old) :]
        return k

    return rename


def _save(model, out_dir: str, eos_id, pad_id, seed: int = SEED, **gen) -> None:
    import torch
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    _fill_weights(model, seed)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False, **gen)
    model.save_pretrained(out_dir, safe_serialization=True)


def _audio_part_test(var: str = "content") -> str:
    """Jinja test: is this content part an audio one (HF ``audio``, OpenAI ``input_audio``/``audio_url``)."""
    return (
        f"{var}['type'] in ['audio', 'input_audio', 'audio_url'] or 'audio' in {var} "
        f"or 'audio_url' in {var} or 'input_audio' in {var}"
    )


# ---------------------------------------------------------------------------------------------
# Audio Flamingo 3
# ---------------------------------------------------------------------------------------------

# Audio Flamingo 3's template (ChatML with the default system message): the audio parts
# render as "<sound>" placeholders before the text of the turn.
AF3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}{% if " + _audio_part_test() + " %}<sound>{% endif %}{% endfor %}"
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
    tok = _tokenizer(extra_tokens=["<sound>"], chat_template=AF3_TEMPLATE)
    eos_id, pad_id = _ids(tok, "<|im_end|>", "<|endoftext|>")
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
    _save(model, out_dir, eos_id, pad_id, seed)
    _rename_keys(out_dir, _prefix_renamer([("language_model.model.model.", "language_model.model.")]))
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    )
    AudioFlamingo3Processor(features, tok, chat_template=AF3_TEMPLATE).save_pretrained(out_dir)
    return out_dir


# ---------------------------------------------------------------------------------------------
# Ultravox
# ---------------------------------------------------------------------------------------------

# Llama 3's template, as Ultravox (Llama-3.2 based) uses it: an audio part renders as the
# "<|audio|>" placeholder, in place, within the user turn.
ULTRAVOX_TEMPLATE = (
    "<|begin_of_text|>"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if " + _audio_part_test() + " %}<|audio|>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] | trim }}{% endif %}"
    "{% endfor %}"
    "{% endif %}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
ULTRAVOX_TOKENS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|audio|>"]

# Ultravox ships its processor as code beside the weights (trust_remote_code); this one does
# what it does: Whisper features per 30 s chunk, and "<|audio|>" expanded to one placeholder
# per projector frame (encoder frames / stack_factor).
ULTRAVOX_PROCESSING_PY = """# Ultravox processor: Whisper features in 30 s chunks and audio placeholders.
import math

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin


class UltravoxProcessor(ProcessorMixin):
    feature_extractor_class = "WhisperFeatureExtractor"
    tokenizer_class = "PreTrainedTokenizerFast"

    def __init__(self, feature_extractor=None, tokenizer=None, audio_placeholder="<|audio|>", stack_factor=8,
                 encoder_ds_factor=2, audio_context_size=3000, **kwargs):
        self.audio_placeholder = audio_placeholder
        self.audio_token_replacement = audio_placeholder
        self.stack_factor = stack_factor
        self.encoder_ds_factor = encoder_ds_factor
        self.audio_context_size = audio_context_size
        super().__init__(feature_extractor, tokenizer, **kwargs)

    @property
    def audio_processor(self):
        return self.feature_extractor

    def __call__(self, text=None, audio=None, audios=None, sampling_rate=16000, include_audio_num_chunks=False,
                 return_tensors=None, **kwargs):
        audios = audios if audios is not None else audio
        if isinstance(text, str):
            text = [text]
        if audios is not None and not isinstance(audios, (list, tuple)):
            audios = [audios]
        chunk = self.feature_extractor.n_samples
        values, lens, token_lens, num_chunks, expansions = [], [], [], [], []
        for wave in audios or []:
            wave = np.asarray(wave, dtype=np.float32)
            pieces = [wave[i:i + chunk] for i in range(0, max(len(wave), 1), chunk)]
            total = 0
            for piece in pieces:
                feats = self.feature_extractor(piece, sampling_rate=sampling_rate, padding="max_length",
                                               return_attention_mask=True, return_tensors="pt")
                n_frames = int(feats["attention_mask"].sum())
                n_tokens = math.ceil(math.ceil(n_frames / self.encoder_ds_factor) / self.stack_factor)
                values.append(feats["input_features"][0])
                lens.append(n_frames)
                token_lens.append(n_tokens)
                total += n_tokens
            num_chunks.append(len(pieces))
            expansions.append(total)
        data = {}
        if text is not None:
            out, k = [], 0
            for t in text:
                parts = t.split(self.audio_placeholder)
                t = parts[0]
                for rest in parts[1:]:
                    t += self.audio_token_replacement * expansions[k] + rest
                    k += 1
                out.append(t)
            data.update(self.tokenizer(out, add_special_tokens=False))
        if values:
            data["audio_values"] = torch.stack(values)
            data["audio_lens"] = torch.tensor(lens)
            data["audio_token_len"] = torch.tensor(token_lens)
            if include_audio_num_chunks:
                data["audio_num_chunks"] = torch.tensor(num_chunks)
        return BatchFeature(data, tensor_type=return_tensors)
"""


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
    tok = _tokenizer(
        extra_tokens=ULTRAVOX_TOKENS, eos="<|eot_id|>", bos="<|begin_of_text|>", chat_template=ULTRAVOX_TEMPLATE
    )
    eos_id, pad_id, bos_id, audio_id = _ids(tok, "<|eot_id|>", "<|endoftext|>", "<|begin_of_text|>", "<|audio|>")
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
    _fill_weights(root, seed)
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
    with open(os.path.join(out_dir, "ultravox_processing.py"), "w") as f:
        f.write(ULTRAVOX_PROCESSING_PY)
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


# ---------------------------------------------------------------------------------------------
# GLM-ASR
# ---------------------------------------------------------------------------------------------

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
    "{% if " + _audio_part_test() + " %}<|begin_of_audio|><|pad|><|end_of_audio|>"
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
    tok = _tokenizer(extra_tokens=GLMASR_TOKENS, eos="<|endoftext|>", chat_template=GLMASR_TEMPLATE)
    eos_ids = _ids(tok, "<|endoftext|>", "<|user|>", "<|observation|>")
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
    _save(model, out_dir, eos_ids, pad_id, seed)
    _rename_keys(out_dir, _prefix_renamer([("language_model.model.model.", "language_model.model.")]))
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400, return_attention_mask=True
    )
    GlmAsrProcessor(features, tok, chat_template=GLMASR_TEMPLATE, audio_token="<|pad|>").save_pretrained(out_dir)
    return out_dir


# ---------------------------------------------------------------------------------------------
# Fun-Audio-Chat
# ---------------------------------------------------------------------------------------------

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
    "{% if " + _audio_part_test() + " %}<|audio_bos|><|AUDIO|><|audio_eos|>"
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
    tok = _tokenizer(extra_tokens=["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"], chat_template=FUNAUDIOCHAT_TEMPLATE)
    eos_id, pad_id, audio_id = _ids(tok, "<|im_end|>", "<|endoftext|>", "<|AUDIO|>")
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
    _fill_weights(root, seed)
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


# ---------------------------------------------------------------------------------------------
# MOSS-Audio
# ---------------------------------------------------------------------------------------------

# MOSS-Audio's template (ChatML, Qwen3-style): an audio part renders as
# "<|audio_bos|><|AUDIO|><|audio_eos|>" (vLLM's processor expands "<|AUDIO|>").
MOSS_AUDIO_TEMPLATE = FUNAUDIOCHAT_TEMPLATE

# MOSS-Audio ships its config as code beside the weights (trust_remote_code); this one holds
# what vLLM reads: the audio encoder's settings, the Qwen3 language model's config (also the
# text config vLLM sizes the engine by), the adapter width and the number of DeepStack layers.
MOSS_AUDIO_CONFIG_PY = """# MOSS-Audio configuration: audio encoder settings and a Qwen3 language model.
from transformers import PretrainedConfig, Qwen3Config


class MossAudioConfig(PretrainedConfig):
    model_type = "moss_audio"
    sub_configs = {"language_config": Qwen3Config}

    def __init__(self, audio_config=None, language_config=None, adapter_hidden_size=8192, ignore_index=-100,
                 deepstack_num_inject_layers=None, **kwargs):
        self.audio_config = dict(audio_config or {})
        if isinstance(language_config, Qwen3Config):
            self.language_config = language_config
        else:
            self.language_config = Qwen3Config(**(language_config or {}))
        self.adapter_hidden_size = adapter_hidden_size
        self.ignore_index = ignore_index
        self.deepstack_num_inject_layers = deepstack_num_inject_layers
        for key in ("eos_token_id", "bos_token_id", "vocab_size"):
            kwargs.setdefault(key, getattr(self.language_config, key, None))
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    def get_text_config(self, decoder=False, encoder=False):
        return self.language_config
"""


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
    tok = _tokenizer(extra_tokens=["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"], chat_template=MOSS_AUDIO_TEMPLATE)
    eos_id, pad_id, audio_id, bos_a, eos_a = _ids(
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
    _fill_weights(root, seed)
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
    with open(os.path.join(out_dir, "configuration_moss_audio.py"), "w") as f:
        f.write(MOSS_AUDIO_CONFIG_PY)
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


# ---------------------------------------------------------------------------------------------
# Voxtral
# ---------------------------------------------------------------------------------------------

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
    _fill_weights(model, seed)
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
            k = _prefix_renamer(encoder_prefixes)(k)
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


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass
class Family:
    """One architecture family: how to build it, run it in vLLM and in transformers."""

    name: str
    builder: Callable[[str], str] | None
    #: transformers class that generates (name in ``transformers``), None when it has none
    hf_class: str | None
    #: make_backend keyword arguments beyond dtype/enforce_eager/max_model_len
    engine_args: dict[str, Any] = field(default_factory=dict)
    max_model_len: int = 4096
    #: "proven" (the test runs it) or why not
    status: str = "proven"
    #: why transformers cannot run it (when hf_class is None)
    hf_note: str = ""
    #: the model's sub-module whose ``generate`` transformers runs ("" = the model itself)
    hf_generate_attr: str = ""
    #: keyword arguments for the processor call besides text/audio
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    #: the keyword the processor takes the audio list under
    audio_kwarg: str = "audio"
    #: the processor's chat template takes the audio itself (as a base64 ``audio`` part) and
    #: tokenizes: Voxtral's, whose prompt mistral_common builds
    hf_audio_in_chat: bool = False


TORCHVISION = (
    "torchvision is not installed: PyPI's torchvision is a CUDA build pinned to another torch, and "
    "it breaks vLLM's CPU build (see the vLLM CPU notes)"
)

FAMILIES: dict[str, Family] = {
    # -- proven: the test runs these ------------------------------------------------------------
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
    # -- not running here: the builder or the engine stops, with the error recorded -------------
    "qwen2_5_omni": Family(
        "qwen2_5_omni",
        None,
        "Qwen2_5OmniForConditionalGeneration",
        engine_args={"limit_mm_per_prompt": {"audio": 1, "image": 0, "video": 0}},
        hf_generate_attr="thinker",
        status="blocked: Qwen2_5OmniProcessor needs a video processor: building it raises 'ImportError: "
        "Qwen2VLVideoProcessor requires the Torchvision library but it was not found in your environment.'; "
        "loading a processor saved without one raises \"OSError: Can't load video processor for '<dir>'\" "
        "(vLLM loads the same processor). " + TORCHVISION,
    ),
    "qwen3_asr": Family(
        "qwen3_asr",
        None,
        "Qwen3ASRForConditionalGeneration",
        engine_args={"limit_mm_per_prompt": {"audio": 1}},
        status="blocked: a tiny model of it ran in transformers, but vLLM cannot import its model: "
        "qwen3_asr.py imports qwen2_5_omni_thinker -> qwen2_5_vl -> qwen2_vl, which imports transformers' "
        "image_processing_qwen2_vl: 'ModuleNotFoundError: No module named 'torchvision'' (the engine "
        "reports 'Model architectures ['Qwen3ASRForConditionalGeneration'] failed to be inspected'). " + TORCHVISION,
    ),
    "qwen3_omni_moe": Family(
        "qwen3_omni_moe",
        None,
        "Qwen3OmniMoeForConditionalGeneration",
        status="blocked as qwen2_5_omni: Qwen3OmniMoeProcessor takes the same video processor "
        "(VIDEO_PROCESSOR_MAPPING_NAMES['qwen3_omni_moe'] == {'torchvision': None}). " + TORCHVISION,
    ),
    "gemma3n": Family(
        "gemma3n",
        None,
        None,
        engine_args={"limit_mm_per_prompt": {"audio": 1, "image": 0}},
        hf_note="transformers builds Gemma 3n's vision tower with timm (not installed; timm needs torchvision)",
        status="blocked: a tiny model of it was built, but vLLM's engine fails to start: gemma3n_mm.py:617 "
        "builds the vision tower with AutoModel.from_config even with image limit 0, and TimmWrapperModel raises 'ImportError: "
        "TimmWrapperModel requires the timm library but it was not found in your environment.' "
        "(transformers' Gemma3nForConditionalGeneration too). timm needs torchvision: " + TORCHVISION,
    ),
    "granite_speech": Family(
        "granite_speech",
        None,
        "GraniteSpeechForConditionalGeneration",
        status="blocked: 'ImportError: GraniteSpeechFeatureExtractor requires the torchaudio library but it was "
        "not found in your environment.' (its log-mel features are torchaudio's MelSpectrogram); PyPI's "
        "torchaudio is a CUDA build that breaks vLLM's CPU build",
    ),
    "phi4_multimodal": Family(
        "phi4_multimodal",
        None,
        "Phi4MultimodalForCausalLM",
        status="not supported by vLLM 0.32: its registry lists Phi4MultimodalForCausalLM (the transformers "
        "layout) under _PREVIOUSLY_SUPPORTED_MODELS (removed in 0.12.0); only the hub's remote-code "
        "Phi4MMForCausalLM remains, whose processor and weights are the hub model's own code",
    ),
    "midashenglm": Family(
        "midashenglm",
        None,
        None,
        status="blocked: vLLM cannot import its model: midashenglm.py raises 'ModuleNotFoundError: No module named "
        "'torchaudio'' (its Dasheng mel features are torchaudio's); PyPI's torchaudio is a CUDA build that "
        "breaks vLLM's CPU build",
    ),
    "cohere_asr": Family(
        "cohere_asr",
        None,
        "CohereAsrForConditionalGeneration",
        status="blocked as midashenglm: importing vLLM's cohere_asr.py raises 'ModuleNotFoundError: No module "
        "named 'torchaudio''",
    ),
    "funasr": Family(
        "funasr",
        None,
        None,
        status="blocked as midashenglm: importing vLLM's funasr.py raises 'ModuleNotFoundError: No module named "
        "'torchaudio''",
    ),
    "gemma4": Family(
        "gemma4",
        None,
        None,
        status="blocked: importing vLLM's gemma4_mm.py raises 'ModuleNotFoundError: Could not import module "
        "'Gemma4Processor'' (transformers' processing_gemma4 needs torchvision). " + TORCHVISION,
    ),
    "fireredasr2": Family(
        "fireredasr2",
        None,
        None,
        status="not run: vLLM's FireRedASR2 feature extractor computes its fbank features with kaldi_native_fbank "
        "('ModuleNotFoundError: No module named 'kaldi_native_fbank''), not a dependency of the project",
    ),
    "kimi_audio": Family(
        "kimi_audio",
        None,
        None,
        status="not run: vLLM's Kimi-Audio is made for its transcription endpoint: its tokenizer (tokenizer_mode "
        "'kimi_audio', tiktoken) has no chat template (get_chat_template returns only one passed in) and "
        "the folder has no processor to carry one, so (as read in vllm/tokenizers/kimi_audio.py and "
        "renderers/hf.py; not run) LLM.chat ends in 'No chat template available'; "
        "running it through infer_table needs a chat_template option in the project's vLLM backend "
        "(LLM.chat(..., chat_template=...)). Besides, its processor hard-codes the special token ids "
        "151643-151671 and reads Whisper's config, features and weights from whisper-large-v3/",
    ),
    "minicpmo": Family(
        "minicpmo",
        None,
        None,
        status="not run: the processor is the checkpoint's own remote code (vLLM wraps the checkpoint's "
        "MiniCPMOProcessor and image processor), and the model always builds MiniCPM-V's vision tower "
        "and resampler besides the Whisper audio tower",
    ),
    "phi4mm": Family(
        "phi4mm",
        None,
        None,
        status="not run: vLLM's Phi4MMForCausalLM (the hub's remote-code layout) takes the hub's processor "
        "code (processing_phi4mm.py, image and audio), too large to write here",
    ),
}


if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    FAMILIES[name].builder(out)
    print(json.dumps({"family": name, "out": out, "seconds": round(time.perf_counter() - t0, 2)}))
