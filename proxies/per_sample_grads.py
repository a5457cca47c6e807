"""Per-sample gradients (Jacobian rows) of a network through one batched forward, BN coupling kept.

``torch.func.vjp`` and ``vmap`` over the rows of the identity, with 2-D convolutions, average pools and
BatchNorm routed through autograd functions of their own whose backward batches well under ``vmap``
(:func:`per_sample_grads`; TE-NAS's NTK reads its rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vjp, vmap
from torch.overrides import TorchFunctionMode

CHUNK_BYTES: dict[str, int] = {"cpu": 24 * 2**20, "cuda": 2**30}
"""Per device type, how large the row-batched copy of the network's largest conv/BN output may grow in
:func:`per_sample_grads` (rows per chunk = this / that output's size). On the CPU small chunks stay in
cache: 24 MiB gives 2 chunks of 32 rows on TE-NAS's thin net and 6 rows at a time on the full NB201 net
at batch 64 (2 threads, 32 MiB L3; interleaved timings: thin 0.73 s at 32 rows against 0.85 s at 16 and
more at 64; full net 4 and 6 rows alike, 8 rows 1.3-1.6x slower); on a GPU large chunks fill the device
(a chunk then holds about 8x this in signals)."""


def _summed_logits(out: Tensor) -> Tensor:
    return out.flatten(1).sum(dim=1)


def per_sample_grads(net: nn.Module, x: Tensor, params: dict[str, Tensor],
                     fn: Callable[[Tensor], Tensor] | None = None,
                     chunk_size: int | None = None) -> dict[str, Tensor]:
    """Jacobian rows: the gradient of ``fn(net(x))[i]`` (default: sample i's summed logits) w.r.t. ``params``.

    Exactly the rows a loop of per-sample ``autograd.grad`` calls through one batched forward gives (as
    TE-NAS's ``get_ntk_n``): in train mode BN couples the samples through the batch statistics, so row i
    carries gradient from every sample's activations. Buffers (BN running statistics) are not updated.
    Returns {name: tensor of shape (N, *param.shape)}.

    One forward under ``torch.func.vjp``, then ``torch.func.vmap`` over the vector-Jacobian product with
    the rows of the identity, ``chunk_size`` rows at a time (default: from :data:`CHUNK_BYTES`, in
    chunks of equal size; the result does not depend on it). No Python loop over samples.
    During that forward, 2-D convolutions and BatchNorm run through autograd functions of their own
    (:class:`_Conv2dFn`, :class:`_BatchNormFn`) whose backward batches well under ``vmap``: PyTorch's
    batching rules for the conv weight gradient and the BatchNorm backward copy the layer input once per
    row (or loop over rows); ours compute the rows' conv weight gradients with one ordinary weight-gradient
    kernel call (:class:`_ConvWeightGrad`) and the BN backward (:class:`_BatchNormGrad`) with two
    elementwise passes for all rows' input gradients (each row's two per-channel sums from PyTorch's fused
    kernel where the BN input is large).

    Cost: the same arithmetic as the per-sample loop (N backward passes through the batch; BN's coupling
    leaves no shortcut). On 2 CPU cores it beats the loop on small networks such as TE-NAS's thin one
    (fewer, larger operations) and trails it on the full NB201 network (about 1.2-1.5x), whose large
    activations make every batched elementwise pass leave the cache. On a GPU (not measured yet) the
    batched form replaces N sequential backward passes by a few large kernels per chunk.
    """
    fn = fn or _summed_logits
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    others = {k: v.detach() for k, v in net.named_parameters() if k not in params}
    layers = _VmapFriendlyLayers()

    def outputs(p: dict[str, Tensor]) -> Tensor:
        fresh_buffers = {k: v.clone() for k, v in buffers.items()}  # the BN module counts its batches
        with layers:
            return fn(functional_call(net, ({**others, **p}, fresh_buffers), (x,), strict=False))

    out, vjp_fn = vjp(outputs, {k: v.detach() for k, v in params.items()})
    if out.ndim != 1:
        raise ValueError(f"per_sample_grads: fn must give one value per sample, got shape {tuple(out.shape)}")
    n = out.shape[0]
    if chunk_size is None:
        budget = CHUNK_BYTES.get(x.device.type, CHUNK_BYTES["cuda"])
        chunks = math.ceil(n / max(1, min(n, budget // max(1, layers.largest_output_bytes))))
        chunk_size = math.ceil(n / chunks)
    basis = torch.eye(n, dtype=out.dtype, device=out.device)
    chunks = [vmap(vjp_fn)(basis[start:start + chunk_size])[0] for start in range(0, n, chunk_size)]
    return {k: torch.cat([c[k] for c in chunks]) if len(chunks) > 1 else chunks[0][k] for k in params}


class _VmapFriendlyLayers(TorchFunctionMode):
    """Routes ``conv2d``, ``avg_pool2d`` and ``batch_norm`` calls to :class:`_Conv2dFn`,
    :class:`_AvgPool2dFn`, :class:`_BatchNormFn` (other calls, and forms those do not cover, run
    unchanged) and records the largest output's size."""

    def __init__(self) -> None:
        super().__init__()
        self.largest_output_bytes = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is torch.conv2d:
            out = _conv2d(*args, **kwargs)
        elif func is F.avg_pool2d and args and isinstance(args[0], Tensor) and args[0].ndim == 4:
            out = _AvgPool2dFn.apply(args[0], _pool_arguments(*args[1:], **kwargs))
        elif func is F.batch_norm:
            out = _batch_norm(*args, **kwargs)
        else:
            return func(*args, **kwargs)
        self.largest_output_bytes = max(self.largest_output_bytes, out.numel() * out.element_size())
        return out


def _conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
            dilation: Any = 1, groups: int = 1) -> Tensor:
    """``F.conv2d`` through :class:`_Conv2dFn`. A strided 1x1 conv without padding reads only every s-th
    position, so it runs as the stride-1 conv of those positions (``input[:, :, ::s, ::s]``, copied once in
    the input's layout; slicing's own backward scatters the input gradient back): the same products and
    sums, and it keeps clear of oneDNN's channels-last 1x1 stride-2 weight gradient, which corrupts the
    heap with fewer than 8 input channels (oneDNN issue #6035; TE-NAS's thin Macro networks)."""
    if input.ndim != 4 or isinstance(padding, str):
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
    stride, padding = _pair(stride), _pair(padding)
    if weight.shape[2:] == (1, 1) and padding == (0, 0) and stride != (1, 1):
        input = input[:, :, ::stride[0], ::stride[1]].clone(memory_format=torch.preserve_format)
        stride = (1, 1)
    return _Conv2dFn.apply(input, weight, bias, stride, padding, _pair(dilation), groups)


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                momentum: float | None = 0.1, eps: float = 1e-5) -> Tensor:
    """``F.batch_norm``'s output; running statistics are read (eval) but never updated."""
    if training:
        var, mean = torch.var_mean(input.detach(), dim=[d for d in range(input.ndim) if d != 1], correction=0)
    elif running_mean is None or running_var is None:
        return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum or 0.0, eps)
    else:
        mean, var = running_mean.detach(), running_var.detach()
    return _BatchNormFn.apply(input, weight, bias, mean, torch.rsqrt(var + eps), training)[0]


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    return t.reshape((1, -1) + (1,) * (ndim - 2))


class _GradientOnly(torch.autograd.Function):
    """A gradient computed inside :func:`per_sample_grads`' backward: never differentiated again, so it
    keeps no context; subclasses supply ``forward`` and a ``vmap`` rule."""

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, ...]:
        raise RuntimeError("per_sample_grads does not differentiate its gradients again")


class _BatchNormFn(torch.autograd.Function):
    """y = γ·x̂ + β with x̂ = (x − μ)·invstd; μ and invstd are given (batch or running statistics).

    Backward, with sums S₁ = Σ g and S₂ = Σ g·x̂ over the batch and positions of each channel (M terms):
    dγ = S₂, dβ = S₁, and dx = γ·invstd·(g − S₁/M − x̂·S₂/M) in training (μ and invstd depend on the
    batch; computed by :class:`_BatchNormGrad`), γ·invstd·g otherwise. Neither copies the unbatched x̂ per
    row under ``vmap``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, weight: Tensor | None, bias: Tensor | None, mean: Tensor, invstd: Tensor,
                training: bool) -> tuple[Tensor, Tensor]:
        normalised = (input - _channel_view(mean, input.ndim)) * _channel_view(invstd, input.ndim)
        out = normalised if weight is None else normalised * _channel_view(weight, input.ndim)
        return (out if bias is None else out + _channel_view(bias, input.ndim)), normalised

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        _, weight, _, _, invstd, training = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1], weight, invstd)
        ctx.training = training

    @staticmethod
    def backward(ctx: Any, g: Tensor, _: Tensor | None) -> tuple[Tensor | None, ...]:
        normalised, weight, invstd = ctx.saved_tensors
        scale = invstd if weight is None else invstd * weight
        if not ctx.training:
            grad_input = g * _channel_view(scale, g.ndim) if ctx.needs_input_grad[0] else None
            reduce = [d for d in range(g.ndim) if d != 1]
            grad_weight = (g * normalised).sum(dim=reduce) if weight is not None and ctx.needs_input_grad[1] else None
            return grad_input, grad_weight, g.sum(dim=reduce) if ctx.needs_input_grad[2] else None, None, None, None
        grad_input, sum_gx, sum_g = _BatchNormGrad.apply(g, normalised, scale)
        return (grad_input if ctx.needs_input_grad[0] else None,
                sum_gx if weight is not None and ctx.needs_input_grad[1] else None,
                sum_g if ctx.needs_input_grad[2] else None, None, None, None)


_FUSED_SUMS_FROM = 2**18
"""Elements of one row (one BN input) from which :class:`_BatchNormGrad` takes its sums row by row from the
fused kernel: the full NB201 net's BN inputs at batch 64 (2^18-2^20) gain, TE-NAS's thin net's (at most
64·3·32·32 < 2^18) lose (its NTK took 1.17 s instead of 0.74 s per architecture)."""


class _BatchNormGrad(_GradientOnly):
    """Training-mode BN backward (dx, S₂, S₁) from the signal g, x̂ and scale = γ·invstd.

    For rows of at least :data:`_FUSED_SUMS_FROM` elements the two sums come from PyTorch's fused kernel
    (``native_batch_norm_backward`` fed x̂ with mean 0 and invstd 1, asked for the weight and bias gradients
    only: one pass over g), once per row against the unbatched x̂ (each row's statistics are its own; the
    outputs are per-channel vectors, so nothing large is copied); smaller rows take two reductions over all
    rows at once, where one kernel call per row would cost more than it saves. dx = scale·g − scale·(S₁ +
    x̂·S₂)/M is two elementwise passes over all rows. The ``vmap`` rule hands all rows to :meth:`_rows`."""

    @staticmethod
    def forward(g: Tensor, normalised: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        grad_input, sum_gx, sum_g = _BatchNormGrad._rows(g.unsqueeze(0), normalised, scale)
        return grad_input[0], sum_gx[0], sum_g[0]

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], g: Tensor, normalised: Tensor,
             scale: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[int, int, int]]:
        if in_dims[1] is not None or in_dims[2] is not None:  # row-dependent x̂ or γ: never produced here
            raise NotImplementedError("per_sample_grads: BatchNorm input or weight batched under vmap")
        rows = g.movedim(in_dims[0], 0) if in_dims[0] is not None else g.unsqueeze(0)
        return _BatchNormGrad._rows(rows, normalised, scale), (0, 0, 0)

    @staticmethod
    def _rows(rows: Tensor, normalised: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(dx, S₂, S₁) of the K signals ``rows`` (K, *x̂.shape), each of shape (K, ...)."""
        channels = normalised.shape[1]
        if normalised.numel() >= _FUSED_SUMS_FROM:
            zeros, ones = normalised.new_zeros(channels), normalised.new_ones(channels)
            sums = [torch.ops.aten.native_batch_norm_backward(row, normalised, scale, None, None, zeros, ones,
                                                              True, 0.0, [False, True, True])[1:] for row in rows]
            sum_gx, sum_g = (torch.stack(parts) for parts in zip(*sums, strict=True))
        else:
            reduce = [1, *range(3, rows.ndim)]
            sum_g, sum_gx = rows.sum(dim=reduce), (rows * normalised).sum(dim=reduce)
        count = normalised.numel() // channels
        view = (rows.shape[0], 1, channels) + (1,) * (normalised.ndim - 2)
        grad_input = torch.empty_like(rows)  # the signal's memory layout (channels-last rows on the CPU)
        torch.addcmul((-scale * sum_g / count).reshape(view), (-scale * sum_gx / count).reshape(view), normalised,
                      out=grad_input)
        grad_input.addcmul_(rows, scale.reshape((1, 1, channels) + (1,) * (normalised.ndim - 2)))
        return grad_input, sum_gx, sum_g


class _Conv2dFn(torch.autograd.Function):
    """``F.conv2d`` with a backward that batches under ``vmap``: the input gradient is a (transposed)
    convolution of the signal (``vmap`` folds the rows into the batch), the weight gradient
    :class:`_ConvWeightGrad`."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> Tensor:
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        input, weight, _, stride, padding, dilation, groups = inputs
        ctx.save_for_backward(input, weight)
        ctx.conf = (stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        input, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _conv2d_input_grad(g, weight, input.shape, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            grad_weight = _ConvWeightGrad.apply(g, input, tuple(weight.shape), ctx.conf)
        if ctx.needs_input_grad[2]:
            grad_bias = g.sum(dim=(0, 2, 3))
        return grad_input, grad_weight, grad_bias, None, None, None, None


class _ConvWeightGrad(_GradientOnly):
    """Weight gradient of a conv from its output signal g and its input.

    Its ``vmap`` rule sees the K rows of the signal at once and computes all K gradients with one ordinary
    convolution weight gradient (PyTorch's own kernel, oneDNN on the CPU): the rows become K times as many
    output channels against the one unbatched input, so the input is never copied per row (PyTorch's own
    batching rule for this case copies it K times as a grouped convolution)."""

    @staticmethod
    def forward(g: Tensor, input: Tensor, weight_shape: tuple[int, ...], conf: tuple[Any, ...]) -> Tensor:
        return _ConvWeightGrad._rows(g.unsqueeze(0), input, weight_shape, conf)[0]

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], g: Tensor, input: Tensor, weight_shape: tuple[int, ...],
             conf: tuple[Any, ...]) -> tuple[Tensor, int]:
        if in_dims[1] is not None:  # a row-dependent input: one product per row
            inputs = input.movedim(in_dims[1], 0)
            signals = g.movedim(in_dims[0], 0) if in_dims[0] is not None else g.expand(inputs.shape[0], *g.shape)
            rows = [_ConvWeightGrad._rows(s.unsqueeze(0), x, weight_shape, conf) for s, x in zip(signals, inputs,
                                                                                                   strict=True)]
            return torch.cat(rows), 0
        signals = g.movedim(in_dims[0], 0) if in_dims[0] is not None else g.unsqueeze(0)
        return _ConvWeightGrad._rows(signals, input, weight_shape, conf), 0

    @staticmethod
    def _rows(g: Tensor, input: Tensor, weight_shape: tuple[int, ...], conf: tuple[Any, ...]) -> Tensor:
        """Weight gradients (K, *weight_shape) of the K signals g (K, N, o, h, w): one ordinary conv weight
        gradient with the rows stacked as extra output channels, (N, G·K·o/G, h, w) against the input."""
        stride, padding, dilation, groups = conf
        k, n, o = g.shape[:3]
        # (N, h, w, G, K, o/G): channels-last with the rows inside each group's block of output channels
        stacked = g.reshape(k, n, groups, o // groups, *g.shape[3:]).permute(1, 4, 5, 2, 0, 3)
        stacked = stacked.reshape(n, *g.shape[3:], k * o).permute(0, 3, 1, 2)
        shape = (k * o, *weight_shape[1:])
        placeholder = input.new_empty(shape).to(memory_format=torch.channels_last)  # only its shape is read
        _, grad, _ = torch.ops.aten.convolution_backward(
            stacked, input, placeholder, None, list(stride), list(padding), list(dilation), False, [0, 0],
            groups, [False, True, False])
        # (G, K, o/G, c/G, kh, kw) -> (K, o, c/G, kh, kw)
        return grad.reshape(groups, k, o // groups, *weight_shape[1:]).transpose(0, 1).reshape(k, *weight_shape)


def _pool_arguments(kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                    count_include_pad: bool = True, divisor_override: int | None = None) -> tuple[Any, ...]:
    return (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


class _AvgPool2dFn(torch.autograd.Function):
    """``F.avg_pool2d`` whose backward batches under ``vmap`` (:class:`_AvgPoolGrad`): PyTorch's batching
    rule for ``avg_pool2d_backward`` copies the pooled input once per row."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, conf: tuple[Any, ...]) -> Tensor:
        return F.avg_pool2d(input, *conf)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.input_shape, ctx.conf = tuple(inputs[0].shape), inputs[1]

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        return _AvgPoolGrad.apply(g, ctx.input_shape, ctx.conf), None


class _AvgPoolGrad(_GradientOnly):
    """Input gradient of an average pool; its ``vmap`` rule folds the rows into the batch."""

    @staticmethod
    def forward(g: Tensor, input_shape: tuple[int, ...], conf: tuple[Any, ...]) -> Tensor:
        return _AvgPoolGrad._grad(g, input_shape, conf)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], g: Tensor, input_shape: tuple[int, ...],
             conf: tuple[Any, ...]) -> tuple[Tensor, int]:
        rows = g.movedim(in_dims[0], 0)
        folded = _AvgPoolGrad._grad(rows.flatten(0, 1), (rows.shape[0] * input_shape[0], *input_shape[1:]), conf)
        return folded.unflatten(0, rows.shape[:2]), 0

    @staticmethod
    def _grad(g: Tensor, input_shape: tuple[int, ...], conf: tuple[Any, ...]) -> Tensor:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override = conf
        layout = torch.channels_last if g.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        shape_only = torch.empty(input_shape, dtype=g.dtype, device=g.device, memory_format=layout)
        return torch.ops.aten.avg_pool2d_backward(
            g, shape_only, _pair(kernel_size), _pair(stride if stride not in (None, []) else kernel_size),
            _pair(padding), ceil_mode, count_include_pad, divisor_override)


def _conv2d_input_grad(g: Tensor, weight: Tensor, input_shape: torch.Size, stride: tuple[int, int],
                       padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> Tensor:
    kernel = weight.shape[2:]
    reach = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    if stride == (1, 1) and all(p <= r for p, r in zip(padding, reach, strict=True)):
        # stride 1: the input gradient is a plain convolution with the flipped, transposed kernel
        o, c_group = weight.shape[:2]
        flipped = weight.reshape(groups, o // groups, c_group, *kernel).transpose(1, 2).flip(-1, -2)
        flipped = flipped.reshape(groups * c_group, o // groups, *kernel)
        return F.conv2d(g, flipped, None, 1, tuple(r - p for r, p in zip(reach, padding, strict=True)),
                        dilation, groups)
    out_size = g.shape[2:]
    output_padding = tuple(i - ((o - 1) * s - 2 * p + r + 1) for i, o, s, p, r
                           in zip(input_shape[2:], out_size, stride, padding, reach, strict=True))
    return F.conv_transpose2d(g, weight, None, stride, padding, output_padding, groups, dilation)
