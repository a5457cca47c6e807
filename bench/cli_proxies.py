"""``zenbench proxies`` (what is registered, and what one proxy is) and ``zenbench check-proxy`` (the
conformance kit of :mod:`proxies.testing` on one proxy, check by check).

A thin layer over :func:`describe_proxy` and :func:`run_checks`, which a user can call from Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

import proxies as proxy_registry
from bench.cli_options import parse_proxy_options
from proxies import Proxy
from proxies.registry import broken_plugins

CHECKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("declarations (name, needs, direction, NaN policy, JSON description)",
     ("needs must", "higher_is_better must", "nan_policy must", "reference must", "describe()", "no proxy name")),
    ("determinism and caller state (same seed, same value; RNG, batch, networks untouched)",
     ("random-number state", "caller's batch", " gave ", "must be floats", "factory built", "factory builds",
      "the connected network (cpu)")),
    ("finite value on a connected NB201 network", ("non-finite value",)),
    ("CPU and CUDA agree", ("CPU gave", "(cuda)")),
    ("disconnected NB201 cells honour the NaN policy", ("disconnected cell",)),
    ("batch sizes", ("batch size",)),
)
"""The kit's checks in the order it runs them, with the phrases its failure messages contain."""


@dataclass(frozen=True)
class ProxyInfo:
    """What ``zenbench proxies`` prints about one proxy."""

    name: str
    proxy_class: str
    needs: str
    higher_is_better: bool
    input_kind: str
    paper: str
    """The first line of the class docstring (the paper and what the proxy measures)."""
    options: dict[str, Any]
    """Option name -> reference default."""
    option_types: dict[str, str]
    nan_policy: str
    population_rule: dict[str, Any] | None


def describe_proxy(spec: str) -> ProxyInfo:
    """The :class:`ProxyInfo` of a registered name or ``module:Class`` spec, from its reference defaults."""
    cls = proxy_registry.get_class(spec)
    try:
        proxy = cls()
    except Exception as exc:  # noqa: BLE001 - a plug-in whose defaults do not build
        raise ValueError(f"proxy {spec!r} cannot be built with its defaults: {type(exc).__name__}: {exc}") from None
    doc = inspect.getdoc(cls) or ""
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    rule = proxy.population_rule()
    return ProxyInfo(cls.name, f"{cls.__module__}:{cls.__qualname__}", proxy.needs, proxy.higher_is_better,
                     proxy.input_kind, doc.splitlines()[0] if doc else "", proxy.options(),
                     {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
                      for f in fields}, str(proxy.nan_policy), None if rule is None else rule.to_dict())


def _direction(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def format_listing() -> str:
    """The table of ``zenbench proxies``: every usable proxy with its options and their defaults on an
    indented line, then the plug-ins set aside and why."""
    rows, options = [("proxy", "needs", "direction", "input", "paper")], {}
    for name in proxy_registry.names():
        try:
            info = describe_proxy(name)
        except ValueError as exc:
            rows.append((name, "?", "?", "?", str(exc)))
            continue
        rows.append((info.name, info.needs, "higher" if info.higher_is_better else "lower", info.input_kind,
                     info.paper))
        options[info.name] = ", ".join(f"{k}={v!r}" for k, v in info.options.items()) or "none"
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = []
    for row in rows:
        lines.append("  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]]).rstrip())
        if row[0] in options:
            lines.append(f"    options: {options[row[0]]}")
    broken = broken_plugins()
    if broken:
        lines += ["", "plug-ins set aside (not usable):", *(f"  {name}: {why}" for name, why in sorted(broken.items()))]
    lines += ["", "zenbench proxies NAME describes one; --proxy-option NAME.KEY=VALUE sets an option."]
    return "\n".join(lines)


def format_rule(rule: dict[str, Any]) -> str:
    """A stored population rule as text: ``RULE of A, B`` with nested rules in brackets and weights named."""
    entries = [f"[{format_rule(c)}]" if isinstance(c, dict) else str(c) for c in rule["components"]]
    if rule.get("weights"):
        entries = [f"{w:g}×{e}" for w, e in zip(rule["weights"], entries, strict=True)]
    return f"{rule['rule']} of {', '.join(entries)}"


def format_info(info: ProxyInfo) -> str:
    """The text of ``zenbench proxies NAME``."""
    lines = [f"{info.name}: {info.paper}" if info.paper else info.name,
             f"  class: {info.proxy_class}",
             f"  needs: {info.needs}   direction: {_direction(info.higher_is_better)}   input: {info.input_kind}",
             f"  nan policy: {info.nan_policy}"]
    if info.population_rule:
        rule = info.population_rule
        lines.append(f"  population rule: {format_rule(rule)}")
    lines.append("  options (reference defaults):" if info.options else "  options: none")
    lines += [f"    {key} = {value!r}  ({info.option_types.get(key, '?')})" for key, value in info.options.items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class CheckOutcome:
    """One check of the kit: ``status`` is ``pass``, ``FAIL``, ``not run`` or
    ``skip`` (CPU/CUDA without CUDA); ``detail`` what it measured or
    the failure."""

    check: str
    status: str
    detail: str = ""


def run_checks(spec: str | type[Proxy], **options: Any) -> list[CheckOutcome]:
    """:func:`proxies.testing.check_proxy` on ``spec`` with ``options``, as one outcome per check. The kit
    stops at the first failure; the checks before it passed and the ones after it did not run."""
    from proxies.testing import check_proxy  # the kit imports the NB201 space: only when asked

    cls = proxy_registry.get_class(spec) if isinstance(spec, str) else spec
    try:
        report = check_proxy(cls, **options)
    except AssertionError as exc:
        message = str(exc).strip().splitlines()[0]
        failed = next((i for i, (_, phrases) in enumerate(CHECKS) if any(p in message for p in phrases)), None)
        if failed is None:  # a message the table does not know: say so rather than guess
            return [CheckOutcome("conformance kit", "FAIL", message)]
        return [CheckOutcome(name, "pass" if i < failed else "FAIL" if i == failed else "not run",
                             message if i == failed else "") for i, (name, _) in enumerate(CHECKS)]
    measured = [f"{report.proxy} ({', '.join(f'{k}={v!r}' for k, v in report.options.items()) or 'defaults'})",
                f"value {report.value:.6g}, twice the same",
                f"value {report.value:.6g}",
                "no CUDA here" if report.cuda_value is None else f"CUDA value {report.cuda_value:.6g}",
                ", ".join(f"{v:.6g}" for v in report.disconnected.values()),
                ", ".join(f"{b}: {v:.6g}" for b, v in report.batch_sizes.items()) or "takes no batch"]
    return [CheckOutcome(name, "skip" if report.cuda_value is None and name.startswith("CPU and CUDA") else "pass",
                         detail) for (name, _), detail in zip(CHECKS, measured, strict=True)]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser(
        "proxies", help="list the registered proxies, or describe one",
        description="Every usable proxy (built-ins and installed plug-ins) with what it needs, its direction, "
        "its input, its options and its paper; plug-ins that could not be loaded are listed with the reason. "
        "With NAME: that proxy's class, options with their reference defaults, NaN policy and population rule.")
    listing.add_argument("name", nargs="?", default=None, metavar="NAME",
                         help="a proxy name or package.module:Class spec to describe")
    listing.set_defaults(func=run_proxies)
    check = subparsers.add_parser(
        "check-proxy", help="run the conformance kit on a proxy (exit 1 when a check fails)",
        description="Run proxies.testing.check_proxy on a proxy: declarations, determinism and caller state, a "
        "finite value, CPU/CUDA agreement, disconnected cells, batch sizes. Prints pass/FAIL per check; exit 1 "
        "when one fails.")
    check.add_argument("spec", metavar="PROXY", help="a proxy name or package.module:Class spec (./module.py "
                       "is found, as python -m would)")
    check.add_argument("--proxy-option", action="append", default=[], metavar="KEY=VALUE",
                       help="an option of the proxy (repeatable; default: its reference defaults)")
    check.set_defaults(func=run_check_proxy)


def run_proxies(args: argparse.Namespace) -> int:
    print(format_listing() if args.name is None else format_info(describe_proxy(args.name)))
    return 0


def run_check_proxy(args: argparse.Namespace) -> int:
    sets = parse_proxy_options(args.proxy_option, default_proxy=args.spec).get(args.spec, [{}])
    if len(sets) > 1:
        raise ValueError("--proxy-option: check-proxy takes one value per option")
    outcomes = run_checks(args.spec, **sets[0])
    width = max(len(o.check) for o in outcomes)
    for outcome in outcomes:
        print(f"{outcome.status:>7}  {outcome.check.ljust(width)}  {outcome.detail}".rstrip())
    failed = any(o.status == "FAIL" for o in outcomes)
    name = proxy_registry.get_class(args.spec).name
    print(f"{name}: {'a check failed' if failed else 'all checks passed'}")
    return 1 if failed else 0
