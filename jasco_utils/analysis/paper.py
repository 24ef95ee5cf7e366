"""The numbers Wang et al. report (arXiv:2409.14526), as data for side-by-side display.

- :data:`TABLE2`: Table II of the paper, Best-Mean per judge and the average of the three.
- :data:`DEPENDENCE_AVERAGE`: the modality-dependence averages over the three judges
  (the paper's Figure 2, last panel; the repository README's table), percent.
- :data:`README_LLAMA_BEST_MEAN`, :data:`README_LLAMA_DEPENDENCE`: the Llama-3.1-70B-only
  results of an earlier version of the repository README (equal to Table II's Llama row;
  the dependence also drawn in its ``dependence.png``).

Only the averages of the dependence are published as numbers; the per-judge panels of
Figure 2 are a picture, so they are not here.
"""

from __future__ import annotations

import pandas as pd

#: ALLMs of the paper, in Table II's column order, with the model each name stands for.
PAPER_MODELS: dict[str, str] = {
    "WavLLM": "WavLLM-7B",
    "LTU-AS": "LTU-AS-7B",
    "SALMONN": "SALMONN-7B",
    "Qwen2-Audio": "Qwen2-Audio-7B-Instruct",
}

#: The paper's judges, in Table II's row order, with their model ids.
PAPER_JUDGES: dict[str, str] = {
    "Llama-3.1-70B-Instruct": "meta-llama/Llama-3.1-70B-Instruct",
    "Qwen2.5-72B-Instruct": "Qwen/Qwen2.5-72B-Instruct",
    "Mistral-123B-Instruct": "mistralai/Mistral-Large-Instruct-2411",
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

#: Best-Mean with the Llama-3.1-70B-Instruct judge only (earlier repository README).
README_LLAMA_BEST_MEAN: dict[str, float] = dict(TABLE2["Llama-3.1-70B-Instruct"])

#: Modality dependence with the Llama-3.1-70B-Instruct judge only: (audio %, both %, speech %).
README_LLAMA_DEPENDENCE: dict[str, tuple[int, int, int]] = {
    "WavLLM": (9, 17, 74),
    "LTU-AS": (19, 49, 32),
    "SALMONN": (27, 48, 25),
    "Qwen2-Audio": (13, 56, 31),
}


def table2_frame() -> pd.DataFrame:
    """Table II as a DataFrame: rows the judges and ``Average``, columns the ALLMs.

    >>> table2_frame().loc["Average", "Qwen2-Audio"]
    np.float64(1.23)
    """
    return pd.DataFrame(TABLE2).T[list(PAPER_MODELS)]


def dependence_frame(which: str = "average") -> pd.DataFrame:
    """Published dependence percentages, ``which`` = ``"average"`` or ``"llama"``.

    Returns:
        Rows the ALLMs, columns ``audio_pct``, ``both_pct``, ``speech_pct``.
    """
    data = {"average": DEPENDENCE_AVERAGE, "llama": README_LLAMA_DEPENDENCE}[which]
    return pd.DataFrame.from_dict(data, orient="index", columns=["audio_pct", "both_pct", "speech_pct"])
