"""jacob_cov: the correlation of input Jacobians across a batch ("NASWOT v1").

Mellor et al., "Neural Architecture Search without Training", arXiv v1 (2020) score; as a zero-cost proxy,
Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas
``foresight/pruners/measures/jacob_cov.py``; NASLib ``naslib/predictors/utils/pruners/measures/jacov.py``,
registered there as ``jacov``, the same computation). REFERENCE B.7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.input_jacobian import input_jacobian_pass
from proxies.options import GE, GT
from proxies.registry import register
from proxies.shared_pass import SharedPass


def jacob_cov_score(jacobian: Tensor, k: float = 1e-5) -> Tensor:
    """−Σ_i [log(λ_i + k) + 1/(λ_i + k)] over the eigenvalues λ of the rows' correlation matrix (float64).

    NaN when the correlation matrix is not finite (a row of zero variance), where the reference's
    ``np.linalg.eig`` raises and its caller returns NaN. The matrix is symmetric, so its eigenvalues come
    from ``eigvalsh`` (the reference's general ``eig`` gives the same real values up to rounding).
    """
    corr = torch.corrcoef(jacobian.double()).reshape(len(jacobian), len(jacobian))
    if not bool(torch.isfinite(corr).all()):
        return corr.new_tensor(math.nan)
    shifted = torch.linalg.eigvalsh(corr) + k
    return -(torch.log(shifted) + 1.0 / shifted).sum()


@register
@dataclass
class JacobCov(Proxy):
    """−Σ_i [log(λ_i + k) + 1/(λ_i + k)], λ the eigenvalues of corrcoef(J) of the batch's input Jacobian J.

    Reference choices (zero-cost-nas ``jacob_cov``, NASLib ``jacov``; ``bn=True``):

    - PyTorch's default init (the factory's network as built), BN active in train mode;
    - the real batch (64 images, Abdelfattah's setting), labels unused;
    - one forward and one backward of ones through the logits: J_i = ∂(Σ_k y_k)/∂x_i, flattened per
      sample to B×(C·H·W);
    - C = corrcoef(J) (B×B, float64), its eigenvalues λ, ``k`` = 1e-5;
    - NaN when the reference fails (its ``eig`` on a matrix with NaN entries raises, the measure returns
      NaN; NASLib then stores −1e8).
    """

    name: ClassVar[str] = "jacob_cov"
    output_paths_only: ClassVar[bool] = True
    needs: ClassVar[Needs] = "images"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"nan"}),
        "NaN when a sample's input Jacobian is constant, e.g. zero for a disconnected NB201 cell (the reference's eig "
        "fails and it returns NaN)")
    reference: ClassVar[Reference] = Reference(
        paper='Mellor et al., "Neural Architecture Search without Training", arXiv v1 (2020); as a zero-cost '
              'proxy, Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021',
        code="SamsungLabs/zero-cost-nas foresight/pruners/measures/jacob_cov.py (NASLib's jacov.py, the same "
             "computation)",
        choices={
            "init": "PyTorch default",
            "bn": "train mode (bn=True)",
            "input": "one real batch of 64 images, labels unused",
            "jacobian": "one forward and one backward of ones through the logits: J_i = ∂(Σ_k y_k)/∂x_i, "
                        "flattened per sample",
            "score": "−Σ_i [log(λ_i + k) + 1/(λ_i + k)], λ the eigenvalues of corrcoef(J) (float64), k = 1e-5",
            "non_finite": "NaN where eig fails on a matrix with NaN entries; NASLib then stores −1e8",
        })

    batch_size: int = field(default=64, metadata={GE: 1})
    k: float = field(default=1e-5, metadata={GT: 0})

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        if batch is None:
            raise ProxyError("jacob_cov needs a batch of images")
        return self.from_pass(self.shared_pass().alone(factory, batch, device), batch)

    def shared_pass(self) -> SharedPass:
        return input_jacobian_pass(self.batch_size)

    def from_pass(self, result: tuple[Tensor, Tensor], batch: Batch | None) -> Tensor:
        jacobian, _ = result
        return jacob_cov_score(jacobian, self.k)
