"""Advice for an unknown key: the nearest allowed one, or the section it belongs to."""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from monitor.config.yamlhints import INDENT_WORDS
from monitor.config.yamlsource import format_key

# Marks a field the loader fills (``json_schema_extra``): never suggested for a typo.
LOADER_FILLED: dict[str, Any] = {"filled_by": "the loader"}
_CUTOFF = 0.75  # "intervall" → "interval"; "escalation" → nothing


def advise(model: type[BaseModel] | None, key: tuple[Any, ...], prefix: tuple[Any, ...]) -> str:
    """Advice on the unknown ``key`` of data that is a ``model`` (found at ``prefix``), or ``""``.

    A key an enclosing section takes was indented too far; otherwise a close match is a typo.
    """
    if model is None or not key or not isinstance(key[-1], str):
        return ""
    name = key[-1]
    for end in range(len(key) - 2, -1, -1):
        if name in allowed_keys(model, key[:end]):
            where = format_key((*prefix, *key[:end])) or "the top level"
            return f" ({INDENT_WORDS}: {name} is a key of {where})"
    allowed = sorted(allowed_keys(model, key[:-1]))
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=_CUTOFF)
    return f" (did you mean {close[0]!r}?)" if close else ""


def allowed_keys(model: type[BaseModel], loc: Iterable[Any]) -> set[str]:
    """The keys the models found by following ``loc`` from ``model`` accept."""
    here: list[Any] = [model]
    for part in loc:
        here = [inner for kind in here for inner in _step(kind, part)]
    return {key for kind in here for key in _keys(kind)}


def _members(kind: Any) -> list[Any]:
    """``kind`` with Annotated, Optional and unions unwrapped into the types they allow."""
    origin = get_origin(kind)
    if origin is Annotated:
        return _members(get_args(kind)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(kind) for member in _members(arg)]
    return [kind]


def _step(kind: Any, part: Any) -> list[Any]:
    """The types one ``loc`` part leads to; a part naming a union member keeps ``kind``."""
    found: list[Any] = []
    for member in _members(kind):
        origin = get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = _fields(member).get(part)
            found.extend(_members(field) if field is not None else [member])
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            found.extend(
                m for arg in get_args(member) if arg is not Ellipsis for m in _members(arg)
            )
        elif origin is dict and get_args(member):
            found.extend(_members(get_args(member)[-1]))
    return found


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """The keys a file may write in ``model``: not those the loader fills itself."""
    return {
        info.alias or name: info.annotation
        for name, info in model.model_fields.items()
        if info.json_schema_extra != LOADER_FILLED
    }


def _keys(kind: Any) -> list[str]:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(_fields(kind))
    return []
