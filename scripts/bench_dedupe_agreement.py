"""How exact is ``--dedupe``? Scores of isomorphic NB201 cells against each other, and both against accuracy.

``--dedupe`` gives every member of an isomorphism class the score of the member scored first. Here N
architectures are drawn (seed 0) among the NB201 cells whose class has at least two members; each is scored as
itself and as another member of its class (its "partner", drawn with the same seed), with every proxy at init
seed 0 on one shared batch. Printed per proxy: the Spearman between own and partner scores over the N cells
(1 would mean dedupe is bit-for-bit scoring; below 1 is the init noise between two drawings of one function),
and the Spearman of each with CIFAR-10 test accuracy (what dedupe changes in a report).

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_dedupe_agreement.py --archs 300
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

import proxies
from bench import benchmarks
from bench.benchmarks.base import dedupe_class
from bench.data import load_batch, portable_paths
from bench.runner import score_proxies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300, help="NB201 cells with an isomorphic partner (default 300)")
    parser.add_argument("--proxies", default="synflow,naswot,zen,jacob_cov,snip", help="proxies to compare")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = benchmarks.resolve("nb201")
    gt = bench.ground_truth(None)
    class_of = {spec: dedupe_class(bench, bench.parse(spec)) for spec in gt.table.index}
    classes: dict[str, list[str]] = defaultdict(list)
    for spec, klass in class_of.items():
        classes[klass].append(spec)
    rng = np.random.default_rng(0)
    candidates = [s for s in gt.sample(None, 0) if len(classes[class_of[s]]) > 1]
    chosen = candidates[: args.archs]
    partners = []
    for spec in chosen:
        others = [s for s in classes[class_of[spec]] if s != spec]
        partners.append(others[int(rng.integers(len(others)))])
    wanted = [proxies.get(name) for name in args.proxies.split(",")]
    batch = load_batch("cifar10", max(p.batch_size or 64 for p in wanted), 0)
    own = np.full((len(chosen), len(wanted)), np.nan)
    partner = np.full_like(own, np.nan)
    for i, (spec, other) in enumerate(tqdm(list(zip(chosen, partners, strict=True)), unit="pair")):
        for target, arch in ((own, spec), (partner, other)):
            outcomes = score_proxies(bench.factory(bench.parse(arch), "cifar10"), wanted, lambda _: batch, "cpu", 0)
            target[i] = [o.result.value if o.result is not None else np.nan for o in outcomes]
    accuracy = gt.table.loc[chosen, "cifar10_test"].to_numpy()
    print(f"{len(chosen)} NB201 cells with an isomorphic partner (of {len(candidates)}), CIFAR-10 batch "
          f"{portable_paths(batch.source)}, init seed 0, threads {args.threads}, load {os.getloadavg()[0]:.2f}")
    print(f"{'proxy':12s} {'rho own~partner':>16s} {'rho own~acc':>12s} {'rho partner~acc':>16s} {'identical':>10s}")
    for k, proxy in enumerate(wanted):
        a, b = own[:, k], partner[:, k]
        ok = np.isfinite(a) & np.isfinite(b)
        print(f"{proxy.name:12s} {stats.spearmanr(a[ok], b[ok])[0]:16.3f} "
              f"{stats.spearmanr(a[ok], accuracy[ok])[0]:12.3f} {stats.spearmanr(b[ok], accuracy[ok])[0]:16.3f} "
              f"{int(np.sum(a == b)):10d}")


if __name__ == "__main__":
    main()
