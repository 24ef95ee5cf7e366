"""The OpenAI-compatible backend against a fault-injecting local server: faults end as
retried successes or counted failures, never as scores."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.outputs import outputs_table
from helpers.servers import ANSWER, FaultyChatServer

from jasco_utils.analysis.scoring import score_files
from jasco_utils.core.io import TableError
from jasco_utils.judging.judge import judge_table
from jasco_utils.judging.prompts import structured_output
from jasco_utils.models import EngineError, SamplingConfig, make_backend
from jasco_utils.models.store import Store

CONV = [{"role": "system", "content": "You are an NLP assistant"}, {"role": "user", "content": "hello"}]


def backend(urls, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 1.0)
    kw.setdefault("max_attempts", 3)
    return make_backend("openai", "judge-model", base_url=urls, **kw)


@pytest.mark.parametrize("fault", ["429", "500", "503", "stall", "drop", "malformed", "noshape"])
def test_transient_fault_is_retried(fault):
    with FaultyChatServer([fault], stall_s=2.0) as s:
        [r] = backend(s.url).generate([CONV], SamplingConfig())
    assert r.ok and r.text == ANSWER
    assert r.metadata["attempts"] == 2
    assert len(s.requests) == 2


@pytest.mark.parametrize("fault", ["500", "drop", "malformed"])
def test_persistent_fault_is_an_error_not_a_result(fault):
    with FaultyChatServer(default=fault) as s:
        [r] = backend(s.url, max_attempts=3).generate([CONV], SamplingConfig())
    assert not r.ok and r.text == ""
    assert "failed after 3 attempt(s)" in r.error
    assert len(s.requests) == 3


def test_empty_answer_is_an_error_and_not_retried():
    with FaultyChatServer(default="empty") as s:
        [r] = backend(s.url).generate([CONV], SamplingConfig())
    assert r.error == "empty output" and len(s.requests) == 1


def test_sampling_and_structured_fields_are_sent():
    with FaultyChatServer() as s:
        b = backend(s.url)
        b.generate([CONV], SamplingConfig(temperature=0.0, seed=7, max_tokens=12), structured_output("regex"))
        b.generate([CONV], SamplingConfig.original(), structured_output("json"))
    first, second = s.requests
    assert (first["temperature"], first["seed"], first["max_tokens"]) == (0.0, 7, 12)
    assert first["structured_outputs"]["regex"].startswith("Explanation1: ")
    assert second["temperature"] == 1.0 and "seed" not in second
    assert second["response_format"]["json_schema"]["schema"]["properties"]["rating"]["maximum"] == 2


def test_requests_are_spread_over_servers_with_bounded_concurrency():
    with FaultyChatServer(delay_s=0.05) as a, FaultyChatServer(delay_s=0.05) as b:
        responses = backend([a.url, b.url], concurrency=3).generate([CONV] * 20, SamplingConfig())
    assert all(r.ok for r in responses)
    assert len(a.requests) == 10 and len(b.requests) == 10
    assert max(a.max_in_flight, b.max_in_flight) <= 3 and a.max_in_flight + b.max_in_flight >= 2


def test_api_key_comes_from_the_environment_only(monkeypatch, tmp_path):
    monkeypatch.delenv("JASCO_TEST_KEY", raising=False)
    with pytest.raises(EngineError, match="JASCO_TEST_KEY is not set"):
        backend("http://127.0.0.1:9/v1", api_key_env="JASCO_TEST_KEY")
    monkeypatch.setenv("JASCO_TEST_KEY", "sk-secret-123")
    with FaultyChatServer() as s:
        b = backend(s.url, api_key_env="JASCO_TEST_KEY")
        with Store(tmp_path / "calls.sqlite") as store:
            table, _ = judge_table(outputs_table([1]), b, store, progress=False)
    assert s.headers[0]["authorization"] == "Bearer sk-secret-123"
    dump = (tmp_path / "calls.sqlite").read_bytes() + table.to_csv().encode()
    assert b"sk-secret-123" not in dump


def test_failed_rows_are_counted_stored_nowhere_and_retried_on_rerun(tmp_path):
    outputs = outputs_table([1, 2])
    script = ["500"] * 3  # the first request fails on every attempt
    with FaultyChatServer(script) as s, Store(tmp_path / "calls.sqlite") as store:
        b = backend(s.url, concurrency=1)
        table, stats = judge_table(outputs, b, store, progress=False)
        assert stats.failed == 1 and stats.called == 16 and store.count() == 15
        assert (table["status"] == "failed").sum() == 1
        failed = table[table["status"] == "failed"].iloc[0]
        assert pd.isna(failed["rating"]) and failed["judge_output"] == "" and "500" in failed["error"]
        path = tmp_path / "judged.csv"
        table.to_csv(path, index=False)
        with pytest.raises(TableError, match="judge call failed"):
            score_files([path])
        # re-run: only the failed row is called again
        n_before = len(s.requests)
        table2, stats2 = judge_table(outputs, b, store, progress=False)
        assert stats2.called == 1 and stats2.from_cache == 15 and len(s.requests) == n_before + 1
        assert (table2["status"] == "ok").all() and table2["rating"].tolist() == [2] * 16
        table2.to_csv(path, index=False)
        [rec] = score_files([path])
        assert rec["best_mean"] == 2.0 and rec["both_pct"] == 100.0


def test_reask_is_stored_with_the_row(tmp_path):
    def answer(body):
        if body["messages"][-1]["content"].startswith("[Model Explanation]"):
            return "Good."
        return "Explanation1: ok\nRating: 1\nExplanation2: it uses the sound and the words"

    with FaultyChatServer(answer=answer) as s, Store(tmp_path / "c.sqlite") as store:
        table, stats = judge_table(outputs_table([1]), backend(s.url), store, progress=False)
    # 8 first answers without an orientation; their re-ask conversations are identical,
    # so one re-ask call serves all 8
    assert stats.reasked == 8 and len(s.requests) == 9
    assert s.requests[-1]["messages"][1]["content"].startswith("[Model Explanation]\nit uses the sound")
    assert table["orientation"].tolist() == ["Both"] * 8
    assert table["orientation_source"].tolist() == ["reask"] * 8
    assert table["reask_output"].tolist() == ["Good."] * 8
    assert table["rating"].tolist() == [1] * 8


def _wav_b64(rate: int, seconds: float = 0.5) -> str:
    import base64
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(rate * seconds), dtype=np.float32), rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _audio_conv(data: str):
    return [
        {
            "role": "user",
            "content": [
                {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                {"type": "text", "text": "What are they doing?"},
            ],
        }
    ]


def test_audio_is_sent_as_input_audio_or_as_a_data_url():
    data = _wav_b64(16_000)
    with FaultyChatServer() as s:
        [a] = backend(s.url).generate([_audio_conv(data)], SamplingConfig())
        [b] = backend(s.url, audio_part="audio_url").generate([_audio_conv(data)], SamplingConfig())
    assert a.ok and b.ok
    first, second = s.requests[0]["messages"][0]["content"][0], s.requests[1]["messages"][0]["content"][0]
    assert first == {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    assert second == {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}}
    assert backend(s.url).identity != backend(s.url, audio_part="audio_url").identity  # part of the cache key
    with pytest.raises(EngineError, match="audio_part .* must be one of \\['input_audio', 'audio_url'\\]"):
        backend(s.url, audio_part="url")


def test_audio_over_the_limits_is_refused_before_sending():
    with FaultyChatServer() as s:
        [rate] = backend(s.url).generate([_audio_conv(_wav_b64(48_000))], SamplingConfig())
        [size] = backend(s.url, max_audio_mb=0.001).generate([_audio_conv(_wav_b64(16_000))], SamplingConfig())
        assert not s.requests
    assert not rate.ok and "not sent: the audio is 48000 Hz, and judge-model takes 16000 Hz" in rate.error
    assert not size.ok and "above max_audio_mb=0.001" in size.error
