"""TE-NAS: Chen, Gong & Wang, "Neural Architecture Search on ImageNet in Four GPU Hours: A Theoretically
Inspired Perspective", ICLR 2021 (VITA-Group/TENAS: ``lib/procedures/ntk.py``,
``lib/procedures/linear_region_counter.py``, ``prune_tenas.py``, ``prune_launch.py``). REFERENCE B.9.

Two measures per architecture, combined over a population by the sum of their ranks:

- the condition number κ = λ_max / λ_min of the neural tangent kernel Θ = J·Jᵀ on a real batch
  (trainability: lower is better, so the component is −κ);
- the number of linear regions, i.e. of distinct ReLU activation patterns over many inputs
  (expressivity: higher is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, PopulationRule, Proxy, ProxyError, Reference
from proxies.mechanics import InitScheme, build, capture
from proxies.options import GE
from proxies.per_sample_grads import per_sample_grads
from proxies.registry import register

NTK_COMPONENT = "tenas.ntk"
LR_COMPONENT = "tenas.lr"
NTK_VARIANT = "tenas-ntk"
"""The factory variant TE-NAS scores the NTK on (NB201: C=3, one cell per stage, ``prune_tenas.py``)."""
LR_VARIANT = "tenas-lr"
"""The factory variant TE-NAS counts linear regions on (NB201: one C=1 cell, 1 input channel, no stem)."""


def ntk_gram(net: nn.Module, images: Tensor, chunk_size: int | None = None) -> Tensor:
    """Θ = J·Jᵀ (float64, N×N), J_i the gradient of sample i's summed logits w.r.t. every parameter whose
    name contains "weight" (conv, BN γ, linear), through one batched forward in the network's current mode
    (TENAS ``get_ntk_n``). Rows come from :func:`proxies.per_sample_grads.per_sample_grads`."""
    params = {name: p for name, p in net.named_parameters() if "weight" in name}
    if not params:
        raise ProxyError(f"tenas: {type(net).__name__} has no parameter whose name contains 'weight'")
    rows = per_sample_grads(net, images, params, chunk_size=chunk_size)
    gram = torch.zeros((images.shape[0],) * 2, dtype=torch.float64, device=images.device)
    for g in rows.values():
        flat = g.flatten(1).double()
        gram += flat @ flat.T
    return gram


def condition_number(gram: Tensor) -> float:
    """κ = λ_max / λ_min of a symmetric PSD matrix (``eigvalsh`` in float64). NaN policy: a singular or
    non-finite kernel (λ_min ≤ 0, e.g. J = 0 for a network whose output ignores its input) gives +inf."""
    if not bool(torch.isfinite(gram).all()):
        return math.inf
    eigenvalues = torch.linalg.eigvalsh(gram.double())
    smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
    return largest / smallest if smallest > 0 else math.inf


def activation_patterns(net: nn.Module, images: Tensor) -> Tensor:
    """Per sample, the on/off pattern of every ``nn.ReLU`` output (4-D activations only, as TENAS's
    ``Linear_Region_Collector`` hooks), bit-packed: uint8 (N, ⌈units/8⌉). One forward, no gradient."""

    def pack(module: nn.Module, t: Tensor) -> Tensor | None:
        return _pack_bits(t.detach().flatten(1) > 0) if t.ndim == 4 else None

    with torch.no_grad(), capture(net, lambda m: isinstance(m, nn.ReLU), "output", pack) as per_relu:
        net(images)
    packed = [p for p in per_relu if p is not None]
    if not packed:
        raise ProxyError(f"tenas: {type(net).__name__} has no nn.ReLU on 4-D activations to count regions with")
    return torch.cat(packed, dim=1)


def count_distinct(patterns: Tensor) -> int:
    """Number of distinct rows (TENAS's Σ_i 1/|{j: pattern_j = pattern_i}|, computed exactly)."""
    return int(torch.unique(patterns, dim=0).shape[0])


def random_crops(images: Tensor, count: int, size: int) -> Tensor:
    """``count`` single-channel ``size``×``size`` crops (count, 1, size, size) of ``images`` (N, C, H, W):
    image, channel and position drawn from the global torch RNG, distinct while there are enough
    (TENAS: ``RandomCrop(size)`` then ``RandChannel(1)`` of distinct shuffled training images)."""
    n, c, h, w = images.shape
    if h < size or w < size:
        raise ProxyError(f"tenas: {size}x{size} crops need images of at least that size, got {h}x{w}")
    places = n * c * (h - size + 1) * (w - size + 1)
    flat = torch.randperm(places)[:count] if places >= count else torch.randint(places, (count,))
    flat, x0 = flat.div(w - size + 1, rounding_mode="floor"), flat % (w - size + 1)
    flat, y0 = flat.div(h - size + 1, rounding_mode="floor"), flat % (h - size + 1)
    index, channel = flat.div(c, rounding_mode="floor"), flat % c
    offsets = torch.arange(size)
    rows, cols = (y0[:, None] + offsets)[:, :, None], (x0[:, None] + offsets)[:, None, :]
    index, channel = index.to(images.device), channel.to(images.device)
    crops = images[index[:, None, None], channel[:, None, None], rows.to(images.device), cols.to(images.device)]
    return crops.unsqueeze(1)


def _pack_bits(bits: Tensor) -> Tensor:
    n, units = bits.shape
    padded = torch.nn.functional.pad(bits.to(torch.uint8), (0, -units % 8)).reshape(n, -1, 8)
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=bits.device)
    return (padded * weights).sum(dim=2, dtype=torch.uint8)


@register
@dataclass
class TeNas(Proxy):
    """TE-NAS: NTK condition number and number of linear regions, ranked jointly over the population.

    Reference choices (TENAS, NAS-Bench-201 settings of ``prune_launch.py`` / ``prune_tenas.py``):

    - NTK: train mode; one batch of ``batch_size`` = 72 real training images; J_i = gradient of sample i's
      summed logits (``logit[i].backward(ones)``) w.r.t. every parameter whose name contains "weight"
      (conv, BN γ, linear) through one batched forward, so BN's batch statistics couple the rows;
      Θ = J·Jᵀ; κ = λ_max/λ_min (``torch.symeig`` there, ``eigvalsh`` in float64 here);
      PyTorch's default init (``ntk_init``; see the deviation below).
    - Linear regions: PyTorch's default init (``lr_init``), train mode, no gradient; forward hooks
      on every ``nn.ReLU`` output of a 4-D activation, sign → binary pattern per sample, #LR = number of
      distinct patterns over all ``lr_samples`` = 3,000 inputs, fed as 3 batches of ``lr_batch`` = 1,000
      (BN normalises each batch by itself; the patterns of all 3,000 are counted together, as TENAS's
      ``LinearRegionCount`` does with ``input_size=(1000, 1, 3, 3), sample_batch=3``). The inputs are
      single-channel 3×3 crops of real images (``RandomCrop(3)``, ``RandChannel(1)``); here they are cut
      from the scored batch (random image, channel and position, distinct, from the seeded RNG), where
      TENAS takes one crop from each of 3,000 training images.
    - Networks (``network="thin"``, the default): TENAS scores the NTK on a thin copy of the network
      (NB201: C=3, one cell per stage) and the linear regions on a 1-channel network of one cell without
      stem or reductions (TENAS ``depth=1``). They are asked of the factory by name, as the variants
      ``tenas-ntk`` and ``tenas-lr`` the benchmark defines in its own terms; a factory without them
      makes the score fail with a one-line :class:`ProxyError`. ``network="full"`` scores the network the
      factory builds: the NTK on the batch, the regions on the batch's full-size images (as the
      AZ-NAS/VKDNW per-architecture port). On the full NB201 network every image lands in a region of
      its own, so #LR saturates at the sample count and ranks nothing.
    - Combination: TENAS prunes a supernet, ranking each candidate op by its κ change (descending) and
      #LR change (ascending) and removing the op with the smallest rank sum. Per architecture (as the
      AZ-NAS/VKDNW ports and REFERENCE A.1's "TE-NAS rank-sum"), the score is rank(−κ) + rank(#LR) over
      the scored population, ties averaged: declared by :meth:`population_rule` as data and applied by
      ``bench.statistics`` to the stored components. TENAS rounds its (noisy, relative) pruning deltas to
      3 significant digits before ranking; the per-architecture values are absolute, so
      ``rank_precision`` defaults to no rounding.

    Per-architecture ``value``: −κ (the ``tenas.ntk`` component; ``parts="lr"``: #LR). Components:
    ``tenas.ntk`` = −κ and ``tenas.lr`` = #LR, each the mean over ``repeat`` re-initialisations (TENAS's
    pruning averaged 3; the per-architecture ports use 1). ``parts`` restricts the computation to one
    measure (for timing).

    Init, as the released code runs: ``prune_launch.py`` passes ``init=kaiming_normal`` and
    ``prune_tenas.py`` asks ``init_model`` for ``kaiming_normal_fanout`` (NTK) and ``kaiming_normal_fanin``
    (regions), names its branches (``kaiming_norm_fanin/fanout``) do not match, so no re-init happens: the
    released TENAS runs score PyTorch's default init, and its "repeats" differ only by the batch drawn. The
    defaults ``ntk_init="default", lr_init="default"`` reproduce that; the paper's stated protocol (Kaiming
    normal, fan_out for the NTK and fan_in for the regions) is ``ntk_init="kaiming_fan_out",
    lr_init="kaiming_fan_in"`` (zenbench's default before 2026-12-02, option hash ``ea2fda0fc018``).

    Noise: κ of one architecture moves a lot with the init seed. On the 30 timing architectures (NB201
    indices 0, 521, ..., one shared batch of 72 CIFAR-10 images) the Spearman of −κ between init seeds 0, 1
    and 2 is 0.61 / 0.63 / 0.41 with the default init and 0.62 / 0.48 / 0.48 with Kaiming: the 0.49 between
    the TENAS code and ours there (REFERENCE F.3, different seeds and batches) is within the NTK's own
    seed-to-seed agreement, not a protocol difference.
    """

    name: ClassVar[str] = "tenas"
    needs: ClassVar[Needs] = "images"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"-inf"}),
        "tenas.ntk (the value) is -inf when the NTK is singular (λ_min <= 0, e.g. a disconnected NB201 cell makes J = "
        "0): κ = +inf, ranked last; tenas.lr is always a finite count")
    reference: ClassVar[Reference] = Reference(
        paper='Chen, Gong & Wang, "Neural Architecture Search on ImageNet in Four GPU Hours: A Theoretically '
              'Inspired Perspective", ICLR 2021',
        code="VITA-Group/TENAS lib/procedures/ntk.py, lib/procedures/linear_region_counter.py, prune_tenas.py, "
             "prune_launch.py (NAS-Bench-201 settings)",
        choices={
            "network": "the NTK on a thin copy (NB201: C=3, one cell per stage); the linear regions on a 1-channel "
                       "network of one cell without stem or reductions (depth=1)",
            "init": "PyTorch's default, as the released code runs (the paper states kaiming_normal, fan_out for the "
                    "NTK and fan_in for the linear regions; prune_launch.py's init=kaiming_normal is not recognised "
                    "by prune_tenas.init_model, so the released runs kept PyTorch's default)",
            "bn": "train mode",
            "input": "the NTK on one batch of 72 real training images; the linear regions on 3,000 single-channel "
                     "3×3 crops of training images, fed as 3 batches of 1,000",
            "ntk": "J_i = gradient of sample i's summed logits w.r.t. every parameter whose name contains 'weight', "
                   "through one batched forward; κ = λ_max/λ_min of Θ = J·Jᵀ (torch.symeig)",
            "linear_regions": "distinct sign patterns of every nn.ReLU output of a 4-D activation over all 3,000 "
                              "inputs, no gradient",
            "repeats": "3, averaged, in the pruning",
            "assembly": "supernet pruning: each op ranked by its κ change (descending) and #LR change (ascending), "
                        "deltas rounded to 3 significant digits, the op of the smallest rank sum removed",
        })

    batch_size: int = field(default=72, metadata={GE: 1})
    """Real images in the NTK batch (TENAS NB201: 72); the linear-region crops are cut from these too."""
    network: Literal["thin", "full"] = "thin"
    repeat: int = field(default=1, metadata={GE: 1})
    ntk_init: InitScheme = "default"
    lr_init: InitScheme = "default"
    lr_samples: int = field(default=3000, metadata={GE: 1})
    lr_batch: int = field(default=1000, metadata={GE: 1})
    lr_crop: int = field(default=3, metadata={GE: 1})
    rank_precision: int | None = field(default=None, metadata={GE: 1})
    parts: Literal["ntk+lr", "ntk", "lr"] = "ntk+lr"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        if batch is None:
            raise ProxyError("tenas needs a batch of real images")
        images = batch.images.to(device)
        # one seed per measure, so each is the same whether or not the other one runs
        ntk_seed, lr_seed = (int(s) for s in torch.randint(2**62, (2,)))
        out: dict[str, float] = {}
        if "ntk" in self.parts:
            torch.manual_seed(ntk_seed)
            kappas = [condition_number(ntk_gram(self._network(factory, device, "ntk"), images))
                      for _ in range(self.repeat)]
            out[NTK_COMPONENT] = -float(np.mean(kappas))
        if "lr" in self.parts:
            torch.manual_seed(lr_seed)
            out[LR_COMPONENT] = float(np.mean([self._linear_regions(factory, images, device)
                                               for _ in range(self.repeat)]))
        out["value"] = out[NTK_COMPONENT] if "ntk" in self.parts else out[LR_COMPONENT]
        return out

    def population_rule(self) -> PopulationRule | None:
        """rank(tenas.ntk) + rank(tenas.lr) over the population, components rounded to ``rank_precision``
        significant digits first; ``None`` when only one measure is computed (``parts``)."""
        if self.parts != "ntk+lr":
            return None
        return PopulationRule("rank_sum", (NTK_COMPONENT, LR_COMPONENT), self.rank_precision)

    def _network(self, factory: NetworkFactory, device: torch.device, part: str) -> nn.Module:
        init = self.ntk_init if part == "ntk" else self.lr_init
        if self.network == "full":
            return build(factory, device, init)
        variant = NTK_VARIANT if part == "ntk" else LR_VARIANT
        try:
            return build(factory, device, init, variant=variant)
        except TypeError as exc:  # VariantUnavailable, or a factory that takes no variant at all
            raise ProxyError(
                f"tenas: the factory cannot build TE-NAS's thin {part} network {variant!r} ({exc}); use "
                f"network='full' to score the network as built"
            ) from exc

    def _linear_regions(self, factory: NetworkFactory, images: Tensor, device: torch.device) -> int:
        net = self._network(factory, device, "lr")
        if self.network == "full":
            inputs = [images]
        else:
            crops = random_crops(images, self.lr_samples, self.lr_crop)
            inputs = list(crops.split(self.lr_batch))
        return count_distinct(torch.cat([activation_patterns(net, x) for x in inputs]))
