"""One owner for every generation setting: built-in default < model entry < run configuration < command line.

The levels are checked on the resolved specs, and the end of the chain on what the engine
itself did: the embedded engine (llama.cpp, the bundled SmolLM2) reports how many tokens it
generated and why it stopped, and the call store keeps that report.
"""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from helpers.outputs import outputs_table

from jasco_utils.cli import build_parser, main
from jasco_utils.cli.flags import generate_from, judge_specs
from jasco_utils.config import get_judge, load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.models.spec import ALLM_DEFAULTS, JUDGE_DEFAULTS, GenerateConfig, resolve_generate

JUDGES = '["tiny"]\nengine = "embedded"\nmodel = "SmolLM2-135M-Instruct"\nmax_tokens = {n}\ntemperature = 0.5\n'


def _judges_file(tmp_path, n: int = 77):
    path = tmp_path / "judges.toml"
    path.write_text(JUDGES.format(n=n), encoding="utf-8")
    return path


def _run_file(tmp_path, body: str):
    path = tmp_path / "run.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_each_level_overrides_the_one_below_for_judges(tmp_path):
    judges = _judges_file(tmp_path)
    default = resolve_generate(get_judge("smollm2")).generate
    assert (default.max_tokens, default.temperature, default.seed) == (1000, 0.0, 0)
    entry = resolve_generate(get_judge("tiny", judges)).generate
    assert (entry.max_tokens, entry.temperature, entry.seed) == (77, 0.5, 0)
    cfg = load_run_config(
        _run_file(tmp_path, f'[judging]\njudges = ["tiny"]\njudges_file = "{judges}"\nmax_tokens = 55\nseed = 3\n')
    )
    [run] = cfg.judges
    assert (run.generate.max_tokens, run.generate.temperature, run.generate.seed) == (55, 0.5, 3)
    args = build_parser().parse_args(
        ["judge", "o.csv", "--judge", "tiny", "--judges-file", str(judges), "--max-tokens", "33"]
    )
    [cli] = judge_specs(args, [get_judge("tiny", judges)])
    assert (cli.generate.max_tokens, cli.generate.temperature) == (33, 0.5)


def test_a_flag_left_out_leaves_the_named_judges_value():
    args = build_parser().parse_args(["judge", "o.csv", "--judge", "smollm2"])
    assert generate_from(args).settings() == {}
    [spec] = judge_specs(args, [get_judge("smollm2").with_generate(GenerateConfig(max_tokens=160))])
    assert spec.generate.max_tokens == 160


def test_original_sampling_is_a_preset_that_keeps_the_length_limit():
    args = build_parser().parse_args(
        ["judge", "o.csv", "--judge", "smollm2", "--original-sampling", "--max-tokens", "50"]
    )
    [spec] = judge_specs(args, [get_judge("smollm2")])
    assert spec.generate.sampling().as_dict() == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 50, "seed": None}


def test_each_level_overrides_the_one_below_for_allms(tmp_path):
    named = load_run_config(_run_file(tmp_path, '[[allms]]\nallm = "qwen2-audio"\n')).allms[0]
    assert named.generate.max_tokens == ALLM_DEFAULTS.max_tokens == 512
    section = load_run_config(
        _run_file(tmp_path, '[allm_sampling]\nmax_tokens = 100\ntemperature = 0.7\n[[allms]]\nallm = "qwen2-audio"\n')
    ).allms[0]
    assert (section.generate.max_tokens, section.generate.temperature) == (100, 0.7)
    own = load_run_config(
        _run_file(
            tmp_path,
            '[allm_sampling]\nmax_tokens = 100\ntemperature = 0.7\n[[allms]]\nallm = "qwen2-audio"\nmax_tokens = 50\n',
        )
    ).allms[0]
    assert (own.generate.max_tokens, own.generate.temperature) == (50, 0.7)
    args = build_parser().parse_args(["infer", "m.csv", "--allm", "qwen2-audio", "--seed", "9"])
    assert resolve_generate(own, generate_from(args)).generate.sampling().seed == 9


def test_resolving_twice_changes_nothing_and_the_spec_travels_as_json():
    spec = resolve_generate(get_judge("smollm2"), GenerateConfig(max_tokens=10))
    assert resolve_generate(spec) == spec
    from jasco_utils.models.spec import ModelSpec

    back = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back.generate.sampling() == spec.generate.sampling() and back == spec
    assert JUDGE_DEFAULTS.over(GenerateConfig(seed=None)).seed is None  # no seed, said explicitly


def test_the_resolved_configuration_round_trips_through_config_json(tmp_path):
    from jasco_utils.run import Run

    cfg = load_run_config("cpu-llm-judge")
    run = Run(tmp_path / "r")
    run.write_config(cfg)
    again = run.config()
    assert again == cfg
    assert [j.generate.sampling().max_tokens for j in again.judges] == [160, 160, 160]
    assert again.judge_check_judge_clips == {"smollm2-original": [1, 2, 3], "smollm2-paper": [1, 2, 3]}
    assert again.allms[0].generate.max_tokens == 96


@pytest.mark.parametrize(
    "body, message",
    [
        ("[judging]\nmax_tokens = 0\n", "judging.max_tokens must be 1 or more, not 0"),
        ("[judging]\ntop_p = 1.5\n", "judging.top_p must be 1 or less, not 1.5"),
        ('[allm_sampling]\nstructured = "json"\n', r"\[allm_sampling\] has unknown field\(s\) \['structured'\]"),
        (
            '[judging]\nmax_tokens = "x"\ntemperature = -1\n',
            "(?s)max_tokens must be an integer.*temperature must be 0 or more",
        ),
    ],
)
def test_generation_settings_are_checked_with_every_problem_named(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(_run_file(tmp_path, body))


@pytest.fixture
def synthetic_outputs(tmp_path):
    from jasco_utils.core.io import write_csv

    return write_csv(outputs_table([1, 2]), tmp_path / "outputs.csv")


def _tokens_the_engine_generated(store, judged_csv) -> list[tuple[int, str]]:
    keys = pd.read_csv(judged_csv, dtype=str, keep_default_na=False)["cache_key"].tolist()
    with sqlite3.connect(store) as db:
        rows = db.execute(
            f"SELECT key, metadata FROM calls WHERE key IN ({','.join('?' * len(keys))})", keys
        ).fetchall()
    meta = [json.loads(m) for _, m in rows]
    return sorted({(m["completion_tokens"], m["finish_reason"]) for m in meta})


@pytest.mark.slow
def test_a_named_judges_max_tokens_reaches_the_engine(tmp_path, synthetic_outputs):
    """The bug this guards: ``--max-tokens``'s default (1000) used to win over the judge's own limit."""
    judges = _judges_file(tmp_path, n=7)
    store = tmp_path / "calls.sqlite"
    rc = main(
        [
            "judge",
            str(synthetic_outputs),
            "--judge",
            "tiny",
            "--judges-file",
            str(judges),
            "--clips",
            "1",
            "--store",
            str(store),
            "--out-dir",
            str(tmp_path / "judged"),
            "--no-reask",
        ]
    )
    assert rc == 0
    [judged] = sorted((tmp_path / "judged").glob("*__tiny.csv"))
    assert _tokens_the_engine_generated(store, judged) == [(7, "length")]


@pytest.mark.slow
def test_a_run_configurations_max_tokens_reaches_the_engine_through_the_stage_process(tmp_path, synthetic_outputs):
    from jasco_utils.pipeline.reproduce import run_judging

    judges = _judges_file(tmp_path, n=7)
    cfg = load_run_config(
        _run_file(tmp_path, f'[judging]\njudges = ["tiny"]\njudges_file = "{judges}"\nmax_tokens = 5\n')
    )
    store = tmp_path / "calls.sqlite"
    one_clip = tmp_path / "outputs.csv"
    df = pd.read_csv(synthetic_outputs, dtype=str, keep_default_na=False)
    df[df["id"] == "1"].to_csv(one_clip, index=False)
    [judged] = run_judging(cfg, tmp_path / "run", outputs=[one_clip], store=store)
    assert _tokens_the_engine_generated(store, judged) == [(5, "length")]


def test_a_slow_judge_can_take_fewer_clips_of_the_judge_check(tmp_path):
    body = (
        '[judging]\njudges = ["reference", "smollm2"]\n[judge_check]\nenabled = true\nclips = [1, 2, 3, 4]\n'
        "[judge_check.judge_clips]\nsmollm2 = [1, 2]\n"
    )
    cfg = load_run_config(_run_file(tmp_path, body))
    assert cfg.judge_check_clips == [1, 2, 3, 4] and cfg.judge_check_judge_clips == {"smollm2": [1, 2]}
    with pytest.raises(ConfigError, match=r"judge_clips.smollm2: clips \[7\] are not among judge_check.clips"):
        load_run_config(_run_file(tmp_path, body.replace("smollm2 = [1, 2]", "smollm2 = [1, 7]")))
    with pytest.raises(ConfigError, match="'gpt-5' is not one of judging.judges"):
        load_run_config(_run_file(tmp_path, body.replace("smollm2 = [1, 2]", "gpt-5 = [1, 2]")))
    with pytest.raises(ConfigError, match="needs two clips or more"):
        load_run_config(_run_file(tmp_path, body.replace("smollm2 = [1, 2]", "smollm2 = [1]")))
