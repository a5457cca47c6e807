"""SynFlow: Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic
flow", NeurIPS 2020; as a NAS proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021 (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/synflow.py``). REFERENCE B.6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, Reference
from proxies.mechanics import build, drop_bn, weight_layers
from proxies.registry import register


@register
@dataclass
class SynFlow(Proxy):
    """log of Σ over conv and linear weights of |θ ⊙ ∂R/∂θ|, R = Σ f(1) on the |θ| network.

    Reference choices (zero-cost-nas ``synflow``, registered there with ``bn=False``):

    - PyTorch's default init, then every parameter replaced by |θ|. The reference stores the signs
      and restores them afterwards; our network is a fresh copy from the factory, so nothing needs
      restoring;
    - BN disabled (replaced by identity, as zero-cost-nas's generic ``copynet``; its own NB201 model
      is rebuilt without BN but keeps the reduction blocks' BN). ``bn=True`` keeps BN in train mode
      (``synflow_bn``);
    - float64 throughout, input all ones of shape [1, *input_shape] (data-free);
    - R = Σ of the logits, one backward; score Σ |θ ⊙ ∂R/∂θ| over conv and linear weights.

    The value reported is **log(score)**, as NASLib stores it: raw scores reach 1e60 on NB201 and the
    log keeps the ranking.
    """

    name: ClassVar[str] = "synflow"
    output_paths_only: ClassVar[bool] = True
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"-inf"}),
        "-inf when no path joins input and output with nonzero weight (score 0)")
    reference: ClassVar[Reference] = Reference(
        paper='Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic flow", '
              'NeurIPS 2020; as a NAS proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021',
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/synflow.py (bn=False)",
        choices={
            "init": "PyTorch default, then every parameter replaced by |θ| (signs restored afterwards)",
            "bn": "disabled (bn=False): the generic copynet replaces BN by identity; its own NB201 model keeps "
                  "the reduction blocks' BN",
            "input": "all ones of shape [1, *input_shape], float64 throughout (data-free)",
            "score": "Σ over conv and linear weights of |θ ⊙ ∂R/∂θ|, R = Σ of the logits, one backward",
            "stored": "log(score), as NASLib stores it",
        })

    bn: bool = False

    @property
    def input_kind(self) -> str:
        return "ones"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        net = build(factory, device)
        if not self.bn:
            drop_bn(net)
        net = net.double()
        with torch.no_grad():
            for p in net.parameters():
                p.abs_()
        weights = [m.weight for m in weight_layers(net)]
        ones = torch.ones((1, *factory.input_shape), dtype=torch.float64, device=device)
        grads = torch.autograd.grad(net(ones).sum(), weights, allow_unused=True)
        with torch.no_grad():
            score = sum(((w * g).abs().sum() for w, g in zip(weights, grads, strict=True) if g is not None),
                        start=ones.new_zeros(()))
            return torch.log(score)
