"""jasco: the JASCO benchmark (Joint Audio-Speech Co-Reasoning) end to end.

Implements the protocol of Wang et al., "What Are They Doing? Joint Audio-Speech
Co-Reasoning" (arXiv:2409.14526). The subpackages follow the pipeline:

- :mod:`jasco_utils.data`: the dataset (download, clips, validation) and the 640-row manifest;
- :mod:`jasco_utils.models`: one contract for every model, the engines behind it, the call
  store (cache and resume) and the runner that puts them together;
- :mod:`jasco_utils.inference`: ALLM answers, imported answers, the cascade baseline, ablations;
- :mod:`jasco_utils.judging`: the judge prompts, the parsing of judge answers, the judge runner;
- :mod:`jasco_utils.analysis`: the paper's metrics, scoring, statistics, Table II, Figure 2;

with :mod:`jasco_utils.config` (models and runs as data), :mod:`jasco_utils.pipeline` (a run
end to end) and :mod:`jasco_utils.cli` (the ``jasco`` command).

The stable entry points are importable from here: :func:`parse_judgement`,
:func:`parse_reask`, :func:`read_verdict`, :func:`best_mean`, :func:`dependence`,
:class:`ModelSpec` and :func:`load_run_config`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Stable names -> the module that defines them (imported on first use).
_EXPORTS: dict[str, str] = {
    "parse_judgement": "jasco_utils.judging.parsing",
    "parse_reask": "jasco_utils.judging.parsing",
    "read_verdict": "jasco_utils.judging.parsing",
    "best_mean": "jasco_utils.analysis.metrics",
    "dependence": "jasco_utils.analysis.metrics",
    "ModelSpec": "jasco_utils.config",
    "load_run_config": "jasco_utils.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jasco_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
