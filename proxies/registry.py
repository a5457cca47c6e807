"""Proxy registry: built-ins by decorator, external proxies by entry point or ``module:Class``.

A plug-in mistake never breaks the other proxies: an entry point that cannot be imported, or that names
something other than a well-formed :class:`~proxies.base.Proxy` subclass, is set aside with a one-line
reason (:func:`broken_plugins`), and only asking for that name raises it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from importlib.metadata import entry_points
from typing import Any

from proxies.base import Proxy

ENTRY_POINT_GROUP = "zenbench.proxies"
_REGISTRY: dict[str, type[Proxy]] = {}
_BROKEN: dict[str, str] = {}
_entry_points_loaded = False


class UnknownProxyError(KeyError):
    """An unknown proxy name, or a plug-in that cannot be used (the message says which and why)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def class_problem(obj: object) -> str | None:
    """Why ``obj`` cannot be a proxy (``None`` when it can): a :class:`Proxy` subclass with a non-empty
    string ``name`` that implements ``compute``."""
    if not (isinstance(obj, type) and issubclass(obj, Proxy)):
        return f"{obj!r} is not a proxies.Proxy subclass"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"{obj.__module__}.{obj.__qualname__} must define a non-empty class attribute 'name'"
    if inspect.isabstract(obj):
        return f"{obj.__module__}.{obj.__qualname__} does not implement compute()"
    return None


def register(cls: type[Proxy]) -> type[Proxy]:
    """Class decorator: make ``cls`` available as ``proxies.get(cls.name)``."""
    problem = class_problem(cls)
    if problem:
        raise TypeError(problem)
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"proxy name {cls.name!r} is taken by {existing.__module__}.{existing.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"plug-in entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP})"
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import-time failure of a third-party module
            _BROKEN[ep.name] = f"{where} cannot be imported: {type(exc).__name__}: {_first_line(exc)}"
            continue
        problem = class_problem(cls)
        if problem is None and cls.name != ep.name:
            problem = f"its class is named {cls.name!r}, not {ep.name!r}"
        if problem is None and cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
            problem = f"the name {cls.name!r} is already taken by a built-in proxy"
        if problem:
            _BROKEN[ep.name] = f"{where}: {problem}"
            continue
        _REGISTRY[cls.name] = cls


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def broken_plugins() -> dict[str, str]:
    """Entry-point plug-ins that could not be registered: name -> one-line reason."""
    _load_entry_points()
    return dict(_BROKEN)


def import_attribute(module_name: str, attr: str) -> Any:
    """``getattr(import_module(module_name), attr)`` with the current directory importable, as under
    ``python -m`` (appended, so it never shadows an installed module). Import errors propagate."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    return getattr(importlib.import_module(module_name), attr)


def load_class(spec: str) -> type[Proxy]:
    """Import ``package.module:ClassName`` and register it. The current directory is importable, as
    under ``python -m``, so ``myzc:MyProxy`` finds ``./myzc.py``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownProxyError(f"proxy spec {spec!r}: expected 'package.module:ClassName'")
    try:
        cls = import_attribute(module_name, attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownProxyError(f"proxy spec {spec!r}: cannot import ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - the plug-in's own module failed while importing
        raise UnknownProxyError(f"proxy spec {spec!r}: importing {module_name!r} failed: "
                                f"{type(exc).__name__}: {_first_line(exc)}") from exc
    problem = class_problem(cls)
    if problem:
        raise UnknownProxyError(f"proxy spec {spec!r}: {problem}")
    try:
        return register(cls)
    except ValueError as exc:
        raise UnknownProxyError(f"proxy spec {spec!r}: {exc}") from None


def names() -> list[str]:
    """Names of all usable registered proxies (built-in and installed plug-ins), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Proxy]:
    if ":" in name:
        return load_class(name)
    _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        if name in _BROKEN:
            raise UnknownProxyError(_BROKEN[name]) from None
        raise UnknownProxyError(
            f"unknown proxy {name!r}; expected one of {', '.join(sorted(_REGISTRY))} or 'package.module:ClassName'"
        ) from None


def get(name: str, **options: Any) -> Proxy:
    """A proxy instance by name (or ``module:Class``) with options overriding its reference defaults."""
    cls = get_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"bad options for proxy {name!r}: {exc}") from None
