"""NASWOT against kernels computed by hand from known binary codes, and the reference's protocol facts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import Batch, SimpleFactory
from proxies.naswot import naswot_kernel
from proxies.testing import SmallNb201Factory, synthetic_batch

# Three samples, four units; codes c = (x > 0): [1,1,0,0], [1,0,1,0], [1,1,1,0].
IMAGES = torch.tensor([[1.0, 2.0, -1.0, 0.0], [0.5, -3.0, 1.5, -0.2], [2.0, 0.1, 0.3, -1.0]]).reshape(3, 1, 2, 2)
# K_ij = N_A − Hamming(c_i, c_j): diagonal 4, d(1,2) = 2, d(1,3) = d(2,3) = 1.
K_BY_HAND = [[4, 2, 3], [2, 4, 3], [3, 3, 4]]
DET_BY_HAND = 4 * (16 - 9) - 2 * (8 - 9) + 3 * (6 - 12)  # = 12


class Relus(nn.Module):
    """``count`` ReLUs in sequence: the second sees the first's output, so every ReLU reads the same codes."""

    def __init__(self, count: int = 1) -> None:
        super().__init__()
        self.relus = nn.Sequential(*[nn.ReLU() for _ in range(count)])

    def forward(self, x: Tensor) -> Tensor:
        return self.relus(x).flatten(1)


def test_kernel_of_known_codes() -> None:
    assert torch.equal(naswot_kernel(Relus(), IMAGES), torch.tensor(K_BY_HAND, dtype=torch.float64))
    assert DET_BY_HAND == 12


@pytest.mark.parametrize("relus", [1, 2])
def test_score_is_log_det_summed_over_relus(relus: int) -> None:
    batch = Batch(IMAGES, None, 1)
    value = proxies.get("naswot", batch_size=3).score(SimpleFactory(lambda: Relus(relus), (1, 2, 2), 1), batch).value
    assert value == pytest.approx(math.log(DET_BY_HAND * relus**3), rel=1e-12)  # K doubles, det × 2³


class Fan(nn.Module):
    """Two ReLUs reading one tensor object (as NB201 convs on edges leaving one node); with
    ``negate_between`` the tensor is negated in place between them, so the second sees other codes."""

    def __init__(self, negate_between: bool) -> None:
        super().__init__()
        self.negate_between = negate_between
        self.relu_a, self.relu_b = nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        shared = x.clone()
        a = self.relu_a(shared)
        if self.negate_between:
            shared.neg_()
        return (a + self.relu_b(shared)).flatten(1)


def test_relus_sharing_an_input_each_count() -> None:
    assert torch.equal(naswot_kernel(Fan(False), IMAGES), 2 * torch.tensor(K_BY_HAND, dtype=torch.float64))
    # negated codes [0,0,1,0], [0,1,0,1], [0,0,0,1]: K' = [[4,1,2],[1,4,3],[2,3,4]] by hand
    k = naswot_kernel(Fan(True), IMAGES)
    assert torch.equal(k, torch.tensor([[8, 3, 5], [3, 8, 6], [5, 6, 8]], dtype=torch.float64))
    assert float(torch.linalg.det(k)) == pytest.approx(8 * (64 - 36) - 3 * (24 - 30) + 5 * (18 - 40))  # 132


def test_kernel_is_n_minus_hamming_for_random_codes() -> None:
    x = torch.randn(9, 1, 5, 7, generator=torch.Generator().manual_seed(0))
    codes = (x.flatten(1) > 0).numpy()
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    assert np.array_equal(naswot_kernel(Relus(), x).numpy(), codes.shape[1] - hamming)


def test_reference_jacobian_pass_does_not_change_k() -> None:
    """The reference runs a forward/backward before filling K: it moves only BN running statistics,
    which a train-mode forward does not read, so K comes out bitwise the same."""
    images = synthetic_batch(SmallNb201Factory(), 16).images
    torch.manual_seed(0)
    net = SmallNb201Factory()().train()
    before = naswot_kernel(net, images)
    running_mean = net.stem[1].running_mean.clone()
    x = images.clone().requires_grad_(True)
    net(x).backward(torch.ones(16, 10))
    assert not torch.equal(net.stem[1].running_mean, running_mean)
    assert torch.equal(naswot_kernel(net, images), before)


def test_head_size_does_not_change_k() -> None:
    """The reference builds NB201 nets with num_classes=1; every ReLU precedes the head."""
    images = synthetic_batch(SmallNb201Factory(), 16).images
    kernels = []
    for classes in (1, 10):
        torch.manual_seed(0)
        kernels.append(naswot_kernel(SmallNb201Factory(num_classes=classes)().train(), images))
    assert torch.equal(kernels[0], kernels[1])


def test_disconnected_cell_scores_minus_inf_batch_of_one_is_finite() -> None:
    disconnected = SmallNb201Factory("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    batch = synthetic_batch(disconnected, 8)
    assert proxies.get("naswot", batch_size=8).score(disconnected, batch).value == -math.inf
    assert math.isfinite(proxies.get("naswot", batch_size=1).score(disconnected, batch).value)


def test_a_net_without_relu_is_a_clear_error() -> None:
    with pytest.raises(proxies.ProxyError, match="no ReLU"):
        proxies.get("naswot", batch_size=3).score(SimpleFactory(nn.Flatten, (1, 2, 2), 1), Batch(IMAGES, None, 1))


def test_declares_the_reference_batch() -> None:
    proxy = proxies.get("naswot")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size) == ("images", "real", 128)
