"""GraSP: Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow", ICLR 2020; as a NAS
proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas
``foresight/pruners/measures/grasp.py``; NASLib's ``naslib/predictors/utils/pruners/measures/grasp.py`` is the
same code). REFERENCE B.4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from proxies.base import Batch, NetworkFactory, Reference
from proxies.loss_saliency import (
    SHARED_CHOICES,
    ZERO_COST_PAPER,
    LossSaliency,
    accumulate,
    chunk_grads,
    chunks,
    layer_sum,
)
from proxies.mechanics import build, weight_layers
from proxies.options import FINITE, GE, GT
from proxies.registry import register


def hessian_gradient(net: torch.nn.Module, batch: Batch, split_data: int = 1, temperature: float = 1.0,
                     iters: int = 1) -> list[Tensor | None]:
    """H·g per conv/linear weight, as zero-cost-nas's ``grasp`` leaves it in ``weight.grad``.

    L is the mean cross-entropy of ``logits / temperature`` on one chunk, H its Hessian with respect to the
    conv and linear weights only, g = ``iters`` × ∂L/∂W of the **last** chunk (the reference's first pass
    restarts g at every chunk and sums ``iters`` identical passes over the same data), and H·g is summed over
    the chunks (one ``z = Σ g·∂L/∂W`` backward each). With one chunk, g is the detached gradient of the very
    graph whose H·g we take, so the reference's separate first-order first pass, which gives the same
    numbers, is not run: one forward, a backward with ``create_graph`` and the Hessian-vector product.
    """
    weights = [m.weight for m in weight_layers(net)]
    spans = chunks(len(batch), split_data)
    g: list[Tensor | None] | None = None
    total: list[Tensor | None] = [None] * len(weights)
    for span in [spans[-1], *spans[:-1]]:
        grads = chunk_grads(net, batch, span, weights, temperature, create_graph=True)
        if g is None:
            g = [None if d is None else d.detach() * iters for d in grads]
        terms = [(v * d).sum() for v, d in zip(g, grads, strict=True) if v is not None and d is not None]
        z = torch.stack(terms).sum() if terms else None
        if z is None or not z.requires_grad:
            continue
        hg = torch.autograd.grad(z, weights, allow_unused=True)
        total = [accumulate(t, h) for t, h in zip(total, hg, strict=True)]
    return total


@register
@dataclass
class Grasp(LossSaliency):
    """Σ over conv and linear weights of −W ⊙ (H·g), H the loss Hessian and g the loss gradient.

    Reference choices (zero-cost-nas ``grasp``, registered with ``bn=True``, ``mode='param'``, called with
    its defaults ``T=1, num_iters=1``):

    - the shared protocol of :mod:`proxies.loss_saliency`: default init, BN in train mode, cross-entropy on
      one real labelled batch of 64, ``split_data`` chunks (1);
    - weights: those of every ``nn.Conv2d`` and ``nn.Linear`` layer only; H is the Hessian with respect to
      them (BN parameters and biases held fixed);
    - ``temperature`` T divides the logits (1; GraSP's own code defaults to 200); ``iters`` (1): the number
      of identical first-pass gradients the reference sums into g, which scales the score by ``iters``
      (see :func:`hessian_gradient` for how the reference treats chunks);
    - the network stays in PyTorch's default (contiguous) memory format: the Hessian-vector product is
      mostly BN's double backward, whose elementwise passes and per-channel sums run slower on the
      channels-last layout :func:`~proxies.mechanics.build` gives CPU networks (1 thread, 10 NB201
      networks: median 2.8 CPU-s contiguous against 3.6 channels-last); it also makes our value the
      reference's to the last bit (same network, same batch);
    - the sign: zero-cost-nas returns −θ ⊙ Hg, summed per layer and over layers, and higher is better.
      Its comment says it first dropped GraSP's minus sign (GraSP keeps the bottom of these values, the
      measure ranks by the top), then restored it because "accuracy seems to be negatively correlated".
    """

    name: ClassVar[str] = "grasp"
    output_paths_only: ClassVar[bool] = True
    reference: ClassVar[Reference] = Reference(
        paper='Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow", ICLR 2020; as a '
              f"NAS proxy, {ZERO_COST_PAPER}",
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/grasp.py (bn=True, mode='param', T=1, "
             "num_iters=1)",
        choices={
            **SHARED_CHOICES,
            "score": "Σ over nn.Conv2d and nn.Linear weights of −θ ⊙ Hg, H the loss Hessian w.r.t. those weights "
                     "and g the loss gradient, per layer then over layers; higher is better",
        })

    temperature: float = field(default=1.0, metadata={GT: 0, FINITE: True})
    iters: int = field(default=1, metadata={GE: 1})

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        batch = self.labelled(batch, device)
        net = build(factory, device).to(memory_format=torch.contiguous_format)
        hg = hessian_gradient(net, batch, self.split_data, float(self.temperature), self.iters)
        layers = weight_layers(net)
        terms = [None if h is None else -m.weight.detach() * h for m, h in zip(layers, hg, strict=True)]
        return layer_sum(terms, layers[0].weight)
