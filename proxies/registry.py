"""Proxy registry: built-ins by decorator, external proxies by entry point or ``module:Class``."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from proxies.base import Proxy

ENTRY_POINT_GROUP = "zenbench.proxies"
_REGISTRY: dict[str, type[Proxy]] = {}
_entry_points_loaded = False


class UnknownProxyError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register(cls: type[Proxy]) -> type[Proxy]:
    """Class decorator: make ``cls`` available as ``proxies.get(cls.name)``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} must define a non-empty class attribute 'name'")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"proxy name {name!r} is taken by {existing.__module__}.{existing.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Proxy)):
            raise TypeError(f"entry point {ep.name!r} = {ep.value!r} is not a proxies.Proxy subclass")
        register(cls)


def load_class(spec: str) -> type[Proxy]:
    """Import ``package.module:ClassName`` and register it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownProxyError(f"proxy spec {spec!r}: expected 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownProxyError(f"proxy spec {spec!r}: cannot import ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, Proxy)):
        raise UnknownProxyError(f"proxy spec {spec!r} is not a proxies.Proxy subclass")
    return register(cls)


def names() -> list[str]:
    """Names of all registered proxies (built-in and installed plug-ins), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Proxy]:
    if ":" in name:
        return load_class(name)
    _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
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
