"""grad-norm: the norm of the loss gradient at initialisation.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas,
``foresight/pruners/measures/grad_norm.py``); the ZenNAS baseline variant from Lin et al., ICCV 2021
(``ZeroShotProxy/compute_gradnorm_score.py``). REFERENCE B.2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.mechanics import build, normal, weight_layers
from proxies.options import GE
from proxies.registry import register


@register
@dataclass
class GradNorm(Proxy):
    """Sum over conv and linear layers of ‖∂L/∂W‖₂ (zero-cost-nas, the default).

    ``variant="zero-cost-nas"`` reference choices: cross-entropy of the logits against the real
    batch's labels (batch 64, Abdelfattah's setting), PyTorch's default init (the factory's
    network as built), BN active in train mode, one forward and backward, the per-layer L2 norms of
    the conv and linear *weight* gradients summed (biases and BN parameters excluded).

    ``variant="zennas"`` (ZenNAS's baseline): Gaussian N(0, 1) init (BN γ = 1, β = 0), input
    x ~ N(0, 1) of shape [batch_size, *input_shape], random uniform labels, cross-entropy, score the
    global L2 norm √(Σ ‖∂L/∂p‖²) over every parameter, BN included. This variant needs no data.
    """

    name: ClassVar[str] = "grad_norm"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset(), "always finite (0 when no gradient reaches a weight)")
    reference: ClassVar[Reference] = Reference(
        paper='Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021',
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/grad_norm.py",
        choices={
            "init": "PyTorch default",
            "bn": "train mode",
            "input": "one real batch of 64 images with their labels",
            "loss": "cross-entropy of the logits, one forward and backward",
            "score": "Σ over conv and linear layers of the L2 norm of the weight gradient (biases and BN "
                     "parameters excluded)",
        })

    batch_size: int = field(default=64, metadata={GE: 1})
    variant: Literal["zero-cost-nas", "zennas"] = "zero-cost-nas"

    @property
    def needs(self) -> Needs:  # type: ignore[override]
        return "nothing" if self.variant == "zennas" else "images+labels"

    @property
    def input_kind(self) -> str:
        return "gaussian" if self.variant == "zennas" else "real"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        if self.variant == "zennas":
            net = build(factory, device, "gaussian")
            images = normal((self.batch_size, *factory.input_shape), device)
            logits = net(images)
            labels = torch.randint(0, logits.shape[1], (self.batch_size,)).to(device)
            params = [p for p in net.parameters() if p.requires_grad]
        else:
            if batch is None or batch.labels is None:
                raise ProxyError("grad_norm needs a batch of images with labels")
            net = build(factory, device)
            logits = net(batch.images.to(device))
            labels = batch.labels.to(device)
            params = [m.weight for m in weight_layers(net)]
        grads = torch.autograd.grad(F.cross_entropy(logits, labels), params, allow_unused=True)
        norms = torch.stack([g.norm() if g is not None else logits.new_zeros(()) for g in grads])
        return norms.norm() if self.variant == "zennas" else norms.sum()
