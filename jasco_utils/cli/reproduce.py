"""``jasco reproduce``: the run plan, then the notebooks headlessly: Table II and Figure 2 for a configuration."""

from __future__ import annotations

import argparse
import sys

from jasco_utils.cli.flags import reproduce_args
from jasco_utils.config import RunConfig, load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.data.dataset import N_CLIPS
from jasco_utils.doctor.machine import run_plan
from jasco_utils.pipeline.reproduce import reproduce, run_summary


def _cmd_reproduce(args: argparse.Namespace) -> int:

    try:
        cfg = load_run_config(args.config)
    except ConfigError as e:
        print(f"jasco reproduce: {e}", file=sys.stderr)
        return 1
    import papermill  # seconds to import: only once the configuration is known to be good

    clips = args.clips
    if args.limit:
        clips = (clips or ([] if args.all_clips else cfg.clips) or list(range(1, N_CLIPS + 1)))[: args.limit]
    # the run plan; the run stops here when a model cannot run

    if (stop := plan_first(cfg, clips, args.all_clips, args.store, args.dry_run)) is not None:
        return stop
    try:
        run_dir = reproduce(
            cfg,
            args.run_dir,
            args.figures_dir,
            args.store,
            args.data_dir,
            args.all_clips,
            log=lambda line: print(line, flush=True),
            clips=clips,
            executor=args.executor,
            address=args.ray_address,
        )
    except papermill.PapermillExecutionError as e:
        print(
            f"jasco reproduce: a notebook failed (its executed copy is under the run's notebooks/):\n{e}",
            file=sys.stderr,
        )
        return 1
    print(run_summary(cfg, run_dir, args.figures_dir))
    return 0


def plan_first(
    config: RunConfig, clips: list[int] | None, all_clips: bool, store: str | None, dry_run: bool
) -> int | None:
    """What ``jasco reproduce`` does before its first notebook: print the run plan; return the exit
    status when the run stops here (a model cannot run: 1; ``--dry-run``: 0), else ``None``."""
    plan = run_plan(config, clips=clips, all_clips=all_clips, store=store)
    print(plan.format(), flush=True)
    if plan.blocking:
        print(
            "jasco reproduce: stopped before any model loads; `jasco doctor --config NAME` says more", file=sys.stderr
        )
        return 1
    return 0 if dry_run else None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    rp = sub.add_parser("reproduce", help="run the notebooks headlessly: Table II and Figure 2 for a configuration")
    reproduce_args(rp)
    rp.set_defaults(func=_cmd_reproduce)
