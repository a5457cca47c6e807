"""Every registered proxy passes the conformance kit; the kit catches proxies that break each rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import proxies
from proxies import Batch, NetworkFactory, Proxy
from proxies.testing import ConformanceReport, SmallNb201Factory, check_proxy

FAST_OPTIONS: dict[str, dict] = {}
"""Per-proxy options that keep the kit fast where a proxy's reference protocol is costly."""


@pytest.mark.parametrize("name", proxies.names())
def test_registered_proxy_conforms(name: str) -> None:
    report = check_proxy(name, **FAST_OPTIONS.get(name, {}))
    assert isinstance(report, ConformanceReport)
    assert report.proxy == name
    assert math.isfinite(report.value)
    assert len(report.disconnected) == 2


def _weight_sum(factory: NetworkFactory) -> torch.Tensor:
    return sum(p.detach().abs().sum() for p in factory().parameters())


@dataclass
class Honest(Proxy):
    """A well-behaved proxy: the mean |weight| of a fresh net, plus a batch statistic when given one."""

    name: ClassVar[str] = "conformance_honest"
    nan_policy: ClassVar[str] = "always finite"
    batch_size: int = 4

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return float(_weight_sum(factory))


@dataclass
class Unseeded(Honest):
    name: ClassVar[str] = "conformance_unseeded"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return float(torch.randn(1, generator=torch.Generator().manual_seed(torch.seed())))


@dataclass
class BatchMutator(Honest):
    name: ClassVar[str] = "conformance_batch_mutator"
    needs: ClassVar[str] = "images"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        batch.images.mul_(1.0001)
        return float(batch.images.sum())


@dataclass
class NanOnDisconnected(Honest):
    name: ClassVar[str] = "conformance_nan"
    nan_policy: ClassVar[str] = "always finite"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        net = factory()
        return math.nan if not net.arch.is_connected else float(_weight_sum(factory))


@dataclass
class NanDeclared(NanOnDisconnected):
    name: ClassVar[str] = "conformance_nan_declared"
    nan_policy: ClassVar[str] = "NaN for a disconnected cell"


@dataclass
class SmallBatchCrash(Honest):
    name: ClassVar[str] = "conformance_small_batch"
    needs: ClassVar[str] = "images"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        if len(batch) < 2:
            raise RuntimeError("needs two images")
        return float(batch.images.std())


def test_a_well_behaved_proxy_passes() -> None:
    report = check_proxy(Honest)
    assert report.batch_sizes.keys() == {1, 2, 128}
    assert report.value == pytest.approx(float(_weight_sum_seeded(SmallNb201Factory(), 0)))


def _weight_sum_seeded(factory: NetworkFactory, seed: int) -> torch.Tensor:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _weight_sum(factory)


@pytest.mark.parametrize(("cls", "message"), [
    (Unseeded, "seed 0 gave"),
    (BatchMutator, "changed the caller's batch"),
    (NanOnDisconnected, "not allowed by its NaN policy"),
    (SmallBatchCrash, "crashed on batch size 1"),
])
def test_the_kit_catches_a_broken_proxy(cls: type[Proxy], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_proxy(cls)


def test_a_declared_nan_policy_is_honoured() -> None:
    report = check_proxy(NanDeclared)
    assert all(math.isnan(v) for v in report.disconnected.values())


@dataclass(frozen=True)
class SharedNetFactory:
    """A broken factory: every call returns the same network object, so a proxy's in-place changes leak."""

    net: torch.nn.Module
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10

    def __call__(self, **overrides: object) -> torch.nn.Module:
        return self.net


def test_the_kit_catches_changes_that_reach_the_callers_network() -> None:
    with pytest.raises(AssertionError, match="changed a network the factory built earlier"):
        check_proxy("synflow", factory=SharedNetFactory(SmallNb201Factory()()))
