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
import hashlib
import inspect
import math
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import proxies as proxy_registry
from bench import benchmarks
from bench.benchmarks.base import Benchmark, GroundTruthTable
from bench.data import load_batch
from bench.store import ResultStore, ScoreRow, StoreError, software_versions
from proxies import Batch, NetworkFactory, Proxy

DEFAULT_IMAGE_BATCH = 64
"""Images loaded for a proxy that declares no batch size of its own (Abdelfattah's harness: 64)."""
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
                 data_root: str | os.PathLike | None, shard: Shard, network: str = "default") -> str:
    """The ``zenbench bench`` command that repeats a run (recorded in the store's run table). Proxies
    passed as instances with non-default options cannot be spelled on the command line; the run table's
    config holds their options."""
    words = ["zenbench", "bench", "--benchmark", benchmark, "--dataset", dataset,
             "--proxies", ",".join(_spec_name(p) for p in proxies),
             "--sample", "all" if sample is None else str(sample), "--seed", str(seed)]
    if network != "default":
        words += ["--network", network]
    if batch_size is not None:
        words += ["--batch-size", str(batch_size)]
    if device is not None:
        words += ["--device", str(device)]
    if batch_per_arch:
        words.append("--batch-per-arch")
    if ground_truth is not None:
        words += ["--ground-truth", str(ground_truth)]
    if data_source != "auto":
        words += ["--data", data_source]
    if data_root is not None:
        words += ["--data-root", str(data_root)]
    words += ["--store", str(store)]
    if shard.count > 1:
        words += ["--shard", str(shard)]
    return shlex.join(words)


def _on_device(batch: Batch, device: torch.device) -> Batch:
    labels = None if batch.labels is None else batch.labels.to(device)
    return Batch(batch.images.to(device), labels, batch.num_classes, batch.source)


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
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    batch_per_arch: bool = False,
    ground_truth: str | os.PathLike | GroundTruthTable | Any = None,
    data_source: str = "auto",
    data_root: str | os.PathLike | None = None,
    shard: Shard | str = Shard(),
    progress: bool = True,
) -> RunSummary:
    """Score ``proxies`` on the seeded sample of ``benchmark`` for ``dataset``, storing each score in ``store``.

    Parameters (defaults in brackets): ``benchmark`` ["nb201"] a registered name, ``module:Class`` spec or
    instance (``space``: its older name); ``network`` ["default"] one of the benchmark's ``networks``;
    ``dataset`` [None: the benchmark's first]; ``sample`` architectures [None: all evaluated], drawn with
    ``seed`` [0], which is also every proxy's seed and the shared batch's seed; ``batch_size`` [None: each
    proxy's own] overrides the ``batch_size`` option of proxies that have one; ``device`` [None: CUDA if
    available]; ``batch_per_arch`` [False]: one batch per architecture instead of one shared batch;
    ``ground_truth`` [None: the benchmark's own lookup] a source the benchmark reads (a path) or a loaded
    :class:`GroundTruthTable`; ``data_source`` ["auto"] and ``data_root`` [None: $ZENBENCH_DATA] are passed
    to ``bench.data.load_batch``; ``shard`` ["0/1"]; ``progress`` [True]: a tqdm bar. Every row records
    the benchmark, the network, the ground-truth column compared with (the benchmark's default key of the
    dataset) and the proxy's population rule.

    Ctrl-C stops cleanly: the rows stored so far stay, the run is recorded as ``interrupted`` and the
    summary says so.
    """
    bench_obj, bench_name = resolve_benchmark(benchmark, space)
    dataset = check_run(bench_obj, dataset, network)
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    torch_device = resolve_device(device)
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
                           network=network)
    rules = [p.population_rule() for p in proxy_list]
    config: dict[str, Any] = {
        "benchmark": bench_name, "network": network, "dataset": dataset, "sample": sample, "seed": seed,
        "shard": str(shard), "n_archs": len(specs), "batch_size": batch_size, "image_batch": image_batch,
        "batch_mode": batch_mode, "data_source": data_source,
        "data_root": None if data_root is None else str(data_root),
        "device": str(torch_device), "ground_truth": gt.source, "gt_key": gt_key, "nan_policy": NAN_POLICY,
        "proxies": [{**p.describe(), "option_hash": p.option_hash(), "class": _class_spec(p),
                     "population_rule": None if r is None else r.to_dict(),
                     "reference": inspect.getdoc(type(p)) or ""} for p, r in zip(proxy_list, rules, strict=True)],
    }
    if torch_device.type == "cuda":
        config["device_name"] = torch.cuda.get_device_name(torch_device)

    with ResultStore(store) as results:
        hashes = [p.option_hash() for p in proxy_list]
        protocol = (bench_name, network, dataset)
        for proxy, option_hash in zip(proxy_list, hashes, strict=True):
            stored = results.protocols(*protocol, proxy.name, option_hash, seed)
            if stored - {(batch_mode, data_source)}:
                raise StoreError(
                    f"{results.path} already holds {proxy.name} (options {option_hash}, seed {seed}) scored with "
                    f"batch mode/data {sorted(stored)}, not {batch_mode}/{data_source}; use another store or seed")
        done = [results.done(*protocol, p.name, h, seed) for p, h in zip(proxy_list, hashes, strict=True)]
        todo = [(a, [k for k in range(len(proxy_list)) if a not in done[k]]) for a in specs]
        todo = [(a, ks) for a, ks in todo if ks]
        n_tasks = len(specs) * len(proxy_list)
        n_todo = sum(len(ks) for _, ks in todo)
        run = results.begin_run(command, config, config.get("device_name", str(torch_device)))
        shared_batch = None
        if image_proxies and not batch_per_arch and todo:
            shared_batch = _on_device(load_batch(dataset, image_batch, seed, source=data_source, root=data_root),
                                      torch_device)
        fixed = dict(benchmark=bench_name, network=network, dataset=dataset, seed=seed, device=str(torch_device),
                     batch_mode=batch_mode, data_source=data_source, gt_key=gt_key, nan_policy=NAN_POLICY,
                     zenbench_version=zenbench_version, torch_version=torch_version, run_id=run.run_id)
        per_proxy = [dict(proxy=p.name, option_hash=h, proxy_class=_class_spec(p), options=p.options(),
                          input_kind=p.input_kind, higher_is_better=bool(p.higher_is_better),
                          population_rule=None if r is None else r.to_dict(),
                          batch_size=(p.batch_size or image_batch) if p.needs != "nothing" else None)
                     for p, h, r in zip(proxy_list, hashes, rules, strict=True)]
        n_computed = n_nonfinite = n_archs_scored = 0
        proxy_seconds = score_call_seconds = 0.0
        status, interrupted = "failed", False
        bar = tqdm(total=len(todo), unit="arch", desc=f"{bench_name} {dataset} {shard}", disable=not progress,
                   smoothing=0.05)
        loop_start = time.perf_counter()
        try:
            for spec, proxy_positions in todo:
                arch = bench_obj.parse(spec)
                factory = make_factory(bench_obj, arch, dataset, network)
                batch, batch_seed = shared_batch, seed
                if batch_per_arch and any(proxy_list[k].needs != "nothing" for k in proxy_positions):
                    batch_seed = per_arch_batch_seed(seed, spec)
                    batch = _on_device(load_batch(dataset, image_batch, batch_seed, source=data_source,
                                                  root=data_root), torch_device)
                degenerate = bool(bench_obj.is_degenerate(arch))
                for k in proxy_positions:
                    proxy = proxy_list[k]
                    uses_batch = proxy.needs != "nothing"
                    call_start = time.perf_counter()
                    result = proxy.score(factory, batch if uses_batch else None, torch_device, seed)
                    score_call_seconds += time.perf_counter() - call_start
                    row = ScoreRow(arch=spec, value=result.value, components=result.components,
                                   seconds=result.seconds, peak_memory_mb=result.peak_memory_mb,
                                   batch_source=batch.source if uses_batch and batch is not None else "none",
                                   batch_seed=batch_seed if uses_batch else None,
                                   disconnected=degenerate, **fixed, **per_proxy[k])
                    results.add(row)
                    n_computed += 1
                    n_nonfinite += row.nonfinite
                    proxy_seconds += result.seconds
                n_archs_scored += 1
                bar.update(1)
            status = "completed"
        except KeyboardInterrupt:
            status, interrupted = "interrupted", True
        finally:
            loop_seconds = time.perf_counter() - loop_start
            bar.close()
            results.finish_run(run.run_id, status, n_computed)
    return RunSummary(run.run_id, Path(store), command, len(specs), n_tasks, n_tasks - n_todo, n_computed,
                      n_nonfinite, loop_seconds, proxy_seconds, score_call_seconds, n_archs_scored, interrupted)
