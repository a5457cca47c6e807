"""Architectures per hour of a scoring run with 1 worker (this process), 2 local workers and a local Ray cluster.

Each configuration scores the same NB201 sample with the same proxies into a fresh store; printed per row:
wall time of the whole ``run_benchmark`` call (start-up of workers or of the Ray cluster included),
architectures per hour, and the overhead per task beyond the proxies = (wall − Σ proxy call seconds /
parallelism) / tasks, with torch threads per process and the machine's load before the run. A run whose values
differ from the one-process run's is flagged (they must be equal: same seeds).

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_executors.py --archs 40 --proxies params,synflow,naswot
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.runner import run_benchmark
from bench.store import ResultStore


def _values(path: Path) -> pd.Series:
    with ResultStore(path, create=False) as store:
        return store.scores().set_index(["arch", "proxy"])["value"].sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=40, help="NB201 architectures (sample seed 0; default 40)")
    parser.add_argument("--proxies", default="params,synflow,naswot", help="proxies (default params,synflow,naswot)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    args = parser.parse_args()
    proxies = args.proxies.split(",")
    configurations = [("1 worker (this process)", dict()), ("local pool, 2 workers", dict(workers=2))]
    if importlib.util.find_spec("ray") is not None:
        configurations.append(("ray, local cluster of 2 CPUs", dict(executor="ray", workers=2)))
    print(f"{args.archs} NB201 architectures x {len(proxies)} proxies ({args.proxies}), {args.threads} torch "
          f"thread(s) per process, {os.cpu_count()} CPUs")
    print(f"{'configuration':32s} {'wall s':>8s} {'archs/h':>9s} {'overhead ms/task':>17s} {'load':>5s}  values")
    reference = None
    with tempfile.TemporaryDirectory() as folder:
        for position, (label, options) in enumerate(configurations):
            store = Path(folder) / f"run{position}.db"
            load = os.getloadavg()[0]
            start = time.perf_counter()
            summary = run_benchmark(store, proxies, sample=args.archs, seed=0, device="cpu", threads=args.threads,
                                    progress=False, **options)
            wall = time.perf_counter() - start
            workers = options.get("workers", 1)
            overhead = (wall - summary.score_call_seconds / workers) / max(summary.n_archs_scored, 1) * 1e3
            values = _values(store)
            reference = values if reference is None else reference
            same = "equal" if values.equals(reference) else "DIFFERENT"
            print(f"{label:32s} {wall:8.1f} {summary.n_archs_scored / wall * 3600:9.0f} {overhead:17.1f} "
                  f"{load:5.2f}  {same}")


if __name__ == "__main__":
    main()
