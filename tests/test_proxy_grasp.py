"""grasp's Hessian-gradient product against torch.autograd.functional.hvp and a central finite difference, the
reference's chunk rule, temperature and iters, its two-pass form, and the conformance kit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _saliency import CLASSES, TwoLayer, batch, factory
from torch import Tensor, nn
from torch.autograd.functional import hvp
from torch.func import functional_call

import proxies
import proxies.grasp  # noqa: F401 - registers the proxy
from proxies import Batch, SimpleFactory
from proxies.mechanics import build
from proxies.testing import SmallNb201Factory, check_proxy, synthetic_batch

WEIGHTS = ("fc.weight", "out.weight")


def _loss_of_weights(net: nn.Module, b: Batch, temperature: float = 1.0):  # noqa: ANN202 - a closure
    """L(W1, W2): the mean cross-entropy of logits / T, biases held at their values."""

    def loss(*weights: Tensor) -> Tensor:
        logits = functional_call(net, dict(zip(WEIGHTS, weights, strict=True)), (b.images,))
        return F.cross_entropy(logits / temperature, b.labels)

    return loss


def _grasp_by_hvp(b: Batch, temperature: float = 1.0, g_batch: Batch | None = None, scale: float = 1.0) -> float:
    """−Σ W ⊙ H·g with H from ``torch.autograd.functional.hvp`` on ``b``, g = scale·∂L/∂W on ``g_batch``."""
    net = factory(TwoLayer)()
    weights = tuple(dict(net.named_parameters())[k].detach() for k in WEIGHTS)
    g_loss = _loss_of_weights(net, g_batch or b, temperature)
    g = torch.autograd.grad(g_loss(*(w.requires_grad_() for w in weights)), weights)
    _, hg = hvp(_loss_of_weights(net, b, temperature), weights, tuple(scale * gi for gi in g))
    return float(-sum((w.detach() * h).sum() for w, h in zip(weights, hg, strict=True)))


def test_two_layer_net_against_autograd_hvp() -> None:
    b = batch(8, seed=4)
    value = proxies.get("grasp", batch_size=8).score(factory(TwoLayer), b).value
    assert value == pytest.approx(_grasp_by_hvp(b), rel=1e-4)
    assert abs(value) > 1e-4


def test_temperature_divides_the_logits_and_iters_scales_g() -> None:
    b = batch(8, seed=4)
    value = proxies.get("grasp", batch_size=8, temperature=2.5, iters=3).score(factory(TwoLayer), b).value
    assert value == pytest.approx(_grasp_by_hvp(b, temperature=2.5, scale=3.0), rel=1e-4)


def test_split_data_takes_g_from_the_last_chunk_and_sums_h_g_over_chunks() -> None:
    """The reference's pass 1 restarts g at every chunk, so g is the last chunk's gradient."""
    b = batch(9, seed=5)
    first, last = Batch(b.images[:4], b.labels[:4], CLASSES), Batch(b.images[4:], b.labels[4:], CLASSES)
    expected = _grasp_by_hvp(first, g_batch=last) + _grasp_by_hvp(last)
    value = proxies.get("grasp", batch_size=9, split_data=2).score(factory(TwoLayer), b).value
    assert value == pytest.approx(expected, rel=1e-4)


class ConvBn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def test_conv_bn_net_against_a_central_finite_difference() -> None:
    """float64: H·g ≈ (∇L(W + εg) − ∇L(W − εg)) / 2ε, ∇ over the conv and linear weights, BN parameters fixed."""
    conv = SimpleFactory(lambda: ConvBn().double(), (3, 6, 6), 3)
    b = synthetic_batch(conv, 10, seed=1)
    b = Batch(b.images.double(), b.labels, 3)
    value = proxies.get("grasp", batch_size=10).score(conv, b, seed=3).value
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = conv().train()
    names = ("conv.weight", "fc.weight")
    weights = [dict(net.named_parameters())[k] for k in names]

    def grad_at(shift: list[Tensor]) -> list[Tensor]:
        moved = {k: (w + s).detach().requires_grad_() for k, w, s in zip(names, weights, shift, strict=True)}
        loss = F.cross_entropy(functional_call(net, moved, (b.images,)), b.labels)
        return list(torch.autograd.grad(loss, list(moved.values())))

    g = grad_at([torch.zeros_like(w) for w in weights])
    eps = 1e-5
    plus, minus = grad_at([eps * gi for gi in g]), grad_at([-eps * gi for gi in g])
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]
    expected = float(-sum((w.detach() * h).sum() for w, h in zip(weights, hg, strict=True)))
    assert value == pytest.approx(expected, rel=1e-5)


def test_one_pass_equals_the_references_two_passes() -> None:
    """The reference: a first-order pass for g, then a create_graph pass, z = Σ g·∂L/∂W, z.backward()."""
    small = SmallNb201Factory()
    b = synthetic_batch(small, 64)
    value = proxies.get("grasp").score(small, b, seed=0).value
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build(small, torch.device("cpu")).to(memory_format=torch.contiguous_format)
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    weights = [m.weight for m in layers]
    g = torch.autograd.grad(F.cross_entropy(net(b.images), b.labels), weights)
    grads = torch.autograd.grad(F.cross_entropy(net(b.images), b.labels), weights, create_graph=True)
    sum((gi * d).sum() for gi, d in zip(g, grads, strict=True)).backward()
    expected = float(sum((-m.weight.detach() * m.weight.grad).sum() for m in layers))
    assert value == pytest.approx(expected, rel=1e-7)


def test_passes_the_conformance_kit() -> None:
    check_proxy("grasp")


def test_bad_options_are_refused() -> None:
    for bad in ({"temperature": 0}, {"temperature": -1.0}, {"temperature": float("nan")}, {"iters": 0},
                {"iters": True}, {"split_data": 65}):
        with pytest.raises(ValueError, match="proxy 'grasp': option (temperature|iters|split_data)="):
            proxies.get("grasp", **bad)
