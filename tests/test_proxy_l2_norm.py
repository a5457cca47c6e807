"""l2_norm against weights set by hand and against the default init the factory draws."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import proxies
import proxies.l2_norm  # noqa: F401 - registers l2_norm
from proxies import SimpleFactory
from proxies.testing import DISCONNECTED_ARCHS, SmallNb201Factory, check_proxy

CONV = [[[[3.0, 0.0], [0.0, 4.0]]], [[[1.0, 2.0], [2.0, 4.0]]]]  # 2 output channels: Frobenius norm √(9+16+1+4+4+16)
FC = [[1.0, -2.0], [2.0, 0.0], [0.0, 0.0]]  # norm 3


class Known(nn.Module):
    """A conv and a linear layer with known weights, plus biases and a BN that the score leaves out."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, bias=True)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(CONV))
            self.conv.bias.fill_(10.0)
            self.bn.weight.fill_(7.0)
            self.fc.weight.copy_(torch.tensor(FC))
            self.fc.bias.fill_(-5.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


def test_sum_of_per_layer_frobenius_norms_of_known_weights() -> None:
    value = proxies.get("l2_norm").score(SimpleFactory(Known, (1, 2, 2), 3)).value
    assert value == pytest.approx(math.sqrt(50) + 3.0, rel=1e-6)
    assert value != pytest.approx(math.sqrt(50 + 9), rel=1e-3)  # per-layer norms summed, not one global norm


def test_reads_the_default_init_the_factory_draws_under_the_seed() -> None:
    factory = SmallNb201Factory()
    value = proxies.get("l2_norm").score(factory, seed=3).value
    torch.manual_seed(3)
    net = factory()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert value == pytest.approx(sum(float(m.weight.detach().norm()) for m in layers), rel=1e-6)
    assert proxies.get("l2_norm").score(factory, seed=4).value != value


def test_disconnected_cells_are_finite() -> None:
    for arch in DISCONNECTED_ARCHS:
        assert math.isfinite(proxies.get("l2_norm").score(SmallNb201Factory(arch)).value)


def test_conforms_and_is_data_free() -> None:
    check_proxy("l2_norm")
    proxy = proxies.get("l2_norm")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.options()) == ("nothing", "none", None, {})
