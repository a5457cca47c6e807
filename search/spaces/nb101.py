"""NAS-Bench-101 search space: cells, their graph hash, spec strings and the network NAS-Bench-101 trained.

Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture Search", ICML 2019. Reference code:
google-research/nasbench (``lib/model_spec.py``, ``lib/graph_util.py``, ``lib/model_builder.py``,
``lib/base_ops.py``, ``lib/config.py``); this is our own PyTorch rendering of it.

A cell (NB101 calls it a *module*) is a DAG of at most 7 vertices given by an upper-triangular 0/1
adjacency matrix and one label per vertex: ``input``, then operations from :data:`OPS`, then ``output``.
Vertices not on an input-to-output path are pruned before anything is built or hashed (``ModelSpec``);
the pruned cell may have at most 9 edges. A cell keeps its matrix as given (the NASLib sample and the
EA's mutations work on unpruned 7x7 matrices); :attr:`Nb101Cell.pruned` is what the network and the hash
see.

Spec string (zenbench's): the matrix rows as 0/1 digits joined by ``.``, a ``|``, then the vertex labels
joined by ``,`` in NB101's own names (2 to 7 vertices). The first cell of the official file (hash
``00005c142e6f48ac74fdcf73e3439874``) reads ``0100110.0010000.0001001.0000010.0000010.0000001.0000000|input,
conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output`` (one line, no spaces).

Network (``model_builder.py`` with ``config.py``'s defaults): stem conv3x3-BN-ReLU to 128 channels; 3 stacks
of 3 cells, a 2x2 stride-2 max-pool before stacks 2 and 3, each of which doubles the channels; global
average pooling; a linear layer to 10 classes. In a cell the output channels are split evenly among the
vertices feeding the output (the first ``remainder`` of them, in vertex order, get one more channel); every
other vertex takes the largest channel count among its successors; a vertex sums its inputs, interior ones
truncated to its channel count (the first channels), the cell input through a conv1x1-BN-ReLU projection;
the output concatenates its interior inputs in vertex order and adds a projection of the cell input where
input and output are joined. Convolutions have no bias; BN has TF's momentum 0.997 (PyTorch momentum
0.003) and epsilon 1e-5. Reference choice: the weights keep PyTorch's default init (TF used a fan-in
truncated normal); proxies re-initialise as their protocol asks.

A *disconnected* cell (no input-to-output path) has no NB101 network; here its cells output zeros, so the
network's logits do not depend on the input (as a disconnected NB201 cell).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from proxies.base import resolve_variant
from search.evolution import Metrics
from search.spaces.cell_mutation import CellMutationSpace
from search.spaces.datasets import OnDataset

INPUT = "input"
OUTPUT = "output"
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
"""The operations in ``config['available_ops']`` order; the graph hash labels them 0, 1, 2."""
MAX_VERTICES = 7
MAX_EDGES = 9
STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
BN_MOMENTUM = 1 - 0.997
"""TF's ``BN_MOMENTUM = 0.997`` (weight of the old running value) in PyTorch's convention."""
BN_EPS = 1e-5
DATASETS: dict[str, tuple[int, int]] = {"cifar10": (10, 32)}
"""Dataset -> (number of classes, input resolution) as NAS-Bench-101 trained them."""
_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}
TENAS_NTK_STEM_CHANNELS = STEM_CHANNELS // 8
"""Stem width of the ``tenas-ntk`` network: 128 / 8 = 16, every width divided by 8 as in NAS-Bench-Macro's."""
VARIANT_UNAVAILABLE: dict[str, str] = {
    "no-reslink": "its input-to-output edge is a conv1x1-BN-ReLU projection inside the cell, not a removable "
                  "identity shortcut",
}
"""Why each named variant (``proxies.base.VARIANTS``) is unavailable on NB101; the TE-NAS variants are
:func:`variant_overrides`'."""
DISCONNECTED = "disconnected"
""":attr:`Nb101Cell.graph_hash` of every cell without an input-to-output path (one class: constant output)."""


class CellSpecError(ValueError):
    """A NAS-Bench-101 cell that does not parse or lies outside the space (one-line message)."""


def graph_hash(matrix: np.ndarray, labels: Sequence[int]) -> str:
    """NB101's isomorphism-invariant MD5 hash of a labelled directed graph (``graph_util.hash_module``).

    Each vertex starts from the MD5 of the text of ``(out-degree, in-degree, label)``; ``V`` rounds then
    replace it by the MD5 of its sorted in-neighbour hashes, ``|``, its sorted out-neighbour hashes, ``|``,
    its own hash; the fingerprint is the MD5 of the text of the sorted list of vertex hashes. The texts are
    Python's ``str`` of tuples and lists of Python ints and strs, as the reference formats them.
    """
    matrix = np.asarray(matrix)
    size = len(labels)
    if matrix.shape != (size, size):
        raise ValueError(f"graph_hash: matrix of shape {matrix.shape} does not match {size} labels")
    in_edges = [int(v) for v in matrix.sum(axis=0)]
    out_edges = [int(v) for v in matrix.sum(axis=1)]
    hashes = [_md5(str((out_edges[v], in_edges[v], int(labels[v])))) for v in range(size)]
    for _ in range(size):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in range(size) if matrix[w, v])) + "|"
                 + "".join(sorted(hashes[w] for w in range(size) if matrix[v, w])) + "|" + hashes[v])
            for v in range(size)
        ]
    return _md5(str(sorted(hashes)))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class PrunedCell:
    """The part of a cell on input-to-output paths, vertices renumbered in order (``ModelSpec._prune``)."""

    matrix: np.ndarray
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return int(self.matrix.sum())


@dataclass(frozen=True)
class Nb101Cell:
    """One NB101 cell as given: the adjacency matrix (tuple of 0/1 rows) and one label per vertex."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        fault = _fault(self.matrix, self.ops)
        if fault is not None:
            raise CellSpecError(f"NB101 cell {self.to_string()!r} {fault}")

    # ------------------------------------------------------------------ construction and spec strings

    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> Nb101Cell:
        """From an adjacency matrix and labels as ``nasbench.api.ModelSpec`` takes them."""
        rows = np.asarray(matrix)
        if rows.ndim != 2 or not np.isin(rows, (0, 1)).all():
            raise CellSpecError(f"NB101 cell matrix must be a square 0/1 matrix, got {np.asarray(matrix).tolist()!r}")
        return cls(tuple(tuple(int(v) for v in row) for row in rows), tuple(str(op) for op in ops))

    @classmethod
    def from_string(cls, text: str) -> Nb101Cell:
        """Parse a spec string strictly (see the module docstring); the error names the spec and the fault."""
        if not isinstance(text, str):
            raise CellSpecError(f"expected an NB101 cell spec string, got {type(text).__name__}")
        text = text.strip()
        matrix_text, bar, ops_text = text.partition("|")
        if not bar or "|" in ops_text:
            raise CellSpecError(f"malformed NB101 cell spec {text!r}: expected 'ROWS|OPS' with one '|'")
        rows = matrix_text.split(".")
        if not 2 <= len(rows) <= MAX_VERTICES:
            raise CellSpecError(f"malformed NB101 cell spec {text!r}: expected 2 to {MAX_VERTICES} matrix rows "
                                f"separated by '.', found {len(rows)}")
        for i, row in enumerate(rows):
            if len(row) != len(rows) or set(row) - {"0", "1"}:
                raise CellSpecError(f"malformed NB101 cell spec {text!r}: matrix row {i} {row!r} must be "
                                    f"{len(rows)} digits 0/1")
        ops = ops_text.split(",")
        if len(ops) != len(rows):
            raise CellSpecError(f"malformed NB101 cell spec {text!r}: {len(rows)} matrix rows need {len(rows)} "
                                f"comma-separated labels, found {len(ops)}")
        return cls(tuple(tuple(int(c) for c in row) for row in rows), tuple(ops))

    def to_string(self) -> str:
        return ".".join("".join(str(v) for v in row) for row in self.matrix) + "|" + ",".join(self.ops)

    def __str__(self) -> str:
        return self.to_string()

    # ------------------------------------------------------------------ structure

    @property
    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int64).reshape(len(self.ops), len(self.ops))

    @cached_property
    def pruned(self) -> PrunedCell | None:
        """The vertices reachable from the input and reaching the output, or ``None`` when the input does not
        reach the output (``ModelSpec`` marks that spec invalid)."""
        return _prune(self.array, self.ops)

    @property
    def is_connected(self) -> bool:
        return self.pruned is not None

    @cached_property
    def graph_hash(self) -> str:
        """NB101's hash of the pruned cell (``ModelSpec.hash_spec``: labels -1 input, 0..2 in :data:`OPS`
        order, -2 output), the key of the official data; :data:`DISCONNECTED` for a disconnected cell."""
        pruned = self.pruned
        if pruned is None:
            return DISCONNECTED
        labels = [-1, *(OPS.index(op) for op in pruned.ops[1:-1]), -2]
        return graph_hash(pruned.matrix, labels)

    @cached_property
    def network_hash(self) -> str:
        """:attr:`graph_hash` with every interior vertex also labelled by its channels in each stack of the full
        network and of TE-NAS's thin one (``tenas-ntk``). NB101 splits a cell's output channels among the
        vertices feeding the output, the remainder going to the first in vertex order, so isomorphic cells (one
        graph hash) can build vertices of different widths (3 of the 48 shared hashes of NASLib's 500-cell
        sample); cells with one network hash build the same networks up to the order of their vertices."""
        pruned = self.pruned
        if pruned is None:
            return DISCONNECTED
        widths = [vertex_channels(c_in, c_out, pruned.matrix)
                  for stem in (STEM_CHANNELS, TENAS_NTK_STEM_CHANNELS)
                  for c_in, c_out in ((stem, stem), (stem, 2 * stem), (2 * stem, 2 * stem), (2 * stem, 4 * stem))]
        labels = [-1, *(int(_md5(str((op, [w[v] for w in widths])))[:15], 16)
                        for v, op in enumerate(pruned.ops[1:-1], start=1)), -2]
        return graph_hash(pruned.matrix, labels)


def _fault(matrix: tuple[tuple[int, ...], ...], ops: tuple[str, ...]) -> str | None:
    """Why ``(matrix, ops)`` is not an NB101 cell, or ``None``."""
    size = len(ops)
    if not 2 <= size <= MAX_VERTICES:
        return f"has {size} vertices; NB101 cells have 2 to {MAX_VERTICES}"
    if len(matrix) != size or any(len(row) != size for row in matrix):
        return f"needs a {size}x{size} matrix for its {size} labels"
    if any(v not in (0, 1) for row in matrix for v in row):
        return "has matrix entries other than 0 and 1"
    below = [(i, j) for i in range(size) for j in range(i + 1) if matrix[i][j]]
    if below:
        i, j = below[0]
        return f"is not upper-triangular: edge {i}->{j} (row {i}, column {j}) must be 0"
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        return f"must start with {INPUT!r} and end with {OUTPUT!r}, got {ops[0]!r} ... {ops[-1]!r}"
    unknown = [op for op in ops[1:-1] if op not in OPS]
    if unknown:
        return f"has unknown operation {unknown[0]!r}; expected one of {', '.join(OPS)}"
    pruned = _prune(np.array(matrix, dtype=np.int64), ops)
    if pruned is not None and pruned.num_edges > MAX_EDGES:
        return f"has {pruned.num_edges} edges after pruning; NB101 allows at most {MAX_EDGES}"
    return None


def _prune(matrix: np.ndarray, ops: Sequence[str]) -> PrunedCell | None:
    size = len(ops)
    from_input = _reach(matrix, 0)
    to_output = _reach(matrix.T, size - 1)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        return None
    return PrunedCell(matrix[np.ix_(keep, keep)], tuple(ops[v] for v in keep))


def _reach(matrix: np.ndarray, start: int) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        for w in np.flatnonzero(matrix[frontier.pop()]):
            if int(w) not in seen:
                seen.add(int(w))
                frontier.append(int(w))
    return seen


# ----------------------------------------------------------------------------- channels


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """Channels of every vertex of a pruned cell (``model_builder.compute_vertex_channels``).

    The output's ``out_channels`` are split evenly among the vertices feeding it, the first ``remainder``
    of them (in vertex order) getting one more; every other interior vertex takes the largest count among
    its interior successors, filled backwards.
    """
    size = matrix.shape[0]
    channels = [0] * size
    channels[0], channels[-1] = in_channels, out_channels
    if size == 2:
        return channels
    feeds_output = [v for v in range(1, size - 1) if matrix[v, size - 1]]
    share, remainder = divmod(out_channels, len(feeds_output))
    for rank, v in enumerate(feeds_output):
        channels[v] = share + (1 if rank < remainder else 0)
    for v in range(size - 3, 0, -1):
        if not matrix[v, size - 1]:
            channels[v] = max(channels[dst] for dst in range(v + 1, size - 1) if matrix[v, dst])
    if min(channels[1:-1]) < 1:
        raise ValueError(f"{out_channels} output channels cannot be split among {len(feeds_output)} vertices")
    return channels


def _cell_convs(cell: Nb101Cell, in_channels: int, out_channels: int) -> list[tuple[int, int, int]]:
    """(kernel, in, out) of every conv-BN-ReLU of one cell: input projections, conv vertices, output
    projection. The basis of :func:`nb101_param_count` and :func:`nb101_flops`."""
    pruned = cell.pruned
    if pruned is None:
        return []
    m, size = pruned.matrix, pruned.num_vertices
    channels = vertex_channels(in_channels, out_channels, m)
    convs = []
    for t in range(1, size - 1):
        if m[0, t]:
            convs.append((1, in_channels, channels[t]))
        if pruned.ops[t] != "maxpool3x3":
            convs.append((_KERNEL[pruned.ops[t]], channels[t], channels[t]))
    if m[0, size - 1]:
        convs.append((1, in_channels, out_channels))
    return convs


def _network_convs(cell: Nb101Cell, stem_channels: int, num_stacks: int, cells_per_stack: int,
                   in_channels: int, resolution: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """(kernel, in, out, output pixels) of every conv of the network, and its final channel count."""
    convs = [(3, in_channels, stem_channels, resolution * resolution)]
    c_in = c_out = stem_channels
    for stack in range(num_stacks):
        if stack > 0:
            c_out *= 2
            resolution = -(-resolution // 2)
        for _ in range(cells_per_stack):
            convs.extend((k, a, b, resolution * resolution) for k, a, b in _cell_convs(cell, c_in, c_out))
            c_in = c_out
    return convs, c_in


def nb101_param_count(cell: Nb101Cell, num_classes: int = 10, stem_channels: int = STEM_CHANNELS,
                      num_stacks: int = NUM_STACKS, cells_per_stack: int = CELLS_PER_STACK,
                      in_channels: int = 3) -> int:
    """Trainable parameters of :class:`Nb101Network` (conv weights, BN gamma and beta, linear weight and
    bias): what NB101 publishes as ``trainable_parameters``."""
    convs, final = _network_convs(cell, stem_channels, num_stacks, cells_per_stack, in_channels, resolution=1)
    return sum(k * k * a * b + 2 * b for k, a, b, _ in convs) + final * num_classes + num_classes


def nb101_flops(cell: Nb101Cell, num_classes: int = 10, stem_channels: int = STEM_CHANNELS,
                num_stacks: int = NUM_STACKS, cells_per_stack: int = CELLS_PER_STACK,
                in_channels: int = 3, resolution: int = 32) -> int:
    """Multiply-accumulates of :class:`Nb101Network` for one image, convolutions and the linear layer only
    (NATS-Bench's definition, as ``proxies.cost.count_flops(count="conv")``)."""
    convs, final = _network_convs(cell, stem_channels, num_stacks, cells_per_stack, in_channels, resolution)
    return sum(k * k * a * b * pixels for k, a, b, pixels in convs) + final * num_classes


# ----------------------------------------------------------------------------- network


class ConvBnRelu(nn.Sequential):
    """``base_ops.conv_bn_relu``: a stride-1 'same' conv without bias, BN, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def _make_op(op: str, channels: int) -> nn.Module:
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBnRelu(channels, channels, _KERNEL[op])


class Nb101Module(nn.Module):
    """One cell built as ``model_builder.build_module`` builds it (see the module docstring)."""

    def __init__(self, cell: Nb101Cell, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        pruned = cell.pruned
        self.matrix = None if pruned is None else pruned.matrix
        if pruned is None:
            return
        size = pruned.num_vertices
        self.channels = vertex_channels(in_channels, out_channels, pruned.matrix)
        self.input_projections = nn.ModuleDict({
            str(t): ConvBnRelu(in_channels, self.channels[t], 1) for t in range(1, size - 1) if self.matrix[0, t]
        })
        self.vertex_ops = nn.ModuleList(_make_op(pruned.ops[t], self.channels[t]) for t in range(1, size - 1))
        self.output_projection = ConvBnRelu(in_channels, out_channels, 1) if self.matrix[0, size - 1] else None

    def forward(self, x: Tensor) -> Tensor:
        if self.matrix is None:
            return x.new_zeros((x.shape[0], self.out_channels, *x.shape[2:]))
        m, size = self.matrix, self.matrix.shape[0]
        tensors = [x]
        for t in range(1, size - 1):
            inputs = [tensors[src][:, :self.channels[t]] for src in range(1, t) if m[src, t]]
            if m[0, t]:
                inputs.append(self.input_projections[str(t)](x))
            total = inputs[0]
            for extra in inputs[1:]:
                total = total + extra
            tensors.append(self.vertex_ops[t - 1](total))
        concat = [tensors[t] for t in range(1, size - 1) if m[t, size - 1]]
        if not concat:
            return self.output_projection(x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if self.output_projection is not None:
            out = out + self.output_projection(x)
        return out


class Nb101Network(nn.Module):
    """The network NAS-Bench-101 trained for a cell (defaults: ``config.py``'s, CIFAR-10 head).

    ``stem_channels``, ``num_stacks`` and ``cells_per_stack`` change the skeleton (NB101 trained 128, 3, 3);
    ``stem=False`` feeds the ``in_channels`` input straight into the first cell, whose output still has
    ``stem_channels`` channels (TE-NAS's linear-region network, :func:`variant_overrides`).
    """

    def __init__(self, cell: Nb101Cell | str, num_classes: int = 10, stem_channels: int = STEM_CHANNELS,
                 num_stacks: int = NUM_STACKS, cells_per_stack: int = CELLS_PER_STACK,
                 in_channels: int = 3, stem: bool = True) -> None:
        super().__init__()
        self.cell = cell if isinstance(cell, Nb101Cell) else Nb101Cell.from_string(cell)
        self.num_classes = num_classes
        self.stem = ConvBnRelu(in_channels, stem_channels, 3) if stem else nn.Identity()
        layers: list[nn.Module] = []
        c_in, c_out = (stem_channels if stem else in_channels), stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))  # TF 'same' padding
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(Nb101Module(self.cell, c_in, c_out))
                c_in = c_out
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        """The output of the last cell, the tensor NB101 averages globally."""
        return self.cells(self.stem(x))

    forward_features = forward_pre_gap

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_pre_gap(x).mean(dim=(2, 3)))


@dataclass(frozen=True)
class Nb101Factory(OnDataset):
    """Network factory for one NB101 cell and dataset: each call builds a fresh :class:`Nb101Network`.

    Keyword overrides are :class:`Nb101Network` arguments and win over a variant's. ``variant=NAME`` builds
    TE-NAS's thin networks of :func:`variant_overrides`; ``no-reslink`` raises
    :class:`proxies.base.VariantUnavailable` with the reason of :data:`VARIANT_UNAVAILABLE`.
    """

    cell: Nb101Cell
    dataset: str = "cifar10"
    title: ClassVar[str] = "NB101"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def __post_init__(self) -> None:
        self._check_dataset()


    def __call__(self, variant: str | None = None, **overrides: Any) -> Nb101Network:
        options = {} if variant is None else resolve_variant(variant, variant_overrides(self.cell), "NAS-Bench-101",
                                                             VARIANT_UNAVAILABLE)
        return Nb101Network(self.cell, **{"num_classes": self.num_classes, **options, **overrides})


def variant_overrides(cell: Nb101Cell) -> dict[str, dict[str, Any]]:
    """TE-NAS's thin networks (:data:`proxies.base.VARIANTS`) for one NB101 cell, as :class:`Nb101Network`
    arguments. TE-NAS defines them for NB201 only; these are zenbench's analogues, recorded here:

    - ``tenas-ntk``: TE-NAS's NB201 NTK network keeps the stem and all stages but thins C = 16 → 3 and keeps
      one cell per stage; here every width is divided by 8, as for NAS-Bench-Macro's (stem 16, stacks of 16,
      32, 64 channels: :data:`TENAS_NTK_STEM_CHANNELS`), with one cell per stack. Cost on one CPU thread at
      load 2.5: 9 s per cell (15 s with TE-NAS's own 3/16, stem 24; 222 s on the full network).
    - ``tenas-lr``: TE-NAS's NB201 linear-region network is one cell of one channel per node, a 1-channel input
      and no stem; here one cell, no stem, a 1-channel input, and output channels equal to the number of
      vertices feeding the output, so that every interior vertex has exactly one channel (NB101 splits the
      output channels among those vertices; fewer would leave a vertex with none).
    """
    pruned = cell.pruned
    feeding = 0 if pruned is None else int(pruned.matrix[1:-1, -1].sum())
    return {
        "tenas-ntk": {"stem_channels": TENAS_NTK_STEM_CHANNELS, "cells_per_stack": 1},
        "tenas-lr": {"stem_channels": max(1, feeding), "num_stacks": 1, "cells_per_stack": 1,
                     "in_channels": 1, "stem": False},
    }


# ----------------------------------------------------------------------------- search


def random_cell(rng: np.random.Generator) -> Nb101Cell:
    """A uniformly random 7-vertex cell, re-drawn until valid (the nasbench notebook's ``random_spec``):
    each upper-triangular edge present with probability 1/2, each operation uniform over :data:`OPS`."""
    while True:
        matrix = np.triu(rng.integers(2, size=(MAX_VERTICES, MAX_VERTICES)), 1)
        ops = (INPUT, *(OPS[int(i)] for i in rng.integers(len(OPS), size=MAX_VERTICES - 2)), OUTPUT)
        cell = _valid_cell(matrix, ops)
        if cell is not None:
            return cell


def mutate_cell(parent: Nb101Cell, rng: np.random.Generator) -> Nb101Cell:
    """The nasbench notebook's ``mutate_spec`` (``mutation_rate=1``), re-drawn until the child is valid.

    Each upper-triangular edge of the parent's matrix (as given, unpruned) flips with probability 1/7 and
    each operation changes, with probability 1/5, to one of the two others: 3 edges and 1 operation in
    expectation (many flipped edges are pruned away). As in the reference, a draw that changes nothing returns
    the parent's cell.
    """
    size = len(parent.ops)
    while True:
        matrix = parent.array.copy()
        for src, dst in itertools.combinations(range(size), 2):
            if rng.random() < 1 / MAX_VERTICES:
                matrix[src, dst] = 1 - matrix[src, dst]
        ops = list(parent.ops)
        for v in range(1, size - 1):
            if rng.random() < 1 / (MAX_VERTICES - 2):
                others = [op for op in OPS if op != ops[v]]
                ops[v] = others[int(rng.integers(len(others)))]
        cell = _valid_cell(matrix, tuple(ops))
        if cell is not None:
            return cell


def _valid_cell(matrix: np.ndarray, ops: tuple[str, ...]) -> Nb101Cell | None:
    """The cell if it is in NB101's space (connected, at most 9 edges after pruning), else ``None``."""
    try:
        cell = Nb101Cell.from_matrix(matrix, ops)
    except CellSpecError:
        return None
    return cell if cell.is_connected else None


@dataclass(frozen=True)
class Nb101MutationSpace(CellMutationSpace[Nb101Cell]):
    """NB101 cells for the EA (the ``search.evolution.SearchSpace`` protocol): random valid warm-up cells
    (REA's random initial population), nasbench's mutation, analytic params/FLOPs."""

    name: ClassVar[str] = "nb101"
    title: ClassVar[str] = "NB101"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def random(self, rng: np.random.Generator) -> Nb101Cell:
        return random_cell(rng)

    def mutate(self, parent: Nb101Cell, rng: np.random.Generator) -> Nb101Cell:
        return mutate_cell(parent, rng)

    def measure(self, candidate: Nb101Cell, num_classes: int, resolution: int) -> Metrics:
        return Metrics(params=nb101_param_count(candidate, num_classes),
                       flops=nb101_flops(candidate, num_classes, resolution=resolution), layers=None)

    def parse(self, text: str) -> Nb101Cell:
        return Nb101Cell.from_string(text)
