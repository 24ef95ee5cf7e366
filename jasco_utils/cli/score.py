"""``jasco score`` (Best-Mean and modality dependence of judged tables) and ``jasco compare``."""

from __future__ import annotations

import argparse
import json
import sys

from jasco_utils.analysis.bootstrap import bootstrap_scores, format_intervals, with_intervals
from jasco_utils.analysis.comparisons import format_comparison, paired_comparison
from jasco_utils.analysis.judge_check import usable_judges
from jasco_utils.analysis.scoring import format_scores, score_records
from jasco_utils.cli.flags import positive_int
from jasco_utils.core.io import TableError
from jasco_utils.judging.tables import read_judged_files


def _cmd_score(args: argparse.Namespace) -> int:
    try:
        rows = read_judged_files(args.files, model=args.model, judge=args.judge)
        usable = usable_judges(args.judge_check) if args.judge_check else None
    except TableError as e:
        print(f"jasco score: {e}", file=sys.stderr)
        return 1
    if args.judge_check and usable is None:
        print(
            f"jasco score: --judge-check {args.judge_check}: no judge check there (judge_check/judge-check__JUDGE.csv); "
            "run `jasco check-judge` or a run with [judge_check] enabled",
            file=sys.stderr,
        )
        return 1
    records = score_records(rows, usable)
    truncated = sum(r["n_truncated"] or 0 for r in records if r["judge"] != "Average")
    if truncated:
        print(
            f"warning: {truncated} scored answer(s) were cut off at their token limit (status 'truncated', "
            "counted in n_truncated); they are scored as the original script scored them, from whatever came back; "
            "raise --max-tokens and re-run to have them whole",
            file=sys.stderr,
        )
    ci = bootstrap_scores(rows, n_resamples=args.n_resamples, seed=args.seed, usable=usable) if args.ci else None
    if args.json:
        print(json.dumps(records if ci is None else with_intervals(records, ci), indent=2))
    else:
        print(format_scores(records) + ("" if ci is None else "\n\n" + format_intervals(ci)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:

    if args.model_a == args.model_b:
        print(
            f"jasco compare: model_a and model_b are both {args.model_a!r}; name two different ALLMs", file=sys.stderr
        )
        return 1
    try:
        result = paired_comparison(
            read_judged_files(args.files),
            args.model_a,
            args.model_b,
            judge=args.judge,
            n_resamples=args.n_resamples,
            seed=args.seed,
        )
    except (TableError, ValueError, KeyError) as e:
        print(f"jasco compare: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str) if args.json else format_comparison(result))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    sc = sub.add_parser("score", help="Best-Mean and modality dependence of judged tables")
    sc.add_argument(
        "files",
        nargs="+",
        help="judged tables, CSV or Parquet (this project's layout or the original's), "
        "or folders of them (a run folder: its judged/)",
    )
    sc.add_argument("--model", help="ALLM name for original-layout files (default: from the file name)")
    sc.add_argument("--judge", help="judge name for original-layout files (default: from the file name)")
    sc.add_argument("--json", action="store_true", help="print JSON (unrounded, percentages 0-100)")
    sc.add_argument("--ci", action="store_true", help="95%% intervals by resampling clips (bootstrap)")
    sc.add_argument(
        "--n-resamples", type=positive_int, default=2000, help="with --ci: bootstrap resamples of clips (default 2000)"
    )
    sc.add_argument("--seed", type=int, default=0, help="with --ci: the bootstrap's seed (default 0)")
    sc.add_argument(
        "--judge-check",
        metavar="RUN_DIR",
        help="a run folder whose judge check decides which judges are usable: adds 'Average (usable judges)' "
        "after each Average when some but not all are (as the run's Table II does)",
    )
    sc.set_defaults(func=_cmd_score)

    cp = sub.add_parser("compare", help="paired comparison of two ALLMs on the same clips")
    cp.add_argument("model_a", help="an ALLM's name, as in the judged tables' model column")
    cp.add_argument("model_b", help="the ALLM to compare it with")
    cp.add_argument("files", nargs="+", help="judged tables holding both models (CSV, Parquet, or folders)")
    cp.add_argument("--judge", help="one judge (default: the average over judges)")
    cp.add_argument(
        "--n-resamples", type=positive_int, default=9999, help="bootstrap resamples and sign flips (default 9999)"
    )
    cp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    cp.add_argument("--json", action="store_true", help="print JSON")
    cp.set_defaults(func=_cmd_compare)
