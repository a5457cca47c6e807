"""A benchmark outside zenbench, for the tests: what a third party writes to plug one in (``module:Class``
or the ``zenbench.benchmarks`` entry-point group). Nothing in zenbench names it.

Architectures: two digits ``"ab"`` (a, b in 1..4) = the widths 2a and 2b of a two-conv network; "accuracy"
``cifar10_test`` = 50 + 10a + b (made up, so every figure can be checked by hand), two trials each (±0.5);
``"11"`` is called degenerate. Mutation: one digit moves to another value. Published per-architecture
scores: ``params`` in millions, with the values of ``"12"`` and ``"44"`` swapped (so ours agree with them at a
Spearman ρ below 1 that a test works out by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor, nn

from bench.benchmarks.base import ArchSpecError, BenchmarkError, GroundTruthTable, PublishedScores
from proxies.base import SimpleFactory, resolve_variant
from search.evolution import Metrics

SPECS = [f"{a}{b}" for a in range(1, 5) for b in range(1, 5)]


class ToyNet(nn.Module):
    def __init__(self, a: int, b: int, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 2 * a, 3, padding=1), nn.BatchNorm2d(2 * a), nn.ReLU(),
                                  nn.Conv2d(2 * a, 2 * b, 3, padding=1), nn.BatchNorm2d(2 * b), nn.ReLU())
        self.head = nn.Linear(2 * b, num_classes)

    def forward_pre_gap(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_pre_gap(x).mean((2, 3)))


def accuracy(spec: str) -> float:
    return 50.0 + 10 * int(spec[0]) + int(spec[1])


@dataclass(frozen=True)
class ToySpace:
    name: str = "toy"

    def warmup_child(self, rng: np.random.Generator) -> str:
        return SPECS[int(rng.integers(len(SPECS)))]

    def child(self, parent: str, rng: np.random.Generator) -> str:
        digits = list(parent)
        position = int(rng.integers(2))
        digits[position] = str((int(digits[position]) + int(rng.integers(1, 4)) - 1) % 4 + 1)
        return "".join(digits)

    def metrics(self, candidate: str) -> Metrics:
        return Metrics(params=float(int(candidate[0]) + int(candidate[1])))

    def to_string(self, candidate: str) -> str:
        return candidate

    def from_string(self, text: str) -> str:
        return text

    def describe(self) -> dict[str, Any]:
        return {"space": self.name}


class ToyBenchmark:
    name = "toy"
    title = "Toy-Bench"
    datasets = ("cifar10",)
    networks = ("default",)

    def parse(self, spec: str) -> str:
        if not isinstance(spec, str) or spec not in SPECS:
            raise ArchSpecError(f"toy architecture {spec!r}: expected two digits 1..4")
        return spec

    def format(self, arch: str) -> str:
        return arch

    def isomorphism_id(self, arch: str) -> str:
        return arch

    def is_degenerate(self, arch: str) -> bool:
        return arch == "11"

    def factory(self, arch: str, dataset: str) -> SimpleFactory:
        if dataset != "cifar10":
            raise BenchmarkError(f"toy has no dataset {dataset!r}")
        a, b = int(arch[0]), int(arch[1])

        def build(variant: str | None = None) -> nn.Module:
            if variant is not None:
                resolve_variant(variant, {}, "Toy-Bench")  # it has no variants: always VariantUnavailable
            return ToyNet(a, b)

        return SimpleFactory(build)

    def ground_truth(self, source: str | None = None) -> GroundTruthTable:
        params = [1e-6 * sum(p.numel() for p in ToyNet(int(s[0]), int(s[1])).parameters()) for s in SPECS]
        table = pd.DataFrame({"cifar10_test": [accuracy(s) for s in SPECS], "params_cifar10_M": params},
                             index=pd.Index(SPECS, name="arch"))
        trials = pd.DataFrame([{"arch": s, "trial": t, "accuracy": accuracy(s) + (0.5 if t else -0.5),
                                "key": "cifar10_test"} for s in SPECS for t in (0, 1)])
        return GroundTruthTable(table, {"cifar10": "cifar10_test"}, "toy (built in)", trials)

    def published_scores(self, dataset: str) -> PublishedScores:
        params = self.ground_truth().table["params_cifar10_M"].to_dict()
        params["12"], params["44"] = params["44"], params["12"]
        return PublishedScores(pd.DataFrame({"params": pd.Series(params)}).rename_axis("arch"), "toy paper",
                               "counted by hand")

    def mutation_space(self, dataset: str) -> ToySpace:
        return ToySpace()
