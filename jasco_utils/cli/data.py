"""``jasco data download``, ``jasco data validate``, ``jasco data interventions`` and ``jasco manifest``: the
dataset, the interventions' fidelity on it, and the manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jasco_utils.cli.flags import data_dir_arg, positive_float, positive_int
from jasco_utils.core.paths import DEFAULT_DATASET_DIR, DEFAULT_STORE, PROCESSED_DIR
from jasco_utils.data.dataset import validate_dataset
from jasco_utils.data.download import DEFAULT_BASE_URL, DownloadError, download_dataset
from jasco_utils.data.manifest import build_manifest, parse_clip_list, write_manifest
from jasco_utils.inference.fidelity import failing_clips, fidelity_summary, measure_fidelity
from jasco_utils.report.interventions import write_fidelity


def _cmd_download(args: argparse.Namespace) -> int:

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


def _cmd_interventions(args: argparse.Namespace) -> int:

    try:
        table = measure_fidelity(args.clips, args.data_dir, store=args.store)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"jasco data interventions: {e}", file=sys.stderr)
        return 1
    paths = write_fidelity(table, args.out)
    print(fidelity_summary(table).to_string(index=False))
    for condition, clips in failing_clips(table).items():
        print(f"{condition}: fails on {len(clips)} of {len(table)} clips: {clips}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_manifest(args: argparse.Namespace) -> int:

    try:
        df = build_manifest(args.data_dir, clips=args.clips, original_layout=args.original_layout)
    except (FileNotFoundError, ValueError) as e:
        print(f"jasco manifest: {e}", file=sys.stderr)
        return 1
    path = write_manifest(df, args.out)
    print(f"wrote {path} ({len(df)} rows: {df['id'].nunique()} clips x 8 instructions)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    data = sub.add_parser("data", help="download or validate the dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser(
        "download", help="fetch the dataset (checksums verified; a re-run fetches only missing or damaged files)"
    )
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

    iv = data_sub.add_parser(
        "interventions",
        help="measure whether each intervention (sound_suppressed, speech_masked) does what it claims, per clip",
    )
    data_dir_arg(iv)
    iv.add_argument("--clips", type=parse_clip_list, help="subset of clips, e.g. 1-10,42 (default all)")
    iv.add_argument(
        "--out",
        default=str(PROCESSED_DIR / "interventions"),
        help="folder for the table and figure (default %(default)s)",
    )
    iv.add_argument("--store", default=str(DEFAULT_STORE), help="call store for the transcripts (default %(default)s)")
    iv.set_defaults(func=_cmd_interventions)

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
