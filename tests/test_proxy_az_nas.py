"""AZ-NAS against hand computations, numpy, and the reference algorithm written out the straightforward way."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import proxies
import proxies.az_nas as az
from proxies import ProxyError, SimpleFactory
from proxies.base import PopulationRule
from proxies.mechanics import build, normal
from proxies.testing import CONNECTED_ARCH, DISCONNECTED_ARCHS, SmallNb201Factory, check_proxy
from search.spaces.nb201 import Nb201Cell


def _entropy_np(rows: np.ndarray) -> float:
    """The reference's expressivity of one feature, in numpy float64: rows are B·H·W positions × C."""
    centred = rows - rows.mean(axis=0, keepdims=True)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred / len(rows))
    with np.errstate(invalid="ignore"):  # a constant feature: 0 / 0, NaN as in the reference
        p = eigenvalues / eigenvalues.sum()
        return float(-(p * np.log(p + 1e-8)).sum())


def _rows_np(t: Tensor) -> np.ndarray:
    return t.detach().double().permute(0, 2, 3, 1).reshape(-1, t.shape[1]).numpy()


def _jacobian_score_np(patches_in: np.ndarray, g_out: np.ndarray) -> float:
    """The reference's per-cell trainability from rows (positions × channels) of g_in (folded) and g_out,
    the "straight-forward way" of the reference's comment: the mean over positions of g_in g_outᵀ."""
    mat = np.einsum("ni,no->io", patches_in, g_out) / len(g_out)
    sigma = np.linalg.svd(mat, compute_uv=False).max()
    return -sigma - 1 / (sigma + 1e-6) + 2


# ----------------------------------------------------------------------------- the interface


def test_conformance() -> None:
    report = check_proxy("az_nas")
    assert set(report.components) == set(az.COMPONENTS)
    assert report.value == report.components[az.EXPRESSIVITY]


def test_population_rule_is_the_log_rank_sum_of_computed_components() -> None:
    proxy = proxies.get("az_nas")
    rule = proxy.population_rule()
    assert rule == PopulationRule("log_rank_sum", ("az_nas.expressivity", "az_nas.progressivity",
                                                   "az_nas.trainability", "az_nas.complexity"))
    result = proxy.score(SmallNb201Factory(), seed=3)
    assert set(rule.components) <= set(result.components)
    assert all(math.isfinite(result.components[c]) for c in rule.components)


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"batch_size": True}, {"init": "xavier"}])
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(ValueError, match="az_nas"):
        proxies.get("az_nas", **options)


def test_a_network_without_cells_is_refused() -> None:
    factory = SimpleFactory(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()))
    with pytest.raises(ProxyError, match="cells"):
        proxies.get("az_nas", batch_size=2).score(factory)


# ----------------------------------------------------------------------------- the two measures


def test_feature_entropy_of_isotropic_and_rank_one_features() -> None:
    # four positions with the channel patterns (±1, 0), (0, ±1): covariance I/2, eigenvalue shares 1/2
    iso = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]).T.reshape(1, 2, 2, 2)
    assert az.feature_entropy(iso) == pytest.approx(-math.log(0.5 + 1e-8), rel=1e-12)
    # proportional channels: one non-zero eigenvalue, entropy -log(1 + 1e-8) ≈ 0
    base = torch.randn(3, 1, 4, 4)
    assert az.feature_entropy(torch.cat([base, 2 * base], dim=1)) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(az.feature_entropy(torch.zeros(2, 3, 4, 4)))


def test_feature_entropy_of_dependent_channels_is_finite() -> None:
    # channels a, b, a+b, a-b in float32: the rounded covariance has a negative eigenvalue below -1e-8·Σλ
    # (seed 0), which made the reference's log NaN; clamped to 0 it gives numpy's float64 entropy
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 1, 8, 8, generator=generator), 3 * torch.randn(2, 1, 8, 8, generator=generator)
    feature = torch.cat([a, b, a + b, a - b], dim=1)
    assert az.feature_entropy(feature) == pytest.approx(_entropy_np(_rows_np(feature)), abs=1e-6)


def test_feature_entropy_matches_numpy() -> None:
    feature = torch.randn(4, 5, 6, 6) * torch.tensor([3.0, 1.0, 0.5, 2.0, 0.1]).view(1, 5, 1, 1) + 0.7
    assert az.feature_entropy(feature) == pytest.approx(_entropy_np(_rows_np(feature)), rel=1e-6)
    channels_last = feature.contiguous(memory_format=torch.channels_last)
    assert az.feature_entropy(channels_last) == pytest.approx(az.feature_entropy(feature), rel=1e-6)


def _balanced_signs(channels: int) -> Tensor:
    """Every ±1 pattern over ``channels`` once, one per position of a (1, C, 2^C, 1) map: Σ g gᵀ / n = I."""
    patterns = torch.tensor(list(itertools.product((1.0, -1.0), repeat=channels)))
    return patterns.T.reshape(1, channels, -1, 1)


def test_jacobian_score_by_hand() -> None:
    g_out = _balanced_signs(2)
    # g_in = 2 g_out (the cell doubles its input): M = 2 I, σ = 2
    assert az.jacobian_score(2 * g_out, g_out) == pytest.approx(-2 - 1 / (2 + 1e-6) + 2, rel=1e-12)
    # the identity: -inf; an output that ignores the input: σ = 0, -1/1e-6 + 2
    assert az.jacobian_score(g_out.clone(), g_out) == -math.inf
    assert az.jacobian_score(torch.zeros_like(g_out), g_out) == pytest.approx(-999998.0, rel=1e-12)


def test_jacobian_score_of_a_strided_cell_is_the_norm_of_its_weight() -> None:
    # cell: conv 2x2, stride 2, 3 -> 2 channels; with balanced g_out, M is the weight matrix: σ = its 2-norm
    weight = torch.randn(2, 3, 2, 2).double()
    g_out = _balanced_signs(2).double().reshape(1, 2, 2, 2)  # 4 output positions on a 2x2 map
    g_in = np.zeros((1, 3, 4, 4))
    for o, c, di, dj, i, j in itertools.product(range(2), range(3), range(2), range(2), range(2), range(2)):
        g_in[0, c, 2 * i + di, 2 * j + dj] += weight[o, c, di, dj] * g_out[0, o, i, j]
    expected_sigma = np.linalg.svd(weight.reshape(2, -1).numpy(), compute_uv=False).max()
    expected = -expected_sigma - 1 / (expected_sigma + 1e-6) + 2
    assert az.jacobian_score(torch.from_numpy(g_in), g_out) == pytest.approx(expected, rel=1e-10)


def test_rademacher_signs() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        signs = az.rademacher(torch.Size((8, 3, 16, 16)), torch.device("cpu"))
    assert signs.shape == (8, 3, 16, 16) and signs.dtype == torch.float32
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(signs.mean())) < 0.05  # 6,144 fair signs: the standard error is 0.013


# ----------------------------------------------------------------------------- a tiny linear network


class LinearNet(nn.Module):
    """stem conv1x1 3->3, cells conv1x1 3->3 and conv2x2/s2 3->4, head 4->10; fixed weights, no bias. The
    strided conv's weight rows are in arithmetic progression (rank 2), so the last feature's covariance is
    singular: the entropy's clamped path."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1, bias=False)
        self.cells = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.Conv2d(3, 4, 2, stride=2, bias=False))
        self.head = nn.Linear(4, 10)
        with torch.no_grad():
            self.stem.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.5, 2.0, 0.0], [0.0, -1.0, 1.0]]).view(3, 3, 1, 1))
            self.cells[0].weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0], [-1.0, 0.0, 0.2]])
                                       .view(3, 3, 1, 1))
            self.cells[1].weight.copy_(torch.linspace(-1.0, 1.5, 48).view(4, 3, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.cells(self.stem(x)).mean(dim=(2, 3)))


def test_components_of_a_linear_network_match_numpy() -> None:
    seed, batch = 4, 4
    factory = SimpleFactory(LinearNet, input_shape=(3, 8, 8))
    result = proxies.get("az_nas", batch_size=batch, init="default").score(factory, seed=seed)

    torch.manual_seed(seed)  # the proxy's draws: the network (default init), x, then g_out, last cell first
    net = LinearNet()
    x = torch.randn(batch, 3, 8, 8).double().numpy()
    g2 = az.rademacher(torch.Size((batch, 4, 4, 4)), torch.device("cpu")).double().numpy()
    g1 = az.rademacher(torch.Size((batch, 3, 8, 8)), torch.device("cpu")).double().numpy()
    w0, w1 = (m.weight.detach().double().numpy()[:, :, 0, 0] for m in (net.stem, net.cells[0]))
    w2 = net.cells[1].weight.detach().double().numpy()

    f0 = np.einsum("oc,bchw->bohw", w0, x)
    f1 = np.einsum("oc,bchw->bohw", w1, f0)
    patches = f1.reshape(batch, 3, 4, 2, 4, 2)  # (b, c, i, di, j, dj)
    f2 = np.einsum("ocde,bcidje->boij", w2, patches)
    rows = [f.transpose(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in (f0, f1, f2)]
    entropies = np.array([_entropy_np(r) for r in rows])

    g1_rows = g1.transpose(0, 2, 3, 1).reshape(-1, 3)
    g2_rows = g2.transpose(0, 2, 3, 1).reshape(-1, 4)
    cell1 = _jacobian_score_np(g1_rows @ w1, g1_rows)  # g_in = W1ᵀ g_out at every position
    g2_patch = np.einsum("ocde,boij->bijcde", w2, g2).reshape(-1, 12)  # each input patch's g_in
    cell2 = _jacobian_score_np(g2_patch, g2_rows)

    c = result.components
    assert c[az.EXPRESSIVITY] == pytest.approx(entropies.sum(), rel=1e-6)
    assert c[az.PROGRESSIVITY] == pytest.approx(np.diff(entropies).min(), rel=1e-5, abs=1e-6)
    assert c[az.TRAINABILITY] == pytest.approx((cell1 + cell2) / 2, rel=1e-6)
    # conv MACs: 3·64·3 + 3·64·3 + 4·16·(3·2·2), plus the head's 4·10
    assert c[az.COMPLEXITY] == pytest.approx((576 + 576 + 768 + 40) / 1e6, rel=1e-12)
    assert result.value == c[az.EXPRESSIVITY]


def test_an_identity_cell_makes_trainability_minus_inf() -> None:
    factory = SimpleFactory(lambda: _Chain(nn.Conv2d(3, 4, 1), nn.Identity()), input_shape=(3, 4, 4))
    result = proxies.get("az_nas", batch_size=2).score(factory)
    assert result.components[az.TRAINABILITY] == -math.inf
    assert result.components[az.PROGRESSIVITY] == 0.0  # the identity repeats the stem's entropy


class _Chain(nn.Module):
    def __init__(self, stem: nn.Module, *cells: nn.Module) -> None:
        super().__init__()
        self.stem, self.cells = stem, nn.Sequential(*cells)

    def forward(self, x: Tensor) -> Tensor:
        return self.cells(self.stem(x)).mean(dim=(2, 3))


# ----------------------------------------------------------------------------- the reference algorithm


class ZeroCell(nn.Module):
    """An all-``none`` NB201 cell as xautodl builds it: the output is ``x.mul(0)``, still in the graph."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def _reference(modules: list[nn.Module], x: Tensor, draw: Callable[[torch.Size], Tensor]) -> dict[str, float]:
    """``compute_nas_score`` after its init, as the reference writes it: one forward keeping every cell
    feature in one graph (weights require grad), numpy for the spectra, ``autograd.grad`` per cell."""
    features, feature = [], x
    for module in modules:
        feature = module(feature)
        features.append(feature)
    entropies = np.array([_entropy_np(_rows_np(f)) for f in features])
    scores = []
    for i in reversed(range(1, len(features))):
        g_out = draw(features[i].shape)
        g_in = torch.autograd.grad(features[i], features[i - 1], g_out, retain_graph=True)[0]
        if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
            scores.append(-np.inf)
            continue
        if g_in.shape[2:] != g_out.shape[2:]:
            g_in = nn.PixelUnshuffle(g_in.shape[2] // g_out.shape[2])(g_in)
        scores.append(_jacobian_score_np(_rows_np(g_in), _rows_np(g_out)))

    def finite_or_minus_inf(v: float) -> float:
        return -math.inf if np.isnan(v) else float(v)

    return {az.EXPRESSIVITY: finite_or_minus_inf(entropies.sum()),
            az.PROGRESSIVITY: finite_or_minus_inf(np.min(entropies[1:] - entropies[:-1])),
            az.TRAINABILITY: finite_or_minus_inf(np.mean(scores))}


@pytest.mark.parametrize("arch", [CONNECTED_ARCH, DISCONNECTED_ARCHS[0]])
def test_matches_the_reference_algorithm_on_small_nb201_networks(arch: str) -> None:
    seed, batch = 11, 8
    factory = SmallNb201Factory(arch)
    result = proxies.get("az_nas", batch_size=batch).score(factory, seed=seed)

    torch.manual_seed(seed)  # the same network, input and signs as the proxy draws
    net = build(factory, torch.device("cpu"), "kaiming_fan_in")
    x = normal((batch, *factory.input_shape), torch.device("cpu"))
    # the reference network: xautodl's cells keep an all-none cell in the graph (x.mul(0))
    modules = [ZeroCell() if isinstance(m, Nb201Cell) and not m.ops else m for m in az.feature_modules(net)]
    expected = _reference(modules, x, lambda shape: az.rademacher(shape, torch.device("cpu")))

    for name, value in expected.items():
        assert result.components[name] == pytest.approx(value, rel=2e-5, abs=1e-6), name
    if arch != CONNECTED_ARCH:
        # constant features after the first cell; the all-none cells score -1e6 + 2, the reduction blocks
        # (whose pooled shortcut still passes gradient) less
        assert result.components[az.EXPRESSIVITY] == -math.inf
        assert -999998.0 < result.components[az.TRAINABILITY] < -5e5


def test_a_zennet_is_scored_on_its_super_blocks() -> None:
    from search.spaces.zennet import ZenNetFactory

    factory = ZenNetFactory("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)")
    assert len(az.feature_modules(factory())) == 3
    result = proxies.get("az_nas", batch_size=4).score(factory)
    assert all(math.isfinite(result.components[c]) for c in az.COMPONENTS)


def test_macro_features_are_the_stem_and_every_layer_that_is_not_the_identity():
    """NAS-Bench-Macro '02100200': the first layer's identity changes the shape (a conv1x1-BN projection, kept),
    layers 3, 4, 6 and 7 are identities (left out)."""
    from bench import benchmarks
    from search.spaces.macro import MacroNetwork

    macro = benchmarks.get("macro")
    net = macro.factory(macro.parse("02100200"), "cifar10")()
    assert isinstance(net, MacroNetwork)
    features = az.feature_modules(net)
    assert features[0] is net.stem and not any(isinstance(m, nn.Identity) for m in features)
    assert features[1:] == [net.features[i] for i in (0, 1, 2, 5)]
    result = proxies.get("az_nas").score(macro.factory(macro.parse("02100200"), "cifar10"), None, "cpu", 0)
    assert all(math.isfinite(v) for v in result.components.values())
