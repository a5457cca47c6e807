"""Zen-Score against hand computations: the BN-term bookkeeping and Δ of linear pre-GAP maps."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from torch import Tensor, nn

import proxies
from proxies import SimpleFactory
from proxies.testing import SmallNb201Factory

SHAPE = (2, 4, 4)
BATCH = 8


class ScaledBN(nn.Module):
    """pre-GAP = BN(scale · x): the BN input's variance is scale² times the input's."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.bn = nn.BatchNorm2d(SHAPE[0])

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        return self.bn(self.scale * x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_pre_gap(x).mean(dim=(2, 3))


class Doubler(nn.Module):
    """A parameter-free linear pre-GAP map, f(x) = 2x: Δ = 0.02 · mean_b Σ|ε|."""

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        return 2 * x

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))


class Conv1x1(nn.Module):
    """A linear pre-GAP map with weights (Gaussian-initialised by the proxy), no BN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(SHAPE[0], 3, 1)

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        return self.conv(x)

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))


def _draws(seed: int, repeats: int = 1) -> list[tuple[Tensor, Tensor]]:
    """The proxy's draws for nets whose build and init consume no randomness: x, then ε, per repeat."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(repeats):
        x = torch.randn((BATCH, *SHAPE), generator=gen)
        out.append((x, torch.randn((BATCH, *SHAPE), generator=gen)))
    return out


def _channel_var(t: Tensor, correction: int) -> Tensor:
    return t.transpose(0, 1).flatten(1).var(dim=1, correction=correction)


def test_bn_term_reads_running_var_after_two_passes() -> None:
    scale = 3.0
    result = proxies.get("zen", batch_size=BATCH).score(SimpleFactory(lambda: ScaledBN(scale), SHAPE), seed=5)
    (x, eps), = _draws(5)
    v1 = _channel_var(scale * x, 1)
    v2 = _channel_var(scale * (x + 0.01 * eps), 1)
    expected = 0.5 * math.log(float((0.81 + 0.09 * v1 + 0.1 * v2).mean()))
    assert result.components["zen.bn_term"] == pytest.approx(expected, rel=1e-5)
    # a BN input of variance ≈ 9 reads ≈ 0.81 + 0.19·9, not 9
    assert result.components["zen.bn_term"] == pytest.approx(0.5 * math.log(0.81 + 0.19 * scale**2), abs=0.1)
    assert result.value == pytest.approx(result.components["zen.log_delta"] + expected, rel=1e-5)


def test_bn_term_from_batch_variance() -> None:
    scale = 3.0
    result = proxies.get("zen", batch_size=BATCH, bn_stat="batch").score(
        SimpleFactory(lambda: ScaledBN(scale), SHAPE), seed=5)
    (x, _), = _draws(5)
    expected = 0.5 * math.log(float(_channel_var(scale * x, 0).mean()) + 1e-5)  # + BN eps
    assert result.components["zen.bn_term"] == pytest.approx(expected, rel=1e-5)
    assert result.components["zen.bn_term"] == pytest.approx(math.log(scale), abs=0.15)


def test_delta_of_a_fixed_linear_map() -> None:
    result = proxies.get("zen", batch_size=BATCH).score(SimpleFactory(Doubler, SHAPE), seed=3)
    (_, eps), = _draws(3)
    expected = math.log(float(0.02 * eps.abs().flatten(1).sum(dim=1).mean()))
    assert result.components["zen.log_delta"] == pytest.approx(expected, rel=1e-4)
    assert result.components["zen.bn_term"] == 0.0


def test_delta_is_linear_in_gamma_for_a_linear_map() -> None:
    factory = SimpleFactory(Conv1x1, SHAPE)
    small = proxies.get("zen", batch_size=BATCH, mixup_gamma=0.01).score(factory, seed=1)
    large = proxies.get("zen", batch_size=BATCH, mixup_gamma=0.02).score(factory, seed=1)
    assert large.components["zen.log_delta"] - small.components["zen.log_delta"] == pytest.approx(math.log(2), abs=1e-3)


def test_repeats_average_independent_draws() -> None:
    result = proxies.get("zen", batch_size=BATCH, repeat=2).score(SimpleFactory(Doubler, SHAPE), seed=4)
    expected = [math.log(float(0.02 * eps.abs().flatten(1).sum(dim=1).mean())) for _, eps in _draws(4, 2)]
    assert expected[0] != pytest.approx(expected[1], rel=1e-6)
    assert result.components["zen.log_delta"] == pytest.approx(sum(expected) / 2, rel=1e-4)


def test_nb201_bn_term_counts_every_tracking_bn() -> None:
    """All BNs of an NB201 net track statistics: the bn_term is a sum over stem, cell, reduction and
    final BNs, each ≈ 0.5·log(0.81 + 0.19·v) > 0.5·log 0.81."""
    factory = SmallNb201Factory()
    result = proxies.get("zen", batch_size=16).score(factory, seed=0)
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in factory().modules())
    assert bn_count > 5
    assert result.components["zen.bn_term"] > bn_count * 0.5 * math.log(0.81)
    assert math.isfinite(result.value)
    batch_variant = proxies.get("zen", batch_size=16, bn_stat="batch").score(factory, seed=0)
    assert batch_variant.components["zen.log_delta"] == result.components["zen.log_delta"]
    assert batch_variant.components["zen.bn_term"] != result.components["zen.bn_term"]


def test_batch_variant_is_finite_with_a_conv_on_a_dead_node() -> None:
    """Node 1 is dead (none~0), so the conv on edge 1→2 sees zeros and its BN a zero variance: + eps."""
    dead_node = SmallNb201Factory("|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    result = proxies.get("zen", batch_size=8, bn_stat="batch").score(dead_node)
    assert math.isfinite(result.value)


def test_disconnected_cell_scores_minus_inf() -> None:
    disconnected = SmallNb201Factory("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    result = proxies.get("zen", batch_size=8).score(disconnected)
    assert result.value == -math.inf


@pytest.mark.parametrize("options", [{"bn_stat": "mean"}, {"repeat": 0}, {"batch_size": 0}, {"network": "plain"}])
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(ValueError, match="zen"):
        proxies.get("zen", **options)


def test_declares_a_data_free_gaussian_protocol() -> None:
    proxy = proxies.get("zen")
    assert (proxy.needs, proxy.input_kind, proxy.batch_size, proxy.repeat) == ("nothing", "gaussian", 64, 1)


def test_no_reslink_scores_the_factorys_residual_free_variant() -> None:
    """``network="no-reslink"`` asks the factory for that variant by name: here a residual block whose
    variant drops the skip, so the score equals Zen-Score of the plain branch built directly."""

    class Residual(nn.Module):
        def __init__(self, skip: bool) -> None:
            super().__init__()
            self.skip, self.conv, self.bn = skip, nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

        def forward_pre_gap(self, x: Tensor) -> Tensor:
            return self.bn(self.conv(x)) + (x if self.skip else 0)

        def forward(self, x: Tensor) -> Tensor:
            return self.forward_pre_gap(x).mean((2, 3))

    def build(variant: str | None = None) -> nn.Module:
        return Residual(skip=variant != "no-reslink")

    factory = SimpleFactory(build, input_shape=SHAPE, num_classes=2)
    no_skip = SimpleFactory(lambda: Residual(skip=False), input_shape=SHAPE, num_classes=2)
    plain = proxies.get("zen", batch_size=BATCH, network="no-reslink").score(factory).value
    assert plain == proxies.get("zen", batch_size=BATCH).score(no_skip).value
    assert plain != proxies.get("zen", batch_size=BATCH).score(factory).value


def test_no_reslink_on_nb201_is_a_one_line_error_and_the_default_keeps_its_hash() -> None:
    with pytest.raises(proxies.ProxyError, match="NAS-Bench-201 has no 'no-reslink' network") as error:
        proxies.get("zen", batch_size=8, network="no-reslink").score(SmallNb201Factory())
    assert "\n" not in str(error.value)
    # the option came after scores were stored: at its default it leaves the option hash as it was
    default = proxies.get("zen")
    older = {"proxy": "zen", "batch_size": 64, "mixup_gamma": 0.01, "repeat": 1, "bn_stat": "running_var"}
    assert default.option_hash() == hashlib.sha256(json.dumps(older, sort_keys=True).encode()).hexdigest()[:12]
    assert proxies.get("zen", network="no-reslink").option_hash() != default.option_hash()
