"""The ``jasco`` command line.

Subcommands::

    jasco data download   fetch the dataset (pinned commit, checksums verified, resumable)
    jasco data validate   check the dataset folder and report its irregularities
    jasco manifest        write the 640-row inference table (80 clips x 8 instructions)
    jasco score FILE...   Best-Mean and modality dependence of judged tables

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
    from jasco_utils.download import DEFAULT_BASE_URL, DownloadError, download_dataset

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
    from jasco_utils.dataset import validate_dataset

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
    from jasco_utils.manifest import build_manifest, write_manifest

    try:
        df = build_manifest(args.data_dir, clips=args.clips, original_layout=args.original_layout)
    except (FileNotFoundError, ValueError) as e:
        print(f"jasco manifest: {e}", file=sys.stderr)
        return 1
    path = write_manifest(df, args.out)
    print(f"wrote {path} ({len(df)} rows: {df['id'].nunique()} clips x 8 instructions)")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from jasco_utils.scoring import format_scores, score_files

    try:
        results = score_files(args.files, model=args.model, judge=args.judge)
    except TableError as e:
        print(f"jasco score: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_scores(results))
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

    sc = sub.add_parser("score", help="Best-Mean and modality dependence of judged tables")
    sc.add_argument("files", nargs="+", help="judged CSVs (this project's layout or the original's)")
    sc.add_argument("--model", help="ALLM name for original-layout files (default: from the file name)")
    sc.add_argument("--judge", help="judge name for original-layout files (default: from the file name)")
    sc.add_argument("--json", action="store_true", help="print JSON (unrounded, percentages 0-100)")
    sc.set_defaults(func=_cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jasco`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
