"""Library logic of the searches the CLI runs (``zenbench search``), as plain functions a user imports
(also through :mod:`bench.api`): the Zen-NAS search of a preset with a proxy as fitness, and the validation
of a proxy by search on any benchmark with ground truth (EA vs random search)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from bench.benchmarks.base import Benchmark, BenchmarkError
from bench.runner import DEFAULT_IMAGE_BATCH, check_run, make_factory, resolve_benchmark, resolve_device, score_proxy
from proxies import Batch, Proxy
from proxies import get as get_proxy
from search.benchmark_search import SearchOutcome, run_validation_search
from search.evolution import (
    Budgets,
    CallableFitness,
    EvolutionarySearch,
    Fitness,
    ProxyFitness,
    SearchError,
    measure_latency,
)
from search.spaces.zennet import Structure, ZenNetFactory, build_zennet
from search.spaces.zennet_space import PRESETS, SearchPreset, ZenNetMutationSpace, get_rules
from search.zennets import resolve_structure

GROUND_TRUTH_FITNESS = "ground-truth"
"""``--proxy ground-truth`` on a benchmark: the ground truth itself as fitness (an upper bound): the
``{dataset}_valid`` column where the benchmark has one besides the reported key (NB201), else the reported
key."""
DEFAULT_ITERATIONS = 1000
DEFAULT_PRESET = {"resnet": "cifar-params1M", "mobilenet": "imagenet-flops400M"}


def _image_batch(proxy: Proxy, dataset: str, seed: int, source: str, root: str | None) -> Batch | None:
    if proxy.needs == "nothing":
        return None
    from bench.data import load_batch  # only image-using proxies need the data module

    return load_batch(dataset, proxy.batch_size or DEFAULT_IMAGE_BATCH, seed, source, root=root)


def resolve_preset(space: str | None, preset: str | None) -> SearchPreset:
    """The preset named, else the default one of ``space`` (resnet when neither is given)."""
    chosen = PRESETS[preset or DEFAULT_PRESET[space or "resnet"]]
    if space is not None and chosen.space != space:
        raise SearchError(f"--preset {chosen.name} searches the {chosen.space} space, not --space {space}")
    return chosen


def make_zennet_search(preset: SearchPreset, proxy: Proxy, *, iterations: int = DEFAULT_ITERATIONS,
                       population: int = 512, seed: int = 0, device: str | torch.device | None = None,
                       initial: str | Structure | None = None, budgets: Budgets | None = None,
                       num_classes: int | None = None, resolution: int | None = None,
                       data_source: str = "auto", data_root: str | None = None, checkpoint_every: int = 100,
                       progress: bool = True) -> EvolutionarySearch:
    """The ZenNAS search of ``preset`` with ``proxy`` as fitness, scored on the residual-free network.

    ``initial``, ``budgets``, ``num_classes``, ``resolution`` override the preset; a latency budget is
    measured on ``device`` at batch 64 with residual links, as ZenNAS does.
    """
    device = resolve_device(device)
    num_classes = num_classes or preset.num_classes
    resolution = resolution or preset.resolution
    start = resolve_structure(initial) if isinstance(initial, str) else (initial or Structure.parse(preset.initial))
    space = ZenNetMutationSpace(get_rules(preset.space), start, num_classes=num_classes, resolution=resolution)
    budgets = budgets or Budgets(max_layers=preset.max_layers, max_params=preset.max_params,
                                 max_flops=preset.max_flops)
    batch = None
    if proxy.needs != "nothing":
        if resolution != 32 or num_classes not in (10, 100):
            raise SearchError(f"proxy {proxy.name!r} needs images; ZenNet searches with image proxies support "
                              f"32x32 CIFAR-10/100 heads only (got {resolution}px, {num_classes} classes)")
        batch = _image_batch(proxy, f"cifar{num_classes}", seed, data_source, data_root)

    def factory(structure: Structure) -> ZenNetFactory:
        return ZenNetFactory(structure, num_classes=num_classes, resolution=resolution, no_reslink=True)

    def latency(structure: Structure) -> float:
        return measure_latency(build_zennet(structure, num_classes), (3, resolution, resolution), 64, device)

    return EvolutionarySearch(space, ProxyFitness(proxy, factory, batch, device, scorer=score_proxy),
                              population_size=population,
                              max_iterations=iterations, budgets=budgets,
                              latency=latency if budgets.max_latency is not None else None, seed=seed,
                              checkpoint_every=checkpoint_every, progress=progress)


def run_benchmark_validation(proxy: str | Proxy, *, benchmark: str | Benchmark = "nb201", evaluations: int = 100,
                             runs: int = 3, seed: int = 0, dataset: str | None = None, network: str = "default",
                             population: int = 20, device: str | torch.device | None = None,
                             ground_truth: str | os.PathLike | None = None, data_source: str = "auto",
                             data_root: str | None = None, progress: bool = True, out: str | os.PathLike | None = None,
                             resume: bool = False) -> tuple[SearchOutcome, float, str]:
    """EA vs random search on ``benchmark`` with ``proxy`` (or ``"ground-truth"``, see
    :data:`GROUND_TRUTH_FITNESS`); returns the outcome (accuracies of the found architectures from the
    ground truth, NaN where it has none), the best accuracy of the reported key in the ground truth, and
    that key (the benchmark's default for ``dataset``: NB201 ``{dataset}_test``).

    The EA searches ``benchmark.mutation_space(dataset)``; random search draws from the ground truth's
    evaluated architectures. A benchmark without a mutation space cannot be searched (one-line error). A
    found architecture whose spec string the table lacks (NB101's EA children are unpruned cells) is looked
    up by :meth:`Benchmark.isomorphism_id`. ``out``/``resume``: the CSV of finished runs, see
    :func:`search.benchmark_search.run_validation_search` (Ctrl-C keeps them; ``resume`` continues)."""
    bench_obj, _ = resolve_benchmark(benchmark)
    dataset = check_run(bench_obj, dataset, network)
    space = bench_obj.mutation_space(dataset)
    if space is None:
        raise SearchError(f"{bench_obj.title} has no mutation space: it cannot be searched")
    gt = bench_obj.ground_truth(ground_truth)
    key = gt.key(dataset)

    by_class: dict[str, str] = {}

    def spec(candidate: Any) -> str:
        """The table's spec string of ``candidate`` or of an evaluated isomorphic architecture."""
        text = bench_obj.format(candidate)
        if text in gt.table.index:
            return text
        if not by_class:  # built once, on the first miss
            by_class.update((bench_obj.isomorphism_id(bench_obj.parse(s)), s) for s in reversed(gt.evaluated()))
        return by_class.get(bench_obj.isomorphism_id(candidate), text)

    def accuracy(candidate: Any) -> float:
        return float(gt.values([spec(candidate)], key)[0])

    if proxy == GROUND_TRUTH_FITNESS:
        valid = f"{dataset}_valid"
        fitness_key = valid if valid in gt.accuracy_keys and valid != key else key
        fitness_id: dict[str, Any] = {"fitness": f"ground truth {fitness_key}"}

        def make_fitness(run_seed: int) -> Fitness[Any]:
            return CallableFitness(lambda a: float(gt.values([spec(a)], fitness_key)[0]),
                                   f"ground truth {fitness_key}")
    else:
        instance = proxy if isinstance(proxy, Proxy) else get_proxy(proxy)
        resolved = resolve_device(device)
        fitness_id = {"fitness": instance.name, "option_hash": instance.option_hash()}

        def make_fitness(run_seed: int) -> Fitness[Any]:
            batch = _image_batch(instance, dataset, run_seed, data_source, data_root)
            return ProxyFitness(instance, lambda a: make_factory(bench_obj, a, dataset, network), batch, resolved,
                                scorer=score_proxy)

    pool = [bench_obj.parse(s) for s in gt.evaluated()]
    try:
        describe = {**fitness_id, "benchmark": bench_obj.name, "dataset": dataset, "network": network,
                    "ground_truth": gt.source, "data_source": data_source}
        outcome = run_validation_search(space, make_fitness, accuracy, pool, evaluations=evaluations, runs=runs,
                                        seed=seed, population_size=population, progress=progress,
                                        out=out, resume=resume, describe=describe)
    except ValueError as exc:
        if isinstance(exc, (SearchError, BenchmarkError)):
            raise
        raise SearchError(str(exc)) from None
    return outcome, float(np.nanmax(gt.table[key].to_numpy(dtype=float))), key
