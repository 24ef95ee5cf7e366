"""Whether a run's models fit this machine, told before any weight loads (the run plan is :mod:`~jasco_utils.doctor.plan`'s).

Each model of a run (every ALLM, every judge) gets a :class:`Verdict`: ``fits``, ``does not
fit`` (with what to change: ``tensor_parallel_size``, ``quantization``, ``max_model_len``),
``cannot tell``, ``no GPU needed`` (the embedded engine, the cascade, imported answers),
``elsewhere`` (a served model behind the openai engine) or ``skipped`` (optional imported
answers that are not there). The arithmetic is pure: it takes the model's size
(:class:`ModelSize`, from :file:`configs/model_sizes.toml` or the model's files in the Hugging
Face cache, see :func:`jasco_utils.doctor.machine.model_facts`) and the machine (:class:`Machine`: its
GPUs and their free memory, the vLLM build) as arguments, so it is tested with made-up
machines; :mod:`jasco_utils.doctor.machine` gathers the real one.

A vLLM model fits when, on each of its ``tensor_parallel_size x pipeline_parallel_size`` GPUs,
its share of the weights, a reserve for activations, CUDA graphs and communication buffers
(:data:`RESERVE_FRACTION` of the card, an estimate: vLLM measures it when it starts) and the KV
cache of one full ``max_model_len`` sequence (vLLM's own start-up minimum) fit in the share of
the card vLLM may take (``gpu_memory_utilization``, vLLM's default :data:`GPU_MEMORY_UTILIZATION`).
Weights take ``params x bytes per parameter`` at the dtype asked for (``auto``: the checkpoint's),
1 byte with ``quantization = "fp8"``, half a byte with 4-bit AWQ or GPTQ checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.models.spec import ModelSpec

#: vLLM 0.32's default share of each GPU's memory (``gpu_memory_utilization``).
GPU_MEMORY_UTILIZATION = 0.92
#: Share of each card kept for activations, CUDA graphs and communication buffers (an estimate).
RESERVE_FRACTION = 0.08
#: The context length the vLLM backend uses when ``max_model_len`` is not set.
DEFAULT_MAX_MODEL_LEN = 4096
GB = 1e9

FITS, NO_FIT, UNKNOWN, NO_GPU = "fits", "does not fit", "cannot tell", "no GPU needed"
ELSEWHERE, SKIPPED = "elsewhere", "skipped"
#: Verdicts that stop a run before anything loads.
BLOCKING = (NO_FIT,)

_DTYPE_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4, "fp16": 2, "bf16": 2, "fp32": 4}
#: Bytes per parameter of a quantization method (weights; scales and unquantized layers neglected).
QUANT_BYTES = {
    "fp8": 1.0,
    "modelopt": 1.0,
    "fbgemm_fp8": 1.0,
    "awq": 0.5,
    "awq_marlin": 0.5,
    "gptq": 0.5,
    "gptq_marlin": 0.5,
    "bitsandbytes": 0.5,
}


@dataclass(frozen=True)
class GPU:
    """One GPU as the machine reports it."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Machine:
    """What the verdicts need to know of a machine.

    Attributes:
        gpus: The visible GPUs, in CUDA order.
        vllm_build: ``cuda``, ``cpu`` (vLLM's CPU build) or ``None`` (vLLM not installed).
        host_available_bytes: Memory the operating system can give (for vLLM's CPU build).
        packages: The engines' packages that are installed (``vllm``, ``xllamacpp``, ``openai``,
            ``faster_whisper``, ``sentence_transformers``; default: all of them).
        gpu_note: Why no GPU is listed, in words (``nvidia-smi not found``).
    """

    gpus: tuple[GPU, ...] = ()
    vllm_build: str | None = None
    host_available_bytes: int | None = None
    packages: frozenset[str] = frozenset({"vllm", "xllamacpp", "openai", "faster_whisper", "sentence_transformers"})
    gpu_note: str = ""


@dataclass(frozen=True)
class ModelSize:
    """A model's parameter count and, where known, the shape of its KV cache.

    Attributes:
        params: Parameter count.
        source: Where the count comes from, in words.
        dtype: The checkpoint's stored dtype (what ``dtype = "auto"`` loads).
        layers, kv_heads, head_dim: Attention layers, key-value heads, head size (KV cache).
        approx: Whether the source rounds the count.
    """

    params: int
    source: str
    dtype: str | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    approx: bool = False


@dataclass(frozen=True)
class ModelFacts:
    """What was found out about one model on this machine (see :func:`jasco_utils.doctor.machine.model_facts`).

    Attributes:
        size: Its size, or ``None`` when unknown.
        cached: Whether its weights are on disk (``None``: not looked for, or a served model).
        download_free_bytes: Free disk where its weights would be downloaded.
        download_path: That folder.
    """

    size: ModelSize | None = None
    cached: bool | None = None
    download_free_bytes: int | None = None
    download_path: str = ""


@dataclass
class Verdict:
    """Whether one model of a run will run here, and why."""

    role: str
    key: str
    engine: str
    model: str
    status: str
    reason: str = ""
    advice: list[str] = field(default_factory=list)
    params: int | None = None
    weight_bytes: float | None = None
    dtype: str = ""
    tp: int = 1
    pp: int = 1

    @property
    def blocking(self) -> bool:
        """Whether this model stops the run."""
        return self.status in BLOCKING


def bytes_per_param(options: Mapping[str, Any], stored_dtype: str | None) -> tuple[float | None, str]:
    """Bytes per weight for a vLLM model's options, and its label (``bfloat16``, ``fp8``).

    >>> bytes_per_param({"dtype": "float16"}, "bfloat16")
    (2, 'float16')
    >>> bytes_per_param({"quantization": "fp8"}, "bfloat16")
    (1.0, 'fp8')
    >>> bytes_per_param({}, None)
    (2, 'auto (16-bit)')
    """
    quant = options.get("quantization")
    if quant:
        return QUANT_BYTES.get(str(quant)), str(quant)
    dtype = str(options.get("dtype") or "auto")
    if dtype == "auto":
        # vLLM's auto keeps a 16-bit checkpoint's dtype and loads a float32 one in 16 bits
        stored = str(stored_dtype or "")
        return 2, f"auto ({stored})" if stored in ("float16", "bfloat16") else "auto (16-bit)"
    return _DTYPE_BYTES.get(dtype), dtype


def _parallel(options: Mapping[str, Any]) -> tuple[int, int]:
    """(tensor_parallel_size, pipeline_parallel_size) of a model's options."""
    return int(options.get("tensor_parallel_size", 1) or 1), int(options.get("pipeline_parallel_size", 1) or 1)


def kv_bytes_per_token(size: ModelSize, options: Mapping[str, Any]) -> int | None:
    """KV-cache bytes one token takes in the whole model (keys and values of every layer), or ``None``."""
    if not (size.layers and size.kv_heads and size.head_dim):
        return None
    kv_dtype = str(options.get("kv_cache_dtype") or "auto")
    per_value = 1 if kv_dtype.startswith("fp8") else 2
    return 2 * size.layers * size.kv_heads * size.head_dim * per_value


def _per_gpu_need(size: ModelSize, options: Mapping[str, Any], card_total: int) -> tuple[float, float, float] | None:
    """(weights, reserve, one sequence's KV cache) in bytes on each GPU, or ``None`` when the dtype is unknown."""
    bpp, _ = bytes_per_param(options, size.dtype)
    if bpp is None:
        return None
    tp, pp = _parallel(options)
    weights = size.params * bpp / (tp * pp)
    kv_token = kv_bytes_per_token(size, options)
    kv = 0.0
    if kv_token is not None:
        heads_share = max(1.0, size.kv_heads / tp) / size.kv_heads  # heads split by TP (replicated below one each)
        max_len = int(options.get("max_model_len") or DEFAULT_MAX_MODEL_LEN)
        kv = kv_token * heads_share / pp * max_len
    return weights, RESERVE_FRACTION * card_total, kv


def _gpu_shortfall(size: ModelSize, options: Mapping[str, Any], gpus: tuple[GPU, ...]) -> str | None:
    """Why the model does not fit these GPUs (``None`` when it fits)."""
    tp, pp = _parallel(options)
    if tp * pp > len(gpus):
        return f"asks for {tp * pp} GPUs (tensor_parallel_size {tp} x pipeline_parallel_size {pp}); {len(gpus)} here"
    util = float(options.get("gpu_memory_utilization") or GPU_MEMORY_UTILIZATION)
    for gpu in gpus[: tp * pp]:
        need = _per_gpu_need(size, options, gpu.total_bytes)
        if need is None:
            return None
        weights, reserve, kv = need
        budget = gpu.total_bytes * util
        if gpu.free_bytes < budget:
            return (
                f"GPU {gpu.index} has {gpu.free_bytes / GB:.1f} GB free, less than the {budget / GB:.1f} GB vLLM takes "
                f"(gpu_memory_utilization {util}); another process holds the rest"
            )
        if weights + reserve + kv > budget:
            max_len = int(options.get("max_model_len") or DEFAULT_MAX_MODEL_LEN)
            kv_text = f" + {kv / GB:.1f} GB KV cache for one {max_len}-token sequence" if kv else ""
            return (
                f"needs {weights / GB:.1f} GB of weights + {reserve / GB:.1f} GB reserve{kv_text} on each GPU; "
                f"vLLM may take {budget / GB:.1f} GB of GPU {gpu.index} ({gpu.name})"
            )
    return None


def _max_len_that_fits(size: ModelSize, options: Mapping[str, Any], gpus: tuple[GPU, ...]) -> int | None:
    """The longest ``max_model_len`` (a multiple of 256) whose KV cache fits beside the weights, or ``None``."""
    tp, pp = _parallel(options)
    kv_token = kv_bytes_per_token(size, options)
    if kv_token is None or tp * pp > len(gpus):
        return None
    util = float(options.get("gpu_memory_utilization") or GPU_MEMORY_UTILIZATION)
    rooms = []
    for gpu in gpus[: tp * pp]:
        need = _per_gpu_need(size, {**options, "max_model_len": 1}, gpu.total_bytes)
        if need is None:
            return None
        rooms.append(min(gpu.free_bytes, gpu.total_bytes * util) - need[0] - need[1])
    per_token = kv_token * max(1.0, size.kv_heads / tp) / size.kv_heads / pp
    n = int(min(rooms) // per_token) // 256 * 256
    return n if n >= 256 else None


def _advice(size: ModelSize, options: Mapping[str, Any], gpus: tuple[GPU, ...]) -> list[str]:
    """Changes of options that make the model fit these GPUs, plainest first (at most three)."""
    tp, pp = _parallel(options)
    fits = lambda **change: _gpu_shortfall(size, {**options, **change}, gpus) is None  # noqa: E731
    out = []
    # too many GPUs asked: the fewest that fit; too little memory: the next widths up
    widths = [t for t in (1, 2, 4, 8) if t != tp and t * pp <= len(gpus) and (t > tp or tp * pp > len(gpus))]
    other = [t for t in widths if fits(tensor_parallel_size=t)]
    if other:
        out.append(f"tensor_parallel_size = {other[0]}")
    length = _max_len_that_fits(size, options, gpus)
    if length and length < int(options.get("max_model_len") or DEFAULT_MAX_MODEL_LEN) and fits(max_model_len=length):
        out.append(f"max_model_len = {length}")
    if not options.get("quantization"):
        tried = [(q, t) for q in ("fp8", "awq") for t in ([tp] if tp * pp <= len(gpus) else []) + widths]
        for quant, t in tried:
            if fits(quantization=quant, tensor_parallel_size=t):
                width = f", tensor_parallel_size = {t}" if t != tp else ""
                out.append(
                    f'quantization = "{quant}"{width}'
                    + (" (with a 4-bit AWQ checkpoint of the model)" if quant == "awq" else "")
                )
                break
    share = float(options.get("gpu_memory_utilization") or GPU_MEMORY_UTILIZATION)
    busy = [g for g in gpus[: tp * pp] if g.free_bytes < g.total_bytes * share]
    if busy:
        util = math.floor(min(g.free_bytes / g.total_bytes for g in busy) * 100) / 100
        shorter = _max_len_that_fits(size, {**options, "gpu_memory_utilization": util}, gpus)
        if util > 0 and fits(gpu_memory_utilization=util):
            out.append(f"gpu_memory_utilization = {util}")
        elif util > 0 and shorter and fits(gpu_memory_utilization=util, max_model_len=shorter):
            out.append(f"gpu_memory_utilization = {util}, max_model_len = {shorter}")
    return out[:3]


def _vllm_verdict(v: Verdict, spec_options: Mapping[str, Any], facts: ModelFacts, machine: Machine) -> Verdict:
    size = facts.size
    if size is not None:
        bpp, v.dtype = bytes_per_param(spec_options, size.dtype)
        v.params = size.params
        v.weight_bytes = None if bpp is None else size.params * bpp
    if "vllm" not in machine.packages or machine.vllm_build is None:
        v.status, v.reason = NO_FIT, "vLLM is not installed (make setup; on GPUs: make setup DEVICE=cuda)"
        return v
    if not machine.gpus:
        return _cpu_verdict(v, spec_options, size, machine)
    if size is None:
        parallel = {"tensor_parallel_size": v.tp, "pipeline_parallel_size": v.pp}
        short = _gpu_shortfall(ModelSize(1, ""), parallel, machine.gpus)  # too few GPUs, whatever its size
        v.status = NO_FIT if short and "asks for" in short else UNKNOWN
        v.reason = (
            short
            if v.status == NO_FIT
            else (
                "its size is unknown: not in configs/model_sizes.toml, and no "
                "config.json or weights in the Hugging Face cache"
            )
        )
        return v
    if v.weight_bytes is None:
        v.status, v.reason = UNKNOWN, f"no weight size known for dtype/quantization {v.dtype!r}"
        return v
    short = _gpu_shortfall(size, spec_options, machine.gpus)
    if short:
        v.status, v.reason, v.advice = NO_FIT, short, _advice(size, spec_options, machine.gpus)
        return v
    v.status = FITS
    if kv_bytes_per_token(size, spec_options) is None:
        v.reason = "weights fit; the KV cache was not checked (its layer shape is unknown)"
    return _disk_verdict(v, facts)


def _cpu_verdict(v: Verdict, options: Mapping[str, Any], size: ModelSize | None, machine: Machine) -> Verdict:
    """A vLLM model on a machine without GPUs: only vLLM's CPU build runs, in host memory, on one device."""
    note = f" ({machine.gpu_note})" if machine.gpu_note else ""
    if machine.vllm_build != "cpu":
        v.status, v.reason = NO_FIT, f"no GPU here{note}, and the installed vLLM is its {machine.vllm_build} build"
        return v
    if v.tp * v.pp > 1:
        v.status = NO_FIT
        v.reason = (
            f"asks for {v.tp * v.pp} GPUs (tensor_parallel_size {v.tp} x pipeline_parallel_size {v.pp}); "
            f"no GPU here{note}"
        )
        v.advice = ["a machine with GPUs: make setup DEVICE=cuda, then jasco doctor --config NAME"]
        return v
    if size is None or v.weight_bytes is None or machine.host_available_bytes is None:
        v.status, v.reason = UNKNOWN, f"no GPU here{note}: vLLM's CPU build would run it in memory; its size is unknown"
        return v
    need = v.weight_bytes * 1.1 + 2**30  # weights, the CPU build's 1 GiB KV cache, working memory
    if need > machine.host_available_bytes:
        v.status = NO_FIT
        v.reason = (
            f"no GPU here{note}: vLLM's CPU build needs about {need / GB:.1f} GB of memory; "
            f"{machine.host_available_bytes / GB:.1f} GB available"
        )
        v.advice = ["a machine with GPUs: make setup DEVICE=cuda"]
        return v
    v.status, v.reason = FITS, "on the CPU (vLLM's CPU build): slow for anything but tiny models"
    return v


def _disk_verdict(v: Verdict, facts: ModelFacts) -> Verdict:
    if facts.cached is False and facts.size is not None and facts.download_free_bytes is not None:
        size_on_disk = facts.size.params * (_DTYPE_BYTES.get(str(facts.size.dtype), 2))
        if size_on_disk > facts.download_free_bytes:
            v.status = NO_FIT
            v.reason = (
                f"its weights are not cached and need about {size_on_disk / GB:.0f} GB to download; "
                f"{facts.download_free_bytes / GB:.0f} GB free at {facts.download_path}"
            )
            v.advice = ["free disk there, or point HF_HOME (or the download_dir option) at a larger disk"]
    return v


def import_file(spec: ModelSpec) -> Path:
    """The file of an ``import`` ALLM's answers (relative paths from the project root, as the run reads it)."""
    path = Path(getattr(spec, "path", "") or "")
    return path if path.is_absolute() else PROJECT_ROOT / path


def fit(spec: ModelSpec, facts: ModelFacts, machine: Machine, role: str = "model") -> Verdict:
    """Whether a model (a :class:`~jasco_utils.config.ModelSpec`) will run on a machine.

    Args:
        spec: The model: its ``key``, ``engine``, ``model`` and ``options`` are read.
        facts: Its size and cache state (:func:`jasco_utils.doctor.machine.model_facts`).
        machine: The machine.
        role: ``ALLM`` or ``judge`` (shown in the plan).
    """
    options = dict(spec.options or {})
    engine = spec.engine
    if engine == "cascade":
        engine = getattr(spec, "backend_engine", None) or "embedded"
    v = Verdict(
        role=role,
        key=spec.key,
        engine=spec.engine,
        model=spec.model or getattr(spec, "path", "") or "",
        status=NO_GPU,
        tp=int(options.get("tensor_parallel_size", 1) or 1),
        pp=int(options.get("pipeline_parallel_size", 1) or 1),
    )
    if spec.engine == "import":
        path = import_file(spec)
        if path.is_file():
            v.reason = f"answers made elsewhere, read from {path}"
        elif getattr(spec, "optional", False):
            v.status, v.reason = SKIPPED, f"no answers at {path}: skipped (run the model elsewhere and put them there)"
        else:
            v.status, v.reason = NO_FIT, f"no answers at {path} (run the model elsewhere and put them there)"
        return v
    if engine == "vllm":
        return _vllm_verdict(v, options, facts, machine)
    needed = {"embedded": "xllamacpp", "openai": "openai", "reference": "sentence_transformers"}.get(engine)
    missing = [
        p
        for p in ([needed] if needed else []) + (["faster_whisper"] if spec.engine == "cascade" else [])
        if p not in machine.packages
    ]
    if missing:
        v.status, v.reason = NO_FIT, f"needs {', '.join(missing)}, which is not installed (make setup)"
    elif engine == "openai":
        v.status, v.reason = ELSEWHERE, "served by its own server (base_url): not checked here"
    else:
        v.reason = "runs on the CPU"
    return v
