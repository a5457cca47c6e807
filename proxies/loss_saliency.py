"""Loss saliencies at initialisation: what snip, grasp, fisher and plain share.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas
``foresight/pruners/predictive.py``, ``measures/__init__.py``, ``p_utils.py``; NASLib's copy,
``naslib/predictors/utils/pruners/``, is the same code). REFERENCE B.3-B.5, B.14, D.1, D.2.

The protocol the four measures share, as ``find_measures`` runs them by default:

- each measure scores its own copy of the network, BN kept (``bn=True``) and in train mode, PyTorch's
  default init (``nasbench2_pred.py``: ``init_w_type none``); ours is a fresh network from the factory;
- one real batch of 64 images with their labels (``--batch_size 64``, ``dataload random``, one batch);
- the loss is the mean cross-entropy of the logits (``loss_fn=F.cross_entropy``);
- ``split_data``: the batch is cut into that many contiguous chunks, chunk i being images
  ``[i·N//s, (i+1)·N//s)``; each chunk has its own forward (its own BN batch statistics) and mean loss, and
  the gradients add up over the chunks. zero-cost-nas runs with 1 and raises it only to retry after a CUDA
  out-of-memory error; any other value changes the score, so it is an option here, recorded with the score;
- the per-weight (per-channel for fisher) values are summed over each ``nn.Conv2d`` and ``nn.Linear`` layer
  (:func:`proxies.mechanics.weight_layers`), then over the layers one after another (``sum_arr``).

NASLib runs the same measure code through the same ``find_measures``, so these measures need no NASLib
option. Its NB201 network differs (cell BNs without affine parameters or running statistics), but at init
(γ = 1, β = 0) and in train mode that changes neither the forward nor the conv and linear weight gradients;
what else differs in a benchmark's network is the factory's business, not the measure's.

:func:`loss_pass` is the one forward and backward that snip, plain and fisher (and grad-norm's default,
the norms of the same gradients) read; a caller asking for several of them computes it once.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, Proxy, ProxyError
from proxies.mechanics import capture, weight_layers
from proxies.options import GE

ZERO_COST_PAPER = 'Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021'
"""The paper that made the four measures NAS proxies."""
SHARED_CHOICES: dict[str, str] = {
    "init": "PyTorch default (nasbench2_pred.py: init_w_type none)",
    "bn": "kept (bn=True), train mode",
    "input": "one real batch of 64 images with their labels (--batch_size 64, dataload random)",
    "loss": "mean cross-entropy of the logits (loss_fn=F.cross_entropy)",
    "split_data": "1 chunk (raised only to retry after a CUDA out-of-memory error)",
}
"""The reference choices the four loss saliencies share (``find_measures``' defaults, see the module text)."""


def chunks(n: int, split_data: int) -> list[slice]:
    """The reference's ``split_data`` chunks of a batch of ``n``: ``[i·n//s, (i+1)·n//s)`` for i < s."""
    return [slice(i * n // split_data, (i + 1) * n // split_data) for i in range(split_data)]


def chunk_grads(net: nn.Module, batch: Batch, span: slice, weights: list[Tensor], temperature: float = 1.0,
                create_graph: bool = False) -> tuple[Tensor | None, ...]:
    """∂L/∂W for each of ``weights``, L the mean cross-entropy of ``logits / temperature`` on the chunk
    ``span`` of the batch (``None`` for a weight the loss does not reach)."""
    logits = net(batch.images[span])
    if temperature != 1.0:
        logits = logits / temperature
    loss = F.cross_entropy(logits, batch.labels[span])
    return torch.autograd.grad(loss, weights, allow_unused=True, create_graph=create_graph)


@dataclass(frozen=True)
class LossPass:
    """One forward and backward of the loss per chunk, and what the measures read from it.

    ``grads[i]``: ∂L/∂W of ``layers[i]`` summed over the chunks (``None``: no gradient reaches it).
    ``fisher[i]`` (when asked for): per output channel c of ``layers[i]``, summed over the chunks,
    ½·mean over the chunk's samples n of (Σ over positions of a·∂L/∂a)², a being the layer's output
    (zero-cost-nas ``fisher``'s ``del_k``); ``None`` where no gradient reaches the output.
    """

    layers: list[nn.Module]
    grads: list[Tensor | None]
    fisher: list[Tensor | None] | None = None


def loss_pass(net: nn.Module, batch: Batch, split_data: int = 1, fisher: bool = False) -> LossPass:
    """The weight gradients of the loss (and, with ``fisher``, the per-channel Fisher terms) of ``net`` on
    ``batch``: one forward and one first-order backward per chunk, so several measures can share it.

    The Fisher terms come from each conv/linear output a and its gradient, read by a hook on a during the
    same backward (the reference routes the output through an identity module with a backward hook and
    keeps a as an attribute; both see the same a and ∂L/∂a). A layer called twice adds a term per call.
    """
    layers = weight_layers(net)
    if not layers:
        raise ProxyError(f"{type(net).__name__} has no conv or linear layer; the loss saliencies sum over them")
    weights = [m.weight for m in layers]
    grads: list[Tensor | None] = [None] * len(layers)
    terms: list[Tensor | None] = [None] * len(layers)
    position = {id(m): i for i, m in enumerate(layers)}

    def hook_output(module: nn.Module, output: Tensor) -> None:
        if not output.requires_grad:
            return
        act, i = output.detach(), position[id(module)]

        def add_term(grad: Tensor) -> None:
            per_sample = (act * grad).flatten(2).sum(dim=2) if act.ndim > 2 else act * grad
            term = per_sample.pow(2).mean(dim=0).mul(0.5)
            terms[i] = term if terms[i] is None else terms[i] + term

        output.register_hook(add_term)

    for span in chunks(len(batch), split_data):
        hooks = capture(net, lambda m: id(m) in position, "output", hook_output) if fisher else nullcontext()
        with hooks:
            chunk = chunk_grads(net, batch, span, weights)
        grads = [accumulate(total, g) for total, g in zip(grads, chunk, strict=True)]
    return LossPass(layers, grads, terms if fisher else None)


def accumulate(total: Tensor | None, g: Tensor | None) -> Tensor | None:
    """``total + g``, where ``None`` (no gradient) counts as 0."""
    if g is None:
        return total
    return g if total is None else total + g


def layer_sum(values: list[Tensor | None], like: Tensor) -> Tensor:
    """Σ over layers of each layer's Σ, added one layer after another in the dtype of the values, as the
    reference's ``sum_arr`` does (the order matters where signed terms cancel, as in grasp and plain); a
    ``None`` layer adds 0."""
    total = like.new_zeros(())
    for v in values:
        if v is not None:
            total = total + v.sum()
    return total


@dataclass
class LossSaliency(Proxy):
    """Base of the measures on the loss of one labelled real batch (options shared by all four)."""

    needs: ClassVar[Needs] = "images+labels"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset(),
        "always finite (0 when no gradient reaches a conv or linear weight)")

    batch_size: int = field(default=64, metadata={GE: 1})
    split_data: int = field(default=1, metadata={GE: 1})

    def _check(self) -> None:
        if self.split_data > self.batch_size:
            raise self._option_error("split_data", f"an integer in 1..batch_size ({self.batch_size})")

    def labelled(self, batch: Batch | None, device: torch.device) -> Batch:
        """The batch on ``device``; a one-line error when it has no labels."""
        if batch is None or batch.labels is None:
            raise ProxyError(f"{self.name} needs a batch of images with labels")
        return Batch(batch.images.to(device), batch.labels.to(device), batch.num_classes, batch.source)
