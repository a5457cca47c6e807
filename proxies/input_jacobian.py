"""The input Jacobian jacob_cov and epe_nas share (REFERENCE B.7, B.14).

Both proxies read J, row i = ∂(Σ_k f(x)_k)/∂x_i, from one forward and one backward of the summed logits
through the whole batch (zero-cost-nas / NASLib ``get_batch_jacobian``: ``y.backward(ones_like(y))`` with
``x.requires_grad``), then correlate its rows (``torch.corrcoef`` in float64 is ``np.corrcoef``: clipped to
[-1, 1], NaN for a row of zero variance, 1 for a single row). Both declare :func:`input_jacobian_pass`, so
asked for together on the same batch they are scored from one run of it (:mod:`proxies.shared_pass`).
"""

from __future__ import annotations

from collections.abc import Hashable

import torch
from torch import Tensor, nn

from proxies.base import Batch, NetworkFactory
from proxies.mechanics import build
from proxies.shared_pass import SharedPass


def input_jacobian(net: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    """(J, logits): J (N, C·H·W) holds per sample the gradient of the summed logits w.r.t. its input.

    One forward of ``net`` in its current mode (train-mode BN couples the samples, so row i carries
    gradient through every sample's batch statistics, as in the reference) and one backward, taken with
    respect to the input only: the weight gradients the reference also accumulates are never formed.
    A network whose output does not depend on its input (a disconnected NB201 cell) gets J = 0, the
    value the reference's zero-multiplying ``none`` op gives it.
    """
    x = images.detach().clone().requires_grad_(True)
    logits = net(x)
    grad = None
    if logits.requires_grad:
        (grad,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
    jacobian = torch.zeros_like(x) if grad is None else grad
    return jacobian.flatten(1), logits.detach()


def input_jacobian_pass(batch_size: int) -> SharedPass:
    """The shared pass of jacob_cov and epe_nas on the first ``batch_size`` images (:func:`run_input_jacobian`)."""
    return SharedPass(("input_jacobian", "init=default", batch_size), run_input_jacobian)


def run_input_jacobian(factory: NetworkFactory, batch: Batch | None, device: torch.device,
                       steps: tuple[Hashable, ...], reads: frozenset[Hashable]) -> tuple[Tensor, Tensor]:
    """:func:`input_jacobian` of the batch's images on a network built by :func:`~proxies.mechanics.build`
    (PyTorch's default init, train mode); a pass of one step that reads nothing more."""
    return input_jacobian(build(factory, device), batch.images.to(device))
