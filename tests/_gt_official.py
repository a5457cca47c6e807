"""A miniature NAS-Bench-201 benchmark file, written with ``nas_201_api``'s own result classes.

The real files hold, for each architecture index, ``{'less': ArchResults (hp=12), 'full':
ArchResults (hp=200)}`` state dicts; each ``ArchResults`` maps (API dataset, seed) to a
``ResultsCount`` with per-epoch train/eval accuracies and the cost info. This writes the same
structure for a few architectures with seeded random numbers and returns, independently of the code
under test, the numbers each ground-truth column must show (mean over seeds of the last epoch,
mapped as the data README's table says).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nas_201_api import ArchResults, ResultsCount

from search.spaces.nb201 import all_archs

META_ARCHS = [arch.to_string() for arch in all_archs()]
"""The file's index order (the 15,625 cells in op-index order; the real files use NB201's order)."""

EVAL_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
             "cifar100": ("x-valid", "x-test", "ori-test"), "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
COLUMN_SOURCE = {  # ground-truth column -> (API dataset, eval set); the data README's table
    "cifar10_valid": ("cifar10-valid", "x-valid"), "cifar10_test": ("cifar10", "ori-test"),
    "cifar100_valid": ("cifar100", "x-valid"), "cifar100_test": ("cifar100", "x-test"),
    "imagenet16_valid": ("ImageNet16-120", "x-valid"), "imagenet16_test": ("ImageNet16-120", "x-test"),
}
COST_SOURCE = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}


@dataclass
class Miniature:
    path: Path
    expected: dict[int, dict[str, float]] = field(default_factory=dict)
    """NB201 index -> column -> value (columns absent from the file are absent here)."""
    trials: list[tuple[int, int, float]] = field(default_factory=list)
    """(index, trial, CIFAR-10 ori-test accuracy of that seed), seeds in ascending order."""


def _results_count(rng: np.random.Generator, dataset: str, seed: int, epochs: int, arch: str,
                   last: dict[str, float], params: float, flops: float) -> ResultsCount:
    """One trial; every epoch before the last gets a different (lower) accuracy than ``last``."""
    def curve(final: float) -> dict[int, float]:
        return {e: np.float64(final - (epochs - 1 - e) * 0.01 - rng.uniform(0.5, 1.0)) if e < epochs - 1
                else np.float64(final) for e in range(epochs)}

    config = {"name": "infer.tiny", "channel": 16, "num_cells": 5, "arch_str": arch,
              "class_num": CLASSES[dataset]}
    result = ResultsCount(dataset, None, curve(float(rng.uniform(50, 100))), {e: 1.0 for e in range(epochs)},
                          np.float64(params), np.float64(flops), config, seed, epochs, [0.01])
    accs, losses, times = {}, {}, {}
    for name, final in last.items():
        for e, acc in curve(final).items():
            accs[f"{name}@{e}"], losses[f"{name}@{e}"], times[f"{name}@{e}"] = acc, 1.0, 0.5
    result.update_eval(accs, losses, times)
    return result


def write_miniature(path: Path, seed: int = 0) -> Miniature:
    """Write a miniature benchmark file with three evaluated architectures.

    * index 6: three seeds (777, 888, 999) everywhere; hp=12 trained once per dataset, twice on
      cifar10-valid (as v1_1);
    * index 900: one seed; hp=12 on cifar10-valid only (as v1_0);
    * index 15000: two seeds.
    """
    rng = np.random.default_rng(seed)
    mini = Miniature(Path(path))
    plans = {6: ((777, 888, 999), ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")),
             900: ((777,), ("cifar10-valid",)),
             15000: ((888, 999), ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"))}
    arch2infos = {}
    for index, (seeds, less_datasets) in plans.items():
        arch = META_ARCHS[index]
        expected: dict[str, float] = {}
        per_hp = {}
        for hp, epochs in (("200", 200), ("12", 12)):
            results = ArchResults(index, arch)
            finals: dict[tuple[str, str], list[float]] = {}
            for dataset in EVAL_SETS:
                if hp == "12" and dataset not in less_datasets:
                    continue
                ds_seeds = seeds if hp == "200" else ((111, 777) if dataset == "cifar10-valid" else (111,))
                params = round(float(rng.uniform(0.1, 1.5)), 6)
                flops = round(float(rng.uniform(10, 200)), 6)
                for s in ds_seeds:
                    last = {name: round(float(rng.uniform(10, 95)), 4) for name in EVAL_SETS[dataset]}
                    for name, value in last.items():
                        finals.setdefault((dataset, name), []).append(value)
                    results.update(dataset, s, _results_count(rng, dataset, s, epochs, arch, last, params, flops))
                    if hp == "200" and dataset == "cifar10":
                        mini.trials.append((index, sorted(seeds).index(s), last["ori-test"]))
                if hp == "200":
                    for ds_key, api_ds in COST_SOURCE.items():
                        if api_ds == dataset:
                            expected[f"params_{ds_key}_M"] = params
                            expected[f"flops_{ds_key}_M"] = flops
            prefix = "" if hp == "200" else "hp12_"
            for column, key in COLUMN_SOURCE.items():
                if key in finals:
                    expected[prefix + column] = float(np.mean(finals[key]))
            per_hp[hp] = results
        arch2infos[index] = {"full": per_hp["200"].state_dict(), "less": per_hp["12"].state_dict()}
        mini.expected[index] = expected
    torch.save({"meta_archs": META_ARCHS, "arch2infos": arch2infos, "evaluated_indexes": set(plans)}, mini.path)
    return mini
