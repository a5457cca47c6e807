"""#Params and FLOPs: the cost baselines every zero-shot proxy must beat (REFERENCE B.13, A.3).

Both count the network the factory builds, so they work for any network, not only NB201.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from proxies.base import Batch, NanPolicy, Needs, NetworkFactory, Proxy, Reference
from proxies.mechanics import build, is_relu
from proxies.registry import register

FlopsCount = Literal["conv", "all"]
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._MaxPoolNd)


def _module_flops(module: nn.Module, inp: Tensor, out: Tensor, count: FlopsCount) -> int:
    """Multiply-accumulates of one call of a leaf module (see :func:`count_flops`)."""
    if isinstance(module, _CONV):
        macs = out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        return macs + (out.numel() if count == "all" and module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        macs = out.numel() * module.in_features
        return macs + (out.numel() if count == "all" and module.bias is not None else 0)
    if count == "conv":
        return 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 2 * out.numel()
    if is_relu(module):
        return out.numel()
    if isinstance(module, _POOL):
        kernel = module.kernel_size
        window = math.prod(kernel) if isinstance(kernel, tuple) else kernel ** (out.dim() - 2)
        return window * out.numel()
    if isinstance(module, nn.modules.pooling._AdaptiveAvgPoolNd):
        return inp.numel()
    return 0


def count_flops(net: nn.Module, input_shape: tuple[int, ...], count: FlopsCount = "conv") -> int:
    """FLOPs (multiply-accumulates, NATS-Bench's unit) of ``net`` for one input of ``input_shape``.

    ``count="conv"`` (NATS-Bench): conv C_out·H_out·W_out·C_in/groups·k² and linear in·out only.
    ``count="all"`` (NASLib/tensorwatch style) adds, per output element, 2 for a BN, 1 for a ReLU,
    k² for a k×k pooling window, 1 for a conv or linear bias, and 1 per *input* element of adaptive
    (global) pooling. Counted by forward hooks during one no-grad forward, in eval mode, of a zero
    input on the device of ``net``'s parameters (CPU when it has none); ``net`` is left in eval mode.
    """
    if count not in ("conv", "all"):
        raise ValueError(f"unknown FLOPs count {count!r}; expected 'conv' or 'all'")
    device = next(net.parameters(), torch.empty(0)).device
    net.eval()
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs[0], output, count)

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
    return total


@register
@dataclass
class Params(Proxy):
    """Parameters of the network in millions (Σ numel over all parameters: conv, BN affine, linear), as
    NATS-Bench and NASLib report #params. On NB201 it ranks exactly as conv-only FLOPs do."""

    name: ClassVar[str] = "params"
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset(), "always finite")
    reference: ClassVar[Reference] = Reference(
        paper="#params as NATS-Bench and NASLib report it (a cost baseline, REFERENCE B.13)",
        choices={"score": "Σ numel over all parameters (conv, BN affine, linear), in millions"})

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        with torch.device("meta"):  # shapes are all that is counted: skip the weight init
            net = factory()
        return sum(p.numel() for p in net.parameters()) / 1e6


@register
@dataclass
class Flops(Proxy):
    """FLOPs for one input in MFLOPs (multiply-accumulates), by :func:`count_flops`.

    ``count="conv"`` (default) is NATS-Bench's definition (153.27 M for the best NB201 CIFAR-10 net);
    ``count="all"`` also counts pooling, BN, ReLU and biases, as NASLib's counter does, which breaks the
    NB201 ties of the conv-only count and ranks slightly worse (REFERENCE A.3).
    """

    name: ClassVar[str] = "flops"
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(frozenset(), "always finite")
    reference: ClassVar[Reference] = Reference(
        paper="FLOPs as NATS-Bench defines them (a cost baseline, REFERENCE B.13, A.3)",
        choices={"score": "conv and linear multiply-accumulates for one input, in MFLOPs (153.27 M for the best "
                          "NB201 CIFAR-10 net)"})

    count: FlopsCount = "conv"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return count_flops(build(factory, device), factory.input_shape, self.count) / 1e6
