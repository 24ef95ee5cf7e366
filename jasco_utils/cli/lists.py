"""The listing commands of ``jasco``: ``runs``, ``judges`` and ``allms``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jasco_utils.config import RUN_CONFIGS_DIR, load_allms, load_judges, load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.paths import RUNS_DIR
from jasco_utils.report.results import list_runs


def cmd_runs(args: argparse.Namespace) -> int:
    """``jasco runs``: the runs under runs/ and their Table II averages."""

    root = Path(args.runs_dir or RUNS_DIR)
    if root.exists() and not root.is_dir():
        print(
            f"jasco runs: {root}: is a file; --runs-dir names the folder that holds runs (default runs/)",
            file=sys.stderr,
        )
        return 1
    runs = list_runs(root)
    if runs.empty:
        print(f"no runs under {root}: jasco reproduce --config cpu makes one")
    else:
        print_table(list(runs.columns), runs.itertuples(index=False))
    return 0


def print_table(head: list[str], rows) -> None:
    """Columns padded to their widest cell, left-aligned."""
    rows = [tuple(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in [tuple(head), *rows]) for i in range(len(head))]
    for r in [tuple(head), *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def cmd_models(args: argparse.Namespace) -> int:
    """``jasco judges`` / ``jasco allms``: the named models."""
    try:
        if args.command == "judges":
            rows = [
                (k, s.name or k, s.engine, s.model or "", s.template or "")
                for k, s in load_judges(args.judges_file).items()
            ]
            head = ("key", "name", "engine", "model", "template")
        else:
            named = load_allms()
            print_table(
                ["key", "engine", "model", "family"], [(k, s.engine, s.model, s.family) for k, s in named.items()]
            )
            print("(which families run on a CPU here, and why the others do not: docs/development/families.md)")
            print()
            rows = [
                (s.key, s.engine, s.model or s.path or f"speech recognition -> {s.llm_engine} LLM", cfg.name)
                for cfg in (load_run_config(p) for p in sorted(RUN_CONFIGS_DIR.glob("*.toml")))
                for s in cfg.allms
            ]
            head = ("name", "engine", "model or file", "configuration")
    except ConfigError as e:
        print(f"jasco {args.command}: {e}", file=sys.stderr)
        return 1
    print_table(list(head), rows)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``runs``, ``judges`` and ``allms`` to ``jasco``'s subparsers."""
    rn = sub.add_parser("runs", help="list the runs under runs/ and their Table II averages")
    rn.add_argument("--runs-dir", help="the folder of runs (default runs/)")
    rn.set_defaults(func=cmd_runs)

    jl = sub.add_parser("judges", help="list the named judges (configs/judges.toml, or --judges-file)")
    jl.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    jl.set_defaults(func=cmd_models)
    al = sub.add_parser(
        "allms", help="list the named ALLMs (configs/allms.toml) and those of the shipped run configurations"
    )
    al.set_defaults(func=cmd_models)
