"""Zen-NAS structure strings, super-blocks, the MasterNet builder and analytic params/FLOPs.

Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021; reference
code idstcv/ZenNAS (``PlainNet/*.py``, ``Masternet.py``). A structure is a chain of super-blocks
``Name(in,out,stride[,bottleneck],sub_layers)``:

- ``SuperConvK{1,3,5,7}BNRELU(in,out,stride,sub_layers)``: sub_layers x (conv k -> BN -> ReLU), stride on
  the first sub-layer.
- ``SuperResK{a}K{b}(in,out,stride,bottleneck,sub_layers)``: sub_layers basic units, each conv a (in ->
  bottleneck, stride on the first) -> BN -> ReLU [-> SE] -> conv b (bottleneck -> out) -> BN, plus shortcut,
  then ReLU. ZenNAS registers only a == b (K3K3, K5K5, K7K7); the mixed pairs are accepted here too.
- ``SuperResK1K{3,5,7}K1(...)``: 2 x sub_layers bottleneck units: 1x1 -> BN -> ReLU -> kxk (stride on the
  first) -> BN -> ReLU [-> SE] -> 1x1 -> BN, plus shortcut, then ReLU.
- ``SuperResIDWE{1,2,4,6}K{3,5,7}(...)``: 2 x sub_layers inverted-residual units. Unit A: 1x1 to
  ``smart_round(e*bottleneck)`` -> BN -> ReLU -> depthwise k (stride) -> BN -> ReLU [-> SE] -> 1x1 to
  bottleneck -> BN. Unit B: the same from bottleneck through ``smart_round(e*out)`` to out.

Shortcuts follow ZenNAS's ``ResBlockProj``/``ResBlock``: the first unit of a super-block always has a
projection (1x1 conv *with bias*, stride, then BN); a later unit has one only when its stride > 1 or its in
and out channels differ, otherwise it is the identity. ``no_reslink`` drops every shortcut (the VCNN that
the search scores); ``no_bn`` drops every BatchNorm (ZenNAS's ``no_BN`` drops the main-path BNs but keeps
those inside projections and SE; the two agree on the residual-free, SE-free networks the search scores).
Every BN has eps 1e-3, as MasterNet sets.
The network is blocks -> global average pooling -> ``Linear(last, num_classes)`` with bias.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor, nn

from proxies.base import resolve_variant

BN_EPS = 1e-3
"""BatchNorm eps that MasterNet sets on every BN."""
SE_RATIO = 0.25
"""ZenNAS ``SE`` block: squeeze to max(1, round(0.25 * C)) channels."""
INIT_GAIN = 3.26033
"""Gain of ZenNAS's "custom" training init (``MasterNet.init_parameters``)."""


class StructureError(ValueError):
    """A Zen-NAS structure string that does not parse or does not chain."""


# ----------------------------------------------------------------------------- block types


Family = Literal["conv", "res", "bottleneck", "idw"]


@dataclass(frozen=True)
class BlockType:
    """A super-block family member: its name, family, kernel(s) and IDW expansion."""

    name: str
    family: Family
    kernel: int
    kernel2: int | None = None
    expansion: int | None = None

    @property
    def has_bottleneck(self) -> bool:
        return self.family != "conv"

    @property
    def arg_names(self) -> tuple[str, ...]:
        if self.has_bottleneck:
            return ("in", "out", "stride", "bottleneck", "sub_layers")
        return ("in", "out", "stride", "sub_layers")


def _block_types() -> dict[str, BlockType]:
    types: list[BlockType] = [BlockType(f"SuperConvK{k}BNRELU", "conv", k) for k in (1, 3, 5, 7)]
    types += [BlockType(f"SuperResK{a}K{b}", "res", a, b) for a in (3, 5, 7) for b in (3, 5, 7)]
    types += [BlockType(f"SuperResK1K{k}K1", "bottleneck", k) for k in (3, 5, 7)]
    types += [BlockType(f"SuperResIDWE{e}K{k}", "idw", k, expansion=e) for e in (1, 2, 4, 6) for k in (3, 5, 7)]
    return {t.name: t for t in types}


BLOCK_TYPES: dict[str, BlockType] = _block_types()
"""Every super-block name this module parses and builds."""


def smart_round(x: float, base: int = 8) -> int:
    """ZenNAS's ``smart_round``: nearest multiple of ``base`` (Python's half-to-even ``round``), at least ``base``."""
    return max(base, int(round(x / float(base))) * base)


# ----------------------------------------------------------------------------- structures


@dataclass(frozen=True)
class Block:
    """One super-block of a structure string. ``bottleneck`` is None for ``SuperConv*`` blocks;
    ``label`` is the optional ``name|`` prefix inside the parentheses (kept for the round trip)."""

    type: str
    in_channels: int
    out_channels: int
    stride: int
    sub_layers: int
    bottleneck: int | None = None
    label: str | None = None

    @property
    def spec(self) -> BlockType:
        return BLOCK_TYPES[self.type]

    def __str__(self) -> str:
        args = [self.in_channels, self.out_channels, self.stride]
        if self.bottleneck is not None:
            args.append(self.bottleneck)
        args.append(self.sub_layers)
        prefix = f"{self.label}|" if self.label is not None else ""
        return f"{self.type}({prefix}{','.join(str(a) for a in args)})"


_BLOCK_RE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\(([^()]*)\)")


@dataclass(frozen=True)
class Structure:
    """A parsed, validated Zen-NAS structure: a chain of :class:`Block`. ``str()`` gives the string back."""

    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        if not self.blocks:
            raise StructureError("a Zen-NAS structure needs at least one block")
        for i, b in enumerate(self.blocks):
            _validate_block(b, i)
            if i > 0 and b.in_channels != self.blocks[i - 1].out_channels:
                raise StructureError(
                    f"block {i} {b}: channel chain broken, in_channels {b.in_channels} != previous block's "
                    f"out_channels {self.blocks[i - 1].out_channels}"
                )

    @classmethod
    def parse(cls, text: str) -> Structure:
        """Parse ``Name(args)Name(args)...`` strictly; one-line errors name the block and what is wrong."""
        if isinstance(text, Structure):
            return text
        if not isinstance(text, str):
            raise StructureError(f"expected a Zen-NAS structure string, got {type(text).__name__}")
        s = text.strip()
        if not s:
            raise StructureError("empty Zen-NAS structure string")
        blocks: list[Block] = []
        pos = 0
        while pos < len(s):
            m = _BLOCK_RE.match(s, pos)
            if m is None:
                snippet = s[pos:pos + 40]
                raise StructureError(
                    f"block {len(blocks)}: cannot parse {snippet!r} at character {pos}; expected Name(args)"
                )
            blocks.append(_parse_block(m.group(1), m.group(2), len(blocks)))
            pos = m.end()
        return cls(tuple(blocks))

    def __str__(self) -> str:
        return "".join(str(b) for b in self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)

    def __getitem__(self, i: int) -> Block:
        return self.blocks[i]

    @property
    def in_channels(self) -> int:
        return self.blocks[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.blocks[-1].out_channels

    @property
    def num_layers(self) -> int:
        """ZenNAS's ``get_num_layers``: the sum of ``sub_layers`` (stem and head count 1 each; a K1KXK1 or
        IDW sub-layer counts 1 although it holds two residual units)."""
        return sum(b.sub_layers for b in self.blocks)


def _validate_block(b: Block, index: int) -> None:
    where = f"block {index} {b.type}"
    spec = BLOCK_TYPES.get(b.type)
    if spec is None:
        raise StructureError(f"{where}: unknown block type; expected one of {_type_summary()}")
    values = {"in": b.in_channels, "out": b.out_channels, "stride": b.stride, "sub_layers": b.sub_layers}
    if spec.has_bottleneck:
        if b.bottleneck is None:
            raise StructureError(f"{where}: needs a bottleneck channel count")
        values["bottleneck"] = b.bottleneck
    elif b.bottleneck is not None:
        raise StructureError(f"{where}: takes no bottleneck channel count")
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise StructureError(f"{where}: {name} must be a positive integer, got {value!r}")


def _type_summary() -> str:
    return ("SuperConvK{1,3,5,7}BNRELU, SuperResK{3,5,7}K{3,5,7}, SuperResK1K{3,5,7}K1, "
            "SuperResIDWE{1,2,4,6}K{3,5,7}")


def _parse_block(name: str, arg_text: str, index: int) -> Block:
    spec = BLOCK_TYPES.get(name)
    if spec is None:
        raise StructureError(f"block {index} {name}: unknown block type; expected one of {_type_summary()}")
    label, sep, rest = arg_text.rpartition("|")
    label = label if sep else None
    args = rest.split(",")
    if len(args) != len(spec.arg_names):
        raise StructureError(
            f"block {index} {name}({arg_text}): takes {len(spec.arg_names)} arguments "
            f"({','.join(spec.arg_names)}), got {len(args)}"
        )
    values: list[int] = []
    for arg_name, arg in zip(spec.arg_names, args, strict=True):
        if not arg.isdigit() or (len(arg) > 1 and arg[0] == "0"):
            raise StructureError(
                f"block {index} {name}({arg_text}): {arg_name} must be a positive integer (no sign, no leading "
                f"zeros), got {arg!r}"
            )
        values.append(int(arg))
    if spec.has_bottleneck:
        c_in, c_out, stride, bottleneck, sub_layers = values
    else:
        (c_in, c_out, stride, sub_layers), bottleneck = values, None
    block = Block(name, c_in, c_out, stride, sub_layers, bottleneck, label)
    _validate_block(block, index)
    return block


def parse_structure(text: str | Structure) -> Structure:
    """Accept a structure string or a :class:`Structure`."""
    return Structure.parse(text)


# ----------------------------------------------------------------------------- the layer plan
# One description of each block's sub-layers feeds the builder and both counting conventions.


@dataclass(frozen=True)
class Conv:
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    depthwise: bool = False
    bias: bool = False


@dataclass(frozen=True)
class BN:
    channels: int


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class SE:
    channels: int

    @property
    def squeeze(self) -> int:
        return max(1, int(round(self.channels * SE_RATIO)))


Op = Conv | BN | ReLU | SE


@dataclass(frozen=True)
class Unit:
    """A run of ops; with ``residual`` the output is ``ReLU(body(x) + shortcut(x))`` where ``shortcut`` is
    None for the identity or the projection ops. Without ``residual`` the body already ends in its ReLU."""

    body: tuple[Op, ...]
    residual: bool = False
    shortcut: tuple[Op, ...] | None = None


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, bn: bool, depthwise: bool = False) -> list[Op]:
    ops: list[Op] = [Conv(c_in, c_out, k, stride, depthwise)]
    if bn:
        ops.append(BN(c_out))
    return ops


def _residual(body: list[Op], c_in: int, c_out: int, stride: int, first: bool, reslink: bool, bn: bool) -> Unit:
    """ZenNAS ``ResBlockProj`` (first unit: always a projection) or ``ResBlock`` (projection only when the
    shape changes), then ReLU; with ``reslink=False`` the body followed by ReLU."""
    if not reslink:
        return Unit(tuple(body) + (ReLU(),))
    shortcut: tuple[Op, ...] | None = None
    if first or stride > 1 or c_in != c_out:
        shortcut = (Conv(c_in, c_out, 1, stride, bias=True),) + ((BN(c_out),) if bn else ())
    return Unit(tuple(body), residual=True, shortcut=shortcut)


@lru_cache(maxsize=65536)
def block_units(block: Block, use_se: bool = False, no_reslink: bool = False, no_bn: bool = False) -> tuple[Unit, ...]:
    """The units (sub-layers) of one super-block, in ZenNAS's layout."""
    spec, bn, reslink = block.spec, not no_bn, not no_reslink
    units: list[Unit] = []
    c_last, stride = block.in_channels, block.stride
    c_out, c_mid = block.out_channels, block.bottleneck
    for i in range(block.sub_layers):
        first = i == 0
        if spec.family == "conv":
            units.append(Unit(tuple(_conv_bn(c_last, c_out, spec.kernel, stride, bn)) + (ReLU(),)))
        elif spec.family == "res":
            assert c_mid is not None and spec.kernel2 is not None
            body = _conv_bn(c_last, c_mid, spec.kernel, stride, bn) + [ReLU()]
            if use_se:
                body.append(SE(c_mid))
            body += _conv_bn(c_mid, c_out, spec.kernel2, 1, bn)
            units.append(_residual(body, c_last, c_out, stride, first, reslink, bn))
        elif spec.family == "bottleneck":
            assert c_mid is not None
            for j, (c_in_j, s_j) in enumerate(((c_last, stride), (c_out, 1))):
                body = _conv_bn(c_in_j, c_mid, 1, 1, bn) + [ReLU()]
                body += _conv_bn(c_mid, c_mid, spec.kernel, s_j, bn) + [ReLU()]
                if use_se:
                    body.append(SE(c_mid))
                body += _conv_bn(c_mid, c_out, 1, 1, bn)
                units.append(_residual(body, c_in_j, c_out, s_j, first and j == 0, reslink, bn))
        else:  # idw
            assert c_mid is not None and spec.expansion is not None
            for j, (c_in_j, c_to, s_j) in enumerate(((c_last, c_mid, stride), (c_mid, c_out, 1))):
                c_dw = smart_round(c_to * spec.expansion, base=8)
                body = _conv_bn(c_in_j, c_dw, 1, 1, bn) + [ReLU()]
                body += _conv_bn(c_dw, c_dw, spec.kernel, s_j, bn, depthwise=True) + [ReLU()]
                if use_se:
                    body.append(SE(c_dw))
                body += _conv_bn(c_dw, c_to, 1, 1, bn)
                units.append(_residual(body, c_in_j, c_to, s_j, first and j == 0, reslink, bn))
        c_last, stride = c_out, 1
    return tuple(units)


# ----------------------------------------------------------------------------- counting


Convention = Literal["module", "zennas"]


def _op_params(op: Op, convention: Convention) -> int:
    if isinstance(op, Conv):
        weights = op.c_out * op.kernel ** 2 if op.depthwise else op.c_in * op.c_out * op.kernel ** 2
        return weights + (op.c_out if op.bias and convention == "module" else 0)
    if isinstance(op, BN):
        return 2 * op.channels if convention == "module" else op.channels
    if isinstance(op, SE):  # ZenNAS counts the SE's BNs as 2C: both conventions agree here
        c, s = op.channels, op.squeeze
        return c * s + 2 * s + s * c + 2 * c
    return 0


def _shortcut_params(unit: Unit, convention: Convention) -> int:
    if unit.shortcut is None:
        return 0
    if convention == "module":
        return sum(_op_params(op, "module") for op in unit.shortcut)
    conv = unit.shortcut[0]
    assert isinstance(conv, Conv)
    return conv.c_in * conv.c_out + conv.c_out  # ZenNAS: in*out + out for the whole projection


@lru_cache(maxsize=65536)
def block_params(block: Block, convention: Convention = "module", use_se: bool = False,
                 no_reslink: bool = False, no_bn: bool = False) -> int:
    """Parameters of one super-block (see :func:`count_params` for the two conventions)."""
    total = 0
    for unit in block_units(block, use_se, no_reslink, no_bn):
        total += sum(_op_params(op, convention) for op in unit.body) + _shortcut_params(unit, convention)
    return total


def count_params(structure: str | Structure, num_classes: int, convention: Convention = "module",
                 use_se: bool = False, no_reslink: bool = False, no_bn: bool = False) -> int:
    """Parameter count of the network :func:`build_zennet` builds.

    ``convention="module"``: exactly ``sum(p.numel() for p in net.parameters())`` (BN has 2C parameters,
    the projection conv has a bias, the classifier has ``num_classes`` biases).
    ``convention="zennas"``: what ZenNAS's ``get_model_size`` reports and its ``budget_model_size`` checks:
    BN counts C, a projection counts ``in*out + out``, the classifier ``in*classes + 1`` (one bias).
    """
    s = parse_structure(structure)
    total = sum(block_params(b, convention, use_se, no_reslink, no_bn) for b in s.blocks)
    fc_bias = num_classes if convention == "module" else 1
    return total + s.out_channels * num_classes + fc_bias


def _out_res(r: int, stride: int, convention: Convention) -> int:
    # Odd kernels with padding (k-1)//2: ceil(r/stride) in PyTorch; ZenNAS tracks r // stride.
    return -(-r // stride) if convention == "module" else r // stride


def _op_flops(op: Op, r: int, convention: Convention) -> tuple[float, int]:
    """(FLOPs, output resolution) of one op at input resolution ``r``."""
    if isinstance(op, Conv):
        r_out = _out_res(r, op.stride, convention)
        if convention == "module":
            per_pixel = op.c_out * op.kernel ** 2 * (1 if op.depthwise else op.c_in)
            return per_pixel * r_out * r_out, r_out
        if op.depthwise:
            return op.c_out * op.kernel ** 2 * r ** 2 // op.stride ** 2, r_out
        return op.c_in * op.c_out * op.kernel ** 2 * r ** 2 // op.stride ** 2, r_out
    if isinstance(op, BN):
        return op.channels * r * r, r
    if isinstance(op, SE):
        c, s = op.channels, op.squeeze
        if convention == "module":  # two 1x1 convs and two BNs on the pooled 1x1 map
            return c * s + s + s * c + c, r
        return c * s + s * c + c + c * r * r, r  # ZenNAS: no squeeze-BN term, plus the gating product
    return 0, r


@lru_cache(maxsize=65536)
def block_flops(block: Block, resolution: int, convention: Convention = "module", use_se: bool = False,
                no_reslink: bool = False, no_bn: bool = False) -> tuple[float, int]:
    """(FLOPs, output resolution) of one super-block at input ``resolution``."""
    total: float = 0
    r = resolution
    for unit in block_units(block, use_se, no_reslink, no_bn):
        r_in = r
        for op in unit.body:
            f, r = _op_flops(op, r, convention)
            total += f
        if unit.shortcut is None:
            continue
        conv = unit.shortcut[0]
        assert isinstance(conv, Conv)
        if convention == "module":
            r_sc = r_in
            for op in unit.shortcut:
                f, r_sc = _op_flops(op, r_sc, convention)
                total += f
        else:
            # ZenNAS ResBlock/ResBlockProj.get_FLOPs evaluates the projection at (body_out_res / stride)^2,
            # i.e. at a quarter of the true area after a stride-2 body: reproduced as the budget sees it.
            area = (r / conv.stride) ** 2
            total += conv.c_in * conv.c_out * area + area * conv.c_out
    return total, r


def count_flops(structure: str | Structure, resolution: int, num_classes: int, convention: Convention = "module",
                use_se: bool = False, no_reslink: bool = False, no_bn: bool = False) -> float:
    """FLOPs (multiply-accumulates) of one image through :func:`build_zennet`'s network.

    ``convention="module"``: per conv ``C_in/groups * C_out * k^2 * H_out * W_out`` at PyTorch's true
    output size, per BN one op per output element, the classifier ``in * classes``; ReLU, pooling, the SE
    gating product and biases count 0. It equals a forward-hook count over Conv2d/BatchNorm2d/Linear.
    ``convention="zennas"``: ZenNAS's ``get_FLOPs`` as its ``budget_flops`` checks it, quirks included
    (resolution tracked as ``r // stride``, projections at a quarter area after stride 2, SE gating counted).
    """
    s = parse_structure(structure)
    total: float = 0
    r = resolution
    for b in s.blocks:
        f, r = block_flops(b, r, convention, use_se, no_reslink, no_bn)
        total += f
    total += s.out_channels * num_classes
    return int(total) if convention == "module" else total


# ----------------------------------------------------------------------------- network


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


def _make_op(op: Op) -> nn.Module:
    if isinstance(op, Conv):
        return nn.Conv2d(op.c_in, op.c_out, op.kernel, stride=op.stride, padding=(op.kernel - 1) // 2,
                         groups=op.c_in if op.depthwise else 1, bias=op.bias)
    if isinstance(op, BN):
        return _bn(op.channels)
    if isinstance(op, ReLU):
        return nn.ReLU()
    return SqueezeExcite(op.channels, op.squeeze)


class SqueezeExcite(nn.Module):
    """ZenNAS ``SE``: x * sigmoid(BN(conv(ReLU(BN(conv(GAP(x))))))), 1x1 convs without bias."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1, bias=False), _bn(squeeze), nn.ReLU(),
            nn.Conv2d(squeeze, channels, 1, bias=False), _bn(channels), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class ResidualUnit(nn.Module):
    """ReLU(body(x) + shortcut(x)); ``shortcut`` is the identity or a projection (1x1 conv + BN)."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def _make_unit(unit: Unit) -> nn.Module:
    body = nn.Sequential(*[_make_op(op) for op in unit.body])
    if not unit.residual:
        return body
    shortcut = None if unit.shortcut is None else nn.Sequential(*[_make_op(op) for op in unit.shortcut])
    return ResidualUnit(body, shortcut)


class ZenNet(nn.Module):
    """ZenNAS's MasterNet: the super-blocks, global average pooling and a linear classifier."""

    def __init__(self, structure: str | Structure, num_classes: int, no_reslink: bool = False,
                 no_bn: bool = False, use_se: bool = False) -> None:
        super().__init__()
        self.structure = parse_structure(structure)
        self.num_classes = num_classes
        self.no_reslink, self.no_bn, self.use_se = no_reslink, no_bn, use_se
        self.blocks = nn.Sequential(*[
            nn.Sequential(*[_make_unit(u) for u in block_units(b, use_se, no_reslink, no_bn)])
            for b in self.structure.blocks
        ])
        self.classifier = nn.Linear(self.structure.out_channels, num_classes)

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        """Output of the last block (MasterNet's ``forward_pre_GAP``): the tensor Zen-Score perturbs."""
        return self.blocks(x)

    forward_features = forward_pre_gap

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_pre_gap(x).mean(dim=(2, 3)))


def build_zennet(structure: str | Structure, num_classes: int, no_reslink: bool = False, no_bn: bool = False,
                 use_se: bool = False) -> ZenNet:
    """Build the network of a structure (string or :class:`Structure`) with PyTorch's default init."""
    return ZenNet(structure, num_classes, no_reslink=no_reslink, no_bn=no_bn, use_se=use_se)


@torch.no_grad()
def zennet_init(net: nn.Module) -> nn.Module:
    """ZenNAS's "custom" training init (``MasterNet.init_parameters``), in place.

    Conv: Xavier-normal with gain 3.26033, bias 0. Linear: N(0, 3.26033 * sqrt(2 / (fan_in + fan_out))),
    bias 0. BN: gamma 1, beta 0. Then the last BN gamma of every residual unit's body is 0, so each
    residual unit starts as its shortcut.
    """
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight, gain=INIT_GAIN)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            std = INIT_GAIN * math.sqrt(2.0 / (m.weight.shape[0] + m.weight.shape[1]))
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in net.modules():
        if isinstance(m, ResidualUnit):
            last_bn = [c for c in m.body if isinstance(c, nn.BatchNorm2d)]
            if last_bn:
                nn.init.zeros_(last_bn[-1].weight)
    return net


VARIANT_OVERRIDES: dict[str, dict[str, object]] = {"no-reslink": {"no_reslink": True}}
""":data:`proxies.base.VARIANTS` as :class:`ZenNet` arguments: only ``no-reslink``."""
VARIANT_UNAVAILABLE: dict[str, str] = {
    variant: "TE-NAS defines thin networks for NB201's cells only, and ZenNAS's own TE-NAS port "
             "(compute_te_nas_score) scores the NTK of the network as built; use tenas.network=full"
    for variant in ("tenas-ntk", "tenas-lr")}
"""Why each other named variant is unavailable in the Zen-NAS space."""


@dataclass(frozen=True)
class ZenNetFactory:
    """Network factory (``proxies.NetworkFactory``) for one structure: each call builds a fresh network.

    Defaults build the network the Zen-NAS search scores: ``no_reslink=True`` (B.1). ``variant=NAME`` builds
    a named variant (:data:`VARIANT_OVERRIDES`; the others raise :class:`proxies.base.VariantUnavailable`
    with the reason); keyword overrides (``no_reslink``, ``no_bn``, ``use_se``, ``num_classes``) build any
    other variant; other keywords raise ``TypeError``.
    """

    structure: Structure
    num_classes: int = 100
    resolution: int = 32
    no_reslink: bool = True
    no_bn: bool = False
    use_se: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "structure", parse_structure(self.structure))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.structure.in_channels, self.resolution, self.resolution)

    def __call__(self, variant: str | None = None, **overrides: object) -> ZenNet:
        allowed = {"no_reslink", "no_bn", "use_se", "num_classes"}
        unknown = set(overrides) - allowed
        if unknown:
            raise TypeError(f"ZenNetFactory cannot build a variant with {sorted(unknown)}; allowed: {sorted(allowed)}")
        named = {} if variant is None else resolve_variant(variant, VARIANT_OVERRIDES, "the Zen-NAS space",
                                                            VARIANT_UNAVAILABLE)
        kwargs: dict[str, object] = {"num_classes": self.num_classes, "no_reslink": self.no_reslink,
                                     "no_bn": self.no_bn, "use_se": self.use_se, **named, **overrides}
        return ZenNet(self.structure, **kwargs)  # type: ignore[arg-type]


def format_structure(blocks: Sequence[Block]) -> str:
    """The structure string of a block sequence (validated)."""
    return str(Structure(tuple(blocks)))
