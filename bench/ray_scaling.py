"""The same run configuration on the local executor and on a simulated two-node Ray cluster, in one run.

For each executor it prints the wall time of the model stages, the sum of the stages' own times
(``RUN_DIR/stages.jsonl``), and the overlap achieved: sum of stage times / wall time (1.0: one
stage after another; above 1: stages ran side by side). Both runs start from an empty call
store. The cluster (``ray.cluster_utils.Cluster``) is two nodes of this machine, so its stages
share this machine's cores: the overlap says how much the executor ran at once, the wall-time
ratio what that bought on this machine (on a real cluster each node brings its own cores or GPUs).

The default configuration needs nothing but the CPU default's models: two cascades (Whisper
tiny.en, then SmolLM2, answering at two lengths) judged by the reference judge with both judge
prompts, two replicas each, and the reference judge's check.

    .venv/bin/python bench/ray_scaling.py --data-dir ../shared/jasco-v0
    .venv/bin/python bench/ray_scaling.py --data-dir ../shared/jasco-v0 --config my-run.toml --cpus 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIG = """name = "ray-scaling"
clips = [1, 2]
[judging]
judges = ["reference", "reference-paper"]
[judging.replicas]
reference = 2
reference-paper = 2
[judge_check]
enabled = true
clips = [1, 2, 3, 4]
[[allms]]
name = "Cascade-short"
engine = "cascade"
llm_engine = "embedded"
max_tokens = 24
[[allms]]
name = "Cascade-long"
engine = "cascade"
llm_engine = "embedded"
max_tokens = 48
"""


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def measure(config_path: Path, data_dir: str | None, work: Path, executor: str, address: str | None = None) -> dict:
    """Run every model stage of the configuration on one executor; return its times."""
    from jasco_utils.config import load_run_config
    from jasco_utils.pipeline.reproduce import run_stages
    from jasco_utils.run import Run

    run_dir = work / executor
    t0 = time.perf_counter()
    run_stages(
        load_run_config(config_path),
        run_dir,
        data_dir,
        store=work / f"{executor}.sqlite",
        executor=executor,
        address=address,
        log=lambda line: None,
    )
    wall = time.perf_counter() - t0
    records = Run(run_dir).stage_records().to_dict("records")
    span = max(_seconds(r["finished_at"]) for r in records) - min(_seconds(r["started_at"]) for r in records)
    stage_sum = sum(r["wall_s"] for r in records)
    return {
        "wall": wall,
        "span": span,
        "stage_sum": stage_sum,
        "overlap": stage_sum / span,
        "jobs": len(records),
        "nodes": len({r.get("node_id") or r["node"] for r in records}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the dataset folder (default: JASCO_DATA_DIR or data/raw)")
    ap.add_argument("--config", default=None, help="a run configuration (default: two cascades, two reference judges)")
    ap.add_argument("--cpus", type=int, default=2, help="logical CPUs of each of the two simulated nodes (default 2)")
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory(prefix="jasco-ray-bench-") as tmp:
        work = Path(tmp)
        os.environ["JASCO_STAGE_DIR"] = str(work / "stage-dir")
        config = Path(args.config) if args.config else work / "ray-scaling.toml"
        if not args.config:
            config.write_text(DEFAULT_CONFIG, encoding="utf-8")
        print(f"configuration {config.name}; {os.cpu_count()} cores here", flush=True)
        local = measure(config, args.data_dir, work, "local")
        print(f"  local: done in {local['wall']:.0f} s", flush=True)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus, "include_dashboard": False})
        cluster.add_node(num_cpus=args.cpus)
        cluster.wait_for_nodes()
        try:
            on_ray = measure(config, args.data_dir, work, "ray", cluster.address)
        finally:
            ray.shutdown()
            cluster.shutdown()
        print(f"  ray (two nodes of {args.cpus} CPUs): done in {on_ray['wall']:.0f} s", flush=True)
    for name, m in (("local", local), ("ray", on_ray)):
        print(
            f"{name:>5}: {m['jobs']} stage runs on {m['nodes']} node(s); stages {m['stage_sum']:.0f} s in all, "
            f"first start to last end {m['span']:.0f} s, wall {m['wall']:.0f} s; overlap {m['overlap']:.2f}"
        )
    print(
        f"overlap ray / local: {on_ray['overlap'] / local['overlap']:.2f}; "
        f"wall local / ray: {local['wall'] / on_ray['wall']:.2f} (both on this machine's {os.cpu_count()} cores)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
