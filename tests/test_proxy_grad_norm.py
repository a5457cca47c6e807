"""grad-norm against the cross-entropy gradient of one- and two-layer nets worked out by hand (numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import Batch, ProxyError, SimpleFactory
from proxies.mechanics import reinit

SHAPE = (1, 2, 2)  # flattened: 4 features
CLASSES = 3


class OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, CLASSES)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.5, -1.0, 0.2, 0.0], [0.1, 0.3, -0.4, 0.8], [-0.6, 0.2, 0.9, -0.3]]))
            self.fc.bias.copy_(torch.tensor([0.1, -0.2, 0.05]))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


class TwoLayer(OneLayer):
    """A BN and a second linear layer: the default sums per-layer norms and skips BN."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(CLASSES)
        self.out = nn.Linear(CLASSES, CLASSES, bias=False)
        with torch.no_grad():
            self.out.weight.copy_(torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1], [-0.4, 0.6, 0.9]]))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.bn(self.fc(x.flatten(1))))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ce_grads(weight: np.ndarray, bias: np.ndarray, x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """∂/∂W and ∂/∂b of the mean cross-entropy of softmax(x Wᵀ + b): (p − onehot)ᵀ x / N and its column mean."""
    residual = _softmax(x @ weight.T + bias) - np.eye(weight.shape[0])[labels]
    return residual.T @ x / len(x), residual.mean(axis=0)


def _batch(n: int = 6, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(torch.randn((n, *SHAPE), generator=gen), torch.randint(0, CLASSES, (n,), generator=gen), CLASSES)


def test_one_layer_matches_the_gradient_by_hand() -> None:
    batch = _batch()
    net = OneLayer()
    grad_w, _ = _ce_grads(net.fc.weight.detach().double().numpy(), net.fc.bias.detach().double().numpy(),
                          batch.images.flatten(1).double().numpy(), batch.labels.numpy())
    value = proxies.get("grad_norm", batch_size=6).score(SimpleFactory(OneLayer, SHAPE, CLASSES), batch).value
    assert value == pytest.approx(np.linalg.norm(grad_w), rel=1e-5)


def test_sums_per_layer_norms_of_conv_and_linear_weights_only() -> None:
    batch = _batch(8)
    factory = SimpleFactory(TwoLayer, SHAPE, CLASSES)
    net = factory().train()
    loss = nn.functional.cross_entropy(net(batch.images), batch.labels)
    grads = torch.autograd.grad(loss, [net.fc.weight, net.out.weight, net.bn.weight])
    per_layer = float(grads[0].norm() + grads[1].norm())
    assert float(grads[2].norm()) > 0  # BN gets a gradient, which the score must leave out
    value = proxies.get("grad_norm", batch_size=8).score(factory, batch).value
    assert value == pytest.approx(per_layer, rel=1e-5)
    assert value != pytest.approx(float(torch.cat([g.flatten() for g in grads[:2]]).norm()), rel=1e-3)


def test_zennas_variant_is_the_global_norm_with_gaussian_everything() -> None:
    """ZenNAS: Gaussian init, then x ~ N(0, 1), then random labels; √Σ‖∂L/∂p‖² over all parameters."""
    factory = SimpleFactory(OneLayer, SHAPE, CLASSES)
    value = proxies.get("grad_norm", variant="zennas", batch_size=5).score(factory, None, seed=7).value
    with torch.random.fork_rng():
        torch.manual_seed(7)
        net = reinit(factory(), "gaussian")
        x = torch.randn((5, *SHAPE))
        labels = torch.randint(0, CLASSES, (5,))
    grad_w, grad_b = _ce_grads(net.fc.weight.detach().double().numpy(), np.zeros(CLASSES),
                               x.flatten(1).double().numpy(), labels.numpy())
    assert value == pytest.approx(np.sqrt((grad_w**2).sum() + (grad_b**2).sum()), rel=1e-5)


def test_default_needs_labelled_images_zennas_needs_nothing() -> None:
    factory = SimpleFactory(OneLayer, SHAPE, CLASSES)
    default, zennas = proxies.get("grad_norm"), proxies.get("grad_norm", variant="zennas")
    assert (default.needs, default.input_kind, default.batch_size) == ("images+labels", "real", 64)
    assert (zennas.needs, zennas.input_kind) == ("nothing", "gaussian")
    batch = _batch(64)
    with pytest.raises(ProxyError, match="labels"):
        default.score(factory, Batch(batch.images, None, CLASSES))


def test_bad_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant"):
        proxies.get("grad_norm", variant="naslib")
