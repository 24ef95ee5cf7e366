"""The documentation: the site builds offline with no warning, and every command it shows parses.

- :func:`test_the_site_builds_strict` runs ``mkdocs build --strict`` (mkdocs.yml; the reference
  pages are written from the code by docs/hooks.py) into a temporary folder: a broken link or
  anchor, a docstring mkdocstrings cannot read, or a generator that lost its source fails it.
  Skipped, saying why, where MkDocs is not installed (``make setup`` installs the ``docs`` extra).
- :func:`test_every_command_shown_parses` reads every fenced shell block of README.md and
  docs/ and parses each ``jasco ...`` line with the real parser (parsed, never run).
- :func:`test_every_import_shown_resolves`: each ``from jasco_utils... import ...`` of a fenced
  Python block names a module and names that exist (imported, nothing run), so an example
  does not outlive a module that moved.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

#: Fenced blocks whose lines are shell commands (an unlabelled fence counts too).
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "zsh"}
#: Where a shell command ends: what follows is another command or a redirection.
COMMAND_ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", "&>"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def _hooks():
    """docs/hooks.py, the documentation's one import of the package (and so of the parser)."""
    spec = importlib.util.spec_from_file_location("jasco_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def fenced_lines(text: str, languages: set[str]) -> list[tuple[int, str]]:
    """The lines of the fenced blocks in ``languages`` of a Markdown text, with their numbers."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = (m[2], m[3].lower() in languages)
        elif m and m[2].startswith(fence[0][0]) and len(m[2]) >= len(fence[0]) and not m[3]:
            fence = None
        elif fence[1]:
            out.append((number, line))
    return out


def shell_lines(text: str) -> list[tuple[int, str]]:
    """The logical lines of the fenced shell blocks of a Markdown text, with the line number each
    starts on; a line ending in a backslash goes on on the next.

    >>> shell_lines("x\\n```bash\\njasco a \\\\\\n  --b  # c\\n```\\n```toml\\njasco = 1\\n```\\n")
    [(3, 'jasco a --b  # c')]
    """
    out: list[tuple[int, str]] = []
    fence = None  # (marker, is_shell) of the open block
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = (m[2], m[3].lower() in SHELL_FENCES)
            continue
        if m and m[2].startswith(fence[0][0]) and len(m[2]) >= len(fence[0]) and not m[3]:
            if pending:
                out.append(pending)
            fence, pending = None, None
            continue
        if not fence[1]:
            continue
        start, sofar = pending if pending else (number, "")
        stripped = line.strip()
        if stripped.endswith("\\"):
            pending = (start, f"{sofar} {stripped[:-1].rstrip()}".strip())
        else:
            pending = None
            out.append((start, f"{sofar} {stripped}".strip()))
    return out


def jasco_args(line: str) -> list[str] | None:
    """The arguments of the ``jasco`` command a shell line runs (after a ``$`` prompt and
    ``NAME=value`` settings, up to a pipe, a redirection or the next command), or ``None``.

    >>> jasco_args("JASCO_DATA_DIR=/d .venv/bin/jasco score runs/cpu --json | head  # the scores")
    ['score', 'runs/cpu', '--json']
    >>> jasco_args("make run") is None
    True
    """
    lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    for i, token in enumerate(tokens):
        if token in COMMAND_ENDS:
            tokens = tokens[:i]
            break
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]
    if not tokens or not (tokens[0] == "jasco" or tokens[0].endswith("/jasco")):
        return None
    return tokens[1:]


def _commands() -> list[tuple[str, int, str, list[str]]]:
    found = []
    for path in _documents():
        for number, line in shell_lines(path.read_text(encoding="utf-8")):
            args = jasco_args(line)
            if args is not None:
                found.append((str(path.relative_to(REPO)), number, line, args))
    return found


def test_every_command_shown_parses():
    parser = _hooks().build_parser()
    commands = _commands()
    assert len(commands) >= 20, f"only {len(commands)} jasco commands found in the docs: is the extractor broken?"
    failures = []
    for where, number, line, args in commands:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(args)
        except SystemExit as e:
            if e.code not in (0, None):  # --help and --version exit 0
                error = said.getvalue().strip().splitlines()[-1:] or [f"exit {e.code}"]
                failures.append(f"{where}:{number}: {line}\n    {error[0]}")
    assert not failures, "commands in the docs that the parser refuses:\n" + "\n".join(failures)


def test_every_import_shown_resolves():
    _hooks()  # this checkout's package first on the path, as for the build
    failures, seen = [], 0
    for path in _documents():
        for number, line in fenced_lines(path.read_text(encoding="utf-8"), {"python", "py", "pycon"}):
            m = re.match(r"\s*(?:>>> )?from (jasco_utils[\w.]*) import (.+?)\s*(?:#.*)?$", line)
            if not m:
                continue
            seen += 1
            where = f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            try:
                module = importlib.import_module(m[1])
            except ImportError as e:
                failures.append(f"{where}\n    {e}")
                continue
            names = [n.strip().split(" as ")[0] for n in m[2].strip("()").split(",") if n.strip()]
            failures += [f"{where}\n    {m[1]} has no {n}" for n in names if not hasattr(module, n)]
    assert seen, "no `from jasco_utils ... import` line found in the docs' Python blocks"
    assert not failures, "imports in the docs that no longer resolve:\n" + "\n".join(failures)


def test_the_extractor_sees_each_command_of_a_block():
    text = "```bash\n$ jasco runs\njasco judge o.csv --judge smollm2 \\\n    --structured json   # JSON\n```\n"
    assert [jasco_args(line) for _, line in shell_lines(text)] == [
        ["runs"],
        ["judge", "o.csv", "--judge", "smollm2", "--structured", "json"],
    ]


def test_a_refused_command_is_reported(capsys):
    parser = _hooks().build_parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args(jasco_args("jasco score --no-such-flag x.csv"))
    assert e.value.code == 2 and "--no-such-flag" in capsys.readouterr().err


def test_the_site_builds_strict(tmp_path):
    missing = [
        m
        for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
        if importlib.util.find_spec(m.split(".")[0]) is None
        or (m == "mkdocstrings_handlers.python" and importlib.util.find_spec(m) is None)
    ]
    if missing:
        pytest.skip(
            f"MkDocs is not installed ({', '.join(missing)} missing): pip install -e '.[docs]' (make setup installs it)"
        )
    site = tmp_path / "site"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{(proc.stdout + proc.stderr)[-4000:]}"

    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    assert "index.html" in pages and len(pages) >= 20, pages
    # The generated pages hold what the code holds today.
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    parser = _hooks().build_parser()
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name in commands.choices:
        assert f"jasco {name}" in cli, f"the command reference lacks jasco {name}"
    assert "--engine-arg" in cli and "--original-sampling" in cli
    config = (site / "reference" / "configuration.html").read_text(encoding="utf-8")
    for field in ("max_tokens", "judge_check_clips", "replicas", "llm_engine", "judges_file"):
        assert field in config, f"the configuration reference lacks {field}"
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "parse_judgement" in api and "load_run_config" in api
    assert str(REPO) not in cli + config, "a build machine's path leaked into the reference"
