"""SNIP: Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019; as a NAS
proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas
``foresight/pruners/measures/snip.py``; NASLib's ``naslib/predictors/utils/pruners/measures/snip.py`` is the
same code). REFERENCE B.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from proxies.base import Reference
from proxies.loss_saliency import SHARED_CHOICES, ZERO_COST_PAPER, GradientSaliency, LossPass, layer_sum
from proxies.registry import register


def snip_score(p: LossPass) -> Tensor:
    """Σ over conv and linear weights of |W ⊙ ∂L/∂W|."""
    terms = [None if g is None else (m.weight.detach() * g).abs() for m, g in zip(p.layers, p.grads, strict=True)]
    return layer_sum(terms, p.layers[0].weight)


@register
@dataclass
class Snip(GradientSaliency):
    """Σ over conv and linear weights of the connection sensitivity |∂L/∂m| = |W ⊙ ∂L/∂W|.

    Reference choices (zero-cost-nas ``snip``, registered with ``bn=True``, ``mode='param'``):

    - the shared protocol of :mod:`proxies.loss_saliency`: default init, BN in train mode, cross-entropy on
      one real labelled batch of 64, ``split_data`` chunks (1);
    - the reference multiplies each ``nn.Conv2d``/``nn.Linear`` weight by a mask m of ones, freezes the
      weight and reads |∂L/∂m|. At m = 1, ∂L/∂m = W ⊙ ∂L/∂W (the same product autograd forms for the
      mask), so we take the weight gradient directly: one forward and backward, no mask;
    - per-weight |·|, summed per layer, then over layers (biases and BN parameters excluded).
    """

    name: ClassVar[str] = "snip"
    output_paths_only: ClassVar[bool] = True
    reference: ClassVar[Reference] = Reference(
        paper='Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019; as a '
              f"NAS proxy, {ZERO_COST_PAPER}",
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/snip.py (bn=True, mode='param')",
        choices={
            **SHARED_CHOICES,
            "score": "Σ of |∂L/∂m|, m a mask of ones on every nn.Conv2d and nn.Linear weight, per layer then over "
                     "layers (biases and BN parameters excluded)",
        })

    def saliency(self, p: LossPass) -> Tensor:
        return snip_score(p)
