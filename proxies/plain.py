"""plain: the first-order Taylor term of the loss, Σ W ⊙ ∂L/∂W, a baseline in Abdelfattah et al., "Zero-Cost
Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/plain.py``;
NASLib's ``naslib/predictors/utils/pruners/measures/plain.py`` is the same code; NAS-Bench-Suite-Zero lists
it). REFERENCE B.14.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from proxies.base import Reference
from proxies.loss_saliency import SHARED_CHOICES, ZERO_COST_PAPER, GradientSaliency, LossPass, layer_sum
from proxies.registry import register


def plain_score(p: LossPass) -> Tensor:
    """Σ over conv and linear weights of W ⊙ ∂L/∂W (signed)."""
    terms = [None if g is None else m.weight.detach() * g for m, g in zip(p.layers, p.grads, strict=True)]
    return layer_sum(terms, p.layers[0].weight)


@register
@dataclass
class Plain(GradientSaliency):
    """Σ over conv and linear weights of W ⊙ ∂L/∂W, signed (no absolute value).

    Reference choices (zero-cost-nas ``plain``, registered with ``bn=True``, ``mode='param'``): the shared
    protocol of :mod:`proxies.loss_saliency` (default init, BN in train mode, cross-entropy on one real
    labelled batch of 64, ``split_data`` chunks (1)); ``weight.grad * weight`` of every ``nn.Conv2d`` and
    ``nn.Linear`` layer summed per layer, then over layers. Higher counts as better, as NASLib ranks it; on
    NB201 it correlates negatively with accuracy (NAS-Bench-Suite-Zero, ρ ≈ −0.25, REFERENCE A.3c), and it
    depends so much on the init and batch that two NASLib releases agree only at ρ 0.19 per architecture.
    """

    name: ClassVar[str] = "plain"
    output_paths_only: ClassVar[bool] = True
    reference: ClassVar[Reference] = Reference(
        paper=f"a baseline in {ZERO_COST_PAPER}",
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/plain.py (bn=True, mode='param')",
        choices={
            **SHARED_CHOICES,
            "score": "Σ of weight.grad * weight of every nn.Conv2d and nn.Linear layer, per layer then over "
                     "layers, signed; higher counts as better, as NASLib ranks it",
        })

    def saliency(self, p: LossPass) -> Tensor:
        return plain_score(p)
