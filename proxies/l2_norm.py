"""l2_norm: the size of the initial weights.

A baseline of NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks; NASLib
``naslib/predictors/utils/pruners/measures/l2_norm.py``, from SamsungLabs/zero-cost-nas
``foresight/pruners/measures/l2_norm.py``, which zero-cost-nas defines but never loads). REFERENCE B.14.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, Reference
from proxies.mechanics import weight_layers
from proxies.registry import register


@register
@dataclass
class L2Norm(Proxy):
    """Σ over conv and linear layers of ‖W‖₂, the Frobenius norm of each layer's weight at initialisation.

    Reference choices (NASLib ``l2_norm``, ``copy_net=False, mode='param'``): PyTorch's default init (the
    factory's network as built, no data, no forward pass), the weight of every conv (``Conv2d`` in the
    reference's networks) and ``Linear`` layer (biases and BN parameters excluded), the per-layer norms
    in float32 summed. Computed on the CPU whatever the
    device: it reads the initial weights only.
    """

    name: ClassVar[str] = "l2_norm"
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset(),
        "always finite (0 for a network without conv or linear layers)")
    reference: ClassVar[Reference] = Reference(
        paper="a baseline of NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks)",
        code="NASLib naslib/predictors/utils/pruners/measures/l2_norm.py (copy_net=False, mode='param'), from "
             "SamsungLabs/zero-cost-nas foresight/pruners/measures/l2_norm.py",
        choices={
            "init": "PyTorch default",
            "input": "none (no data, no forward pass)",
            "score": "Σ over conv and Linear layers of the weight's Frobenius norm, in float32 (biases and BN "
                     "parameters excluded)",
        })

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        with torch.no_grad():
            norms = [m.weight.norm() for m in weight_layers(factory())]
            return torch.stack(norms).sum() if norms else torch.zeros(())
