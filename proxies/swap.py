"""SWAP: Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024
(pym1024/SWAP ``src/metrics/swap.py``, protocol in ``correlation.py``; the same metric in pym1024/SWAP_Universal
``SWAP_CNN.py``). REFERENCE B.12.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference
from proxies.mechanics import build, capture, reinit
from proxies.options import GE, GT
from proxies.registry import register

_BITS_PER_WORD = 63
"""Samples packed per int64 word of a neuron's pattern (the sign bit stays clear)."""
_TABLE_BITS = 20
"""Up to this many samples the distinct patterns are marked in a table of 2^samples flags (one scatter per
layer); beyond, they are sorted (``torch.unique``)."""


def neuron_codes(activations: Tensor) -> Tensor:
    """Neuron j's pattern across the N samples of one layer's activations (N, ...): the bits
    (activation_ij > 0)_i, packed 63 samples to an int64 word, as rows (neurons, ⌈N/63⌉)."""
    bits = (activations.detach().flatten(1) > 0).to(torch.int64)
    words = []
    for start in range(0, bits.shape[0], _BITS_PER_WORD):
        chunk = bits[start:start + _BITS_PER_WORD]
        shifts = torch.arange(chunk.shape[0], device=bits.device, dtype=torch.int64)[:, None]
        words.append((chunk << shifts).sum(dim=0))
    return torch.stack(words, dim=1)


def count_distinct_rows(codes: Tensor) -> int:
    """Number of distinct rows of an int64 matrix (M, W), by one 1-D ``torch.unique`` per column (each row's
    id so far combined with its next word's rank), several times faster than ``torch.unique(dim=0)``."""
    ids = torch.zeros(codes.shape[0], dtype=torch.int64, device=codes.device)
    for word in codes.T:
        _, rank = torch.unique(word, return_inverse=True)
        _, ids = torch.unique(ids * (int(rank.max()) + 1) + rank, return_inverse=True)
    return int(ids.max()) + 1 if len(ids) else 0


class DistinctPatterns:
    """The set of distinct per-neuron patterns over the layers :meth:`add` sees (:func:`neuron_codes`)."""

    def __init__(self, samples: int, device: torch.device) -> None:
        self.table = torch.zeros(2**samples, dtype=torch.bool, device=device) if samples <= _TABLE_BITS else None
        self.parts: list[Tensor] = []

    def add(self, activations: Tensor) -> None:
        codes = neuron_codes(activations)
        if self.table is not None:
            self.table[codes[:, 0]] = True
        else:
            self.parts.append(torch.unique(codes[:, 0])[:, None] if codes.shape[1] == 1 else codes)

    def __len__(self) -> int:
        if self.table is not None:
            return int(self.table.sum())
        return count_distinct_rows(torch.cat(self.parts)) if self.parts else 0


def swap_count(net: nn.Module, images: Tensor) -> int:
    """Number of distinct per-neuron activation patterns across the samples, over the outputs of every
    ``nn.ReLU`` that reads a 4-D tensor (the reference's hook), from one forward without gradient: the number
    of distinct rows of sign(A)ᵀ, A the samples × neurons matrix of those outputs, concatenated."""
    patterns = DistinctPatterns(len(images), images.device)

    def add(module: nn.Module, t: Tensor) -> bool:
        if t.ndim == 4:
            patterns.add(t)
        return t.ndim == 4

    with torch.no_grad(), capture(net, lambda m: isinstance(m, nn.ReLU), "output", add) as seen:
        net(images)
    if not any(seen):
        raise ProxyError(f"swap: {type(net).__name__} has no nn.ReLU reading 4-D activations")
    return len(patterns)


def regular_factor(net: nn.Module, mu: float, sigma: float) -> float:
    """exp(−(P − μ)²/σ), P the parameter count in thousands (every parameter whose name has no
    ``auxiliary``), the reference's ``cal_regular_factor``."""
    params = sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name) / 1e3
    return math.exp(-((params - mu) ** 2) / sigma)


@register
@dataclass
class Swap(Proxy):
    """Mean over ``repeats`` Gaussian inits of the number of distinct sample-wise activation patterns.

    Reference choices (SWAP ``correlation.py`` and ``SWAP``/``SampleWiseActivationPatterns``; REFERENCE B.12):

    - ``batch_size`` = 16 real CIFAR-10 training images (``--input_samples 16``: the first batch of an
      unshuffled loader, drawn once; labels unused), the network in train mode (BN on batch statistics);
    - ``repeats`` = 32: each repeat re-initialises the network (``network_weight_gaussian_init``: conv and
      linear weights N(0, 1), biases 0, BN γ = 1, β = 0) and runs one forward without gradient;
    - forward hooks on ``nn.ReLU`` modules whose input is 4-D keep their *outputs*, flattened per sample and
      concatenated into A (samples × neurons), binarised by sign (ReLU outputs: 1 where positive, else 0);
    - SWAP = the number of distinct rows of Aᵀ (``torch.unique(dim=0)``): distinct per-neuron patterns across
      the samples, at most 2^batch_size; the score is the mean over the repeats.

    Regularised SWAP (the paper's variant; the reference's ``regular=True``): set ``mu`` and ``sigma`` and the
    score is multiplied by exp(−(P − μ)²/σ), P the network's parameter count in thousands (the repo sets no
    values for them). Our repeats draw every init on the CPU (same networks on every device).
    """

    name: ClassVar[str] = "swap"
    needs: ClassVar[Needs] = "images"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset(),
        "always finite (at least 1: every neuron shares one pattern when none varies)")
    reference: ClassVar[Reference] = Reference(
        paper='Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024',
        code="pym1024/SWAP src/metrics/swap.py, protocol in correlation.py",
        choices={
            "init": "network_weight_gaussian_init at every repeat: conv and linear weights N(0, 1), biases 0, "
                    "BN γ = 1, β = 0",
            "bn": "train mode (batch statistics)",
            "input": "16 real CIFAR-10 training images (--input_samples 16: the first batch of an unshuffled "
                     "loader, drawn once), labels unused",
            "repeats": "32, one forward without gradient each",
            "patterns": "outputs of nn.ReLU modules whose input is 4-D, flattened per sample, binarised by sign",
            "score": "the number of distinct rows of Aᵀ (torch.unique(dim=0)), the mean over the repeats",
            "regularisation": "regular=True multiplies by exp(−(P − μ)²/σ), P the parameters in thousands; the "
                              "repo sets no μ, σ",
        })

    batch_size: int = field(default=16, metadata={GE: 1})
    repeats: int = field(default=32, metadata={GE: 1})
    mu: float | None = None
    sigma: float | None = field(default=None, metadata={GT: 0})

    def _check(self) -> None:
        if (self.mu is None) != (self.sigma is None):
            raise ValueError(f"proxy {self.name!r}: options mu={self.mu!r}, sigma={self.sigma!r}: expected both mu "
                             f"and sigma (regularised SWAP) or neither")

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        if batch is None:
            raise ProxyError("swap needs a batch of images")
        images = batch.images.to(device)
        master = factory().train()  # every init is drawn into this CPU copy, then loaded into the scored one
        net = build(lambda: copy.deepcopy(master), device)  # on the device, laid out as build() lays networks
        counts = []
        for _ in range(self.repeats):
            net.load_state_dict(reinit(master, "gaussian").state_dict())
            counts.append(swap_count(net, images))
        score = sum(counts) / len(counts)
        if self.mu is not None and self.sigma is not None:
            score *= regular_factor(net, self.mu, self.sigma)
        return score
