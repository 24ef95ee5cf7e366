"""The ``jasco`` command line: one module per command, each with ``add_parser(sub)``.

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

Each command parses its arguments, calls one stage function of the package (the same ones
the notebooks call) and prints; bad input gets a clear message and a non-zero exit. Engine
choices, engine flags and template choices come from the registries
(:data:`jasco_utils.models.registry.ENGINES`, :func:`jasco_utils.judging.prompts.judge_templates`).
"""

from __future__ import annotations

import argparse
import os
import sys

from jasco_utils.cli import data, doctor, infer, judge, lists, reproduce, score, view
from jasco_utils.cli.flags import no_abbreviations
from jasco_utils.core import __version__
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.io import StorageError, TableError
from jasco_utils.core.secrets import redact
from jasco_utils.models.base import EngineError
from jasco_utils.pipeline.jobs import StageError

#: The command modules, in the order ``jasco --help`` lists them.
COMMANDS = (data, infer, judge, reproduce, doctor, view, lists, score)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jasco``."""
    parser = argparse.ArgumentParser(prog="jasco", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"jasco {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
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
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
