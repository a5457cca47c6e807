"""Zen-Score: Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021.

Computed exactly as ZenNAS's ``ZeroShotProxy/compute_zen_score.py`` scores candidates during the
search (REFERENCE B.1).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from proxies.base import HASH_DEFAULT, Batch, NanPolicy, Needs, NetworkFactory, Proxy, ProxyError, Reference, pre_gap
from proxies.mechanics import bn_layers, build, capture, fresh_bn, normal
from proxies.options import GE
from proxies.registry import register


def _is_bn(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def _log_sigma_of_batch(bn: nn.Module, t: Tensor) -> Tensor:
    """log √(mean over channels of the batch variance + eps) of a BN input (N, C, ...): the biased
    variance and the eps BN itself normalises with, so a BN fed a constant (a conv on a dead NB201 node)
    gives log √eps, not −inf."""
    per_channel = t.detach().transpose(0, 1).flatten(1).var(dim=1, correction=0)
    return 0.5 * torch.log(per_channel.mean() + bn.eps)


@register
@dataclass
class ZenScore(Proxy):
    """Zen-Score = log Δ + Σ_BN log σ_BN (ZenNAS's search-time protocol by default).

    Reference choices (ZenNAS ``compute_zen_score``, called from ``evolution_search.py``):

    - init: Gaussian N(0, 1) conv/linear weights, zero biases, BN γ = 1, β = 0;
    - BN: train mode, fresh running buffers, momentum 0.1 (the network is never put in eval mode);
    - input: x ~ N(0, 1) and ε ~ N(0, 1), both [batch_size, *input_shape] (data-free, no real images),
      x' = x + ``mixup_gamma`` · ε with γ = 0.01;
    - exactly two forward passes, f(x) then f(x'), to the pre-GAP tensor (``forward_pre_gap``);
    - Δ = mean over the batch of the L1 sum over C·H·W of |f(x) − f(x')| (no division by γ);
    - BN term (``bn_stat="running_var"``): Σ over BN layers that track statistics of
      log √(mean over channels of running_var), read after the two passes, i.e. of
      0.81 + 0.09·v₁ + 0.1·v₂ with v₁, v₂ the unbiased batch variances of the two passes;
    - batch 64, repeat 1, as every ZenNAS search script.

    ``bn_stat="batch"``: σ² = mean over channels of each BN input's (biased) batch variance in the
    first pass, read by hooks, plus the BN's eps (what BN divides by); every BN counts, tracking or
    not (the hook-based variant circulating in ports). Without eps, a BN fed a constant (an NB201 conv
    on a node with no live input, in 16 of 100 sampled archs) would give −inf to a connected network.

    ``repeat=n`` averages n independent scores, each on a freshly built and initialised network.
    ZenNAS's standalone CLI (batch 16, repeat 32) instead re-initialises the weights of one network,
    so its running_var accumulates across repeats; we do not reproduce that.

    ``network`` (``"as-built"``, the default): the network the factory builds. ``"no-reslink"`` asks the
    factory for its ``no-reslink`` variant, the network with its residual links removed, which is what
    ZenNAS scores (``no_reslink=True`` during the search; REFERENCE B.1, C.1); a benchmark without such a
    variant (NAS-Bench-201, whose skip edges are cell operations) makes the score fail in one line.
    On NAS-Bench-201 the cells' BN layers dominate the BN term; that is the reference computation.
    Components: ``zen.log_delta`` and ``zen.bn_term`` (means over repeats).
    """

    name: ClassVar[str] = "zen"
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"-inf"}),
        "-inf when the pre-GAP tensor does not depend on the input (Δ = 0, e.g. a disconnected NB201 cell)")
    reference: ClassVar[Reference] = Reference(
        paper='Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021',
        code="ZenNAS ZeroShotProxy/compute_zen_score.py (compute_zen_score, as evolution_search.py calls it)",
        choices={
            "network": "residual links removed (no_reslink=True during the search)",
            "init": "Gaussian N(0, 1) conv and linear weights, zero biases, BN γ = 1, β = 0",
            "bn": "train mode, fresh running buffers, momentum 0.1 (never put in eval mode)",
            "input": "x ~ N(0, 1) and ε ~ N(0, 1), both [64, *input_shape], x' = x + 0.01·ε (data-free)",
            "score": "log Δ + Σ over BN layers that track statistics of log √(mean over channels of running_var) "
                     "after two forward passes f(x), f(x') to the pre-GAP tensor; Δ = mean over the batch of the "
                     "L1 sum of |f(x) − f(x')|",
            "repeats": "1, as every ZenNAS search script",
        })

    batch_size: int = field(default=64, metadata={GE: 1})
    """Gaussian images per forward pass."""
    mixup_gamma: float = 0.01
    repeat: int = field(default=1, metadata={GE: 1})
    bn_stat: Literal["running_var", "batch"] = "running_var"
    network: Literal["as-built", "no-reslink"] = field(default="as-built", metadata={HASH_DEFAULT: False})
    """Added after the first stores: at its default it stays out of the option hash."""

    @property
    def input_kind(self) -> str:
        return "gaussian"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, Tensor]:
        shape = (self.batch_size, *factory.input_shape)
        log_deltas, bn_terms = [], []
        for _ in range(self.repeat):
            net = fresh_bn(self._network(factory, device), momentum=0.1)
            batch_stats = (capture(net, _is_bn, transform=_log_sigma_of_batch) if self.bn_stat == "batch"
                           else nullcontext([]))
            with torch.no_grad():
                x = normal(shape, device)
                x_mixed = x + self.mixup_gamma * normal(shape, device)
                with batch_stats as batch_log_sigmas:
                    f_x = pre_gap(net, x)
                f_mixed = pre_gap(net, x_mixed)
                log_deltas.append(torch.log((f_x - f_mixed).abs().flatten(1).sum(dim=1).mean()))
                log_sigmas = batch_log_sigmas if self.bn_stat == "batch" else [
                    0.5 * torch.log(m.running_var.mean()) for m in bn_layers(net) if m.running_var is not None
                ]
                bn_terms.append(torch.stack(log_sigmas).sum() if log_sigmas else torch.zeros((), device=device))
        log_delta, bn_term = torch.stack(log_deltas).mean(), torch.stack(bn_terms).mean()
        return {"value": log_delta + bn_term, "zen.log_delta": log_delta, "zen.bn_term": bn_term}

    def _network(self, factory: NetworkFactory, device: torch.device) -> nn.Module:
        if self.network == "as-built":
            return build(factory, device, "gaussian")
        try:
            return build(factory, device, "gaussian", variant="no-reslink")
        except TypeError as exc:  # VariantUnavailable, or a factory that takes no variant at all
            raise ProxyError(f"zen: network='no-reslink' needs the factory's no-reslink variant ({exc})") from exc
