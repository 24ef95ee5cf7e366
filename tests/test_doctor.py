"""`jasco doctor` and the run plan: the memory arithmetic on made-up machines (the functions take
the GPU inventory as an argument), model sizes from the table and from files in a hub cache, the
call store's counts, and the real command on this machine."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

from jasco_utils.config import load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.doctor.fit import FITS, GPU, NO_FIT, NO_GPU, Machine, ModelFacts, ModelSize, fit
from jasco_utils.doctor.machine import (
    _visible,
    load_model_sizes,
    model_facts,
    params_from_config,
    run_plan,
    size_from_folder,
    stored_answers,
)
from jasco_utils.models.base import Response
from jasco_utils.models.spec import ModelSpec
from jasco_utils.models.store import Store

SIZES = load_model_sizes()
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
NO_PACKAGES = Machine()  # no GPU, no vLLM


def cards(n: int, gb: float = 80, free_gb: float | None = None) -> tuple[GPU, ...]:
    """``n`` made-up GPUs of ``gb`` GB (10^9 bytes), ``free_gb`` of them free (default: all)."""
    return tuple(GPU(i, "80GB-card", int(gb * 1e9), int((gb if free_gb is None else free_gb) * 1e9)) for i in range(n))


def llama(**options) -> ModelSpec:
    return ModelSpec(key="llama", engine="vllm", model=LLAMA_70B, options={"dtype": "bfloat16", **options})


def test_70b_in_bfloat16_needs_about_140_gb_of_weights():
    v = fit(llama(tensor_parallel_size=4), ModelFacts(SIZES[LLAMA_70B]), Machine(cards(4), "cuda"))
    assert 139e9 < v.weight_bytes < 142e9 and v.params == 70_553_706_496 and v.dtype == "bfloat16"


def test_70b_fits_four_80gb_cards_with_tp4_and_not_with_tp2():
    machine = Machine(cards(4), "cuda")
    tp4 = fit(llama(tensor_parallel_size=4), ModelFacts(SIZES[LLAMA_70B]), machine)
    tp2 = fit(llama(tensor_parallel_size=2), ModelFacts(SIZES[LLAMA_70B]), machine)
    assert tp4.status == FITS and not tp4.blocking
    assert tp2.status == NO_FIT and tp2.blocking
    assert "70.6 GB of weights" in tp2.reason and "73.6 GB" in tp2.reason  # 0.92 of 80 GB
    assert tp2.advice[0] == "tensor_parallel_size = 4"


def test_70b_on_two_cards_is_told_to_quantize_and_on_one_to_get_more():
    tp2 = fit(llama(tensor_parallel_size=2), ModelFacts(SIZES[LLAMA_70B]), Machine(cards(2), "cuda"))
    assert tp2.status == NO_FIT and tp2.advice == ['quantization = "fp8"']
    fp8 = fit(
        llama(tensor_parallel_size=2, quantization="fp8"), ModelFacts(SIZES[LLAMA_70B]), Machine(cards(2), "cuda")
    )
    assert fp8.status == FITS and 70e9 < fp8.weight_bytes < 71e9
    tp4 = fit(llama(tensor_parallel_size=4), ModelFacts(SIZES[LLAMA_70B]), Machine(cards(1), "cuda"))
    assert tp4.status == NO_FIT and "asks for 4 GPUs" in tp4.reason and "1 here" in tp4.reason


def test_a_long_context_that_does_not_fit_gets_the_longest_that_does():
    spec = ModelSpec(key="qa", engine="vllm", model="Qwen/Qwen2-Audio-7B-Instruct", options={"max_model_len": 32768})
    v = fit(spec, ModelFacts(SIZES[spec.model]), Machine(cards(1, gb=24), "cuda"))
    assert v.status == NO_FIT and "KV cache for one 32768-token sequence" in v.reason
    (advice,) = v.advice
    length = int(advice.removeprefix("max_model_len = "))
    assert 4096 <= length < 32768 and length % 256 == 0
    shorter = ModelSpec(key="qa", engine="vllm", model=spec.model, options={"max_model_len": length})
    assert fit(shorter, ModelFacts(SIZES[spec.model]), Machine(cards(1, gb=24), "cuda")).status == FITS
    longer = ModelSpec(key="qa", engine="vllm", model=spec.model, options={"max_model_len": length + 512})
    assert fit(longer, ModelFacts(SIZES[spec.model]), Machine(cards(1, gb=24), "cuda")).status == NO_FIT


def test_a_card_another_process_holds_is_named_with_a_lower_share():
    spec = ModelSpec(key="qa", engine="vllm", model="Qwen/Qwen2-Audio-7B-Instruct")
    v = fit(spec, ModelFacts(SIZES[spec.model]), Machine(cards(1, free_gb=40), "cuda"))
    assert v.status == NO_FIT and "another process" in v.reason and v.advice == ["gpu_memory_utilization = 0.5"]


def test_the_papers_configuration_fits_four_80gb_cards_and_nothing_without_gpus():
    cfg = load_run_config("paper")
    facts = {s.model: ModelFacts(SIZES[s.model]) for s in cfg.allms + cfg.judges if s.engine == "vllm"}
    on_gpus = [fit(s, facts.get(s.model, ModelFacts()), Machine(cards(4), "cuda")) for s in cfg.allms + cfg.judges]
    assert all(not v.blocking for v in on_gpus), [(v.key, v.reason) for v in on_gpus]
    assert [v.status for v in on_gpus if v.engine == "vllm"] == [FITS] * 4
    on_cpu = [fit(s, facts.get(s.model, ModelFacts()), Machine((), "cpu", 20 * 10**9)) for s in cfg.judges]
    assert all(v.status == NO_FIT and "no GPU here" in v.reason for v in on_cpu)


@pytest.mark.parametrize("name", ["cpu", "cpu-llm-judge"])
def test_cpu_models_need_no_gpu(name):
    cfg = load_run_config(name)
    machine = Machine(packages=frozenset({"xllamacpp", "faster_whisper", "sentence_transformers"}))  # no GPU, no vLLM
    verdicts = [fit(s, ModelFacts(), machine) for s in cfg.allms + cfg.judges]
    assert [v.status for v in verdicts] == [NO_GPU] * len(verdicts) and not any(v.blocking for v in verdicts)
    for judge, package in (("smollm2-original", "xllamacpp"), ("reference", "sentence_transformers")):
        if judge not in [j.key for j in cfg.judges]:
            continue
        [spec] = [j for j in cfg.judges if j.key == judge]
        missing = fit(spec, ModelFacts(), Machine(packages=frozenset()))
        assert missing.blocking and package in missing.reason


def test_the_cpu_build_runs_small_models_and_refuses_what_memory_cannot_hold():
    tiny = ModelSpec(key="t", engine="vllm", model="tiny")
    small = ModelFacts(ModelSize(1_000_000, "test", "float32"))
    assert fit(tiny, small, Machine((), "cpu", 8 * 10**9)).status == FITS
    assert fit(tiny, ModelFacts(SIZES[LLAMA_70B]), Machine((), "cpu", 8 * 10**9)).status == NO_FIT
    assert fit(tiny, small, Machine((), "cuda", 8 * 10**9)).status == NO_FIT  # the CUDA build needs a GPU
    assert "not installed" in fit(tiny, small, NO_PACKAGES).reason


def test_the_size_table_cites_a_source_for_every_model_of_the_paper():
    cfg = load_run_config("paper")
    for spec in [s for s in cfg.allms + cfg.judges if s.engine == "vllm"]:
        size = SIZES[spec.model]
        assert size.source and size.params > 1e9 and size.layers and size.kv_heads and size.head_dim
    # the counts computed from the configs agree with the arithmetic the doctor applies to a cached config.json
    qwen = {
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "intermediate_size": 29568,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 152064,
        "model_type": "qwen2",
    }
    assert params_from_config(qwen) == SIZES["Qwen/Qwen2.5-72B-Instruct"].params


def test_a_malformed_size_table_is_refused_naming_the_entry(tmp_path):
    bad = tmp_path / "sizes.toml"
    bad.write_text('["org/m"]\nparams = "7B"\nsource = "card"\n')
    with pytest.raises(ConfigError, match=r"org/m.*params must be a positive integer"):
        load_model_sizes(bad)
    bad.write_text('["org/m"]\nparams = 7\n')
    with pytest.raises(ConfigError, match="needs params and source"):
        load_model_sizes(bad)


def _safetensors(path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = 2 * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))


def test_a_model_in_the_hub_cache_is_sized_from_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("abc123")
    (snap / "config.json").write_text(
        json.dumps(
            {
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "hidden_size": 64,
                "torch_dtype": "bfloat16",
            }
        )
    )
    _safetensors(snap / "model.safetensors", {"embed": ("BF16", [100, 64]), "layer.0": ("BF16", [64, 64])})
    facts = model_facts(ModelSpec(key="t", engine="vllm", model="org/tiny"), sizes={})
    assert facts.cached is True and facts.size.params == 100 * 64 + 64 * 64 and facts.size.dtype == "bfloat16"
    assert (facts.size.layers, facts.size.kv_heads, facts.size.head_dim) == (2, 2, 16)
    assert model_facts(ModelSpec(key="u", engine="vllm", model="org/absent"), sizes={}).size is None
    size, cached = size_from_folder(tmp_path)  # an empty folder: nothing known
    assert size is None and cached is False


def test_cuda_visible_devices_selects_and_orders_gpus(monkeypatch):
    gpus = list(cards(4))
    uuids = {g.index: f"GPU-{g.index}aaaa" for g in gpus}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-0")
    assert [g.index for g in _visible(gpus, uuids)] == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert _visible(gpus, uuids) == []


def test_the_plan_counts_rows_and_the_answers_already_stored(tmp_path):
    store = tmp_path / "calls.sqlite"
    cfg = load_run_config("cpu-llm-judge")
    assert stored_answers(store) == {}  # no store yet: nothing stored, and none is made
    assert not store.exists()
    with Store(store) as st:
        for k in range(5):
            request = {"identity": {}, "extra": {"task": "cascade"}, "messages": [{"role": "user", "content": str(k)}]}
            st.put(f"key{k}", request, Response("answer", [], {"engine": "embedded", "model": "SmolLM2-135M-Instruct"}))
    assert stored_answers(store) == {("cascade", "embedded", "SmolLM2-135M-Instruct"): 5}
    machine = Machine(packages=frozenset({"xllamacpp", "faster_whisper", "sentence_transformers"}))
    plan = run_plan(cfg, clips=[1, 2, 3], store=store, machine=machine)
    allm, reference, smollm2 = plan.rows[0], plan.rows[1], plan.rows[2]
    assert (
        plan.n_clips == 3 and allm.rows == 24 and allm.stored == 5 and allm.stored_text == "19-24 to compute (5 stored)"
    )
    # the run's answers + ten control answers per check clip: all 80 for the reference judge, 3 for SmolLM2
    assert (reference.rows, smollm2.rows) == (24 + 80 * 10, 24 + 3 * 10) and smollm2.stored == 0
    assert not plan.blocking and "every model can run here" in plan.format()


def _jasco(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "jasco_utils.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return proc, time.monotonic() - started


NO_NVIDIA_SMI = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None,
    reason="this machine has nvidia-smi: the no-GPU report is for machines without",
)


@NO_NVIDIA_SMI
def test_the_real_doctor_on_a_machine_without_gpus(tmp_path):
    canary = "hf_canary_3b1f0c"
    proc, seconds = _jasco("doctor", env={"HF_TOKEN": canary})
    assert proc.returncode == 0, proc.stderr
    assert "none: no GPU found (nvidia-smi not found" in proc.stdout and "HF_TOKEN is set" in proc.stdout
    assert canary not in proc.stdout + proc.stderr
    assert seconds < 5, f"jasco doctor took {seconds:.1f} s"
    proc, seconds = _jasco("doctor", "--config", "paper", "--store", str(tmp_path / "calls.sqlite"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no GPU here" in proc.stdout and "stops before anything loads: llama-3.1-70b" in proc.stdout
    assert seconds < 5, f"jasco doctor --config paper took {seconds:.1f} s"
    proc, _ = _jasco("doctor", "--config", "cpu", "--store", str(tmp_path / "calls.sqlite"))
    assert proc.returncode == 0 and "every model can run here" in proc.stdout, proc.stdout + proc.stderr
    assert not (tmp_path / "calls.sqlite").exists()  # the plan only reads the store


@NO_NVIDIA_SMI
def test_reproduce_prints_the_plan_and_stops_before_anything_loads(tmp_path):
    run = tmp_path / "run"
    proc, _ = _jasco("reproduce", "--config", "paper", "--run-dir", str(run), "--store", str(tmp_path / "c.sqlite"))
    assert proc.returncode == 1 and "run plan: paper, 80 clips, 7 models" in proc.stdout
    assert "stopped before any model loads" in proc.stderr and not run.exists()
    proc, _ = _jasco(
        "reproduce", "--config", "cpu", "--dry-run", "--run-dir", str(run), "--store", str(tmp_path / "c.sqlite")
    )
    assert proc.returncode == 0 and "run plan: cpu, 10 clips, 3 models" in proc.stdout and not run.exists()


def test_nvidia_smi_output_is_read_as_the_documented_csv(tmp_path, monkeypatch):
    """The GPU inventory from `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.free
    --format=csv,noheader,nounits` (MiB): a stand-in executable prints what a two-card machine does."""
    from jasco_utils.doctor.machine import nvidia_smi_gpus

    exe = tmp_path / "nvidia-smi"
    exe.write_text(
        "#!/bin/sh\n"
        'case "$*" in *index,uuid,name,memory.total,memory.free*csv,noheader,nounits*) ;; *) exit 9 ;; esac\n'
        "echo '0, GPU-11aa, NVIDIA H100 80GB HBM3, 81559, 80000'\n"
        "echo '1, GPU-22bb, NVIDIA H100 80GB HBM3, 81559, 1024'\n"
    )
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus, note = nvidia_smi_gpus()
    assert note == "" and [g.index for g in gpus] == [0, 1] and gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert gpus[0].total_bytes == 81559 * 2**20 and gpus[1].free_bytes == 1024 * 2**20
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g.index for g in nvidia_smi_gpus()[0]] == [1]
