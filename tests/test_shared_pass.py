"""One pass, many proxies (:mod:`proxies.shared_pass`): scored together, every proxy gives bit for bit what it
gives alone, on real NB201 networks and CIFAR-10 images (a disconnected cell's NaN included), and proxies whose
options would change the pass do not share it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import proxies
from bench import benchmarks
from bench.data import load_batch
from bench.runner import score_proxies
from proxies import Batch, Proxy, ProxyResult
from proxies.shared_pass import plan, score_together
from proxies.testing import SmallNb201Factory, synthetic_batch

SHARING = ["grad_norm", "snip", "fisher", "plain", "jacob_cov", "epe_nas", "zico"]
"""The proxies that read a shared pass at their reference options (grad_norm's default is the real batch)."""
GRADIENT_GROUP = {"grad_norm", "snip", "fisher", "plain", "zico"}
JACOBIAN_GROUP = {"jacob_cov", "epe_nas"}


@pytest.fixture(scope="module")
def nb201_networks(nb201_csv: Path) -> list[tuple[str, object]]:
    """Two sampled NB201 architectures and the first disconnected one of the table, with their factories."""
    nb201 = benchmarks.resolve("nb201")
    gt = nb201.ground_truth(nb201_csv)
    disconnected = next(a for a in gt.sample(None, 0) if nb201.is_degenerate(nb201.parse(a)))
    return [(arch, nb201.factory(nb201.parse(arch), "cifar10")) for arch in [*gt.sample(2, 0), disconnected]]


@pytest.fixture(scope="module")
def cifar10_batch(data_root: Path) -> Batch:
    """128 CIFAR-10 images: zico reads two mini-batches of 64, the others the first 64 (load_batch nests)."""
    return load_batch("cifar10", 128, 0, root=data_root)


def same(a: float, b: float) -> bool:
    """Bitwise equal floats, NaN equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_as_alone(zoo: list[Proxy], factory: object, batch: Batch, seed: int) -> list[ProxyResult]:
    together = score_together(zoo, factory, lambda _: batch, "cpu", seed)
    for proxy, shared in zip(zoo, together, strict=True):
        alone = proxy.score(factory, batch, "cpu", seed)
        assert isinstance(shared, ProxyResult), (proxy.name, shared)
        assert same(shared.value, alone.value), (proxy.name, proxy.options(), shared.value, alone.value)
        assert shared.components.keys() == alone.components.keys()
        assert all(same(shared.components[k], v) for k, v in alone.components.items()), proxy.name
        assert alone.shared_with == ()
    return together


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("network", [0, 1, 2], ids=["sampled0", "sampled1", "disconnected"])
def test_together_is_alone_bit_for_bit(nb201_networks, cifar10_batch: Batch, network: int, seed: int) -> None:
    arch, factory = nb201_networks[network]
    zoo = [proxies.get(name) for name in SHARING]
    together = assert_as_alone(zoo, factory, cifar10_batch, seed)
    for proxy, result in zip(zoo, together, strict=True):
        group = GRADIENT_GROUP if proxy.name in GRADIENT_GROUP else JACOBIAN_GROUP
        assert sorted(result.shared_with) == sorted(group - {proxy.name}), (arch, proxy.name)
    if network == 2:  # a disconnected cell: jacob_cov and epe_nas score NaN, shared or not
        assert math.isnan(together[SHARING.index("jacob_cov")].value)


def test_a_pass_is_shared_only_where_it_is_the_same_computation() -> None:
    """A different chunking or slice starts its own pass (snip on 64 images in one chunk, in two, on 32;
    epe_nas on 64 or 32); a pass whose chunks begin with another's covers it (snip on 128 images in two
    chunks reads zico's two mini-batches, snip on 32 the first chunk of snip on 64 in two)."""
    factory = SmallNb201Factory(channels=8)
    batch = synthetic_batch(factory, 128)
    zoo = [proxies.get("snip"), proxies.get("snip", split_data=2), proxies.get("snip", batch_size=32),
           proxies.get("epe_nas"), proxies.get("epe_nas", batch_size=32), proxies.get("zico"),
           proxies.get("snip", batch_size=128, split_data=2), proxies.get("grad_norm", variant="zennas")]
    groups = [sorted(g.positions) for g in plan(zoo, [batch] * len(zoo))]
    assert groups == [[0, 5, 6], [1, 2], [3], [4], [7]]
    together = assert_as_alone(zoo, factory, batch, seed=3)
    assert [len(r.shared_with) for r in together] == [2, 1, 1, 0, 0, 2, 2, 0]


def test_different_batches_do_not_share() -> None:
    factory = SmallNb201Factory()
    first, second = synthetic_batch(factory, 64, seed=0), synthetic_batch(factory, 64, seed=1)
    zoo = [proxies.get("snip"), proxies.get("plain")]
    assert len(plan(zoo, [first, second])) == 2 and len(plan(zoo, [first, first])) == 1


def test_runner_outcomes_are_the_proxies_alone_and_failures_stay_their_own() -> None:
    """score_proxies through the shared passes: the same values, the group's cost split evenly, and a proxy
    that cannot score (zico on 64 images) an error outcome that stops no one."""
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 64)
    zoo = [proxies.get(name) for name in SHARING]
    outcomes = score_proxies(factory, zoo, lambda _: batch, "cpu", 0)
    assert [o.proxy for o in outcomes] == zoo
    zico = outcomes[SHARING.index("zico")]
    assert zico.result is None and zico.error is not None and "128" in zico.error
    gradient = [o for o in outcomes if o.proxy.name in GRADIENT_GROUP - {"zico"}]
    assert len({o.result.seconds for o in gradient}) == 1 and len({o.call_seconds for o in gradient}) == 1
    for o in outcomes:
        if o.result is not None:
            assert o.batch is batch
            assert same(o.result.value, o.proxy.score(factory, batch, "cpu", 0).value), o.proxy.name


def test_ctrl_c_propagates() -> None:
    class Interrupting(SmallNb201Factory):
        def __call__(self, *args: object, **kwargs: object) -> torch.nn.Module:
            raise KeyboardInterrupt

    factory = Interrupting()
    batch = synthetic_batch(factory, 64)
    with pytest.raises(KeyboardInterrupt):
        score_proxies(factory, [proxies.get("snip"), proxies.get("plain")], lambda _: batch, "cpu", 0)


def test_the_store_records_which_scores_came_from_a_shared_pass(tmp_path, nb201_csv):
    from bench.runner import run_benchmark
    from bench.store import ResultStore

    gt = benchmarks.get("nb201").ground_truth(nb201_csv)
    run_benchmark(tmp_path / "s.db", ["snip", "plain", "params"], sample=2, seed=0, device="cpu", ground_truth=gt,
                  data_source="noise", progress=False)
    with ResultStore(tmp_path / "s.db", create=False) as store:
        rows = store.scores()
    shared = dict(zip(rows["proxy"], rows["shared_with"], strict=False))
    assert shared == {"snip": "plain", "plain": "snip", "params": None}
