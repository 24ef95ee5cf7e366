"""One stage of one model in a process of its own: :func:`run_stage` starts it, this module's
``__main__`` runs it.

Each model (every ALLM, every judge) runs its stage function
(:func:`jasco_utils.inference.run.answer_manifest`, :func:`jasco_utils.judging.run.judge_outputs`,
:func:`jasco_utils.judging.run.judge_controls`) in its own Python process, given its
:class:`~jasco_utils.models.spec.ModelSpec` as data: a model's memory, GPU memory included, is
really released before the next loads, and vLLM's spawned workers need no ``__main__`` guard
in a notebook kernel.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from jasco_utils.core.paths import PROJECT_ROOT
from jasco_utils.inference.run import answer_manifest
from jasco_utils.judging.run import judge_controls, judge_outputs
from jasco_utils.models.spec import ModelSpec


def stage_function(stage: str):
    """The stage function a job of ``stage`` (``infer``, ``judge``, ``check``) calls."""
    if stage == "infer":
        return answer_manifest
    if stage == "judge":
        return judge_outputs
    if stage == "check":
        return judge_controls
    raise ValueError(f"unknown stage {stage!r}: infer, judge or check")


def _stage_main(payload: Mapping[str, Any]) -> int:
    """Run one stage for one model in this process, from :func:`run_stage`'s payload; print its summary."""
    spec = ModelSpec.from_dict(payload["spec"])
    kwargs = dict(payload["kwargs"])
    result = stage_function(payload["stage"])(spec, **kwargs)
    if payload["stage"] == "infer":
        print(result.summary())
        for line in result.notes:
            print(line)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print(f"{spec.name}: {result.stats.summary()}\nwrote {result.paths[0]} and .parquet")
    return 1 if result.failed else 0


#: Seconds between two progress-bar updates of a stage's process (its output is relayed, not a terminal).
PROGRESS_INTERVAL_S = 2.0


def _relay(source: IO[bytes], sink: IO[str] | None, tail: list[str] | None = None) -> None:
    """Copy ``source`` to ``sink`` as it arrives (progress bars included), keeping the last 8 kB in ``tail``."""
    decoder, kept = codecs.getincrementaldecoder("utf-8")(errors="replace"), 0
    for data in iter(lambda: source.read1(4096), b""):
        chunk = decoder.decode(data)
        if sink is not None:
            sink.write(chunk)
            sink.flush()
        if tail is None:
            continue
        tail.append(chunk)
        kept += len(chunk)
        while kept > 8192 and len(tail) > 1:
            kept -= len(tail.pop(0))


def _die_with_parent() -> None:
    """In a child process (Linux): be killed when the parent dies, so a killed Ray worker leaves no stage behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_stage(stage: str, spec: ModelSpec, echo: bool = True, die_with_parent: bool = False, **kwargs: Any) -> None:
    """Run a stage function for one model in its own process and wait for it.

    The spec and the arguments travel as JSON (no command-line translation); the child
    calls the same function :func:`stage_function` names. With ``echo``, the child's
    output (its progress bar: rows done of total, cached / called / failed, rate, time left;
    then its summary) reaches this process's stdout and stderr as it happens: a terminal, or
    the notebook cell that called it. With ``die_with_parent`` (Linux), the child is killed
    when this process dies (a Ray worker's stage).

    Raises:
        RuntimeError: The stage failed; the message holds the end of its error output.
    """
    payload = {
        "stage": stage,
        "spec": spec.to_dict(),
        "kwargs": {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()},
    }
    env = {**os.environ, "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", str(PROGRESS_INTERVAL_S))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jasco_utils.pipeline.stage"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env=env,
        preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
    )
    err_tail: list[str] = []
    relays = [
        threading.Thread(target=_relay, args=(proc.stdout, sys.stdout if echo else None), daemon=True),
        threading.Thread(target=_relay, args=(proc.stderr, sys.stderr if echo else None, err_tail), daemon=True),
    ]
    for t in relays:
        t.start()
    proc.stdin.write(json.dumps(payload).encode("utf-8"))
    proc.stdin.close()
    code = proc.wait()
    for t in relays:
        t.join()
    if code != 0:
        raise RuntimeError(f"{stage} with {spec.key} failed ({code}):\n{''.join(err_tail)[-4000:]}")


if __name__ == "__main__":
    sys.exit(_stage_main(json.loads(sys.stdin.read())))
