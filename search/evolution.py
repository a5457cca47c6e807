"""The Zen-NAS evolutionary search (idstcv/ZenNAS ``evolution_search.py``; REFERENCE C.3), generic over a
search space and a fitness.

Each iteration:

1. while the population exceeds ``population_size``, remove the lowest-fitness member (the first one
   when tied);
2. make a child: while the population has at most ``warmup_size`` (10) members, ``space.warmup_child``
   (ZenNet: the initial structure with one block replaced); otherwise a uniformly drawn member passed to
   ``space.child`` (ZenNet: two blocks replaced); mutation includes the split;
3. check the constraints in ZenNAS's order: layers, params, FLOPs (all analytic, before anything is
   built), then the measured latency; a violating child is dropped (the iteration still counts);
4. score it (a fitness failure scores -inf, as ZenNAS's -9999) and append it. No de-duplication, no
   crossover.

Randomness: mutation choices come from one ``numpy.random.Generator`` seeded with ``seed``; the fitness of
iteration ``i`` gets its own seed ``SeedSequence([seed, i])``, so a resumed search equals an uninterrupted
one. A checkpoint (population, generator state, counters, best, score cache) is written atomically every
``checkpoint_every`` iterations, the history is appended to ``history.csv`` at the same moments and
truncated back to the checkpoint on resume. Ctrl-C finishes the running iteration, checkpoints and
returns (a second Ctrl-C interrupts at once).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from proxies.base import Batch, NetworkFactory, Proxy, ProxyError, ProxyResult, VariantUnavailable

C = TypeVar("C")
WARMUP_POPULATION = 10
"""While the population has at most this many members, children come from the space's warm-up rule (C.3)."""

CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "history.csv"
BEST_FILE = "best_structure.txt"
HISTORY_COLUMNS = ("iteration", "status", "score", "best_score", "params", "flops", "layers", "latency",
                   "evaluations", "population", "seconds")
"""One row per iteration. ``status``: ``scored``, ``cached`` (score reused from the cache), or the
violated constraint (``layers``, ``params``, ``flops``, ``latency``)."""


class SearchError(ValueError):
    """Bad search settings, or a checkpoint that does not belong to this search."""


@dataclass(frozen=True)
class Metrics:
    """What the EA's constraints check, computed before anything is built (``None``: not known)."""

    params: float | None = None
    flops: float | None = None
    layers: int | None = None


class SearchSpace(Protocol[C]):
    """What the EA needs from a space (see ``ZenNetMutationSpace``, ``Nb201MutationSpace``, any benchmark's
    ``mutation_space``): a warm-up child (random, or one mutation of a start point), a child of a parent,
    analytic :class:`Metrics` for the constraints, and a string form for checkpoints and caches."""

    @property
    def name(self) -> str: ...
    def warmup_child(self, rng: np.random.Generator) -> C: ...
    def child(self, parent: C, rng: np.random.Generator) -> C: ...
    def metrics(self, candidate: C) -> Metrics: ...
    def to_string(self, candidate: C) -> str: ...
    def from_string(self, text: str) -> C: ...
    def describe(self) -> dict[str, Any]: ...


class Fitness(Protocol[C]):
    """Higher is better. ``seed`` seeds any randomness of one evaluation."""

    def __call__(self, candidate: C, seed: int) -> float: ...
    def describe(self) -> dict[str, Any]: ...


@dataclass
class ProxyFitness(Generic[C]):
    """A registered proxy as fitness: ``proxy.score(factory(candidate), batch, device, seed)``.

    Values of a lower-is-better proxy are negated; NaN becomes -inf. A :class:`ProxyError` or a
    ``RuntimeError`` (e.g. out of memory) while scoring one candidate gives -inf, as ZenNAS gives -9999, and
    is counted in ``failures``; other exceptions propagate, and so does a ``ProxyError`` caused by a network
    variant the benchmark lacks (:class:`VariantUnavailable`), which no candidate could score.
    """

    proxy: Proxy
    factory: Callable[[C], NetworkFactory]
    batch: Batch | None = None
    device: str | torch.device = "cpu"
    failures: int = 0
    last_error: str | None = None
    scorer: Callable[[Proxy, NetworkFactory, Batch | None, str | torch.device, int], ProxyResult] | None = None
    """How one candidate is scored (``bench.runner.score_proxy``, the function ``bench`` and ``score`` use);
    ``None``: ``proxy.score`` itself."""

    def __call__(self, candidate: C, seed: int) -> float:
        try:
            if self.scorer is not None:
                value = self.scorer(self.proxy, self.factory(candidate), self.batch, self.device, seed).value
            else:
                value = self.proxy.score(self.factory(candidate), self.batch, self.device, seed).value
        except (ProxyError, RuntimeError) as exc:
            if isinstance(exc.__cause__, VariantUnavailable):
                raise
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return -math.inf
        if math.isnan(value):
            return -math.inf
        return value if self.proxy.higher_is_better else -value

    def describe(self) -> dict[str, Any]:
        return {"fitness": "proxy", **self.proxy.describe(), "option_hash": self.proxy.option_hash(),
                "batch": None if self.batch is None else self.batch.source, "device": str(self.device)}


@dataclass
class CallableFitness(Generic[C]):
    """Any function of the candidate as fitness (e.g. ground-truth accuracy, to validate the search)."""

    function: Callable[[C], float]
    description: str

    def __call__(self, candidate: C, seed: int) -> float:
        value = float(self.function(candidate))
        return -math.inf if math.isnan(value) else value

    def describe(self) -> dict[str, Any]:
        return {"fitness": self.description}


@dataclass(frozen=True)
class Budgets:
    """Constraints, checked in ZenNAS's order; None disables one. Latency is seconds per image."""

    max_layers: int | None = None
    max_params: float | None = None
    max_flops: float | None = None
    max_latency: float | None = None

    def violation(self, metrics: Metrics) -> str | None:
        if self.max_layers is not None and metrics.layers is not None and metrics.layers > self.max_layers:
            return "layers"
        if self.max_params is not None and metrics.params is not None and metrics.params > self.max_params:
            return "params"
        if self.max_flops is not None and metrics.flops is not None and metrics.flops > self.max_flops:
            return "flops"
        return None


@torch.no_grad()
def measure_latency(net: nn.Module, input_shape: tuple[int, int, int], batch_size: int = 64,
                    device: str | torch.device = "cpu", fp16: bool | None = None, warmup: int = 3,
                    repeats: int = 3) -> float:
    """Seconds per image of ``net`` in eval mode: median over ``repeats`` timed batches after ``warmup``.

    ZenNAS (``benchmark_network_latency.py``) times B=64 in fp16 on the GPU; ``fp16`` defaults to True on
    CUDA, False elsewhere. Unlike ZenNAS we synchronise the device before reading the clock.
    """
    device = torch.device(device)
    half = device.type == "cuda" if fp16 is None else fp16
    net = net.to(device).eval()
    x = torch.randn(batch_size, *input_shape, device=device)
    if half:
        net, x = net.half(), x.half()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        net(x)
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        net(x)
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / batch_size


@dataclass
class SearchResult(Generic[C]):
    """What a search produced: plain data."""

    best: str
    best_score: float
    best_iteration: int
    population: list[tuple[str, float]]
    history: pd.DataFrame
    iterations: int
    evaluations: int
    unique_evaluations: int
    completed: bool
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time spent in ``mutation``, ``constraints``, ``latency``, ``fitness`` and ``total``."""


@dataclass
class _Member(Generic[C]):
    candidate: C
    key: str
    score: float


def evaluation_seed(seed: int, iteration: int) -> int:
    """The fitness seed of one iteration: independent of everything but (seed, iteration)."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


class EvolutionarySearch(Generic[C]):
    """The Zen-NAS EA over any :class:`SearchSpace` with any :class:`Fitness`.

    Stops after ``max_iterations`` iterations or ``max_evaluations`` fitness requests, whichever comes
    first (at least one must be given). ``cache_scores=True`` reuses the score of a candidate seen before
    in this run (sensible on NB201, whose 15,625 cells repeat); a reused score still counts as an
    evaluation (``evaluations`` = fitness requests; ``unique_evaluations`` = actual calls).
    ``latency``: a function of the candidate returning seconds per image, checked against
    ``budgets.max_latency`` after the analytic constraints.
    """

    def __init__(self, space: SearchSpace[C], fitness: Fitness[C], *, population_size: int = 512,
                 max_iterations: int | None = None, max_evaluations: int | None = None,
                 budgets: Budgets | None = None, latency: Callable[[C], float] | None = None,
                 seed: int = 0, warmup_size: int = WARMUP_POPULATION, cache_scores: bool = False,
                 checkpoint_every: int = 100, progress: bool = True) -> None:
        if max_iterations is None and max_evaluations is None:
            raise SearchError("give max_iterations or max_evaluations")
        for name, value in (("population_size", population_size), ("max_iterations", max_iterations),
                            ("max_evaluations", max_evaluations), ("checkpoint_every", checkpoint_every)):
            if value is not None and value < 1:
                raise SearchError(f"{name} must be >= 1, got {value}")
        if population_size <= warmup_size:
            raise SearchError(
                f"population_size ({population_size}) must exceed the warm-up size ({warmup_size}); otherwise "
                f"every child comes from the warm-up rule and the search never selects"
            )
        self.budgets = budgets or Budgets()
        if self.budgets.max_latency is not None and latency is None:
            raise SearchError("a latency budget needs a latency function")
        self.space, self.fitness, self.latency = space, fitness, latency
        self.population_size = population_size
        self.max_iterations, self.max_evaluations = max_iterations, max_evaluations
        self.seed, self.warmup_size, self.cache_scores = seed, warmup_size, cache_scores
        self.checkpoint_every, self.progress = checkpoint_every, progress

    # ------------------------------------------------------------------ configuration

    def config(self) -> dict[str, Any]:
        """Everything that determines the result except the stopping point (which may be extended on resume)."""
        return json.loads(json.dumps({
            "space": self.space.describe(), "fitness": self.fitness.describe(),
            "population_size": self.population_size, "budgets": asdict(self.budgets),
            "seed": self.seed, "warmup_size": self.warmup_size, "cache_scores": self.cache_scores,
        }, default=str))

    # ------------------------------------------------------------------ run

    def run(self, out_dir: str | os.PathLike[str] | None = None, resume: bool = False) -> SearchResult[C]:
        """Run (or, with ``resume``, continue) the search; with ``out_dir`` write ``checkpoint.json``,
        ``history.csv`` and ``best_structure.txt`` there."""
        out = Path(out_dir) if out_dir is not None else None
        state = _State.fresh(self.seed)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            ckpt = out / CHECKPOINT_FILE
            if resume and ckpt.exists():
                state = self._load(out)
            elif resume:
                raise SearchError(f"nothing to resume: {ckpt} does not exist")
            elif ckpt.exists():
                raise SearchError(f"{out} already holds a search checkpoint; pass resume=True or use another directory")
            else:
                _write_history_header(out / HISTORY_FILE)
        elif resume:
            raise SearchError("resume needs out_dir")

        stop = _StopFlag()
        bar = tqdm(total=self.max_iterations if self.max_iterations is not None else self.max_evaluations,
                   initial=state.iteration if self.max_iterations is not None else state.evaluations,
                   disable=not self.progress, desc=f"search {self.space.name}", unit="it", dynamic_ncols=True)
        t_start = time.perf_counter()
        try:
            with stop:
                while not self._done(state) and not stop.requested:
                    self._iterate(state)
                    bar.update(1 if self.max_iterations is not None else state.last_evaluated)
                    if state.best is not None:
                        bar.set_postfix(best=f"{state.best.score:.4g}", pop=len(state.population),
                                        evals=state.evaluations, refresh=False)
                    if out is not None and state.iteration % self.checkpoint_every == 0:
                        self._save(out, state)
        finally:
            bar.close()
            state.seconds["total"] += time.perf_counter() - t_start
        if out is not None:
            self._save(out, state)
        return self._result(out, state, completed=self._done(state))

    def _done(self, state: _State[C]) -> bool:
        return ((self.max_iterations is not None and state.iteration >= self.max_iterations)
                or (self.max_evaluations is not None and state.evaluations >= self.max_evaluations))

    def _iterate(self, state: _State[C]) -> None:
        t0 = time.perf_counter()
        population = state.population
        while len(population) > self.population_size:
            scores = [m.score for m in population]
            population.pop(scores.index(min(scores)))
        rng = state.rng
        if len(population) <= self.warmup_size:
            child = self.space.warmup_child(rng)
        else:
            child = self.space.child(population[int(rng.integers(len(population)))].candidate, rng)
        t1 = time.perf_counter()
        metrics = self.space.metrics(child)
        status = self.budgets.violation(metrics)
        t2 = time.perf_counter()
        latency = math.nan
        if status is None and self.latency is not None:
            latency = float(self.latency(child))
            if self.budgets.max_latency is not None and latency > self.budgets.max_latency:
                status = "latency"
        t3 = time.perf_counter()
        score = math.nan
        state.last_evaluated = 0
        if status is None:
            key = self.space.to_string(child)
            cached = state.cache.get(key) if self.cache_scores else None
            if cached is not None:
                score, status = cached, "cached"
            else:
                score, status = self.fitness(child, evaluation_seed(self.seed, state.iteration)), "scored"
                state.unique_evaluations += 1
                if self.cache_scores:
                    state.cache[key] = score
            state.evaluations += 1
            state.last_evaluated = 1
            population.append(_Member(child, key, score))
            if state.best is None or score > state.best.score:
                state.best, state.best_iteration = population[-1], state.iteration
        t4 = time.perf_counter()
        for name, dt in (("mutation", t1 - t0), ("constraints", t2 - t1), ("latency", t3 - t2), ("fitness", t4 - t3)):
            state.seconds[name] += dt
        state.pending_rows.append((
            state.iteration, status, score, state.best.score if state.best else math.nan,
            metrics.params, metrics.flops, metrics.layers, latency, state.evaluations, len(population), t4 - t0,
        ))
        state.iteration += 1

    # ------------------------------------------------------------------ persistence

    def _save(self, out: Path, state: _State[C]) -> None:
        if state.pending_rows:
            with open(out / HISTORY_FILE, "a", newline="") as fh:
                csv.writer(fh).writerows(_csv_row(r) for r in state.pending_rows)
            state.history_rows += len(state.pending_rows)
            state.pending_rows = []
        payload = {
            "format": 1, "config": self.config(), "iteration": state.iteration, "evaluations": state.evaluations,
            "unique_evaluations": state.unique_evaluations, "history_rows": state.history_rows,
            "rng_state": state.rng.bit_generator.state,
            "population": [[m.key, _json_float(m.score)] for m in state.population],
            "best": None if state.best is None else [state.best.key, _json_float(state.best.score)],
            "best_iteration": state.best_iteration,
            "cache": {k: _json_float(v) for k, v in state.cache.items()},
            "seconds": state.seconds,
        }
        _atomic_write(out / CHECKPOINT_FILE, json.dumps(payload))
        if state.best is not None:
            _atomic_write(out / BEST_FILE, state.best.key + "\n")

    def _load(self, out: Path) -> _State[C]:
        try:
            payload = json.loads((out / CHECKPOINT_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SearchError(f"cannot read checkpoint {out / CHECKPOINT_FILE}: {exc}") from None
        config = self.config()
        if payload.get("config") != config:
            saved = payload.get("config", {})
            differing = sorted(k for k in set(config) | set(saved) if config.get(k) != saved.get(k))
            raise SearchError(f"checkpoint in {out} belongs to a different search (differs in: {', '.join(differing)})")
        state = _State.fresh(self.seed)
        state.rng.bit_generator.state = payload["rng_state"]
        state.iteration, state.evaluations = payload["iteration"], payload["evaluations"]
        state.unique_evaluations, state.history_rows = payload["unique_evaluations"], payload["history_rows"]
        parsed: dict[str, C] = {}

        def member(key: str, score: Any) -> _Member[C]:
            if key not in parsed:
                parsed[key] = self.space.from_string(key)
            return _Member(parsed[key], key, _from_json_float(score))

        state.population = [member(k, s) for k, s in payload["population"]]
        if payload["best"] is not None:
            state.best = member(*payload["best"])
        state.best_iteration = payload["best_iteration"]
        state.cache = {k: _from_json_float(v) for k, v in payload["cache"].items()}
        state.seconds.update(payload.get("seconds", {}))
        _truncate_history(out / HISTORY_FILE, state.history_rows)
        return state

    def _result(self, out: Path | None, state: _State[C], completed: bool) -> SearchResult[C]:
        if out is not None:
            history = pd.read_csv(out / HISTORY_FILE)
        else:
            history = pd.DataFrame(state.pending_rows, columns=list(HISTORY_COLUMNS))
        best = state.best
        return SearchResult(
            best=best.key if best else "", best_score=best.score if best else math.nan,
            best_iteration=state.best_iteration, population=[(m.key, m.score) for m in state.population],
            history=history, iterations=state.iteration, evaluations=state.evaluations,
            unique_evaluations=state.unique_evaluations, completed=completed, seconds=dict(state.seconds),
        )


@dataclass
class _State(Generic[C]):
    rng: np.random.Generator
    iteration: int = 0
    evaluations: int = 0
    unique_evaluations: int = 0
    last_evaluated: int = 0
    population: list[_Member[C]] = field(default_factory=list)
    best: _Member[C] | None = None
    best_iteration: int = -1
    cache: dict[str, float] = field(default_factory=dict)
    pending_rows: list[tuple[Any, ...]] = field(default_factory=list)
    history_rows: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("mutation", "constraints", "latency", "fitness", "total"), 0.0))

    @classmethod
    def fresh(cls, seed: int) -> _State[C]:
        return cls(rng=np.random.default_rng(seed))


class _StopFlag:
    """First Ctrl-C asks the loop to stop after the running iteration; a second one interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def _from_json_float(x: float | str) -> float:
    return float(x)


def _csv_row(row: tuple[Any, ...]) -> list[Any]:
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else (repr(v) if isinstance(v, float) else v)
            for v in row]


def _write_history_header(path: Path) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerow(HISTORY_COLUMNS)


def _truncate_history(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` rows (those the checkpoint covers)."""
    if not path.exists():
        _write_history_header(path)
        if rows:
            raise SearchError(f"{path} is missing but the checkpoint covers {rows} history rows")
        return
    with open(path, newline="") as fh:
        lines = fh.readlines()
    if len(lines) < rows + 1:
        raise SearchError(f"{path} has {len(lines) - 1} rows, the checkpoint expects {rows}")
    _atomic_write(path, "".join(lines[: rows + 1]))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

