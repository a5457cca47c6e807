"""Fisher: Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018, and Turner et
al., "BlockSwap: Fisher-guided Block Substitution for Network Compression on a Budget", ICLR 2020; as a NAS
proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas
``foresight/pruners/measures/fisher.py``; NASLib's ``naslib/predictors/utils/pruners/measures/fisher.py`` is
the same code). REFERENCE B.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from proxies.base import Reference
from proxies.loss_saliency import SHARED_CHOICES, ZERO_COST_PAPER, GradientSaliency, LossPass, layer_sum
from proxies.registry import register


def fisher_score(p: LossPass) -> Tensor:
    """Σ over conv and linear layers of fan-in × Σ over output channels of |Fisher term| (see :class:`Fisher`)."""
    if p.fisher is None:
        raise ValueError("fisher_score needs a loss_pass run with fisher=True")
    terms = [None if f is None else f.abs() * m.weight[0].numel() for m, f in zip(p.layers, p.fisher, strict=True)]
    return layer_sum(terms, p.layers[0].weight)


@register
@dataclass
class Fisher(GradientSaliency):
    """Σ over conv/linear layers and output channels c of |½·mean_n (Σ_positions a·∂L/∂a)²|·fan-in.

    Reference choices (zero-cost-nas ``fisher``, registered with ``bn=True``, ``mode='channel'``):

    - the shared protocol of :mod:`proxies.loss_saliency`: default init, BN in train mode, cross-entropy on
      one real labelled batch of 64, ``split_data`` chunks (1; the terms add up over chunks, each a mean
      over its own samples);
    - a is the output of every ``nn.Conv2d`` and ``nn.Linear`` layer (before its BN), ∂L/∂a its gradient;
      per sample n and channel c, Σ over positions (h, w) of a·∂L/∂a (for a linear layer, the product
      itself); squared, averaged over the batch, times ½;
    - the absolute value of each channel's term is broadcast to every weight of that output channel
      (``reshape_elements``) before the sum, so each channel counts fan-in = C_in/groups·k·k times
      (``in_features`` for a linear layer); we multiply instead of broadcasting. A layer the loss does
      not reach adds 0.
    """

    name: ClassVar[str] = "fisher"
    output_paths_only: ClassVar[bool] = True
    reference: ClassVar[Reference] = Reference(
        paper='Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018, and Turner et '
              'al., "BlockSwap: Fisher-guided Block Substitution for Network Compression on a Budget", ICLR 2020; '
              f"as a NAS proxy, {ZERO_COST_PAPER}",
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/fisher.py (bn=True, mode='channel')",
        choices={
            **SHARED_CHOICES,
            "score": "per output channel of every nn.Conv2d and nn.Linear output a, |½·mean_n (Σ_positions "
                     "a·∂L/∂a)²| broadcast to the channel's weights, summed",
        })

    fisher_terms: ClassVar[bool] = True

    def saliency(self, p: LossPass) -> Tensor:
        return fisher_score(p)
