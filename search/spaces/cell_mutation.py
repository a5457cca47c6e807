"""What the benchmark spaces' EA adapters share: random warm-up cells (REA's random initial population), one
mutation per child, analytic metrics for the budgets, and the spec string round trip (the
``search.evolution.SearchSpace`` protocol). A subclass names the space and supplies its own four pieces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from search.evolution import Metrics
from search.spaces.datasets import OnDataset

C = TypeVar("C")


@dataclass(frozen=True)
class CellMutationSpace(OnDataset, ABC, Generic[C]):
    """A benchmark's architectures for the EA on ``dataset`` (one of :attr:`datasets`)."""

    dataset: str = "cifar10"
    name: ClassVar[str]

    def __post_init__(self) -> None:
        self._check_dataset()

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
        return self.measure(candidate, self.num_classes, self.input_shape[1])

    @staticmethod
    def to_string(candidate: Any) -> str:
        return candidate.to_string()

    def from_string(self, text: str) -> C:
        return self.parse(text)

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "dataset": self.dataset}
