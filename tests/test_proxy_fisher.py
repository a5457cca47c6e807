"""fisher against a per-activation computation: by hand (numpy) on a two-layer net, with retain_grad on a conv
net; the shared pass gives snip, plain and fisher exactly as separate runs; the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _saliency import TwoLayer, as_numpy, batch, factory, two_layer_pass
from torch import Tensor, nn

import proxies
import proxies.fisher
import proxies.plain
import proxies.snip
from proxies import Batch, SimpleFactory
from proxies.loss_saliency import loss_pass
from proxies.mechanics import build
from proxies.testing import SmallNb201Factory, check_proxy, synthetic_batch


def _fisher_by_hand(x: np.ndarray, labels: np.ndarray) -> float:
    """Σ over layers of fan-in · Σ over output units c of ½ · mean_n (a_nc · ∂L/∂a_nc)²."""
    return sum(w.shape[1] * (0.5 * ((a * d) ** 2).mean(axis=0)).sum() for w, a, d in two_layer_pass(x, labels))


def test_two_layer_net_by_hand() -> None:
    b = batch(10, seed=1)
    value = proxies.get("fisher", batch_size=10).score(factory(TwoLayer), b).value
    assert value == pytest.approx(_fisher_by_hand(*as_numpy(b)), rel=1e-5)


def test_split_data_adds_each_chunks_own_mean() -> None:
    b = batch(10, seed=1)
    x, labels = as_numpy(b)
    expected = _fisher_by_hand(x[:5], labels[:5]) + _fisher_by_hand(x[5:], labels[5:])
    value = proxies.get("fisher", batch_size=10, split_data=2).score(factory(TwoLayer), b).value
    assert value == pytest.approx(expected, rel=1e-5)


class ConvNet(nn.Module):
    """Conv(3→4, 3x3) → BN → ReLU → grouped Conv(4→6, 3x3, groups 2, bias) → pool → Linear(6→3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.fc = nn.Linear(6, 3)

    def outputs(self, x: Tensor) -> list[Tensor]:
        a1 = self.conv1(x)
        a2 = self.conv2(torch.relu(self.bn(a1)))
        return [a1, a2, self.fc(a2.mean(dim=(2, 3)))]

    def forward(self, x: Tensor) -> Tensor:
        return self.outputs(x)[-1]


def test_conv_channels_sum_over_positions_and_count_fan_in() -> None:
    """Independent of the proxy's hooks: the layer outputs' gradients by ``retain_grad``; fan-in 3·3·3,
    (4/2)·3·3 and 6."""
    torch.manual_seed(0)
    conv = SimpleFactory(ConvNet, (3, 5, 5), 3)
    b = synthetic_batch(conv, 12, seed=2)
    torch.manual_seed(0)
    net = conv().train()
    outs = net.outputs(b.images)
    for a in outs:
        a.retain_grad()
    F.cross_entropy(outs[-1], b.labels).backward()
    expected = 0.0
    for a, fan_in in zip(outs, (27, 18, 6), strict=True):
        per_sample = (a * a.grad).sum(dim=(2, 3)) if a.ndim == 4 else a * a.grad
        expected += fan_in * float(0.5 * per_sample.detach().pow(2).mean(dim=0).sum())
    assert proxies.get("fisher", batch_size=12).score(conv, b, seed=0).value == pytest.approx(expected, rel=1e-5)


def test_one_shared_pass_gives_each_measure_exactly() -> None:
    """snip, plain and fisher from one ``loss_pass`` (same seed, same network and batch) equal separate runs."""
    from proxies.fisher import fisher_score
    from proxies.plain import plain_score
    from proxies.snip import snip_score

    small = SmallNb201Factory()
    b = synthetic_batch(small, 64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        shared = loss_pass(build(small, torch.device("cpu")), b, fisher=True)
    for name, score in (("snip", snip_score), ("plain", plain_score), ("fisher", fisher_score)):
        assert float(score(shared)) == proxies.get(name).score(small, b, seed=0).value, name


def test_passes_the_conformance_kit() -> None:
    report = check_proxy("fisher")
    assert report.value > 0


def test_needs_labels() -> None:
    b = batch(64)
    with pytest.raises(proxies.ProxyError, match="fisher.*needs labels"):
        proxies.get("fisher").score(factory(TwoLayer), Batch(b.images, None, b.num_classes))
