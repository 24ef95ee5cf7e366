"""The ``jasco`` command line.

Subcommands::

    jasco data download   fetch the dataset (pinned commit, checksums verified, missing files only)
    jasco data validate   check the dataset folder and report its irregularities
    jasco manifest        write the 640-row inference table (80 clips x 8 instructions)
    jasco infer MANIFEST  run an audio LLM (or the cascade) over the manifest, or import answers
    jasco judge OUTPUTS   rate every ALLM answer with LLM judges (batched, cached, resumable)
    jasco check-judge     how often judges give the known label to control answers (the judge check)
    jasco score FILE...   Best-Mean and modality dependence of judged tables
    jasco compare A B F.. paired comparison of two ALLMs (difference, interval, p-value)
    jasco reproduce       run the notebooks headlessly: Table II and Figure 2 for a configuration
    jasco doctor          GPUs, vLLM build, disk, token, dataset; with --config: does each model fit
    jasco view RUN        write the run's page: every clip, answer and judgement in one HTML file
    jasco runs            list the runs under runs/ and their Table II averages
    jasco judges          list the named judges; jasco allms: the ALLMs of the run configurations

Each subcommand parses its arguments, calls one stage function of the package (the same ones
the notebooks call) and prints; bad input gets a clear message and a non-zero exit. Engine
choices, engine flags and template choices come from the registries
(:data:`jasco_utils.models.ENGINES`, :func:`jasco_utils.judging.prompts.judge_templates`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jasco_utils import __version__
from jasco_utils.cli_flags import (
    cli_options,
    data_dir_arg,
    engine_flags,
    judge_specs,
    judging_flags,
    no_abbreviations,
    non_negative_float,
    parse_clip_list,
    positive_float,
    reproduce_args,
    generate_from,
    positive_int,
    subset_flags,
)
from jasco_utils.cli_lists import cmd_models as _cmd_models
from jasco_utils.cli_lists import cmd_runs as _cmd_runs
from jasco_utils.data.dataset import N_CLIPS
from jasco_utils.config import ConfigError
from jasco_utils.executor import StageError
from jasco_utils.io import StorageError, TableError
from jasco_utils.models.base import EngineError
from jasco_utils.paths import DEFAULT_DATASET_DIR, DEFAULT_STORE, PROCESSED_DIR, RunLayout
from jasco_utils.redact import redact


def _cmd_download(args: argparse.Namespace) -> int:
    from jasco_utils.data.download import (
        DEFAULT_BASE_URL,
        DownloadError,
        download_dataset,
    )

    try:
        report = download_dataset(
            Path(args.dest) if args.dest else DEFAULT_DATASET_DIR,
            base_url=args.base_url or DEFAULT_BASE_URL,
            retries=args.retries,
            timeout=args.timeout,
        )
    except DownloadError as e:
        print(f"jasco data download: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_validate(args: argparse.Namespace) -> int:
    from jasco_utils.data.dataset import validate_dataset

    report = validate_dataset(args.data_dir, check_checksums=not args.no_checksums)
    if args.json:
        out = {
            "data_dir": str(report.data_dir),
            "ok": report.ok,
            "clips": report.clips.to_dict(orient="records"),
            "findings": [f.__dict__ for f in report.findings],
        }
        print(json.dumps(out, indent=2))
    else:
        print(report.summary(verbose=args.verbose))
    return 0 if report.ok else 1


def _cmd_manifest(args: argparse.Namespace) -> int:
    from jasco_utils.data.manifest import build_manifest, write_manifest

    try:
        df = build_manifest(args.data_dir, clips=args.clips, original_layout=args.original_layout)
    except (FileNotFoundError, ValueError) as e:
        print(f"jasco manifest: {e}", file=sys.stderr)
        return 1
    path = write_manifest(df, args.out)
    print(f"wrote {path} ({len(df)} rows: {df['id'].nunique()} clips x 8 instructions)")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from jasco_utils.analysis.bootstrap import (
        bootstrap_scores,
        format_intervals,
        with_intervals,
    )
    from jasco_utils.analysis.scoring import (
        format_scores,
        read_judged_files,
        score_records,
    )

    try:
        rows = read_judged_files(args.files, model=args.model, judge=args.judge)
    except TableError as e:
        print(f"jasco score: {e}", file=sys.stderr)
        return 1
    records = score_records(rows)
    truncated = sum(r["n_truncated"] or 0 for r in records if r["judge"] != "Average")
    if truncated:
        print(f"warning: {truncated} scored answer(s) were cut off at their token limit (status 'truncated', "
              "counted in n_truncated); they are scored as the original script scored them, from whatever came back; "
              "raise --max-tokens and re-run to have them whole", file=sys.stderr)
    ci = bootstrap_scores(rows, n_resamples=args.n_resamples, seed=args.seed) if args.ci else None
    if args.json:
        print(json.dumps(records if ci is None else with_intervals(records, ci), indent=2))
    else:
        print(format_scores(records) + ("" if ci is None else "\n\n" + format_intervals(ci)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from jasco_utils.analysis.bootstrap import format_comparison, paired_comparison
    from jasco_utils.analysis.scoring import read_judged_files

    if args.model_a == args.model_b:
        print(f"jasco compare: model_a and model_b are both {args.model_a!r}; name two different ALLMs", file=sys.stderr)
        return 1
    try:
        result = paired_comparison(read_judged_files(args.files), args.model_a, args.model_b, judge=args.judge,
                                   n_resamples=args.n_resamples, seed=args.seed)
    except (TableError, ValueError, KeyError) as e:
        print(f"jasco compare: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str) if args.json else format_comparison(result))
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    from jasco_utils.config import ModelSpec, get_judge
    from jasco_utils.judging.run import judge_outputs
    from jasco_utils.models import EngineError, default_model

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
            from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE

            specs = [ModelSpec(key=name, engine=args.engine, model=model, name=name, template=DEFAULT_JUDGE_TEMPLATE)]
        specs = judge_specs(args, specs)
    except (KeyError, ValueError) as e:
        print(f"jasco judge: {str(e).strip(chr(34))}", file=sys.stderr)
        return 1
    status = 0
    for spec in specs:
        try:
            run = judge_outputs(
                spec, args.outputs, out_dir=args.out_dir, store=args.store, reask=not args.no_reask,
                chunk_size=args.chunk_size, original_layout=args.original_layout, allm=args.allm,
                clips=args.clips, limit=args.limit,
            )
        except (TableError, EngineError, ValueError) as e:
            print(f"jasco judge: {spec.key}: {e}" if isinstance(e, EngineError) else f"jasco judge: {e}", file=sys.stderr)
            return 1
        print(f"{spec.name}: {run.stats.summary()}\nwrote {run.paths[0]} and .parquet")
        if run.failed:
            status = 1
    return status


def _cmd_check_judge(args: argparse.Namespace) -> int:
    from jasco_utils.analysis.judge_check import format_check, measure, read_checked
    from jasco_utils.config import get_judge
    from jasco_utils.models import EngineError
    from jasco_utils.pipeline import check_judges

    if bool(args.judge) == bool(args.judged):
        print("jasco check-judge: name judges with --judge KEY, or give judged control tables with --judged FILE",
              file=sys.stderr)
        return 2
    try:
        if args.judged:
            records = measure(read_checked(args.judged), n_resamples=args.n_resamples)
        else:
            specs = judge_specs(args, [get_judge(k, args.judges_file) for k in args.judge])
            result = check_judges(specs, clips=args.clips, data_dir=args.data_dir, store=args.store,
                                  out_dir=args.out_dir, reask=not args.no_reask, chunk_size=args.chunk_size,
                                  n_resamples=args.n_resamples)
            records = result["records"]
            done = [f"{run.judge.name}: {run.stats.summary()}" for run in result["runs"]]
            print("\n".join(done) + f"\nwrote the control tables and judge_check.json (.csv, .png) to {args.out_dir}",
                  file=sys.stderr if args.json else sys.stdout)
    except (KeyError, ValueError, FileNotFoundError, EngineError) as e:
        print(f"jasco check-judge: {str(e).strip(chr(34))}", file=sys.stderr)
        return 1
    print(json.dumps(records, indent=2, ensure_ascii=False) if args.json else "\n" + format_check(records))
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from jasco_utils.config import ModelSpec, resolve_generate
    from jasco_utils.inference.run import answer_manifest, read_manifest
    from jasco_utils.models import EngineError

    try:
        read_manifest(args.manifest)
    except TableError as e:
        print(f"jasco infer: {e}", file=sys.stderr)
        return 1
    if sum([bool(args.import_file), bool(args.engine), bool(args.cascade), bool(args.allm)]) != 1:
        print("jasco infer: choose one of --allm NAME, --engine (with --model), --cascade, or --import FILE",
              file=sys.stderr)
        return 2
    if args.engine and not args.model:
        print("jasco infer: --engine needs --model", file=sys.stderr)
        return 2
    name = args.name or args.allm or (Path(args.import_file).stem if args.import_file
                                      else Path(args.model or "cascade").name)
    try:
        if args.allm:
            from jasco_utils.config import allm_spec

            named = allm_spec({"allm": args.allm}, "--allm")
            spec = named.replace(key=name, model=args.model or named.model, name=args.name or named.name,
                                 options={**named.options, **cli_options(args, [named.engine])[named.engine]})
        elif args.import_file:
            spec = ModelSpec(key=name, engine="import", path=args.import_file)
        elif args.cascade:
            spec = ModelSpec(key=name, engine="cascade", model=args.llm_model, llm_engine=args.llm_engine,
                             asr_model=args.asr_model, options=cli_options(args, [args.llm_engine])[args.llm_engine])
        else:
            spec = ModelSpec(key=name, engine=args.engine, model=args.model,
                             options=cli_options(args, [args.engine])[args.engine])
        spec = resolve_generate(spec, generate_from(args))
        run = answer_manifest(spec, args.manifest, out=args.out, data_dir=args.data_dir, store=args.store,
                              audio_mode=args.audio_mode, chunk_size=args.chunk_size,
                              clips=args.clips, limit=args.limit)
    except (TableError, EngineError, FileNotFoundError, ValueError) as e:
        print(f"jasco infer: {e}", file=sys.stderr)
        return 1
    print(run.summary())
    for line in run.notes:
        print(line)
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if run.failed:
        print("some rows failed: re-run the same command to retry them (stored answers are kept)", file=sys.stderr)
        return 1
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from jasco_utils.config import ConfigError, load_run_config

    try:
        cfg = load_run_config(args.config)
    except ConfigError as e:
        print(f"jasco reproduce: {e}", file=sys.stderr)
        return 1
    import papermill  # seconds to import: only once the configuration is known to be good

    from jasco_utils.pipeline import reproduce, run_summary
    clips = args.clips
    if args.limit:
        clips = (clips or ([] if args.all_clips else cfg.clips) or list(range(1, N_CLIPS + 1)))[:args.limit]
    from jasco_utils.doctor import plan_first  # the run plan; the run stops here when a model cannot run
    if (stop := plan_first(cfg, clips, args.all_clips, args.store, args.dry_run)) is not None:
        return stop
    try:
        run_dir = reproduce(cfg, args.run_dir, args.figures_dir, args.store, args.data_dir, args.all_clips,
                            log=lambda line: print(line, flush=True), clips=clips, executor=args.executor,
                            address=args.ray_address)
    except papermill.PapermillExecutionError as e:
        print(f"jasco reproduce: a notebook failed (its executed copy is under the run's notebooks/):\n{e}",
              file=sys.stderr)
        return 1
    print(run_summary(cfg, run_dir, args.figures_dir))
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from jasco_utils.analysis.browser import write_run_page

    try:
        page = write_run_page(args.run, out=args.out, data_dir=args.data_dir, audio=args.audio)
    except (FileNotFoundError, TableError, ValueError) as e:
        print(f"jasco view: {e}", file=sys.stderr)
        return 1
    print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB); open it in a browser: file://{page.resolve()}")
    return 0


def _add_model_commands(sub) -> None:
    """``infer``, ``judge`` and ``check-judge``: the commands that run models."""
    from jasco_utils.config import CASCADE_LLM_ENGINE
    from jasco_utils.inference.allm import AUDIO_MODES
    from jasco_utils.models import ENGINES, backend_class

    inf = sub.add_parser("infer", help="run an audio LLM (or the cascade) over the manifest, or import answers")
    inf.add_argument("manifest", help="the manifest CSV (jasco manifest), or a subset of its clips")
    inf.add_argument("--name", help="the ALLM's name in tables (default: from the model or file)")
    inf.add_argument("--out", help="outputs table (default data/processed/outputs/NAME.csv, and .parquet)")
    subset_flags(inf, "manifest")
    data_dir_arg(inf)
    src = inf.add_argument_group("where the answers come from (one of)")
    src.add_argument("--allm", help="a named ALLM (jasco allms lists them), with its engine, model and options")
    src.add_argument("--engine", choices=[e for e in ENGINES if backend_class(e).takes_audio],
                     help="an audio LLM on this engine")
    src.add_argument("--model", help="with --engine: model id, path or served name (with --allm: instead of its own)")
    src.add_argument("--import", dest="import_file", help="answers made elsewhere: CSV (example.csv layout) or JSONL")
    src.add_argument("--cascade", action="store_true", help="speech recognition -> text LLM baseline (runs on a CPU)")
    cas = inf.add_argument_group("cascade")
    cas.add_argument("--asr-model", help="faster-whisper model folder (default: the bundled Whisper tiny.en)")
    cas.add_argument("--llm-engine", default=CASCADE_LLM_ENGINE, help="default %(default)s",
                     choices=[e for e in ENGINES if not backend_class(e).judge_only])
    cas.add_argument("--llm-model", help="text LLM (default: the embedded SmolLM2)")
    gen = inf.add_argument_group("generation")
    gen.add_argument("--audio-mode", default="audio", choices=list(AUDIO_MODES),
                     help="audio (default), or an ablation: silence, or the clip with its speech masked (segments from speech recognition)")
    gen.add_argument("--temperature", type=non_negative_float, help="default: the named ALLM's, else 0 (greedy)")
    gen.add_argument("--seed", type=int, help="sampling seed (default: the named ALLM's, else 0)")
    gen.add_argument("--max-tokens", type=positive_int, help="answer length limit (default: the named ALLM's, else 512)")
    gen.add_argument("--store", default=str(DEFAULT_STORE), help="the call cache, SQLite (default %(default)s)")
    gen.add_argument("--chunk-size", type=positive_int, default=64, help="rows per engine call (default 64)")
    engine_flags(inf)
    inf.set_defaults(func=_cmd_infer)

    jg = sub.add_parser("judge", help="rate every ALLM answer with LLM judges (batched, cached, resumable)")
    jg.add_argument("outputs", help="ALLM outputs table: the manifest with allm_output filled (CSV or Parquet)")
    jg.add_argument("--allm", help="ALLM name, when the table has no 'model' column")
    subset_flags(jg, "outputs table")
    who = jg.add_argument_group("which judge")
    who.add_argument("--judge", action="append", help="a named judge (repeatable): llama-3.1-70b, qwen2.5-72b, "
                     "mistral-large-2411, smollm2, or one of --judges-file")
    who.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    who.add_argument("--engine", choices=list(ENGINES), help="judge with one model on this engine")
    who.add_argument("--model", help="with --engine: model id, path or served name")
    who.add_argument("--judge-name", help="with --engine: the name tables show")
    run = judging_flags(jg)
    run.add_argument("--out-dir", default=str(PROCESSED_DIR / "judged"), help="where judged tables go (default %(default)s)")
    run.add_argument("--original-layout", action="store_true", help="also write the original eval.py layout (llama3_extract)")
    engine_flags(jg)
    jg.set_defaults(func=_cmd_judge)

    ck = sub.add_parser("check-judge", help="how often judges give the known label to control answers (judge check)")
    ck.add_argument("--judge", action="append", help="a named judge (repeatable), as for jasco judge")
    ck.add_argument("--judged", nargs="+", metavar="FILE", help="judged control tables to measure instead (CSV or "
                    "Parquet, with control_kind, expected_rating, expected_orientation)")
    ck.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    ck.add_argument("--clips", type=parse_clip_list, help="clips of the controls, e.g. 1-10 (default all 80); "
                    "ten control answers each: six verbatim, four paraphrased")
    ck.add_argument("--json", action="store_true", help="print JSON: one object per judge")
    ck.add_argument("--n-resamples", type=positive_int, default=2000, help="bootstrap resamples of clips (default 2000)")
    data_dir_arg(ck)
    judging_flags(ck).add_argument("--out-dir", default=str(RunLayout(PROCESSED_DIR).check_dir),
                                    help="control tables, judged control tables, the report (default %(default)s)")
    engine_flags(ck)
    ck.set_defaults(func=_cmd_check_judge)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jasco``."""
    parser = argparse.ArgumentParser(prog="jasco", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"jasco {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="download or validate the dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser("download", help="fetch the dataset (checksums verified; a re-run fetches only missing or damaged files)")
    dl.add_argument("--dest", help=f"target folder (default {DEFAULT_DATASET_DIR})")
    dl.add_argument("--base-url", help="mirror of the repository at the pinned commit")
    dl.add_argument("--retries", type=positive_int, default=4, help="attempts per file (default 4)")
    dl.add_argument("--timeout", type=positive_float, default=30.0, help="seconds per request (default 30)")
    dl.set_defaults(func=_cmd_download)
    va = data_sub.add_parser("validate", help="check every clip and row; report irregularities")
    data_dir_arg(va)
    va.add_argument("--no-checksums", action="store_true", help="accept files that differ from the release")
    va.add_argument("--json", action="store_true", help="print a JSON report")
    va.add_argument("--verbose", "-v", action="store_true", help="list every clip format and irregularity")
    va.set_defaults(func=_cmd_validate)

    mf = sub.add_parser("manifest", help="write the inference table (clips x 8 instructions)")
    data_dir_arg(mf)
    mf.add_argument("--out", default=str(PROCESSED_DIR / "manifest.csv"), help="output CSV (default %(default)s)")
    mf.add_argument("--clips", type=parse_clip_list, help="subset of clips, e.g. 1-10,42")
    mf.add_argument(
        "--original-layout",
        action="store_true",
        help="write the original example.csv exactly (placeholder paths and outputs)",
    )
    mf.set_defaults(func=_cmd_manifest)

    _add_model_commands(sub)

    rp = sub.add_parser("reproduce", help="run the notebooks headlessly: Table II and Figure 2 for a configuration")
    reproduce_args(rp)
    rp.set_defaults(func=_cmd_reproduce)
    from jasco_utils.doctor import add_parser as add_doctor_parser

    add_doctor_parser(sub)

    vw = sub.add_parser("view", help="write the run's page: every clip, answer and judgement in one HTML file")
    vw.add_argument("run", help="the run folder, e.g. runs/cpu")
    vw.add_argument("--out", help="the page's path (default RUN/browse.html)")
    vw.add_argument("--audio", choices=["embed", "link"], default="embed",
                    help="embed each clip in the page (shareable; default) or link to the dataset's WAVs")
    data_dir_arg(vw)
    vw.set_defaults(func=_cmd_view)

    rn = sub.add_parser("runs", help="list the runs under runs/ and their Table II averages")
    rn.add_argument("--runs-dir", help="the folder of runs (default runs/)")
    rn.set_defaults(func=_cmd_runs)

    jl = sub.add_parser("judges", help="list the named judges (configs/judges.toml, or --judges-file)")
    jl.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    jl.set_defaults(func=_cmd_models)
    al = sub.add_parser("allms", help="list the named ALLMs (configs/allms.toml) and those of the shipped run configurations")
    al.set_defaults(func=_cmd_models)

    sc = sub.add_parser("score", help="Best-Mean and modality dependence of judged tables")
    sc.add_argument("files", nargs="+", help="judged tables, CSV or Parquet (this project's layout or the original's), "
                    "or folders of them (a run folder: its judged/)")
    sc.add_argument("--model", help="ALLM name for original-layout files (default: from the file name)")
    sc.add_argument("--judge", help="judge name for original-layout files (default: from the file name)")
    sc.add_argument("--json", action="store_true", help="print JSON (unrounded, percentages 0-100)")
    sc.add_argument("--ci", action="store_true", help="95%% intervals by resampling clips (bootstrap)")
    sc.add_argument("--n-resamples", type=positive_int, default=2000, help="with --ci: bootstrap resamples of clips (default 2000)")
    sc.add_argument("--seed", type=int, default=0, help="with --ci: the bootstrap's seed (default 0)")
    sc.set_defaults(func=_cmd_score)

    cp = sub.add_parser("compare", help="paired comparison of two ALLMs on the same clips")
    cp.add_argument("model_a", help="an ALLM's name, as in the judged tables' model column")
    cp.add_argument("model_b", help="the ALLM to compare it with")
    cp.add_argument("files", nargs="+", help="judged tables holding both models (CSV, Parquet, or folders)")
    cp.add_argument("--judge", help="one judge (default: the average over judges)")
    cp.add_argument("--n-resamples", type=positive_int, default=9999, help="bootstrap resamples and sign flips (default 9999)")
    cp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    cp.add_argument("--json", action="store_true", help="print JSON")
    cp.set_defaults(func=_cmd_compare)
    return no_abbreviations(parser)


#: What the user can fix (or a failed stage, named with its reason): said in one message, never a traceback.
_USER_ERRORS = (TableError, StorageError, ConfigError, EngineError, StageError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jasco`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _USER_ERRORS as e:  # what the user can fix: said in one message, never a traceback
        words = [a for a in argv[:2] if not a.startswith("-")]
        name = " ".join(words[:2] if words[:1] == ["data"] else words[:1])
        print(f"jasco {name}: {redact(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `jasco score ... | head`: the reader left, nothing more to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
