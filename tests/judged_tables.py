"""Judged tables built for tests: judge answers in the shapes the original script reads,
written in this project's layout or the original eval.py's."""

from __future__ import annotations

import random

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
