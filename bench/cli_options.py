"""Command-line options shared by ``zenbench score``, ``bench`` and ``search``: per-proxy options,
``--proxies all``, ``--threads``, ``--init-seeds`` / ``--repeats``.

Plain functions (no argparse state) so the Python API and the tests call them directly:

- :func:`parse_proxy_options` reads ``PROXY.KEY=VALUE`` words (``--proxy-option``, repeatable). A value
  is a Python literal when it reads as one (``16``, ``True``, ``(1, 2)``), else the text. The same
  ``PROXY.KEY`` given twice with different values asks for that proxy once per value (both are scored and
  stored, told apart by their option hash); several repeated keys of one proxy give every combination.
- :func:`expand_proxies` reads ``--proxies``: names and ``package.module:Class`` specs, comma-separated;
  ``all`` stands for every usable registered proxy (built-ins and installed plug-ins, sorted) but
  composites (``ensemble``).
- :func:`make_proxies` builds the proxy instances of a ``--proxies`` list with their options.
- :func:`add_threads_option` / :func:`apply_threads`: ``--threads N`` sets torch's intra-op threads.
- :func:`parse_init_seeds`: ``--init-seeds 0,1,2`` or ``--repeats N`` (seeds ``seed..seed+N-1``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import proxies as proxy_registry
from proxies import Proxy
from proxies.options import expected_value, option_types

ProxyOptions = dict[str, list[dict[str, Any]]]
"""Per proxy spec (as written in ``--proxies``): the option sets to score it with (one or more)."""


class OptionError(ValueError):
    """A command-line option value that cannot be read (one line naming the option and what was expected)."""


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_proxy_option(text: str, default_proxy: str | None = None) -> tuple[str, str, Any]:
    """One ``PROXY.KEY=VALUE`` word as ``(proxy, key, value)``. ``PROXY`` may be a ``module:Class`` spec
    (the key is what follows its last dot). With ``default_proxy`` (``search``: one proxy), ``KEY=VALUE``
    without a proxy means that proxy."""
    left, sep, value = str(text).partition("=")
    proxy, dot, key = left.strip().rpartition(".")
    if not dot and default_proxy is not None:
        proxy = default_proxy
    if not sep or not key.isidentifier() or not proxy or proxy != proxy.strip():
        example = "KEY=VALUE or PROXY.KEY=VALUE" if default_proxy is not None else "PROXY.KEY=VALUE"
        raise OptionError(f"--proxy-option {text!r}: expected {example}, e.g. zen.batch_size=16")
    return proxy, key, _literal(value)


def parse_proxy_options(values: Sequence[str], default_proxy: str | None = None) -> ProxyOptions:
    """``--proxy-option`` words -> per proxy, the option sets to score it with (every combination of the
    values given for each key, in the order given; a key given once is in every set)."""
    per_proxy: dict[str, dict[str, list[Any]]] = {}
    for text in values:
        proxy, key, value = parse_proxy_option(text, default_proxy)
        choices = per_proxy.setdefault(proxy, {}).setdefault(key, [])
        if value in choices:
            raise OptionError(f"--proxy-option {text!r} is given twice")
        choices.append(value)
    return {proxy: [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*keys.values())]
            for proxy, keys in per_proxy.items()}


def expand_proxies(text: str) -> list[str]:
    """``--proxies`` as a list of specs: comma-separated names or ``package.module:Class``; ``all`` is
    every usable registered proxy, sorted, but composites (``ensemble``, whose members ``all`` scores
    already). Repeats are dropped (first kept)."""
    words = [word.strip() for word in str(text).split(",") if word.strip()]
    if not words:
        raise OptionError(f"--proxies {text!r}: expected a comma-separated list, e.g. zen,synflow,params, or all")
    expanded: list[str] = []
    everything = [n for n in proxy_registry.names() if not proxy_registry.get_class(n).composite]
    for word in words:
        for name in (everything if word.lower() == "all" else [word]):
            if name not in expanded:
                expanded.append(name)
    return expanded


def make_proxies(specs: Sequence[str], options: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 batch_size: int | None = None) -> list[Proxy]:
    """The proxy instances of ``specs`` (from :func:`expand_proxies`) with their option sets (from
    :func:`parse_proxy_options`; a spec without options gets its reference defaults), in order.
    ``batch_size`` is the ``batch_size`` option of every proxy that has one and was not given one.
    Options for a proxy that is not in ``specs`` are an error."""
    options = dict(options or {})
    stray = [name for name in options if name not in specs]
    if stray:
        raise OptionError(f"--proxy-option for {', '.join(map(repr, stray))}, which is not among --proxies "
                          f"({', '.join(specs)})")
    made: list[Proxy] = []
    for spec in specs:
        cls = proxy_registry.get_class(spec)
        fields = {f.name for f in _fields(cls)}
        for chosen in options.get(spec) or [{}]:
            unknown = sorted(set(chosen) - fields)
            if unknown:
                raise OptionError(f"--proxy-option {spec}.{unknown[0]}: proxy {spec!r} has no option "
                                  f"{unknown[0]!r}; its options: {', '.join(sorted(fields)) or 'none'}")
            hints = option_types(cls)
            metadata = {f.name: f.metadata for f in _fields(cls)}
            for key, value in chosen.items():
                expected = expected_value(hints.get(key), value, metadata.get(key))
                if expected:
                    raise OptionError(f"--proxy-option {spec}.{key}={value!r}: expected {expected}")
            extra = {"batch_size": batch_size} if batch_size is not None and "batch_size" in fields \
                and "batch_size" not in chosen else {}
            made.append(proxy_registry.get(spec, **chosen, **extra))
    seen: set[tuple[str, str]] = set()
    for proxy in made:
        key = (proxy.name, proxy.option_hash())
        if key in seen:
            raise OptionError(f"proxy {proxy.name!r} is asked for twice with the same options")
        seen.add(key)
    return made


def _fields(cls: type) -> tuple[Any, ...]:
    return dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()


def add_threads_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N``: torch's CPU threads (default: torch's own choice)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (torch.set_num_threads); default: torch's choice. Every "
                        "stored cost records the thread count, the device and the machine's load")


def apply_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n`` (``None``: leave them) and return the count in effect."""
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise OptionError(f"--threads {n!r}: expected a positive integer")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def add_seed_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--init-seeds 0,1,2`` and ``--repeats N`` (the proxies' init seeds; default: the one seed 0)."""
    parser.add_argument("--init-seeds", default=None, metavar="LIST",
                        help="the proxies' init seeds, comma-separated, e.g. 0,1,2: each architecture is scored "
                        "once per seed (default 0)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="score each architecture under init seeds 0..N-1 (instead of --init-seeds)")


def parse_init_seeds(text: str | None = None, repeats: int | None = None) -> list[int]:
    """``--init-seeds`` (comma-separated non-negative integers) or ``--repeats N`` (``0..N-1``); neither:
    ``[0]``."""
    if text is not None and repeats is not None:
        raise OptionError("--init-seeds and --repeats: give one")
    if repeats is not None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise OptionError(f"--repeats {repeats!r}: expected a positive integer")
        return list(range(repeats))
    if text is None:
        return [0]
    seeds: list[int] = []
    for word in str(text).split(","):
        try:
            seed = int(word.strip())
        except ValueError:
            seed = -1
        if seed < 0 or seed >= 2**63:
            raise OptionError(f"--init-seeds {text!r}: expected comma-separated non-negative integers, e.g. 0,1,2")
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def add_proxy_option_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--proxy-option PROXY.KEY=VALUE``, repeatable (read with :func:`parse_proxy_options`)."""
    parser.add_argument("--proxy-option", action="append", default=[], metavar="PROXY.KEY=VALUE",
                        help="an option of one proxy, repeatable, e.g. zen.bn_stat=batch; the same PROXY.KEY "
                        "given with several values scores that proxy once per value (all stored)")
