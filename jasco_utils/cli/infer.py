"""``jasco infer``: an audio LLM (or the cascade) over the manifest, or imported answers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jasco_utils.cli.flags import (
    cli_options,
    data_dir_arg,
    engine_flags,
    generate_from,
    non_negative_float,
    positive_int,
    subset_flags,
)
from jasco_utils.config import allm_spec
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import DEFAULT_STORE, PROCESSED_DIR
from jasco_utils.inference.allm import AUDIO_MODES
from jasco_utils.inference.run import answer_manifest, read_manifest
from jasco_utils.models import EngineError
from jasco_utils.models.registry import ENGINES, backend_class
from jasco_utils.models.spec import CASCADE_LLM_ENGINE, ModelSpec, resolve_generate
from jasco_utils.run import Run


def _cmd_infer(args: argparse.Namespace) -> int:
    try:
        read_manifest(args.manifest)
    except TableError as e:
        print(f"jasco infer: {e}", file=sys.stderr)
        return 1
    if sum([bool(args.import_file), bool(args.engine), bool(args.cascade), bool(args.allm)]) != 1:
        print(
            "jasco infer: choose one of --allm NAME, --engine (with --model), --cascade, or --import FILE",
            file=sys.stderr,
        )
        return 2
    if args.engine and not args.model:
        print("jasco infer: --engine needs --model", file=sys.stderr)
        return 2
    name = (
        args.name
        or args.allm
        or (Path(args.import_file).stem if args.import_file else Path(args.model or "cascade").name)
    )
    try:
        if args.allm:
            named = allm_spec({"allm": args.allm}, "--allm")
            spec = named.replace(
                key=name,
                model=args.model or named.model,
                name=args.name or named.name,
                options={**named.options, **cli_options(args, [named.engine])[named.engine]},
            )
        elif args.import_file:
            spec = ModelSpec(key=name, engine="import", path=args.import_file)
        elif args.cascade:
            spec = ModelSpec(
                key=name,
                engine="cascade",
                model=args.llm_model,
                llm_engine=args.llm_engine,
                asr_model=args.asr_model,
                options=cli_options(args, [args.llm_engine])[args.llm_engine],
            )
        else:
            spec = ModelSpec(
                key=name, engine=args.engine, model=args.model, options=cli_options(args, [args.engine])[args.engine]
            )
        spec = resolve_generate(spec, generate_from(args))
        out = args.out or Run(PROCESSED_DIR).output_path(spec.key)
        run = answer_manifest(
            spec,
            args.manifest,
            out=out,
            data_dir=args.data_dir,
            store=args.store,
            audio_mode=args.audio_mode,
            chunk_size=args.chunk_size,
            clips=args.clips,
            limit=args.limit,
        )
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    inf = sub.add_parser("infer", help="run an audio LLM (or the cascade) over the manifest, or import answers")
    inf.add_argument("manifest", help="the manifest CSV (jasco manifest), or a subset of its clips")
    inf.add_argument("--name", help="the ALLM's name in tables (default: from the model or file)")
    inf.add_argument("--out", help="outputs table (default data/processed/outputs/NAME.csv, and .parquet)")
    subset_flags(inf, "manifest")
    data_dir_arg(inf)
    src = inf.add_argument_group("where the answers come from (one of)")
    src.add_argument("--allm", help="a named ALLM (jasco allms lists them), with its engine, model and options")
    src.add_argument(
        "--engine", choices=[e for e in ENGINES if backend_class(e).takes_audio], help="an audio LLM on this engine"
    )
    src.add_argument("--model", help="with --engine: model id, path or served name (with --allm: instead of its own)")
    src.add_argument("--import", dest="import_file", help="answers made elsewhere: CSV (example.csv layout) or JSONL")
    src.add_argument("--cascade", action="store_true", help="speech recognition -> text LLM baseline (runs on a CPU)")
    cas = inf.add_argument_group("cascade")
    cas.add_argument("--asr-model", help="faster-whisper model folder (default: the bundled Whisper tiny.en)")
    cas.add_argument(
        "--llm-engine",
        default=CASCADE_LLM_ENGINE,
        help="default %(default)s",
        choices=[e for e in ENGINES if not backend_class(e).judge_only],
    )
    cas.add_argument("--llm-model", help="text LLM (default: the embedded SmolLM2)")
    gen = inf.add_argument_group("generation")
    gen.add_argument(
        "--audio-mode",
        default="audio",
        choices=list(AUDIO_MODES),
        help="audio (default), or an ablation: silence, or the clip with its speech masked (segments from speech recognition)",
    )
    gen.add_argument("--temperature", type=non_negative_float, help="default: the named ALLM's, else 0 (greedy)")
    gen.add_argument("--seed", type=int, help="sampling seed (default: the named ALLM's, else 0)")
    gen.add_argument(
        "--max-tokens", type=positive_int, help="answer length limit (default: the named ALLM's, else 512)"
    )
    gen.add_argument("--store", default=str(DEFAULT_STORE), help="the call cache, SQLite (default %(default)s)")
    gen.add_argument("--chunk-size", type=positive_int, default=64, help="rows per engine call (default 64)")
    engine_flags(inf)
    inf.set_defaults(func=_cmd_infer)
