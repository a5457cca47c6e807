"""Benchmark registry: built-ins by name (imported on first use), plug-ins by entry point or ``module:Class``.

``get("nb201")`` returns the NAS-Bench-201 :class:`~bench.benchmarks.base.Benchmark`; ``names()`` lists
every name known without importing any benchmark module. Built-ins are listed lazily in :data:`BUILTIN`,
so a benchmark module that is missing or broken gives a one-line :class:`BenchmarkError` naming it when
it is asked for, and never stops the others from loading. Third-party benchmarks plug in through the
entry-point group :data:`ENTRY_POINT_GROUP` (``name = "package.module:Class"``) or a
``package.module:Class`` spec given wherever a benchmark name is (``--benchmark mypkg.bench:MyBench``).
A benchmark class is instantiated without arguments, once per process.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from bench.benchmarks.base import ArchSpecError, Benchmark, BenchmarkError, GroundTruthTable, PublishedScores

ENTRY_POINT_GROUP = "zenbench.benchmarks"
BUILTIN: dict[str, str] = {
    "nb201": "bench.benchmarks.nb201:Nb201Benchmark",
    "macro": "bench.benchmarks.macro:MacroBenchmark",
    "nb101": "bench.benchmarks.nb101:Nb101Benchmark",
}
"""Built-in benchmarks: name -> ``module:Class``, imported on first use."""
_REGISTERED: dict[str, type] = {}
_INSTANCES: dict[str, Benchmark] = {}

__all__ = ["ArchSpecError", "Benchmark", "BenchmarkError", "GroundTruthTable", "PublishedScores", "ENTRY_POINT_GROUP",
           "BUILTIN", "get", "get_class", "names", "register", "resolve"]


def register(cls: type) -> type:
    """Class decorator: make ``cls`` available as ``get(cls.name)`` (a name may not be taken twice)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or ":" in name:
        raise TypeError(f"{cls.__qualname__} must define a class attribute 'name' (a non-empty string without ':')")
    existing = _REGISTERED.get(name)
    if existing is not None and existing is not cls:
        raise BenchmarkError(f"benchmark name {name!r} is taken by {existing.__module__}.{existing.__qualname__}")
    _REGISTERED[name] = cls
    return cls


def _entry_point_specs() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every benchmark name: built-in, registered and installed plug-ins, sorted (nothing is imported)."""
    return sorted({*BUILTIN, *_REGISTERED, *_entry_point_specs()})


def _load(spec: str, what: str) -> type:
    """Import ``package.module:Class``; any failure is one line naming ``what`` and the spec."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise BenchmarkError(f"benchmark spec {spec!r}: expected 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # a broken plug-in fails with any exception type; it must not break the others
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BenchmarkError(f"{what} ({spec}) cannot be loaded: {type(exc).__name__}: {message}") from None
    if not isinstance(cls, type):
        raise BenchmarkError(f"{what} ({spec}) is not a class")
    return cls


def get_class(name: str) -> type:
    """The benchmark class of a name or ``package.module:Class`` spec (imported now if need be)."""
    if not isinstance(name, str) or not name.strip():
        raise BenchmarkError(f"benchmark {name!r}: expected a name ({', '.join(names())}) or 'package.module:Class'")
    name = name.strip()
    if ":" in name:
        return _load(name, f"benchmark spec {name!r}")
    if name in _REGISTERED:
        return _REGISTERED[name]
    spec = BUILTIN.get(name) or _entry_point_specs().get(name)
    if spec is None:
        raise BenchmarkError(f"unknown benchmark {name!r}; expected one of {', '.join(names())} "
                             f"or 'package.module:ClassName'")
    return _load(spec, f"benchmark {name!r}")


def get(name: str) -> Benchmark:
    """The benchmark instance of a name or ``package.module:Class`` spec (one instance per process)."""
    key = name.strip() if isinstance(name, str) else name
    if key in _INSTANCES:
        return _INSTANCES[key]
    cls = get_class(key)
    try:
        benchmark = cls()
    except Exception as exc:  # as in _load: a plug-in's constructor may fail in any way
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchmarkError(f"benchmark {key!r}: {cls.__qualname__}() failed: {message}") from None
    if not isinstance(benchmark, Benchmark):
        missing = [m for m in ("name", "title", "datasets", "networks", "parse", "format", "isomorphism_id",
                               "is_degenerate", "factory", "ground_truth", "mutation_space")
                   if not hasattr(benchmark, m)]
        raise BenchmarkError(f"benchmark {key!r}: {cls.__module__}:{cls.__qualname__} lacks "
                             f"{', '.join(missing)} of the Benchmark interface")
    _INSTANCES[key] = benchmark
    return benchmark


def resolve(benchmark: str | Benchmark) -> Benchmark:
    """A benchmark instance from a name, a spec or an instance (returned as is)."""
    return benchmark if not isinstance(benchmark, str) else get(benchmark)
