"""The flags several ``jasco`` commands share, and what they become.

:func:`engine_flags` declares one flag per keyword of every registered engine's backend
(from :data:`jasco_utils.models.ENGINES`, never a hand-kept list) plus ``--engine-arg
KEY=VALUE``; :func:`cli_options` turns what was set into each engine's options, refusing a
flag that applies to none of the engines used. :func:`judging_flags` is the protocol and run
flags of ``judge`` and ``check-judge``; :func:`judge_specs` applies them to named judges;
:func:`generate_from` reads the generation flags: the command line's level of
:class:`~jasco_utils.config.GenerateConfig`, the highest (a flag left out leaves the level
below in force).
"""

from __future__ import annotations

import argparse
import json

from jasco_utils.config import EXECUTORS
from jasco_utils.core.paths import DATA_DIR_ENV, DEFAULT_DATASET_DIR, DEFAULT_STORE
from jasco_utils.data.manifest import parse_clip_list
from jasco_utils.judging.prompts import DEFAULT_JUDGE_TEMPLATE, judge_templates, template_problem
from jasco_utils.models import ENGINES, engine_options
from jasco_utils.models.registry import check_spec
from jasco_utils.models.spec import ORIGINAL_SAMPLING, STRUCTURED_MODES, GenerateConfig, resolve_generate

__all__ = [
    "cli_options",
    "data_dir_arg",
    "engine_arg",
    "engine_flags",
    "judge_specs",
    "judging_flags",
    "no_abbreviations",
    "parse_clip_list",
    "positive_int",
    "generate_from",
    "subset_flags",
]


def positive_int(text: str) -> int:
    """An integer of 1 or more (``--limit``, ``--concurrency``, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, not {value}")
    return value


def non_negative_float(text: str) -> float:
    """A number of 0 or more (``--temperature``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    """A number above 0 (``--timeout``)."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected more than 0, not 0")
    return value


def no_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Turn off prefix matching in a parser and all its subcommands; return it.

    Otherwise ``--api-key KEY`` is read as ``--api-key-env KEY`` and the key ends up printed
    in an error message, a log or an executed notebook.
    """
    stack = [parser]
    while stack:
        p = stack.pop()
        p.allow_abbrev = False
        stack += [sp for a in p._actions if isinstance(a, argparse._SubParsersAction) for sp in a.choices.values()]
    return parser


def subset_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--clips`` and ``--limit``: a subset of whole clips (each with its 8 instructions)."""
    parser.add_argument(
        "--clips", type=parse_clip_list, help=f"only these clips of the {what}, e.g. 1-10,42 (default: all it holds)"
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help=f"only the first N clips (of --clips, else of the {what}; default: no limit)",
    )


def data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help=f"dataset folder (default: ${DATA_DIR_ENV}, else {DEFAULT_DATASET_DIR})",
    )


def engine_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE``; VALUE is read as JSON when it parses (``4``, ``true``, ``{"audio": 1}``), else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def engine_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per backend keyword of every registered engine, from the registry, plus ``--engine-arg``.

    Call it after the command's own flags: a keyword whose flag the command already has (vLLM's
    engine ``seed`` beside the sampling ``--seed``) gets none and goes through ``--engine-arg``,
    as do options that are not numbers, text or lists. So no backend keyword can take a flag.
    """
    group = parser.add_argument_group(
        "engine options (override a named model's; each applies to the engines in brackets)"
    )
    seen: dict[str, list[str]] = {}
    options = {}
    for engine in ENGINES:
        for name, opt in engine_options(engine).items():
            if "--" + name.replace("_", "-") not in parser._option_string_actions and opt.type is not object:
                seen.setdefault(name, []).append(engine)
                options.setdefault(name, opt)
    parser.set_defaults(_engine_flags=sorted(options))
    for name, opt in options.items():
        default = "" if opt.default is None else f"; default {opt.default}"
        help_text = f"{opt.help.rstrip('.')} [{', '.join(seen[name])}{default}]".replace("``", "").replace("%", "%%")
        flag = "--" + name.replace("_", "-")
        if opt.type is bool:
            group.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
        elif opt.type is list:
            group.add_argument(flag, action="append", help=help_text + " (repeatable)")
        else:
            group.add_argument(flag, type=opt.type, help=help_text)
    group.add_argument(
        "--engine-arg",
        action="append",
        type=engine_arg,
        default=[],
        metavar="KEY=VALUE",
        help="any other keyword of the engine's backend, passed unchanged (vLLM: any "
        "vllm.EngineArgs field, e.g. trust_remote_code=true, limit_mm_per_prompt='{\"audio\": 1}'); "
        "repeatable; unknown keys are refused with the accepted ones",
    )


def cli_options(args: argparse.Namespace, engines: list[str]) -> dict[str, dict]:
    """Engine options set on the command line, per engine used.

    Raises:
        ValueError: A flag set for none of the engines used.
    """
    flags = set(getattr(args, "_engine_flags", ()))
    per = {
        e: {n: getattr(args, n) for n in engine_options(e) if n in flags and getattr(args, n, None) is not None}
        for e in dict.fromkeys(engines)
    }
    for e in per:
        per[e].update(dict(args.engine_arg))
    used = {n for opts in per.values() for n in opts}

    stray = sorted(
        n
        for e in ENGINES
        for n in engine_options(e)
        if n in flags and getattr(args, n, None) is not None and n not in used
    )
    if stray:
        raise ValueError(
            f"option(s) {['--' + n.replace('_', '-') for n in stray]} do not apply to engine(s) {sorted(per)}"
        )
    return per


def generate_from(args: argparse.Namespace):
    """The command line's generation level: ``--original-sampling`` (a preset), then each flag given.

    A flag not given sets nothing, so a named judge's or a run configuration's value stays.
    """
    given = {
        f: getattr(args, f, None) for f in ("max_tokens", "temperature", "seed", "structured", "max_explanation_chars")
    }
    level = GenerateConfig(**{k: v for k, v in given.items() if v is not None})
    return ORIGINAL_SAMPLING.over(level) if getattr(args, "original_sampling", False) else level


def judge_specs(args: argparse.Namespace, specs: list):
    """The judges with the command line's engine options, ``--template`` and generation flags applied,
    their generation settings resolved (default < the judge's entry < the command line), checked."""
    overrides = cli_options(args, [s.engine for s in specs])
    out = []
    for s in specs:
        spec = s.replace(options={**s.options, **overrides[s.engine]}, template=args.template or s.template)
        spec = resolve_generate(spec, generate_from(args))
        out.append(check_spec(spec, extra=template_problem(spec)))
    return out


def judging_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The protocol and run flags ``judge`` and ``check-judge`` share; returns the "run" group."""
    how = parser.add_argument_group("protocol")
    how.add_argument(
        "--template",
        choices=judge_templates(),
        help=f"judge prompt (default: a named judge's, else {DEFAULT_JUDGE_TEMPLATE})",
    )
    how.add_argument("--temperature", type=non_negative_float, help="default: the judge's, else 0 (greedy)")
    how.add_argument("--seed", type=int, help="sampling seed (default: the judge's, else 0)")
    how.add_argument("--max-tokens", type=positive_int, help="default: the judge's, else 1000, as the original")
    how.add_argument(
        "--original-sampling",
        action="store_true",
        help="the original script's sampling: temperature 1.0, no seed (flags given beside it win)",
    )
    how.add_argument(
        "--structured", choices=list(STRUCTURED_MODES), help="constrain the answer's format while decoding"
    )
    how.add_argument("--max-explanation-chars", type=positive_int, help="with --structured: bound each explanation")
    how.add_argument("--no-reask", action="store_true", help="do not re-ask when the orientation cannot be read")
    run = parser.add_argument_group("run")
    run.add_argument("--store", default=str(DEFAULT_STORE), help="the call cache, SQLite (default %(default)s)")
    run.add_argument("--chunk-size", type=positive_int, default=256, help="rows per engine call (default 256)")
    return run


def reproduce_args(rp: argparse.ArgumentParser) -> None:
    """The flags of ``jasco reproduce``: the configuration, its clips, where the run goes, the executor."""
    rp.add_argument(
        "--config",
        default="cpu",
        help="a run configuration: cpu (default), paper, modern (current ALLMs), or a .toml path",
    )
    rp.add_argument("--all-clips", action="store_true", help="all 80 clips, whatever the configuration says")
    rp.add_argument("--clips", type=parse_clip_list, help="these clips, e.g. 1-10,42, whatever the configuration says")
    rp.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="only the first N clips (of --clips, else of the configuration's; default: no limit)",
    )
    rp.add_argument("--run-dir", help="the run's folder (default runs/CONFIG)")
    rp.add_argument(
        "--figures-dir", help="where Table II, Figure 2, the statistics and the provenance go (default RUN_DIR/figures)"
    )
    rp.add_argument("--store", help=f"the call cache (default {DEFAULT_STORE})")
    data_dir_arg(rp)
    rp.add_argument("--dry-run", action="store_true", help="print the run plan (models, rows, verdicts) and stop")
    executor_args(rp)


def executor_args(parser: argparse.ArgumentParser) -> None:
    """``--executor`` and ``--ray-address`` (:mod:`jasco_utils.pipeline.jobs`)."""
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="where the model stages run: local (one after another on this machine) or ray "
        "(Ray tasks on a cluster; see the README's 'On a cluster'); default: the configuration's "
        "executor, else local",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster for --executor ray (default $RAY_ADDRESS, else a Ray instance started here)",
    )
