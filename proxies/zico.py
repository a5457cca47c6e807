"""ZiCo: Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR 2023
(SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py``, called from ``evolution_search.py``; the AZ-NAS NB201 harness's
port ``NB201/ZeroShotProxy/compute_zico_score.py``, which VKDNW's NB201 table reuses). REFERENCE B.10.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.loss_saliency import GradientChunks, Span, accumulate, gradient_chunks, gradient_pass, spans
from proxies.mechanics import build
from proxies.options import GE
from proxies.registry import register
from proxies.shared_pass import SharedPass

Gradients = Literal["accumulated", "per_batch"]


def zico_score(records: Sequence[Sequence[Tensor | None]]) -> float:
    """Σ over layers of log Σ_j mean_r |g_rj| / std_r g_rj, over the records r of each layer's weight gradient.

    ``records[r][l]`` is layer l's gradient in record r (``None``: no gradient reached the layer, which is left
    out, as the AZ-NAS port does). Per layer, over the records: the mean of |g| and the population standard
    deviation (ddof 0), entry by entry; entries whose deviation is 0 are skipped, and so is a layer whose sum is
    0 (every deviation 0: one record, or equal records). Computed in float64 (the reference: numpy in float32).
    """
    total = 0.0
    for layer in zip(*records, strict=True):
        if any(g is None for g in layer):
            continue
        grads = torch.stack([g.detach().flatten() for g in layer]).double()
        std = grads.std(dim=0, correction=0)
        varies = std != 0
        ratio_sum = float((grads.abs().mean(dim=0)[varies] / std[varies]).sum())
        if ratio_sum != 0:
            total += math.log(ratio_sum)
    return total


def batch_gradients(net: nn.Module, images: Tensor, labels: Tensor, batches: int,
                    gradients: Gradients = "accumulated") -> list[list[Tensor | None]]:
    """The weight gradients of every conv and linear layer (:func:`proxies.mechanics.weight_layers`) after
    each of ``batches`` consecutive mini-batches of ``images``: cross-entropy against ``labels``, one forward
    and backward per mini-batch in the network's current mode (:func:`proxies.loss_saliency.gradient_chunks`).

    Mini-batch k holds images [k·N/batches, (k+1)·N/batches) (integer division, as the MeCo repo's ZiCo port
    splits one batch); an empty one (fewer images than batches) is skipped. See :func:`gradient_records` for
    ``gradients``.
    """
    steps = spans(len(images), batches)
    return gradient_records(gradient_chunks(net, images, labels, steps), steps, gradients)


def gradient_records(chunks: GradientChunks, steps: Sequence[Span], gradients: Gradients) -> list[list[Tensor | None]]:
    """The gradient records of the mini-batches ``steps`` of ``chunks``. ``accumulated``: record k is the sum of
    the first k mini-batches' gradients, what ``.grad`` holds when no ``zero_grad`` separates the backward
    passes (SLDGroup's ``getzico``); ``per_batch``: each mini-batch's own gradient (AZ-NAS's port zeroes the
    gradients before each batch)."""
    result: list[list[Tensor | None]] = []
    for span in steps:
        grads = list(chunks.grads[span])
        if gradients == "accumulated" and result:
            grads = [accumulate(s, g) for s, g in zip(result[-1], grads, strict=True)]
        result.append(grads)
    return result


@register
@dataclass
class ZiCo(Proxy):
    """Σ over conv and linear layers of log Σ_j mean|∂L/∂θ_j| / std ∂L/∂θ_j across two mini-batches.

    Reference choices (SLDGroup/ZiCo ``getzico`` and ``caculate_zico``; REFERENCE B.10):

    - PyTorch's default init (the factory's network as built, no Gaussian re-init), BN in train mode;
    - ``batches`` = 2 mini-batches of real training images with their true labels (``--maxbatch 2``:
      the first two batches of a shuffled training loader, drawn once and reused for every candidate; the
      AZ-NAS NB201 harness takes the first two batches of its search loader, B = 64 each). Here: the first
      ``batch_size`` = 128 images of the supplied batch, split in order into two halves of 64 (the first
      half is the 64-image batch the single-batch proxies see);
    - per mini-batch: cross-entropy (mean) of the logits, one forward and one backward;
    - the weight gradient of every ``nn.Conv2d`` and ``nn.Linear`` (biases and BN excluded), recorded after
      each backward; layers that get no gradient are skipped (AZ-NAS; the original would fail on them);
    - per layer: mean of |g| and population std (ddof 0) across the records, entries with std 0 skipped,
      log of the sum of their ratios, layers whose sum is 0 skipped; the score sums the logs.

    ``gradients``: ``accumulated`` (default, the authors' code): ``getzico`` never calls ``zero_grad``
    between the two backward passes, so the second record is g₁ + g₂ (the MeCo repo's port does the same);
    ``per_batch``: records g₁ and g₂ (the AZ-NAS port, ``zero_grad(set_to_none=True)`` before each batch; the
    ZiCo row of VKDNW's NB201 table comes from it). With two records a, b the ratio is (|a| + |b|)/|a − b|.

    Its mini-batches are chunks of :func:`~proxies.loss_saliency.gradient_pass`, the first being the batch the
    single-batch gradient proxies (snip, plain, fisher, grad_norm) see, so it shares their pass.
    """

    name: ClassVar[str] = "zico"
    output_paths_only: ClassVar[bool] = True
    needs: ClassVar[Needs] = "images+labels"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset(),
        "always finite; 0 when no weight gradient varies between the records (one image, or a disconnected NB201 cell, "
        "where every weight gradient is 0 or absent)")
    reference: ClassVar[Reference] = Reference(
        paper='Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR 2023',
        code="SLDGroup/ZiCo ZeroShotProxy/compute_zico.py (getzico, caculate_zico)",
        choices={
            "init": "PyTorch default (no Gaussian re-init)",
            "bn": "train mode",
            "input": "2 mini-batches of real training images with their true labels (--maxbatch 2: the first two "
                     "batches of a shuffled training loader, drawn once)",
            "loss": "mean cross-entropy of the logits, one forward and one backward per mini-batch",
            "gradients": "accumulated: no zero_grad between the two backward passes, so the second record is "
                         "g₁ + g₂",
            "score": "Σ over nn.Conv2d and nn.Linear layers of log Σ_j mean|g_j| / std g_j (ddof 0) across the "
                     "records, entries with std 0 skipped",
        })

    batch_size: int = field(default=128, metadata={GE: 1})
    batches: int = field(default=2, metadata={GE: 1})
    gradients: Gradients = "accumulated"

    def shared_pass(self) -> SharedPass:
        return gradient_pass(spans(self.batch_size, self.batches))

    def from_pass(self, result: GradientChunks, batch: Batch | None) -> float:
        return zico_score(gradient_records(result, spans(len(batch), self.batches), self.gradients))

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        if batch is None or batch.labels is None:
            raise ProxyError("zico needs a batch of images with labels")
        net = build(factory, device)
        return zico_score(batch_gradients(net, batch.images.to(device), batch.labels.to(device), self.batches,
                                          self.gradients))
