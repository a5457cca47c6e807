"""AZ-NAS: Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024
(cvlab-yonsei/AZ-NAS: ``NB201/ZeroShotProxy/compute_az_nas_score.py``, ``NB201/custom/tss_model.py``,
``NB201/tss_general.ipynb``). REFERENCE B, D.3.

Four measures per architecture, assembled over a population by Σ log(rank / N):

- expressivity: how isotropic each cell's feature distribution is, the entropy of the normalised
  eigenvalues of the channel covariance, summed over the cell features;
- progressivity: the smallest increase of that entropy from one cell to the next;
- trainability: how close the spectral norm of each cell's (sampled) input-output Jacobian is to 1;
- complexity: the FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, PopulationRule, Proxy, ProxyError, Reference
from proxies.cost import count_flops
from proxies.mechanics import InitScheme, build, normal
from proxies.options import GE
from proxies.registry import register

EXPRESSIVITY = "az_nas.expressivity"
PROGRESSIVITY = "az_nas.progressivity"
TRAINABILITY = "az_nas.trainability"
COMPLEXITY = "az_nas.complexity"
COMPONENTS: tuple[str, ...] = (EXPRESSIVITY, PROGRESSIVITY, TRAINABILITY, COMPLEXITY)
"""The four components, each oriented higher-is-better, in the paper's order."""


def feature_modules(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are AZ-NAS's "cell features", applied one after the other: the network's
    ``stem`` (when it has one), then each child of its ``cells`` (NB201: the 15 cells and the 2 reduction
    blocks, as ``TinyNetwork.extract_cell_features`` reads them) or ``blocks`` (ZenNet: each super-block;
    NAS-Bench-Macro: each searchable layer). A block that is ``nn.Identity`` (a Macro layer whose op is the
    identity) is left out: its output is its input, a feature already read, and the reference's MobileNetV2
    search, which reads the ReLU outputs inside blocks, finds none in it. Cells are all read, as the
    reference reads NB201's (an identity cell gives trainability −inf)."""
    for attr in ("cells", "blocks"):
        body = getattr(net, attr, None)
        if isinstance(body, nn.Sequential | nn.ModuleList) and len(body) > 0:
            stem = getattr(net, "stem", None)
            kept = [m for m in body if attr == "cells" or not isinstance(m, nn.Identity)]
            return ([stem] if isinstance(stem, nn.Module) else []) + kept
    raise ProxyError(
        f"az_nas: {type(net).__name__} has no 'cells' or 'blocks' sequence to read cell features from "
        f"(expected a 'stem' module and a sequence of cells, as NAS-Bench-201's TinyNetwork)"
    )


@dataclass(frozen=True)
class CellRecord:
    """One cell's forward: its input as a fresh leaf that requires grad, and its output (the graph between
    the two is the cell's alone). The stem's record has the network input, which needs no grad."""

    input: Tensor
    output: Tensor


def cell_records(net: nn.Module, x: Tensor) -> list[CellRecord]:
    """One forward through :func:`feature_modules`, each cell fed the previous output as a new leaf: the
    outputs are the reference's cell features, and the gradient at a cell's input of a vector at its output
    is the reference's ``autograd.grad(f_out, f_in)``. The stem runs without a graph; no weight needs a
    gradient."""
    modules = feature_modules(net)
    with torch.no_grad():
        records = [CellRecord(x, modules[0](x))]
    for module in modules[1:]:
        leaf = records[-1].output.detach().requires_grad_(True)
        records.append(CellRecord(leaf, module(leaf)))
    return records


def _rows(t: Tensor) -> Tensor:
    """A (B, C, H, W) tensor as its B·H·W rows of C channels (a view for a channels-last tensor)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def feature_entropy(feature: Tensor) -> float:
    """Entropy −Σ p log(p + 1e-8) of p = λ / Σλ, λ the eigenvalues of the covariance (over all batch × space
    positions, divided by their count) of the C channels of a (B, C, H, W) feature: at most log C, reached
    by an isotropic distribution. NaN for a constant feature (Σλ = 0), as in the reference.

    The covariance is accumulated in the feature's precision (float32, as the reference), its eigenvalues
    taken in float64 and those below 0 set to 0: a singular covariance (fewer positions than channels, or
    dependent channels) rounds to tiny eigenvalues of either sign, and a negative one below −1e-8·Σλ would
    make the reference's log NaN, hence −inf."""
    rows = _rows(feature.detach())
    rows = rows - rows.mean(dim=0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh((rows.T @ rows).double() / rows.shape[0]).clamp(min=0)
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def jacobian_score(g_in: Tensor, g_out: Tensor) -> float:
    """−σ − 1/(σ + 1e-6) + 2 (at most 0, reached at σ = 1), σ the largest singular value of
    M = Σ_positions g_in g_outᵀ / (B·H·W): a Monte-Carlo estimate of a cell's Jacobian, from the gradient
    g_in at its input of a random gradient g_out at its output. A strided cell's g_in is first folded to
    the output resolution (``pixel_unshuffle``, so each output position pairs with its input patch).
    −inf when g_in equals g_out (the cell is the identity), as in the reference. M is accumulated in the
    gradients' precision (float32, as the reference), its singular values in float64."""
    if g_in.shape == g_out.shape and bool(torch.equal(g_in, g_out)):
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    sigma = float(torch.linalg.svdvals((_rows(g_in).T @ _rows(g_out)).double() / _rows(g_out).shape[0]).max())
    return -sigma - 1 / (sigma + 1e-6) + 2


def input_grad(cell: CellRecord, g_out: Tensor) -> Tensor:
    """The vector-Jacobian product g_outᵀ ∂output/∂input of one cell, freeing its graph. g_out itself when
    the cell returns its input; zero when the output does not depend on the input (our NB201 cells give a
    dead node an explicit zero tensor, the reference's ``x.mul(0)`` the same zero gradient)."""
    if cell.output is cell.input:
        return g_out
    if cell.output.requires_grad:
        (g_in,) = torch.autograd.grad(cell.output, cell.input, g_out, allow_unused=True)
        if g_in is not None:
            return g_in
    return torch.zeros_like(cell.input)


_SIGNS_OF_BYTE = (((torch.arange(256)[:, None] >> torch.arange(8)) & 1) * 2 - 1).float()
"""Row k: the 8 bits of the byte k as ±1 (bit set: +1), lowest bit first."""


def rademacher(shape: torch.Size, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A (B, C, H, W) tensor of independent ±1 signs, each with probability 1/2 (the reference draws
    ``(bernoulli(0.5) − 0.5) · 2``): the bits of uniform random bytes from the CPU generator, laid out in
    B, H, W, C order (channels-last, as the CPU features are), so CPU and CUDA runs draw the same signs."""
    b, c, h, w = shape
    count = b * c * h * w
    random_bytes = torch.randint(256, (-(-count // 8),)).to(device)
    signs = F.embedding(random_bytes, _SIGNS_OF_BYTE.to(device, dtype)).flatten()[:count]
    return signs.view(b, h, w, c).permute(0, 3, 1, 2)


def _nan_to_neg_inf(value: float) -> float:
    return -math.inf if math.isnan(value) else float(value)


@register
@dataclass
class AzNas(Proxy):
    """AZ-NAS: expressivity, progressivity, trainability and complexity, assembled over the population.

    Reference choices (``compute_az_nas_score.compute_nas_score`` as ``tss_general.ipynb`` calls it):

    - network: NB201's ``TinyNetwork`` (C=16, N=5, cells with affine, statistics-tracking BN), train mode;
      ``init_method='kaiming_norm_fanin'``: conv and linear weights ``kaiming_normal_`` (fan_in, ReLU gain),
      biases 0, BN γ = 1, β = 0 (``init``; the reference's other inits are not used by its harness);
    - input: ``trainloader=None`` for az_nas in the harness, so one batch of ``batch_size`` = 64 (the
      search loader's) standard Gaussian images, no real data (``input_kind`` "gaussian");
    - cell features (``extract_cell_features``): the stem output and every cell's output, the two
      reduction blocks included (18 features on NB201), from one forward;
    - expressivity: per feature, the entropy of the normalised eigenvalues of the channel covariance over
      all B·H·W positions (:func:`feature_entropy`); the sum over features. Progressivity: the minimum over
      consecutive features of the entropy's increase;
    - trainability: for each cell, last to first, a Rademacher g_out at its output is back-propagated to
      its input (``autograd.grad``, graph freed as it goes) and scored by :func:`jacobian_score`; the mean
      over cells. An identity cell gives −inf;
    - NaN → −inf for these three (the reference's ``info`` entries);
    - complexity: FLOPs. The harness takes NATS-Bench's ``get_compute_costs(dataset)['flops']`` (xautodl
      ``get_model_infos``: conv and linear multiply-accumulates, plus their bias terms). Ours is
      :func:`proxies.cost.count_flops` with ``count="conv"`` in MFLOPs, which leaves out the bias terms: on
      NB201 only the classifier has a bias, so ours is NATS's minus ``num_classes`` FLOPs for every
      architecture, the same ranking;
    - assembly (:meth:`population_rule`): Σ over the four components of log(rank / N), ranks ascending
      (``scipy.stats.rankdata``, ties averaged), over the N scored architectures.

    Deviations: the covariances and Jacobian estimates are accumulated in float32 as in the reference,
    their eigen- and singular values taken in float64, and negative eigenvalues (rounding of a singular
    covariance) set to 0, where the reference's log can turn them into NaN, then −inf
    (:func:`feature_entropy`); the Rademacher signs are the bits of random bytes from the CPU generator
    (the reference: ``torch.bernoulli`` on the GPU). Each cell is fed a detached copy of the previous
    feature and no weight requires a gradient: the gradients w.r.t. cell inputs are the same, with no
    graph kept beyond a cell.

    Per-architecture ``value``: the expressivity, the best-ranking component on its own (measured here on
    300 random NB201 CIFAR-10 architectures, Spearman with test accuracy: expressivity 0.79, progressivity
    0.74, complexity 0.73, trainability 0.48; the assembled score 0.92). The AZ-NAS score itself needs the
    population: :meth:`population_rule`.

    Other networks: cell features are read from a ``stem`` and a ``cells`` or ``blocks`` sequence
    (:func:`feature_modules`); on a ZenNet these are its super-blocks, where the reference's MobileNetV2
    search reads every ReLU output inside its blocks instead.
    """

    name: ClassVar[str] = "az_nas"
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"-inf"}),
        "expressivity (the value) and progressivity are -inf when a cell feature is constant (a disconnected NB201 "
        "cell zeroes every later feature); trainability is -inf for an identity cell and about -1e6 for a cell whose "
        "output ignores its input; complexity is always finite")
    reference: ClassVar[Reference] = Reference(
        paper='Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024',
        code="cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_az_nas_score.py (compute_nas_score, as "
             "NB201/tss_general.ipynb calls it)",
        choices={
            "network": "NB201 TinyNetwork (C=16, N=5, cells with affine, statistics-tracking BN)",
            "init": "kaiming_norm_fanin: conv and linear weights kaiming_normal_ (fan_in, ReLU gain), biases 0, "
                    "BN γ = 1, β = 0",
            "bn": "train mode",
            "input": "one batch of 64 standard Gaussian images (trainloader=None), no real data",
            "features": "the stem output and every cell's output, reduction blocks included (18 on NB201), "
                        "from one forward",
            "expressivity": "per feature, the entropy of the normalised eigenvalues of the channel covariance "
                            "over all B·H·W positions; the sum over features",
            "progressivity": "the minimum over consecutive features of the entropy's increase",
            "trainability": "per cell, last to first, a Rademacher g_out back-propagated to the cell's input, "
                            "scored by how close the sampled Jacobian's spectral norm is to 1; the mean over cells",
            "non_finite": "NaN → −inf for expressivity, progressivity and trainability",
            "complexity": "NATS-Bench's FLOPs (get_compute_costs(dataset)['flops'])",
            "assembly": "Σ over the four components of log(rank / N), ranks ascending, ties averaged",
        })

    batch_size: int = field(default=64, metadata={GE: 1})
    """Gaussian images in the one forward (the harness: its search loader's batch size, 64)."""
    init: InitScheme = "kaiming_fan_in"

    @property
    def input_kind(self) -> str:
        return "gaussian"

    def population_rule(self) -> PopulationRule:
        """AZ-NAS's assembly: Σ log(rank / N) over the four components."""
        return PopulationRule("log_rank_sum", COMPONENTS)

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        net = build(factory, device, self.init).requires_grad_(False)
        records = cell_records(net, normal((self.batch_size, *factory.input_shape), device))
        if len(records) < 2:
            raise ProxyError(f"az_nas: {type(net).__name__} has {len(records)} cell feature(s), need 2 or more")
        entropies = np.array([feature_entropy(r.output) for r in records])
        scores = []
        for cell in reversed(records[1:]):  # last cell first, as the reference draws its g_out
            g_out = rademacher(cell.output.shape, device, cell.output.dtype)
            scores.append(jacobian_score(input_grad(cell, g_out), g_out))
        del records
        expressivity = _nan_to_neg_inf(float(entropies.sum()))
        return {
            EXPRESSIVITY: expressivity,
            PROGRESSIVITY: _nan_to_neg_inf(float(np.min(np.diff(entropies)))),
            TRAINABILITY: _nan_to_neg_inf(float(np.mean(scores))),
            COMPLEXITY: count_flops(net, factory.input_shape, "conv") / 1e6,
            "value": expressivity,
        }
