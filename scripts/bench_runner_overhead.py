"""Measure the scoring runner's own cost per architecture (target: under 5 ms).

The proxies here do nothing (they return a constant), so what remains is the runner: looking up the
architecture, building its factory, storing and committing each row, the progress bar. Printed:

- runner overhead per architecture: scoring-loop wall time outside the ``proxy.score`` calls;
- interface overhead per score: time inside ``proxy.score`` beyond the proxy's own measured computation
  (seeding, forking the RNG, cost metering), which every proxy pays whatever runner calls it;
- the set-up (ground truth, store) and a rerun of the finished command (everything already stored).

Usage (quiet machine): ``python scripts/bench_runner_overhead.py --archs 2000 --proxies 7``.
Needs the NB201 ground truth ($ZENBENCH_DATA or --ground-truth).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from bench.ground_truth import GroundTruth
from bench.runner import run_benchmark
from proxies import Batch, NetworkFactory, Proxy, register


@register
@dataclass
class ConstantProxy(Proxy):
    """Returns 0 without touching the network: its own time is ~0, so the measured time is overhead."""

    name: ClassVar[str] = "overhead_constant"
    tag: int = 0
    """Distinguishes several copies (distinct option hashes) in one run."""

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=2000, help="architectures to score (default 2000)")
    parser.add_argument("--proxies", type=int, default=7, help="constant proxies per architecture (default 7)")
    parser.add_argument("--ground-truth", default=None, help="NB201 table (default: $ZENBENCH_DATA lookup)")
    parser.add_argument("--no-progress", action="store_true", help="measure without the progress bar")
    args = parser.parse_args()

    start = time.perf_counter()
    gt = GroundTruth.load(args.ground_truth)
    load_seconds = time.perf_counter() - start
    proxies = [ConstantProxy(tag=i) for i in range(args.proxies)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "overhead.db"
        start = time.perf_counter()
        first = run_benchmark(store, proxies, sample=args.archs, seed=0, device="cpu", ground_truth=gt,
                              progress=not args.no_progress)
        first_total = time.perf_counter() - start
        start = time.perf_counter()
        rerun = run_benchmark(store, proxies, sample=args.archs, seed=0, device="cpu", ground_truth=gt,
                              progress=False)
        rerun_total = time.perf_counter() - start

    print(f"architectures: {first.n_archs_scored}, proxies per architecture: {args.proxies}, "
          f"scores stored: {first.n_computed}")
    print(f"ground truth load: {load_seconds:.2f} s (once per run)")
    print(f"run set-up (store, sample, resume check): {first_total - first.loop_seconds:.3f} s")
    print(f"scoring loop: {first.loop_seconds:.3f} s; inside proxy.score: {first.score_call_seconds:.3f} s; "
          f"proxies' own measured time: {first.proxy_seconds:.4f} s")
    print(f"runner overhead per architecture: {first.overhead_ms_per_arch:.3f} ms "
          f"({first.overhead_ms_per_arch / args.proxies:.3f} ms per score; target < 5 ms per architecture)")
    print(f"interface overhead per score (seeding, metering in Proxy.score): "
          f"{first.interface_overhead_ms_per_score:.3f} ms")
    print(f"rerun with everything stored: {rerun_total:.3f} s, computed {rerun.n_computed} "
          f"(already stored {rerun.n_already})")


if __name__ == "__main__":
    main()
