"""The one benchmark interface: what the bench layer, the reports and the search ask of a NAS benchmark.

A benchmark (NAS-Bench-201, NAS-Bench-Macro, NAS-Bench-101, or a plug-in) knows its own architectures,
networks and ground truth and nothing about proxies. The generic layers (runner, store, statistics,
reports, search) talk to it only through :class:`Benchmark` and the plain data below, and key every
architecture by the benchmark's *spec string*: ``format(parse(text))``, one string per architecture of the
space (isomorphic architectures keep their own spec; :meth:`Benchmark.isomorphism_id` names the class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the protocol only names it: importing a benchmark's data layer loads no proxy code
    from proxies.base import NetworkFactory


class ArchSpecError(ValueError):
    """A malformed architecture spec: the one-line message names the spec and the fault."""


class BenchmarkError(ValueError):
    """A benchmark that cannot be found, loaded or answered (one-line message naming the input)."""


@dataclass(frozen=True)
class GroundTruthTable:
    """A benchmark's ground truth as plain data.

    ``table``: one row per architecture, indexed by spec string (index name ``arch``), in the benchmark's
    enumeration order; accuracy columns in percent named ``{dataset}_{split}`` (``cifar10_test``) or with a
    schedule prefix (``hp12_cifar10_valid``); ``params_{dataset}_M`` and ``flops_{dataset}_M`` in millions
    where the benchmark publishes them. A row whose accuracies are all NaN was not evaluated.
    ``default_keys``: the ground-truth column a correlation uses per dataset when none is asked for.
    ``trials``: per-trial accuracies for the noise ceiling (columns ``arch``, ``trial``, ``accuracy``,
    ``key``: the column they are trials of), or ``None`` where none are published.
    """

    table: pd.DataFrame
    default_keys: dict[str, str]
    source: str
    trials: pd.DataFrame | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def accuracy_keys(self) -> list[str]:
        return [c for c in self.table.columns
                if not (str(c).startswith("params_") or str(c).startswith("flops_")) and
                pd.api.types.is_numeric_dtype(self.table[c])]

    def evaluated(self) -> list[str]:
        """Spec strings of the architectures with at least one accuracy, in table order."""
        accuracies = self.table[self.accuracy_keys]
        return self.table.index[accuracies.notna().any(axis=1)].tolist()

    def key(self, dataset: str, key: str | None = None) -> str:
        """The accuracy column for ``dataset``: ``key`` if given (it must exist), else the default."""
        column = key if key is not None else self.default_keys.get(dataset)
        if column is None:
            raise BenchmarkError(f"no ground truth for dataset {dataset!r} in {self.source}; datasets: "
                                 f"{', '.join(self.default_keys)}")
        if column not in self.table.columns:
            raise BenchmarkError(f"ground-truth key {column!r} is not in {self.source}; keys: "
                                 f"{', '.join(self.accuracy_keys)}")
        return column

    def sample(self, n: int | None, seed: int) -> list[str]:
        """``n`` distinct evaluated specs drawn by ``numpy.random.default_rng(seed).permutation`` of the
        evaluated ones in table order (``None``: all, in table order); ``sample(k) == sample(n)[:k]``."""
        pool = self.evaluated()
        if n is None:
            return pool
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise BenchmarkError(f"sample size must be a non-negative integer or 'all', got {n!r}")
        if n > len(pool):
            raise BenchmarkError(f"cannot sample {n} architectures without replacement: {self.source} has "
                                 f"{len(pool)} evaluated")
        order = np.random.default_rng(seed).permutation(len(pool))[:n]
        return [pool[i] for i in order]

    def values(self, specs: Sequence[str], column: str) -> np.ndarray:
        """``column`` for each spec (NaN where the table lacks the architecture or the number)."""
        return self.table[column].reindex(list(specs)).to_numpy(float)


@dataclass(frozen=True)
class PublishedScores:
    """Per-architecture proxy scores that a source published for one dataset of a benchmark, as plain data.

    ``table``: indexed by spec string (index name ``arch``), one column per proxy under zenbench's proxy
    name (``jacob_cov``, not NASLib's ``jacov``), NaN where the source has no finite score. ``citation`` and
    ``protocol`` say who computed them and how (batch, network, data), for the report's note.
    """

    table: pd.DataFrame
    citation: str
    protocol: str


ISOMORPHISM_KINDS: dict[str, str] = {
    "identical": "the members of a class build the same network, up to the order of its layers or vertices "
                 "(NAS-Bench-Macro, NAS-Bench-101's pruned cells): every proxy's score may be copied",
    "functional": "the members compute the same function, but their networks may differ off the input-output "
                  "paths (NAS-Bench-201's cells with dead edges): only proxies declared output_paths_only may be "
                  "copied; the others are scored on every member",
}
"""Values of a benchmark's optional ``isomorphism`` attribute (absent: ``functional``): what the members of one
:func:`dedupe_class` share."""


def dedupe_class(benchmark: Any, arch: Any) -> str:
    """The class of ``arch`` that ``--dedupe`` scores once: the benchmark's ``dedupe_id`` where it has one,
    else its ``isomorphism_id``."""
    dedupe_id = getattr(benchmark, "dedupe_id", None)
    return str(dedupe_id(arch) if dedupe_id is not None else benchmark.isomorphism_id(arch))


def copies_exact(benchmark: Any, proxy: Any) -> bool:
    """May ``--dedupe`` copy ``proxy``'s score between members of one of ``benchmark``'s isomorphism classes?
    Yes where the members build the same network, or where the proxy reads only what reaches the output
    (``proxy.output_paths_only``); a copy is then exact in distribution (:data:`bench.store.DEDUPE_NOTE`)."""
    kind = getattr(benchmark, "isomorphism", "functional")
    if kind not in ISOMORPHISM_KINDS:
        raise BenchmarkError(f"benchmark {getattr(benchmark, 'name', benchmark)!r} declares isomorphism {kind!r}; "
                             f"expected one of {', '.join(ISOMORPHISM_KINDS)}")
    return kind == "identical" or bool(getattr(proxy, "output_paths_only", False))


def arch_codes(benchmark: Any) -> bool:
    """Does ``benchmark`` key its score tables by a compact code (its optional ``arch_code``/``from_arch_code``)?"""
    return callable(getattr(benchmark, "arch_code", None)) and callable(getattr(benchmark, "from_arch_code", None))


def encode_spec(benchmark: Any, spec: str) -> str:
    """The key a score table writes for ``spec``: the benchmark's ``arch_code`` where it has one, else the spec."""
    return benchmark.arch_code(benchmark.parse(spec)) if arch_codes(benchmark) else spec


def decode_spec(benchmark: Any, code: str) -> str:
    """The spec string of a score-table key (:func:`encode_spec` inverted); a bad code: :class:`ArchSpecError`."""
    return benchmark.format(benchmark.from_arch_code(code)) if arch_codes(benchmark) else code


@runtime_checkable
class Benchmark(Protocol):
    """A NAS benchmark behind one interface (registry: :mod:`bench.benchmarks`).

    Architectures are the benchmark's own objects; every boundary the generic layers see is a spec
    string. ``factory(arch, dataset)`` returns a :class:`proxies.NetworkFactory`; a factory builds named
    *variants* in its own terms through ``factory(variant=NAME)`` (see :data:`proxies.base.VARIANTS`) and
    raises :class:`proxies.base.VariantUnavailable` for one it does not have.

    Optional: ``info(gt) -> str``, the text ``zenbench gt info`` prints (default: a generic summary of the
    :class:`GroundTruthTable`); ``published_scores(dataset) -> PublishedScores | None``, per-architecture
    scores some source published (the report sets ours beside them, Spearman per proxy). Random search
    draws from ``ground_truth().evaluated()``, so every random pick has an accuracy; the EA draws from
    :meth:`mutation_space`.
    """

    name: str
    """Registry name, e.g. ``nb201`` (``--benchmark``)."""
    title: str
    """Human name for reports, e.g. ``NAS-Bench-201``."""
    datasets: tuple[str, ...]
    """Datasets it has networks (and usually ground truth) for; the first is the default."""
    networks: tuple[str, ...]
    """Network options of :meth:`factory` (``network=``); the first, ``"default"``, is the benchmark's own
    trained network. Recorded with every stored score."""

    def parse(self, spec: str) -> Any:
        """Strict parse; :class:`ArchSpecError` naming the spec and the fault."""

    def format(self, arch: Any) -> str:
        """The spec string of ``arch``: ``format(parse(s)) == s`` for a spec in normal form."""

    def isomorphism_id(self, arch: Any) -> str:
        """One string per isomorphism class (NB201: the canonical cell, NB101: the graph hash); the spec
        string itself where the space has no isomorphism."""

    # Optional: ``arch_code(arch) -> str`` and ``from_arch_code(code) -> arch``, a short code derived from the
    # architecture alone (NB201: its six op indices) that score tables key rows by instead of the spec string
    # (:func:`encode_spec`); ``from_arch_code`` raises :class:`ArchSpecError` for a malformed code.

    # Optional: ``dedupe_id(arch) -> str``, the classes ``--dedupe`` scores once (default: isomorphism_id; a
    # benchmark whose isomorphic architectures can build different networks splits them), and ``isomorphism``,
    # what the members of one such class share (:data:`ISOMORPHISM_KINDS`; default ``functional``, the safe
    # reading), which decides whose scores ``--dedupe`` may copy (:func:`copies_exact`).

    def is_degenerate(self, arch: Any) -> bool:
        """True for an architecture whose output does not depend on its input (e.g. a disconnected cell)."""

    def factory(self, arch: Any, dataset: str, network: str = "default") -> NetworkFactory:
        """A fresh-network factory for ``arch`` on ``dataset``; ``network`` picks one of :attr:`networks`
        (e.g. NB201's ``naslib``: NASLib's BN choices). An unknown dataset or network: :class:`BenchmarkError`."""

    def ground_truth(self, source: str | None = None) -> GroundTruthTable:
        """The ground-truth table; ``source`` overrides the lookup (a file or a data folder)."""

    def mutation_space(self, dataset: str) -> Any | None:
        """A :class:`search.evolution.SearchSpace` over this benchmark (``None``: not searchable)."""
