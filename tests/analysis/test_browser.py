"""The run browser: one self-contained page per run, over a small synthetic run folder (3 clips,
ALLMs A and B judged by j1 and j2, C only answered), checked in Python and in a real headless
Chromium (skipped where Chromium, its driver or Selenium is absent)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from jasco_utils.analysis.judge_check import measure
from jasco_utils.data.manifest import INSTRUCTIONS
from jasco_utils.judging.tables import read_checked
from jasco_utils.report import browser, explorer
from jasco_utils.run import Run

HOSTILE = "They are at the beach </script><b>&\"' (sound only)"
EXPLANATION = "Explanation1: fits.\nRating: {r}\nExplanation2: why </script><i>.\nOrientation: {o}"
LABEL = {"Both": "Good", "Audio": "Audio-Oriented", "Speech": "Speech-Oriented", "Neither": "Neither"}
FAILED_KEY = (2, "B", 3, "j2")  # (clip, ALLM, instruction, judge) whose judge call failed
UNPARSED_KEY = (3, "B", 5, "j1")  # whose judge answer holds neither rating nor orientation


def verdict(clip: int, model: str, k: int, judge: str) -> tuple[int, str]:
    """(rating, orientation): clip 1 has an answer both judges call Audio-oriented, clip 2 one
    the judges rate 2 apart, clip 3 no counted rating above 0 (B's answers Speech-oriented)."""
    if clip == 1 and model == "A" and k == 1:
        return 0, "Audio"
    if clip == 2 and model == "A" and k == 2:
        return (2, "Both") if judge == "j1" else (0, "Neither")
    if clip == 3:
        return (1, "Speech") if model == "B" else (1, "Neither")
    return (2, "Both") if model == "A" else (1, "Both")


def answer(clip: int, model: str, k: int) -> str:
    return HOSTILE if (clip, model, k) == (1, "A", 1) else f"{model} thinks they build sandcastles (clip {clip}, #{k})."


def manifest_rows(clip: int, k: int) -> dict:
    return {
        "id": clip,
        "audio": f"{clip}.wav",
        "audio_sound": f"table sound {clip}",
        "spoken_text": f"table speech {clip}",
        "prompt": INSTRUCTIONS[k - 1],
        "audio_only_target": "At the beach.",
        "speech_only_target": "Building.",
        "target_keywords": "sandcastle",
        "tgt_text": f"table answer {clip}",
    }


def make_run(root: Path, failed: bool = True) -> Path:
    """A run folder: outputs of A, B and C (C's clip 1 #4 failed), judged tables of A and B."""
    layout = Run(root)
    layout.outputs_dir.mkdir(parents=True)
    layout.judged_dir.mkdir()
    for model in ("A", "B", "C"):
        rows = [
            {**manifest_rows(c, k), "allm_output": answer(c, model, k), "model": model, "status": "ok", "error": ""}
            for c in (1, 2, 3)
            for k in range(1, 9)
        ]
        if model == "C":
            rows[3].update(allm_output="", status="failed", error="CUDA out of memory")
        pd.DataFrame(rows).to_csv(layout.output_path(model), index=False)
    for model in ("A", "B"):
        for judge in ("j1", "j2"):
            rows = []
            for c in (1, 2, 3):
                for k in range(1, 9):
                    r, o = verdict(c, model, k, judge)
                    row = {
                        **manifest_rows(c, k),
                        "allm_output": answer(c, model, k),
                        "model": model,
                        "judge": judge,
                        "judge_output": EXPLANATION.format(r=r, o=LABEL[o]),
                        "reask_output": "",
                        "status": "ok",
                        "error": "",
                    }
                    if (c, model, k, judge) == UNPARSED_KEY:
                        row["judge_output"] = "I think the answer is fine."
                        row["reask_output"] = "It is hard to say."
                    if failed and (c, model, k, judge) == FAILED_KEY:
                        row.update(judge_output="", status="failed", error="TimeoutError: judge server did not answer")
                    rows.append(row)
            pd.DataFrame(rows).to_csv(layout.judged_path(model, judge), index=False)
    return root


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / 'run <i>&"', failed=True)


@pytest.fixture
def clean_run(tmp_path):
    return make_run(tmp_path / "clean", failed=False)


def page_json(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', text, re.S)
    assert m, "no data block in the page"
    return json.loads(m.group(1))


def answers_of(data: dict) -> dict:
    return {(c["id"], a["model"], a["k"]): a for c in data["clips"] for a in c["answers"]}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_page_holds_every_clip_and_answer_in_full(run, synthetic_dataset):
    path = browser.write_run_page(run, data_dir=synthetic_dataset, progress=False)
    assert path == run / "browse.html"
    data = page_json(path)
    assert [c["id"] for c in data["clips"]] == [1, 2, 3]
    assert data["models"] == ["A", "B", "C"] and data["judges"] == ["j1", "j2"]
    answers = answers_of(data)
    assert len(answers) == 3 * 3 * 8
    for (c, m, k), a in answers.items():
        if (c, m, k) == (1, "C", 4):
            continue
        assert a["text"] == answer(c, m, k)
        assert sorted(a["verdicts"]) == ([] if m == "C" else ["j1", "j2"])
    v = answers[(1, "B", 2)]["verdicts"]["j1"]
    assert (v["rating"], v["orientation"], v["gated"], v["status"]) == (1, "Both", 1, "ok")
    assert v["output"] == EXPLANATION.format(r=1, o="Good")
    # the design comes from v0.csv, not from the tables' copies
    assert data["clips"][0]["design"]["correct answer"] == "They are building a sandcastle."
    assert data["design_source"] == "v0.csv"
    for clip in data["clips"]:
        head, b64 = clip["audio"]["src"].split(",", 1)
        assert head == "data:audio/ogg;base64"
        wave, sr = sf.read(io.BytesIO(base64.b64decode(b64)))
        assert sr == 16_000 and wave.ndim == 1
    assert len(
        sf.read(io.BytesIO(base64.b64decode(data["clips"][1]["audio"]["src"].split(",")[1])))[0]
    ) == pytest.approx(16_000, abs=400)  # clip 2: 48001 frames at 48 kHz, resampled by the one loader
    assert data["counts"] == {
        "clips": 3,
        "models": 3,
        "judges": 2,
        "answers": 72,
        "verdicts": 96,
        "unparsed": 1,
        "failed_judge": 1,
        "failed_allm": 1,
    }
    assert data["note"] == browser.CONFIG_NOTE and data["judge_check"] is None


def test_text_is_escaped(run, synthetic_dataset):
    path = browser.write_run_page(run, data_dir=synthetic_dataset, audio="link", progress=False)
    text = path.read_text(encoding="utf-8")
    assert "</script><b>" not in text and "</script><i>" not in text
    assert text.count("</script>") == 2  # the data block's and the script's own
    assert "\\u003c/script\\u003e\\u003cb\\u003e\\u0026\\\"'" in text
    parser = _Tags()
    parser.feed(text)
    assert "b" not in parser.tags and "i" not in parser.tags
    assert "<title>JASCO run run &lt;i&gt;&amp;&quot;</title>" in text
    data = page_json(path)
    assert data["run"] == 'run <i>&"'
    assert answers_of(data)[(1, "A", 1)]["text"] == HOSTILE


def test_filters_are_the_explorers(clean_run, synthetic_dataset):
    data = page_json(browser.write_run_page(clean_run, data_dir=synthetic_dataset, audio="link", progress=False))
    df = explorer.load_run(clean_run)
    assert data["filters"]["all_fail"] == explorer.clips_all_fail(df) == [3]
    assert data["filters"]["disagree"] == explorer.clips_judges_disagree(df, min_spread=browser.DISAGREE_SPREAD) == [2]
    one = explorer.one_modality_answers(df, agreement=browser.ONE_MODALITY_AGREEMENT)
    assert data["filters"]["one_modality"] == [
        [int(r.id), r.model, int(r.instruction), r.depends_on] for r in one.itertuples()
    ]
    assert data["filters"]["one_modality"] == [[1, "A", 1, "Audio"]] + [
        [3, "B", k, "Speech"] for k in (1, 2, 3, 4, 6, 7, 8)
    ]
    best = explorer.clip_summary(df)
    for clip in data["clips"]:
        assert clip["best"] == pytest.approx(best.loc[clip["id"]].mean())
        assert {(m, j): x for m, j, x in clip["best_by"]} == {k: int(v) for k, v in best.loc[clip["id"]].items()}
    assert [c["tags"] for c in data["clips"]] == [
        ["one_modality", "problems"],
        ["disagree"],
        ["all_fail", "one_modality", "problems"],
    ]
    assert answers_of(data)[(1, "A", 1)]["one_modality"] == "Audio"
    # the rows behind the filters are load_run's
    rows = browser.scored_rows(browser.read_run(clean_run)[1])
    cols = ["model", "judge", "id", "instruction", "rating", "orientation", "gated", "allm_output", "judge_output"]
    pd.testing.assert_frame_equal(rows[cols], df[cols])


def test_failed_and_unparsed_rows_are_marked_and_left_out_of_the_filters(run, clean_run, synthetic_dataset):
    data = page_json(browser.write_run_page(run, data_dir=synthetic_dataset, audio="link", progress=False))
    answers = answers_of(data)
    c, m, k, j = FAILED_KEY
    failed = answers[(c, m, k)]
    assert failed["verdicts"][j]["status"] == "failed" and failed["verdicts"][j]["rating"] is None
    assert "TimeoutError" in failed["verdicts"][j]["error"] and failed["problem"]
    c, m, k, j = UNPARSED_KEY
    unparsed = answers[(c, m, k)]["verdicts"][j]
    assert (unparsed["status"], unparsed["rating"], unparsed["orientation"]) == ("unparsed", None, None)
    assert unparsed["reask"] == "It is hard to say."
    allm = answers[(1, "C", 4)]
    assert (allm["status"], allm["error"], allm["problem"]) == ("failed", "CUDA out of memory", True)
    assert not answers[(1, "A", 2)]["problem"]
    # scoring refuses the table with the failed call; the filters see every other row, as load_run would
    rows = browser.scored_rows(browser.read_run(run)[1])
    clean = explorer.load_run(clean_run)
    keep = ~(
        (clean["id"] == FAILED_KEY[0])
        & (clean["model"] == FAILED_KEY[1])
        & (clean["instruction"] == FAILED_KEY[2])
        & (clean["judge"] == FAILED_KEY[3])
    )
    cols = ["model", "judge", "id", "instruction", "rating", "orientation", "gated"]
    pd.testing.assert_frame_equal(rows[cols], clean.loc[keep, cols].reset_index(drop=True))
    assert data["filters"]["all_fail"] == explorer.clips_all_fail(rows)
    assert data["filters"]["disagree"] == explorer.clips_judges_disagree(rows, min_spread=browser.DISAGREE_SPREAD)


def test_a_run_without_tables_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "judged").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"empty: run folder has no outputs/\*\.csv and no judged.*jasco infer"):
        browser.write_run_page(tmp_path / "empty", progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere: run folder does not exist"):
        browser.write_run_page(tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "empty" / "browse.html").exists()
    with pytest.raises(ValueError, match="audio must be one of"):
        browser.page_data(tmp_path / "empty", audio="inline")


def test_a_run_not_yet_judged_shows_its_answers(run, synthetic_dataset):
    shutil.rmtree(Run(run).judged_dir)
    data = page_json(browser.write_run_page(run, data_dir=synthetic_dataset, audio="link", progress=False))
    assert [c["id"] for c in data["clips"]] == [1, 2, 3] and data["judges"] == []
    answers = answers_of(data)
    assert len(answers) == 72 and all(a["verdicts"] == {} for a in answers.values())
    assert answers[(1, "A", 1)]["text"] == HOSTILE and answers[(1, "C", 4)]["status"] == "failed"
    assert data["filters"] == {"all_fail": [], "disagree": [], "one_modality": []}
    assert [c["tags"] for c in data["clips"]] == [["problems"], [], []]


def test_link_mode_and_missing_audio(run, synthetic_dataset, tmp_path):
    (synthetic_dataset / "3.wav").unlink()
    out = tmp_path / "pages" / "page.html"
    data = page_json(browser.write_run_page(run, out=out, data_dir=synthetic_dataset, audio="link", progress=False))
    src = data["clips"][0]["audio"]["src"]
    assert not os.path.isabs(src) and not src.startswith("file:")
    assert Path(os.path.normpath(out.parent / src)) == synthetic_dataset / "1.wav"
    assert "3.wav" in data["clips"][2]["audio"]["missing"] and "src" not in data["clips"][2]["audio"]
    embedded = page_json(browser.write_run_page(run, data_dir=synthetic_dataset, progress=False))
    assert "missing" in embedded["clips"][2]["audio"] and embedded["clips"][0]["audio"]["src"].startswith("data:")


def test_embedded_audio_falls_back_to_wav(monkeypatch):
    import numpy as np

    from jasco_utils.report import audio

    monkeypatch.setattr(audio, "AUDIO_FORMATS", (("OGG", "NO-SUCH-CODEC", "audio/ogg"), ("WAV", "PCM_16", "audio/wav")))
    url = audio.encode_audio(np.zeros(1600, dtype="float32"))
    assert url.startswith("data:audio/wav;base64,")
    monkeypatch.setattr(audio, "AUDIO_FORMATS", (("OGG", "NO-SUCH-CODEC", "audio/ogg"),))
    with pytest.raises(RuntimeError, match="writes none of"):
        audio.encode_audio(np.zeros(1600, dtype="float32"))


def test_design_without_the_dataset_comes_from_the_tables(run, tmp_path):
    data = page_json(browser.write_run_page(run, data_dir=tmp_path / "no-dataset", audio="link", progress=False))
    assert data["design_source"].startswith("the run's tables")
    assert data["clips"][1]["design"]["correct answer"] == "table answer 2"
    assert all("missing" in c["audio"] for c in data["clips"])


def test_judge_check_is_shown(run, synthetic_dataset):
    from test_judge_check import HAND, control_table

    check = Run(run).check_dir
    check.mkdir()
    control_table(HAND, judge="j1").to_csv(check / "judge-check__j1.csv", index=False)
    data = page_json(browser.write_run_page(run, data_dir=synthetic_dataset, audio="link", progress=False))
    records = measure(read_checked([check / "judge-check__j1.csv"]), n_resamples=0)
    assert data["judge_check"]["records"] == json.loads(json.dumps(records))
    assert data["judge_check"]["records"][0]["per_kind"]["reference"]["n"] == 2
    bad = control_table(HAND, judge="j2").assign(status="failed")
    bad.to_csv(check / "judge-check__j2.csv", index=False)
    data = page_json(browser.write_run_page(run, data_dir=synthetic_dataset, audio="link", progress=False))
    assert "judge call failed" in data["judge_check"]["error"]


def test_real_dataset_design_and_page_size(real_data_dir, tmp_path):
    run = make_run(tmp_path / "real", failed=False)
    path = browser.write_run_page(run, data_dir=real_data_dir, progress=False)
    data = page_json(path)
    meta = pd.read_csv(real_data_dir / "v0.csv", dtype=str, keep_default_na=False).set_index("audio_id")
    for clip in data["clips"]:
        assert clip["design"]["speech"] == meta.at[str(clip["id"]), "Speech"]
    assert path.stat().st_size < 200_000  # 3 clips of 5-10 s, embedded as Opus


# --- a real browser --------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(binary) or shutil.which(Path(binary).name)):
            pytest.skip(f"{binary} not found: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    service = webdriver.ChromeService(CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which("chromedriver"))
    d = webdriver.Chrome(service=service, options=options)
    yield d
    d.quit()


def _wait(predicate, timeout: float = 15.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def _shown(d) -> list[int]:
    return d.execute_script(
        "return [...document.querySelectorAll('article.clip')].filter(a => a.offsetParent !== null)"
        ".map(a => Number(a.id.slice(5)))"
    )


@pytest.mark.slow
@pytest.mark.parametrize("audio", ["embed", "link"])
def test_in_a_browser(driver, run, synthetic_dataset, audio):
    from selenium.webdriver.support.ui import Select

    path = browser.write_run_page(run, data_dir=synthetic_dataset, audio=audio, progress=False)
    driver.get(path.resolve().as_uri())
    assert _wait(lambda: len(_shown(driver)) == 3), f"clips shown: {_shown(driver)}"
    assert driver.find_element("id", "shown").text == "showing 3 of 3 clips"
    state = _wait(
        lambda: driver.execute_script(
            "const a = document.querySelector('#clip-1 audio'); return a.readyState >= 1 ? a.readyState : 0;"
        )
    )
    src = driver.execute_script("return document.querySelector('#clip-1 audio').currentSrc")
    error = driver.execute_script("const e = document.querySelector('#clip-1 audio').error; return e && e.message")
    assert state >= 1, f"audio not loaded: {src[:60]}... error {error!r}"
    assert src.startswith("data:audio/ogg" if audio == "embed" else "file:///")
    # the hostile answer is shown as text, and made no element
    assert HOSTILE in driver.execute_script("return document.getElementById('clip-1').innerText")
    assert driver.execute_script("return document.querySelectorAll('main b, main i').length") == 0
    usage = driver.execute_script(
        "return [...document.querySelectorAll('#usage tbody tr')]"
        ".map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent)"
    )
    assert usage == ["infer A", "infer B", "infer C", "judge j1", "judge j2", "total "]  # a row per stage and model
    show = Select(driver.find_element("id", "f-show"))
    show.select_by_value("all_fail")
    assert _shown(driver) == [3]
    show.select_by_value("disagree")
    assert _shown(driver) == [2]
    show.select_by_value("problems")

    def visible_rows():
        return driver.execute_script(
            "return [...document.querySelectorAll('table.answers tbody tr')].filter(r => r.offsetParent !== null)"
            ".map(r => r.closest('article').id + ' ' + r.dataset.model + ' ' + r.dataset.k)"
        )

    assert sorted(visible_rows()) == ["clip-1 C 4", "clip-2 B 3", "clip-3 B 5"]
    judge = Select(driver.find_element("id", "f-judge"))
    judge.select_by_value("j1")  # the failed call is j2's; the ALLM's failed call shows whichever judge
    assert sorted(visible_rows()) == ["clip-1 C 4", "clip-3 B 5"]
    judge.select_by_value("")
    show.select_by_value("")
    Select(driver.find_element("id", "f-model")).select_by_value("C")
    assert _shown(driver) == [1, 2, 3]
    assert driver.execute_script(
        "return [...document.querySelectorAll('section.model')]"
        ".filter(s => s.offsetParent !== null).every(s => s.dataset.model === 'C')"
    )
    Select(driver.find_element("id", "f-model")).select_by_value("")
    Select(driver.find_element("id", "f-judge")).select_by_value("j2")
    assert driver.execute_script(
        "return [...document.querySelectorAll('td[data-judge], th[data-judge]')]"
        ".filter(c => c.offsetParent !== null).every(c => c.dataset.judge === 'j2')"
    )
    Select(driver.find_element("id", "f-k")).select_by_value("5")
    assert driver.execute_script(
        "return [...document.querySelectorAll('table.answers tbody tr')].filter(r => r.offsetParent !== null)"
        ".every(r => r.dataset.k === '5')"
    )
    box = driver.find_element("id", "f-q")
    box.send_keys("no such text")
    assert _shown(driver) == []
    box.clear()
    box.send_keys("kite")  # clip 3's correct answer in the synthetic v0.csv
    assert _shown(driver) == [3]


@pytest.mark.slow
def test_conditions_side_by_side_in_a_browser(driver, synthetic_dataset, tmp_path):
    from helpers.condition_runs import TRANSCRIPT, condition_run
    from helpers.condition_runs import answer as condition_answer

    run = condition_run(tmp_path / "conditions", [1], ["transcript_only", "silence"])
    driver.get(browser.write_run_page(run, data_dir=synthetic_dataset, progress=False).resolve().as_uri())
    assert _wait(lambda: len(_shown(driver)) == 1)
    table = "#clip-1 section[data-model='A'] table.answers"
    heads = driver.execute_script(f'return [...document.querySelectorAll("{table} thead th")].map(h => h.textContent)')
    assert heads == ["#", "original", "transcript_only", "silence"]
    row = driver.execute_script(
        f"return [...document.querySelectorAll(\"{table} tbody tr[data-k='3'] td.a div.text\")].map(d => d.textContent)"
    )
    assert row == [condition_answer(m, 1, 3) for m in ("A", "A@transcript_only", "A@silence")]
    assert driver.execute_script("return document.querySelectorAll(\"section[data-model='A@silence']\").length") == 0
    players = driver.execute_script(
        "return [...document.querySelectorAll('#clip-1 table.players tr')].map(r => r.dataset.condition + ' '"
        " + (r.querySelector('audio') ? 'player' : r.cells[1].textContent))"
    )
    assert players == ["original player", f"transcript_only \u201c{TRANSCRIPT.format(clip=1)}\u201d", "silence player"]
    assert _wait(
        lambda: driver.execute_script(
            "return document.querySelector(\"#clip-1 tr[data-condition='silence'] audio\").readyState >= 1"
        )
    )
