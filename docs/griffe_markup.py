"""A griffe extension for the API pages: the package's docstrings, read as Markdown.

The docstrings are written for both ``help()`` and Sphinx-like readers: doctest examples sit
in the text as bare ``>>>`` lines, and cross-references use roles (``:func:`name```). Rendered
as Markdown unchanged, the examples become nested quotes and the roles stay visible. This
extension fences each doctest block as a ``pycon`` code block and turns each role into a code
span, on the copy mkdocstrings renders (the package itself is not touched). mkdocs.yml loads it
under the python handler's ``extensions``.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?[a-z]+:`~?([^`]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_docstring(text: str) -> str:
    """``text`` with its doctest blocks fenced and its roles as code spans.

    A doctest block is a ``>>>`` line and the lines after it up to a blank line; it keeps its
    indentation. Text already inside a fence is left as it is.
    """
    out: list[str] = []
    lines = text.splitlines()
    i, fenced = 0, False
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(line if fenced else ROLE.sub(r"`\1`", line))
        i += 1
    return "\n".join(out)


class MarkdownDocstrings(Extension):
    """Fence doctest blocks and turn roles into code spans in every docstring griffe reads."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
