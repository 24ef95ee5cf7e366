"""The main job timed on this machine: `jasco reproduce --config cpu` from an empty call store.

Runs the whole job as a user does (the four notebooks through papermill, every model stage in
its own process) into a temporary folder with an empty store, then reads the run's own stage
records (``stages.jsonl``) and prints the seconds of each model stage, the rest (notebooks,
analysis, statistics, process starts), the total, and each part's share of it. A benchmark,
not a test: its numbers depend on the machine and on what else runs on it.

    .venv/bin/python bench/cpu_default.py                       # the CPU default (10 clips)
    .venv/bin/python bench/cpu_default.py --all-clips           # all 80 clips
    .venv/bin/python bench/cpu_default.py --config cpu-llm-judge
    .venv/bin/python bench/cpu_default.py --config cpu-interventions
    .venv/bin/python bench/cpu_default.py --all-clips --keep runs/cpu-all   # keep the run to look at
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasco_utils.run import Run  # noqa: E402


def measure(config: str, all_clips: bool, work: Path, data_dir: str | None) -> tuple[float, list[dict]]:
    """Run the job; return its wall time and the run's stage records."""
    cmd = [sys.executable, "-m", "jasco_utils.cli", "reproduce", "--config", config]
    cmd += ["--run-dir", str(work / "run"), "--store", str(work / "calls.sqlite")]
    cmd += ["--all-clips"] if all_clips else []
    env = {**os.environ, **({"JASCO_DATA_DIR": data_dir} if data_dir else {})}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, Run(work / "run").stage_records().to_dict("records")


def report(wall: float, records: list[dict]) -> str:
    """One line per model stage (a judge's with the ALLM it judged), the rest, the total; each with
    its share of the total."""
    records = [
        {**r, "model": f"{r['model']} on {r['input']}" if isinstance(r.get("input"), str) else r["model"]}
        for r in records
    ]
    w = max([28, *(len(str(r["model"])) for r in records)])
    lines = [f"{'stage':<14} {'model':<{w}} {'seconds':>8} {'share':>6}"]
    for r in records:
        lines.append(f"{r['stage']:<14} {r['model']:<{w}} {r['wall_s']:8.1f} {100 * r['wall_s'] / wall:5.0f}%")
    stages = sum(r["wall_s"] for r in records)
    rest = wall - stages
    lines.append(f"{'the rest':<14} {'notebooks, analysis, starts':<{w}} {rest:8.1f} {100 * rest / wall:5.0f}%")
    lines.append(f"{'total':<14} {'':<{w}} {wall:8.1f}   ({wall / 60:.1f} min)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="cpu", help="the run configuration (default cpu)")
    ap.add_argument("--all-clips", action="store_true", help="all 80 clips instead of the configuration's")
    ap.add_argument("--data-dir", default=None, help="the dataset folder (default: JASCO_DATA_DIR or data/raw)")
    ap.add_argument("--keep", metavar="DIR", help="keep the run and its store in DIR (default: a folder removed after)")
    args = ap.parse_args()
    scope = "all 80 clips" if args.all_clips else "its clips"
    print(
        f"jasco reproduce --config {args.config} ({scope}), empty store, {os.cpu_count()} cores, {platform.machine()}"
    )
    if args.keep:
        if Path(args.keep).exists():  # an empty store: never a former run's
            ap.error(f"--keep {args.keep}: the folder exists; remove it or name another (the store must start empty)")
        Path(args.keep).mkdir(parents=True)
        wall, records = measure(args.config, args.all_clips, Path(args.keep), args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="jasco-bench-") as tmp:
            wall, records = measure(args.config, args.all_clips, Path(tmp), args.data_dir)
    print(report(wall, records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
