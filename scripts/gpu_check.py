"""The one GPU check (issue #12): every proxy's CUDA path against its CPU values, and how fast one GPU scores NB201.

Three parts, each printed as a table:

1. the conformance kit (:func:`proxies.testing.check_proxy`) on every registered proxy: on a machine with CUDA
   it scores the small connected NB201 network on CPU and on CUDA and fails beyond rtol/atol 1e-4;
2. the same proxies on ``--compare-archs`` full-size NB201 CIFAR-10 networks (sample seed 0, one shared batch
   of real images), scored once on CPU and once on CUDA: the largest relative difference per proxy and the
   Spearman ρ between the two devices' scores;
3. throughput of the mission proxies (``--proxies``, default zen, synflow, naswot, grad_norm, tenas) on NB201
   CIFAR-10 with 1 and with ``--workers`` processes sharing the one GPU: a short warm-up run, then as many
   architectures as fit ``--budget`` seconds (a prefix of the seed-0 sample), architectures per second, and the
   projected time for all 15,625 cells and for their 6,466 isomorphism classes (``--dedupe``). Goal: ≤ 10 min.

Data: ``ZENBENCH_DATA`` must hold ``nb201/nb201.csv`` and ``cifar10-subset/``. The device machine does not see
the data folder beside the checkout; the device tool carries paths through an ignored link to it, so nothing is
copied into the checkout:

    ln -s "$ZENBENCH_DATA" devdata && echo /devdata >> .git/info/exclude
    # device run with carry ["devdata/nb201/nb201.csv", "devdata/cifar10-subset"], in the repository root there:
    ZENBENCH_DATA=devdata PYTHONPATH=. PYTHONUNBUFFERED=1 python3 scripts/gpu_check.py --out $OUT

On a machine without CUDA it runs parts 1-3 on CPU only (``--device cpu``; part 2 is then skipped), which is how
it is tested here. Everything printed is also written to ``--out`` (``gpu_check.txt`` and three CSV files).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import proxies
from bench.runner import run_benchmark
from bench.statistics import spearman_rho
from bench.store import ResultStore
from proxies.testing import check_proxy
from reports.render import markdown_table

NB201_CELLS, NB201_CLASSES = 15_625, 6_466
MISSION = "zen,synflow,naswot,grad_norm,tenas"


def conformance(names: list[str]) -> pd.DataFrame:
    rows = []
    for name in names:
        t0 = time.perf_counter()
        try:
            report = check_proxy(name)
            rows.append(dict(proxy=name, verdict="PASS", cpu=report.value, cuda=report.cuda_value,
                             seconds=time.perf_counter() - t0, error=""))
        except Exception as exc:  # a failing check is a row of the table, not the end of the script
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rows.append(dict(proxy=name, verdict="FAIL", cpu=math.nan, cuda=math.nan,
                             seconds=time.perf_counter() - t0, error=message[:200]))
    return pd.DataFrame(rows)


def _scores(store: Path) -> pd.DataFrame:
    with ResultStore(store, create=False) as results:
        return results.scores()


def device_agreement(names: list[str], n_archs: int, work: Path) -> pd.DataFrame:
    """Each proxy on the same ``n_archs`` NB201 networks, CPU and CUDA, same seeds and batch."""
    values = {}
    for device in ("cpu", "cuda"):
        store = work / f"compare_{device}.db"
        run_benchmark(store, names, benchmark="nb201", dataset="cifar10", sample=n_archs, seed=0, device=device,
                      progress=False)
        rows = _scores(store)
        values[device] = rows.set_index(["proxy", "option_hash", "arch"])["value"]
    both = pd.concat(values, axis=1).dropna(how="all")
    out = []
    for proxy, group in both.groupby(level="proxy"):
        cpu, cuda = group["cpu"].to_numpy(float), group["cuda"].to_numpy(float)
        finite = np.isfinite(cpu) & np.isfinite(cuda)
        relative = np.abs(cuda[finite] - cpu[finite]) / np.maximum(np.abs(cpu[finite]), 1e-12)
        out.append(dict(proxy=proxy, archs=int(finite.sum()), nonfinite_cpu=int((~np.isfinite(cpu)).sum()),
                        nonfinite_cuda=int((~np.isfinite(cuda)).sum()),
                        max_relative_difference=float(relative.max()) if finite.any() else math.nan,
                        spearman_cpu_vs_cuda=spearman_rho(cpu[finite], cuda[finite]) if finite.sum() > 2
                        else math.nan))
    return pd.DataFrame(out)


def throughput(names: list[str], device: str, workers: int, budget: float, warmup: int, work: Path,
               rate: float | None = None) -> dict:
    """Architectures per second of ``names`` on NB201 CIFAR-10 with ``workers`` processes on ``device``: an
    untimed warm-up of ``warmup`` architectures, then as many more as ``rate`` (default: the warm-up's own)
    says fit ``budget`` seconds."""
    store = work / f"speed_{device.replace(':', '')}_{workers}.db"
    kwargs = dict(benchmark="nb201", dataset="cifar10", seed=0, device=device, progress=False, threads=1,
                  workers=workers, devices=[device] if workers > 1 else None)
    first = run_benchmark(store, names, sample=warmup, **kwargs)
    rate = rate or first.n_archs_scored / max(first.loop_seconds, 1e-9)
    n = min(NB201_CELLS, warmup + max(1, int(rate * budget)))
    t0 = time.perf_counter()
    timed = run_benchmark(store, names, sample=n, **kwargs)
    wall = time.perf_counter() - t0
    per_second = timed.n_archs_scored / max(timed.loop_seconds, 1e-9)
    return dict(device=device, workers=workers, archs_timed=timed.n_archs_scored, loop_seconds=timed.loop_seconds,
                call_seconds=wall, archs_per_second=per_second,
                minutes_all_15625=NB201_CELLS / per_second / 60, minutes_6466_classes=NB201_CLASSES / per_second / 60,
                failures=len(timed.failures))


def speed(names: list[str], device: str, workers: int, budget: float, warmup: int, work: Path) -> pd.DataFrame:
    """One process, then ``workers`` processes sized by the one-process rate times ``workers`` (a pool's
    warm-up is mostly its start-up, too slow to size by)."""
    single = throughput(names, device, 1, budget, warmup, work)
    rows = [single]
    if workers > 1:
        rows.append(throughput(names, device, workers, budget, warmup, work, single["archs_per_second"] * workers))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--proxies", default=MISSION, help=f"throughput proxies (default {MISSION})")
    parser.add_argument("--compare-archs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="processes sharing the device in the second speed run")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds per timed speed run (default 90)")
    parser.add_argument("--warmup", type=int, default=20, help="architectures of the untimed warm-up run")
    parser.add_argument("--only", default="1,2,3", help="parts to run, e.g. 3")
    parser.add_argument("--out", default="runs/gpu_check", help="folder for gpu_check.txt and the CSV files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {int(p) for p in args.only.split(",")}
    lines: list[str] = []

    def say(*text: str) -> None:
        for line in text:
            print(line, flush=True)
            lines.append(line)
        (out / "gpu_check.txt").write_text("\n".join(lines) + "\n")

    cuda = torch.cuda.is_available()
    say(f"# zenbench GPU check, {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
        f"torch {torch.__version__}; CUDA {'yes: ' + torch.cuda.get_device_name(0) if cuda else 'no'}; "
        f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; device {args.device}", "")
    names = [n for n in proxies.names() if not proxies.get_class(n).composite]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part, title, job in (
            (1, "1. Conformance kit (CPU vs CUDA on the small NB201 network)", lambda: conformance(names)),
            (2, f"2. CPU vs CUDA on {args.compare_archs} NB201 CIFAR-10 networks",
             lambda: device_agreement(names, args.compare_archs, work) if cuda else None),
            (3, f"3. Throughput of {args.proxies} on NB201 CIFAR-10",
             lambda: speed(args.proxies.split(","), args.device, args.workers, args.budget, args.warmup, work)),
        ):
            if part not in parts:
                continue
            t0 = time.perf_counter()
            try:
                table = job()
            except Exception:
                say(f"## {title}", "", "FAILED:", "```", traceback.format_exc().rstrip(), "```", "")
                continue
            if table is None:
                say(f"## {title}", "", "skipped: no CUDA device", "")
                continue
            table.to_csv(out / f"part{part}.csv", index=False)
            say(f"## {title}", "", markdown_table(list(table.columns), [
                [f"{v:.4g}" if isinstance(v, float) else v for v in row] for row in table.itertuples(index=False)]),
                "", f"({time.perf_counter() - t0:.0f} s)", "")


if __name__ == "__main__":
    main()
