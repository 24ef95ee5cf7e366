"""The ``jasco`` command line.

Subcommands::

    jasco data download   fetch the dataset (pinned commit, checksums verified, resumable)
    jasco data validate   check the dataset folder and report its irregularities
    jasco manifest        write the 640-row inference table (80 clips x 8 instructions)
    jasco infer MANIFEST  run an audio LLM (or the cascade) over the manifest, or import answers
    jasco judge OUTPUTS   rate every ALLM answer with LLM judges (batched, cached, resumable)
    jasco score FILE...   Best-Mean and modality dependence of judged tables
    jasco compare A B F.. paired comparison of two ALLMs (difference, interval, p-value)
    jasco reproduce       run the notebooks headlessly: Table II and Figure 2 for a configuration

Each subcommand prints a clear message and exits non-zero on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jasco_utils import __version__
from jasco_utils.io import TableError
from jasco_utils.paths import DATA_DIR_ENV, DEFAULT_DATASET_DIR, PROCESSED_DIR


def parse_clip_list(spec: str) -> list[int]:
    """Parse ``"1-5,9,12"`` into ``[1, 2, 3, 4, 5, 9, 12]``.

    >>> parse_clip_list("1-3,7")
    [1, 2, 3, 7]
    """
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad clip list {spec!r}: use e.g. 1-5,9,12") from None
    return sorted(set(out))


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help=f"dataset folder (default: ${DATA_DIR_ENV}, else {DEFAULT_DATASET_DIR})",
    )


def _cmd_download(args: argparse.Namespace) -> int:
    from jasco_utils.data.download import DEFAULT_BASE_URL, DownloadError, download_dataset

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
        print(report.summary())
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
    from jasco_utils.analysis.scoring import format_scores, score_files

    try:
        results = score_files(args.files, model=args.model, judge=args.judge)
        if args.ci:
            from jasco_utils.analysis import stats
            from jasco_utils.analysis.scoring import read_judged_files

            ci = stats.bootstrap_scores(read_judged_files(args.files, model=args.model, judge=args.judge),
                                        n_resamples=args.n_resamples, seed=args.seed)
    except TableError as e:
        print(f"jasco score: {e}", file=sys.stderr)
        return 1
    if args.json:
        if args.ci:
            extra = ci.set_index(["model", "judge"])
            for rec in results:
                row = extra.loc[(rec["model"], rec["judge"])]
                rec.update({k: float(row[k]) for k in extra.columns if k.endswith(("_ci_low", "_ci_high"))})
        print(json.dumps(results, indent=2))
    else:
        print(format_scores(results))
        if args.ci:
            show = ci[["model", "judge", "n_clips"]].copy()
            for k in ("best_mean", "audio_pct", "both_pct", "speech_pct"):
                digits = 2 if k == "best_mean" else 1
                show[k] = [f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                           for v, lo, hi in zip(ci[k], ci[f"{k}_ci_low"], ci[f"{k}_ci_high"])]
            print(f"\n95% intervals, {args.n_resamples} bootstrap resamples of clips (seed {args.seed}):")
            print(show.to_string(index=False))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from jasco_utils.analysis import stats
    from jasco_utils.analysis.scoring import read_judged_files

    try:
        rows = read_judged_files(args.files)
        result = stats.paired_comparison(rows, args.model_a, args.model_b, judge=args.judge,
                                         n_resamples=args.n_resamples, seed=args.seed)
    except (TableError, ValueError, KeyError) as e:
        print(f"jasco compare: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in result.items()}, indent=2, default=str))
        return 0
    scope = args.judge or "the average over judges"
    print(f"{args.model_a} vs {args.model_b}, Best-Mean by {scope}, {result['n_clips']} clips:")
    print(f"  difference {result['difference']:+.3f}  95% interval [{result['ci_low']:+.3f}, {result['ci_high']:+.3f}]"
          f"  p = {result['p_value']:.4f} (paired permutation test over clips{', exact' if result.get('exact') else ''})")
    print(f"  clips where {args.model_a} is better / tied / worse: {result['wins']} / {result['ties']} / {result['losses']}")
    return 0


def _engine_options(args: argparse.Namespace, engine: str) -> dict:
    """Engine options given on the command line (only those set, only the engine's own)."""
    names = {
        "vllm": ["tensor_parallel_size", "pipeline_parallel_size", "dtype", "max_model_len", "enforce_eager"],
        "openai": ["base_url", "api_key_env", "concurrency", "timeout", "max_attempts"],
        "embedded": ["n_ctx", "threads"],
    }[engine]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) not in (None, False)}


def _cmd_judge(args: argparse.Namespace) -> int:
    from jasco_utils.config import JudgeSpec, get_judge
    from jasco_utils.models import EngineError, SamplingConfig, make_backend
    from jasco_utils.judging.judge import judge_table, read_outputs, structured_output, write_judged
    from jasco_utils.models.store import Store

    if bool(args.judge) == bool(args.engine):
        print("jasco judge: name judges with --judge KEY, or one model with --engine and --model", file=sys.stderr)
        return 2
    try:
        if args.judge:
            specs = [get_judge(k, args.judges_file) for k in args.judge]
        else:
            if not args.model and args.engine != "embedded":
                print("jasco judge: --engine needs --model", file=sys.stderr)
                return 2
            model = args.model or "SmolLM2-135M-Instruct"
            name = args.judge_name or Path(model).name
            specs = [JudgeSpec(name, name, args.engine, model, args.template or "judge_original", {})]
        outputs = read_outputs(args.outputs, model=args.allm)
    except (KeyError, ValueError) as e:
        print(f"jasco judge: {e}", file=sys.stderr)
        return 1
    if args.original_sampling:
        sampling = SamplingConfig.original()
    else:
        sampling = SamplingConfig(temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens)
    out_dir = Path(args.out_dir)
    status = 0
    with Store(args.store) as store:
        for spec in specs:
            template = args.template or spec.template
            options = {**spec.options, **_engine_options(args, spec.engine)}
            try:
                backend = make_backend(spec.engine, spec.model, **options)
            except EngineError as e:
                print(f"jasco judge: {spec.key}: {e}", file=sys.stderr)
                return 1
            with backend:
                table, stats = judge_table(
                    outputs,
                    backend,
                    store,
                    judge=spec.name,
                    template=template,
                    sampling=sampling,
                    structured=structured_output(args.structured, template, args.max_explanation_chars),
                    reask=not args.no_reask,
                    chunk_size=args.chunk_size,
                    source=args.outputs,
                )
            stem = Path(args.outputs).stem
            for suffix in (".csv", ".parquet"):
                path = write_judged(table, out_dir / f"{stem}__{spec.key}{suffix}")
            if args.original_layout:
                write_judged(table, out_dir / f"{stem}__{spec.key}.original.csv", original_layout=True)
            print(f"{spec.name}: {stats.summary()}\nwrote {path.with_suffix('.csv')} and .parquet")
            if stats.failed:
                status = 1
    return status


def _cmd_infer(args: argparse.Namespace) -> int:
    from jasco_utils.models import EngineError, SamplingConfig, make_backend
    from jasco_utils.inference.allm import answer_diversity_warnings, import_outputs, infer_table
    from jasco_utils.io import read_csv_checked, write_table
    from jasco_utils.data.manifest import MANIFEST_COLUMNS, check_rows
    from jasco_utils.models.store import Store

    try:
        manifest = read_csv_checked(args.manifest, MANIFEST_COLUMNS, what="manifest")
        check_rows(manifest, args.manifest, what="manifest")
    except TableError as e:
        print(f"jasco infer: {e}", file=sys.stderr)
        return 1
    modes = [bool(args.import_file), bool(args.engine), bool(args.cascade)]
    if sum(modes) != 1:
        print("jasco infer: choose one of --engine (with --model), --cascade, or --import FILE", file=sys.stderr)
        return 2
    name = args.name or (Path(args.import_file).stem if args.import_file else Path(args.model or "cascade").name)
    out = Path(args.out) if args.out else PROCESSED_DIR / "outputs" / f"{name}.csv"
    if args.import_file:
        try:
            df = import_outputs(manifest, args.import_file, model=name)
        except TableError as e:
            print(f"jasco infer: {e}", file=sys.stderr)
            return 1
        write_table(df, out)
        write_table(df, out.with_suffix(".parquet"))
        print(f"imported {len(df)} answers of {name}; wrote {out}")
        return 0
    sampling = SamplingConfig(temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens)
    try:
        with Store(args.store) as store:
            if args.cascade:
                from jasco_utils.inference.asr import SpeechRecognizer
                from jasco_utils.inference.cascade import cascade_table, transcript_wer

                llm_options = _engine_options(args, args.llm_engine)
                text_backend = make_backend(args.llm_engine, args.llm_model, **llm_options)
                recognizer = SpeechRecognizer(args.asr_model) if args.asr_model else SpeechRecognizer()
                with text_backend:
                    df, stats, transcripts = cascade_table(
                        manifest, recognizer, text_backend, store, model=name, data_dir=args.data_dir,
                        sampling=sampling, chunk_size=args.chunk_size,
                    )
                wer, _ = transcript_wer(transcripts, args.data_dir)
                print(f"transcripts: {len(transcripts)} clips, word error rate {100 * wer:.1f}% against v0.csv Speech")
            else:
                if not args.model:
                    print("jasco infer: --engine needs --model", file=sys.stderr)
                    return 2
                segments = None
                if args.audio_mode == "speech_masked":
                    from jasco_utils.inference.asr import SpeechRecognizer, speech_segments, transcribe_clips

                    segments = speech_segments(transcribe_clips(manifest, SpeechRecognizer(), store, args.data_dir))
                with make_backend(args.engine, args.model, **_engine_options(args, args.engine)) as backend:
                    df, stats = infer_table(
                        manifest, backend, store, model=name, data_dir=args.data_dir, sampling=sampling,
                        audio_mode=args.audio_mode, speech_segments=segments, chunk_size=args.chunk_size,
                    )
    except (EngineError, FileNotFoundError, ValueError) as e:
        print(f"jasco infer: {e}", file=sys.stderr)
        return 1
    write_table(df, out)
    write_table(df, out.with_suffix(".parquet"))
    print(
        f"{name}: {stats.total} rows: {stats.from_cache} from cache, {stats.called} model calls, "
        f"{stats.failed} failed\nwrote {out} and .parquet"
    )
    for warning in answer_diversity_warnings(df[df["status"] == "ok"]):
        print(f"warning: {warning}", file=sys.stderr)
    if stats.failed:
        print("some rows failed: re-run the same command to retry them (stored answers are kept)", file=sys.stderr)
        return 1
    return 0


#: The notebooks `jasco reproduce` executes, in order, with the parameters each declares.
NOTEBOOKS: dict[str, tuple[str, ...]] = {
    "01_inference.ipynb": ("config", "run_dir", "data_dir", "store", "all_clips"),
    "02_judging.ipynb": ("config", "run_dir", "data_dir", "store"),
    "03_analysis.ipynb": ("config", "run_dir", "data_dir", "store", "figures_dir"),
    "04_explorer.ipynb": ("run_dir",),
}


def _cmd_reproduce(args: argparse.Namespace) -> int:
    import time

    import papermill

    from jasco_utils.paths import FIGURES_DIR, NOTEBOOKS_DIR, PROJECT_ROOT, RUNS_DIR
    from jasco_utils.pipeline import DEFAULT_STORE, load_run_config

    try:
        cfg = load_run_config(args.config)
    except ValueError as e:
        print(f"jasco reproduce: {e}", file=sys.stderr)
        return 1
    run_dir = Path(args.run_dir or RUNS_DIR / cfg.name).resolve()
    figures_dir = Path(args.figures_dir or FIGURES_DIR).resolve()
    params = {
        "config": str(cfg.path),
        "run_dir": str(run_dir),
        "data_dir": args.data_dir or "",
        "store": str(Path(args.store or DEFAULT_STORE).resolve()),
        "figures_dir": str(figures_dir),
        "all_clips": bool(args.all_clips),
    }
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    started = time.time()
    for name, wanted in NOTEBOOKS.items():
        out = run_dir / "notebooks" / name
        print(f"[{time.time() - started:6.0f} s] executing {name} -> {out}", flush=True)
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS_DIR / name), str(out), parameters={k: params[k] for k in wanted},
                cwd=str(PROJECT_ROOT), progress_bar=False, kernel_name="python3",
            )
        except papermill.PapermillExecutionError as e:
            print(f"jasco reproduce: {name} failed (see {out}):\n{e}", file=sys.stderr)
            return 1
    print(f"[{time.time() - started:6.0f} s] done.")
    print(f"Table II:  {figures_dir / 'table2.md'} (.csv, .tex)")
    print(f"Figure 2:  {figures_dir / 'figure2.png'} (.pdf)")
    print(f"provenance: {figures_dir / 'provenance.json'}; executed notebooks: {run_dir / 'notebooks'}")
    if not cfg.paper:
        print(f"(the {cfg.name} configuration proves the pipeline runs; its numbers are not the paper's results)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jasco``."""
    parser = argparse.ArgumentParser(prog="jasco", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"jasco {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="download or validate the dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser("download", help="fetch the dataset (checksums verified, resumable)")
    dl.add_argument("--dest", help=f"target folder (default {DEFAULT_DATASET_DIR})")
    dl.add_argument("--base-url", help="mirror of the repository at the pinned commit")
    dl.add_argument("--retries", type=int, default=4, help="attempts per file (default 4)")
    dl.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    dl.set_defaults(func=_cmd_download)
    va = data_sub.add_parser("validate", help="check every clip and row; report irregularities")
    _data_dir_arg(va)
    va.add_argument("--no-checksums", action="store_true", help="accept files that differ from the release")
    va.add_argument("--json", action="store_true", help="print a JSON report")
    va.set_defaults(func=_cmd_validate)

    mf = sub.add_parser("manifest", help="write the inference table (clips x 8 instructions)")
    _data_dir_arg(mf)
    mf.add_argument("--out", default=str(PROCESSED_DIR / "manifest.csv"), help="output CSV")
    mf.add_argument("--clips", type=parse_clip_list, help="subset of clips, e.g. 1-10,42")
    mf.add_argument(
        "--original-layout",
        action="store_true",
        help="write the original example.csv exactly (placeholder paths and outputs)",
    )
    mf.set_defaults(func=_cmd_manifest)

    inf = sub.add_parser("infer", help="run an audio LLM (or the cascade) over the manifest, or import answers")
    inf.add_argument("manifest", help="the manifest CSV (jasco manifest), or a subset of its clips")
    inf.add_argument("--name", help="the ALLM's name in tables (default: from the model or file)")
    inf.add_argument("--out", help="outputs table (default data/processed/outputs/NAME.csv, and .parquet)")
    _data_dir_arg(inf)
    src = inf.add_argument_group("where the answers come from (one of)")
    src.add_argument("--engine", choices=["vllm", "openai"], help="an audio LLM on this engine")
    src.add_argument("--model", help="with --engine: model id, path or served name")
    src.add_argument("--import", dest="import_file", help="answers made elsewhere: CSV (example.csv layout) or JSONL")
    src.add_argument("--cascade", action="store_true", help="speech recognition -> text LLM baseline (runs on a CPU)")
    cas = inf.add_argument_group("cascade")
    cas.add_argument("--asr-model", help="faster-whisper model (default: the bundled Whisper tiny.en)")
    cas.add_argument("--llm-engine", default="embedded", choices=["embedded", "vllm", "openai"], help="default embedded")
    cas.add_argument("--llm-model", help="text LLM (default: the embedded SmolLM2)")
    gen = inf.add_argument_group("generation")
    gen.add_argument("--audio-mode", default="audio", choices=["audio", "silence", "speech_masked"],
                     help="ablations: silence, or the clip with its speech masked (segments from speech recognition)")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--max-tokens", type=int, default=512)
    gen.add_argument("--store", default=str(PROCESSED_DIR / "calls.sqlite"), help="the call cache (SQLite)")
    gen.add_argument("--chunk-size", type=int, default=64)
    for flag, kind in (("--tensor-parallel-size", int), ("--pipeline-parallel-size", int), ("--dtype", str),
                       ("--max-model-len", int), ("--api-key-env", str), ("--concurrency", int),
                       ("--timeout", float), ("--max-attempts", int), ("--n-ctx", int), ("--threads", int)):
        inf.add_argument(flag, type=kind)
    inf.add_argument("--enforce-eager", action="store_true")
    inf.add_argument("--base-url", action="append", help="OpenAI-compatible server URL (repeatable)")
    inf.set_defaults(func=_cmd_infer)

    jg = sub.add_parser("judge", help="rate every ALLM answer with LLM judges (batched, cached, resumable)")
    jg.add_argument("outputs", help="ALLM outputs table: the manifest with allm_output filled (CSV or Parquet)")
    jg.add_argument("--allm", help="ALLM name, when the table has no 'model' column")
    who = jg.add_argument_group("which judge")
    who.add_argument("--judge", action="append", help="a named judge (repeatable): llama-3.1-70b, qwen2.5-72b, mistral-large-2411, smollm2, or one of --judges-file")
    who.add_argument("--judges-file", help="a TOML file of named judges (default: the shipped one)")
    who.add_argument("--engine", choices=["vllm", "openai", "embedded"], help="judge with one model on this engine")
    who.add_argument("--model", help="with --engine: model id, path or served name")
    who.add_argument("--judge-name", help="with --engine: the name tables show")
    how = jg.add_argument_group("protocol")
    how.add_argument("--template", choices=["judge_original", "judge_paper"], help="judge prompt (default: judge_original)")
    how.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy)")
    how.add_argument("--seed", type=int, default=0, help="default 0")
    how.add_argument("--max-tokens", type=int, default=1000, help="default 1000, as the original")
    how.add_argument("--original-sampling", action="store_true", help="the original script's sampling: temperature 1.0, no seed")
    how.add_argument("--structured", choices=["regex", "json"], help="constrain the answer's format while decoding")
    how.add_argument("--max-explanation-chars", type=int, help="with --structured: bound each explanation")
    how.add_argument("--no-reask", action="store_true", help="do not re-ask when the orientation cannot be read")
    run = jg.add_argument_group("run")
    run.add_argument("--out-dir", default=str(PROCESSED_DIR / "judged"), help="where judged tables go")
    run.add_argument("--store", default=str(PROCESSED_DIR / "calls.sqlite"), help="the call cache (SQLite)")
    run.add_argument("--chunk-size", type=int, default=256, help="rows per engine call (default 256)")
    run.add_argument("--original-layout", action="store_true", help="also write the original eval.py layout (llama3_extract)")
    eng = jg.add_argument_group("engine options (override the named judge's)")
    eng.add_argument("--tensor-parallel-size", type=int)
    eng.add_argument("--pipeline-parallel-size", type=int)
    eng.add_argument("--dtype")
    eng.add_argument("--max-model-len", type=int)
    eng.add_argument("--enforce-eager", action="store_true")
    eng.add_argument("--base-url", action="append", help="OpenAI-compatible server URL, .../v1 (repeatable: requests are spread)")
    eng.add_argument("--api-key-env", help="name of the environment variable holding the API key")
    eng.add_argument("--concurrency", type=int)
    eng.add_argument("--timeout", type=float)
    eng.add_argument("--max-attempts", type=int)
    eng.add_argument("--n-ctx", type=int)
    eng.add_argument("--threads", type=int)
    jg.set_defaults(func=_cmd_judge)

    rp = sub.add_parser("reproduce", help="run the notebooks headlessly: Table II and Figure 2 for a configuration")
    rp.add_argument("--config", default="cpu", help="a run configuration: cpu (default), paper, or a .toml path")
    rp.add_argument("--all-clips", action="store_true", help="all 80 clips, whatever the configuration says")
    rp.add_argument("--run-dir", help="the run's folder (default runs/CONFIG)")
    rp.add_argument("--figures-dir", help="where Table II, Figure 2 and the provenance go (default figures/)")
    rp.add_argument("--store", help="the call cache (default data/processed/calls.sqlite)")
    _data_dir_arg(rp)
    rp.set_defaults(func=_cmd_reproduce)

    sc = sub.add_parser("score", help="Best-Mean and modality dependence of judged tables")
    sc.add_argument("files", nargs="+", help="judged CSVs (this project's layout or the original's)")
    sc.add_argument("--model", help="ALLM name for original-layout files (default: from the file name)")
    sc.add_argument("--judge", help="judge name for original-layout files (default: from the file name)")
    sc.add_argument("--json", action="store_true", help="print JSON (unrounded, percentages 0-100)")
    sc.add_argument("--ci", action="store_true", help="95%% intervals by resampling clips (bootstrap)")
    sc.add_argument("--n-resamples", type=int, default=2000)
    sc.add_argument("--seed", type=int, default=0)
    sc.set_defaults(func=_cmd_score)

    cp = sub.add_parser("compare", help="paired comparison of two ALLMs on the same clips")
    cp.add_argument("model_a")
    cp.add_argument("model_b")
    cp.add_argument("files", nargs="+", help="judged CSVs holding both models")
    cp.add_argument("--judge", help="one judge (default: the average over judges)")
    cp.add_argument("--n-resamples", type=int, default=9999)
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=_cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jasco`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
