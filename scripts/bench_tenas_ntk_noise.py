"""TE-NAS's NTK condition number against itself: how much −κ of one architecture moves with the init seed.

REFERENCE F.3 found the TENAS code and ours agreeing on −κ at Spearman 0.49 over the 30 timing architectures.
This script measures the ceiling such a comparison can reach: ours against ours, same batch, init seeds 0, 1
and 2, for the default init (what the released TENAS code runs) and Kaiming fan_out (what the paper states),
printing the pairwise Spearman of −κ across architectures and the Spearman of seed 0 with test accuracy.

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_tenas_ntk_noise.py            # 30 timing archs
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_tenas_ntk_noise.py --archs 200
"""

from __future__ import annotations

import argparse
import itertools
import os

import numpy as np
import torch
from scipy import stats

import proxies
from bench import benchmarks
from bench.data import load_batch

TIMING_INDICES = tuple(range(0, 15625, 521))
"""The 30 NB201 indices ``scripts/bench_proxy_speed.py`` times (REFERENCE F.3's architectures)."""
SEEDS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=None, help="a seeded sample of N archs (default: the 30 timing)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = benchmarks.resolve("nb201")
    gt = bench.ground_truth(None)
    specs = gt.sample(args.archs, 0) if args.archs else [gt.table.index[i] for i in TIMING_INDICES]
    batch = load_batch("cifar10", 72, 0)
    accuracy = gt.table.loc[specs, "cifar10_test"].to_numpy()
    print(f"{len(specs)} NB201 architectures, batch {batch.source}, threads {args.threads}, "
          f"load {os.getloadavg()[0]:.2f}")
    for init in ("default", "kaiming_fan_out"):
        proxy = proxies.get("tenas", parts="ntk", ntk_init=init)
        scores = {seed: np.array([proxy.score(bench.factory(bench.parse(s), "cifar10"), batch, "cpu", seed).value
                                  for s in specs]) for seed in SEEDS}
        pairs = "  ".join(f"{a}v{b} {stats.spearmanr(scores[a], scores[b])[0]:.3f}"
                          for a, b in itertools.combinations(SEEDS, 2))
        finite = np.isfinite(scores[0])
        with_acc = stats.spearmanr(scores[0][finite], accuracy[finite])[0]
        print(f"ntk_init={init:16s} seed-to-seed Spearman of -kappa: {pairs}   rho with accuracy (seed 0) "
              f"{with_acc:.3f}   non-finite {int((~finite).sum())}")


if __name__ == "__main__":
    main()
