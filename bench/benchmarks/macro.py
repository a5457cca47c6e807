"""NAS-Bench-Macro (Su et al., CVPR 2021; xiusu/NAS-Bench-Macro) behind the :class:`Benchmark` interface.

All 3^8 = 6,561 architectures of an 8-layer MobileNetV2-like chain, trained on CIFAR-10 with 3 seeds each.
Specs, networks and the mutation rule live in :mod:`search.spaces.macro` (REFERENCE F.1); this module reads
the released ground truth, ``nas-bench-macro_cifar10.json``:
``{spec: {test_acc: [3 seeds], mean_acc, std, params, flops}}``.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.benchmarks.base import ArchSpecError, BenchmarkError, GroundTruthTable
from search.spaces.macro import (
    DATASETS,
    VARIANT_OVERRIDES,
    MacroArch,
    MacroFactory,
    MacroMutationSpace,
    MacroSpecError,
    all_archs,
)

GT_RELATIVE = Path("nasbench-macro") / "nas-bench-macro_cifar10.json"
"""Where the released file lies under a data folder (``$ZENBENCH_DATA``)."""
ACCURACY_KEY = "cifar10_test"
_FIELDS = ("test_acc", "mean_acc", "params", "flops")


class MacroBenchmark:
    """NAS-Bench-Macro: 8-digit specs (``02012100``), CIFAR-10 only, ground truth = mean test accuracy of the
    3 seeds (``cifar10_test``, equal to the file's ``mean_acc``), the 3 seeds as trials for the noise ceiling,
    ``params_cifar10_M`` and ``flops_cifar10_M`` (multiply-adds at 32x32) in millions.

    Isomorphism: ``id`` in a stride-1 layer is the identity, so specs that differ only in where a stage's
    identities sit are one network (see :mod:`search.spaces.macro`): :meth:`isomorphism_id` is the benchmark's
    own canonical spec (identities last in each stage), 3,969 classes. The released file gives every spec a
    row, copying the canonical network's result to its equivalents, so the table keeps all 6,561 rows and
    equivalent specs carry identical accuracies and trials. No architecture is degenerate: every layer path
    keeps the input, so the output always depends on it.
    """

    name = "macro"
    title = "NAS-Bench-Macro"
    isomorphism = "identical"
    """The keys of one class differ only in where a stride-1 id layer sits in its stage
    (:data:`bench.benchmarks.base.ISOMORPHISM_KINDS`)."""
    datasets: tuple[str, ...] = tuple(DATASETS)
    networks: tuple[str, ...] = ("default",)

    def __repr__(self) -> str:
        return "MacroBenchmark()"

    def parse(self, spec: str | MacroArch) -> MacroArch:
        if isinstance(spec, MacroArch):
            return spec
        try:
            return MacroArch.from_string(spec)
        except MacroSpecError as exc:
            raise ArchSpecError(str(exc)) from None

    def format(self, arch: MacroArch) -> str:
        return arch.to_string()

    def isomorphism_id(self, arch: MacroArch) -> str:
        return arch.canonical

    def is_degenerate(self, arch: MacroArch) -> bool:
        return False

    def factory(self, arch: MacroArch | str, dataset: str = "cifar10", network: str = "default") -> MacroFactory:
        self._check(dataset, network)
        return MacroFactory(self.parse(arch), dataset)

    def ground_truth(self, source: str | os.PathLike | None = None) -> GroundTruthTable:
        """The table from ``source`` (the JSON file, a folder holding it, or a data folder with
        ``nasbench-macro/``), else from ``$ZENBENCH_DATA/nasbench-macro/nas-bench-macro_cifar10.json``."""
        path = _resolve(source)
        stat = path.stat()
        return _load(str(path), stat.st_mtime_ns, stat.st_size)

    def mutation_space(self, dataset: str = "cifar10") -> MacroMutationSpace:
        self._check(dataset)
        return MacroMutationSpace(dataset)

    def info(self, gt: GroundTruthTable) -> str:
        """``zenbench gt info``: counts, distinct networks, the optimum (its canonical spec first) and trials."""
        accuracy = gt.table[ACCURACY_KEY]
        best = accuracy.max()
        tied = sorted(accuracy.index[accuracy == best], key=lambda s: (self.isomorphism_id(self.parse(s)) != s, s))
        classes = {self.isomorphism_id(self.parse(s)) for s in gt.table.index}
        also = f" (same value: {', '.join(tied[1:])})" if len(tied) > 1 else ""
        trials = "none" if gt.trials is None else f"{len(gt.trials):,} trials"
        return "\n".join([
            f"NAS-Bench-Macro ground truth: {len(gt):,} architectures ({len(gt.evaluated()):,} evaluated)",
            f"source: {gt.source}",
            f"distinct networks (canonical specs; equivalent specs share one training run): {len(classes):,}",
            f"best mean CIFAR-10 test accuracy over the seeds: {best:.2f} at {tied[0]}{also}",
            f"per-seed CIFAR-10 results: {trials}",
        ])

    def describe(self) -> dict[str, Any]:
        return {"benchmark": self.name, "title": self.title, "datasets": list(self.datasets),
                "networks": list(self.networks), "variants": list(VARIANT_OVERRIDES)}

    def _check(self, dataset: str, network: str = "default") -> None:
        if dataset not in self.datasets:
            raise BenchmarkError(f"NAS-Bench-Macro has no dataset {dataset!r}; datasets: {', '.join(self.datasets)}")
        if network not in self.networks:
            raise BenchmarkError(f"NAS-Bench-Macro has no network {network!r}; networks: {', '.join(self.networks)}")


def _resolve(source: str | os.PathLike | None) -> Path:
    if source is None:
        root = os.environ.get("ZENBENCH_DATA")
        if not root:
            raise BenchmarkError(f"no NAS-Bench-Macro ground truth: set ZENBENCH_DATA to a folder holding "
                                 f"{GT_RELATIVE}, or pass the file's path")
        path = Path(root).expanduser() / GT_RELATIVE
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path = next((p for p in (path / GT_RELATIVE, path / GT_RELATIVE.name) if p.is_file()), path / GT_RELATIVE)
    if not path.is_file():
        raise BenchmarkError(f"{path}: no such file; expected NAS-Bench-Macro's {GT_RELATIVE.name} "
                             f"(xiusu/NAS-Bench-Macro, data/)")
    return path


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int) -> GroundTruthTable:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BenchmarkError(f"{path}: not a readable JSON file ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: expected a JSON object {{spec: entry}}, got {type(raw).__name__}")
    specs = [arch.to_string() for arch in all_archs()]
    missing = [s for s in specs if s not in raw]
    extra = sorted(set(raw) - set(specs))
    if missing or extra:
        raise BenchmarkError(f"{path}: expected the {len(specs):,} 8-digit specs as keys; "
                             f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unknown (e.g. {extra[:2]})")
    accuracies, params, flops = [], [], []
    for spec in specs:
        seeds, entry_params, entry_flops = _entry(path, spec, raw[spec])
        accuracies.append(seeds)
        params.append(entry_params)
        flops.append(entry_flops)
    index = pd.Index(specs, name="arch")
    table = pd.DataFrame({ACCURACY_KEY: [float(np.mean(a)) for a in accuracies],
                          "params_cifar10_M": np.asarray(params, float) / 1e6,
                          "flops_cifar10_M": np.asarray(flops, float) / 1e6}, index=index)
    trials = pd.DataFrame([(spec, trial, value, ACCURACY_KEY) for spec, seeds in zip(specs, accuracies, strict=True)
                           for trial, value in enumerate(seeds)], columns=["arch", "trial", "accuracy", "key"])
    return GroundTruthTable(table, {"cifar10": ACCURACY_KEY}, path, trials)


def _entry(path: str, spec: str, entry: Any) -> tuple[list[float], int, int]:
    """One entry's seed accuracies, params and FLOPs, checked (``mean_acc`` must be their mean)."""
    where = f"{path}: entry {spec}"
    if not isinstance(entry, dict) or any(k not in entry for k in _FIELDS):
        raise BenchmarkError(f"{where}: expected an object with {', '.join(_FIELDS)}")
    seeds = entry["test_acc"]
    if not isinstance(seeds, list) or not seeds or not all(_finite(v) for v in seeds):
        raise BenchmarkError(f"{where}: test_acc must be a non-empty list of accuracies, got {seeds!r}")
    if not _finite(entry["mean_acc"]) or not math.isclose(np.mean(seeds), entry["mean_acc"], abs_tol=1e-9):
        raise BenchmarkError(f"{where}: mean_acc {entry['mean_acc']!r} is not the mean of test_acc {seeds!r}")
    counts = entry["params"], entry["flops"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in counts):
        raise BenchmarkError(f"{where}: params and flops must be positive integers, got {counts!r}")
    return [float(v) for v in seeds], *counts


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
