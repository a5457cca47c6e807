"""snip against |W ⊙ ∂L/∂W| worked out by hand (numpy) on a one-layer net, the reference's chunking, and the kit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _saliency import OneLayer, TwoLayer, as_numpy, batch, factory, one_layer_grad

import proxies
import proxies.snip  # noqa: F401 - registers the proxy
from proxies import Batch, ProxyError
from proxies.testing import check_proxy


def test_one_layer_is_the_summed_connection_sensitivity_by_hand() -> None:
    b = batch(6)
    w, grad = one_layer_grad(*as_numpy(b))
    value = proxies.get("snip", batch_size=6).score(factory(OneLayer), b).value
    assert value == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)
    assert value != pytest.approx(np.abs((w * grad).sum()), rel=1e-2)  # |·| per weight, before the sum


def test_split_data_sums_the_gradients_of_each_chunks_own_mean_loss() -> None:
    """split_data=2 (the reference's out-of-memory retry): chunks [0, 3) and [3, 7) of 7, gradients added."""
    b = batch(7)
    x, labels = as_numpy(b)
    w, g1 = one_layer_grad(x[:3], labels[:3])
    _, g2 = one_layer_grad(x[3:], labels[3:])
    value = proxies.get("snip", batch_size=7, split_data=2).score(factory(OneLayer), b).value
    assert value == pytest.approx(np.abs(w * (g1 + g2)).sum(), rel=1e-5)


def test_every_linear_layer_counts_biases_do_not() -> None:
    """TwoLayer: Σ|W⊙∂L/∂W| of both weights, against the torch gradient of an independent forward."""
    b = batch(8)
    net = factory(TwoLayer)()
    loss = F.cross_entropy(net(b.images), b.labels)
    grads = torch.autograd.grad(loss, [net.fc.weight, net.out.weight, net.fc.bias])
    w1, w2 = net.fc.weight.detach(), net.out.weight.detach()
    expected = float((w1 * grads[0]).abs().sum() + (w2 * grads[1]).abs().sum())
    assert float(grads[2].abs().sum()) > 0
    assert proxies.get("snip", batch_size=8).score(factory(TwoLayer), b).value == pytest.approx(expected, rel=1e-5)


def test_passes_the_conformance_kit() -> None:
    report = check_proxy("snip")
    assert report.value > 0 and all(v >= 0 for v in report.disconnected.values())


def test_needs_labels_and_sane_options() -> None:
    proxy = proxies.get("snip")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.split_data) == ("images+labels", "real", 64, 1)
    b = batch(64)
    with pytest.raises(ProxyError, match="labels"):
        proxy.score(factory(OneLayer), Batch(b.images, None, b.num_classes))
    for bad in ({"batch_size": 0}, {"split_data": 0}, {"batch_size": 4, "split_data": 5}, {"split_data": 1.5}):
        with pytest.raises(ValueError, match="proxy 'snip': option (batch_size|split_data)="):
            proxies.get("snip", **bad)
