"""Inference helpers that need no engine: importing answers made elsewhere, audio encoding,
ablation and diversity checks."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from jasco_utils.cli import main
from jasco_utils.core.io import TableError
from jasco_utils.data.manifest import INSTRUCTIONS, build_manifest, write_manifest
from jasco_utils.inference.allm import (
    ablation_report,
    answer_diversity_warnings,
    audio_conversation,
    import_outputs,
    wav_base64,
)
from jasco_utils.judging.judge import check_outputs


@pytest.fixture
def manifest(real_data_dir):
    return build_manifest(real_data_dir, clips=[1, 2, 3])


def answers_frame(manifest, text="They are {id}-{k}"):
    df = manifest[["id", "audio", "prompt"]].copy()
    df["allm_output"] = [text.format(id=r.id, k=INSTRUCTIONS.index(r.prompt) + 1) for r in df.itertuples()]
    return df


def test_import_csv_in_the_original_layout(manifest, tmp_path):
    path = tmp_path / "salmonn.csv"
    answers_frame(manifest).sample(frac=1, random_state=0).to_csv(path, index=False)  # any row order
    out = import_outputs(manifest, path)
    assert out["model"].eq("salmonn").all() and len(out) == 24
    assert out["allm_output"].iloc[9] == "They are 2-2"
    assert (out["audio"] == manifest["audio"]).all()
    check_outputs(out)  # ready for judging


def test_import_jsonl_with_instruction_numbers(manifest, tmp_path):
    path = tmp_path / "ltu.jsonl"
    lines = [
        json.dumps({"id": int(r.id), "instruction": INSTRUCTIONS.index(r.prompt) + 1, "allm_output": f"a{r.Index}"})
        for r in manifest.itertuples()
    ]
    path.write_text("\n".join(lines) + "\n")
    out = import_outputs(manifest, path, model="LTU-AS")
    assert out["allm_output"].tolist() == [f"a{i}" for i in range(24)] and out["model"].eq("LTU-AS").all()


@pytest.mark.parametrize(
    "mutate,needles",
    [
        (lambda df: df.drop(index=[3, 17]), ["clip 1, instruction 4: no answer", "clip 3, instruction 2: no answer"]),
        (lambda df: pd.concat([df, df.iloc[[5]]]), ["line 26: clip 1, instruction 6 again (first on line 7)"]),
        (
            lambda df: df.assign(id=df["id"].where(df.index != 0, 9)),
            ["line 2: clip 9 is not in the manifest", "clip 1, instruction 1: no answer"],
        ),
        (
            lambda df: df.assign(prompt=df["prompt"].where(df.index != 4, "Describe the audio.")),
            ["line 6: prompt 'Describe the audio.'"],
        ),
        (
            lambda df: df.assign(allm_output=df["allm_output"].where(~df.index.isin([1, 2]), "")),
            ["line 3: empty allm_output", "line 4: empty allm_output"],
        ),
        (lambda df: df.assign(id=df["id"].astype(str).where(df.index != 7, "x")), ["line 9: id 'x' is not a clip id"]),
    ],
)
def test_import_rejects_malformed_tables_naming_rows(manifest, tmp_path, mutate, needles):
    path = tmp_path / "bad.csv"
    mutate(answers_frame(manifest)).to_csv(path, index=False)
    with pytest.raises(TableError) as err:
        import_outputs(manifest, path)
    for needle in needles:
        assert needle in str(err.value)


def test_import_bad_jsonl_line(manifest, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": 1, "instruction": 1, "allm_output": "a"}\n{not json\n')
    with pytest.raises(TableError, match="line 2: not JSON"):
        import_outputs(manifest, path)
    path.write_text('{"id": 1, "instruction": 9, "allm_output": "a"}\n')
    with pytest.raises(TableError, match="instruction 9 is not 1..8"):
        import_outputs(manifest, path)


def test_cli_import(manifest, tmp_path, capsys):
    m = write_manifest(manifest, tmp_path / "manifest.csv")
    answers = tmp_path / "wavllm.csv"
    answers_frame(manifest).to_csv(answers, index=False)
    out = tmp_path / "out" / "WavLLM.csv"
    assert main(["infer", str(m), "--import", str(answers), "--name", "WavLLM", "--out", str(out)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 24 and df["model"].eq("WavLLM").all() and out.with_suffix(".parquet").is_file()
    broken = tmp_path / "broken.csv"
    answers_frame(manifest).head(20).to_csv(broken, index=False)
    assert main(["infer", str(m), "--import", str(broken)]) == 1
    assert "no answer" in capsys.readouterr().err


def test_wav_base64_is_exact_for_16_bit_audio(real_data_dir):
    from jasco_utils.data.clips import load_audio

    wave = load_audio(real_data_dir / "1.wav")
    decoded, sr = sf.read(io.BytesIO(base64.b64decode(wav_base64(wave))), dtype="int16")
    original, _ = sf.read(real_data_dir / "1.wav", dtype="int16")
    assert sr == 16000 and np.array_equal(decoded, original)
    conv = audio_conversation("QUJD", "What is the audio sound?")
    assert [p["type"] for p in conv[0]["content"]] == ["input_audio", "text"]


def test_float_wav_base64_is_exact_and_the_same_every_time(real_data_dir):
    from jasco_utils.data.clips import load_clip

    wave = load_clip(47, real_data_dir)  # resampled from 48 kHz: float samples off the 16-bit grid
    raw = base64.b64decode(wav_base64(wave, subtype="FLOAT"))
    decoded, sr = sf.read(io.BytesIO(raw), dtype="float32")
    assert sr == 16000 and decoded.tobytes() == wave.tobytes()
    peak = raw.index(b"PEAK")  # libsndfile's time stamp of writing is zeroed: same samples, same bytes
    assert raw[peak + 12 : peak + 16] == bytes(4)
    assert [p["type"] for p in audio_conversation("QUJD")[0]["content"]] == ["input_audio"]


def test_diversity_warning_and_ablation_report(manifest):
    same = manifest.assign(model="m", allm_output="I hear some sounds.")
    assert len(answer_diversity_warnings(pd.concat([same, same.assign(id=same["id"] + 3)]))) == 1
    varied = manifest.assign(model="m", allm_output=[f"answer {i}" for i in range(len(manifest))])
    assert answer_diversity_warnings(varied) == []
    report = ablation_report(varied, varied.assign(allm_output=varied["allm_output"].where(varied.index % 2 == 0, "x")))
    assert report.loc["all", "identical"] == 0.5 and report.loc["all", "rows"] == 24
    assert list(report.index) == [1, 2, 3, 4, 5, 6, 7, 8, "all"]


def test_import_for_a_subset_of_clips_says_which_flag(manifest, tmp_path, capsys):
    m = write_manifest(manifest, tmp_path / "manifest.csv")  # clips 1-3
    answers = tmp_path / "two.csv"
    answers_frame(manifest[manifest["id"].isin([1, 3])]).to_csv(answers, index=False)
    out = tmp_path / "out" / "two.csv"
    assert main(["infer", str(m), "--import", str(answers), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "answers clips 1,3 only" in err and "--clips 1,3" in err and err.count("\n") <= 2, err
    assert main(["infer", str(m), "--import", str(answers), "--out", str(out), "--clips", "1,3"]) == 0
    assert sorted(pd.read_csv(out)["id"].unique()) == [1, 3]
    assert main(["infer", str(m), "--import", str(answers), "--out", str(out), "--clips", "1,3", "--limit", "1"]) == 0
    assert pd.read_csv(out)["id"].unique().tolist() == [1]  # clip 3's answers passed over, as asked
    assert main(["infer", str(m), "--import", str(answers), "--out", str(out), "--limit", "1"]) == 0
    assert pd.read_csv(out)["id"].unique().tolist() == [1]


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--clips", "3-1"], "runs backwards; write 1-3"),
        (["--clips", "0-2"], "clip ids are 1..80"),
        (["--clips", ","], "no clip"),
        (["--clips", "a"], "use e.g. 1-5,9,12"),
        (["--limit", "0"], "expected 1 or more, not 0"),
        (["--limit", "two"], "expected a whole number"),
        (["--clips", "5"], "clip(s) 5 are not in it (it has clips 1-3)"),
    ],
)
def test_bad_subsets_are_refused_with_what_to_write(manifest, tmp_path, capsys, flags, needle):
    m = write_manifest(manifest, tmp_path / "manifest.csv")
    answers = tmp_path / "a.csv"
    answers_frame(manifest).to_csv(answers, index=False)
    try:
        code = main(["infer", str(m), "--import", str(answers), "--out", str(tmp_path / "o.csv"), *flags])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    err = capsys.readouterr().err
    assert code in (1, 2) and needle in err and "Traceback" not in err, err
