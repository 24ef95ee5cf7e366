"""Build a tiny, random-weight, Qwen2-architecture chat model for offline tests.

Everything is made locally (no hub access) and deterministically:
  * the tokenizer corpus is generated from an embedded English word list with
    random.Random(SEED) (stable across Python versions), not read from disk;
  * BPE training with `tokenizers` is deterministic for a fixed corpus;
  * the weights are drawn with numpy's PCG64 (np.random.default_rng(SEED)), in sorted
    parameter-name order, so they do not depend on transformers' init code.

Usage:  python tests/helpers/tiny_models.py OUT_DIR [--audio]
        (or import and call build_tiny_text_model / build_tiny_audio_model)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

SEED = 0
VOCAB_TARGET = 4096  # BPE stops earlier if the corpus has no more merges
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as used by Qwen2 instruct models.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = """
the of and to a in is it you that he was for on are with as I his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no
most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line
differ turn cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should country found
answer school grow study still learn plant cover food sun four between state keep eye never
last let thought city tree cross farm hard start might story saw far sea draw left late run
while press close night real life few north open seem together next white children begin got
walk example ease paper group always music those both mark often letter until mile river car
feet care second book carry took science eat room friend began idea fish mountain stop once
base hear horse cut sure watch color face wood main enough plain girl usual young ready above
ever red list though feel talk bird soon body dog family direct pose leave song measure door
product black short numeral class wind question happen complete ship area half rock order fire
south problem piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast verb sing listen
six table travel less morning ten simple several vowel toward war lay against pattern slow
center love person money serve appear road map rain rule govern pull cold notice voice unit
power town fine certain fly fall lead cry dark machine note wait plan figure star box noun
field rest correct able pound done beauty drive stood contain front teach week final gave
green oh quick develop ocean warm free minute strong special mind behind clear tail produce
fact street inch multiply nothing course stay wheel full force blue object decide surface
deep moon island foot system busy test record boat common gold possible plane stead dry
wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes
distant fill east paint language among audio speech speaker recording clip sample rating
orientation oriented both neither transcript noise background silence loud quiet voice
microphone channel frequency signal judge score label evaluate describe analysis model
assistant system user message content response answer question instruction output format
""".split()

_PUNCT = [".", ".", ".", "?", "!", ",", ";", ":"]


def _corpus(n_sentences: int = 30000, seed: int = SEED) -> list[str]:
    """Deterministic pseudo-English: Zipf-weighted words, sentences and a few numbers."""
    rng = random.Random(seed)
    words = _WORDS
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(words))]
    lines = []
    for _ in range(n_sentences):
        n = rng.randint(4, 18)
        ws = rng.choices(words, weights=weights, k=n)
        ws[0] = ws[0].capitalize()
        if rng.random() < 0.1:
            ws.insert(rng.randrange(len(ws)), str(rng.randint(0, 2024)))
        if rng.random() < 0.05:
            ws.insert(0, rng.choice(["Rating:", "Orientation:", "Answer:", "Note:"]))
        lines.append(" ".join(ws) + rng.choice(_PUNCT))
    # Say every word in a few shapes so that each becomes a token.
    for w in words:
        lines.append(f"{w} {w.capitalize()} {w.upper()} ({w}) '{w}' \"{w}\" {w}s {w}ed {w}ing")
    return lines


def build_tokenizer(vocab_size: int = VOCAB_TARGET, extra_special_tokens=()):
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS + list(extra_special_tokens),  # ids 0, 1, 2, ...
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes -> no <unk>
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>", *extra_special_tokens],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def fill_weights(model, seed: int = SEED, std: float = 0.3) -> None:
    """Draw every weight of ``model`` from N(0, std) with numpy's PCG64, in sorted name order.

    Norm weights are set to 1 and norm biases to 0; Whisper-style sinusoidal position tables
    keep transformers' init. The tiny family builders use it too.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        # std 0.02 (the usual init) makes every prompt give the same greedy output
        # ("\n" repeated); std 0.3 gives prompt-dependent text.
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "embed_positions" in name:
                # Whisper-style encoders' sinusoidal position table: keep transformers' init
                continue
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith("norm.bias"):
                p.zero_()
            else:
                p.copy_(torch.from_numpy(rng.normal(0.0, std, size=tuple(p.shape)).astype(np.float32)))


def build_tiny_text_model(out_dir: str, seed: int = SEED) -> str:
    """Write a tiny Qwen2 chat model (config, safetensors, tokenizer, template) to out_dir."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer()
    vocab = len(tok)
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    pad_id = tok.convert_tokens_to_ids("<|endoftext|>")

    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,  # head size 64 / 2 = 32 (vLLM CPU attention accepts 32)
        num_key_value_heads=1,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    fill_weights(model, seed)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


#: Qwen2-Audio's special tokens: the audio placeholder and the markers around it.
AUDIO_TOKENS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]

# Qwen2-Audio-7B-Instruct's chat template (the default system message when the first turn is
# not a system turn; an audio part renders as "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n"),
# also matching parts by type so vLLM's ``{"type": "audio"}`` / ``input_audio`` parts render.
AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] in ['audio', 'input_audio', 'audio_url'] or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _rename_for_vllm(out_dir: str) -> int:
    """Rename ``language_model.model.model.*`` (transformers 5) to the hub layout vLLM loads.

    Returns the number of keys renamed; transformers reloads either layout.
    """
    from safetensors.torch import load_file, save_file

    path = os.path.join(out_dir, "model.safetensors")
    state = load_file(path)
    prefix, hub = "language_model.model.model.", "language_model.model."
    renamed = {(hub + k[len(prefix) :] if k.startswith(prefix) else k): v.contiguous() for k, v in state.items()}
    save_file(renamed, path, metadata={"format": "pt"})
    return sum(k.startswith(prefix) for k in state)


def build_tiny_audio_model(out_dir: str, seed: int = SEED) -> str:
    """Write a tiny Qwen2-Audio model (config, safetensors, tokenizer, feature extractor,
    processor and chat template) to out_dir.

    The encoder is Whisper-style (d_model 64, 2 layers, 128 mel bins), the language model is
    the tiny text model's shape; the feature extractor is Whisper's at 16 kHz. Weights are
    drawn as for the text model; the weight names are saved in the hub layout vLLM expects.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer(extra_special_tokens=AUDIO_TOKENS)
    tok.chat_template = AUDIO_CHAT_TEMPLATE
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    pad_id = tok.convert_tokens_to_ids("<|endoftext|>")

    config = Qwen2AudioConfig(
        audio_config=dict(
            model_type="qwen2_audio_encoder",
            d_model=64,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=128,
            num_mel_bins=128,
            max_source_positions=1500,  # 30 s of audio, as Whisper
        ),
        text_config=dict(
            model_type="qwen2",
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,  # head size 32 (vLLM CPU attention accepts 32)
            num_key_value_heads=1,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=False,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        ),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).to(torch.float32)
    fill_weights(model, seed)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    _rename_for_vllm(out_dir)

    features = WhisperFeatureExtractor(
        feature_size=128,
        sampling_rate=16000,
        hop_length=160,
        chunk_length=30,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=True,
    )
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok, chat_template=AUDIO_CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    out = sys.argv[1]
    t0 = time.perf_counter()
    (build_tiny_audio_model if "--audio" in sys.argv[2:] else build_tiny_text_model)(out)
    print(json.dumps({"out": out, "seconds": round(time.perf_counter() - t0, 2)}))
