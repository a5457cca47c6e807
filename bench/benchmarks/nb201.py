"""NAS-Bench-201 (Dong & Yang, ICLR 2020) behind the :class:`~bench.benchmarks.base.Benchmark` interface.

A thin wrapper over the space (:mod:`search.spaces.nb201`), its ground truth (:mod:`bench.ground_truth`)
and its mutation rule (:mod:`search.spaces.nb201_mutation`):

- spec string: the NB201 architecture string (``|nor_conv_3x3~0|+|...|``); :meth:`Nb201Benchmark.parse`
  also takes an NB201 index (``"123"``, looked up in the ground truth this instance loaded last, else the
  default lookup) as a convenience, but everything downstream keys by the string; score tables key a cell
  by its code, the six op indices (``arch_code``);
- ``isomorphism_id``: the canonical cell (NB201's ``to_unique_str``; 6,466 classes); degenerate: a cell
  whose input never reaches its output;
- ground truth: the compact table or an official file, indexed by architecture string with the columns of
  ``nb201.csv`` (``cifar10_test`` ... ``hp12_*``, ``params_*_M``, ``flops_*_M``); default key per dataset
  ``{dataset}_test`` (200 epochs); trials: ``nb201_cifar10_trials.csv`` (key ``cifar10_test``);
- networks: ``default`` (the trained xautodl network) or ``naslib`` (NASLib's BN choices, to compare
  with NASLib's published scores); variants ``tenas-ntk`` / ``tenas-lr`` (TE-NAS's thin networks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from bench.benchmarks.base import ArchSpecError, BenchmarkError, GroundTruthTable
from bench.ground_truth import DATASETS as GT_DATASETS
from bench.ground_truth import (
    SPLITS,
    GroundTruth,
    GroundTruthError,
    GroundTruthSummary,
    column_name,
    default_source,
)
from search.spaces.nb201 import DATASETS, NETWORKS, ArchStringError, Nb201Arch, Nb201Factory
from search.spaces.nb201_mutation import Nb201MutationSpace

TRIALS_KEY = "cifar10_test"
"""The ground-truth column the per-trial table (NB201 v1.1 per-run CIFAR-10 ori-test) holds trials of."""


def format_summary(summary: GroundTruthSummary) -> str:
    """The text of ``zenbench gt info --benchmark nb201``."""
    lines = [
        f"NAS-Bench-201 ground truth: {summary.num_archs:,} architectures "
        f"({summary.num_evaluated:,} evaluated)",
        f"source: {summary.source}",
        f"disconnected (input never reaches output): {summary.num_disconnected:,}",
        f"distinct networks (canonical classes): {summary.num_canonical:,}",
        "optima (hp=200, mean over seeds; accuracy % and NB201 index):",
        f"  {'dataset':<12}" + "".join(f"{split:>20}" for split in SPLITS),
    ]
    for ds in GT_DATASETS:
        cells = []
        for split in SPLITS:
            best = summary.optima.get(column_name(ds, split))
            cells.append("n/a" if best is None else f"{best[1]:.2f} (#{best[0]})")
        lines.append(f"  {ds:<12}" + "".join(f"{cell:>20}" for cell in cells))
    lines.append("per-trial CIFAR-10 results: " + ("none" if summary.num_trials is None
                                                  else f"{summary.num_trials:,} trials"))
    return "\n".join(lines)


class Nb201Benchmark:
    """NAS-Bench-201: 15,625 cells, CIFAR-10, CIFAR-100 and ImageNet16-120 (see the module docstring)."""

    name = "nb201"
    title = "NAS-Bench-201"
    isomorphism = "functional"
    """Cells of one class differ in their dead edges (ops off every input-output path), which hold parameters, FLOPs
    and activations (:data:`bench.benchmarks.base.ISOMORPHISM_KINDS`)."""
    datasets: tuple[str, ...] = tuple(DATASETS)
    networks: tuple[str, ...] = tuple(NETWORKS)

    def __init__(self) -> None:
        self._loaded: dict[str, GroundTruth] = {}
        self._last: GroundTruth | None = None

    def __repr__(self) -> str:
        return "Nb201Benchmark()"

    # ------------------------------------------------------------------ architectures

    def parse(self, spec: str | Nb201Arch) -> Nb201Arch:
        """An architecture string, or an NB201 index (digits) resolved through the ground truth."""
        if isinstance(spec, Nb201Arch):
            return spec
        if not isinstance(spec, str):
            raise ArchSpecError(f"NB201 architecture {spec!r}: expected an architecture string, got "
                                f"{type(spec).__name__}")
        text = spec.strip()
        if text.lstrip("+-").isdigit():  # an index, possibly out of range ("-1"): the range error, not a bad string
            try:
                return (self._last or self.legacy()).arch(int(text))
            except GroundTruthError as exc:
                raise ArchSpecError(str(exc)) from None
        try:
            return Nb201Arch.from_string(text)
        except ArchStringError as exc:
            raise ArchSpecError(str(exc)) from None

    def format(self, arch: Nb201Arch) -> str:
        return arch.to_string()

    def arch_code(self, arch: Nb201Arch) -> str:
        """The six op indices in string order (none=0, skip=1, 1x1=2, 3x3=3, pool=4), e.g. ``"130234"``: what
        score tables key a cell by (15,625 codes whose sort order is :func:`search.spaces.nb201.all_archs`)."""
        return "".join(str(i) for i in arch.to_indices())

    def from_arch_code(self, code: str) -> Nb201Arch:
        if not (isinstance(code, str) and len(code) == 6 and all(c in "01234" for c in code)):
            raise ArchSpecError(f"NB201 architecture code {code!r}: expected six op indices, digits 0-4")
        return Nb201Arch.from_indices([int(c) for c in code])

    def isomorphism_id(self, arch: Nb201Arch) -> str:
        return arch.canonical

    def is_degenerate(self, arch: Nb201Arch) -> bool:
        return not arch.is_connected

    def factory(self, arch: Nb201Arch, dataset: str, network: str = "default") -> Nb201Factory:
        if dataset not in DATASETS:
            raise BenchmarkError(f"NAS-Bench-201 has no dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
        if network not in NETWORKS:
            raise BenchmarkError(f"NAS-Bench-201 has no network {network!r}; expected one of {', '.join(NETWORKS)}")
        return Nb201Factory(self.parse(arch), dataset, network)

    def mutation_space(self, dataset: str) -> Nb201MutationSpace:
        return Nb201MutationSpace(dataset)

    # ------------------------------------------------------------------ ground truth

    def legacy(self, source: str | os.PathLike | GroundTruth | None = None) -> GroundTruth:
        """The NB201 :class:`~bench.ground_truth.GroundTruth` (indexed by NB201 index) of ``source``
        (``None``: the default lookup, :func:`bench.ground_truth.default_source`), loaded once per file."""
        if isinstance(source, GroundTruth):
            self._loaded[source.source] = self._last = source
            return source
        try:
            path = Path(source) if source is not None else default_source()
            key = str(path.absolute())
            if key not in self._loaded:
                gt = GroundTruth.load(path, progress=False)
                self._loaded[key] = self._loaded.setdefault(gt.source, gt)
        except GroundTruthError as exc:
            raise BenchmarkError(str(exc)) from None
        self._last = self._loaded[key]
        return self._last

    def ground_truth(self, source: str | os.PathLike | GroundTruth | None = None) -> GroundTruthTable:
        """The ground truth indexed by architecture string (see the module docstring). Loaded once per
        file; the file may change between processes, not within one."""
        gt = self.legacy(source)
        table = gt.table.set_index("arch_str")
        table.index.name = "arch"
        trials = gt.trials()
        if trials is not None:
            arch_of = gt.table["arch_str"]
            trials = pd.DataFrame({"arch": arch_of.reindex(trials["index"]).to_numpy(),
                                   "trial": trials["trial"].to_numpy(),
                                   "accuracy": trials.iloc[:, 2].to_numpy(float), "key": TRIALS_KEY})
        return GroundTruthTable(table, {ds: f"{ds}_test" for ds in DATASETS}, gt.source, trials)

    def info(self, gt: GroundTruthTable) -> str:
        """``zenbench gt info``: counts, canonical classes and optima with their NB201 index."""
        return format_summary(self._loaded.get(gt.source, self.legacy()).summary())

    def describe(self) -> dict[str, Any]:
        return {"benchmark": self.name, "title": self.title, "datasets": list(self.datasets),
                "networks": dict(NETWORKS)}
