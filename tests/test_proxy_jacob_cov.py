"""jacob_cov against networks whose input Jacobian is known, and against the reference's numpy recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
import proxies.jacob_cov  # noqa: F401 - registers jacob_cov
from proxies import Batch, SimpleFactory
from proxies.input_jacobian import input_jacobian
from proxies.mechanics import build
from proxies.testing import DISCONNECTED_ARCHS, SmallNb201Factory, check_proxy, synthetic_batch

K = 1e-5
SHAPE = (1, 2, 3)  # flattened: 6 features


class HalfSquare(nn.Module):
    """y = ½‖x‖² spread evenly over ``outputs`` logits: Σ_k y_k = ½‖x‖², so J_i = x_i exactly."""

    def __init__(self, outputs: int = 3) -> None:
        super().__init__()
        self.outputs = outputs
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the logits require grad

    def forward(self, x: Tensor) -> Tensor:
        energy = 0.5 * self.scale * (x.flatten(1) ** 2).sum(dim=1, keepdim=True)
        return energy.expand(-1, self.outputs) / self.outputs


class Linear(nn.Module):
    """f(x) = W x + b: every sample's Jacobian of Σ_k y_k is the same vector Wᵀ1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


def _score(module: type[nn.Module], images: Tensor, **options: object) -> float:
    proxy = proxies.get("jacob_cov", batch_size=len(images), **options)
    return proxy.score(SimpleFactory(module, SHAPE, 3), Batch(images, None, 3)).value


def _by_formula(eigenvalues: np.ndarray, k: float = K) -> float:
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def test_two_samples_with_known_correlation() -> None:
    """Two Jacobian rows with correlation r: C = [[1, r], [r, 1]] has eigenvalues 1 ± r."""
    a = np.array([1.0, 2.0, 0.0, -1.0, 3.0, 0.5])
    b = np.array([0.5, 1.0, 1.0, -2.0, 2.0, 0.0])
    r = float(np.dot(a - a.mean(), b - b.mean()) / np.linalg.norm(a - a.mean()) / np.linalg.norm(b - b.mean()))
    images = torch.tensor(np.stack([a, b]), dtype=torch.float32).reshape(2, *SHAPE)
    assert _score(HalfSquare, images) == pytest.approx(_by_formula(np.array([1 + r, 1 - r])), rel=1e-6)


def test_identical_jacobians_give_rank_one_correlation() -> None:
    """A linear net: all rows equal, C = 11ᵀ with eigenvalues B and 0 (B − 1 times)."""
    b = 5
    images = torch.randn((b, *SHAPE), generator=torch.Generator().manual_seed(1))
    expected = _by_formula(np.array([b] + [0.0] * (b - 1)))
    assert _score(Linear, images) == pytest.approx(expected, rel=1e-6)


def test_k_option_enters_the_formula() -> None:
    images = torch.randn((4, *SHAPE), generator=torch.Generator().manual_seed(2))
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(images.flatten(1).double().numpy()))
    assert _score(HalfSquare, images, k=1e-3) == pytest.approx(_by_formula(eigenvalues, 1e-3), rel=1e-6)


def test_matches_the_reference_recipe_on_an_nb201_network() -> None:
    """The reference: x.requires_grad, y.backward(ones_like(y)), x.grad, np.corrcoef, np.linalg.eig, on the
    network as :func:`proxies.mechanics.build` lays it out (1/(λ + k) of the small eigenvalues magnifies
    float32 rounding: another memory layout of the same weights moves the score by ~3e-6 relative)."""
    factory = SmallNb201Factory()
    batch = synthetic_batch(factory, 16, seed=3)
    value = proxies.get("jacob_cov", batch_size=16).score(factory, batch, seed=5).value
    torch.manual_seed(5)
    net = build(factory, torch.device("cpu"))
    x = batch.images.clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    eigenvalues, _ = np.linalg.eig(np.corrcoef(x.grad.reshape(16, -1).numpy()))
    assert value == pytest.approx(_by_formula(eigenvalues.real), rel=1e-6)


def test_input_jacobian_couples_samples_through_train_mode_bn() -> None:
    """Row i is ∂(Σ over the whole batch's logits)/∂x_i: with BN's batch statistics it differs from the
    gradient of sample i's own logits in a batch of one."""
    factory = SmallNb201Factory()
    images = synthetic_batch(factory, 4).images
    torch.manual_seed(0)
    net = build(factory, torch.device("cpu"))
    batched, _ = input_jacobian(net, images)
    full = torch.autograd.functional.jacobian(lambda x: net(x).sum(), images).flatten(1)
    assert torch.allclose(batched, full, rtol=1e-4, atol=1e-6)
    alone, _ = input_jacobian(net, images[:1])
    assert not torch.allclose(batched[0], alone[0], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("arch", DISCONNECTED_ARCHS)
def test_disconnected_cells_score_nan(arch: str) -> None:
    factory = SmallNb201Factory(arch)
    assert math.isnan(proxies.get("jacob_cov", batch_size=8).score(factory, synthetic_batch(factory, 8)).value)


def test_conforms_and_declares_the_reference_protocol() -> None:
    check_proxy("jacob_cov")
    proxy = proxies.get("jacob_cov")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.k, proxy.higher_is_better) == (
        "images", "real", 64, 1e-5, True)


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"k": 0.0}])
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(ValueError, match="jacob_cov"):
        proxies.get("jacob_cov", **options)
