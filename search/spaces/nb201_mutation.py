"""NAS-Bench-201 as a mutation space for the Zen-NAS evolutionary search (the ``SearchSpace`` protocol).

A child changes the operation on one uniformly drawn edge to one of the four other operations, the
mutation of regularized evolution on NB201 (Real et al. 2019; Dong & Yang 2020). Warm-up children are
uniformly random cells (REA's random initial population): mutating a single start cell during the
warm-up, as ZenNAS does for its structures, would make the first generation one edge away from one cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from search.evolution import Metrics
from search.spaces.cell_mutation import CellMutationSpace
from search.spaces.nb201 import DATASETS, EDGES, OPS, Nb201Arch, nb201_flops, nb201_param_count

NUM_ARCHS = len(OPS) ** len(EDGES)
"""15,625 cells."""


def arch_from_code(code: int) -> Nb201Arch:
    """The cell whose op indices are the base-5 digits of ``code`` (most significant digit = first edge)."""
    if not 0 <= code < NUM_ARCHS:
        raise ValueError(f"NB201 cell code must be in 0..{NUM_ARCHS - 1}, got {code}")
    digits = []
    for _ in EDGES:
        code, d = divmod(code, len(OPS))
        digits.append(d)
    return Nb201Arch.from_indices(digits[::-1])


def random_arch(rng: np.random.Generator) -> Nb201Arch:
    return Nb201Arch.from_indices(rng.integers(len(OPS), size=len(EDGES)).tolist())


def mutate_one_edge(arch: Nb201Arch, rng: np.random.Generator) -> Nb201Arch:
    """Change one uniformly drawn edge to a uniformly drawn *different* operation."""
    indices = list(arch.to_indices())
    edge = int(rng.integers(len(EDGES)))
    shift = 1 + int(rng.integers(len(OPS) - 1))
    indices[edge] = (indices[edge] + shift) % len(OPS)
    return Nb201Arch.from_indices(indices)


@dataclass(frozen=True)
class Nb201MutationSpace(CellMutationSpace[Nb201Arch]):
    """NB201 cells for the EA: random warm-up cells, one-edge children, analytic params/FLOPs."""

    name: ClassVar[str] = "nb201"
    title: ClassVar[str] = "NB201"
    datasets: ClassVar[Mapping[str, tuple[int, int]]] = DATASETS

    def random(self, rng: np.random.Generator) -> Nb201Arch:
        return random_arch(rng)

    def mutate(self, parent: Nb201Arch, rng: np.random.Generator) -> Nb201Arch:
        return mutate_one_edge(parent, rng)

    def measure(self, candidate: Nb201Arch, num_classes: int, resolution: int) -> Metrics:
        return Metrics(params=nb201_param_count(candidate, num_classes),
                       flops=nb201_flops(candidate, num_classes, resolution), layers=None)

    def parse(self, text: str) -> Nb201Arch:
        return Nb201Arch.from_string(text)
