"""SynFlow against closed forms: for a bias-free linear chain f(x) = W_L ... W_1 x on the all-ones input
with |W|, each layer's Σ|θ ⊙ ∂R/∂θ| equals R = 1ᵀ|W_L|...|W_1|1, so the score is L·R."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import SimpleFactory
from proxies.testing import SmallNb201Factory

SHAPE = (1, 2, 2)
W1 = [[0.5, -1.0, 0.2, 0.0], [-0.1, 0.3, -0.4, 0.8], [0.6, -0.2, 0.9, -0.3]]
W2 = [[1.0, -0.5, 0.3], [-0.2, 0.7, -1.1]]


class TwoLayer(nn.Module):
    """Linear(4→3) → ReLU [→ BN] → Linear(3→2), no biases, weights with mixed signs."""

    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(3) if bn else nn.Identity()
        self.fc2 = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor(W1))
            self.fc2.weight.copy_(torch.tensor(W2))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.bn(self.relu(self.fc1(x.flatten(1)))))


class Chain(nn.Module):
    """``depth`` bias-free Linear(64→64) layers with every weight 100: R = 64 · 6400^depth."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(64, 64, bias=False) for _ in range(depth)])
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.fill_(100.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x.flatten(1))


def test_two_layer_linear_network_closed_form() -> None:
    w1, w2 = (np.abs(np.array(w, dtype=np.float32)).astype(np.float64) for w in (W1, W2))
    r = np.ones(2) @ w2 @ w1 @ np.ones(4)
    value = proxies.get("synflow").score(SimpleFactory(TwoLayer, SHAPE, 2)).value
    assert value == pytest.approx(math.log(2 * r), rel=1e-12)


def test_float64_carries_scores_beyond_float32_range() -> None:
    depth = 12
    expected = math.log(depth) + math.log(64) + depth * math.log(6400)  # log(L · R) ≈ 111.8 > log(3.4e38)
    value = proxies.get("synflow").score(SimpleFactory(lambda: Chain(depth), (64, 1, 1), 64)).value
    assert expected > math.log(torch.finfo(torch.float32).max)
    assert value == pytest.approx(expected, rel=1e-12)


def test_bn_is_dropped_by_default_and_kept_in_train_mode_on_request() -> None:
    without = proxies.get("synflow").score(SimpleFactory(TwoLayer, SHAPE, 2)).value
    dropped = proxies.get("synflow").score(SimpleFactory(lambda: TwoLayer(bn=True), SHAPE, 2)).value
    assert dropped == without
    nb201 = SmallNb201Factory()
    assert proxies.get("synflow", bn=True).score(nb201).value != proxies.get("synflow").score(nb201).value


def test_nb201_scores_are_finite_and_disconnected_cells_minus_inf() -> None:
    assert math.isfinite(proxies.get("synflow").score(SmallNb201Factory()).value)
    disconnected = SmallNb201Factory("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|")
    assert proxies.get("synflow").score(disconnected).value == -math.inf


def test_declares_a_data_free_all_ones_input() -> None:
    proxy = proxies.get("synflow")
    assert (proxy.needs, proxy.input_kind, proxy.bn) == ("nothing", "ones", False)
