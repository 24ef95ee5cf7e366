"""Judged tables built for tests: judge answers in the shapes the original script reads,
written in this project's layout or the original eval.py's; and scored rows (what
:func:`jasco_utils.analysis.scoring.read_judged_files` returns) built directly."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from jasco_utils.data.manifest import INSTRUCTIONS

LABELS = ["Audio-Oriented", "Speech-Oriented", "Good", "Both", "Neither"]


def judge_answer(rng: random.Random, rating: int, label: str) -> str:
    """A judge answer in one of the shapes the original script reads directly."""
    e1 = "Explanation1: The provided audio sound is rain, the model's answer is 'walking'. I think it fits."
    e2 = "Explanation2: The predicted speaker's action in the model's response is 'walking', I think so."
    sep = rng.choice(["\n", "\n\n"])
    orient = f"Orientation: {label}"
    if label != "Both" and rng.random() < 0.3:
        orient = f"Orientation: \n{label}"  # the variant the original also accepts
    return f"{e1}{sep}Rating: {rating}{sep}{e2}{sep}{orient}{rng.choice(['', chr(10)])}"


def make_rows(seed: int, clips=range(1, 81)) -> tuple[list[int], list[str]]:
    rng = random.Random(seed)
    ids, outputs = [], []
    for cid in clips:
        for _ in INSTRUCTIONS:
            ids.append(cid)
            outputs.append(judge_answer(rng, rng.choice([0, 1, 2]), rng.choice(LABELS)))
    return ids, outputs


def original_layout_file(path, ids, outputs, real_example=None):
    if real_example is not None:
        df = real_example.copy()
    else:
        df = pd.DataFrame({"id": ids, "prompt": [INSTRUCTIONS[i % 8] for i in range(len(ids))]})
    df["llama3_extract"] = outputs
    df.to_csv(path, index=False)
    return path


def project_layout_file(path, ids, outputs, model="m", judge="j", reask=None):
    df = pd.DataFrame(
        {
            "id": ids,
            "prompt": [INSTRUCTIONS[i % 8] for i in range(len(ids))],
            "allm_output": "they are walking",
            "model": model,
            "judge": judge,
            "judge_output": outputs,
        }
    )
    if reask is not None:
        df["reask_output"] = reask
    df.to_csv(path, index=False)
    return path


#: Orientations :func:`random_scored_rows` draws from (``None``: unreadable).
ORIENTS = ["Audio", "Both", "Speech", "Neither", None]


def scored_rows(spec, clips=range(1, 81), instructions=range(1, 9)) -> pd.DataFrame:
    """Scored rows from ``spec``: (model, judge) -> f(clip, instruction) -> (rating, orientation)."""
    recs = []
    for (model, judge), f in spec.items():
        for c in clips:
            for k in instructions:
                rating, orientation = f(c, k)
                recs.append(
                    {
                        "model": model,
                        "judge": judge,
                        "id": c,
                        "instruction": k,
                        "rating": rating,
                        "orientation": orientation,
                    }
                )
    rows = pd.DataFrame(recs)
    rows["rating"] = pd.array(rows["rating"], dtype="Int64")
    rows["orientation"] = pd.array(rows["orientation"], dtype=object)
    return rows


def random_scored_rows(seed=0, models=("m1", "m2"), judges=("j1", "j2", "j3"), clips=range(1, 81), p_missing=0.05):
    """Scored rows with random ratings (some unreadable) and orientations."""
    rng = np.random.default_rng(seed)

    def f(_c, _k):
        rating = None if rng.random() < p_missing else int(rng.integers(0, 3))
        return rating, ORIENTS[rng.choice(5, p=[0.25, 0.4, 0.25, 0.05, 0.05])]

    return scored_rows({(m, j): f for m in models for j in judges}, clips=clips)
