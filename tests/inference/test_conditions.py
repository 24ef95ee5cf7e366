"""ALLMs under interventions, end to end: a run file's ``interventions`` become ``NAME@CONDITION``
ALLMs; the cascade (Whisper tiny.en, then the embedded SmolLM2) answers clip 1 under every
condition, and the reference judge rates each outputs table like any other."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from jasco_utils.config import load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.models.spec import CONDITIONS, GenerateConfig, ModelSpec

RUN = """
name = "iv"
clips = [1]
interventions = ["sound_suppressed", "speech_masked", "transcript_only"]
[judging]
judges = ["reference"]
[[allms]]
name = "Cascade"
engine = "cascade"
llm_engine = "embedded"
[[allms]]
name = "Other"
engine = "cascade"
llm_engine = "embedded"
interventions = ["silence"]
"""


def test_a_run_file_asks_for_interventions(tmp_path):
    path = tmp_path / "iv.toml"
    path.write_text(RUN, encoding="utf-8")
    config = load_run_config(path)
    assert [s.key for s in config.allms] == [
        "Cascade",
        "Cascade@sound_suppressed",
        "Cascade@speech_masked",
        "Cascade@transcript_only",
        "Other",
        "Other@silence",
    ]
    assert [s.condition for s in config.allms][:2] == [None, "sound_suppressed"]
    assert '"condition": "silence"' in config.to_json()
    assert type(config).from_json(config.to_json()) == config
    path.write_text(RUN.replace('"silence"', '"silence", "silence"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="listed twice"):
        load_run_config(path)


def test_a_run_without_interventions_records_what_it_always_did():
    config = load_run_config("cpu")
    assert all(s.condition is None and "@" not in s.key for s in config.allms)
    assert "condition" not in config.to_json()


@pytest.mark.slow
def test_the_cascade_under_every_condition_judged_by_the_reference_judge(real_data_dir, tmp_path):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("xllamacpp")
    pytest.importorskip("pyrnnoise")
    pytest.importorskip("silero_vad")
    from jasco_utils.config import get_judge
    from jasco_utils.data.manifest import build_manifest, write_manifest
    from jasco_utils.inference.asr import normalize_text
    from jasco_utils.inference.run import answer_manifest
    from jasco_utils.judging.run import judge_outputs

    manifest = write_manifest(build_manifest(real_data_dir, clips=[1]), tmp_path / "manifest.csv")
    store = tmp_path / "calls.sqlite"
    base = ModelSpec(key="cascade", engine="cascade", llm_engine="embedded", generate=GenerateConfig(max_tokens=8))
    judge = get_judge("reference")
    out: dict[str, pd.DataFrame] = {}
    for spec in [base, *(base.under(c) for c in CONDITIONS if c != "silence")]:  # silence: as speech_masked
        path = tmp_path / "outputs" / f"{spec.key}.csv"
        answer_manifest(spec, manifest, path, data_dir=real_data_dir, store=store, progress=False)
        out[spec.condition or "audio"] = pd.read_csv(path, keep_default_na=False)
        judged = judge_outputs(judge, path, tmp_path / "judged", store=store, progress=False)
        table = pd.read_csv(judged.paths[0], keep_default_na=False)
        assert len(table) == 8 and set(table["model"]) == {spec.name}
    original = out["audio"]
    for c, df in out.items():
        assert len(df) == 8 and df["status"].isin(["ok", "truncated"]).all(), c
        assert df["audio_mode"].eq(c).all()
        same = df["transcript"] == original["transcript"]  # the answer changes only where the transcript did
        assert (df.loc[same, "allm_output"] == original.loc[same, "allm_output"]).all(), c
    assert normalize_text(out["sound_suppressed"]["transcript"][0]) == "let's build a castle over there"
    assert out["transcript_only"]["allm_output"].equals(original["allm_output"])
    sentence = set(normalize_text(original["transcript"][0]).split())
    for c in ("speech_masked",):  # no speech left: the answers no longer follow the sentence
        assert not set(normalize_text(out[c]["transcript"][0]).split()) & sentence
        assert (out[c]["allm_output"] != original["allm_output"]).any()
    assert original["allm_output"].str.contains("castle").any()  # from the speech ...
    assert not out["speech_masked"]["allm_output"].str.contains("castle").any()  # ... gone with it

    # Figure 3 and its numbers on this run folder: the fidelity measured on its clip, which passes
    from types import SimpleNamespace

    from jasco_utils.report.interventions import run_interventions
    from jasco_utils.report.results import run_analysis, write_results

    figures = tmp_path / "figures"
    iv = run_interventions(tmp_path, figures, data_dir=real_data_dir, store=store, n_resamples=200)
    assert iv["left_out"] == {"sound_suppressed": [], "speech_masked": []}
    t = iv["table"].set_index(["judge", "condition"])
    assert list(iv["table"]["allm"].unique()) == ["cascade"]
    assert t.loc[("Average", "transcript_only"), "answers_changed"] == 0  # the cascade's own input
    changed = (out["sound_suppressed"]["allm_output"] != original["allm_output"]).mean()
    assert t.loc[("Average", "sound_suppressed"), "answers_changed"] == changed
    assert t.loc[("Average", "speech_masked"), "answers_changed"] > 0
    assert t.loc[("Average", "transcript_only"), "difference"] == 0
    assert t.loc[("Average", "speech_masked"), "n_clips"] == 1
    for name in ("figure3.png", "figure3.pdf", "interventions.csv", "intervention_labels.csv", "fidelity.csv"):
        assert (figures / name).is_file(), name
    config = SimpleNamespace(name="iv", path=tmp_path / "iv.toml", text="", paper=False)
    run_analysis(config, tmp_path, figures_dir=figures, data_dir=real_data_dir)
    results = json.loads(write_results(tmp_path, figures).read_text(encoding="utf-8"))
    assert results["interventions"]["left_out"] == iv["left_out"]
    assert len(results["interventions"]["scores"]) == len(iv["table"])
    assert {r["label"] for r in results["interventions"]["labels"]} <= {"Speech", "Audio"}
