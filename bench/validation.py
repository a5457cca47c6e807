"""End-to-end validation of proxies (``zenbench validate``): the Zen-NAS search with each proxy as fitness, then
the found network trained with one recipe, several seeds, and a report beside ZenNAS's published table.

ZenNAS's README compares the same EA with each proxy (ResNet-like space, params ≤ 1M, 1,440 epochs; REFERENCE
A.4): :data:`PUBLISHED_TOP1`. Every stage is resumable: a search continues from its checkpoint
(``OUT/search/PROXY/``), a training from its last epoch (``OUT/train/PROXY-seedS/``), and a finished stage is
read back, not rerun. ``random`` is random search with the same number of evaluations: the same EA whose
fitness is a uniform number drawn from the candidate's text and the search seed (SHA-256), so the found
structure is a uniform draw among the structures the EA proposed, all within the budgets. Plain data out
(:class:`ValidationRow` per proxy and seed); the CLI only parses and prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.cli_options import OptionError, make_proxies, parse_proxy_option, parse_proxy_options
from bench.runner import resolve_proxies
from bench.searching import make_zennet_search, resolve_preset
from proxies import Proxy
from search.evolution import Budgets, CallableFitness
from search.spaces.zennet import Structure

PUBLISHED_TOP1: dict[str, tuple[float, float]] = {
    "zen": (96.2, 80.1), "tenas": (96.1, 77.2), "naswot": (96.0, 77.5), "synflow": (95.1, 75.9),
    "random": (93.5, 71.1), "flops": (93.1, 64.7), "grad_norm": (92.8, 65.4),
}
"""ZenNAS README: top-1 (%) on CIFAR-10 / CIFAR-100 of the network the EA found with each proxy (params ≤ 1M,
1,440 epochs)."""
RANDOM = "random"
ZENNAS_OPTIONS: tuple[str, ...] = ("tenas.network=full", "tenas.parts=ntk", "tenas.batch_size=64")
"""Proxy options (``--proxy-option`` words) under which ZenNAS's EA ran its baselines, the defaults of
:attr:`ValidationSetup.proxy_options`: ZenNAS's TE-NAS (``compute_te_nas_score``) is −κ of the NTK of the
network as built on one batch of 64, without linear regions (REFERENCE B.9); TE-NAS's thin networks exist
for NB201 only."""


def random_fitness(seed: int) -> CallableFitness[Structure]:
    """Random search's fitness: a uniform number in [0, 1) from SHA-256 of the seed and the candidate's text
    (stateless, so a resumed search draws what the uninterrupted one would)."""

    def draw(candidate: Structure) -> float:
        digest = hashlib.sha256(f"{seed}:{candidate}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64

    return CallableFitness(draw, f"random (sha256 of seed {seed} and the structure)")


@dataclass(frozen=True)
class ValidationSetup:
    """One end-to-end study. Defaults are this machine's scale (2 CPU cores, about four hours for eight
    proxies); ZenNAS's released scripts run params ≤ 1M, 480,000 EA iterations, population 512, 1,440 epochs."""

    proxies: tuple[str, ...] = ("zen", "synflow", "naswot", "tenas", "grad_norm", "flops", "params", RANDOM)
    preset: str = "cifar-params1M"
    max_params: float | None = 0.2e6
    """Overrides the preset's parameter budget (None: the preset's)."""
    iterations: int = 2000
    population: int = 64
    epochs: int = 10
    seeds: tuple[int, ...] = (0, 1)
    """Training seeds (the search runs once per proxy, with ``search_seed``)."""
    search_seed: int = 0
    dataset: str = "cifar10"
    batch_size: int = 64
    autoaugment: bool = True
    device: str | None = None
    threads: int | None = None
    data_source: str = "auto"
    data_root: str | None = None
    proxy_options: tuple[str, ...] = ZENNAS_OPTIONS
    """``PROXY.KEY=VALUE`` words, one value per key; a word for a proxy not in ``proxies`` is ignored."""

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} {value!r}: expected a positive integer")
        if not self.proxies or not self.seeds:
            raise ValueError("validate needs at least one proxy and one seed")
        for proxy in self.proxies:
            self.fitness_proxy(proxy)  # unknown proxies and bad options fail here, before any search

    def fitness_proxy(self, proxy: str) -> Proxy:
        """The proxy instance ``proxy``'s search scores with (``params`` for ``random``, whose fitness is
        replaced), with its :attr:`proxy_options`."""
        if proxy == RANDOM:
            return resolve_proxies(["params"])[0]
        sets = parse_proxy_options(self.proxy_options).get(proxy, [{}])
        if len(sets) > 1:
            raise OptionError(f"validate: --proxy-option gives {proxy!r} several values for one key; a search "
                              "scores each proxy once")
        return make_proxies([proxy], {proxy: sets})[0]


def with_options(defaults: Sequence[str], given: Sequence[str]) -> tuple[str, ...]:
    """``PROXY.KEY=VALUE`` words: ``given`` after the ``defaults`` whose proxy and key it does not name."""
    named = {parse_proxy_option(word)[:2] for word in given}
    return tuple(w for w in defaults if parse_proxy_option(w)[:2] not in named) + tuple(given)


@dataclass(frozen=True)
class ValidationRow:
    proxy: str
    seed: int
    structure: str
    params_m: float
    flops_m: float
    search_seconds: float
    train_seconds: float
    images_per_s: float
    test_acc: float | None
    epochs_done: int
    log: tuple[dict[str, float], ...]


def _search(setup: ValidationSetup, proxy: str, out: Path, progress: bool) -> tuple[Structure, float, Any]:
    """The best structure of ``proxy``'s search (run, continued, or read back) and its search seconds."""
    preset = resolve_preset(None, setup.preset)
    budgets = Budgets(max_layers=preset.max_layers, max_params=setup.max_params or preset.max_params,
                      max_flops=preset.max_flops)
    search = make_zennet_search(preset, setup.fitness_proxy(proxy), iterations=setup.iterations,
                                population=setup.population,
                                seed=setup.search_seed, device=setup.device, budgets=budgets,
                                num_classes=100 if setup.dataset == "cifar100" else 10,
                                data_source=setup.data_source, data_root=setup.data_root, progress=progress)
    if proxy == RANDOM:
        search.fitness = random_fitness(setup.search_seed)
    timing = out / "seconds.json"
    start = time.perf_counter()
    result = search.run(out, resume=(out / "checkpoint.json").exists())
    spent = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0
    spent += time.perf_counter() - start
    timing.write_text(json.dumps({"seconds": spent}))
    if not result.best:
        raise ValueError(f"validate: the search with {proxy!r} found no structure within the budgets in "
                         f"{result.iterations} iterations; raise --iterations or --max-params")
    if not math.isfinite(result.best_score):
        error = getattr(search.fitness, "last_error", None)
        raise ValueError(f"validate: the search with {proxy!r} scored no candidate finite in {result.iterations} "
                         f"iterations (every score failed or was -inf{': ' + error if error else ''}); its "
                         f"checkpoint is kept in {out}")
    return Structure.parse(result.best), spent, search.space


def run_validation(setup: ValidationSetup, out: str | os.PathLike, progress: bool = True) -> list[ValidationRow]:
    """Search with each proxy, train each found structure with each seed, under ``out``; returns one row per
    (proxy, seed). Interrupt at any point and call again with the same arguments to continue."""
    from bench.api import prepare_training
    from search.train import CHECKPOINT_NAME, TrainConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "setup.json").write_text(json.dumps(dataclasses.asdict(setup), indent=1) + "\n")
    rows = []
    for proxy in setup.proxies:
        structure, search_seconds, space = _search(setup, proxy, out / "search" / proxy, progress)
        metrics = space.metrics(structure)
        for seed in setup.seeds:
            folder = out / "train" / f"{proxy}-seed{seed}"
            config = TrainConfig(epochs=setup.epochs, batch_size=setup.batch_size, seed=seed,
                                 autoaugment=setup.autoaugment)
            run = prepare_training(str(structure), config, dataset=setup.dataset, device=setup.device, out=folder,
                                   resume=(folder / CHECKPOINT_NAME).exists(), data_source=setup.data_source,
                                   data_root=setup.data_root, threads=setup.threads, progress=progress)
            result = run.trainer.fit(resume=(folder / CHECKPOINT_NAME).exists())
            log = tuple(dataclasses.asdict(r) for r in result.log)
            rows.append(ValidationRow(proxy, seed, str(structure), metrics.params / 1e6, metrics.flops / 1e6,
                                      search_seconds, sum(r["seconds"] for r in log),
                                      float(pd.Series([r["images_per_s"] for r in log]).median()) if log else 0.0,
                                      result.test_acc, result.epochs_done, log))
            if not result.completed:
                raise KeyboardInterrupt  # training stopped early (Ctrl-C): the checkpoint is kept
    return rows


def summary_table(rows: Sequence[ValidationRow], dataset: str) -> pd.DataFrame:
    """Per proxy: mean ± std of the final test accuracy over seeds, the published figure, params, FLOPs."""
    column = 0 if dataset == "cifar10" else 1
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows]).drop(columns=["log"])
    table = frame.groupby("proxy", sort=False).agg(
        test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"), seeds=("seed", "count"),
        params_m=("params_m", "first"), flops_m=("flops_m", "first"), search_seconds=("search_seconds", "first"),
        train_seconds=("train_seconds", "sum"), images_per_s=("images_per_s", "median"),
        structure=("structure", "first")).reset_index()
    table["published_top1"] = [PUBLISHED_TOP1.get(p, (None, None))[column] for p in table["proxy"]]
    return table.sort_values("test_acc_mean", ascending=False).reset_index(drop=True)
