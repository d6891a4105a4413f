"""Every config key described from the dataclasses themselves: ``latentprior config keys`` and docs/config.md.

A field's description is its ``metadata["help"]`` (sections.py's ``_key``), its type and allowed values come from
its annotation and its default from the field, so the listing cannot drift from the code that checks the keys.

>>> [k.key for k in describe(Config)][:2]
['data.name', 'data.dir']
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["KeyDoc", "describe", "keys_text", "keys_markdown", "type_name"]


@dataclass(frozen=True)
class KeyDoc:
    """One key: ``section.name``, its type, default (as YAML writes it), allowed values, description, flags."""

    key: str
    type: str
    default: str
    choices: tuple[str, ...]
    help: str
    resume_may_change: bool


def _yaml(value: Any) -> str:
    """A default as it would be written in a YAML config."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)


def _choices(tp: Any) -> tuple[str, ...]:
    """The Literal values an annotation allows (inside an Optional or a tuple too); () when it is open."""
    if typing.get_origin(tp) is Literal:
        return tuple(str(c) for c in typing.get_args(tp))
    for arg in typing.get_args(tp):
        found = _choices(arg)
        if found:
            return found
    return ()


def type_name(tp: Any) -> str:
    """``int``, ``float or null``, ``list of str``, ``str`` (a Literal: its values are listed apart)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return type(typing.get_args(tp)[0]).__name__
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in typing.get_args(tp) else "")
    if origin is tuple:
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return f"list of {type_name(item)}"
    return getattr(tp, "__name__", str(tp))


def describe(cls: type, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key of the dataclass ``cls`` (nested sections flattened to ``section.key``), in field order."""
    hints = typing.get_type_hints(cls)
    out: list[KeyDoc] = []
    for f in dataclasses.fields(cls):
        key, tp = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += describe(tp, f"{key}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out.append(KeyDoc(key, type_name(tp), _yaml(default), _choices(tp), str(f.metadata.get("help", "")),
                          bool(f.metadata.get("resume_may_change"))))
    return out


def keys_text(docs: list[KeyDoc]) -> str:
    """One line per key for a terminal: ``key  type = default  [choices]  description``."""
    width = max((len(d.key) for d in docs), default=0)
    lines = []
    for d in docs:
        choices = f"  {{{', '.join(d.choices)}}}" if d.choices else ""
        lines.append(f"{d.key:<{width}}  {d.type} = {d.default}{choices}  {d.help}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def keys_markdown(groups: list[tuple[str, str, list[KeyDoc]]]) -> str:
    """docs/config.md: one table per group ``(title, intro, keys)``."""
    parts = ["# Config keys", "",
             "Generated from the config dataclasses (`src/latentprior/config/sections.py`) by "
             "`latentprior config keys --markdown`; do not edit by hand. Override any key with "
             "`--set section.key=value`; `latentprior config show CONFIG` prints a resolved config. Keys marked "
             "*resume* may change when a run is resumed; any other change is refused.", ""]
    for title, intro, docs in groups:
        parts += [f"## {title}", "", intro, "", "| key | type | default | allowed | description |",
                  "|---|---|---|---|---|"]
        for d in docs:
            note = " *(resume)*" if d.resume_may_change else ""
            allowed = ", ".join(f"`{c}`" for c in d.choices)
            parts.append(f"| `{d.key}` | {d.type} | `{_cell(d.default)}` | {allowed} | {_cell(d.help)}{note} |")
        parts.append("")
    return "\n".join(parts)
