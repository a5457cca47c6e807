"""NAS-Bench-101 (Ying et al., ICML 2019) behind the :class:`~bench.benchmarks.base.Benchmark` interface.

Cells, spec strings, the graph hash, networks and the mutation rule live in :mod:`search.spaces.nb101`
(REFERENCE F.2); this module reads the ground truth, from one of two sources:

- the 500-cell sample ``naslib_zc_nasbench101.json`` (automl/NASLib, the default, under
  ``$ZENBENCH_DATA/nb101/``): ``{"nasbench101": {"cifar10": {key: entry}}}``, ``key`` the text of a tuple of
  the 49 entries of the (unpruned) 7x7 matrix, row by row, then 7 op codes in NASLib's encoding
  (``naslib/search_spaces/nasbench101/conversions.py``: ``all_ops = [input, output, maxpool3x3,
  conv1x1-bn-relu, conv3x3-bn-relu]``, so 2 maxpool3x3, 3 conv1x1, 4 conv3x3; our parameter count matches
  the file's ``params`` for all 500 cells only with this reading). Columns: ``cifar10_valid`` (NASLib's
  ``val_accuracy``: one 108-epoch validation accuracy, %), ``params_cifar10_M`` and ``flops_cifar10_M``
  (NASLib's counts, millions). No trials.
- the official ``nasbench_only108.tfrecord`` (or ``nasbench_full.tfrecord``), read by :mod:`bench.tfrecord`
  without TensorFlow: one row per cell in file order, indexed by the spec of the stored (pruned) matrix;
  ``cifar10_valid`` and ``cifar10_test`` the means over the 108-epoch repeats (3 per cell) of the final
  validation and test accuracy (%), ``params_cifar10_M`` the file's ``trainable_parameters``; the repeats
  are the trials of both columns. Records of other epoch budgets (the full file's 4, 12, 36) are skipped.

The sample also holds NASLib's own scores of 11 proxies per cell: :meth:`Nb101Benchmark.published_scores`
gives them under zenbench's proxy names, and reports set ours beside them.

Default key: ``cifar10_valid`` (the accuracy both sources have). ``isomorphism_id``: NB101's graph hash of the
pruned cell (the official file's ``module_hash``); degenerate: no input-to-output path.
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

from bench.benchmarks.base import ArchSpecError, BenchmarkError, GroundTruthTable, PublishedScores
from bench.tfrecord import TFRecordError, read_nb101
from search.spaces.nb101 import DATASETS, CellSpecError, Nb101Cell, Nb101Factory, Nb101MutationSpace

SAMPLE_RELATIVE = Path("nb101") / "naslib_zc_nasbench101.json"
"""Where NASLib's 500-cell sample lies under a data folder (``$ZENBENCH_DATA``)."""
OFFICIAL_SUFFIX = ".tfrecord"
EPOCHS = 108
VALID_KEY = "cifar10_valid"
TEST_KEY = "cifar10_test"
NASLIB_OPS: dict[int, str] = {0: "input", 1: "output", 2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}
"""NASLib's NB101 op codes (its ``all_ops`` list), as its sample's keys use them."""
_NASLIB_FIELDS = ("val_accuracy", "params", "flops")
NASLIB_PROXY_NAMES: dict[str, str] = {"jacov": "jacob_cov", "nwot": "naswot"}
"""NASLib's proxy names that differ from zenbench's; the others (synflow, snip, ...) are the same."""
NASLIB_NONFINITE = -1e8
"""What NASLib writes for a NaN or infinite score (read back as NaN)."""
NASLIB_CITATION = ("NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks), "
                   "automl/NASLib zc_nasbench101.json")
NASLIB_PROTOCOL = ("NASLib's implementations on its NB101 network, one batch of CIFAR-10 training images (its "
                   "zero-cost configs set batch 32, its datasheet says 64); synflow stored as log(synflow), which "
                   "leaves ranks unchanged; params and flops counted by NASLib")


class Nb101Benchmark:
    """NAS-Bench-101: cells of up to 7 vertices and 9 edges, CIFAR-10 only (see the module docstring)."""

    name = "nb101"
    title = "NAS-Bench-101"
    isomorphism = "identical"
    """Cells of one :meth:`dedupe_id` build the same pruned network
    (:data:`bench.benchmarks.base.ISOMORPHISM_KINDS`)."""
    datasets: tuple[str, ...] = tuple(DATASETS)
    networks: tuple[str, ...] = ("default",)

    def __repr__(self) -> str:
        return "Nb101Benchmark()"

    def parse(self, spec: str | Nb101Cell) -> Nb101Cell:
        if isinstance(spec, Nb101Cell):
            return spec
        try:
            return Nb101Cell.from_string(spec)
        except CellSpecError as exc:
            raise ArchSpecError(str(exc)) from None

    def format(self, arch: Nb101Cell) -> str:
        return arch.to_string()

    def isomorphism_id(self, arch: Nb101Cell) -> str:
        return arch.graph_hash

    def dedupe_id(self, arch: Nb101Cell) -> str:
        """``--dedupe`` classes: :attr:`Nb101Cell.network_hash`, finer than the graph hash where isomorphic cells
        split their channels differently, so that one class builds one network (``isomorphism = "identical"``)."""
        return arch.network_hash

    def is_degenerate(self, arch: Nb101Cell) -> bool:
        return not arch.is_connected

    def factory(self, arch: Nb101Cell | str, dataset: str = "cifar10", network: str = "default") -> Nb101Factory:
        self._check(dataset, network)
        return Nb101Factory(self.parse(arch), dataset)

    def mutation_space(self, dataset: str = "cifar10") -> Nb101MutationSpace:
        self._check(dataset)
        return Nb101MutationSpace(dataset)

    def ground_truth(self, source: str | os.PathLike | None = None) -> GroundTruthTable:
        """The table from ``source``: an official ``.tfrecord`` file, NASLib's sample JSON, or a folder
        holding the sample (directly or as ``nb101/``); default ``$ZENBENCH_DATA/nb101/naslib_zc_nasbench101.json``.
        Loaded once per file (and again when it changes)."""
        path = _resolve(source)
        stat = path.stat()
        loader = _load_official if path.suffix == OFFICIAL_SUFFIX else _load_sample
        return loader(str(path), stat.st_mtime_ns, stat.st_size)

    def published_scores(self, dataset: str = "cifar10", source: str | os.PathLike | None = None) -> PublishedScores:
        """NASLib's scores of the sample's cells (every field of an entry but ``val_accuracy``), one column
        per proxy under zenbench's name; ``source`` as for :meth:`ground_truth` (the official file has none:
        :class:`BenchmarkError`)."""
        self._check(dataset)
        path = _resolve(source)
        if path.suffix == OFFICIAL_SUFFIX:
            raise BenchmarkError(f"{path}: the official NAS-Bench-101 file holds no proxy scores; NASLib's "
                                 f"{SAMPLE_RELATIVE.name} does")
        stat = path.stat()
        return _load_naslib_scores(str(path), stat.st_mtime_ns, stat.st_size)

    def info(self, gt: GroundTruthTable) -> str:
        """``zenbench gt info``: cells, distinct networks (graph hashes), the best cell of each accuracy column."""
        # the official file has one row per graph hash; hashing its 423,624 specs again would take a minute
        distinct = len(gt) if gt.source.endswith(OFFICIAL_SUFFIX) else \
            len({self.parse(spec).graph_hash for spec in gt.table.index})
        lines = [f"NAS-Bench-101 ground truth: {len(gt):,} cells ({len(gt.evaluated()):,} evaluated)",
                 f"source: {gt.source}",
                 f"distinct networks (graph hashes): {distinct:,}",
                 f"best cell per accuracy column (%; default key {VALID_KEY}):"]
        for column in gt.accuracy_keys:
            best = gt.table[column].idxmax()
            lines.append(f"  {column:<14} {gt.table.at[best, column]:.2f}  {best}  "
                         f"(hash {self.parse(best).graph_hash})")
        lines.append("per-repeat results: " + ("none" if gt.trials is None else
                                               f"{gt.trials['trial'].nunique()} repeats of {len(gt):,} cells"))
        return "\n".join(lines)

    def describe(self) -> dict[str, Any]:
        return {"benchmark": self.name, "title": self.title, "datasets": list(self.datasets),
                "networks": list(self.networks)}

    def _check(self, dataset: str, network: str = "default") -> None:
        if dataset not in self.datasets:
            raise BenchmarkError(f"NAS-Bench-101 has no dataset {dataset!r}; datasets: {', '.join(self.datasets)}")
        if network not in self.networks:
            raise BenchmarkError(f"NAS-Bench-101 has no network {network!r}; networks: {', '.join(self.networks)}")


def _resolve(source: str | os.PathLike | None) -> Path:
    if source is None:
        root = os.environ.get("ZENBENCH_DATA")
        if not root:
            raise BenchmarkError(f"no NAS-Bench-101 ground truth: set ZENBENCH_DATA to a folder holding "
                                 f"{SAMPLE_RELATIVE}, or pass the sample's or the official nasbench_only108.tfrecord's "
                                 f"path")
        path = Path(root).expanduser() / SAMPLE_RELATIVE
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path = next((p for p in (path / SAMPLE_RELATIVE, path / SAMPLE_RELATIVE.name) if p.is_file()),
                        path / SAMPLE_RELATIVE)
    if not path.is_file():
        raise BenchmarkError(f"{path}: no such file; expected NASLib's {SAMPLE_RELATIVE.name} or the official "
                             f"nasbench_only108.tfrecord")
    return path


# ----------------------------------------------------------------------------- NASLib's sample


@lru_cache(maxsize=4)
def _sample_entries(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The ``{key: entry}`` mapping of NASLib's sample file, read once per file version."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BenchmarkError(f"{path}: not a readable JSON file ({str(exc).splitlines()[0]})") from None
    section = raw.get("nasbench101") if isinstance(raw, dict) else None
    entries = section.get("cifar10") if isinstance(section, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise BenchmarkError(f'{path}: expected NASLib\'s {{"nasbench101": {{"cifar10": {{key: entry}}}}}}')
    return entries


@lru_cache(maxsize=4)
def _load_sample(path: str, mtime_ns: int, size: int) -> GroundTruthTable:
    entries = _sample_entries(path, mtime_ns, size)
    rows = {}
    for key, entry in entries.items():
        cell = _naslib_cell(path, key)
        if not isinstance(entry, dict) or not all(_finite(entry.get(f)) for f in _NASLIB_FIELDS):
            raise BenchmarkError(f"{path}: entry {key}: expected finite numbers {', '.join(_NASLIB_FIELDS)}")
        rows[cell.to_string()] = (entry["val_accuracy"], entry["params"], entry["flops"])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[VALID_KEY, "params_cifar10_M", "flops_cifar10_M"])
    table.index.name = "arch"
    return GroundTruthTable(table.astype(float), {"cifar10": VALID_KEY}, path)


@lru_cache(maxsize=4)
def _load_naslib_scores(path: str, mtime_ns: int, size: int) -> PublishedScores:
    rows = {}
    for key, entry in _sample_entries(path, mtime_ns, size).items():
        if not isinstance(entry, dict):
            raise BenchmarkError(f"{path}: entry {key}: expected a mapping of proxy names to scores")
        rows[_naslib_cell(path, key).to_string()] = {
            NASLIB_PROXY_NAMES.get(name, name): float(value) if _finite(value) and value > NASLIB_NONFINITE
            else math.nan
            for name, value in entry.items() if name != "val_accuracy"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "arch"
    return PublishedScores(table, NASLIB_CITATION, NASLIB_PROTOCOL)


def _naslib_cell(path: str, key: str) -> Nb101Cell:
    """The cell of one key of NASLib's sample: ``"(m00, m01, ..., m66, op0, ..., op6)"``."""
    text = key.strip()
    parts = text[1:-1].split(",") if text.startswith("(") and text.endswith(")") else []
    if len(parts) != 56 or not all(p.strip().isdigit() for p in parts):
        raise BenchmarkError(f"{path}: key {key!r}: expected a tuple of 49 matrix entries and 7 op codes")
    values = [int(p) for p in parts]
    if any(v not in NASLIB_OPS for v in values[49:]):
        raise BenchmarkError(f"{path}: key {key!r}: op codes must be in {sorted(NASLIB_OPS)}")
    try:
        return Nb101Cell.from_matrix(np.array(values[:49]).reshape(7, 7), [NASLIB_OPS[v] for v in values[49:]])
    except CellSpecError as exc:
        raise BenchmarkError(f"{path}: key {key!r}: {exc}") from None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------- the official file


@lru_cache(maxsize=2)
def _load_official(path: str, mtime_ns: int, size: int) -> GroundTruthTable:
    specs: dict[str, str] = {}  # module hash -> spec, in file order
    params: dict[str, int] = {}
    runs: dict[str, list[tuple[float, float]]] = {}
    try:
        for record in read_nb101(path):
            if record.epochs != EPOCHS:
                continue
            if record.module_hash not in specs:
                try:
                    specs[record.module_hash] = Nb101Cell(record.matrix, record.ops).to_string()
                except CellSpecError as exc:
                    raise BenchmarkError(f"{path}: cell {record.module_hash}: {exc}") from None
                params[record.module_hash] = record.trainable_parameters
                runs[record.module_hash] = []
            runs[record.module_hash].append((100 * record.final.validation_accuracy, 100 * record.final.test_accuracy))
    except TFRecordError as exc:
        raise BenchmarkError(str(exc)) from None
    if not specs:
        raise BenchmarkError(f"{path}: no {EPOCHS}-epoch NAS-Bench-101 records")
    index = pd.Index(list(specs.values()), name="arch")
    counts = np.array([len(runs[h]) for h in specs])
    accuracies = np.array([run for h in specs for run in runs[h]])  # (runs, 2): valid, test in file order
    cell_of_run = np.repeat(np.arange(len(specs)), counts)
    means = np.stack([np.bincount(cell_of_run, accuracies[:, k]) / counts for k in (0, 1)], axis=1)
    table = pd.DataFrame({VALID_KEY: means[:, 0], TEST_KEY: means[:, 1],
                          "params_cifar10_M": np.array([params[h] for h in specs], float) / 1e6}, index=index)
    trial = np.arange(len(cell_of_run)) - np.repeat(np.cumsum(counts) - counts, counts)
    trials = pd.concat([pd.DataFrame({"arch": index[cell_of_run], "trial": trial, "accuracy": accuracies[:, k],
                                      "key": key}) for k, key in enumerate((VALID_KEY, TEST_KEY))],
                       ignore_index=True)
    return GroundTruthTable(table, {"cifar10": VALID_KEY}, path, trials)
