"""Mechanics shared by proxies: building and re-initialising networks, BN handling, activation hooks.

Each lives here once; proxies compose them. Per-sample gradients are :mod:`proxies.per_sample_grads`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from proxies.base import NetworkFactory

InitScheme = Literal["default", "gaussian", "kaiming_fan_in", "kaiming_fan_out"]
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """Conv and linear layers, the layers most proxies sum over."""
    return [m for m in net.modules() if isinstance(m, _WEIGHTED)]


def bn_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reinit(net: nn.Module, scheme: InitScheme) -> nn.Module:
    """Re-initialise conv/linear weights (biases to 0) and BN (gamma 1, beta 0) in place.

    ``gaussian``: N(0, 1), as ZenNAS's ``network_weight_gaussian_init``. ``kaiming_fan_*``:
    ``kaiming_normal_`` with ReLU gain, as TE-NAS (fan_out for the NTK, fan_in for linear regions).
    ``default``: leave PyTorch's constructor init untouched.
    """
    if scheme == "default":
        return net
    if scheme not in ("gaussian", "kaiming_fan_in", "kaiming_fan_out"):
        raise ValueError(f"unknown init scheme {scheme!r}; expected default, gaussian, kaiming_fan_in, kaiming_fan_out")
    for m in net.modules():
        if isinstance(m, _WEIGHTED):
            if scheme == "gaussian":
                nn.init.normal_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode=scheme.removeprefix("kaiming_"), nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def drop_bn(net: nn.Module) -> nn.Module:
    """Replace every BatchNorm with identity, in place (zero-cost-nas's ``bn=False``)."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            drop_bn(child)
    return net


def fresh_bn(net: nn.Module, momentum: float = 0.1) -> nn.Module:
    """Fresh running statistics (mean 0, var 1, no batches seen) with the given momentum, train mode."""
    for m in bn_layers(net):
        m.momentum = momentum
        if m.track_running_stats:
            m.reset_running_stats()
    return net.train()


def build(factory: NetworkFactory, device: torch.device, init: InitScheme = "default",
          variant: str | None = None, **overrides: Any) -> nn.Module:
    """A fresh network from ``factory``, initialised by ``init`` on the CPU, then moved to ``device``
    in train mode. Weights come from the CPU generator, so CPU and CUDA runs score the same network.
    ``variant`` (a name of ``proxies.base.VARIANTS``) asks the factory for that variant
    (``factory(variant=NAME)``; it raises ``VariantUnavailable`` when it has none); ``overrides`` are
    passed to the factory as they are.

    On the CPU the 4-D weights are stored channels-last, which makes PyTorch run every convolution in
    oneDNN's channels-last kernels (1.2-4x faster forward and backward on NB201 at batch 64, equal
    results up to float rounding); activations follow the weights' layout, inputs need no change.
    """
    if variant is not None:
        overrides = {"variant": variant, **overrides}
    net = reinit(factory(**overrides), init).to(device).train()
    return net.to(memory_format=torch.channels_last) if torch.device(device).type == "cpu" else net


def normal(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """N(0, 1) draws from the CPU generator, moved to ``device`` (same numbers on CPU and CUDA)."""
    return torch.randn(shape, dtype=dtype).to(device)


@contextmanager
def capture(net: nn.Module, select: Callable[[nn.Module], bool],
            which: Literal["input", "output"] = "input",
            transform: Callable[[nn.Module, Tensor], Any] | None = None) -> Iterator[list[Any]]:
    """Record the input (or output) tensor of every module ``select`` accepts, in call order.

    ``transform(module, tensor)`` maps each to what is kept (e.g. a statistic), so large activations need
    not stay alive until the block ends.
    """
    records: list[Any] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        tensor = inputs[0] if which == "input" else output
        records.append(tensor if transform is None else transform(module, tensor))

    handles = [m.register_forward_hook(hook) for m in net.modules() if select(m)]
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


def is_relu(module: nn.Module) -> bool:
    """Modules that are ReLUs by type name (NASWOT's rule: the type name contains 'ReLU')."""
    return "ReLU" in type(module).__name__ and not list(module.children())
