"""grad-norm: the norm of the loss gradient at initialisation.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas,
``foresight/pruners/measures/grad_norm.py``); the ZenNAS baseline variant from Lin et al., ICCV 2021
(``ZeroShotProxy/compute_gradnorm_score.py``). REFERENCE B.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, Reference
from proxies.loss_saliency import GradientChunks, gradient_pass, labelled, loss_pass, spans
from proxies.mechanics import build, normal
from proxies.options import GE
from proxies.registry import register
from proxies.shared_pass import SharedPass


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

    The ``zero-cost-nas`` variant's gradients are those of :func:`proxies.loss_saliency.loss_pass` with one
    chunk, so it shares :func:`~proxies.loss_saliency.gradient_pass` with snip, plain, fisher and zico.
    """

    name: ClassVar[str] = "grad_norm"
    output_paths_only: ClassVar[bool] = True
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

    def shared_pass(self) -> SharedPass | None:
        return None if self.variant == "zennas" else gradient_pass(spans(self.batch_size, 1))

    def from_pass(self, result: GradientChunks, batch: Batch | None) -> Tensor:
        return layer_norms(result.loss_pass(spans(len(batch), 1)).grads, result.layers[0].weight).sum()

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        if self.variant != "zennas":
            batch = labelled(batch, device, self.name)
            p = loss_pass(build(factory, device), batch)
            return layer_norms(p.grads, p.layers[0].weight).sum()
        net = build(factory, device, "gaussian")
        images = normal((self.batch_size, *factory.input_shape), device)
        logits = net(images)
        labels = torch.randint(0, logits.shape[1], (self.batch_size,)).to(device)
        params = [p for p in net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(F.cross_entropy(logits, labels), params, allow_unused=True)
        return layer_norms(grads, logits).norm()


def layer_norms(grads: Sequence[Tensor | None], like: Tensor) -> Tensor:
    """The L2 norm of each gradient, stacked (0 for a ``None``, a parameter the loss does not reach)."""
    return torch.stack([g.norm() if g is not None else like.new_zeros(()) for g in grads])
