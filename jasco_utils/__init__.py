"""jasco: the JASCO benchmark (Joint Audio-Speech Co-Reasoning) end to end.

Implements the protocol of Wang et al., "What Are They Doing? Joint Audio-Speech
Co-Reasoning" (arXiv:2409.14526). The packages are floors; each imports only from the floors
below it (the ``layers`` contract in ``pyproject.toml``, checked by ``make lint``), top first:

- :mod:`jasco_utils.cli`: the ``jasco`` command, one module per command;
- :mod:`jasco_utils.doctor`: this machine's facts and the run plan (does each model fit);
- :mod:`jasco_utils.pipeline`: a run end to end (the notebooks), its stage jobs and executors;
- :mod:`jasco_utils.report`: Table II files, figures, ``results.json``, the run's page;
- :mod:`jasco_utils.analysis`: numbers only: the paper's metrics, scoring, statistics, the judge check;
- :mod:`jasco_utils.run`: one run folder, its layout and the readers of its tables;
- :mod:`jasco_utils.config`: the configuration files, checked, as model specs and run configurations;
- :mod:`jasco_utils.inference` and :mod:`jasco_utils.judging`: stage 2 (ALLM answers, imported
  answers, the cascade) and stage 3 (prompts, parsing, the judge runner, the reference judge,
  judged-table readers), side by side;
- :mod:`jasco_utils.models`: what a model is (the only generation defaults), the engines behind
  one contract, the call store (cache and resume) and the runner;
- :mod:`jasco_utils.data`: the dataset (download, clips, validation) and the manifest;
- :mod:`jasco_utils.core`: paths, whole-file writes and checked reads, secrets, errors.

The stable entry points are importable from here: :func:`parse_judgement`,
:func:`parse_reask`, :func:`read_verdict`, :func:`best_mean`, :func:`dependence`,
:class:`ModelSpec` and :func:`load_run_config`.
"""

from __future__ import annotations

import importlib
from typing import Any

from jasco_utils.core import __version__

#: Stable names -> the module that defines them (imported on first use).
_EXPORTS: dict[str, str] = {
    "parse_judgement": "jasco_utils.judging.parsing",
    "parse_reask": "jasco_utils.judging.parsing",
    "read_verdict": "jasco_utils.judging.parsing",
    "best_mean": "jasco_utils.analysis.metrics",
    "dependence": "jasco_utils.analysis.metrics",
    "ModelSpec": "jasco_utils.models.spec",
    "load_run_config": "jasco_utils.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jasco_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
