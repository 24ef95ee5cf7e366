"""``jasco judge`` (rate ALLM answers with LLM judges) and ``jasco check-judge`` (the judge check)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jasco_utils.analysis.judge_check import format_check, measure
from jasco_utils.cli.flags import data_dir_arg, engine_flags, judge_specs, judging_flags, positive_int, subset_flags
from jasco_utils.config import get_judge
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import PROCESSED_DIR
from jasco_utils.data.manifest import parse_clip_list
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE
from jasco_utils.judging.run import judge_outputs
from jasco_utils.judging.tables import read_checked
from jasco_utils.models import EngineError, default_model
from jasco_utils.models.registry import ENGINES
from jasco_utils.models.spec import ModelSpec
from jasco_utils.pipeline.reproduce import check_judges
from jasco_utils.run import Run


def _cmd_judge(args: argparse.Namespace) -> int:
    if bool(args.judge) == bool(args.engine):
        print("jasco judge: name judges with --judge KEY, or one model with --engine and --model", file=sys.stderr)
        return 2
    if args.engine and not args.model and default_model(args.engine) is None:
        print("jasco judge: --engine needs --model", file=sys.stderr)
        return 2
    try:
        if args.judge:
            specs = [get_judge(k, args.judges_file) for k in args.judge]
        else:
            model = args.model or default_model(args.engine)
            name = args.judge_name or Path(model).name

            specs = [ModelSpec(key=name, engine=args.engine, model=model, name=name, template=DEFAULT_JUDGE_TEMPLATE)]
        specs = judge_specs(args, specs)
    except (KeyError, ValueError) as e:
        print(f"jasco judge: {str(e).strip(chr(34))}", file=sys.stderr)
        return 1
    status = 0
    for spec in specs:
        try:
            run = judge_outputs(
                spec,
                args.outputs,
                out_dir=args.out_dir,
                store=args.store,
                reask=not args.no_reask,
                chunk_size=args.chunk_size,
                original_layout=args.original_layout,
                allm=args.allm,
                clips=args.clips,
                limit=args.limit,
            )
        except (TableError, EngineError, ValueError) as e:
            print(
                f"jasco judge: {spec.key}: {e}" if isinstance(e, EngineError) else f"jasco judge: {e}", file=sys.stderr
            )
            return 1
        print(f"{spec.name}: {run.stats.summary()}\nwrote {run.paths[0]} and .parquet")
        if run.failed:
            status = 1
    return status


def _cmd_check_judge(args: argparse.Namespace) -> int:
    if bool(args.judge) == bool(args.judged):
        print(
            "jasco check-judge: name judges with --judge KEY, or give judged control tables with --judged FILE",
            file=sys.stderr,
        )
        return 2
    try:
        if args.judged:
            records = measure(read_checked(args.judged), n_resamples=args.n_resamples)
        else:
            specs = judge_specs(args, [get_judge(k, args.judges_file) for k in args.judge])
            result = check_judges(
                specs,
                clips=args.clips,
                data_dir=args.data_dir,
                store=args.store,
                out_dir=args.out_dir,
                reask=not args.no_reask,
                chunk_size=args.chunk_size,
                n_resamples=args.n_resamples,
            )
            records = result["records"]
            done = [f"{run.judge.name}: {run.stats.summary()}" for run in result["runs"]]
            print(
                "\n".join(done) + f"\nwrote the control tables and judge_check.json (.csv, .png) to {args.out_dir}",
                file=sys.stderr if args.json else sys.stdout,
            )
    except (KeyError, ValueError, FileNotFoundError, EngineError) as e:
        print(f"jasco check-judge: {str(e).strip(chr(34))}", file=sys.stderr)
        return 1
    print(json.dumps(records, indent=2, ensure_ascii=False) if args.json else "\n" + format_check(records))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    jg = sub.add_parser("judge", help="rate every ALLM answer with LLM judges (batched, cached, resumable)")
    jg.add_argument("outputs", help="ALLM outputs table: the manifest with allm_output filled (CSV or Parquet)")
    jg.add_argument("--allm", help="ALLM name, when the table has no 'model' column")
    subset_flags(jg, "outputs table")
    who = jg.add_argument_group("which judge")
    who.add_argument(
        "--judge",
        action="append",
        help="a named judge (repeatable): llama-3.1-70b, qwen2.5-72b, "
        "mistral-large-2411, smollm2, or one of --judges-file",
    )
    who.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    who.add_argument("--engine", choices=list(ENGINES), help="judge with one model on this engine")
    who.add_argument("--model", help="with --engine: model id, path or served name")
    who.add_argument("--judge-name", help="with --engine: the name tables show")
    run = judging_flags(jg)
    run.add_argument(
        "--out-dir", default=str(PROCESSED_DIR / "judged"), help="where judged tables go (default %(default)s)"
    )
    run.add_argument(
        "--original-layout", action="store_true", help="also write the original eval.py layout (llama3_extract)"
    )
    engine_flags(jg)
    jg.set_defaults(func=_cmd_judge)

    ck = sub.add_parser("check-judge", help="how often judges give the known label to control answers (judge check)")
    ck.add_argument("--judge", action="append", help="a named judge (repeatable), as for jasco judge")
    ck.add_argument(
        "--judged",
        nargs="+",
        metavar="FILE",
        help="judged control tables to measure instead (CSV or "
        "Parquet, with control_kind, expected_rating, expected_orientation)",
    )
    ck.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    ck.add_argument(
        "--clips",
        type=parse_clip_list,
        help="clips of the controls, e.g. 1-10 (default all 80); "
        "ten control answers each: six verbatim, four paraphrased",
    )
    ck.add_argument("--json", action="store_true", help="print JSON: one object per judge")
    ck.add_argument(
        "--n-resamples", type=positive_int, default=2000, help="bootstrap resamples of clips (default 2000)"
    )
    data_dir_arg(ck)
    judging_flags(ck).add_argument(
        "--out-dir",
        default=str(Run(PROCESSED_DIR).check_dir),
        help="control tables, judged control tables, the report (default %(default)s)",
    )
    engine_flags(ck)
    ck.set_defaults(func=_cmd_check_judge)
