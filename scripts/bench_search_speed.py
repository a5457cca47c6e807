"""EA speed of the Zen-NAS search: iterations per second and where the time goes.

Runs the CIFAR params <= 1M search (ZenNAS ``Zen_NAS_cifar_params1M.sh``: ResNet-like space, max 18 layers,
100-class head, 32x32, Zen-Score at batch 64 on the residual-free network, population 512) and prints
iterations per second over the first 200 (and, with ``--iterations 1000``, 1,000) iterations, split into
mutation, constraint checks, network build and Zen scoring; then the time to score ZenNet-1.0M alone.

Reference, ZenNAS's own loop on a machine of this kind at the same settings (2 threads): 7.8 it/s over the
first 200 iterations, 5.8 it/s over the first 1,000; ZenNet-1.0M scored alone in 0.85 s.

Full command (quiet machine, about 3-4 minutes):
    .venv/bin/python scripts/bench_search_speed.py --iterations 1000 --threads 2
Smoke test:
    .venv/bin/python scripts/bench_search_speed.py --iterations 20 --batch-size 4 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

import proxies
from search.evolution import Budgets, EvolutionarySearch, ProxyFitness
from search.spaces.zennet import Structure, ZenNetFactory
from search.spaces.zennet_space import PRESETS, ZenNetMutationSpace, get_rules
from search.zennets import get_structure

ZENNAS_REFERENCE = {200: 7.8, 1000: 5.8}
ZENNAS_ZENNET_1M_SECONDS = 0.85
_build_seconds = [0.0]


@dataclass(frozen=True)
class TimedFactory(ZenNetFactory):
    """ZenNetFactory that adds its build time to a counter (the proxy calls it inside the fitness)."""

    def __call__(self, **overrides: object):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        net = super().__call__(**overrides)
        _build_seconds[0] += time.perf_counter() - t0
        return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="200 or 1000 (default 200)")
    parser.add_argument("--population", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed Zen scores of ZenNet-1.0M (median)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    preset = PRESETS["cifar-params1M"]
    space = ZenNetMutationSpace(get_rules(preset.space), preset.initial, preset.num_classes, preset.resolution)
    zen = proxies.get("zen", batch_size=args.batch_size)
    fitness = ProxyFitness(zen, lambda s: TimedFactory(s, preset.num_classes, preset.resolution), None, args.device)
    search = EvolutionarySearch(space, fitness, population_size=args.population, max_iterations=args.iterations,
                                budgets=Budgets(max_layers=preset.max_layers, max_params=preset.max_params),
                                seed=args.seed, progress=False)
    t0 = time.perf_counter()
    result = search.run()
    wall = time.perf_counter() - t0

    h = result.history
    s = result.seconds
    print(f"Zen-NAS EA, CIFAR params<=1M, population {args.population}, Zen batch {args.batch_size}, "
          f"{args.threads} threads, {args.device}, torch {torch.__version__}")
    for n in sorted({200, 1000, args.iterations}):
        if n <= args.iterations:
            seconds = float(h["seconds"].iloc[:n].sum())
            ref = ZENNAS_REFERENCE.get(n)
            ref_text = f" (ZenNAS: {ref} it/s)" if ref else ""
            print(f"first {n:>5,} iterations: {n / seconds:6.2f} it/s{ref_text}")
    print(f"wall {wall:.1f} s for {result.iterations:,} iterations ({result.iterations / wall:.2f} it/s incl. "
          f"bookkeeping); {result.evaluations:,} scored, {result.iterations - result.evaluations:,} rejected")
    build = _build_seconds[0]
    parts = {"mutation (incl. split)": s["mutation"], "constraint checks (analytic)": s["constraints"],
             "network build": build, "Zen scoring (init + 2 passes)": s["fitness"] - build}
    loop = sum(parts.values())
    for name, sec in parts.items():
        print(f"  {name:<32}{sec:8.2f} s  {100 * sec / loop:5.1f} %  {1e3 * sec / result.iterations:8.3f} ms/it")
    print(f"  other (selection, history)      {wall - loop:8.2f} s")
    print(f"final best Zen {result.best_score:.3f}: {result.best}")

    net_1m = ZenNetFactory(Structure.parse(get_structure("ZenNet-1.0M")), 100, 32)
    zen.score(net_1m, device=args.device, seed=0)  # warm-up
    times = [zen.score(net_1m, device=args.device, seed=i + 1).seconds for i in range(args.repeats)]
    print(f"Zen-Score of ZenNet-1.0M alone (no res-links, batch {args.batch_size}): "
          f"{statistics.median(times):.3f} s median of {args.repeats} (ZenNAS: {ZENNAS_ZENNET_1M_SECONDS} s)")


if __name__ == "__main__":
    main()
