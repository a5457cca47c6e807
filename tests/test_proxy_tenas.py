"""TE-NAS: linear regions, condition number, crops and the population rank sum against hand computations;
the thin networks TENAS scores; the NaN policy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import proxies
from bench.statistics import apply_population_rule
from proxies import Batch, ProxyError, SimpleFactory
from proxies.base import PopulationRule, VariantUnavailable
from proxies.tenas import (
    LR_COMPONENT,
    NTK_COMPONENT,
    activation_patterns,
    condition_number,
    count_distinct,
    random_crops,
)
from proxies.testing import CONNECTED_ARCH, DISCONNECTED_ARCHS, SmallNb201Factory, synthetic_batch
from search.spaces.nb201 import Nb201Factory


class ThresholdNet(nn.Module):
    """1-D input x (as an N×1×1×1 image) through ReLU(x − t_j) for thresholds t: the linear regions are
    the intervals between consecutive thresholds."""

    def __init__(self, thresholds: list[float]) -> None:
        super().__init__()
        self.units = nn.Conv2d(1, len(thresholds), 1)
        with torch.no_grad():
            self.units.weight.fill_(1.0)
            self.units.bias.copy_(-torch.tensor(thresholds))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.units(x)).flatten(1)


def test_linear_regions_of_a_one_layer_relu_net_by_hand() -> None:
    net = ThresholdNet([-1.0, 0.0, 1.0, 2.0])
    everywhere = torch.linspace(-3, 3, 61).reshape(-1, 1, 1, 1)
    assert count_distinct(activation_patterns(net, everywhere)) == 5  # 4 breakpoints, 5 intervals
    one_interval = torch.linspace(0.1, 0.9, 9).reshape(-1, 1, 1, 1)
    assert count_distinct(activation_patterns(net, one_interval)) == 1
    two_sides = torch.tensor([-0.5, 1.5, -0.7, 1.2]).reshape(-1, 1, 1, 1)
    assert count_distinct(activation_patterns(net, two_sides)) == 2


def test_patterns_pack_every_unit_and_count_distinct_rows() -> None:
    net = ThresholdNet([float(t) for t in range(10)])  # 10 units: the packed code needs 2 bytes
    x = torch.tensor([-1.0, 0.5, 9.5]).reshape(-1, 1, 1, 1)
    codes = activation_patterns(net, x)
    assert codes.dtype == torch.uint8 and codes.shape == (3, 2)
    assert codes.tolist() == [[0, 0], [1, 0], [255, 3]]  # units on: none; t=0; all ten
    assert count_distinct(torch.tensor([[1, 2], [1, 2], [0, 2], [1, 3]], dtype=torch.uint8)) == 3


def test_condition_number_and_its_nan_policy() -> None:
    assert condition_number(torch.diag(torch.tensor([4.0, 1.0, 2.0]))) == pytest.approx(4.0)
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    gram = rotation @ torch.diag(torch.tensor([10.0, 0.5], dtype=torch.float64)) @ rotation.T
    assert condition_number(gram) == pytest.approx(20.0)
    assert condition_number(torch.zeros(3, 3)) == math.inf  # J = 0: constant output
    assert condition_number(torch.ones(2, 2)) == math.inf  # singular
    assert condition_number(torch.tensor([[1.0, math.nan], [math.nan, 1.0]])) == math.inf


def test_random_crops_are_distinct_single_channel_windows_of_the_images() -> None:
    n, c, h, w = 2, 3, 5, 6
    # every pixel holds its own (image, channel, row, column) address
    images = torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)
    torch.manual_seed(0)
    crops = random_crops(images, 40, 3)
    assert crops.shape == (40, 1, 3, 3)
    corner = crops[:, 0, 0, 0]
    offsets = torch.tensor([[0, 1, 2], [w, w + 1, w + 2], [2 * w, 2 * w + 1, 2 * w + 2]], dtype=torch.float32)
    torch.testing.assert_close(crops[:, 0], corner[:, None, None] + offsets)  # a contiguous 3x3 window
    row, col = (corner.long() // w) % h, corner.long() % w
    assert bool((row <= h - 3).all() and (col <= w - 3).all())  # inside the image
    assert len(set(corner.tolist())) == 40  # 2·3·3·4 = 72 places: no crop twice
    torch.manual_seed(0)
    torch.testing.assert_close(random_crops(images, 40, 3), crops)  # the seeded global RNG decides
    with pytest.raises(ProxyError, match="7x7 crops"):
        random_crops(images, 4, 7)


def test_population_rule_is_the_rank_sum_of_its_two_components() -> None:
    assert proxies.get("tenas").population_rule() == PopulationRule("rank_sum", (NTK_COMPONENT, LR_COMPONENT))
    assert proxies.get("tenas", rank_precision=3).population_rule().precision == 3
    assert proxies.get("tenas", parts="ntk").population_rule() is None  # one measure: nothing to combine
    # applied to TE-NAS components by hand: ranks among the four valid rows: ntk (−inf, −10, −2, −2) →
    # 1, 2, 3.5, 3.5; lr (1, 3, 5, 8) → 1..4; a NaN component leaves its row out
    ntk = np.array([-10.0, -2.0, -math.inf, -2.0, math.nan])
    lr = np.array([5.0, 3.0, 1.0, 8.0, 4.0])
    rule = proxies.get("tenas").population_rule().to_dict()
    combined = apply_population_rule(rule, {NTK_COMPONENT: ntk, LR_COMPONENT: lr})
    np.testing.assert_array_equal(combined, [2 + 3, 3.5 + 2, 1 + 1, 3.5 + 4, math.nan])


@dataclass
class RecordingFactory:
    """An NB201 factory that records the variant and overrides it was called with."""

    arch: str = CONNECTED_ARCH
    input_shape: tuple[int, int, int] = (3, 16, 16)
    num_classes: int = 10
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, **overrides: Any) -> nn.Module:
        self.calls.append(overrides)
        return SmallNb201Factory(self.arch)(**overrides)


def small_batch(n: int = 8, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, 16, 16, generator=generator), None, 10, "test:gaussian")


def test_default_protocol_scores_tenas_thin_networks() -> None:
    factory = RecordingFactory()
    proxy = proxies.get("tenas", batch_size=8, lr_samples=300, lr_batch=100)
    result = proxy.score(factory, small_batch(), "cpu", seed=0)
    assert factory.calls == [{"variant": "tenas-ntk"}, {"variant": "tenas-lr"}]  # asked for by name
    assert set(result.components) == {NTK_COMPONENT, LR_COMPONENT}
    assert result.value == result.components[NTK_COMPONENT] < -1  # −κ, and κ > 1
    assert 1 < result.components[LR_COMPONENT] <= 300
    # each measure has its own seed: the same value whether or not the other one runs
    lr_only = proxies.get("tenas", batch_size=8, lr_samples=300, lr_batch=100, parts="lr")
    assert lr_only.score(factory, small_batch(), "cpu", seed=0).value == result.components[LR_COMPONENT]
    ntk_only = proxies.get("tenas", batch_size=8, parts="ntk")
    assert ntk_only.score(factory, small_batch(), "cpu", seed=0).value == result.value


def test_nb201_builds_the_thin_variants_tenas_asks_for() -> None:
    ntk, lr = Nb201Factory(CONNECTED_ARCH)(variant="tenas-ntk"), Nb201Factory(CONNECTED_ARCH)(variant="tenas-lr")
    assert ntk.stem[0].out_channels == 3 and len(ntk.cells) == 3 + 2  # C=3, one cell per stage, 2 reductions
    assert isinstance(lr.stem, nn.Identity) and len(lr.cells) == 1 and lr.classifier.in_features == 1
    assert lr(torch.zeros(2, 1, 3, 3)).shape == (2, 10)  # TENAS's 3x3 single-channel crops go straight in
    with pytest.raises(VariantUnavailable, match="NAS-Bench-201 has no 'no-reslink' network"):
        Nb201Factory(CONNECTED_ARCH)(variant="no-reslink")


def test_full_network_option_and_a_factory_without_variants() -> None:
    def build(**overrides: Any) -> nn.Module:
        if overrides:
            raise TypeError(f"unexpected overrides {sorted(overrides)}")
        return SmallNb201Factory()()

    factory = SimpleFactory(build, input_shape=(3, 16, 16))
    with pytest.raises(ProxyError, match="network='full'") as error:
        proxies.get("tenas", batch_size=8).score(factory, small_batch(), "cpu")
    assert "tenas-ntk" in str(error.value) and "\n" not in str(error.value)

    def no_variants(variant: str | None = None, **overrides: Any) -> nn.Module:
        raise VariantUnavailable(f"toy benchmark has no {variant!r} network")

    with pytest.raises(ProxyError, match="toy benchmark has no 'tenas-ntk' network"):
        proxies.get("tenas", batch_size=8).score(SimpleFactory(no_variants, input_shape=(3, 16, 16)),
                                                 small_batch(), "cpu")
    result = proxies.get("tenas", batch_size=8, network="full").score(factory, small_batch(), "cpu")
    assert math.isfinite(result.value)
    assert result.components[LR_COMPONENT] == 8  # saturated: each image in a region of its own


def test_disconnected_cell_scores_minus_inf_ntk_and_one_region() -> None:
    factory = SmallNb201Factory(DISCONNECTED_ARCHS[0])
    result = proxies.get("tenas", batch_size=8, lr_samples=200, lr_batch=100).score(
        factory, synthetic_batch(factory, 8), "cpu")
    assert result.value == result.components[NTK_COMPONENT] == -math.inf
    assert result.components[LR_COMPONENT] == 1  # every ReLU sees a constant


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "batch_size"), ({"repeat": 0}, "repeat"), ({"network": "wide"}, "network"),
    ({"parts": "both"}, "parts"), ({"ntk_init": "xavier"}, "ntk_init"), ({"rank_precision": 0}, "rank_precision"),
])
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proxies.get("tenas", **options)


def test_thin_protocol_on_real_cifar10(data_root: Any) -> None:
    from bench.data import load_batch

    batch = load_batch("cifar10", 16, seed=0, root=data_root)
    proxy = proxies.get("tenas", batch_size=16, lr_samples=600, lr_batch=200)
    best = proxy.score(Nb201Factory(CONNECTED_ARCH), batch, "cpu", seed=0)
    no_conv = proxy.score(Nb201Factory("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|"
                                       "avg_pool_3x3~1|skip_connect~2|"), batch, "cpu", seed=0)
    assert math.isfinite(best.value) and math.isfinite(no_conv.value)
    # a cell without convolutions has one ReLU (the final one, 9 units) in TENAS's 1-cell network
    assert no_conv.components[LR_COMPONENT] <= 2**9
    assert best.components[LR_COMPONENT] > no_conv.components[LR_COMPONENT]
