"""``jasco view``: the run's page, every clip, answer and judgement in one HTML file."""

from __future__ import annotations

import argparse
import sys

from jasco_utils.cli.flags import data_dir_arg
from jasco_utils.core.io import TableError
from jasco_utils.core.paths import DEFAULT_STORE
from jasco_utils.report.browser import write_run_page


def _cmd_view(args: argparse.Namespace) -> int:

    try:
        page = write_run_page(args.run, out=args.out, data_dir=args.data_dir, audio=args.audio, store=args.store)
    except (FileNotFoundError, TableError, ValueError) as e:
        print(f"jasco view: {e}", file=sys.stderr)
        return 1
    print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB); open it in a browser: file://{page.resolve()}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to ``jasco``'s subparsers."""
    vw = sub.add_parser("view", help="write the run's page: every clip, answer and judgement in one HTML file")
    vw.add_argument("run", help="the run folder, e.g. runs/cpu")
    vw.add_argument("--out", help="the page's path (default RUN/browse.html)")
    vw.add_argument(
        "--audio",
        choices=["embed", "link"],
        default="embed",
        help="embed each clip in the page (shareable; default) or link to the dataset's WAVs",
    )
    vw.add_argument(
        "--store",
        default=str(DEFAULT_STORE),
        help="the call cache holding the recogniser's transcripts, for clips with the speech masked "
        "(default %(default)s)",
    )
    data_dir_arg(vw)
    vw.set_defaults(func=_cmd_view)
