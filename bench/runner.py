"""Scoring runs: every requested proxy on every sampled architecture, each score stored as it exists.

:func:`run_benchmark` is what ``zenbench bench`` calls. It is generic: everything it knows of the
benchmark (spec strings, networks, ground truth, degenerate architectures) comes through the
:class:`~bench.benchmarks.base.Benchmark` interface. The work is resumable and splittable:

- the sample is ``GroundTruthTable.sample(n, seed)`` of the benchmark's evaluated architectures (seeded; a
  larger sample extends a smaller one);
- ``shard=(i, n)`` keeps the architectures at positions ``p`` of the sample with ``p % n == i``, so
  ``n`` processes cover the sample exactly once and their stores merge (``zenbench merge``);
- before scoring, the store is asked which (architecture, proxy protocol, seed) keys exist; only the
  missing ones are computed, and each row is committed as soon as it is scored, so a killed run loses at
  most the score in flight and a rerun of the same command finishes the job.

Every proxy is scored with ``proxy.score(factory, batch, device, seed)`` and the run's ``seed``, so a
score does not depend on the order, shard or resumption that produced it. Images: one batch per
(dataset, seed), of the largest size any image-using proxy needs, loaded once and moved to the device
once (``batch_mode="shared"``); each proxy takes its first ``proxy.batch_size`` images. With
``batch_per_arch=True`` each architecture gets its own batch drawn with seed
:func:`per_arch_batch_seed` (``batch_mode="per-arch"``), like Abdelfattah's harness, where every
architecture sees a fresh batch (REFERENCE A.1 note 2).

NaN policy (:data:`NAN_POLICY`): a non-finite score is stored like any other, flagged; the statistics
exclude it from correlations (or rank it last, on request) and the report counts it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import proxies as proxy_registry
from bench import benchmarks
from bench.benchmarks.base import Benchmark, GroundTruthTable, copies_exact, dedupe_class
from bench.data import load_batch
from bench.executors import LocalPool, RayPool
from bench.store import ResultStore, ScoreRow, StoreError, software_versions
from bench.tables import import_table
from proxies import Batch, NetworkFactory, Proxy, ProxyError, ProxyResult
from proxies.base import VariantUnavailable
from proxies.shared_pass import plan

DEFAULT_IMAGE_BATCH = 64
"""Images loaded for a proxy that declares no batch size of its own (Abdelfattah's harness: 64)."""
EXECUTORS = ("local", "ray")
"""Where ``run_benchmark`` computes its tasks (:mod:`bench.executors`)."""
NAN_POLICY = "keep-flag-exclude"
"""Non-finite scores are stored (NaN as NULL, ±inf as is) with ``nonfinite=1``, excluded from
correlations by default and counted in reports."""


class RunConfigError(ValueError):
    """A scoring run asked for something that cannot be done (bad shard, benchmark, dataset, device...)."""


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (0 ≤ index < count): sample positions ``p`` with ``p % count == index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 0 <= self.index < self.count):
            raise RunConfigError(f"shard {self.index}/{self.count}: expected i/n with 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"``, e.g. ``"3/8"`` (the fourth of eight shards)."""
        index, sep, count = str(text).partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise RunConfigError(f"--shard {text!r}: expected i/n with integers 0 <= i < n, e.g. 3/8") from None

    def select(self, items: Sequence[Any]) -> list[Any]:
        return list(items[self.index::self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class RunSummary:
    """What one call of :func:`run_benchmark` did, as plain data."""

    run_id: str
    store: Path
    command: str
    n_archs: int
    """Architectures in this shard of the sample."""
    n_tasks: int
    """(architecture, proxy) scores this shard needs in total."""
    n_already: int
    """Of those, already in the store before this run."""
    n_computed: int
    n_nonfinite: int
    loop_seconds: float
    """Wall time of the scoring loop (after set-up)."""
    proxy_seconds: float
    """Sum of the proxies' own measured times (``ProxyResult.seconds``)."""
    score_call_seconds: float
    """Wall time spent inside ``proxy.score`` calls: the proxies' own time plus the interface's seeding
    and cost metering."""
    n_archs_scored: int
    """Architectures for which at least one proxy ran in this call."""
    interrupted: bool
    failures: tuple[tuple[str, str, int, str], ...] = ()
    """(proxy, architecture, init seed, error) of every score that failed in this call (stored in the
    store's ``failures`` table; a rerun retries them)."""
    init_seeds: tuple[int, ...] = (0,)
    n_copied: int = 0
    """Scores copied from an isomorphic architecture (``dedupe``) instead of computed."""

    @property
    def overhead_ms_per_arch(self) -> float:
        """The runner's own time per scored architecture (loop time outside ``proxy.score``), in ms."""
        if self.n_archs_scored == 0:
            return math.nan
        return (self.loop_seconds - self.score_call_seconds) / self.n_archs_scored * 1e3

    @property
    def interface_overhead_ms_per_score(self) -> float:
        """Time per score inside ``proxy.score`` but outside the proxy's measured computation, in ms."""
        if self.n_computed == 0:
            return math.nan
        return (self.score_call_seconds - self.proxy_seconds) / self.n_computed * 1e3


def per_arch_batch_seed(seed: int, arch: str) -> int:
    """Seed of an architecture's own batch (``batch_per_arch``): from the run seed and the spec string
    (its SHA-256), independent of sample, shard and order. (zenbench 0.1 seeded NB201 batches from the NB201
    index; rows keep the seed they were scored with.)"""
    digest = hashlib.sha256(arch.encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence([seed, *words]).generate_state(1)[0])


def resolve_benchmark(benchmark: str | Benchmark, space: str | None = None) -> tuple[Benchmark, str]:
    """The benchmark instance and how it is spelled on the command line (its name, or ``module:Class``);
    ``space`` is the older name of the same argument."""
    if space is not None:
        if isinstance(benchmark, str) and benchmark not in ("nb201", space):
            raise RunConfigError(f"--space {space!r} and --benchmark {benchmark!r} disagree; give one")
        benchmark = space if isinstance(benchmark, str) else benchmark
    try:
        instance = benchmarks.resolve(benchmark)
    except benchmarks.BenchmarkError as exc:
        raise RunConfigError(str(exc)) from None
    if isinstance(benchmark, str):
        return instance, benchmark
    cls = type(instance)
    try:
        registered = benchmarks.get_class(instance.name) is cls
    except benchmarks.BenchmarkError:
        registered = False
    return instance, instance.name if registered else f"{cls.__module__}:{cls.__qualname__}"


def make_factory(benchmark: Benchmark, arch: Any, dataset: str, network: str = "default") -> NetworkFactory:
    """``benchmark.factory(arch, dataset)``, with ``network=`` only when it is not the default (a benchmark
    with a single network need not take the argument)."""
    if network == "default":
        return benchmark.factory(arch, dataset)
    return benchmark.factory(arch, dataset, network=network)


def check_run(benchmark: Benchmark, dataset: str | None, network: str) -> str:
    """The dataset to use (default: the benchmark's first); a dataset or network the benchmark lacks is
    a :class:`RunConfigError` naming the choices."""
    dataset = dataset or benchmark.datasets[0]
    if dataset not in benchmark.datasets:
        raise RunConfigError(f"unknown dataset {dataset!r} for {benchmark.title}; expected one of "
                             f"{', '.join(benchmark.datasets)}")
    networks = tuple(getattr(benchmark, "networks", ("default",)))
    if network not in networks:
        raise RunConfigError(f"unknown network {network!r} for {benchmark.title}; expected one of "
                             f"{', '.join(networks)}")
    return dataset


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``: CUDA when available, else CPU. A requested CUDA device must exist."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise RunConfigError(f"--device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RunConfigError(f"--device {device!r}: CUDA is not available on this machine")
    return resolved


def resolve_proxies(specs: Sequence[str | Proxy], batch_size: int | None = None) -> list[Proxy]:
    """Proxy instances from names, ``module:Class`` specs or instances. ``batch_size`` becomes the
    ``batch_size`` option of every proxy that has one (others keep their own protocol)."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise RunConfigError(f"--batch-size {batch_size!r}: expected a positive integer")
    resolved: list[Proxy] = []
    for spec in specs:
        if isinstance(spec, Proxy):
            proxy = spec
            if batch_size is not None and _has_option(type(proxy), "batch_size"):
                proxy = dataclasses.replace(proxy, batch_size=batch_size)
        else:
            options = {"batch_size": batch_size} if batch_size is not None and _has_option(
                proxy_registry.get_class(spec), "batch_size") else {}
            proxy = proxy_registry.get(spec, **options)
        resolved.append(proxy)
    seen: dict[tuple[str, str], int] = {}
    for position, proxy in enumerate(resolved):
        key = (proxy.name, proxy.option_hash())
        if key in seen:
            raise RunConfigError(f"proxy {proxy.name!r} is listed twice with the same options")
        seen[key] = position
    if not resolved:
        raise RunConfigError("no proxies given; expected e.g. --proxies zen,synflow")
    return resolved


def _has_option(cls: type[Proxy], name: str) -> bool:
    return dataclasses.is_dataclass(cls) and any(f.name == name for f in dataclasses.fields(cls))


def _class_spec(proxy: Proxy) -> str:
    cls = type(proxy)
    return f"{cls.__module__}:{cls.__qualname__}"


def _spec_name(spec: str | Proxy) -> str:
    """How a proxy is spelled on the command line: its registered name, else ``module:Class``."""
    if isinstance(spec, str):
        return spec
    try:
        registered = proxy_registry.get_class(spec.name) is type(spec)
    except KeyError:
        registered = False
    return spec.name if registered else _class_spec(spec)


def command_line(*, store: str | os.PathLike, proxies: Sequence[str | Proxy], benchmark: str, dataset: str,
                 sample: int | None, seed: int, batch_size: int | None, device: str | torch.device | None,
                 batch_per_arch: bool, ground_truth: str | os.PathLike | None, data_source: str,
                 data_root: str | os.PathLike | None, shard: Shard, network: str = "default",
                 init_seeds: Sequence[int] | None = None, threads: int | None = None,
                 resume_from: Sequence[str | os.PathLike] = (), dedupe: bool = False, workers: int = 1,
                 devices: Sequence[str] | None = None, executor: str = "local",
                 ray_address: str | None = None) -> str:
    """The ``zenbench bench`` command that repeats a run (recorded in the store's run table). A proxy
    passed as an instance with non-default options is spelled with ``--proxy-option`` (several instances
    of one proxy that differ in more than one option cannot be spelled exactly; the run table's config
    holds every proxy's options)."""
    names = list(dict.fromkeys(_spec_name(p) for p in proxies))
    words = ["zenbench", "bench", "--benchmark", benchmark, "--dataset", dataset, "--proxies", ",".join(names),
             "--sample", "all" if sample is None else str(sample), "--seed", str(seed)]
    for proxy in proxies:
        if isinstance(proxy, Proxy):
            defaults = type(proxy)().options()
            for key, value in proxy.options().items():
                if value != defaults.get(key) and not (key == "batch_size" and value == batch_size):
                    words += ["--proxy-option", f"{_spec_name(proxy)}.{key}={value!r}"]
    if init_seeds is not None and list(init_seeds) != [seed]:
        words += ["--init-seeds", ",".join(map(str, init_seeds))]
    if threads is not None:
        words += ["--threads", str(threads)]
    if network != "default":
        words += ["--network", network]
    if batch_size is not None:
        words += ["--batch-size", str(batch_size)]
    if device is not None:
        words += ["--device", str(device)]
    if batch_per_arch:
        words.append("--batch-per-arch")
    if dedupe:
        words.append("--dedupe")
    if workers != 1:
        words += ["--workers", str(workers)]
    if devices:
        words += ["--devices", ",".join(devices)]
    if executor != "local":
        words += ["--executor", executor]
    if ray_address is not None:
        words += ["--ray-address", ray_address]
    if ground_truth is not None:
        words += ["--ground-truth", str(ground_truth)]
    if data_source != "auto":
        words += ["--data", data_source]
    if data_root is not None:
        words += ["--data-root", str(data_root)]
    for table in resume_from:
        words += ["--resume-from", str(table)]
    words += ["--store", str(store)]
    if shard.count > 1:
        words += ["--shard", str(shard)]
    return shlex.join(words)


def _on_device(batch: Batch, device: torch.device) -> Batch:
    labels = None if batch.labels is None else batch.labels.to(device)
    return Batch(batch.images.to(device), labels, batch.num_classes, batch.source)


@dataclass(frozen=True)
class ProxyOutcome:
    """One proxy's try at one network (:func:`score_proxies`): its ``result``, or the one-line ``error``
    it raised; with the batch it saw and the conditions its cost was measured under."""

    proxy: Proxy
    result: ProxyResult | None
    error: str | None
    batch: Batch | None
    """The images handed to the proxy (``None`` for a data-free proxy)."""
    call_seconds: float
    """Wall time of the ``proxy.score`` call (the proxy's own time plus seeding and metering)."""
    threads: int
    """``torch.get_num_threads()`` during the call."""
    load_avg: float | None
    """``os.getloadavg()[0]`` just before the call (``None`` where the platform has none)."""

    @property
    def ok(self) -> bool:
        return self.result is not None


def load_average() -> float | None:
    """The machine's 1-minute load average, ``None`` where the platform does not report one."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def failure_message(exc: BaseException) -> str:
    """``Type: first line of the message`` (what a failure record and a summary print)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def score_proxies(factory: NetworkFactory, proxies: Sequence[Proxy], batch_for: Callable[[Proxy], Batch | None],
                  device: torch.device | str, seed: int) -> list[ProxyOutcome]:
    """Score one network with each proxy as ``proxy.score(factory, batch_for(proxy), device, seed)`` would.

    The one place zenbench scores proxies (``bench``, ``score`` and the searches call it). ``batch_for`` is
    asked only for proxies that need images. Proxies that read one shared pass (:mod:`proxies.shared_pass`)
    are scored from one run of it, with the very values they get alone; their outcomes split the group's
    call time evenly, and their results name the others (``ProxyResult.shared_with``). A proxy that raises
    does not stop the others: its outcome carries the error (``failure_message``) instead of a result.
    Ctrl-C propagates, and so does an error caused by a network variant the benchmark lacks
    (:class:`VariantUnavailable`), which is a configuration error no architecture could score."""

    supplied = [batch_for(p) if p.needs != "nothing" else None for p in proxies]
    outcomes: dict[int, ProxyOutcome] = {}
    for group in plan(proxies, supplied):
        load, threads = load_average(), torch.get_num_threads()
        start = time.perf_counter()
        results = group.score(factory, device, seed)
        call_seconds = (time.perf_counter() - start) / len(results)
        for k, result in zip(group.positions, results, strict=True):
            if not isinstance(result, Exception):
                outcomes[k] = ProxyOutcome(proxies[k], result, None, supplied[k], call_seconds, threads, load)
                continue
            if isinstance(result, VariantUnavailable) or isinstance(result.__cause__, VariantUnavailable):
                raise result
            outcomes[k] = ProxyOutcome(proxies[k], None, failure_message(result), supplied[k], call_seconds, threads,
                                       load)
    return [outcomes[k] for k in range(len(proxies))]


def score_proxy(proxy: Proxy, factory: NetworkFactory, batch: Batch | None, device: torch.device | str,
                seed: int) -> ProxyResult:
    """One proxy through :func:`score_proxies` (the searches' fitness): its result, or a :class:`ProxyError`
    carrying the one-line failure message."""
    outcome = score_proxies(factory, [proxy], lambda _: batch, device, seed)[0]
    if outcome.result is None:
        raise ProxyError(f"proxy {proxy.name!r}: {outcome.error}")
    return outcome.result


@dataclass(frozen=True)
class Task:
    """One architecture (spec string) under one init seed, and the positions of the proxies it needs."""

    spec: str
    seed: int
    positions: tuple[int, ...]


@dataclass(frozen=True)
class Scored:
    """One proxy's outcome on a task: its ``result`` or the one-line ``error``, and where it was measured."""

    position: int
    result: ProxyResult | None
    error: str | None
    batch_source: str | None
    """``Batch.source`` of the images the proxy saw (``None``: it takes none)."""
    batch_seed: int | None
    call_seconds: float
    threads: int
    load_avg: float | None
    device: str


@dataclass(frozen=True)
class TaskResult:
    """What computing a task gives: whether the benchmark calls the architecture degenerate, and each
    proxy's outcome."""

    degenerate: bool
    scored: tuple[Scored, ...]

    @classmethod
    def failed(cls, task: Task, error: str) -> TaskResult:
        """Every proxy of ``task`` failed with ``error`` (its worker died)."""
        return cls(False, tuple(Scored(k, None, error, None, None, 0.0, 0, None, "") for k in task.positions))


@dataclass(frozen=True)
class ScoringJob:
    """What every task of a run needs (picklable: a worker rebuilds its scorer from it)."""

    benchmark: str | Benchmark
    """A registered name or ``module:Class`` spec (resolved in the worker), or an instance."""
    dataset: str
    network: str
    proxies: tuple[Proxy, ...]
    device: str
    batch_per_arch: bool
    image_batch: int
    data_source: str
    data_root: str | None


class TaskScorer:
    """Computes tasks of one :class:`ScoringJob` on ``device`` [the job's], keeping the shared batch of each
    init seed on the device. Picklable through its job: a pool worker builds its own."""

    def __init__(self, job: ScoringJob, device: str | None = None) -> None:
        self.job = job
        self.bench = job.benchmark if not isinstance(job.benchmark, str) else benchmarks.resolve(job.benchmark)
        self.device = torch.device(device or job.device)
        self._shared: dict[int, Batch] = {}

    def _load(self, seed: int) -> Batch:
        batch = load_batch(self.job.dataset, self.job.image_batch, seed, source=self.job.data_source,
                           root=self.job.data_root)
        return _on_device(batch, self.device)

    def __call__(self, task: Task) -> TaskResult:
        job = self.job
        arch = self.bench.parse(task.spec)
        factory = make_factory(self.bench, arch, job.dataset, job.network)
        batch_seed = per_arch_batch_seed(task.seed, task.spec) if job.batch_per_arch else task.seed
        own: list[Batch] = []

        def batch_for(proxy: Proxy) -> Batch:
            if not job.batch_per_arch:
                if batch_seed not in self._shared:
                    self._shared[batch_seed] = self._load(batch_seed)
                return self._shared[batch_seed]
            if not own:
                own.append(self._load(batch_seed))
            return own[0]

        outcomes = score_proxies(factory, [job.proxies[k] for k in task.positions], batch_for, self.device,
                                       task.seed)
        scored = tuple(Scored(k, o.result, o.error, None if o.batch is None else o.batch.source,
                              None if o.batch is None else batch_seed, o.call_seconds, o.threads, o.load_avg,
                              str(self.device))
                       for k, o in zip(task.positions, outcomes, strict=True))
        return TaskResult(bool(self.bench.is_degenerate(arch)), scored)


def run_inline(job: ScoringJob, tasks: Iterable[Task]) -> Iterator[tuple[Task, TaskResult]]:
    """Compute ``tasks`` one after another in this process."""
    scorer = TaskScorer(job)
    for task in tasks:
        yield task, scorer(task)



def run_benchmark(
    store: str | os.PathLike,
    proxies: Sequence[str | Proxy],
    *,
    benchmark: str | Benchmark = "nb201",
    space: str | None = None,
    network: str = "default",
    dataset: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    init_seeds: Sequence[int] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    batch_per_arch: bool = False,
    ground_truth: str | os.PathLike | GroundTruthTable | Any = None,
    data_source: str = "auto",
    data_root: str | os.PathLike | None = None,
    shard: Shard | str = Shard(),
    threads: int | None = None,
    resume_from: Sequence[str | os.PathLike] = (),
    dedupe: bool = False,
    workers: int = 1,
    devices: Sequence[str] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
) -> RunSummary:
    """Score ``proxies`` on the seeded sample of ``benchmark`` for ``dataset``, storing each score in ``store``.

    Parameters (defaults in brackets): ``benchmark`` ["nb201"] a registered name, ``module:Class`` spec or
    instance (``space``: its older name); ``network`` ["default"] one of the benchmark's ``networks``;
    ``dataset`` [None: the benchmark's first]; ``sample`` architectures [None: all evaluated], drawn with
    ``seed`` [0] (stored as ``sample_seed``); ``init_seeds`` [None: ``(seed,)``, zenbench 0.2's single seed]
    the proxies' init seeds: every architecture is scored once per init seed, which is the store key's
    ``seed`` and also seeds the shared image batch; ``batch_size`` [None: each proxy's own] overrides the
    ``batch_size`` option of proxies that have one; ``device`` [None: CUDA if available];
    ``batch_per_arch`` [False]: one batch per architecture instead of one shared batch; ``ground_truth``
    [None: the benchmark's own lookup] a source the benchmark reads (a path) or a loaded
    :class:`GroundTruthTable`; ``data_source`` ["auto"] and ``data_root`` [None: $ZENBENCH_DATA] are passed
    to ``bench.data.load_batch``; ``shard`` ["0/1"]; ``threads`` [None: leave torch's setting] torch's CPU
    threads; ``resume_from`` [()] published score tables (:mod:`bench.tables`) whose rows are written into the
    store first, so only what they lack is computed (a run cut off in one session continues from its committed
    table in the next); ``dedupe`` [False]: score one member of each isomorphism class
    (:func:`bench.benchmarks.base.dedupe_class`) and copy its score to every other member
    (:data:`bench.store.DEDUPE_NOTE`) where the copy is exact (:func:`bench.benchmarks.base.copies_exact`;
    other proxies are scored on every member, and copies that are not exact, stored by an older release, are
    dropped and scored again);
    ``workers`` [1: in this process] local worker processes (:class:`bench.executors.LocalPool`), each with
    ``threads`` [1] torch threads, on ``devices`` [None: ``device``] round-robin; this process stays the only
    writer of the store, and a worker that dies loses only its task (retried once, then recorded as failed);
    ``executor`` ["local"] or ``"ray"``: tasks in chunks on a Ray cluster (:class:`bench.executors.RayPool`)
    at ``ray_address`` [None: a local cluster of ``workers`` CPUs on 127.0.0.1], one GPU per task on CUDA;
    ``progress`` [True]: a tqdm bar. Every row records the benchmark, the network, the
    ground-truth column compared with (the benchmark's default key of the dataset), the proxy's
    population rule, and the conditions of its cost: ``threads``, ``device``, ``load_avg``.

    A proxy that raises on an architecture does not stop the run: the failure (proxy, architecture, init
    seed, error) is stored in the ``failures`` table and listed in the summary, and a rerun retries only
    the failed and missing scores. Ctrl-C stops cleanly: the rows stored so far stay, the run is recorded
    as ``interrupted`` and the summary says so.
    """
    bench_obj, bench_name = resolve_benchmark(benchmark, space)
    dataset = check_run(bench_obj, dataset, network)
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    torch_device = resolve_device(device)
    seeds = _check_init_seeds(seed, init_seeds)
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise RunConfigError(f"--threads {threads!r}: expected a positive integer")
        torch.set_num_threads(threads)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RunConfigError(f"--workers {workers!r}: expected a positive integer")
    if executor not in EXECUTORS:
        raise RunConfigError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    for name in devices or ():
        resolve_device(name)
    proxy_list = resolve_proxies(proxies, batch_size)
    gt = ground_truth if isinstance(ground_truth, GroundTruthTable) else bench_obj.ground_truth(ground_truth)
    gt_key = gt.key(dataset)
    specs = shard.select(gt.sample(sample, seed))
    image_proxies = [p for p in proxy_list if p.needs != "nothing"]
    image_batch = max((p.batch_size or batch_size or DEFAULT_IMAGE_BATCH for p in image_proxies), default=0)
    batch_mode = "per-arch" if batch_per_arch else "shared"
    zenbench_version, torch_version = software_versions()
    gt_source = ground_truth if isinstance(ground_truth, (str, os.PathLike)) else None
    command = command_line(store=store, proxies=proxies, benchmark=bench_name, dataset=dataset, sample=sample,
                           seed=seed, batch_size=batch_size, device=device, batch_per_arch=batch_per_arch,
                           ground_truth=gt_source, data_source=data_source, data_root=data_root, shard=shard,
                           network=network, init_seeds=seeds, threads=threads, resume_from=resume_from,
                           dedupe=dedupe, workers=workers, devices=devices, executor=executor,
                           ray_address=ray_address)
    rules = [p.population_rule() for p in proxy_list]
    config: dict[str, Any] = {
        "benchmark": bench_name, "network": network, "dataset": dataset, "sample": sample, "seed": seed,
        "sample_seed": seed, "init_seeds": seeds, "threads": torch.get_num_threads(),
        "shard": str(shard), "n_archs": len(specs), "batch_size": batch_size, "image_batch": image_batch,
        "batch_mode": batch_mode, "data_source": data_source, "dedupe": dedupe, "workers": workers,
        "devices": list(devices) if devices else None, "executor": executor,
        "ray_address": ray_address,
        "data_root": None if data_root is None else str(data_root),
        "device": str(torch_device), "ground_truth": gt.source, "gt_key": gt_key, "nan_policy": NAN_POLICY,
        "proxies": [{**p.protocol(), "class": _class_spec(p)} for p in proxy_list],
    }
    if torch_device.type == "cuda":
        config["device_name"] = torch.cuda.get_device_name(torch_device)

    for table in resume_from:
        import_table(table, store)
    with ResultStore(store) as results:
        hashes = [p.option_hash() for p in proxy_list]
        protocol = (bench_name, network, dataset)
        for proxy, option_hash in zip(proxy_list, hashes, strict=True):
            for init_seed in seeds:
                stored = results.protocols(*protocol, proxy.name, option_hash, init_seed)
                if stored - {(batch_mode, data_source)}:
                    raise StoreError(
                        f"{results.path} already holds {proxy.name} (options {option_hash}, seed {init_seed}) scored "
                        f"with batch mode/data {sorted(stored)}, not {batch_mode}/{data_source}; use another store "
                        "or seed")
        class_by_spec: dict[str, str] = {}
        """Spec → class (``dedupe``: :func:`bench.benchmarks.base.dedupe_class`), each spec parsed once."""

        def class_of(spec: str) -> str:
            if spec not in class_by_spec:
                class_by_spec[spec] = dedupe_class(bench_obj, bench_obj.parse(spec))
            return class_by_spec[spec]

        copyable = [copies_exact(bench_obj, p) for p in proxy_list]
        """Per proxy position: may ``dedupe`` copy its scores between members of a class?"""
        for k, (p, h) in enumerate(zip(proxy_list, hashes, strict=True)):
            for s in seeds:
                stale = [a for a, source in results.copies(*protocol, p.name, h, s).items()
                         if not copyable[k] or class_of(a) != class_of(source)]
                dropped = results.drop_copies(*protocol, p.name, h, s, stale) if stale else 0
                if dropped:
                    print(f"{results.path}: {dropped} copied {p.name} score(s) dropped to be scored again: "
                          f"on {bench_name} they were copied from an architecture whose network may differ "
                          f"(isomorphism {getattr(bench_obj, 'isomorphism', 'functional')!r})", file=sys.stderr)
        done = {(k, s): results.done(*protocol, p.name, h, s)
                for k, (p, h) in enumerate(zip(proxy_list, hashes, strict=True)) for s in seeds}
        todo = [(a, s, [k for k in range(len(proxy_list)) if a not in done[k, s]]) for a in specs for s in seeds]
        todo = [(a, s, ks) for a, s, ks in todo if ks]
        n_tasks = len(specs) * len(proxy_list) * len(seeds)
        n_todo = sum(len(ks) for _, _, ks in todo)
        wanted_classes = {class_of(a) for a, _, _ in todo} if dedupe else set()
        scored_class: dict[tuple[int, int, str], ScoreRow] = {}
        """(proxy position, init seed, class) → a row scored on a member of the class (``dedupe``)."""
        if dedupe and todo:
            for k, (p, h) in enumerate(zip(proxy_list, hashes, strict=True)):
                for s in seeds:
                    for row in results.own_rows(*protocol, p.name, h, s):
                        if class_of(row.arch) in wanted_classes:
                            scored_class.setdefault((k, s, class_of(row.arch)), row)
        run = results.begin_run(command, config, config.get("device_name", str(torch_device)))
        inline = executor == "local" and workers == 1
        job = ScoringJob(bench_obj if inline else bench_name, dataset, network, tuple(proxy_list),
                         str(torch_device), batch_per_arch, image_batch, data_source,
                         None if data_root is None else str(data_root))
        fixed = dict(benchmark=bench_name, network=network, dataset=dataset,
                     batch_mode=batch_mode, data_source=data_source, gt_key=gt_key, nan_policy=NAN_POLICY,
                     zenbench_version=zenbench_version, torch_version=torch_version, run_id=run.run_id,
                     sample_seed=seed)
        per_proxy = [dict(proxy=p.name, option_hash=h, proxy_class=_class_spec(p), options=p.options(),
                          input_kind=p.input_kind, higher_is_better=bool(p.higher_is_better),
                          population_rule=None if r is None else r.to_dict(),
                          batch_size=(p.batch_size or image_batch) if p.needs != "nothing" else None)
                     for p, h, r in zip(proxy_list, hashes, rules, strict=True)]
        n_computed = n_nonfinite = n_archs_scored = n_copied = 0
        proxy_seconds = score_call_seconds = 0.0
        failures: list[tuple[str, str, int, str]] = []
        status, interrupted = "failed", False
        bar = tqdm(total=len(todo), unit="arch", desc=f"{bench_name} {dataset} {shard}", disable=not progress,
                   smoothing=0.05)

        def compute(tasks: list[Task]) -> Iterator[tuple[Task, TaskResult]]:
            if inline:
                yield from run_inline(job, tasks)
                return
            make_scorer = functools.partial(TaskScorer, job)
            pool: LocalPool | RayPool = (
                LocalPool(make_scorer, workers, devices or [str(torch_device)], threads or 1) if executor == "local"
                else RayPool(make_scorer, (devices or [str(torch_device)])[0], address=ray_address, workers=workers,
                             threads=threads))
            for task, result in pool.run(tasks):
                yield task, result if isinstance(result, TaskResult) else TaskResult.failed(task, str(result))

        remaining = [Task(spec, init_seed, tuple(positions)) for spec, init_seed, positions in todo]
        loop_start = time.perf_counter()
        try:
            while remaining:  # one round without --dedupe; with it, a class's other members wait for its first
                now, later, in_flight = [], [], set()
                for task in remaining:
                    positions = task.positions
                    if dedupe:
                        klass = (task.seed, class_by_spec[task.spec])
                        copies = [k for k in positions if copyable[k] and (k, *klass) in scored_class]
                        for k in copies:
                            source = scored_class[(k, *klass)]
                            results.add(dataclasses.replace(source, arch=task.spec, copied_from=source.arch,
                                                            run_id=run.run_id, created=time.time()))
                            n_copied += 1
                        positions = tuple(k for k in positions if k not in copies)
                        if not positions:
                            bar.update(1)
                            continue
                        if klass in in_flight and any(copyable[k] for k in positions):
                            later.append(Task(task.spec, task.seed, positions))
                            continue
                        in_flight.add(klass)
                    now.append(Task(task.spec, task.seed, positions))
                for task, result in compute(now):
                    for scored in result.scored:
                        score_call_seconds += scored.call_seconds
                        key = dict(arch=task.spec, seed=task.seed, device=scored.device or str(torch_device),
                                   **fixed, **per_proxy[scored.position])
                        if scored.result is None:
                            assert scored.error is not None
                            results.add_failure(key, scored.error, run.run_id)
                            failures.append((proxy_list[scored.position].name, task.spec, task.seed, scored.error))
                            continue
                        row = ScoreRow(value=scored.result.value, components=scored.result.components,
                                       seconds=scored.result.seconds, peak_memory_mb=scored.result.peak_memory_mb,
                                       batch_source=scored.batch_source or "none", batch_seed=scored.batch_seed,
                                       disconnected=result.degenerate, threads=scored.threads,
                                       load_avg=scored.load_avg,
                                       shared_with=",".join(scored.result.shared_with) or None, **key)
                        results.add(row)
                        if dedupe and copyable[scored.position]:
                            scored_class.setdefault((scored.position, task.seed, class_by_spec[task.spec]), row)
                        n_computed += 1
                        n_nonfinite += row.nonfinite
                        proxy_seconds += scored.result.seconds
                    n_archs_scored += 1
                    bar.update(1)
                remaining = later
            status = "completed" if not failures else "completed with failures"
        except KeyboardInterrupt:
            status, interrupted = "interrupted", True
        finally:
            loop_seconds = time.perf_counter() - loop_start
            bar.close()
            results.finish_run(run.run_id, status, n_computed)
    return RunSummary(run.run_id, Path(store), command, len(specs), n_tasks, n_tasks - n_todo, n_computed,
                      n_nonfinite, loop_seconds, proxy_seconds, score_call_seconds, n_archs_scored, interrupted,
                      tuple(failures), tuple(seeds), n_copied)


def _check_init_seeds(seed: int, init_seeds: Sequence[int] | None) -> list[int]:
    """The init seeds of a run (``None``: ``[seed]``), distinct non-negative integers in the order given."""
    if init_seeds is None:
        return [seed]
    seeds = list(dict.fromkeys(init_seeds))
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise RunConfigError(f"init seeds {list(init_seeds)!r}: expected one or more non-negative integers")
    return [int(s) for s in seeds]
