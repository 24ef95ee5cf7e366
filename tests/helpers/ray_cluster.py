"""A real Ray cluster on this machine, for the Ray executor's tests."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest


@contextlib.contextmanager
def local_ray_cluster(stage_dir: Path, nodes: tuple[int, ...] = (2, 2, 1)):
    """A real Ray cluster on this machine (``ray.cluster_utils.Cluster``): one node per entry of
    ``nodes`` (its logical CPUs), the first the head; shut down on leaving, so that its processes
    do not slow the tests after it. Tasks' call stores go to ``stage_dir`` (``JASCO_STAGE_DIR``,
    forwarded to the workers like every ``JASCO_`` setting)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (make setup installs the ray extra)")
    from ray.cluster_utils import Cluster

    os.environ["JASCO_STAGE_DIR"] = str(stage_dir)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": nodes[0], "include_dashboard": False})
    for cpus in nodes[1:]:
        cluster.add_node(num_cpus=cpus)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
