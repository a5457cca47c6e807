"""The Zen-NAS EA: selection mechanics, constraints, determinism, checkpoint/resume, NB201 search."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import proxies
from search.benchmark_search import published_table, random_search, run_validation_search
from search.evolution import (
    Budgets,
    CallableFitness,
    EvolutionarySearch,
    Metrics,
    ProxyFitness,
    SearchError,
    evaluation_seed,
    measure_latency,
)
from search.spaces.nb201 import Nb201Arch, Nb201Factory, nb201_param_count
from search.spaces.nb201_mutation import NUM_ARCHS, Nb201MutationSpace, arch_from_code, mutate_one_edge
from search.spaces.zennet import ZenNetFactory, build_zennet
from search.spaces.zennet_space import RESNET_LIKE, ZenNetMutationSpace

CIFAR_INIT = ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
              "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)")


@dataclass
class ToySpace:
    """Integers: warm-up children uniform in 0..99, a child is the parent plus a step (or itself)."""

    identity_children: bool = False
    warmups: int = 0
    name: str = "toy"

    def warmup_child(self, rng: np.random.Generator) -> int:
        self.warmups += 1
        return int(rng.integers(100))

    def child(self, parent: int, rng: np.random.Generator) -> int:
        return parent if self.identity_children else parent + int(rng.integers(-3, 10))

    def metrics(self, candidate: int) -> Metrics:
        return Metrics(params=candidate, flops=None, layers=None)

    to_string = staticmethod(str)
    from_string = staticmethod(int)

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "identity_children": self.identity_children}


@dataclass
class SeededFitness:
    """A fitness that uses its seed: analytic params plus seed-driven noise; counts its calls."""

    space: Any
    calls: int = 0
    hook: Any = None
    seen_seeds: list[int] = field(default_factory=list)

    def __call__(self, candidate: Any, seed: int) -> float:
        self.calls += 1
        self.seen_seeds.append(seed)
        if self.hook is not None:
            self.hook(self.calls)
        noise = float(np.random.default_rng(seed).normal())
        return float(self.space.metrics(candidate).params) / 1e5 + 0.3 * noise

    def describe(self) -> dict[str, Any]:
        return {"fitness": "seeded-params"}


def _zen_space() -> ZenNetMutationSpace:
    return ZenNetMutationSpace(RESNET_LIKE, CIFAR_INIT, num_classes=100, resolution=32)


def _search(space: Any, fitness: Any, iterations: int, **kw: Any) -> EvolutionarySearch:
    kw.setdefault("population_size", 12)
    return EvolutionarySearch(space, fitness, max_iterations=iterations, progress=False, **kw)


def _comparable(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- mechanics


def test_warmup_rule_and_remove_lowest() -> None:
    space = ToySpace()
    fitness = CallableFitness(float, "identity")
    result = _search(space, fitness, 200).run()
    # every child is accepted, so the population holds min(i, 12) members at the start of iteration i (after
    # removal); children come from the warm-up rule while it holds at most 10: iterations 0..10
    assert space.warmups == 11
    assert result.history["population"].max() == 13
    scored = np.sort(result.history["score"].to_numpy())[::-1]
    population = np.sort([s for _, s in result.population])[::-1]
    # removing the lowest each time keeps exactly the best members seen so far
    np.testing.assert_array_equal(population, scored[: len(population)])
    assert result.best_score == scored[0] and result.evaluations == 200 == result.unique_evaluations


def test_constraints_drop_children_before_scoring() -> None:
    fitness = CallableFitness(float, "identity")
    result = _search(ToySpace(), fitness, 150, budgets=Budgets(max_params=60)).run()
    h = result.history
    assert (h.loc[h.status == "params", "params"] > 60).all()
    assert (h.loc[h.status == "scored", "params"] <= 60).all()
    assert all(int(k) <= 60 for k, _ in result.population)
    assert result.evaluations == int((h.status == "scored").sum()) < 150
    assert result.best_score == h.loc[h.status == "scored", "score"].max() <= 60


def test_no_deduplication_and_optional_cache() -> None:
    space = ToySpace(identity_children=True)
    calls = []
    fitness = CallableFitness(lambda c: calls.append(c) or float(c), "identity")
    plain = _search(space, fitness, 40).run()
    keys = [k for k, _ in plain.population]
    assert len(set(keys)) < len(keys)  # duplicates kept
    assert len(calls) == 40 == plain.unique_evaluations
    calls.clear()
    cached = _search(ToySpace(identity_children=True), fitness, 40, cache_scores=True).run()
    assert cached.evaluations == 40 and cached.unique_evaluations == len(calls) < 40
    assert set(cached.history.status) == {"scored", "cached"}


def test_latency_budget_and_measurement() -> None:
    fitness = CallableFitness(float, "identity")
    result = _search(ToySpace(), fitness, 60, budgets=Budgets(max_latency=0.5), latency=lambda c: c / 100).run()
    h = result.history
    assert set(h.status) <= {"scored", "latency"} and (h.loc[h.status == "latency", "latency"] > 0.5).all()
    seconds = measure_latency(build_zennet(CIFAR_INIT, 10), (3, 32, 32), batch_size=2, warmup=1, repeats=1)
    assert 0 < seconds < 10
    with pytest.raises(SearchError, match="latency function"):
        EvolutionarySearch(ToySpace(), fitness, max_iterations=1, budgets=Budgets(max_latency=1.0))


def test_bad_settings() -> None:
    fitness = CallableFitness(float, "identity")
    with pytest.raises(SearchError, match="exceed the warm-up size"):
        EvolutionarySearch(ToySpace(), fitness, population_size=10, max_iterations=5)
    with pytest.raises(SearchError, match="max_iterations or max_evaluations"):
        EvolutionarySearch(ToySpace(), fitness)


# ----------------------------------------------------------------------------- determinism and resume


def test_same_seed_same_search_different_seed_differs() -> None:
    space = _zen_space()
    runs = [_search(space, SeededFitness(space), 40, seed=s, budgets=Budgets(max_params=1e6, max_layers=18)).run()
            for s in (5, 5, 6)]
    pd.testing.assert_frame_equal(_comparable(runs[0].history), _comparable(runs[1].history))
    assert runs[0].best == runs[1].best and runs[0].population == runs[1].population
    assert runs[0].best != runs[2].best
    assert evaluation_seed(5, 3) != evaluation_seed(5, 4) != evaluation_seed(6, 3)


def test_zen_proxy_fitness_is_reproducible() -> None:
    space = _zen_space()

    def fitness() -> ProxyFitness:
        return ProxyFitness(proxies.get("zen", batch_size=2), lambda s: ZenNetFactory(s, 100, 32))

    a, b = (_search(space, fitness(), 10, seed=1, budgets=Budgets(max_params=1e6)).run() for _ in range(2))
    assert a.history["score"].notna().sum() > 6
    pd.testing.assert_frame_equal(_comparable(a.history), _comparable(b.history))


def _straight_and_reference(tmp_path, iterations: int = 50):
    space = _zen_space()
    budgets = Budgets(max_params=1e6, max_layers=18)
    straight = _search(space, SeededFitness(space), iterations, seed=3, budgets=budgets, checkpoint_every=7)
    return space, budgets, straight.run(tmp_path / "straight")


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(_comparable(a.history), _comparable(b.history))
    assert (a.best, a.best_score, a.best_iteration) == (b.best, b.best_score, b.best_iteration)
    assert a.population == b.population and a.evaluations == b.evaluations and a.completed and b.completed


def test_stop_then_resume_equals_straight_run(tmp_path) -> None:
    space, budgets, straight = _straight_and_reference(tmp_path)
    out = tmp_path / "resumed"
    first = _search(space, SeededFitness(space), 25, seed=3, budgets=budgets, checkpoint_every=7).run(out)
    assert first.completed and first.iterations == 25
    resumed = _search(space, SeededFitness(space), 50, seed=3, budgets=budgets, checkpoint_every=7).run(
        out, resume=True)
    _assert_same(straight, resumed)
    assert (out / "best_structure.txt").read_text().strip() == straight.best
    assert len(pd.read_csv(out / "history.csv")) == 50


def test_killed_search_resumes_from_its_last_checkpoint(tmp_path) -> None:
    space, budgets, straight = _straight_and_reference(tmp_path)
    out = tmp_path / "killed"

    class Killed(Exception):
        pass

    def crash(calls: int) -> None:
        if calls == 30:
            raise Killed

    with pytest.raises(Killed):
        _search(space, SeededFitness(space, hook=crash), 50, seed=3, budgets=budgets, checkpoint_every=7).run(out)
    resumed = _search(space, SeededFitness(space), 50, seed=3, budgets=budgets, checkpoint_every=7).run(
        out, resume=True)
    _assert_same(straight, resumed)


def test_ctrl_c_checkpoints_and_resumes(tmp_path) -> None:
    space, budgets, straight = _straight_and_reference(tmp_path)
    out = tmp_path / "interrupted"

    def interrupt(calls: int) -> None:
        if calls == 20:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the test process was started in the background
    stopped = _search(space, SeededFitness(space, hook=interrupt), 50, seed=3, budgets=budgets,
                      checkpoint_every=1000).run(out)
    assert not stopped.completed and 20 <= stopped.iterations < 50
    assert signal.getsignal(signal.SIGINT) is before
    resumed = _search(space, SeededFitness(space), 50, seed=3, budgets=budgets, checkpoint_every=1000).run(
        out, resume=True)
    _assert_same(straight, resumed)


def test_checkpoint_belongs_to_its_search(tmp_path) -> None:
    space, budgets, _ = _straight_and_reference(tmp_path, iterations=12)
    with pytest.raises(SearchError, match="differs in: seed"):
        _search(space, SeededFitness(space), 20, seed=4, budgets=budgets).run(tmp_path / "straight", resume=True)
    with pytest.raises(SearchError, match="already holds a search checkpoint"):
        _search(space, SeededFitness(space), 20, seed=3, budgets=budgets).run(tmp_path / "straight")
    with pytest.raises(SearchError, match="nothing to resume"):
        _search(space, SeededFitness(space), 20, seed=3, budgets=budgets).run(tmp_path / "empty", resume=True)


# ----------------------------------------------------------------------------- NAS-Bench-201


def test_nb201_mutation_changes_exactly_one_edge() -> None:
    rng = np.random.default_rng(0)
    arch = arch_from_code(1234)
    for _ in range(100):
        child = mutate_one_edge(arch, rng)
        assert sum(a != b for a, b in zip(arch.ops, child.ops, strict=True)) == 1
        arch = child
    assert arch_from_code(0).ops == ("none",) * 6 and arch_from_code(NUM_ARCHS - 1).ops == ("avg_pool_3x3",) * 6


ALL_CELLS = [arch_from_code(code) for code in range(NUM_ARCHS)]
"""The random-search pool of these tests: every cell, in code order."""


def _matches(target: Nb201Arch):
    return CallableFitness(lambda a: float(sum(x == y for x, y in zip(a.ops, target.ops, strict=True))), "matches")


def test_nb201_evolution_finds_the_optimum_of_a_one_max_problem() -> None:
    # Fitness = number of edges agreeing with a target cell: the EA's one-edge mutations reach 6 within
    # 300 evaluations; 300 random cells contain the target with probability 300/15625 < 2%.
    target = arch_from_code(9876)
    space = Nb201MutationSpace("cifar10")
    result = EvolutionarySearch(space, _matches(target), population_size=20, max_evaluations=300, seed=0,
                                cache_scores=True, progress=False).run()
    assert result.best == target.to_string() and result.best_score == 6
    _, random_score, _ = random_search(_matches(target), ALL_CELLS, 300, seed=0)
    assert random_score < 6


def test_nb201_search_with_ground_truth_beats_random(nb201_csv) -> None:
    table = pd.read_csv(nb201_csv).set_index("arch_str")
    valid, test = table["cifar10_valid"].to_dict(), table["cifar10_test"].to_dict()
    outcome = run_validation_search(
        Nb201MutationSpace("cifar10"), lambda seed: CallableFitness(lambda a: valid[a.to_string()], "gt-valid"),
        lambda a: test[a.to_string()], ALL_CELLS, evaluations=100, runs=3, seed=0, progress=False)
    summary = outcome.summary.set_index("method")
    assert set(outcome.runs.method) == {"evolution", "random"} and len(outcome.runs) == 6
    assert (outcome.runs.evaluations == 100).all()
    assert summary.loc["evolution", "mean"] > summary.loc["random", "mean"]
    assert summary.loc["evolution", "mean"] > 93.5  # optimum 94.37
    assert published_table("cifar10")["mean"].between(90, 95).all()
    assert published_table("cifar10", "macro").empty  # published searches are kept per benchmark


def test_nb201_search_with_a_proxy() -> None:
    outcome = run_validation_search(
        Nb201MutationSpace("cifar10"),
        lambda seed: ProxyFitness(proxies.get("params"), lambda a: Nb201Factory(a, "cifar10")),
        lambda a: float(a.count("nor_conv_3x3")), ALL_CELLS, evaluations=30, runs=2, seed=0, progress=False)
    for row in outcome.runs.itertuples():
        arch = Nb201Arch.from_string(row.arch)
        assert row.fitness == pytest.approx(nb201_param_count(arch) / 1e6)
        assert row.accuracy == arch.count("nor_conv_3x3")
    # random search reports the best of exactly the cells its seed draws from the pool
    codes = np.random.default_rng(1).choice(NUM_ARCHS, size=30, replace=False)
    best_params = max(nb201_param_count(arch_from_code(int(c))) for c in codes)
    random_row = outcome.runs[(outcome.runs.method == "random") & (outcome.runs.seed == 1)].iloc[0]
    assert random_row.fitness == pytest.approx(best_params / 1e6)  # the params proxy reports millions
    assert list(outcome.summary.columns[:5]) == ["method", "mean", "std", "runs", "without_truth"]
    assert (outcome.summary["without_truth"] == 0).all()


def test_found_architectures_without_ground_truth_are_counted_not_averaged() -> None:
    known = {a.to_string(): 1.0 for a in ALL_CELLS[::2]}  # half the space has an "accuracy"
    outcome = run_validation_search(
        Nb201MutationSpace("cifar10"), lambda seed: _matches(arch_from_code(77)),
        lambda a: known.get(a.to_string(), float("nan")), ALL_CELLS, evaluations=25, runs=4, seed=0,
        progress=False)
    summary = outcome.summary.set_index("method")
    for method, group in outcome.runs.groupby("method"):
        assert summary.loc[method, "without_truth"] == group["accuracy"].isna().sum()
        known_runs = group["accuracy"].dropna()
        assert summary.loc[method, "mean"] == 1.0 if len(known_runs) else np.isnan(summary.loc[method, "mean"])
    with pytest.raises(ValueError, match="pool of random candidates"):
        run_validation_search(Nb201MutationSpace("cifar10"), lambda seed: _matches(arch_from_code(77)),
                              lambda a: 1.0, ALL_CELLS[:10], evaluations=11, runs=1, progress=False)
