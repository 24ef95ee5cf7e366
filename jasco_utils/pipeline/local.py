"""The local executor: a run's stage jobs here, one after the other, each in its own process."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from jasco_utils.models.base import now_iso
from jasco_utils.pipeline.jobs import Job, append_record, job_resources, local_gpus, stage_record
from jasco_utils.pipeline.stage import run_stage
from jasco_utils.run import Run


def execute_local(
    jobs: Sequence[Job], run_dir: str | os.PathLike[str] | Run, store: str | os.PathLike[str]
) -> list[Path]:
    """Run the jobs here, one after the other, each in its own process; return the tables they wrote.

    Raises:
        RuntimeError: The first job that failed (as :func:`jasco_utils.pipeline.stage.run_stage`).
    """
    gpus = local_gpus()
    for job in jobs:
        started, t0 = now_iso(), time.perf_counter()
        run_stage(job.stage, job.spec, **job.kwargs, store=str(store))
        append_record(
            run_dir, stage_record(job, started, t0, job_resources(job.spec, gpus), "local", socket.gethostname())
        )
    return [job.out for job in jobs]
