"""Proxy options checked once, from their declarations: each dataclass field against its type annotation
and the bounds its ``field(metadata=...)`` declares.

Types checked: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``Literal[...]`` and unions of
these with ``None``; other annotations are not checked. Bounds (metadata keys, applied to a numeric
value): :data:`GE` (>=), :data:`GT` (>), :data:`FINITE` (``True``: neither NaN nor infinite), e.g.
``batch_size: int = field(default=64, metadata={GE: 1})``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any

GE, GT, FINITE = "ge", "gt", "finite"
"""Field-metadata keys of the bounds an option declares."""


def option_error(proxy: str, option: str, value: Any, expected: str) -> ValueError:
    """The one-line error for an option value a proxy does not accept."""
    return ValueError(f"proxy {proxy!r}: option {option}={value!r}: expected {expected}")


def check_fields(instance: Any, proxy: str) -> None:
    """Raise :func:`option_error` (naming ``proxy``) for the first dataclass field of ``instance`` whose value
    does not fit its declared type and bounds."""
    hints = option_types(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        expected = expected_value(hints.get(f.name), value, f.metadata)
        if expected:
            raise option_error(proxy, f.name, value, expected)


def expected_value(annotation: Any, value: Any, bounds: Mapping[str, Any] | None = None) -> str | None:
    """What ``value`` should have been for an option declared as ``annotation`` with ``bounds`` (e.g.
    ``"an integer >= 1"``), or ``None`` when it fits. Bounds apply to numbers only (``None`` passes them);
    ``annotation=None``, or one that is not checked: only the bounds are checked."""
    bounds = bounds or {}
    kinds = _union_members(annotation)
    checked = bool(kinds) and all(_is_checked(kind) for kind in kinds)
    fits_type = not checked or any(_fits(kind, value) for kind in kinds)
    if fits_type and (not _is_number(value) or _within(value, bounds)):
        return None
    return _either([_describe(kind, bounds) for kind in kinds]) if checked else _describe(float, bounds)


@functools.cache
def option_types(cls: type) -> dict[str, Any]:
    """The resolved type annotations of a proxy class's options (empty where a plug-in's do not resolve)."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # a plug-in's annotations that do not resolve: types not checked
        return {}


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if annotation is None:
        return ()
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_checked(kind: Any) -> bool:
    return kind in (bool, int, float, str, type(None)) or typing.get_origin(kind) is typing.Literal


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fits(kind: Any, value: Any) -> bool:
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        return value in choices and type(value) in {type(choice) for choice in choices}
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return _is_number(value)
    if kind is str:
        return isinstance(value, str)
    return value is None


def _within(value: numbers.Real, bounds: Mapping[str, Any]) -> bool:
    return ((GE not in bounds or value >= bounds[GE]) and (GT not in bounds or value > bounds[GT])
            and (not bounds.get(FINITE) or math.isfinite(value)))


def _bound_text(bounds: Mapping[str, Any]) -> str:
    return " and ".join(f"{sign} {bounds[key]}" for key, sign in ((GE, ">="), (GT, ">")) if key in bounds)


def _describe(kind: Any, bounds: Mapping[str, Any]) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return _either([repr(choice) for choice in typing.get_args(kind)])
    if kind in (int, float):
        noun = "an integer" if kind is int else "a finite number" if bounds.get(FINITE) else "a number"
        return f"{noun} {_bound_text(bounds)}".rstrip()
    return {bool: "True or False", str: "a string", type(None): "None"}[kind]


def _either(phrases: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(phrases[:-1]), phrases[-1]] if len(phrases) > 2 else phrases)
