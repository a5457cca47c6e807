"""#Params and FLOPs: a tiny conv net counted by hand, NB201 nets against the closed forms and the
ground-truth table."""

from __future__ import annotations

import pandas as pd
import pytest
from torch import Tensor, nn

import proxies
from proxies import SimpleFactory
from proxies.cost import count_flops
from search.spaces.nb201 import Nb201Factory, nb201_flops, nb201_param_count

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


class Tiny(nn.Module):
    """3×8×8 input: conv3x3(3→8, bias) → BN → ReLU → avgpool 2 → grouped conv3x3(8→8, groups 4) →
    global pool → linear(8→5, bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


TINY_PARAMS = (3 * 8 * 9 + 8) + 2 * 8 + (8 // 4 * 8 * 9) + (8 * 5 + 5)  # 232 + 16 + 144 + 45
TINY_CONV = 8 * 8 * 8 * 3 * 9 + 8 * 4 * 4 * 2 * 9 + 8 * 5  # conv1 + grouped conv (C_in/groups = 2) + linear
TINY_EXTRA = (
    8 * 8 * 8  # conv1 bias
    + 2 * 8 * 8 * 8  # BN
    + 8 * 8 * 8  # ReLU
    + 4 * 8 * 4 * 4  # 2x2 average pool, 128 outputs
    + 8 * 4 * 4  # global pooling, per input element
    + 5  # linear bias
)


def test_tiny_net_by_hand() -> None:
    factory = SimpleFactory(Tiny, (3, 8, 8), 5)
    assert proxies.get("params").score(factory).value == pytest.approx(TINY_PARAMS / 1e6, abs=1e-12)
    assert proxies.get("flops").score(factory).value == pytest.approx(TINY_CONV / 1e6, abs=1e-12)
    assert proxies.get("flops", count="all").score(factory).value == pytest.approx(
        (TINY_CONV + TINY_EXTRA) / 1e6, abs=1e-12)


@pytest.mark.parametrize("arch", [
    BEST,
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
])
@pytest.mark.parametrize("dataset", ["cifar10", "imagenet16"])
def test_nb201_counts_equal_the_closed_forms(arch: str, dataset: str) -> None:
    factory = Nb201Factory(arch, dataset)
    classes, resolution = factory.num_classes, factory.input_shape[1]
    for overrides in ({}, {"channels": 4, "cells_per_stage": 2}):
        net = factory(**overrides)
        params = sum(p.numel() for p in net.parameters())
        assert params == nb201_param_count(arch, classes, **overrides)
        assert count_flops(net, factory.input_shape) == nb201_flops(arch, classes, resolution, **overrides)
        assert count_flops(net, factory.input_shape, "all") == nb201_flops(
            arch, classes, resolution, **overrides, count_pooling=True)
    assert proxies.get("params").score(factory).value == pytest.approx(nb201_param_count(arch, classes) / 1e6)


def test_best_nb201_net_is_153_27_mflops_as_nats_counts() -> None:
    assert proxies.get("flops").score(Nb201Factory(BEST)).value == pytest.approx(153.27296, abs=1e-5)


def test_params_match_the_ground_truth_table(nb201_csv) -> None:
    table = pd.read_csv(nb201_csv, index_col="index")
    for index in (0, 1234, 15624):
        row = table.loc[index]
        for dataset in ("cifar10", "cifar100", "imagenet16"):
            value = proxies.get("params").score(Nb201Factory(row.arch_str, dataset)).value
            assert value == pytest.approx(row[f"params_{dataset}_M"], abs=1e-6)


def test_unknown_count_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        proxies.get("flops", count="macs")
