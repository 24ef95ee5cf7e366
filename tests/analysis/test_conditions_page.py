"""An ALLM's answers under interventions on the run's page and in the explorer: grouped under the
ALLM, side by side per instruction, each intervened clip playable and equal to what inference made."""

from __future__ import annotations

import base64
import io
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers.condition_runs import TRANSCRIPT, VERDICTS, answer, condition_run
from test_browser import page_json

from jasco_utils.data.clips import load_clip, load_clips
from jasco_utils.inference.allm import clip_audio
from jasco_utils.inference.asr import mask_spans, transcribe_clips
from jasco_utils.models.store import Store
from jasco_utils.models.whisper import SpeechRecognizer
from jasco_utils.report import browser, explorer
from jasco_utils.report.audio import encode_audio
from jasco_utils.report.conditions import run_players
from jasco_utils.run import Run

#: The page's keys and a clip's, for a run without conditions (what the page read before conditions).
PAGE_KEYS = {
    "run",
    "run_dir",
    "models",
    "judges",
    "generated",
    "note",
    "audio_mode",
    "design_source",
    "instructions",
    "counts",
    "settings",
    "filters",
    "judge_check",
    "usage",
    "clips",
}
CLIP_KEYS = {"id", "design", "audio", "best", "best_by", "tags", "answers"}
ANSWER_KEYS = {"model", "k", "text", "status", "error", "verdicts", "one_modality", "problem"}
#: A short real clip (5.8 s): intervening on it takes a few seconds.
CLIP = 8


def decoded(src: str) -> np.ndarray:
    """The samples a player's ``data:`` URL decodes to."""
    return sf.read(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), dtype="float32")[0]


def test_the_page_groups_conditions_and_plays_the_clips_inference_made(real_data_dir, tmp_path):
    pytest.importorskip("pyrnnoise", reason="sound_suppressed needs pyrnnoise")
    pytest.importorskip("silero_vad", reason="speech_masked needs silero-vad")
    conditions = ["sound_suppressed", "speech_masked", "transcript_only"]
    run = condition_run(tmp_path / "run", [CLIP], conditions)
    store = tmp_path / "calls.sqlite"
    data = page_json(browser.write_run_page(run, data_dir=real_data_dir, store=store, progress=False))
    assert data["conditions"] == {"A": {"original": "A", **{c: f"A@{c}" for c in conditions}}}
    assert list(data["condition_notes"]) == ["original", *conditions]
    (clip,) = data["clips"]
    answers = {(a["model"], a["k"]): a for a in clip["answers"]}
    for k in range(1, 9):
        for condition, model in data["conditions"]["A"].items():
            a = answers[(model, k)]
            assert a["text"] == answer(model, CLIP, k)
            rating = VERDICTS[condition][0]
            assert [(v["rating"], v["status"]) for v in a["verdicts"].values()] == [(rating, "ok")] * 2
    assert answers[("B", 1)]["text"] == answer("B", CLIP, 1)  # an ALLM without conditions, as before
    # the players: what inference gave the ALLM (its own path: the recogniser's words and the VAD)
    players = clip["intervened"]
    assert list(players) == conditions
    assert players["transcript_only"] == {"text": TRANSCRIPT.format(clip=CLIP)}
    with Store(store) as st:  # the page stored the transcript: served from the store here
        transcripts = transcribe_clips([CLIP], SpeechRecognizer(), st, real_data_dir, progress=False)
    segments = mask_spans(load_clips([CLIP], real_data_dir), transcripts)
    row = {"id": CLIP, "audio": f"{CLIP}.wav"}
    original = decoded(clip["audio"]["src"])
    for condition in ("sound_suppressed", "speech_masked"):
        made = clip_audio(row, real_data_dir, condition, segments if condition == "speech_masked" else None)
        heard = decoded(players[condition]["src"])
        assert np.array_equal(heard, decoded(encode_audio(made))), condition
        assert len(heard) == len(original) and np.abs(heard - original).max() > 0.1, condition
    masked = clip_audio(row, real_data_dir, "speech_masked", segments)
    assert 0.2 < (masked == 0).mean() < 1.0  # the speech zeroed, the sound kept
    assert segments[CLIP] and all(0 <= a < b for a, b in segments[CLIP])


def test_a_run_without_conditions_keeps_its_page(synthetic_dataset, tmp_path):
    run = condition_run(tmp_path / "run", [1, 2], ["transcript_only", "silence"])
    plain = tmp_path / "plain"
    shutil.copytree(run, plain)
    for path in [*Run(plain).output_files(), *Run(plain).judged_files()]:
        if "@" in path.name:
            path.unlink()
    both = browser.page_data(run, data_dir=synthetic_dataset, audio="link", progress=False)
    alone = browser.page_data(plain, data_dir=synthetic_dataset, audio="link", progress=False)
    assert set(alone) == PAGE_KEYS and set(both) == PAGE_KEYS | {"conditions", "condition_notes"}
    assert all(set(c) == CLIP_KEYS for c in alone["clips"])
    assert all(set(c) == CLIP_KEYS | {"intervened"} for c in both["clips"])
    assert alone["models"] == ["A", "B"] and both["models"] == ["A", "A@silence", "A@transcript_only", "B"]
    for with_conditions, without in zip(both["clips"], alone["clips"], strict=True):
        assert {k: v for k, v in with_conditions.items() if k in ("id", "design", "audio")} == {
            k: v for k, v in without.items() if k in ("id", "design", "audio")
        }
        kept = [a for a in with_conditions["answers"] if "@" not in a["model"]]
        assert kept == without["answers"] and all(set(a) == ANSWER_KEYS for a in kept)
        assert with_conditions["intervened"]["transcript_only"] == {"text": TRANSCRIPT.format(clip=without["id"])}
        assert np.abs(decoded(with_conditions["intervened"]["silence"]["src"])).max() < 1e-6
    # the data of a run without conditions is the same through write_run_page's page
    page = page_json(browser.write_run_page(plain, data_dir=synthetic_dataset, audio="link", progress=False))
    assert {k: v for k, v in page.items() if k != "generated"} == {k: v for k, v in alone.items() if k != "generated"}


class _Table(HTMLParser):
    """The rows of the HTML tables that follow a heading: heading -> rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading = ""
        self._in: str | None = None
        self._text = ""
        self._row: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("h3", "h4"):
            self._in, self._text = tag, ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._in, self._text = tag, ""
        elif tag == "audio" and self._row is not None:
            self._text += "[player]"

    def handle_endtag(self, tag):
        if tag in ("h3", "h4") and self._in == tag:
            self.heading, self._in = self._text.strip(), None
        elif tag in ("td", "th") and self._in == tag:
            self._row.append(self._text.strip())
            self._in = None
        elif tag == "tr" and self._row is not None:
            self.tables.setdefault(self.heading, []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def test_the_explorer_shows_conditions_side_by_side(synthetic_dataset, tmp_path):
    run = condition_run(tmp_path / "run", [1, 2], ["transcript_only", "silence"])
    df = explorer.load_run(run)
    assert explorer.allm_conditions(df) == {"A": ["original", "transcript_only", "silence"], "B": ["original"]}
    players = run_players(run, [2], synthetic_dataset)
    assert list(players) == [2] and list(players[2]) == ["transcript_only", "silence"]
    html = explorer.clip_view(df, 2, players[2])
    tables = _Table()
    tables.feed(html)
    assert tables.tables["The clip under each condition"] == [
        ["transcript_only", TRANSCRIPT.format(clip=2)],
        ["silence", "[player]"],
    ]
    rows = tables.tables["A · the original clip and 2 conditions"]
    assert rows[0] == ["#", "original", "transcript_only", "silence"]
    assert [r[0] for r in rows[1:]] == [str(k) for k in range(1, 9)]
    for k, row in enumerate(rows[1:], start=1):
        for cell, model, condition in zip(
            row[1:], ["A", "A@transcript_only", "A@silence"], ["original", "transcript_only", "silence"], strict=True
        ):
            assert cell.startswith(answer(model, 2, k)), cell
            assert cell.count(f"rating {VERDICTS[condition][0]}") == 2  # j1's and j2's
    assert tables.tables["B"][1][:2] == ["1", answer("B", 2, 1)]  # an ALLM without conditions, as before
    assert "A@silence" not in tables.tables
    assert explorer.clip_view(df[df["model"] == "B"], 2) == explorer.clip_view(df[df["model"] == "B"], 2, {})
    silence = decoded(players[2]["silence"]["src"])
    assert len(silence) == len(load_clip(2, synthetic_dataset)) and np.abs(silence).max() < 1e-6


def test_what_a_cascade_heard_goes_with_each_clip(synthetic_dataset, tmp_path):
    run = condition_run(tmp_path / "run", [1, 2], ["silence"])
    layout = Run(run)
    for model, heard in (("A", {1: "build it", 2: "here"}), ("A@silence", {1: "", 2: "hmm"})):
        df = pd.read_csv(layout.output_path(model), dtype=str, keep_default_na=False)
        df["transcript"] = df["id"].astype(int).map(heard)
        df.to_csv(layout.output_path(model), index=False)
    players = run_players(run, None, synthetic_dataset)
    assert players[1]["original"] == {"transcript": "build it"} and players[2]["original"] == {"transcript": "here"}
    assert players[1]["silence"]["transcript"] == "" and players[2]["silence"]["transcript"] == "hmm"
    assert list(players[1]) == ["original", "silence"] and players[1]["silence"]["src"].startswith("data:audio/")
    html = explorer.clip_view(explorer.load_run(run), 1, players[1])
    assert "heard: <q>build it</q>" in html and "heard: nothing (no speech recognised)" in html
