"""The project's errors that name what is wrong and where: configurations, in words.

:class:`ConfigError` is raised for a configuration that cannot be used (a file, a field, an
option); :func:`describe_errors` turns pydantic's validation errors into one line per problem,
naming the field and what it must be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_WHAT = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def describe_errors(error: ValidationError, fields_of: Mapping[tuple, Iterable[str]] | None = None) -> list[str]:
    """One line per problem pydantic found, in words: the field and what it must be."""
    out, unknown = [], {}
    fields_of = fields_of or {}
    for e in error.errors(include_url=False):
        loc, kind, value = tuple(e["loc"]), e["type"], e.get("input")
        if kind == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        field = _loc(loc)
        if kind in _WHAT:
            out.append(f"{field} must be {_WHAT[kind]}, not {value!r}")
        elif kind == "literal_error":
            out.append(
                f"{field} must be one of {list(e['ctx']['expected'].replace(' or ', ', ').replace(chr(39), '').split(', '))}"
                f", not {value!r}"
            )
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal"):
            bound = {
                "greater_than_equal": "{ge} or more",
                "greater_than": "more than {gt}",
                "less_than_equal": "{le} or less",
            }[kind].format(**{k: f"{v:g}" if isinstance(v, float) else v for k, v in e["ctx"].items()})
            out.append(f"{field} must be {bound}, not {value!r}")
        elif kind == "missing":
            out.append(f"{field} is missing")
        elif kind == "value_error":
            out.append(f"{field} {e['msg'].removeprefix('Value error, ')}")
        else:
            out.append(f"{field}: {e['msg']}, not {value!r}")
    for parent, names in unknown.items():
        section = f"[{_loc(parent)}] has " if parent else ""
        known = sorted(fields_of.get(tuple(p for p in parent if not isinstance(p, int)), ()))
        out.insert(0, f"{section}unknown field(s) {sorted(names)}" + (f"; fields: {known}" if known else ""))
    return out


__all__ = ["ConfigError", "describe_errors"]
