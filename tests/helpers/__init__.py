"""Helpers the tests import (fixtures stay in ``tests/conftest.py``).

- :mod:`.clips`: where the real dataset copy lives, a synthetic dataset, the clips a test uses,
  the waveform a conversation carries.
- :mod:`.outputs`: ALLM outputs tables.
- :mod:`.judged_tables`: judged tables in this project's layout and the original's, scored rows.
- :mod:`.condition_runs`: run folders with an ALLM answering under interventions (``NAME@CONDITION``).
- :mod:`.servers`: a fault-injecting OpenAI-compatible chat server, a real vLLM server.
- :mod:`.ray_cluster`: a real Ray cluster on this machine.
- :mod:`.tiny_models`: tiny random-weight Qwen2 and Qwen2-Audio models, the tiny tokenizer.
- :mod:`.families`: tiny random-weight models of other audio LLM families, and their registry.

``tests/`` is on ``sys.path`` while pytest runs (its ``conftest.py`` is the rootdir's, imported
in pytest's default ``prepend`` mode), so tests import ``helpers.<module>``.
"""
