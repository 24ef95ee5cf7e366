"""Tiny random-weight audio LLMs of several architecture families, built locally for tests.

One builder per family and module (``build_tiny_<family>(out_dir)``), each writing a folder
that vLLM loads, and transformers too where it implements the family: a config with tiny sizes
(hidden size 64, one or two layers, attention head sizes that vLLM's CPU attention accepts),
the family's processor, feature extractor and tokenizer made in code (the BPE tokenizer of
:mod:`helpers.tiny_models` with the family's special tokens; for Voxtral the same vocabulary as
mistral_common's tekken.json), a chat template that places the audio where the family's own
template does (and also renders vLLM's ``input_audio`` parts), weights drawn with
:func:`helpers.tiny_models.fill_weights` and the weight names vLLM expects (for Voxtral, both
transformers' layout and Mistral's). Where the hub model ships its config or processor as code
(Ultravox, MOSS-Audio), a small one kept in ``sources/`` goes beside the weights.

:data:`FAMILIES` (in :mod:`.registry`) lists the families the tests run, with the engine
options each needs; ``docs/development/family-notes.md`` lists the families considered that do not run here, with the
error that stopped each.

Build one from the command line (from ``tests/``): ``python -m helpers.families NAME OUT_DIR``.
"""

from .registry import FAMILIES, Family

__all__ = ["FAMILIES", "Family"]
