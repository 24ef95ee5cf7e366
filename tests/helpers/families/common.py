"""What the tiny family builders share: the language model's sizes, the tokenizer, weight
saving and renaming, the chat templates' audio-part test, and the Python sources that go beside
a family's weights (kept as text in ``sources/``, copied at build time)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..tiny_models import SEED, build_tokenizer, fill_weights

#: The Python files that go beside a family's weights, as the hub ships them (``<name>.txt``).
SOURCES = Path(__file__).resolve().parent / "sources"

#: What every tiny language model shares (head size 32).
TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=4096,
)


def make_tokenizer(
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


def token_ids(tok, *tokens: str) -> list[int]:
    """The ids of ``tokens`` in ``tok``'s vocabulary."""
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def rename_keys(out_dir: str, rename: Callable[[str], str | None]) -> int:
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


def prefix_renamer(pairs: list[tuple[str, str]]) -> Callable[[str], str]:
    """A weight-name renamer: the first matching ``(old, new)`` prefix is replaced."""

    def rename(k: str) -> str:
        for old, new in pairs:
            if k.startswith(old):
                return new + k[len(old) :]
        return k

    return rename


def save_model(model, out_dir: str, eos_id, pad_id, seed: int = SEED, **gen) -> None:
    """Fill ``model``'s weights (:func:`fill_weights`), set greedy generation settings and save it."""
    import torch
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    fill_weights(model, seed)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False, **gen)
    model.save_pretrained(out_dir, safe_serialization=True)


def audio_part_test(var: str = "content") -> str:
    """Jinja test: is this content part an audio one (HF ``audio``, OpenAI ``input_audio``/``audio_url``)."""
    return (
        f"{var}['type'] in ['audio', 'input_audio', 'audio_url'] or 'audio' in {var} "
        f"or 'audio_url' in {var} or 'input_audio' in {var}"
    )


def copy_source(name: str, out_dir: str) -> None:
    """Write ``sources/<name>.txt`` to ``out_dir/<name>``: code a family's folder carries."""
    shutil.copyfile(SOURCES / f"{name}.txt", os.path.join(out_dir, name))
