"""The numbers Wang et al. report (arXiv:2409.14526), as data for side-by-side display.

- :data:`PAPER_MODELS`: the paper's ALLMs, in Table II's column order.
- :data:`TABLE2`: Table II of the paper, Best-Mean per judge and the average of the three.
- :data:`DEPENDENCE_AVERAGE`: the modality-dependence averages over the three judges
  (the paper's Figure 2, last panel; the repository README's table), percent.

Only the averages of the dependence are published as numbers; the per-judge panels of
Figure 2 are a picture, so they are not here.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from jasco_utils.models.spec import CONDITION_SEP, CONDITIONS

#: ALLMs of the paper, in Table II's column order, with the model each name stands for.
PAPER_MODELS: dict[str, str] = {
    "WavLLM": "WavLLM-7B",
    "LTU-AS": "LTU-AS-7B",
    "SALMONN": "SALMONN-7B",
    "Qwen2-Audio": "Qwen2-Audio-7B-Instruct",
}

#: Table II: judge -> ALLM -> Best-Mean (0..2). "Average" is the paper's average row.
TABLE2: dict[str, dict[str, float]] = {
    "Llama-3.1-70B-Instruct": {"WavLLM": 0.49, "LTU-AS": 1.04, "SALMONN": 1.21, "Qwen2-Audio": 1.38},
    "Qwen2.5-72B-Instruct": {"WavLLM": 0.33, "LTU-AS": 1.19, "SALMONN": 1.29, "Qwen2-Audio": 1.43},
    "Mistral-123B-Instruct": {"WavLLM": 0.13, "LTU-AS": 0.74, "SALMONN": 0.80, "Qwen2-Audio": 0.88},
    "Average": {"WavLLM": 0.31, "LTU-AS": 0.99, "SALMONN": 1.10, "Qwen2-Audio": 1.23},
}

#: Average modality dependence over the three judges: ALLM -> (audio %, both %, speech %).
DEPENDENCE_AVERAGE: dict[str, tuple[int, int, int]] = {
    "WavLLM": (12, 11, 77),
    "LTU-AS": (23, 40, 37),
    "SALMONN": (31, 42, 27),
    "Qwen2-Audio": (16, 50, 34),
}


def table2_frame() -> pd.DataFrame:
    """Table II as a DataFrame: rows the judges and ``Average``, columns the ALLMs.

    >>> table2_frame().loc["Average", "Qwen2-Audio"]
    np.float64(1.23)
    """
    return pd.DataFrame(TABLE2).T[list(PAPER_MODELS)]


def in_paper_order(models: Iterable[str]) -> list[str]:
    """Distinct model names, the paper's ALLMs first in Table II's order, then the others
    in order of first appearance; an ALLM's interventions (``NAME@CONDITION``) right after it,
    in :data:`jasco_utils.models.spec.CONDITIONS`' order.

    >>> in_paper_order(["cascade", "Qwen2-Audio", "WavLLM", "cascade"])
    ['WavLLM', 'Qwen2-Audio', 'cascade']
    >>> in_paper_order(["c@speech_masked", "c@sound_suppressed", "c", "d@x"])
    ['c', 'c@sound_suppressed', 'c@speech_masked', 'd@x']
    """
    seen = list(dict.fromkeys(models))
    head = [m for m in PAPER_MODELS if m in seen]
    order = head + [m for m in seen if m not in head]

    def place(model: str) -> tuple[int, int]:
        base, sep, condition = model.rpartition(CONDITION_SEP)
        if sep and condition in CONDITIONS and base in order:
            return order.index(base), 1 + CONDITIONS.index(condition)
        return order.index(model), 0

    return sorted(order, key=place)
