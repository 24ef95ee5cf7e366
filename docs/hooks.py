"""MkDocs hooks: the reference pages, written from the code each time the site is built.

A page asks for generated text with a marker on a line of its own, ``<!-- generated: NAME -->``
(indented inside a block, the text is indented alike); :func:`on_page_markdown` replaces it
with ``GENERATORS[NAME]()``:

- ``cli``: every ``jasco`` command with its usage and options, from the argparse parser;
- ``schemas``: the run configuration, the model entries and the files' schemas, from the pydantic
  models (``model_json_schema()``);
- ``cpu-config``: the CPU default's run configuration as a run resolves it (``config.json``);
- ``api-top``: the package's top-level names, as mkdocstrings directives pointing where each
  name is defined today.

Nothing here needs the network or a plug-in: ``hooks: [docs/hooks.py]`` in mkdocs.yml loads it.
``tests/test_docs.py`` loads this file too, for the parser.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The checkout this file is in comes first, so the site describes this checkout's code even
# where another copy of jasco is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ---------------------------------------------------------------------------------------------
# The documentation's only imports of the package, kept in this one place on purpose: module
# paths inside jasco_utils change as the package is reorganised into layers (ModelSpec and
# GenerateConfig in jasco_utils.models.spec, RunConfig in jasco_utils.config, build_parser in
# the jasco_utils.cli package). The names below hold across that move; when one moves again,
# this block is the one thing to change.
import jasco_utils
from jasco_utils import ModelSpec, load_run_config
from jasco_utils.cli import build_parser
from jasco_utils.config import RunConfig
from jasco_utils.config import schema as config_schema

# ---------------------------------------------------------------------------------------------

log = logging.getLogger("mkdocs.hooks.jasco")

MARKER = re.compile(r"^([ \t]*)<!-- generated: ([a-z0-9-]+) -->$", re.MULTILINE)

#: Modules whose pages are written by hand as ``::: module`` (they keep their paths).
STABLE_MODULES = (
    "jasco_utils.judging.parsing",
    "jasco_utils.analysis.metrics",
    "jasco_utils.judging.prompts",
    "jasco_utils.analysis.bootstrap",
)


# --- small Markdown helpers -----------------------------------------------------------------

#: The folder the package was imported from, as the build machine has it: help texts show
#: their defaults relative to it, as on any machine.
ROOT = str(Path(jasco_utils.__file__).resolve().parents[1]) + "/"


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, no column breaks, no local paths; outside code
    spans, HTML escaped (inside them Markdown shows every character as it is)."""
    parts = " ".join(str(text).replace(ROOT, "").split()).split("`")
    return "`".join(
        part if i % 2 else html.escape(part, quote=False).replace("|", "&#124;") for i, part in enumerate(parts)
    )


def _code(text: str) -> str:
    """An inline code span (for a table cell)."""
    return f"<code>{_cell(text)}</code>"


# --- the command line -------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every leaf command under ``parser`` as (``"jasco data download"``, its parser), in order."""
    out = []
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(parser.prog, parser)]
    for action in subs:
        for name, sub in action.choices.items():
            sub.prog = f"{parser.prog} {name}"
            out += _subcommands(sub)
    return out


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = parser.formatter_class(prog=parser.prog, width=72)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _summary(parser: argparse.ArgumentParser, name: str) -> str:
    """The one-line help a command has in its parent's list of commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    names = ", ".join(action.option_strings) or action.metavar or action.dest
    if action.option_strings and action.nargs != 0:
        metavar = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
        names = f"{names} {metavar}"
    elif not action.option_strings:
        names = formatter._format_args(action, formatter._get_default_metavar_for_positional(action))
    helptext = formatter._expand_help(action) if action.help else ""
    if action.choices is not None and "{" not in names:
        helptext += f" (one of: {', '.join(map(str, action.choices))})"
    return f"| {_code(names)} | {_cell(helptext)} |"


def cli_reference() -> str:
    """Every command: its summary, usage and options, grouped as ``--help`` groups them."""
    root = build_parser()
    parents: dict[str, argparse.ArgumentParser] = {}

    def index(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    parents[f"{parser.prog} {name}"] = parser
                    index(sub)

    root.prog = "jasco"
    index(root)
    commands = _subcommands(root)
    lines = [
        f"`jasco --version` prints the version; `jasco COMMAND --help` prints what follows for one "
        f"command. The {len(commands)} commands:",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    lines += [
        f"| [`{prog}`](#{prog.replace(' ', '-')}) | {_cell(_summary(parents[prog], prog.rsplit(' ', 1)[1]))} |"
        for prog, _ in commands
    ] + [""]
    for prog, parser in commands:
        name = prog.rsplit(" ", 1)[1]
        parent = parents.get(prog)
        summary = _summary(parent, name) if parent is not None else ""
        lines += [f"## {prog} {{#{prog.replace(' ', '-')}}}", ""]
        if summary:
            lines += [summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."), ""]
        lines += ["```text", _usage(parser), "```", ""]
        for group in parser._action_groups:
            actions = [
                a
                for a in group._group_actions
                if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
            ]
            if not actions:
                continue
            lines += [f"**{group.title[0].upper() + group.title[1:]}**", ""]
            if group.description:
                lines += [group.description, ""]
            lines += ["| argument | what it does |", "| --- | --- |"]
            lines += [_option_row(parser, a) for a in actions] + [""]
    return "\n".join(lines)


# --- the schemas ------------------------------------------------------------------------------


def _rst(text: str) -> str:
    """Docstring markup as Markdown: ``:func:`x``` and double backticks become code spans."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


def _summary_of(doc: str) -> str:
    """The first paragraph of a docstring, on one line."""
    return _rst(" ".join(doc.strip().split("\n\n")[0].split())) if doc else ""


def _attributes(doc: str) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style docstring, by field name."""
    lines = (doc or "").splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() == "Attributes:"]
    if not heads:
        return {}
    out: dict[str, str] = {}
    base = None
    current = None
    for line in lines[heads[0] + 1 :]:
        if not line.strip():
            if out:
                break
            continue
        indent = len(line) - len(line.lstrip())
        base = indent if base is None else base
        if indent < base:
            break
        field = re.match(r"\s*(\w+)(?: \([^)]*\))?: (.*)", line)
        if indent == base and field:
            current = field[1]
            out[current] = field[2]
        elif current:
            out[current] += " " + line.strip()
    return {k: _rst(v) for k, v in out.items()}


#: What the sampling fields mean (they carry no docstring of their own).
SAMPLING_FIELDS = {
    "max_tokens": "The length limit of an answer, in tokens.",
    "temperature": "Sampling temperature (0: greedy).",
    "top_p": "Nucleus sampling: the share of probability mass sampled from.",
    "seed": "The sampling seed (none: unseeded).",
    "structured": "A judge's structured output: `regex` or `json` (unset: free answers).",
    "max_explanation_chars": "With `structured`: the longest explanation a judge may give, in characters.",
}
#: What the fields of the files' own sections mean, where the resolved models' docstrings do not
#: say it (a file's field is read, then checked and resolved into the models below).
FILE_FIELDS = {
    "RunFile": {
        "name": "The run's name: its folder under `runs/` (default: the file's name).",
        "clips": '`"all"` or a list of clip ids 1..80.',
        "allm_sampling": "The `[allm_sampling]` section: the ALLMs' generation level.",
        "judging": "The `[judging]` section: the judges, in order, and their generation level.",
        "allms": "The `[[allms]]` entries, in order.",
        "judge_check": "The `[judge_check]` section: whether the judging stage also runs the judge check, on which clips.",
    },
    "_JudgingSection": {
        "judges": "The judges' keys, in order (`jasco judges` lists the named ones).",
        "judges_file": "A TOML file of named judges, relative to this file (default: the shipped `judges.toml`).",
        "replicas": "`[judging.replicas]`: judge key = replicas on the Ray executor (over the judge's entry).",
    },
    "_JudgeCheckSection": {
        "enabled": "Run the judge check in the judging stage (default: on when the section is there).",
        "clips": '`"all"` or a list of two clip ids or more.',
        "judge_clips": '`[judge_check.judge_clips]`: judge key = `"all"` or its clips, a subset of `clips` (a slow judge).',
    },
    "TokenPrice": {
        "prompt": "US dollars per million prompt tokens.",
        "completion": "US dollars per million completion tokens.",
    },
    "Resources": {
        "num_cpus": "CPUs each replica asks for (default: from its engine and options).",
        "num_gpus": "GPUs each replica asks for (default: from its engine and options).",
    },
    "_AllmEntry": {
        "allm": "A named ALLM of `allms.toml` (`jasco allms` lists them); the entry's other fields override its "
        "own (`options` are merged).",
        "llm_model": "The cascade's text LLM (its model).",
    },
}


def _type(prop: dict[str, Any]) -> str:
    """A JSON-schema property's type, in short."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1].lstrip("_")
    if "anyOf" in prop:
        return " or ".join(dict.fromkeys(_type(p) for p in prop["anyOf"]))
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"table of {_type(prop['additionalProperties'])}"
    return {"object": "table", "integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(kind, kind)


def _limits(prop: dict[str, Any]) -> str:
    parts = []
    for p in [prop, *prop.get("anyOf", [])]:
        for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
            if key in p:
                parts.append(f"{sign} {p[key]}")
    return ", ".join(dict.fromkeys(parts))


def _schema_table(schema: dict[str, Any], docs: dict[str, str]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | default | what it is |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else json.dumps(prop.get("default")) if "default" in prop else ""
        kind = _type(prop) + (f" ({_limits(prop)})" if _limits(prop) else "")
        rows.append(
            f"| {_code(name)} | {_cell(kind)} | {_code(default) if default else ''} | {_cell(docs.get(name, ''))} |"
        )
    return rows


def _docs_for(name: str, schema: dict[str, Any], fallback: dict[str, str]) -> dict[str, str]:
    """A schema's field texts: the file's own, then its docstring's, then the fallback's."""
    return {**fallback, **_attributes(schema.get("description", "")), **FILE_FIELDS.get(name, {})}


def _schema_section(
    title: str, model: type, intro: str, fallback: dict[str, str], top: dict[str, str] | None = None
) -> list[str]:
    """A model's fields, then each sub-table's; ``top`` adds texts for the model's own fields."""
    schema = model.model_json_schema()
    lines = [f"### {title}", "", intro, ""]
    lines += _schema_table(schema, _docs_for(model.__name__, schema, {**fallback, **(top or {})})) + [""]
    for name, sub in schema.get("$defs", {}).items():
        summary = _summary_of(sub.get("description", ""))
        lines += [f"**{name.lstrip('_')}**" + (f": {summary}" if summary else ""), ""]
        lines += _schema_table(sub, _docs_for(name, sub, fallback)) + [""]
    lines += [f'??? note "{title}: the JSON schema"', "", "    ```json"]
    lines += ["    " + line for line in json.dumps(schema, indent=2).splitlines()] + ["    ```", ""]
    return lines


#: The files' schemas, by class name in :mod:`jasco_utils.config.schema`; a missing one fails
#: the (strict) build.
FILE_SCHEMAS = {
    "RunFile": (
        "A run configuration file",
        "What a file under `configs/runs/` (or any `--config FILE.toml`) "
        "may hold, section by section. Anything else is an error.",
    ),
    "JudgeEntry": (
        "A named judge's entry",
        'One table of `judges.toml` (or of a `--judges-file`), `["KEY"]` then these fields.',
    ),
    "NamedAllmEntry": ("A named ALLM's entry", 'One table of `allms.toml`, `["KEY"]` then these fields.'),
}


def schemas_reference() -> str:
    entry_docs = {**SAMPLING_FIELDS, **_attributes(ModelSpec.__doc__)}
    module = config_schema
    lines = []
    for cls_name, (title, intro) in FILE_SCHEMAS.items():
        cls = getattr(module, cls_name, None)
        if cls is None:
            log.warning("docs/hooks.py: %s has no %s: update FILE_SCHEMAS", module.__name__, cls_name)
            continue
        top = _attributes(RunConfig.__doc__) if cls_name == "RunFile" else None
        lines += _schema_section(title, cls, intro, entry_docs, top)
    lines += _schema_section(
        "ModelSpec: one judge or ALLM, resolved",
        ModelSpec,
        "Every file entry above becomes one of these when it loads; a run stores them, "
        "resolved, in `RUN_DIR/config.json`. `generate` is a `GenerateConfig`.",
        entry_docs,
    )
    lines += _schema_section(
        "RunConfig: a run configuration, checked and resolved",
        RunConfig,
        "What `load_run_config` returns and `RUN_DIR/config.json` holds.",
        entry_docs,
        _attributes(RunConfig.__doc__),
    )
    return "\n".join(lines)


def cpu_config() -> str:
    """The shipped CPU default as a run resolves it (its ``config.json``), without the file's text."""
    data = json.loads(load_run_config("cpu").to_json())
    data["path"] = ".../jasco_utils/configs/runs/cpu.toml"
    data["text"] = "(the file's text)"
    return "```json\n" + json.dumps(data, indent=2) + "\n```"


# --- the Python API ---------------------------------------------------------------------------


def api_top() -> str:
    """One mkdocstrings directive per top-level name, at the module that defines it today."""
    lines = []
    for name in jasco_utils.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(jasco_utils, name)
        lines += [
            f"::: {obj.__module__}.{name}",
            "    options:",
            "      show_root_heading: true",
            "      show_root_full_path: false",
            "      heading_level: 2",
            "",
        ]
    return "\n".join(lines)


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "schemas": schemas_reference,
    "cpu-config": cpu_config,
    "api-top": api_top,
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def generate(m: re.Match) -> str:
        indent, name = m[1], m[2]
        if name not in GENERATORS:
            log.warning("%s: no generator named %r (known: %s)", page.file.src_path, name, ", ".join(GENERATORS))
            return m[0]
        return "\n".join(indent + line if line else line for line in GENERATORS[name]().splitlines())

    return MARKER.sub(generate, markdown)
