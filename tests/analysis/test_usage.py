"""The usage report over a hand-made run folder: every sum worked out here by hand.

The run: ALLM ``A`` (priced) answered clip 1, half of it from the call store; ``OLD``, an
outputs table written before token counts were kept; ``IMP``, imported answers; judges
``j1`` (priced) and ``ref`` (the reference judge: no tokens) judged A; ``j1`` ran the judge
check, where two rows share one request. ``stages.jsonl`` records A's inference (two
shards) and j1's judging; ``ref`` has no record, so its time comes from the rows' latencies.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file
from helpers.outputs import outputs_table

from jasco_utils.analysis.usage import USAGE_COLUMNS, usage_lines, usage_report, usage_table, usage_totals
from jasco_utils.config import RunConfig, allm_spec, load_allms, load_judges
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.io import TableError, write_csv
from jasco_utils.models.spec import ModelSpec, TokenPrice
from jasco_utils.pipeline.reproduce import run_summary
from jasco_utils.report import browser
from jasco_utils.report.results import write_results
from jasco_utils.run import Run

PRICE_A = TokenPrice(prompt=2.0, completion=8.0)  # dollars per million tokens
PRICE_J1 = TokenPrice(prompt=0.5, completion=1.5)
#: A's 8 rows: (from_cache, prompt_tokens, completion_tokens, latency_s).
A_ROWS = [
    (False, 100, 10, 0.5),
    (False, 120, 20, 0.5),
    (False, 90, 30, 0.25),
    (False, 110, 40, 0.25),
    (True, 50, 5, 1.0),
    (True, 60, 6, 1.0),
    (True, 70, 7, 1.0),
    (True, 80, 8, 1.0),
]
STAGES = [
    {
        "stage": "infer",
        "model": "A",
        "input": None,
        "shard": [0, 2],
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:10Z",
        "wall_s": 10.0,
        "num_gpus": 1.0,
        "num_cpus": 4.0,
        "executor": "ray",
        "node": "n1",
    },
    {
        "stage": "infer",
        "model": "A",
        "input": None,
        "shard": [1, 2],
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:06Z",
        "wall_s": 6.0,
        "num_gpus": 1.0,
        "num_cpus": 4.0,
        "executor": "ray",
        "node": "n2",
    },
    {
        "stage": "judge",
        "model": "j1",
        "input": "A",
        "shard": None,
        "started_at": "2026-01-01T00:01:00Z",
        "finished_at": "2026-01-01T00:01:04Z",
        "wall_s": 4.0,
        "num_gpus": 0.5,
        "num_cpus": 1.0,
        "executor": "local",
        "node": "n1",
    },
]


def _with_calls(df: pd.DataFrame, rows, key: str) -> pd.DataFrame:
    df = df.copy()
    df["from_cache"] = [r[0] for r in rows]
    df["cache_key"] = [f"{key}{i}" for i in range(len(rows))]
    df["latency_s"] = [r[3] for r in rows]
    df["prompt_tokens"] = pd.array([r[1] for r in rows], dtype="Int64")
    df["completion_tokens"] = pd.array([r[2] for r in rows], dtype="Int64")
    return df


def make_run(root: Path, stages: bool = True) -> Path:
    run = Run(root)
    allms = [
        ModelSpec(key="A", engine="openai", model="a", price=PRICE_A),
        ModelSpec(key="OLD", engine="vllm", model="old"),
        ModelSpec(key="IMP", engine="import", path="x.csv"),
    ]
    judges = [
        ModelSpec(key="j1", engine="openai", model="j", template="judge_original", price=PRICE_J1),
        ModelSpec(key="ref", engine="reference", template="judge_original"),
    ]
    run.write_config(RunConfig(name="usage", path=Path("usage.toml"), allms=allms, judges=judges))
    outputs = outputs_table([1])
    write_csv(_with_calls(outputs, A_ROWS, "a").assign(model="A"), run.output_path("A"))
    old = _with_calls(outputs, A_ROWS, "o").drop(columns=["prompt_tokens", "completion_tokens"])
    write_csv(old.assign(model="OLD"), run.output_path("OLD"))  # written before token counts were kept
    write_csv(outputs.assign(model="IMP", status="ok"), run.output_path("IMP"))  # imported: no calls
    ids, answers = make_rows(0, clips=[1])
    run.judged_dir.mkdir()
    j1 = [(i >= 6, 300 + i, 12, 0.5) for i in range(8)]  # 6 new calls, 2 from the store
    for judge, rows in (("j1", j1), ("ref", [(False, None, None, 0.125)] * 8)):
        path = project_layout_file(run.judged_path("A", judge), ids, answers, model="A", judge=judge)
        write_csv(_with_calls(pd.read_csv(path), rows, judge), path)
    run.check_dir.mkdir()
    path = project_layout_file(
        run.check_dir / "judge-check__j1.csv", ids[:4], answers[:4], model="judge-check", judge="j1"
    )
    check = _with_calls(pd.read_csv(path), [(False, 200, 20, 1.0)] * 4, "c")
    check["cache_key"] = ["c0", "c0", "c1", "c2"]  # the first two rows: one request, sent once
    write_csv(check, path)
    if stages:
        run.stages_path.write_text("".join(json.dumps(r) + "\n" for r in STAGES), encoding="utf-8")
    return root


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return make_run(tmp_path / "run")


def test_usage_sums_per_model_and_stage(run_dir):
    table = usage_table(run_dir)
    assert list(table.columns) == list(USAGE_COLUMNS)
    assert list(zip(table["stage"], table["model"], strict=False)) == [
        ("infer", "A"),
        ("infer", "IMP"),
        ("infer", "OLD"),
        ("judge", "j1"),
        ("judge", "ref"),
        ("check", "j1"),
    ]
    u = table.set_index(["stage", "model"])
    a = u.loc[("infer", "A")]
    assert (a["rows"], a["calls"], a["from_store"]) == (8, 4, 4)
    assert (a["prompt_tokens"], a["completion_tokens"]) == (680, 126)
    assert (a["new_prompt_tokens"], a["new_completion_tokens"]) == (420, 100)
    assert (a["wall_s"], a["gpu_s"], a["wall_source"]) == (16.0, 16.0, "stages")  # two shards add up
    assert a["cost_usd"] == pytest.approx((680 * 2.0 + 126 * 8.0) / 1e6)
    assert a["new_cost_usd"] == pytest.approx((420 * 2.0 + 100 * 8.0) / 1e6)

    old = u.loc[("infer", "OLD")]  # no token columns: unknown, not 0; unpriced: no cost
    assert (old["rows"], old["calls"], old["from_store"], old["rows_without_tokens"]) == (8, 4, 4, 8)
    assert math.isnan(old["prompt_tokens"]) and math.isnan(old["new_completion_tokens"]) and math.isnan(old["cost_usd"])
    assert (old["wall_s"], old["wall_source"]) == (sum(r[3] for r in A_ROWS), "latency") and math.isnan(old["gpu_s"])
    imp = u.loc[("infer", "IMP")]  # imported answers: no calls, nothing from the store, no time
    assert (imp["rows"], imp["calls"], imp["from_store"]) == (8, 0, 0) and math.isnan(imp["wall_s"])
    assert math.isnan(imp["prompt_tokens"]) and imp["new_prompt_tokens"] == 0  # unknown; no call spent any

    j1 = u.loc[("judge", "j1")]
    assert (j1["calls"], j1["from_store"], j1["prompt_tokens"], j1["new_prompt_tokens"]) == (6, 2, 2428, 1815)
    assert (j1["completion_tokens"], j1["new_completion_tokens"]) == (96, 72)
    assert (j1["wall_s"], j1["gpu_s"]) == (4.0, 2.0)
    assert j1["new_cost_usd"] == pytest.approx((1815 * 0.5 + 72 * 1.5) / 1e6)
    ref = u.loc[("judge", "ref")]  # the reference judge counts no tokens
    assert (ref["calls"], ref["rows_without_tokens"], ref["wall_s"], ref["wall_source"]) == (8, 8, 1.0, "latency")
    assert math.isnan(ref["prompt_tokens"]) and math.isnan(ref["cost_usd"])
    check = u.loc[("check", "j1")]  # two rows of one request: one call, its tokens once
    assert (check["rows"], check["calls"], check["prompt_tokens"], check["completion_tokens"]) == (4, 3, 600, 60)


def test_totals_sum_what_is_known(run_dir):
    totals = usage_totals(usage_table(run_dir)).set_index("stage")
    assert totals.loc["infer", "rows"] == 24 and totals.loc["infer", "calls"] == 8
    assert totals.loc["infer", "prompt_tokens"] == 680 and totals.loc["infer", "wall_source"] == "latency+stages"
    assert totals.loc["all", "prompt_tokens"] == 680 + 2428 + 600
    assert totals.loc["all", "gpu_s"] == 18.0
    cost = (680 * 2 + 126 * 8) / 1e6 + (2428 * 0.5 + 96 * 1.5) / 1e6 + (600 * 0.5 + 60 * 1.5) / 1e6
    assert totals.loc["all", "cost_usd"] == pytest.approx(cost)


def test_without_stage_records_time_comes_from_latency(tmp_path):
    run = make_run(tmp_path / "run", stages=False)
    assert Run(run).stage_records().empty
    table = usage_table(run)
    assert set(table["wall_source"]) == {"latency"} and table["gpu_s"].isna().all()
    a = table.set_index(["stage", "model"]).loc[("infer", "A")]
    assert a["wall_s"] == sum(r[3] for r in A_ROWS) and a["prompt_tokens"] == 680


def test_a_job_run_again_counts_its_last_record(run_dir):
    path = Run(run_dir).stages_path
    again = {**STAGES[0], "wall_s": 2.0, "job": "infer-A-0"}  # shard 0 of A again (from the store): 2 s
    path.write_text(path.read_text() + json.dumps(again) + "\n")
    a = usage_table(run_dir).set_index(["stage", "model"]).loc[("infer", "A")]
    assert (a["wall_s"], a["gpu_s"]) == (2.0 + 6.0, 8.0)


def test_stage_records_are_read_and_checked(run_dir):
    records = Run(run_dir).stage_records()
    assert len(records) == 3 and records["wall_s"].tolist() == [10.0, 6.0, 4.0]
    assert records["shard"].tolist() == [[0, 2], [1, 2], None]
    assert records["executor"].tolist() == ["ray", "ray", "local"]
    path = Run(run_dir).stages_path
    path.write_text(path.read_text() + '{"stage": "judge", "mod')  # a writer stopped while appending
    assert len(Run(run_dir).stage_records()) == 3
    path.write_text(path.read_text() + "\n")
    with pytest.raises(TableError, match="line 4: not JSON"):
        Run(run_dir).stage_records()
    path.write_text("".join(json.dumps(r) + "\n" for r in STAGES))
    path.write_text(path.read_text() + '{"stage": "judge", "model": "ref", "wall_s": -1}\n')
    with pytest.raises(TableError, match=r"stages.jsonl: line 4: .*wall_s"):
        usage_table(run_dir)
    path.write_text(path.read_text().replace('"wall_s": -1}', '"wall_s": 1'))
    with pytest.raises(TableError, match="line 4: not JSON"):
        Run(run_dir).stage_records()


def test_older_tables_without_token_columns_still_load(run_dir):
    run = Run(run_dir)
    old = run.outputs("OLD")
    assert len(old) == 8 and "prompt_tokens" not in old.columns
    assert len(run.judged()) == 16


def test_results_json_summary_and_page_show_the_usage(run_dir, tmp_path):
    figures = Run(run_dir).figures_dir
    figures.mkdir()
    (figures / "table2.csv").write_text("LLM-Judge,A\nj1,0.5\n")
    results = json.loads(write_results(run_dir).read_text())
    usage = results["usage"]
    assert usage == usage_report(run_dir)
    a = next(r for r in usage["records"] if (r["stage"], r["model"]) == ("infer", "A"))
    assert a["new_prompt_tokens"] == 420 and a["gpu_s"] == 16.0
    old = next(r for r in usage["records"] if r["model"] == "OLD")
    assert old["prompt_tokens"] is None and old["cost_usd"] is None  # unknown, in valid JSON
    total = next(r for r in usage["totals"] if r["stage"] == "all")
    assert total["rows"] == 24 + 16 + 4

    lines = usage_lines(run_dir)
    assert lines[0] == (
        "infer  24 rows: 8 calls, 8 from the store; 806 tokens (520 new, 16 rows uncounted); "
        "21.5 s wall (partly call latency), 16 GPU-s"
    )
    assert lines[2] == "check  4 rows: 3 calls, 0 from the store; 660 tokens (660 new); 3.0 s of call latency"
    assert lines[3] == "cost   $0.0030 for this run's calls ($0.0041 without the call store; priced models only)"
    summary = run_summary(Run(run_dir).config(), run_dir)
    assert "usage:       infer  24 rows" in summary

    data = browser.page_data(run_dir, data_dir=tmp_path / "no-dataset", audio="link", progress=False)
    assert data["usage"] == usage
    assert 'id="usage"' in browser.render_page(data)


def test_a_price_is_set_on_an_entry_and_checked(tmp_path):
    judges = tmp_path / "judges.toml"
    judges.write_text('[hosted]\nengine = "openai"\nmodel = "gpt"\nprice = {prompt = 2.5, completion = 10}\n')
    assert load_judges(judges)["hosted"].price == TokenPrice(prompt=2.5, completion=10.0)
    judges.write_text('[hosted]\nengine = "openai"\nmodel = "gpt"\nprice = {prompt = -1, output = 3}\n')
    with pytest.raises(ConfigError) as e:
        load_judges(judges)
    assert "[hosted]: [price] has unknown field(s) ['output']; fields: ['completion', 'prompt']" in str(e.value)
    assert "price.prompt must be 0 or more, not -1" in str(e.value) and "price.completion is missing" in str(e.value)
    allms = tmp_path / "allms.toml"
    allms.write_text(
        '[hosted-allm]\nengine = "openai"\nmodel = "gpt-audio"\n[hosted-allm.price]\nprompt = 40\ncompletion = 80\n'
    )
    assert load_allms(allms)["hosted-allm"].price.completion == 80.0
    entry = {"name": "H", "engine": "openai", "model": "m", "price": {"prompt": 1, "completion": 2}}
    spec = allm_spec(entry, "run.toml")
    assert spec.price.cost(1e6, 1e6) == 3.0 and ModelSpec.from_dict(spec.to_dict()) == spec
    named = allm_spec({"allm": "qwen2-audio", "price": {"prompt": 0, "completion": 0.5}}, "run.toml")
    assert named.price == TokenPrice(prompt=0, completion=0.5)
    with pytest.raises(ConfigError, match=r"price.completion must be a number, not '2'"):
        allm_spec({**entry, "price": {"prompt": 1, "completion": "2"}}, "run.toml")
