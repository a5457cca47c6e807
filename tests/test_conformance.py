"""Every registered proxy passes the conformance kit, and every built-in declares its reference protocol as
data under its old option hash; the kit catches proxies that break each rule."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import proxies
from proxies import Batch, NanPolicy, NetworkFactory, Proxy, Reference
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


BUILT_INS = [name for name in proxies.names() if proxies.get_class(name).__module__.startswith("proxies.")]
REFERENCE_OPTION_HASHES: dict[str, str] = {
    "az_nas": "deadacee33aa", "epe_nas": "68b815a49c2f", "fisher": "4fd04e2fe99c", "flops": "de7b575182b9",
    "grad_norm": "9154c7f7c07b", "grasp": "6f1fb958124d", "jacob_cov": "d23255cf33fd", "l2_norm": "617b06af0ecc",
    "meco": "b1a5b44d4734", "naswot": "3a324bf5bb91", "params": "c947f63dacb8", "plain": "de1d2d001c1b",
    "snip": "8c30c4e16a8a", "swap": "74e01ac32060", "synflow": "3a00052286f8", "tenas": "d69a0ed28120",
    "zen": "f28fd2bd9472", "zico": "ea3abf4f75b0", "ensemble": "5fa0451c9173",
}
"""``proxies.get(name).option_hash()`` of every built-in, recorded before options were declared with bounds.
tenas changed once on purpose (2026-12-02): its default init became PyTorch's, as the released TENAS code runs;
the earlier Kaiming default keeps its hash ``ea2fda0fc018`` as ``ntk_init="kaiming_fan_out",
lr_init="kaiming_fan_in"`` (:func:`test_the_earlier_tenas_default_keeps_its_hash`)."""


def test_the_earlier_tenas_default_keeps_its_hash() -> None:
    assert proxies.get("tenas", ntk_init="kaiming_fan_out", lr_init="kaiming_fan_in").option_hash() == "ea2fda0fc018"


def test_reference_option_hashes_are_unchanged() -> None:
    """Regression guard: stored scores are keyed by the option hash, so the reference protocol of every
    built-in must keep the hash it had (a new built-in adds its hash here)."""
    assert {name: proxies.get(name).option_hash() for name in BUILT_INS} == REFERENCE_OPTION_HASHES


@pytest.mark.parametrize("name", BUILT_INS)
def test_builtin_proxy_declares_its_reference_protocol_as_data(name: str) -> None:
    proxy = proxies.get(name)
    assert isinstance(proxy.reference, Reference) and proxy.reference.paper
    protocol = json.loads(json.dumps(proxy.protocol(), allow_nan=False))
    assert protocol["proxy"] == name and protocol["option_hash"] == proxy.option_hash()
    assert protocol["options"] == proxy.options() and protocol["needs"] == proxy.needs
    assert protocol["nan_policy"] == proxy.nan_policy.to_dict()
    assert protocol["reference"] == proxy.reference.to_dict()


def _weight_sum(factory: NetworkFactory) -> torch.Tensor:
    return sum(p.detach().abs().sum() for p in factory().parameters())


@dataclass
class Honest(Proxy):
    """A well-behaved proxy: the mean |weight| of a fresh net, plus a batch statistic when given one."""

    name: ClassVar[str] = "conformance_honest"
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset(), "always finite")
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
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset({"-inf", "+inf"}), "NaN is never allowed here")

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        net = factory()
        return math.nan if not net.arch.is_connected else float(_weight_sum(factory))


@dataclass
class NanDeclared(NanOnDisconnected):
    name: ClassVar[str] = "conformance_nan_declared"
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset({"nan"}), "NaN for a disconnected cell")


@dataclass
class NanDeclaredAsText(NanOnDisconnected):
    """A plug-in written when ``nan_policy`` was text: the text names the values it allows."""

    name: ClassVar[str] = "conformance_nan_text"
    nan_policy: ClassVar[str] = "NaN for a disconnected cell"


@dataclass
class BadReference(Honest):
    name: ClassVar[str] = "conformance_bad_reference"
    reference: ClassVar[str] = "Lin et al., ICCV 2021"


@dataclass
class SmallBatchCrash(Honest):
    name: ClassVar[str] = "conformance_small_batch"
    needs: ClassVar[str] = "images"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        if len(batch) < 2:
            raise RuntimeError("needs two images")
        return float(batch.images.std())


def test_a_well_behaved_proxy_passes() -> None:
    assert Honest().protocol()["reference"] is None  # a proxy may declare no reference
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
    (BadReference, "reference must be a proxies.base.Reference"),
])
def test_the_kit_catches_a_broken_proxy(cls: type[Proxy], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_proxy(cls)


@pytest.mark.parametrize("cls", [NanDeclared, NanDeclaredAsText])
def test_a_declared_nan_policy_is_honoured(cls: type[Proxy]) -> None:
    report = check_proxy(cls)
    assert all(math.isnan(v) for v in report.disconnected.values())


def test_a_nan_policy_is_a_typed_set_of_non_finite_values() -> None:
    assert NanDeclaredAsText.nan_policy == NanPolicy(frozenset({"nan"}), "NaN for a disconnected cell")
    policy = NanPolicy(frozenset({"-inf"}), "-inf when singular: κ = +inf")  # the prose does not widen it
    assert policy.allows(1.0) and policy.allows(-math.inf)
    assert not policy.allows(math.inf) and not policy.allows(math.nan)
    assert str(policy) == "-inf when singular: κ = +inf"
    assert policy.to_dict() == {"values": ["-inf"], "explanation": "-inf when singular: κ = +inf"}
    with pytest.raises(ValueError, match="expected a subset of"):
        NanPolicy(frozenset({"inf"}), "an unknown value")
    with pytest.raises(ValueError, match="needs an explanation"):
        NanPolicy(frozenset(), "")


def test_a_reference_is_plain_text_with_a_paper() -> None:
    reference = Reference("Lin et al., ICCV 2021", "ZenNAS compute_zen_score.py", {"init": "Gaussian"})
    assert reference.to_dict() == {"paper": "Lin et al., ICCV 2021", "code": "ZenNAS compute_zen_score.py",
                                   "choices": {"init": "Gaussian"}}
    with pytest.raises(ValueError, match="needs a paper"):
        Reference("")
    with pytest.raises(ValueError, match="must be text"):
        Reference("a paper", choices={"batch": 64})


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
