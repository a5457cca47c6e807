"""NAS-Bench-201 search space: architecture strings and the network NAS-Bench-201 trained.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020. The network follows the benchmark's training code (xautodl ``TinyNetwork`` with
``InferCell``): a 3x3 stem conv + BN, three stages of ``cells_per_stage`` cells with C, 2C, 4C
channels, ResNet basic blocks (stride 2) between stages, a final BN + ReLU, global average
pooling and a linear head. Cell operations are ReLU-Conv-BN with affine, statistics-tracking BN.

Only the chosen operations are built (no masked supernet). A ``none`` edge contributes nothing;
a node with no live input is an explicit zero tensor so every operation behaves exactly as in the
reference (a conv on a zero input still yields the BN shift).

Network options (:data:`NETWORKS`, ``network=``): ``default`` is the network above; ``naslib`` is
NASLib's NB201 graph (``naslib/search_spaces/nasbench201/graph.py`` and ``primitives.py``), whose BNs
differ: the cell operations' BNs have ``affine=False, track_running_stats=False`` and the reduction
blocks' BNs ``affine=False`` (tracking); stem and final BN as above. Named variants for proxies
(:data:`VARIANT_OVERRIDES`): TE-NAS's thin networks; NB201 has no ``no-reslink`` variant (see there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from proxies.base import resolve_variant
from search.spaces.datasets import OnDataset

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Operation names in NAS-Bench-201's own order; the index of an op is its position here."""

NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to, from) pairs in architecture-string order."""

DATASETS: dict[str, tuple[int, int]] = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16": (120, 16)}
"""Dataset -> (number of classes, input resolution) as NAS-Bench-201 trained them."""

NETWORKS: dict[str, str] = {
    "default": "NAS-Bench-201's trained network (xautodl TinyNetwork/InferCell): every BN affine, tracking",
    "naslib": "NASLib's NB201 graph: cell-op BNs affine=False, track_running_stats=False; reduction BNs "
              "affine=False; stem and final BN affine",
}
"""Network options of :class:`Nb201Network` and :class:`Nb201Factory` (``network=``)."""

VARIANT_OVERRIDES: dict[str, dict[str, Any]] = {
    "tenas-ntk": {"channels": 3, "cells_per_stage": 1},
    "tenas-lr": {"channels": 1, "cells_per_stage": 1, "in_channels": 1, "stem": False, "stages": 1},
}
"""Named variants (``proxies.base.VARIANTS``) as :class:`Nb201Network` arguments. ``tenas-ntk``: TENAS's NTK
network (``prune_tenas.py`` ``model_config``): C=3, N=1, with stem, all three stages. ``tenas-lr``: its
linear-region network (``model_config_thin``): C=1, N=1, 1 input channel, no stem, ``depth=1`` (the first
cell only, then the final BN + ReLU and the head). No ``no-reslink``: NB201's ``skip_connect`` edges are
cell operations (removing them changes the architecture), not residual links a network can drop."""
VARIANT_UNAVAILABLE: dict[str, str] = {
    "no-reslink": "its skip_connect edges are operations of the cell, not removable residual links",
}


class ArchStringError(ValueError):
    """A NAS-Bench-201 architecture string that does not parse."""


@dataclass(frozen=True, order=True)
class Nb201Arch:
    """One NB201 cell: the operation on each of the six edges, in architecture-string order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ArchStringError(f"an NB201 cell has 6 edges, got {len(self.ops)} ops: {self.ops!r}")
        bad = [op for op in self.ops if op not in OPS]
        if bad:
            raise ArchStringError(f"unknown NB201 op(s) {bad!r}; expected one of {', '.join(OPS)}")

    @classmethod
    def from_string(cls, text: str) -> Nb201Arch:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` strictly."""
        if not isinstance(text, str):
            raise ArchStringError(f"expected an NB201 architecture string, got {type(text).__name__}")
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ArchStringError(
                f"malformed NB201 architecture string {text!r}: expected 3 nodes separated by '+', "
                f"found {len(nodes)}"
            )
        ops: list[str] = []
        for node_index, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise ArchStringError(
                    f"malformed NB201 architecture string {text!r}: node {node_index} {node!r} must be "
                    f"enclosed in '|'"
                )
            edges = node[1:-1].split("|")
            if len(edges) != node_index:
                raise ArchStringError(
                    f"malformed NB201 architecture string {text!r}: node {node_index} needs "
                    f"{node_index} input edge(s), found {len(edges)}"
                )
            for expected_source, edge in enumerate(edges):
                op, sep, source = edge.partition("~")
                if not sep or source != str(expected_source):
                    raise ArchStringError(
                        f"malformed NB201 architecture string {text!r}: edge {edge!r} of node "
                        f"{node_index} must read 'op~{expected_source}'"
                    )
                if op not in OPS:
                    raise ArchStringError(
                        f"malformed NB201 architecture string {text!r}: unknown op {op!r}; "
                        f"expected one of {', '.join(OPS)}"
                    )
                ops.append(op)
        return cls(tuple(ops))

    @classmethod
    def from_indices(cls, indices: Sequence[int]) -> Nb201Arch:
        """From the 6-tuple of op indices (none=0, skip=1, 1x1=2, 3x3=3, pool=4) in string order."""
        if len(indices) != len(EDGES) or any(not 0 <= int(i) < len(OPS) for i in indices):
            raise ArchStringError(f"expected six op indices in 0..4, got {tuple(indices)!r}")
        return cls(tuple(OPS[int(i)] for i in indices))

    def to_string(self) -> str:
        parts, k = [], 0
        for node in range(1, NUM_NODES):
            edges = []
            for source in range(node):
                edges.append(f"{self.ops[k]}~{source}")
                k += 1
            parts.append("|" + "|".join(edges) + "|")
        return "+".join(parts)

    def __str__(self) -> str:
        return self.to_string()

    def to_indices(self) -> tuple[int, ...]:
        return tuple(OPS.index(op) for op in self.ops)

    def op(self, to: int, source: int) -> str:
        return self.ops[EDGES.index((to, source))]

    @cached_property
    def canonical(self) -> str:
        """Isomorphism-aware canonical form, by NAS-Bench-201's own rule (``to_unique_str`` with
        ``consider_zero=True``): node strings are sorted sums, ``skip_connect`` passes its input's
        string through, ``none`` or a zero input gives the zero term ``#``. The 15,625 cells fall into
        the 6,466 classes the benchmark publishes."""
        nodes = ["x"]
        for node in range(1, NUM_NODES):
            terms = []
            for source in range(node):
                op, src = self.op(node, source), nodes[source]
                if op == "none" or src == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(src)
                else:
                    terms.append(f"({src})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]

    @property
    def is_connected(self) -> bool:
        """False when no path of non-``none`` edges joins the cell input to its output (the net outputs
        a constant and trains to chance accuracy)."""
        reached = {0}
        for (to, src), op in zip(EDGES, self.ops, strict=True):
            if op != "none" and src in reached:
                reached.add(to)
        return NUM_NODES - 1 in reached

    def count(self, op: str) -> int:
        return self.ops.count(op)


def parse_arch(arch: str | Nb201Arch | Sequence[int]) -> Nb201Arch:
    """Accept an architecture string, an :class:`Nb201Arch` or a 6-tuple of op indices."""
    if isinstance(arch, Nb201Arch):
        return arch
    if isinstance(arch, str):
        return Nb201Arch.from_string(arch)
    return Nb201Arch.from_indices(arch)


def all_archs() -> Iterable[Nb201Arch]:
    """All 5**6 = 15,625 cells, in op-index lexicographic order (not the NB201 index order)."""
    for code in range(len(OPS) ** len(EDGES)):
        digits = []
        for _ in EDGES:
            code, d = divmod(code, len(OPS))
            digits.append(d)
        yield Nb201Arch.from_indices(digits[::-1])


# ----------------------------------------------------------------------------- network


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


def _check_network(network: str) -> str:
    if network not in NETWORKS:
        raise ValueError(f"unknown NB201 network {network!r}; expected one of {', '.join(NETWORKS)}")
    return network


def _make_op(op: str, channels: int, network: str = "default") -> nn.Module:
    bn = {} if network == "default" else {"affine": False, "track_running_stats": False}
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, **bn)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, **bn)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"no module for NB201 op {op!r}")


class Nb201Cell(nn.Module):
    """An NB201 ``InferCell``: node i = sum of op(node j) over j < i; the output is node 3."""

    def __init__(self, arch: Nb201Arch, channels: int, network: str = "default") -> None:
        super().__init__()
        self.edges: list[tuple[int, int]] = [
            (to, src) for (to, src), op in zip(EDGES, arch.ops, strict=True) if op != "none"
        ]
        self.ops = nn.ModuleList(
            _make_op(op, channels, _check_network(network)) for op in arch.ops if op != "none"
        )

    def forward(self, x: Tensor) -> Tensor:
        nodes: list[Tensor | None] = [x, None, None, None]
        for (to, src), op in zip(self.edges, self.ops, strict=True):
            inp = nodes[src]
            if inp is None:
                inp = torch.zeros_like(x)
            y = op(inp)
            nodes[to] = y if nodes[to] is None else nodes[to] + y
        out = nodes[-1]
        return torch.zeros_like(x) if out is None else out


class ResNetReduction(nn.Module):
    """NB201's reduction block: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus AvgPool2+Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine=affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine=affine)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Nb201Network(nn.Module):
    """The network NAS-Bench-201 trained for a cell (defaults: C=16, N=5, CIFAR-10 head).

    ``channels`` and ``cells_per_stage`` shrink it (TE-NAS scores a thin C=3, N=1 copy);
    ``stem=False`` feeds the input straight into the first cell (then ``in_channels`` must equal
    ``channels``). ``stages`` < 3 stops after that many stages (TE-NAS counts linear regions on
    ``stages=1``: one C=1 cell, no stem, no reduction, then the final BN + ReLU and the head).
    ``network`` picks one of :data:`NETWORKS` (``naslib``: NASLib's BN choices).
    """

    def __init__(
        self,
        arch: str | Nb201Arch | Sequence[int],
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        in_channels: int = 3,
        stem: bool = True,
        stages: int = 3,
        network: str = "default",
    ) -> None:
        super().__init__()
        if stages not in (1, 2, 3):
            raise ValueError(f"stages must be 1, 2 or 3, got {stages!r}")
        self.arch = parse_arch(arch)
        self.network = _check_network(network)
        self.num_classes = num_classes
        if stem:
            self.stem: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
            )
        else:
            if in_channels != channels:
                raise ValueError(f"without a stem, in_channels ({in_channels}) must equal channels ({channels})")
            self.stem = nn.Identity()
        layers: list[nn.Module] = []
        c = channels
        for stage in range(stages):
            if stage > 0:
                layers.append(ResNetReduction(c, 2 * c, affine=network == "default"))
                c *= 2
            layers.extend(Nb201Cell(self.arch, c, network) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        """The tensor right before global average pooling (after the final BN + ReLU)."""
        return self.lastact(self.cells(self.stem(x)))

    forward_features = forward_pre_gap

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.global_pooling(self.forward_pre_gap(x)).flatten(1))


def nb201_param_count(arch: str | Nb201Arch | Sequence[int], num_classes: int = 10,
                      channels: int = 16, cells_per_stage: int = 5) -> int:
    """Closed-form parameter count of :class:`Nb201Network` (conv weights, BN affine, linear)."""
    a = parse_arch(arch)
    n1, n3 = a.count("nor_conv_1x1"), a.count("nor_conv_3x3")
    total = 3 * 9 * channels + 2 * channels  # stem conv + BN
    c = channels
    for stage in range(3):
        if stage > 0:
            total += 9 * c * 2 * c + 2 * 2 * c + 9 * 4 * c * c + 2 * 2 * c + c * 2 * c
            c *= 2
        total += cells_per_stage * (n1 * (c * c + 2 * c) + n3 * (9 * c * c + 2 * c))
    return total + 2 * c + c * num_classes + num_classes


def nb201_flops(arch: str | Nb201Arch | Sequence[int], num_classes: int = 10, resolution: int = 32,
                channels: int = 16, cells_per_stage: int = 5, count_pooling: bool = False) -> int:
    """Multiply-accumulate count of :class:`Nb201Network` for one image.

    ``count_pooling=False`` counts convolutions and the linear head only, as NATS-Bench reports FLOPs
    (153.27 M for the best CIFAR-10 net); it ranks archs exactly as the parameter count does.
    ``True`` also counts, per output element, 2 for a BN, 1 for a ReLU, k*k for a k x k average pool
    and 1 per input element of global pooling: the NASLib/tensorwatch-style definition that breaks the
    ties between archs with the same conv counts (it ranks archs exactly as NASLib's FLOPs column does).
    """
    a = parse_arch(arch)
    n1, n3, npool = a.count("nor_conv_1x1"), a.count("nor_conv_3x3"), a.count("avg_pool_3x3")
    hw = resolution * resolution
    c = channels
    conv = 3 * 9 * c * hw
    extra = 2 * c * hw  # stem BN
    for stage in range(3):
        if stage > 0:
            hw_out = hw // 4
            conv += 9 * c * 2 * c * hw_out + 9 * 4 * c * c * hw_out + c * 2 * c * hw_out
            # ReLU on the block input, two BNs, the ReLU between the convs, the 2x2 shortcut pool
            extra += c * hw + 2 * (2 * 2 * c * hw_out) + 2 * c * hw_out + 4 * c * hw_out
            hw, c = hw_out, 2 * c
        conv += cells_per_stage * (n1 * c * c * hw + n3 * 9 * c * c * hw)
        extra += cells_per_stage * ((n1 + n3) * 3 * c * hw + npool * 9 * c * hw)
    extra += 3 * c * hw + c * hw + num_classes  # last BN + ReLU, global pooling, linear bias
    conv += c * num_classes
    return conv + (extra if count_pooling else 0)


def variant_overrides(variant: str | None) -> dict[str, Any]:
    """:class:`Nb201Network` arguments of a named variant (``None``: none); :class:`VariantUnavailable` for
    a variant NB201 does not have."""
    if variant is None:
        return {}
    return dict(resolve_variant(variant, VARIANT_OVERRIDES, "NAS-Bench-201", VARIANT_UNAVAILABLE))


@dataclass(frozen=True)
class Nb201Factory(OnDataset):
    """Network factory for one NB201 architecture and dataset: each call builds a fresh network.

    ``network`` (default ``"default"``) is one of :data:`NETWORKS`. ``variant=NAME`` builds a named variant
    (:data:`VARIANT_OVERRIDES`: TE-NAS's thin networks); keyword overrides (``channels``,
    ``cells_per_stage``, ``in_channels``, ``stem``, ``stages``, ``num_classes``) win over the variant's.
    """

    arch: Nb201Arch
    dataset: str = "cifar10"
    network: str = "default"
    title: ClassVar[str] = "NB201"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def __post_init__(self) -> None:
        self._check_dataset()
        _check_network(self.network)
        object.__setattr__(self, "arch", parse_arch(self.arch))


    def __call__(self, variant: str | None = None, **overrides: object) -> Nb201Network:
        kwargs: dict[str, object] = {"num_classes": self.num_classes, "network": self.network,
                                     **variant_overrides(variant), **overrides}
        return Nb201Network(self.arch, **kwargs)  # type: ignore[arg-type]
