"""Validate a proxy end to end on NAS-Bench-201: search with it, then read the found cell's accuracy.

For each of R runs (seeds ``seed``, ``seed + 1``, ...), two searches spend the same number K of fitness
evaluations (fitness requests; the EA's cache of repeated cells makes some of them free, see
``EvolutionarySearch``):

- ``evolution``: the Zen-NAS EA over :class:`Nb201MutationSpace` (random warm-up cells, one-edge children,
  remove-lowest population of ``population_size``), stopped after K evaluations;
- ``random``: the best-by-fitness of K distinct uniformly drawn cells (NASWOT's search protocol).

The found cells' accuracies come from ``accuracy`` (the ground truth, wired by the caller: this module
knows no ground truth). The summary is mean and standard deviation (numpy's default, ddof=0) over runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from search.evolution import EvolutionarySearch, Fitness, evaluation_seed
from search.spaces.nb201 import Nb201Arch
from search.spaces.nb201_mutation import NUM_ARCHS, Nb201MutationSpace, arch_from_code


@dataclass(frozen=True)
class PublishedSearch:
    """A published NB201 search outcome: test accuracy mean and std per dataset (REFERENCE A.4/A.5)."""

    method: str
    evaluations: int | None
    runs: int | None
    accuracy: dict[str, tuple[float, float]]
    source: str


PUBLISHED_NB201_SEARCH: tuple[PublishedSearch, ...] = (
    PublishedSearch("NASWOT v1 (jacob_cov), best of N random", 10, 500,
                    {"cifar10": (91.58, 1.70), "cifar100": (67.15, 3.08), "imagenet16": (39.76, 4.39)},
                    "BayesWatch/nas-without-training v1.0 README [verified in repo]"),
    PublishedSearch("NASWOT v1 (jacob_cov), best of N random", 100, 500,
                    {"cifar10": (91.24, 1.70), "cifar100": (67.12, 2.98), "imagenet16": (40.67, 3.55)},
                    "BayesWatch/nas-without-training v1.0 README [verified in repo]"),
    PublishedSearch("NASWOT v1 (jacob_cov), best of N random", 10, 3,
                    {"cifar10": (92.98, 0.82), "cifar100": (69.86, 2.21), "imagenet16": (42.38, 1.37)},
                    "BayesWatch/nas-without-training v1.0 README [verified in repo]"),
    PublishedSearch("NASWOT v1 (jacob_cov), best of N random", 100, 3,
                    {"cifar10": (92.27, 1.53), "cifar100": (69.86, 0.60), "imagenet16": (43.51, 1.40)},
                    "BayesWatch/nas-without-training v1.0 README [verified in repo]"),
    PublishedSearch("TE-NAS (pruning, NTK + linear regions)", None, None,
                    {"cifar10": (93.9, 0.47), "cifar100": (71.24, 0.56), "imagenet16": (42.38, 0.46)},
                    "TE-NAS ICLR'21 table, recalled, NOT verified [U]"),
)


def published_table(dataset: str) -> pd.DataFrame:
    """The published NB201 search results for ``dataset``, one row each."""
    rows = [{"method": p.method, "evaluations": p.evaluations, "runs": p.runs, "mean": p.accuracy[dataset][0],
             "std": p.accuracy[dataset][1], "source": p.source}
            for p in PUBLISHED_NB201_SEARCH if dataset in p.accuracy]
    return pd.DataFrame(rows)


def random_search(fitness: Fitness[Nb201Arch], evaluations: int, seed: int) -> tuple[Nb201Arch, float, int]:
    """Best-by-fitness of ``evaluations`` distinct uniformly drawn cells: (cell, fitness, cells scored).
    Ties keep the first drawn."""
    if not 1 <= evaluations <= NUM_ARCHS:
        raise ValueError(f"evaluations must be in 1..{NUM_ARCHS}, got {evaluations}")
    codes = np.random.default_rng(seed).choice(NUM_ARCHS, size=evaluations, replace=False)
    best, best_score = None, -np.inf
    for k, code in enumerate(codes):
        arch = arch_from_code(int(code))
        score = fitness(arch, evaluation_seed(seed, k))
        if best is None or score > best_score:
            best, best_score = arch, score
    assert best is not None
    return best, float(best_score), evaluations


@dataclass
class Nb201SearchOutcome:
    """Per-run results (``runs``) and their mean/std per method (``summary``)."""

    runs: pd.DataFrame
    summary: pd.DataFrame


def run_nb201_search(make_fitness: Callable[[int], Fitness[Nb201Arch]], accuracy: Callable[[Nb201Arch], float],
                     *, evaluations: int, runs: int, seed: int = 0, dataset: str = "cifar10",
                     population_size: int = 20, progress: bool = True) -> Nb201SearchOutcome:
    """R runs of the EA and of random search with K evaluations each (see module doc).

    ``make_fitness(run_seed)`` returns the fitness of one run (e.g. a proxy with that run's image batch);
    ``accuracy(cell)`` the number reported for a found cell (e.g. ground-truth test accuracy).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if not 1 <= evaluations <= NUM_ARCHS:
        raise ValueError(f"evaluations must be in 1..{NUM_ARCHS}, got {evaluations}")
    space = Nb201MutationSpace(dataset)
    rows = []
    for run in tqdm(range(runs), desc=f"nb201 search x{runs}", disable=not progress or runs == 1):
        run_seed = seed + run
        fitness = make_fitness(run_seed)
        t0 = time.perf_counter()
        ea = EvolutionarySearch(space, fitness, population_size=population_size, max_evaluations=evaluations,
                                seed=run_seed, cache_scores=True, progress=progress and runs == 1)
        result = ea.run()
        t1 = time.perf_counter()
        found = Nb201Arch.from_string(result.best)
        rows.append({"run": run, "seed": run_seed, "method": "evolution", "arch": result.best,
                     "fitness": result.best_score, "accuracy": accuracy(found), "evaluations": result.evaluations,
                     "unique_evaluations": result.unique_evaluations, "seconds": t1 - t0})
        arch, score, scored = random_search(fitness, evaluations, run_seed)
        t2 = time.perf_counter()
        rows.append({"run": run, "seed": run_seed, "method": "random", "arch": arch.to_string(), "fitness": score,
                     "accuracy": accuracy(arch), "evaluations": evaluations, "unique_evaluations": scored,
                     "seconds": t2 - t1})
    table = pd.DataFrame(rows)
    summary = (table.groupby("method", sort=False)
               .agg(mean=("accuracy", "mean"), std=("accuracy", lambda a: float(np.std(a))), runs=("accuracy", "size"),
                    evaluations=("evaluations", "first"), unique_evaluations=("unique_evaluations", "mean"),
                    seconds=("seconds", "mean"))
               .reset_index())
    return Nb201SearchOutcome(table, summary)
