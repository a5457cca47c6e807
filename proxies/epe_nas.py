"""EPE-NAS: input-Jacobian correlations within each class.

Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for Neural Architecture Search",
ICANN 2021 (VascoLopes/EPE-NAS ``search.py``); as ported to NASLib (NAS-Bench-Suite-Zero,
``naslib/predictors/utils/pruners/measures/epe_nas.py``). REFERENCE B.14.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.input_jacobian import input_jacobian_pass
from proxies.options import GE, GT
from proxies.registry import register
from proxies.shared_pass import SharedPass

MANY_CLASSES = 100
"""Above this many network outputs the reference switches to its size-normalised, pairwise form."""


def epe_nas_score(jacobian: Tensor, labels: Tensor, num_classes: int, k: float = 1e-5) -> Tensor:
    """The reference's per-class aggregation of the rows of ``jacobian`` (float64).

    Per class c present in ``labels``: s_c = Σ log(|corrcoef(J_c)| + k) over the entries of its samples'
    correlation matrix. With ``num_classes`` ≤ 100, score = Σ_c |s_c|. With more, s_c is first divided by
    the class's sample count, classes with a single sample are skipped (the reference's ``len`` of the
    scalar ``corrcoef`` of one row raises and its bare ``except`` passes over the class), and score =
    Σ_c Σ_c' |s_c − s_c'| / (number of classes kept) (0 when none is kept). NaN entries propagate: a
    constant Jacobian row gives NaN, as in the reference.
    """
    if len(labels) != len(jacobian):
        raise ValueError(f"epe_nas: {len(labels)} labels for {len(jacobian)} Jacobian rows")
    many = num_classes > MANY_CLASSES
    per_class = []
    for c in torch.unique(labels):
        rows = jacobian[labels == c].double()
        if many and len(rows) == 1:
            continue
        s = torch.log(torch.corrcoef(rows).abs() + k).sum()
        per_class.append(s / len(rows) if many else s)
    if not per_class:
        return jacobian.new_zeros((), dtype=torch.float64)
    scores = torch.stack(per_class)
    if not many:
        return scores.abs().sum()
    return (scores[:, None] - scores[None, :]).abs().sum() / len(scores)


@register
@dataclass
class EpeNas(Proxy):
    """Σ over classes of |Σ log(|corrcoef(J_c)| + k)|, J_c the input Jacobians of the batch's samples of class c.

    Reference choices (NASLib ``epe_nas``, ``bn=True``; the EPE-NAS authors' ``eval_score_perclass``):

    - PyTorch's default init (the factory's network as built), BN active in train mode;
    - the real batch with its true labels (64 images in NAS-Bench-Suite-Zero);
    - one forward and one backward of ones through the logits: J_i = ∂(Σ_k y_k)/∂x_i, flattened per sample;
    - samples grouped by label; per class the correlation matrix of their Jacobian rows (``np.corrcoef``,
      float64; a class with one sample has the 1×1 matrix [1]), s_c = Σ_entries log(|corr| + ``k``),
      ``k`` = 1e-5;
    - networks with ≤ 100 outputs: score Σ_c |s_c|; more (ImageNet16-120's 120): s_c / n_c, score
      Σ_c Σ_c' |s_c − s_c'| / #classes, single-sample classes left out (see :func:`epe_nas_score`);
    - NaN when a Jacobian row is constant (NASLib stores −1e8).

    The network's output width decides the branch, as the reference's ``y.shape[-1]`` does.
    """

    name: ClassVar[str] = "epe_nas"
    output_paths_only: ClassVar[bool] = True
    needs: ClassVar[Needs] = "images+labels"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"nan"}),
        "NaN when a sample's input Jacobian is constant, e.g. zero for a disconnected NB201 cell (its correlations are "
        "NaN, as in the reference)")
    reference: ClassVar[Reference] = Reference(
        paper='Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for Neural Architecture '
              'Search", ICANN 2021',
        code="NASLib naslib/predictors/utils/pruners/measures/epe_nas.py (NAS-Bench-Suite-Zero); "
             "VascoLopes/EPE-NAS search.py (eval_score_perclass)",
        choices={
            "init": "PyTorch default",
            "bn": "train mode (bn=True)",
            "input": "one real batch of 64 images with their true labels",
            "jacobian": "one forward and one backward of ones through the logits: J_i = ∂(Σ_k y_k)/∂x_i, "
                        "flattened per sample",
            "score": "per class c, s_c = Σ over entries of log(|corrcoef(J_c)| + 1e-5) (float64); Σ_c |s_c| for "
                     "≤ 100 outputs, else Σ_c Σ_c' |s_c − s_c'| / #classes of s_c / n_c",
            "non_finite": "NASLib stores −1e8 where a Jacobian row is constant",
        })

    batch_size: int = field(default=64, metadata={GE: 1})
    k: float = field(default=1e-5, metadata={GT: 0})

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        if batch is None or batch.labels is None:
            raise ProxyError("epe_nas needs a batch of images with labels")
        return self.from_pass(self.shared_pass().alone(factory, batch, device), batch)

    def shared_pass(self) -> SharedPass:
        return input_jacobian_pass(self.batch_size)

    def from_pass(self, result: tuple[Tensor, Tensor], batch: Batch | None) -> Tensor:
        jacobian, logits = result
        return epe_nas_score(jacobian, batch.labels.to(jacobian.device), logits.shape[-1], self.k)
