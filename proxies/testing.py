"""Conformance kit: ``check_proxy(MyProxy)`` checks any proxy, built-in or a user's, in one line.

It checks that the proxy

- declares what it is (name, needs, direction, NaN policy, reference where it has one) and describes
  itself (``describe()``, ``protocol()``) as plain JSON;
- gives the same value twice for the same seed, and leaves the caller's network, factory, batch and
  random-number state exactly as they were;
- gives a finite value on a small connected NAS-Bench-201 network;
- gives the same value on CUDA as on the CPU, within tolerance, when CUDA is present;
- never crashes on a disconnected NAS-Bench-201 cell: the value is finite or one of the non-finite
  values its ``nan_policy`` (a :class:`~proxies.base.NanPolicy`) allows;
- works for batch sizes 1 to 128: through its ``batch_size`` option when it has one, otherwise by
  feeding batches of those sizes to a proxy that consumes whole batches.

Networks are NB201 networks narrowed to ``channels=4, cells_per_stage=1`` so the kit stays fast; a
proxy that needs a variant (e.g. TE-NAS's thin networks) asks the factory for it by name (``variant=``).
The kit is test tooling: unlike the proxies it imports the NB201 search space, lazily.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from proxies.base import Batch, NanPolicy, NetworkFactory, Proxy, ProxyResult, Reference
from proxies.registry import get_class

CONNECTED_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
"""The best NB201 CIFAR-10 cell (test accuracy 94.37 %)."""
DISCONNECTED_ARCHS = (
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|",
)
"""A cell of ``none`` edges only, and a cell with convolutions whose output node has no input."""
_NEEDS = ("nothing", "images", "images+labels")


@dataclass(frozen=True)
class SmallNb201Factory:
    """A :class:`NetworkFactory` of narrow NB201 networks (defaults: 4 channels, one cell per stage);
    a named ``variant`` (NB201's, e.g. ``tenas-ntk``) and then keyword overrides win over these defaults."""

    arch: str = CONNECTED_ARCH
    channels: int = 4
    cells_per_stage: int = 1
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)

    def __call__(self, variant: str | None = None, **overrides: Any) -> nn.Module:
        from search.spaces.nb201 import Nb201Network, variant_overrides

        kwargs = {"channels": self.channels, "cells_per_stage": self.cells_per_stage,
                  "num_classes": self.num_classes, **variant_overrides(variant), **overrides}
        return Nb201Network(self.arch, **kwargs)


@dataclass(frozen=True)
class ConformanceReport:
    """What :func:`check_proxy` measured; every check it reports passed."""

    proxy: str
    options: dict[str, Any]
    value: float
    """Value on the small connected network, seed 0, CPU."""
    components: dict[str, float]
    disconnected: dict[str, float]
    """Value per disconnected architecture string."""
    batch_sizes: dict[int, float] = field(default_factory=dict)
    """Value per checked batch size (empty for a proxy that takes no batch)."""
    cuda_value: float | None = None
    seconds: float = math.nan


def _fail(proxy: str, message: str) -> None:
    raise AssertionError(f"proxy {proxy!r}: {message}")


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _policy_text(policy: NanPolicy) -> str:
    return f"({', '.join(sorted(policy.values)) or 'always finite'}: {policy.explanation!r})"


def synthetic_batch(factory: NetworkFactory, size: int = 128, seed: int = 0) -> Batch:
    """Gaussian images of the factory's input shape with uniform random labels (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn((size, *factory.input_shape), generator=generator)
    labels = torch.randint(0, factory.num_classes, (size,), generator=generator)
    return Batch(images, labels, factory.num_classes, source=f"conformance:gaussian:seed{seed}")


def check_proxy(
    proxy_class: type[Proxy] | str,
    factory: NetworkFactory | None = None,
    batch_sizes: Sequence[int] = (1, 2, 128),
    rtol: float = 1e-4,
    atol: float = 1e-4,
    seed: int = 0,
    **options: Any,
) -> ConformanceReport:
    """Run every conformance check on ``proxy_class`` (a class, a registered name or a
    ``module:Class`` spec) built with ``options``. Raises ``AssertionError`` naming the failed check.

    ``factory`` replaces the small connected NB201 factory for the determinism, caller-state, CUDA and
    batch-size checks; the disconnected-cell checks always use small NB201 networks. ``rtol``/``atol``
    bound the CPU-CUDA difference.
    """
    t0 = time.perf_counter()
    cls = get_class(proxy_class) if isinstance(proxy_class, str) else proxy_class
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise AssertionError(f"{cls!r} has no proxy name")
    proxy = cls(**options)
    if proxy.needs not in _NEEDS:
        _fail(name, f"needs must be one of {_NEEDS}, got {proxy.needs!r}")
    if not isinstance(proxy.higher_is_better, bool):
        _fail(name, f"higher_is_better must be a bool, got {proxy.higher_is_better!r}")
    if not isinstance(proxy.nan_policy, NanPolicy):
        _fail(name, f"nan_policy must be a proxies.base.NanPolicy (the non-finite values a degenerate network may "
                    f"score, and when), got {proxy.nan_policy!r}")
    if proxy.reference is not None and not isinstance(proxy.reference, Reference):
        _fail(name, f"reference must be a proxies.base.Reference (paper, code, choices) or None, got "
                    f"{proxy.reference!r}")
    try:
        json.dumps(proxy.protocol())  # describe() and more
    except (TypeError, ValueError) as exc:
        _fail(name, f"describe() and protocol() must be plain JSON: {exc}")

    factory = factory or SmallNb201Factory()
    batch = synthetic_batch(factory, max([128, *batch_sizes]), seed)
    with torch.random.fork_rng():
        result = _check_determinism_and_state(name, proxy, factory, batch, seed)
        if not math.isfinite(result.value):
            _fail(name, f"non-finite value {result.value} on a connected network")
        cuda_value = None
        if torch.cuda.is_available():
            cuda_value = _score(name, proxy, factory, batch, seed, "the connected network", "cuda").value
            if not math.isclose(cuda_value, result.value, rel_tol=rtol, abs_tol=atol):
                _fail(name, f"CPU gave {result.value!r}, CUDA gave {cuda_value!r} (rtol {rtol}, atol {atol})")
        disconnected = {}
        for arch in DISCONNECTED_ARCHS:
            small = SmallNb201Factory(arch)
            value = _score(name, proxy, small, synthetic_batch(small, len(batch), seed), seed,
                           f"disconnected cell {arch}").value
            if not proxy.nan_policy.allows(value):
                _fail(name, f"disconnected cell {arch} scored {value}, not allowed by its NaN policy "
                            f"{_policy_text(proxy.nan_policy)}")
            disconnected[arch] = value
        by_batch = _check_batch_sizes(name, cls, proxy, options, factory, batch, batch_sizes, seed)
    return ConformanceReport(name, proxy.options(), result.value, result.components, disconnected, by_batch,
                             cuda_value, time.perf_counter() - t0)


def _score(name: str, proxy: Proxy, factory: NetworkFactory, batch: Batch, seed: int, what: str,
           device: str = "cpu") -> ProxyResult:
    try:
        return proxy.score(factory, batch, device, seed)
    except Exception as exc:  # the kit reports any crash as a failed check
        raise AssertionError(f"proxy {name!r} crashed on {what} ({device}): {type(exc).__name__}: {exc}") from exc


def _check_determinism_and_state(name: str, proxy: Proxy, factory: NetworkFactory, batch: Batch,
                                 seed: int) -> ProxyResult:
    torch.manual_seed(seed)
    callers_net = factory()
    net_before = {k: v.clone() for k, v in callers_net.state_dict().items()}
    images, labels = batch.images.clone(), None if batch.labels is None else batch.labels.clone()
    rng_before = torch.get_rng_state()

    first = _score(name, proxy, factory, batch, seed, "the connected network")
    if not torch.equal(torch.get_rng_state(), rng_before):
        _fail(name, "scoring changed the caller's random-number state")
    if not torch.equal(batch.images, images) or (labels is not None and not torch.equal(batch.labels, labels)):
        _fail(name, "scoring changed the caller's batch")
    second = _score(name, proxy, factory, batch, seed, "the connected network")
    if not _same(first.value, second.value):
        _fail(name, f"seed {seed} gave {first.value!r}, then {second.value!r}")
    if set(first.components) != set(second.components) or not all(
            _same(first.components[k], second.components[k]) for k in first.components):
        _fail(name, f"seed {seed} gave components {first.components}, then {second.components}")
    if not isinstance(first.value, float) or not all(isinstance(v, float) for v in first.components.values()):
        _fail(name, "value and components must be floats")
    net_after = callers_net.state_dict()
    changed = [k for k, v in net_before.items() if k not in net_after or not torch.equal(v, net_after[k])]
    if changed:
        _fail(name, f"scoring changed a network the factory built earlier: {', '.join(changed[:5])}")
    torch.manual_seed(seed)
    rebuilt = factory().state_dict()
    changed = [k for k, v in net_before.items() if k not in rebuilt or not torch.equal(v, rebuilt[k])]
    if changed:
        _fail(name, f"scoring changed what the factory builds: {', '.join(changed[:5])}")
    return first


def _check_batch_sizes(name: str, cls: type[Proxy], proxy: Proxy, options: dict[str, Any],
                       factory: NetworkFactory, batch: Batch, batch_sizes: Sequence[int],
                       seed: int) -> dict[int, float]:
    has_option = "batch_size" in {f.name for f in dataclasses.fields(cls)}
    if not has_option and (proxy.needs == "nothing" or proxy.batch_size is not None):
        return {}  # a fixed-size or batch-free proxy: nothing to vary
    values = {}
    for size in batch_sizes:
        sized = cls(**{**options, "batch_size": size}) if has_option else proxy
        value = _score(name, sized, factory, batch.take(size), seed, f"batch size {size}").value
        if not proxy.nan_policy.allows(value):
            _fail(name, f"batch size {size} scored {value}, not allowed by its NaN policy "
                        f"{_policy_text(proxy.nan_policy)}")
        values[size] = value
    return values
