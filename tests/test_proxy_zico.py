"""ZiCo against gradients worked out by hand, the reference's own procedure re-done in numpy, and its protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import proxies
from proxies import Batch, SimpleFactory
from proxies.mechanics import weight_layers
from proxies.testing import DISCONNECTED_ARCHS, SmallNb201Factory, check_proxy, synthetic_batch
from proxies.zico import batch_gradients, zico_score  # importing proxies.zico registers the proxy


def test_score_of_known_gradients() -> None:
    # layer 1, records a and b: std = |a−b|/2 = [1, 0, 2, 0], mean|g| = [2, 2, 2, 0];
    # the std-0 entries drop out: 2/1 + 2/2 = 3. Layer 2: equal records, every std 0, skipped. Layer 3: no grad.
    a, b = torch.tensor([1.0, 2.0, 3.0, 0.0]), torch.tensor([3.0, 2.0, -1.0, 0.0])
    same = torch.tensor([[0.5, -1.0]])
    assert zico_score([[a, same, None], [b, same, None]]) == pytest.approx(math.log(3), rel=1e-15)


def test_score_of_three_records_is_numpy_population_std() -> None:
    g = np.array([[1.0, -2.0, 0.5], [4.0, 2.0, 0.5], [-2.0, 0.0, 0.5]])  # last entry constant: skipped
    expected = math.log(np.sum(np.abs(g).mean(axis=0)[:2] / g.std(axis=0)[:2]))
    assert zico_score([[torch.tensor(row)] for row in g]) == pytest.approx(expected, rel=1e-14)


def _two_by_two() -> nn.Module:
    """Logits W·x with W = 0: softmax is uniform, so ∂L/∂W = (½ − onehot(y)) xᵀ / batch by hand."""
    net = nn.Linear(2, 2, bias=False)
    nn.init.zeros_(net.weight)
    return net


# Mini-batch 1: x = (1, 0), y = 0 → g₁ = [[−½, 0], [½, 0]]; mini-batch 2: x = (0, 2), y = 1 → g₂ = [[0, 1], [0, −1]].
TWO_IMAGES = Batch(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), 2)


@pytest.mark.parametrize(("gradients", "expected"), [
    # records g₁, g₁+g₂ = [−½, 1, ½, −1]: std [0, ½, 0, ½], mean|g| [½, ½, ½, ½] → 1 + 1
    ("accumulated", math.log(2)),
    # records g₁, g₂: std [¼, ½, ¼, ½], mean|g| [¼, ½, ¼, ½] → 1 + 1 + 1 + 1
    ("per_batch", math.log(4)),
])
def test_one_linear_layer_by_hand(gradients: str, expected: float) -> None:
    proxy = proxies.get("zico", batch_size=2, gradients=gradients)
    value = proxy.score(SimpleFactory(_two_by_two, (2,), 2), TWO_IMAGES).value
    assert value == pytest.approx(expected, rel=1e-12)


def _reference_procedure(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, zero_grad: bool) -> float:
    """SLDGroup's getzico / caculate_zico re-done: loss.backward() per mini-batch (``zero_grad``: AZ-NAS's
    port), a copy of every Conv2d/Linear weight's .grad after each, then numpy in float32."""
    records: dict[str, list[np.ndarray]] = {}
    for x, y in ((images[:len(images) // 2], labels[:len(images) // 2]),
                 (images[len(images) // 2:], labels[len(images) // 2:])):
        if zero_grad:
            net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for name, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
                records.setdefault(name, []).append(m.weight.grad.detach().reshape(-1).numpy().copy())
    total = 0.0
    for grads in records.values():
        g = np.array(grads)
        std = np.std(g, axis=0)
        nonzero = np.nonzero(std)[0]
        ratio_sum = np.sum(np.mean(np.abs(g), axis=0)[nonzero] / std[nonzero])
        if ratio_sum != 0:
            total += float(np.log(ratio_sum))
    return total


@pytest.mark.parametrize("gradients", ["accumulated", "per_batch"])
def test_equals_the_reference_procedure_on_a_small_nb201_net(gradients: str) -> None:
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 32)
    value = proxies.get("zico", batch_size=32, gradients=gradients).score(factory, batch, seed=3).value
    torch.manual_seed(3)
    net = factory().train().to(memory_format=torch.channels_last)  # as the proxy builds it on the CPU
    expected = _reference_procedure(net, batch.images, batch.labels, zero_grad=gradients == "per_batch")
    assert value == pytest.approx(expected, rel=1e-5)


def test_first_mini_batch_is_the_first_half_of_the_batch() -> None:
    """The 128 images split in order: record 1 is the gradient of the first 64 images alone."""
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 128)
    torch.manual_seed(0)
    net = factory().train()
    first = batch_gradients(net, batch.images, batch.labels, 2, "per_batch")[0]
    loss = F.cross_entropy(net(batch.images[:64]), batch.labels[:64])
    alone = torch.autograd.grad(loss, [m.weight for m in weight_layers(net)])
    assert all(torch.allclose(g, h, rtol=1e-5, atol=1e-8) for g, h in zip(first, alone, strict=True))


def test_accumulated_second_record_is_the_sum() -> None:
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 16)
    torch.manual_seed(0)
    net = factory().train()
    g1, g2 = batch_gradients(net, batch.images, batch.labels, 2, "per_batch")
    _, summed = batch_gradients(net, batch.images, batch.labels, 2, "accumulated")
    assert all(torch.equal(s, a + b) for s, a, b in zip(summed, g1, g2, strict=True))


def test_one_image_and_disconnected_cells_score_zero() -> None:
    factory = SmallNb201Factory()
    assert proxies.get("zico", batch_size=1).score(factory, synthetic_batch(factory, 1)).value == 0.0
    for arch in DISCONNECTED_ARCHS:
        small = SmallNb201Factory(arch)
        assert proxies.get("zico", batch_size=16).score(small, synthetic_batch(small, 16)).value == 0.0


def test_conformance() -> None:
    check_proxy("zico", batch_sizes=(1, 2, 16), batch_size=16)


def test_declares_the_reference_protocol() -> None:
    proxy = proxies.get("zico")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.batches, proxy.gradients) == (
        "images+labels", "real", 128, 2, "accumulated")
    with pytest.raises(ValueError, match="gradients"):
        proxies.get("zico", gradients="summed")
    with pytest.raises(ValueError, match="batches"):
        proxies.get("zico", batches=0)
