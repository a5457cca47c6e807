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
the norms of the same gradients) read. It sums the per-chunk passes of :func:`gradient_chunks`, whose chunks
are also ZiCo's mini-batches (its first is the 64-image batch the others see), so all five declare
:func:`gradient_pass` and are scored from one run of it when asked for together (:mod:`proxies.shared_pass`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection, Hashable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError
from proxies.mechanics import build, capture, weight_layers
from proxies.options import GE
from proxies.shared_pass import SharedPass

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


Span = tuple[int, int]
"""A chunk of a batch: its images ``[start, stop)``."""
GRADIENT_PASS_KEY = ("loss_gradients", "init=default")
"""The :class:`~proxies.shared_pass.SharedPass` key of :func:`gradient_pass` (its kind and build arguments)."""


def spans(n: int, parts: int) -> tuple[Span, ...]:
    """The non-empty chunks ``[i·n//parts, (i+1)·n//parts)``, i < ``parts``, of a batch of ``n``: the
    reference's ``split_data`` chunks, ZiCo's mini-batches."""
    bounds = [i * n // parts for i in range(parts + 1)]
    return tuple((start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True) if start < stop)


def chunks(n: int, split_data: int) -> list[slice]:
    """The reference's ``split_data`` chunks of a batch of ``n`` (:func:`spans`), as slices."""
    return [slice(*span) for span in spans(n, split_data)]


def loss_gradients(net: nn.Module, images: Tensor, labels: Tensor, weights: list[Tensor], temperature: float = 1.0,
                   create_graph: bool = False) -> tuple[Tensor | None, ...]:
    """∂L/∂W for each of ``weights``, L the mean cross-entropy of ``net(images) / temperature`` against
    ``labels`` (``None`` for a weight the loss does not reach)."""
    logits = net(images)
    if temperature != 1.0:
        logits = logits / temperature
    loss = F.cross_entropy(logits, labels)
    return torch.autograd.grad(loss, weights, allow_unused=True, create_graph=create_graph)


def chunk_grads(net: nn.Module, batch: Batch, span: slice, weights: list[Tensor], temperature: float = 1.0,
                create_graph: bool = False) -> tuple[Tensor | None, ...]:
    """:func:`loss_gradients` on the chunk ``span`` of the batch."""
    return loss_gradients(net, batch.images[span], batch.labels[span], weights, temperature, create_graph)


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


@dataclass(frozen=True)
class GradientChunks:
    """One forward and one first-order backward of the loss per chunk of a batch, the chunks in order on one
    network: what snip, plain, fisher, grad-norm (:class:`LossPass`, their sum) and ZiCo (one record each) read.

    ``grads[span][i]``: ∂L/∂W of ``layers[i]`` on the chunk ``span`` (``None``: no gradient reaches it).
    ``fisher[span][i]`` (for the chunks asked for): the Fisher terms of ``layers[i]`` on the chunk, one per
    call of the layer in the order the backward reaches them, each as :class:`LossPass` describes.
    """

    layers: list[nn.Module]
    grads: dict[Span, tuple[Tensor | None, ...]]
    fisher: dict[Span, list[list[Tensor]]]

    def loss_pass(self, steps: Sequence[Span], fisher: bool = False) -> LossPass:
        """The :class:`LossPass` of the batch cut into the chunks ``steps``: the gradients (and, with
        ``fisher``, the Fisher terms) added up chunk after chunk, call after call."""
        grads: list[Tensor | None] = [None] * len(self.layers)
        for span in steps:
            grads = [accumulate(total, g) for total, g in zip(grads, self.grads[span], strict=True)]
        if not fisher:
            return LossPass(self.layers, grads)
        terms: list[Tensor | None] = [None] * len(self.layers)
        for span in steps:
            for i, calls in enumerate(self.fisher[span]):
                for term in calls:
                    terms[i] = accumulate(terms[i], term)
        return LossPass(self.layers, grads, terms)


def gradient_chunks(net: nn.Module, images: Tensor, labels: Tensor, steps: Sequence[Span],
                    fisher: Collection[Span] = ()) -> GradientChunks:
    """The weight gradients of the loss of ``net`` on each of the chunks ``steps`` of ``images`` (one forward and one
    first-order backward each, in order) and, on the chunks in ``fisher``, the per-channel Fisher terms.

    The Fisher terms come from each conv/linear output a and its gradient, read by a hook on a during the
    same backward (the reference routes the output through an identity module with a backward hook and
    keeps a as an attribute; both see the same a and ∂L/∂a). A layer called twice adds a term per call.
    """
    layers = weight_layers(net)
    if not layers:
        raise ProxyError(f"{type(net).__name__} has no conv or linear layer; the gradient proxies sum over them")
    weights = [m.weight for m in layers]
    position = {id(m): i for i, m in enumerate(layers)}
    grads: dict[Span, tuple[Tensor | None, ...]] = {}
    terms: dict[Span, list[list[Tensor]]] = {}
    for span in steps:
        hooks = nullcontext()
        if span in fisher:
            terms[span] = [[] for _ in layers]
            hooks = capture(net, lambda m: id(m) in position, "output", fisher_hook(position, terms[span]))
        with hooks:
            grads[span] = loss_gradients(net, images[slice(*span)], labels[slice(*span)], weights)
    return GradientChunks(layers, grads, terms)


def fisher_hook(position: dict[int, int], terms: list[list[Tensor]]) -> Callable[[nn.Module, Tensor], None]:
    """A :func:`~proxies.mechanics.capture` transform that appends to ``terms[position[id(layer)]]`` the Fisher
    term of each layer output a, from a and ∂L/∂a, when the backward reaches a."""

    def hook_output(module: nn.Module, output: Tensor) -> None:
        if not output.requires_grad:
            return
        act, calls = output.detach(), terms[position[id(module)]]

        def add_term(grad: Tensor) -> None:
            per_sample = (act * grad).flatten(2).sum(dim=2) if act.ndim > 2 else act * grad
            calls.append(per_sample.pow(2).mean(dim=0).mul(0.5))

        output.register_hook(add_term)

    return hook_output


def loss_pass(net: nn.Module, batch: Batch, split_data: int = 1, fisher: bool = False) -> LossPass:
    """The weight gradients of the loss (and, with ``fisher``, the per-channel Fisher terms) of ``net`` on
    ``batch``: one forward and one first-order backward per chunk (:func:`gradient_chunks`), summed."""
    steps = spans(len(batch), split_data)
    return gradient_chunks(net, batch.images, batch.labels, steps, steps if fisher else ()).loss_pass(steps, fisher)


def gradient_pass(steps: Sequence[Span], fisher: Collection[Span] = ()) -> SharedPass:
    """The shared pass of the gradient proxies: :func:`run_gradient_pass` over the chunks ``steps`` of the
    batch, with Fisher terms on the chunks in ``fisher``."""
    return SharedPass(GRADIENT_PASS_KEY, run_gradient_pass, tuple(steps), frozenset(fisher))


def run_gradient_pass(factory: NetworkFactory, batch: Batch | None, device: torch.device,
                      steps: tuple[Hashable, ...], reads: frozenset[Hashable]) -> GradientChunks:
    """:func:`gradient_chunks` of the labelled ``batch`` on a network built by :func:`~proxies.mechanics.build`
    (PyTorch's default init, train mode), over the chunks ``steps``, with Fisher terms on those in ``reads``."""
    batch = labelled(batch, device, "the loss-gradient pass")
    return gradient_chunks(build(factory, device), batch.images, batch.labels, steps, reads)


def labelled(batch: Batch | None, device: torch.device, proxy: str) -> Batch:
    """The batch on ``device``; a one-line error naming ``proxy`` when it has no labels."""
    if batch is None or batch.labels is None:
        raise ProxyError(f"{proxy} needs a batch of images with labels")
    return Batch(batch.images.to(device), batch.labels.to(device), batch.num_classes, batch.source)


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
        return labelled(batch, device, self.name)


@dataclass
class GradientSaliency(LossSaliency):
    """A loss saliency read from :func:`loss_pass` (snip, plain, fisher), scored from the shared
    :func:`gradient_pass` when asked for with other readers of it, from its own pass otherwise."""

    fisher_terms: ClassVar[bool] = False
    """Whether the saliency reads the Fisher terms besides the weight gradients."""

    @abstractmethod
    def saliency(self, p: LossPass) -> Tensor:
        """The score, from the pass summed over the chunks."""

    def shared_pass(self) -> SharedPass:
        steps = spans(self.batch_size, self.split_data)
        return gradient_pass(steps, steps if self.fisher_terms else ())

    def from_pass(self, result: GradientChunks, batch: Batch | None) -> Tensor:
        return self.saliency(result.loss_pass(spans(len(batch), self.split_data), self.fisher_terms))

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Tensor:
        batch = self.labelled(batch, device)
        return self.saliency(loss_pass(build(factory, device), batch, self.split_data, self.fisher_terms))
