"""SWAP against activation patterns enumerated by hand and numpy's unique, the regularisation factor and the
reference protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import Batch, SimpleFactory
from proxies.mechanics import reinit
from proxies.swap import DistinctPatterns, count_distinct_rows, regular_factor, swap_count  # registers the proxy
from proxies.testing import CONNECTED_ARCH, DISCONNECTED_ARCHS, SmallNb201Factory, check_proxy, synthetic_batch


class Thresholds(nn.Module):
    """Scalar images s (N×1×1×1) through ReLU(s − t_j), one 1×1-conv unit per threshold: unit j is on for
    exactly the samples with s > t_j."""

    def __init__(self, thresholds: list[float]) -> None:
        super().__init__()
        self.units = nn.Conv2d(1, len(thresholds), 1)
        with torch.no_grad():
            self.units.weight.fill_(1.0)
            self.units.bias.copy_(-torch.tensor(thresholds))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.units(x)).flatten(1)


SAMPLES = torch.tensor([0.5, 1.5, 2.5, 3.5]).reshape(4, 1, 1, 1)


def test_patterns_of_threshold_units_by_hand() -> None:
    # per unit, (s_i > t)_i: t=0 → 1111, t=1 → 0111, t=2 → 0011, t=3 → 0001, t=4 → 0000, t=1.2 → 0111 again
    assert swap_count(Thresholds([0, 1, 2, 3, 4, 1.2]), SAMPLES) == 5
    assert swap_count(Thresholds([1.0, 1.2, 1.4]), SAMPLES) == 1
    assert swap_count(Thresholds([-1.0, 5.0]), SAMPLES) == 2  # all on, all off


class TwoLayers(nn.Module):
    """A 4-D ReLU, a second ReLU re-reading its output (same patterns) and a ReLU on 2-D input (not hooked)."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.again, self.flat = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.again(self.first(x))
        return self.flat(-x.flatten(1)) + y.flatten(1)


def test_union_over_layers_and_only_4d_relus() -> None:
    # 3 samples × 4 neurons; per-neuron patterns (over samples) 110, 011, 101, 110: 3 distinct
    x = torch.tensor([[1.0, -1.0, 2.0, 5.0], [1.0, 2.0, -3.0, 3.0], [-1.0, 1.0, 1.0, -2.0]]).reshape(3, 1, 1, 4)
    assert swap_count(TwoLayers(), x) == 3  # the 2-D ReLU's patterns (001, 100, 010, 001) would add more


@pytest.mark.parametrize("samples", [16, 30, 70])
def test_counts_equal_numpy_unique_of_sign_a_transposed(samples: int) -> None:
    """Table (≤ 20 samples), one-word (≤ 63) and multi-word paths against np.unique of sign(A)ᵀ's rows."""
    generator = torch.Generator().manual_seed(samples)
    layers = [torch.relu(torch.randn(samples, c, 3, 3, generator=generator) + 1.5) for c in (2, 3)]
    layers.append(layers[0].clone())  # repeats add no pattern
    patterns = DistinctPatterns(samples, torch.device("cpu"))
    for t in layers:
        patterns.add(t)
    a = np.concatenate([t.flatten(1).numpy() for t in layers], axis=1)
    assert len(patterns) == len(np.unique(np.sign(a).T, axis=0))


def test_count_distinct_rows() -> None:
    rows = torch.tensor([[1, 2], [1, 3], [1, 2], [0, 2], [0, 3], [0, 2]])
    assert count_distinct_rows(rows) == 4


def _weightless(batch_size: int, **options: object) -> float:
    """SWAP of a weight-free net (the Gaussian re-inits change nothing): the mean is the single count."""
    factory = SimpleFactory(lambda: nn.Sequential(nn.ReLU()), (1, 1, 4), 1)
    x = torch.tensor([[1.0, -1.0, 2.0, 5.0], [1.0, 2.0, -3.0, 3.0], [-1.0, 1.0, 1.0, -2.0]]).reshape(3, 1, 1, 4)
    return proxies.get("swap", batch_size=batch_size, repeats=4, **options).score(factory, Batch(x, None, 1)).value


def test_score_is_the_count_and_regularisation_multiplies_it() -> None:
    assert _weightless(3) == 3.0
    conv = nn.Conv2d(1, 6, 1)  # 12 parameters: P = 0.012 thousand
    assert regular_factor(conv, 1.0, 2.0) == pytest.approx(math.exp(-(0.012 - 1.0) ** 2 / 2.0), rel=1e-15)
    assert regular_factor(nn.Sequential(nn.ReLU()), 0.5, 0.25) == pytest.approx(math.exp(-1.0), rel=1e-15)
    assert _weightless(3, mu=0.5, sigma=0.25) == pytest.approx(3 * math.exp(-1.0), rel=1e-12)


def test_repeats_average_fresh_gaussian_inits() -> None:
    """The score is the mean count over `repeats` networks, each re-drawn N(0, 1); the first repeat's count is
    the count of the factory's network after one Gaussian init from the same seed."""
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 16)
    one = proxies.get("swap", repeats=1).score(factory, batch, seed=5).value
    torch.manual_seed(5)
    net = factory().train()
    reinit(net, "gaussian")
    assert one == swap_count(net, batch.images)
    four = proxies.get("swap", repeats=4).score(factory, batch, seed=5).value
    assert four != one and 4 * four == int(4 * four)  # a mean of four integer counts


def test_cells_of_none_edges_leave_one_pattern() -> None:
    """All-``none`` cells output zeros: every ReLU after them (reduction blocks, the final one) reads constants,
    and the stem has none, so every neuron shares the all-off pattern. Convs on dead-end edges still see data."""
    nones, dead_end = (SmallNb201Factory(arch) for arch in DISCONNECTED_ARCHS)
    assert proxies.get("swap", repeats=2).score(nones, synthetic_batch(nones, 16)).value == 1.0
    assert proxies.get("swap", repeats=2).score(dead_end, synthetic_batch(dead_end, 16)).value > 100
    connected = SmallNb201Factory(CONNECTED_ARCH)
    assert proxies.get("swap", repeats=2).score(connected, synthetic_batch(connected, 16)).value > 100


@pytest.mark.parametrize("options", [{}, {"mu": 10.0, "sigma": 100.0}])
def test_conformance(options: dict[str, float]) -> None:
    check_proxy("swap", repeats=2, **options)


def test_declares_the_reference_protocol() -> None:
    proxy = proxies.get("swap")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.repeats, proxy.mu, proxy.sigma) == (
        "images", "real", 16, 32, None, None)
    with pytest.raises(ValueError, match="both mu and sigma"):
        proxies.get("swap", mu=1.0)
    with pytest.raises(ValueError, match="option sigma=0.0: expected a number > 0 or None"):
        proxies.get("swap", mu=1.0, sigma=0.0)
