"""NAS-Bench-Macro search space: 8-digit architecture specs, the network the benchmark trained, the EA's mutation.

Su et al., "Prioritized Architecture Sampling with Monte-Carlo Tree Search", CVPR 2021; the network follows
the benchmark's training code (xiusu/NAS-Bench-Macro ``train/model.py``), REFERENCE F.1: a 3x3 stem conv
(3→32) + BN + ReLU, eight searchable layers in three stages of 2, 3 and 3, a head conv1x1 (→1280) + BN +
ReLU, global average pooling and a linear classifier. The first layer of each stage has stride 2 and doubles
the channels (32→64→128→256); the others keep both. A layer is one of

- ``id`` (digit 0): nothing at stride 1 with equal channels; otherwise a projection conv1x1 (stride s) + BN,
  without ReLU. The first layer of every stage is therefore a projection, never a skip;
- ``ir_3x3_t3`` / ``ir_5x5_t6`` (digits 1, 2): a MobileNetV2 inverted residual with hidden = round(in·t):
  conv1x1 + BN + ReLU, depthwise KxK (stride s, padding K//2) + BN + ReLU, conv1x1 + BN, plus the input
  when stride is 1 and channels are equal. Every conv is bias-free.

Isomorphism. An ``id`` in a non-first layer of a stage is the identity function, so only the order of the
*other* layers of that stage matters. ``10000000`` (an ir_3x3 at stride 2, then nothing) differs from
``01000000`` (a projection, then an ir_3x3 at stride 1 with its residual add), since the first layer of a
stage never is the identity; but ``00010000`` and ``00001000`` (one ir_3x3 in the second or the third layer
of stage 2) are the same network, with the same parameters created in the same order.
:attr:`MacroArch.canonical` moves those identities to the end of their stage, the rule of the benchmark's
``train/collect_benchmark.py`` (``get_real_arch``): only the 3,969 canonical architectures were trained, and
the released file copies each one's result to its equivalent keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from proxies.base import resolve_variant
from search.spaces.cell_mutation import CellMutationSpace
from search.spaces.datasets import OnDataset
from search.spaces.zennet_space import Metrics

OPS: tuple[str, ...] = ("id", "ir_3x3_t3", "ir_5x5_t6")
"""Layer operations; the digit of an op in a spec is its position here."""
IR_SHAPES: dict[str, tuple[int, int]] = {"ir_3x3_t3": (3, 3), "ir_5x5_t6": (5, 6)}
"""Inverted residual op -> (depthwise kernel K, expansion t)."""
STAGES: tuple[int, ...] = (2, 3, 3)
"""Searchable layers per stage."""
NUM_LAYERS = sum(STAGES)
NUM_ARCHS = len(OPS) ** NUM_LAYERS
"""3^8 = 6,561 architectures."""
WIDTH = 32
"""Stem channels; stage s has ``WIDTH * 2**s`` channels (64, 128, 256)."""
HEAD_WIDTH = 1280
DATASETS: dict[str, tuple[int, int]] = {"cifar10": (10, 32)}
"""Dataset -> (number of classes, input resolution) as NAS-Bench-Macro trained them."""

VARIANT_OVERRIDES: dict[str, dict[str, Any]] = {
    "no-reslink": {"residual": False},
    "tenas-ntk": {"width": WIDTH // 8, "head_width": HEAD_WIDTH // 8},
    "tenas-lr": {"width": 1, "head_width": HEAD_WIDTH // WIDTH, "in_channels": 1, "stem": False},
}
""":data:`proxies.base.VARIANTS` in this space's terms (zenbench's choices; TE-NAS defines its thin networks
for NB201 only):

- ``no-reslink``: the inverted residuals without their residual add (Zen-NAS scores residual-free networks);
  the ``id`` layers are the network's own path and stay as they are.
- ``tenas-ntk``: every width divided by 8 (stem 4, stages 8/16/32, head 160), all eight layers; the analogue
  of TE-NAS's NB201 C=16→3 thinning. Macro has one layer per position, so there is no cell count to cut.
- ``tenas-lr``: the narrowest network that still holds every layer: no stem, a 1-channel input fed straight
  into the first layer, stage widths 2/4/8, head 40 (1280/32), strides kept. Where TE-NAS's NB201 network
  keeps one cell (the whole genotype), this keeps all three stages, since each stage holds different digits
  of the spec. TE-NAS's 3x3 single-channel crops shrink to 2x2 in stage 1 and 1x1 from stage 2 on, so
  there a KxK depthwise conv sees its centre tap only. Dropping the strides instead (3x3 throughout) was
  worse when measured here: on 40 sampled architectures the region count ranked test accuracy at Spearman
  0.43 with the strides and -0.30 without, where it saturates near the 3,000 samples.
"""


class MacroSpecError(ValueError):
    """A NAS-Bench-Macro spec that does not parse (the message names the spec and the fault)."""


@dataclass(frozen=True, order=True)
class MacroArch:
    """One architecture: the operation of each of the eight searchable layers, in network order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_LAYERS or any(op not in OPS for op in self.ops):
            raise MacroSpecError(f"a NAS-Bench-Macro architecture has {NUM_LAYERS} ops from {', '.join(OPS)}, "
                                 f"got {self.ops!r}")

    @classmethod
    def from_string(cls, text: str) -> MacroArch:
        """Parse an 8-digit spec such as ``02012100`` strictly (no whitespace, digits 0, 1, 2 only)."""
        if not isinstance(text, str):
            raise MacroSpecError(f"expected a NAS-Bench-Macro spec string of {NUM_LAYERS} digits 0/1/2, got "
                                 f"{type(text).__name__} {text!r}")
        if len(text) != NUM_LAYERS:
            raise MacroSpecError(f"NAS-Bench-Macro spec {text!r} has {len(text)} characters, expected "
                                 f"{NUM_LAYERS} digits (one per layer)")
        for layer, char in enumerate(text, start=1):
            if char not in "012":
                raise MacroSpecError(f"NAS-Bench-Macro spec {text!r}: layer {layer} is {char!r}, expected 0 (id), "
                                     f"1 (ir_3x3_t3) or 2 (ir_5x5_t6)")
        return cls(tuple(OPS[int(c)] for c in text))

    @classmethod
    def from_code(cls, code: int) -> MacroArch:
        """The architecture whose digits are the base-3 digits of ``code`` (first layer most significant):
        codes 0..6560 enumerate the specs in ascending order."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < NUM_ARCHS:
            raise MacroSpecError(f"NAS-Bench-Macro code must be an integer in 0..{NUM_ARCHS - 1}, got {code!r}")
        digits = []
        for _ in range(NUM_LAYERS):
            code, d = divmod(code, len(OPS))
            digits.append(OPS[d])
        return cls(tuple(digits[::-1]))

    def to_string(self) -> str:
        return "".join(str(OPS.index(op)) for op in self.ops)

    def __str__(self) -> str:
        return self.to_string()

    @cached_property
    def canonical(self) -> str:
        """The spec with the identities of each stage's stride-1 layers moved to the end of that stage (the
        benchmark's ``get_real_arch``): one spec per distinct network."""
        digits, start = self.to_string(), 0
        out = []
        for size in STAGES:
            first, rest = digits[start], digits[start + 1:start + size]
            out.append(first + rest.replace("0", "") + "0" * rest.count("0"))
            start += size
        return "".join(out)

    def layers(self, width: int = WIDTH, in_channels: int | None = None) -> Iterator[tuple[str, int, int, int]]:
        """``(op, in channels, out channels, stride)`` of each searchable layer; ``in_channels`` is the
        first layer's input (default: the stem's ``width``)."""
        ops = iter(self.ops)
        c_in, c = (width if in_channels is None else in_channels), width
        for size in STAGES:
            c *= 2
            for index in range(size):
                yield next(ops), c_in, c, 2 if index == 0 else 1
                c_in = c


def parse_arch(arch: str | MacroArch) -> MacroArch:
    """Accept a spec string or a :class:`MacroArch`."""
    return arch if isinstance(arch, MacroArch) else MacroArch.from_string(arch)


def all_archs() -> Iterator[MacroArch]:
    """All 6,561 architectures in ascending spec order."""
    return (MacroArch.from_code(code) for code in range(NUM_ARCHS))


# ----------------------------------------------------------------------------- network


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
             relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU(inplace=False)] if relu else layers


class InvertedResidual(nn.Module):
    """MobileNetV2 block: conv1x1-BN-ReLU, depthwise KxK-BN-ReLU, conv1x1-BN, plus the input when the shape
    is kept and ``residual`` (False: the ``no-reslink`` variant)."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int, residual: bool = True) -> None:
        super().__init__()
        hidden = round(c_in * expansion)
        self.conv = nn.Sequential(*_conv_bn(c_in, hidden, 1), *_conv_bn(hidden, hidden, kernel, stride, hidden),
                                  *_conv_bn(hidden, c_out, 1, relu=False))
        self.use_residual = residual and stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + x if self.use_residual else self.conv(x)


def make_layer(op: str, c_in: int, c_out: int, stride: int, residual: bool = True) -> nn.Module:
    """The module of one searchable layer (``id``: identity, or a conv1x1-BN projection when the shape changes)."""
    if op == "id":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, relu=False))
    kernel, expansion = IR_SHAPES[op]
    return InvertedResidual(c_in, c_out, stride, kernel, expansion, residual)


class MacroNetwork(nn.Module):
    """The network NAS-Bench-Macro trained for ``arch`` (defaults: width 32, head 1280, CIFAR-10 head).

    ``width`` (stem channels; stages 2x, 4x, 8x), ``head_width``, ``in_channels``, ``stem=False`` (the input
    goes straight into the first layer) and ``residual=False`` (no residual adds) build the variants of
    :data:`VARIANT_OVERRIDES`.
    """

    def __init__(self, arch: str | MacroArch, num_classes: int = 10, width: int = WIDTH,
                 head_width: int = HEAD_WIDTH, in_channels: int = 3, stem: bool = True,
                 residual: bool = True) -> None:
        super().__init__()
        self.arch = parse_arch(arch)
        self.num_classes = num_classes
        self.stem = nn.Sequential(*_conv_bn(in_channels, width, 3)) if stem else nn.Identity()
        specs = list(self.arch.layers(width, None if stem else in_channels))
        self.features = nn.Sequential(*(make_layer(op, c_in, c_out, s, residual) for op, c_in, c_out, s in specs))
        self.head = nn.Sequential(*_conv_bn(specs[-1][2], head_width, 1))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_width, num_classes)

    @property
    def blocks(self) -> nn.Sequential:
        """The searchable layers in order (the sequence block-wise proxies read, e.g. AZ-NAS's features)."""
        return self.features

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        """The tensor right before global average pooling (after the head conv1x1 + BN + ReLU)."""
        return self.head(self.features(self.stem(x)))

    forward_features = forward_pre_gap

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.global_pooling(self.forward_pre_gap(x)).flatten(1))


def macro_param_count(arch: str | MacroArch, num_classes: int = 10, width: int = WIDTH,
                      head_width: int = HEAD_WIDTH, in_channels: int = 3, stem: bool = True) -> int:
    """Closed-form parameter count of :class:`MacroNetwork` (conv weights, BN affine, linear weight and bias)."""
    a = parse_arch(arch)
    total = 9 * in_channels * width + 2 * width if stem else 0
    c_out = width
    for op, c_in, c_out, stride in a.layers(width, None if stem else in_channels):
        if op in IR_SHAPES:
            kernel, expansion = IR_SHAPES[op]
            hidden = round(c_in * expansion)
            total += c_in * hidden + kernel * kernel * hidden + hidden * c_out + 4 * hidden + 2 * c_out
        elif stride != 1 or c_in != c_out:
            total += c_in * c_out + 2 * c_out
    return total + c_out * head_width + 2 * head_width + head_width * num_classes + num_classes


def macro_flops(arch: str | MacroArch, num_classes: int = 10, resolution: int = 32, width: int = WIDTH,
                head_width: int = HEAD_WIDTH, in_channels: int = 3, stem: bool = True) -> int:
    """Multiply-accumulates of :class:`MacroNetwork` for one image: convolutions and the linear layer only
    (no BN, ReLU, pooling or biases), the count the benchmark's ``flops`` field holds (7,713,280 for
    ``00000000``, 85,164,544 for ``22212220`` at 32x32)."""
    a = parse_arch(arch)
    side = resolution
    total = 9 * in_channels * width * side * side if stem else 0
    c_out = width
    for op, c_in, c_out, stride in a.layers(width, None if stem else in_channels):
        side_in, side = side, (side - 1) // stride + 1  # every conv pads K//2
        if op in IR_SHAPES:
            kernel, expansion = IR_SHAPES[op]
            hidden = round(c_in * expansion)
            total += c_in * hidden * side_in ** 2 + (kernel * kernel * hidden + hidden * c_out) * side ** 2
        elif stride != 1 or c_in != c_out:
            total += c_in * c_out * side ** 2
    return total + c_out * head_width * side ** 2 + head_width * num_classes


@dataclass(frozen=True)
class MacroFactory(OnDataset):
    """Network factory for one NAS-Bench-Macro architecture: each call builds a fresh :class:`MacroNetwork`.

    ``factory(variant=NAME)`` builds a variant of :data:`VARIANT_OVERRIDES` (any other name:
    :class:`proxies.base.VariantUnavailable`); other keyword overrides go to :class:`MacroNetwork` and win over
    the variant's (an unknown keyword raises ``TypeError``).
    """

    arch: MacroArch
    dataset: str = "cifar10"
    title: ClassVar[str] = "NAS-Bench-Macro"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def __post_init__(self) -> None:
        self._check_dataset()
        object.__setattr__(self, "arch", parse_arch(self.arch))

    def __call__(self, variant: str | None = None, **overrides: Any) -> MacroNetwork:
        options = {} if variant is None else resolve_variant(variant, VARIANT_OVERRIDES, "NAS-Bench-Macro")
        return MacroNetwork(self.arch, **{"num_classes": self.num_classes, **options, **overrides})


# ----------------------------------------------------------------------------- mutation space


def random_arch(rng: np.random.Generator) -> MacroArch:
    """A uniformly random architecture (each layer's op uniform and independent)."""
    return MacroArch(tuple(OPS[int(d)] for d in rng.integers(len(OPS), size=NUM_LAYERS)))


def mutate_one_layer(arch: MacroArch, rng: np.random.Generator) -> MacroArch:
    """Change one uniformly drawn layer to a uniformly drawn *different* op."""
    ops = list(arch.ops)
    layer = int(rng.integers(NUM_LAYERS))
    ops[layer] = OPS[(OPS.index(ops[layer]) + 1 + int(rng.integers(len(OPS) - 1))) % len(OPS)]
    return MacroArch(tuple(ops))


@dataclass(frozen=True)
class MacroMutationSpace(CellMutationSpace[MacroArch]):
    """NAS-Bench-Macro for the EA (the ``search.evolution.SearchSpace`` protocol), as ``Nb201MutationSpace``:
    uniformly random warm-up architectures (REA's random initial population), children one layer's op away
    from their parent (regularized evolution's mutation, Real et al. 2019), analytic params and FLOPs.
    ``layers`` counts the layers that compute: stem, head and every searchable layer that is not a stride-1
    identity (5 to 10), as ZenNAS's ``get_num_layers`` counts stem and head once each. A mutation always
    changes the network: it changes the multiset of ops of one stage, which the identities' positions cannot
    restore."""

    name: ClassVar[str] = "macro"
    title: ClassVar[str] = "NAS-Bench-Macro"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def random(self, rng: np.random.Generator) -> MacroArch:
        return random_arch(rng)

    def mutate(self, parent: MacroArch, rng: np.random.Generator) -> MacroArch:
        return mutate_one_layer(parent, rng)

    def measure(self, candidate: MacroArch, num_classes: int, resolution: int) -> Metrics:
        computing = sum(1 for op, c_in, c_out, stride in candidate.layers()
                        if op != "id" or stride != 1 or c_in != c_out)
        return Metrics(params=macro_param_count(candidate, num_classes),
                       flops=macro_flops(candidate, num_classes, resolution), layers=2 + computing)

    def parse(self, text: str) -> MacroArch:
        return MacroArch.from_string(text)
