"""What the benchmark spaces' EA adapters share: random warm-up cells (REA's random initial population), one
mutation per child, analytic metrics for the budgets, and the spec string round trip (the
``search.evolution.SearchSpace`` protocol). A subclass names the space and supplies its own four pieces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from search.evolution import Metrics

C = TypeVar("C")


@dataclass(frozen=True)
class CellMutationSpace(ABC, Generic[C]):
    """A benchmark's architectures for the EA on ``dataset`` (one of :attr:`datasets`)."""

    dataset: str = "cifar10"
    name: ClassVar[str]
    title: ClassVar[str]
    datasets: ClassVar[Mapping[str, tuple[int, int]]]
    """Dataset → (classes, input resolution) of the space's networks."""

    def __post_init__(self) -> None:
        if self.dataset not in self.datasets:
            raise ValueError(f"unknown {self.title} dataset {self.dataset!r}; expected one of "
                             f"{', '.join(self.datasets)}")

    @abstractmethod
    def random(self, rng: np.random.Generator) -> C:
        """A uniformly random architecture of the space."""

    @abstractmethod
    def mutate(self, parent: C, rng: np.random.Generator) -> C:
        """One mutation of ``parent``."""

    @abstractmethod
    def measure(self, candidate: C, num_classes: int, resolution: int) -> Metrics:
        """Analytic params, FLOPs (and layers where the budgets count them)."""

    @abstractmethod
    def parse(self, text: str) -> C:
        """The architecture a spec string names."""

    def warmup_child(self, rng: np.random.Generator) -> C:
        return self.random(rng)

    def child(self, parent: C, rng: np.random.Generator) -> C:
        return self.mutate(parent, rng)

    def metrics(self, candidate: C) -> Metrics:
        num_classes, resolution = self.datasets[self.dataset]
        return self.measure(candidate, num_classes, resolution)

    @staticmethod
    def to_string(candidate: Any) -> str:
        return candidate.to_string()

    def from_string(self, text: str) -> C:
        return self.parse(text)

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "dataset": self.dataset}
