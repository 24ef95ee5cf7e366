"""ALLM outputs tables built for tests (what inference writes, with synthetic answers)."""

from __future__ import annotations

import pandas as pd

from jasco_utils.data.manifest import INSTRUCTIONS


def outputs_table(clips, answer: str = "They are building a sandcastle at the beach.") -> pd.DataFrame:
    """An ALLM outputs table for the given clips (synthetic text, the 8 real instructions)."""
    rows = []
    for cid in clips:
        for k, instruction in enumerate(INSTRUCTIONS):
            rows.append(
                {
                    "id": cid,
                    "audio": f"{cid}.wav",
                    "n_frames": 16000,
                    "audio_sound": f"Waves and gulls {cid}",
                    "spoken_text": f"Let's build it here {cid}",
                    "prompt": instruction,
                    "with_speech": True,
                    "audio_only_target": "They are at the beach.",
                    "speech_only_target": "They are building.",
                    "target_keywords": "sandcastle",
                    "tgt_text": "They are building a sandcastle.",
                    "allm_output": f"{answer} (clip {cid}, instruction {k + 1})",
                    "model": "allm",
                }
            )
    return pd.DataFrame(rows)
