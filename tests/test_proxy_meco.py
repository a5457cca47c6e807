"""MeCo against correlation eigenvalues computed by hand and with numpy, the every-module rule, meco_opt and the
Gaussian-input measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import Batch, SimpleFactory
from proxies.meco import GAUSSIAN_SIDE, meco_terms, min_correlation_eigenvalue, resized  # registers the proxy
from proxies.testing import check_proxy

# One image, two channels on a 2×2 map: u = (1, 2, 3, 4), v = (1, 3, 2, 4). Deviations (−1.5, −.5, .5, 1.5) and
# (−1.5, .5, −.5, 1.5): covariance ∝ 4, variances ∝ 5, so r = 0.8, P = [[1, .8], [.8, 1]], eigenvalues 1.8, 0.2.
TWO_CHANNELS = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]]]])


def _score(net: nn.Module, images: Tensor, **options: object) -> float:
    factory = SimpleFactory(lambda: net, tuple(images.shape[1:]), 1)
    options = {"resize": None, **options}  # the hand-made maps are fed as they are
    return proxies.get("meco", batch_size=len(images), **options).score(factory, Batch(images, None, 1)).value


def test_two_channels_by_hand() -> None:
    assert float(min_correlation_eigenvalue(TWO_CHANNELS[0])) == pytest.approx(0.2, rel=1e-12)
    assert _score(nn.Identity(), TWO_CHANNELS) == pytest.approx(0.2, rel=1e-12)


def test_every_module_counts_containers_included() -> None:
    """The root Sequential outputs its last child's map, so that map counts once per enclosing module."""
    assert _score(nn.Sequential(nn.Identity()), TWO_CHANNELS) == pytest.approx(0.4, rel=1e-12)
    assert _score(nn.Sequential(nn.Sequential(nn.Identity())), TWO_CHANNELS) == pytest.approx(0.6, rel=1e-12)


def test_conv_layer_against_numpy() -> None:
    """A 1×1 conv (the only module) of a random 2-image batch: λ_min of np.corrcoef of the first image's map."""
    generator = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 5, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(5, 3, 1, 1, generator=generator))
        conv.bias.copy_(torch.randn(5, generator=generator))
    images = torch.randn(2, 3, 4, 6, generator=generator)
    x = images[0].reshape(3, -1).double().numpy()
    fmap = conv.weight.detach().reshape(5, 3).double().numpy() @ x + conv.bias.detach().double().numpy()[:, None]
    expected = np.linalg.eigvalsh(np.corrcoef(fmap)).min()
    assert _score(conv, images) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_constant_channel_gives_zero_row() -> None:
    """A constant channel makes its correlation row NaN; zeroed, it adds eigenvalue 0 (numpy, NaN → 0)."""
    rows = torch.tensor([[1.0, 2.0, 3.0, 5.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 0.0, 3.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(rows.double().numpy()), nan=0.0, posinf=0.0, neginf=0.0)
    expected = np.linalg.eigvalsh(corr).min()
    assert float(min_correlation_eigenvalue(rows)) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("channels, side", [(16, 4), (40, 4), (64, 8), (300, 16)])
def test_as_many_channels_as_positions_gives_exactly_zero(channels: int, side: int) -> None:
    """C ≥ H·W: the centred rows span at most H·W − 1 dimensions, so P is singular and λ_min is 0; numpy's
    eigvalsh of the same P (a constant channel included) finds only a rounding residue. With two channels
    fewer than positions, P has full rank and λ_min, computed, is positive."""
    generator = torch.Generator().manual_seed(channels)
    fmap = torch.randn(channels, side, side, generator=generator)
    fmap[1] = 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(fmap.reshape(channels, -1).double().numpy()), nan=0.0)
    assert abs(np.linalg.eigvalsh(corr).min()) < 1e-10
    assert float(min_correlation_eigenvalue(fmap)) == 0.0
    fewer = torch.randn(side * side - 2, side, side, generator=generator)
    expected = np.linalg.eigvalsh(np.corrcoef(fewer.reshape(len(fewer), -1).double().numpy())).min()
    assert expected > 1e-6
    assert float(min_correlation_eigenvalue(fewer)) == pytest.approx(expected, rel=1e-9)


def test_maps_with_one_position_and_vectors_add_nothing() -> None:
    """GAP outputs (C×1×1) and logits have one value per channel: all of P is NaN, λ_min 0; left out."""
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    assert meco_terms(net, TWO_CHANNELS) == []


def _orthogonal_channels(count: int, length: int) -> Tensor:
    """``count`` zero-mean, mutually orthogonal rows (rows 1.. of a Sylvester-Hadamard matrix): P = I."""
    h = np.array([[1.0]])
    while len(h) < length:
        h = np.block([[h, h], [h, -h]])
    return torch.tensor(h[1:count + 1])


def test_meco_opt_scales_eight_channels_by_c_over_8() -> None:
    """With P = I every 8-channel subset has λ_min = 1, so meco_opt gives C/8 where meco gives 1."""
    image = _orthogonal_channels(16, 32).reshape(1, 16, 4, 8).float()
    assert _score(nn.Identity(), image) == pytest.approx(1.0, rel=1e-9)
    assert _score(nn.Identity(), image, variant="meco_opt") == pytest.approx(2.0, rel=1e-9)
    assert _score(nn.Identity(), TWO_CHANNELS, variant="meco_opt") == pytest.approx(0.2, rel=1e-12)  # C ≤ 8: all


def test_meco_opt_draws_channels_from_the_seeded_rng() -> None:
    image = torch.randn(1, 24, 5, 5, generator=torch.Generator().manual_seed(1))
    values = [_score(nn.Identity(), image, variant="meco_opt") for _ in range(2)]
    assert values[0] == values[1]
    torch.manual_seed(0)
    idx = torch.randperm(24)[:8]
    assert values[0] == pytest.approx(3 * float(min_correlation_eigenvalue(image[0][idx])), rel=1e-12)


def test_only_the_first_sample_is_read() -> None:
    other = torch.randn(3, 2, 2, 2, generator=torch.Generator().manual_seed(2))
    assert _score(nn.Identity(), torch.cat([TWO_CHANNELS, other])) == pytest.approx(0.2, rel=1e-12)


class _Shape(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(tuple(x.shape))
        return x


def test_gaussian_input_is_the_foresight_measures_64x64_image() -> None:
    net = _Shape()
    proxy = proxies.get("meco", input="gaussian")
    assert (proxy.needs, proxy.input_kind) == ("nothing", "gaussian")
    proxy.score(SimpleFactory(lambda: net, (3, 32, 32), 10))
    assert net.seen == [(1, 3, GAUSSIAN_SIDE, GAUSSIAN_SIDE)]


@pytest.mark.parametrize(("side", "resize", "fed"), [(16, 32, 32), (16, None, 16), (32, 32, 32)])
def test_images_are_resized_to_32_as_the_reference_loader_does(side: int, resize: int | None, fed: int) -> None:
    """``--data_size 32``: ImageNet16's 16×16 images reach the network at 32×32; CIFAR's stay as they are."""
    net = _Shape()
    images = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    proxies.get("meco", resize=resize).score(SimpleFactory(lambda: net, (3, side, side), 10), Batch(images, None, 10))
    assert net.seen == [(1, 3, fed, fed)]


def test_resize_is_bilinear_and_keeps_constant_images() -> None:
    flat = torch.full((1, 2, 16, 16), 0.7)
    assert torch.allclose(resized(flat, 32), torch.full((1, 2, 32, 32), 0.7))
    ramp = torch.arange(4.0).reshape(1, 1, 1, 4).expand(1, 1, 4, 4)
    # align_corners=False: output pixel j samples input position (j + 0.5)/2 − 0.5, clamped at the edges
    assert torch.allclose(resized(ramp, 8)[0, 0, 0], torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]))


@pytest.mark.parametrize("options", [{}, {"variant": "meco_opt"}, {"input": "gaussian"}])
def test_conformance(options: dict[str, str]) -> None:
    check_proxy("meco", **options)


def test_declares_the_reference_protocol() -> None:
    proxy = proxies.get("meco")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.variant, proxy.resize) == (
        "images", "real", 1, "meco", 32)
    with pytest.raises(ValueError, match="variant"):
        proxies.get("meco", variant="opt")
