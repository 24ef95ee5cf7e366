"""``jasco doctor``: this machine as a run meets it; with ``--config``, whether each model fits."""

from __future__ import annotations

import argparse

from jasco_utils.cli.flags import data_dir_arg
from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.doctor.machine import doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    """``jasco doctor``: print the report; exit 1 when a model of ``--config`` cannot run here."""
    text, status = doctor(args.config, data_dir=getattr(args, "data_dir", None), store=args.store)
    print(text)
    return status


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    dr = sub.add_parser(
        "doctor",
        help="this machine as a run meets it: GPUs, vLLM build, disk, token, dataset; "
        "with --config, whether each model fits (nothing loaded)",
    )
    dr.add_argument("--config", help="a run configuration (cpu, paper, modern, or a .toml path): its plan and verdicts")
    dr.add_argument("--store", help=f"the call store the plan counts answers in (default {DEFAULT_STORE})")
    data_dir_arg(dr)
    dr.set_defaults(func=cmd_doctor)
