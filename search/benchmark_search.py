"""Validate a proxy end to end on a benchmark: search with it, then read the found architecture's accuracy.

For each of R runs (seeds ``seed``, ``seed + 1``, ...), two searches spend the same number K of fitness
evaluations (fitness requests; the EA's cache of repeated architectures makes some of them free, see
``EvolutionarySearch``):

- ``evolution``: the Zen-NAS EA over the benchmark's mutation space (NB201: random warm-up cells, one-edge
  children, remove-lowest population of ``population_size``), stopped after K evaluations;
- ``random``: the best-by-fitness of K distinct architectures drawn uniformly from ``pool`` (NASWOT's
  search protocol). The CLI passes the benchmark's evaluated architectures (its ground-truth table), so
  every random pick has an accuracy; on NB201 that is the whole space.

The found architectures' accuracies come from ``accuracy`` (the ground truth, wired by the caller: this
module knows no ground truth); an architecture the ground truth lacks (an NB101 cell outside the published
sample) gets NaN and is counted. The summary is mean and standard deviation (numpy's default, ddof=0) over
the runs with an accuracy.

Interruption and resumption: with ``out`` (a CSV file), each finished run's two rows are written there as
soon as the run ends, with the search's configuration beside it (``out`` + ``.json``). Ctrl-C stops the
whole search (``KeyboardInterrupt`` propagates; the run in progress is dropped, never mixed into the
means); ``resume=True`` reads the finished runs back and computes only the others. Every run depends only
on its seed, so the resumed outcome equals that of an uninterrupted search (the ``seconds`` column aside).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from search.evolution import EvolutionarySearch, Fitness, SearchError, SearchSpace, _atomic_write, evaluation_seed

C = TypeVar("C")


@dataclass(frozen=True)
class PublishedSearch:
    """A published search outcome: test accuracy mean and std per dataset (REFERENCE A.4/A.5)."""

    method: str
    evaluations: int | None
    runs: int | None
    accuracy: dict[str, tuple[float, float]]
    source: str


PUBLISHED_SEARCHES: dict[str, tuple[PublishedSearch, ...]] = {"nb201": (
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
)}
"""Published search outcomes per benchmark (registry name); NAS-Bench-201 only so far."""


def published_table(dataset: str, benchmark: str = "nb201") -> pd.DataFrame:
    """The published search results of ``benchmark`` for ``dataset``, one row each (empty when none)."""
    rows = [{"method": p.method, "evaluations": p.evaluations, "runs": p.runs, "mean": p.accuracy[dataset][0],
             "std": p.accuracy[dataset][1], "source": p.source}
            for p in PUBLISHED_SEARCHES.get(benchmark, ()) if dataset in p.accuracy]
    return pd.DataFrame(rows, columns=["method", "evaluations", "runs", "mean", "std", "source"])


def random_search(fitness: Fitness[C], pool: Sequence[C], evaluations: int, seed: int) -> tuple[C, float, int]:
    """Best-by-fitness of ``evaluations`` distinct candidates drawn uniformly from ``pool`` with
    ``numpy.random.default_rng(seed).choice(len(pool), evaluations, replace=False)``: (candidate, fitness,
    candidates scored). Ties keep the first drawn."""
    if not 1 <= evaluations <= len(pool):
        raise ValueError(f"evaluations must be in 1..{len(pool)} (the pool of random candidates), got {evaluations}")
    picks = np.random.default_rng(seed).choice(len(pool), size=evaluations, replace=False)
    best, best_score = None, -np.inf
    for k, position in enumerate(picks):
        candidate = pool[int(position)]
        score = fitness(candidate, evaluation_seed(seed, k))
        if best is None or score > best_score:
            best, best_score = candidate, score
    assert best is not None
    return best, float(best_score), evaluations


@dataclass
class SearchOutcome:
    """Per-run results (``runs``: one row per run and method, ``arch`` the space's string of the found
    architecture) and their mean/std per method (``summary``)."""

    runs: pd.DataFrame
    summary: pd.DataFrame


def run_validation_search(space: SearchSpace[C], make_fitness: Callable[[int], Fitness[C]],
                          accuracy: Callable[[C], float], pool: Sequence[C], *, evaluations: int, runs: int,
                          seed: int = 0, population_size: int = 20, progress: bool = True,
                          out: str | os.PathLike | None = None, resume: bool = False,
                          describe: Mapping[str, Any] | None = None) -> SearchOutcome:
    """R runs of the EA over ``space`` and of random search over ``pool``, K evaluations each (module doc).

    ``make_fitness(run_seed)`` returns the fitness of one run (e.g. a proxy with that run's image batch);
    ``accuracy(candidate)`` the number reported for a found candidate (e.g. ground-truth test accuracy, NaN
    when unknown). ``out`` [None: nothing written]: the CSV that holds the finished runs (module doc);
    ``resume`` [False] continues the search recorded there; ``describe`` [None] what else identifies the
    search (fitness, dataset...), checked on resume together with K, the seed and the population size.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if not 1 <= evaluations <= len(pool):
        raise ValueError(f"evaluations must be in 1..{len(pool)} (the pool of random candidates), got {evaluations}")
    config = json.loads(json.dumps({"space": space.name, "evaluations": evaluations, "seed": seed,
                                    "population_size": population_size, **dict(describe or {})}, default=str))
    rows = _finished_runs(Path(out), config, resume) if out is not None else []
    finished = {row["run"] for row in rows}
    for run in tqdm(range(runs), desc=f"{space.name} search x{runs}", disable=not progress or runs == 1):
        if run in finished:
            continue
        run_seed = seed + run
        fitness = make_fitness(run_seed)
        t0 = time.perf_counter()
        ea = EvolutionarySearch(space, fitness, population_size=population_size, max_evaluations=evaluations,
                                seed=run_seed, cache_scores=True, progress=progress and runs == 1)
        result = ea.run()
        if not result.completed:  # Ctrl-C inside the EA: stop the whole search, drop this run
            raise KeyboardInterrupt
        t1 = time.perf_counter()
        found = space.from_string(result.best)
        rows.append({"run": run, "seed": run_seed, "method": "evolution", "arch": result.best,
                     "fitness": result.best_score, "accuracy": float(accuracy(found)),
                     "evaluations": result.evaluations, "unique_evaluations": result.unique_evaluations,
                     "seconds": t1 - t0})
        arch, score, scored = random_search(fitness, pool, evaluations, run_seed)
        t2 = time.perf_counter()
        rows.append({"run": run, "seed": run_seed, "method": "random", "arch": space.to_string(arch), "fitness": score,
                     "accuracy": float(accuracy(arch)), "evaluations": evaluations, "unique_evaluations": scored,
                     "seconds": t2 - t1})
        if out is not None:
            _atomic_write(Path(out), pd.DataFrame(rows).to_csv(index=False))
    table = pd.DataFrame([row for row in rows if row["run"] < runs]).sort_values(["run", "method"],
                                                                                 key=_method_order).reset_index(drop=True)
    summary = (table.groupby("method", sort=False)
               .agg(mean=("accuracy", "mean"),
                    std=("accuracy", lambda a: float(np.std(a.dropna())) if a.notna().any() else np.nan),
                    runs=("accuracy", "size"), without_truth=("accuracy", lambda a: int(a.isna().sum())),
                    evaluations=("evaluations", "first"), unique_evaluations=("unique_evaluations", "mean"),
                    seconds=("seconds", "mean"))
               .reset_index())
    return SearchOutcome(table, summary)


RUN_COLUMNS = ("run", "seed", "method", "arch", "fitness", "accuracy", "evaluations", "unique_evaluations", "seconds")


def _method_order(column: pd.Series) -> pd.Series:
    return column.map({"evolution": 0, "random": 1}) if column.name == "method" else column


def _finished_runs(out: Path, config: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """The runs recorded in ``out`` (resume) after checking they belong to this search; a fresh search
    writes its configuration and refuses a file that already holds one."""
    sidecar = out.with_name(out.name + ".json")
    if not resume or not (out.exists() or sidecar.exists()):  # a fresh search (resuming nothing starts one)
        if out.exists():
            raise SearchError(f"{out} already holds search runs; add --resume to continue them or choose another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(sidecar, json.dumps(config, sort_keys=True))
        return []
    if not out.exists() or not sidecar.exists():
        present, absent = (out, sidecar) if out.exists() else (sidecar, out)
        raise SearchError(f"cannot resume: {present} exists but {absent} does not")
    try:
        stored = json.loads(sidecar.read_text())
        table = pd.read_csv(out, float_precision="round_trip")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SearchError(f"cannot read the search runs in {out}: {exc}") from None
    differing = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
    if differing:
        raise SearchError(f"{out} holds runs of a different search (differs in: {', '.join(differing)})")
    if tuple(table.columns) != RUN_COLUMNS:
        raise SearchError(f"{out}: expected the columns {', '.join(RUN_COLUMNS)}")
    complete = table.groupby("run")["method"].agg(lambda m: sorted(m) == ["evolution", "random"])
    return [row for row in table.to_dict("records") if complete[row["run"]]]

