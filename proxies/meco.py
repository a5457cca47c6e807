"""MeCo: Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of
Correlation", NeurIPS 2023 (HamsterMimi/MeCo ``correlation/NAS_Bench_201.py``, ``get_score``; the repo's
foresight measure ``correlation/foresight/pruners/measures/meco.py``). REFERENCE B.11.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.mechanics import build, capture, normal
from proxies.options import GE
from proxies.registry import register

OPT_CHANNELS = 8
"""Channels ``meco_opt`` samples per module (the reference's ``random.sample(range(n), 8)``)."""
GAUSSIAN_SIDE = 64
"""Side of the foresight measure's Gaussian input (``torch.randn(1, 3, 64, 64)``, whatever the dataset)."""


def min_correlation_eigenvalue(feature_map: Tensor, channels: int | None = None) -> Tensor | None:
    """λ_min of the channel correlation matrix of one sample's feature map (C, *positions), in float64.

    P = corrcoef of the C rows (one per channel, its values over the positions), NaN and ±inf entries set
    to 0 (a channel constant over the positions gives a zero row and column), eigenvalues from ``eigvalsh``
    (P is symmetric; the reference's general ``eig`` gives the same real values up to rounding).
    With at least as many rows as positions, λ_min is exactly 0 and no eigenvalues are computed: the centred
    rows lie in the (positions − 1)-dimensional space orthogonal to the ones vector, so P, a PSD matrix of
    that rank at most (zeroed rows and columns included), is singular; ``eigvalsh`` would return a rounding
    residue of about 1e-14 there, at up to 0.5 s for a 1536-channel map of 4×4 positions on one CPU thread.
    ``channels``: use that many channels drawn at random (global torch RNG) and scale λ_min by C/that
    (``meco_opt``). ``None`` for a map with a single position: every entry of P is NaN, so λ_min is 0.
    """
    rows = feature_map.detach().reshape(feature_map.shape[0], -1)
    if rows.shape[1] < 2:
        return None
    scale = 1.0
    if channels is not None and channels < rows.shape[0]:
        scale = rows.shape[0] / channels
        rows = rows[torch.randperm(rows.shape[0])[:channels].to(rows.device)]
    if rows.shape[0] >= rows.shape[1]:
        return torch.zeros((), dtype=torch.float64, device=rows.device)
    corr = torch.corrcoef(rows.double()).reshape(rows.shape[0], rows.shape[0])
    return torch.linalg.eigvalsh(torch.where(torch.isfinite(corr), corr, 0.0))[0] * scale


def resized(images: Tensor, side: int | None) -> Tensor:
    """``images`` with the shorter side scaled to ``side`` (torchvision's ``Resize(side)``: bilinear, aspect
    kept), or unchanged when ``side`` is ``None`` or already that."""
    h, w = images.shape[-2:]
    if side is None or min(h, w) == side:
        return images
    size = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def meco_terms(net: nn.Module, images: Tensor, channels: int | None = None) -> list[Tensor]:
    """λ_min (:func:`min_correlation_eigenvalue`) of the first sample's output of every module call in one
    forward, no gradient: every module of ``net``, the root and containers included (a container's output
    is its last child's, so it counts again), as the reference hooks ``named_modules()``. Outputs that are
    not tensors with a batch axis and a channel axis are left out."""

    def term(module: nn.Module, out: object) -> Tensor | None:
        if not isinstance(out, Tensor) or out.ndim < 2:
            return None
        return min_correlation_eigenvalue(out[0], channels)

    with torch.no_grad(), capture(net, lambda m: True, "output", term) as per_module:
        net(images)
    return [t for t in per_module if t is not None]


@register
@dataclass
class MeCo(Proxy):
    """Σ over all module outputs of the minimum eigenvalue of the first sample's channel correlation matrix.

    Reference choices (MeCo ``correlation/NAS_Bench_201.py``; REFERENCE B.11):

    - PyTorch's default init (``init_w_type none``), the network in train mode (BN on batch statistics),
      one forward, no gradient needed;
    - input: ``batch_size`` = 1 real training image (``--batch_size 1``, drawn once and used for every
      architecture; the reference's passes the training augmentation, random crop and flip, ours is the
      batch's image as given); with more images the forward sees them all (BN statistics) and the maps are
      read from the first. ``resize`` = 32 (``--data_size 32``): the loader resizes every image to 32×32,
      a no-op on CIFAR, ImageNet16's 16×16 images upsampled (here bilinearly after normalisation, which
      commutes with it; ``None`` feeds them as they are);
    - a forward hook on every module (``named_modules()``: the network itself, containers and leaves);
      each takes ``output[0]``, the first sample's C×H×W map, as C rows of H·W values;
    - P = ``corrcoef`` of the rows, NaN/inf entries → 0, λ_min = the smallest real eigenvalue;
    - score Σ λ_min over the module calls (the reference drops NaN/inf terms; none arise here).

    The sum runs over the modules of the network the factory builds, so it depends on how that network is
    split into modules: the reference's network (Samsung's NB201 model) wraps each ReLU-Conv-BN and the stem
    in one more module than ours (their BN output counts three times, ours twice), its pooling op in a
    module of its own (twice, ours once) and each stage's cells in their own container (the last cell of
    stages 1 and 2 counts once more there). Measured on 200 NB201 CIFAR-10 archs, the two counts rank them
    at Spearman 0.9994 against each other (ρ with test accuracy 0.905 ours, 0.901 the reference's tree).

    ``variant="meco_opt"``: per module, λ_min of 8 randomly chosen channels' correlation, scaled by C/8
    (the reference draws them with Python's unseeded ``random``; we use the seeded torch RNG, and all C
    channels where C ≤ 8, where the reference fails). ``input="gaussian"``: the repo's registered foresight
    measure, which ignores the data and feeds one N(0, 1) image of 64×64 (``batch_size`` of them here).
    Modules whose output is not a tensor with batch and channel axes (the reference would fail) and maps
    with a single position (λ_min = 0 there) add nothing.
    """

    name: ClassVar[str] = "meco"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset(),
        "always finite (correlation entries that are NaN or inf, from constant channels, are set to 0 as the reference "
        "does)")
    reference: ClassVar[Reference] = Reference(
        paper='Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue '
              'of Correlation", NeurIPS 2023',
        code="HamsterMimi/MeCo correlation/NAS_Bench_201.py (get_score)",
        choices={
            "init": "PyTorch default (init_w_type none)",
            "bn": "train mode (batch statistics)",
            "input": "1 real training image (--batch_size 1), drawn once, with the training augmentation (random "
                     "crop and flip), resized to 32×32 (--data_size 32)",
            "maps": "a forward hook on every module (named_modules()): output[0] as C rows of H·W values",
            "score": "Σ over module calls of the smallest real eigenvalue of corrcoef of the rows (NaN/inf "
                     "entries → 0; NaN/inf terms dropped)",
        })

    batch_size: int = field(default=1, metadata={GE: 1})
    variant: Literal["meco", "meco_opt"] = "meco"
    input: Literal["real", "gaussian"] = "real"
    resize: int | None = field(default=32, metadata={GE: 1})

    @property
    def needs(self) -> Needs:  # type: ignore[override]
        return "images" if self.input == "real" else "nothing"

    @property
    def input_kind(self) -> str:
        return self.input

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        net = build(factory, device)
        if self.input == "gaussian":
            images = normal((self.batch_size, factory.input_shape[0], GAUSSIAN_SIDE, GAUSSIAN_SIDE), device)
        elif batch is None:
            raise ProxyError("meco needs a batch of images")
        else:
            images = resized(batch.images.to(device), self.resize)
        terms = meco_terms(net, images, OPT_CHANNELS if self.variant == "meco_opt" else None)
        return torch.stack(terms).sum() if terms else torch.zeros((), dtype=torch.float64)
