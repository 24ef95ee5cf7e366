"""Run folders with ALLMs that answered under interventions (``NAME@CONDITION``), for the pages' tests:
outputs tables as inference writes them (``audio_mode``, ``transcript``) and judged tables in this
project's layout, synthetic answers and verdicts on real or synthetic clips."""

from __future__ import annotations

from pathlib import Path

from helpers.outputs import outputs_table
from jasco_utils.run import Run

#: A judge answer with a rating and an orientation label the parser reads.
JUDGE_ANSWER = "Explanation1: fits.\nRating: {r}\nExplanation2: because.\nOrientation: {o}"
#: Per condition: the (rating, orientation label) every judge gives its answers.
VERDICTS = {
    "original": (2, "Good"),
    "sound_suppressed": (1, "Speech-Oriented"),
    "speech_masked": (0, "Audio-Oriented"),
    "transcript_only": (1, "Good"),
    "silence": (0, "Neither"),
}
#: The transcript a ``transcript_only`` ALLM read, per clip.
TRANSCRIPT = "let's build a sandcastle here {clip}"


def answer(model: str, clip: int, k: int) -> str:
    """The answer ``model`` gave to instruction ``k`` of ``clip``."""
    return f"{model} answers instruction {k} of clip {clip}."


def condition_run(
    root: Path, clips, conditions, allm: str = "A", plain: tuple[str, ...] = ("B",), judges=("j1", "j2")
) -> Path:
    """A run folder: ``allm`` on the original clips and under each condition, the ``plain`` ALLMs
    on the original clips only, each judged by every judge (:data:`VERDICTS`)."""
    layout = Run(root)
    layout.outputs_dir.mkdir(parents=True)
    layout.judged_dir.mkdir()
    models = {allm: "original", **{f"{allm}@{c}": c for c in conditions}, **{m: "original" for m in plain}}
    for model, condition in models.items():
        df = outputs_table(clips)
        k = df.groupby("id").cumcount() + 1
        df["allm_output"] = [answer(model, c, i) for c, i in zip(df["id"], k, strict=True)]
        df["model"] = model
        df["audio_mode"] = "audio" if condition == "original" else condition
        df["transcript"] = [TRANSCRIPT.format(clip=c) if condition == "transcript_only" else "" for c in df["id"]]
        df["status"], df["error"] = "ok", ""
        df.to_csv(layout.output_path(model), index=False)
        for judge in judges:
            rating, label = VERDICTS[condition]
            judged = df.drop(columns=["audio_mode", "transcript"]).assign(
                judge=judge, judge_output=JUDGE_ANSWER.format(r=rating, o=label), reask_output=""
            )
            judged.to_csv(layout.judged_path(model, judge), index=False)
    return root
