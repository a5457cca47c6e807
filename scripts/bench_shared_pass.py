"""Seconds per NB201 architecture of the proxy zoo scored one proxy at a time vs together (shared passes).

Architectures: the first ``--archs`` (10) of the NB201 ground truth's ``sample(N, 0)``, CIFAR-10, one real
training batch (seed ``--seed``) of the largest size any proxy takes, already on the device. Two sets: the
zoo (every built-in proxy at its reference options) and the shared group alone (the proxies that declare a
shared pass: grad_norm, snip, fisher, plain, zico, jacob_cov, epe_nas). Each set is scored per architecture
through ``bench.runner.score_proxies`` twice: once per proxy (``separately``: no pass shared) and once with
the whole set (``together``), alternating which goes first from one architecture to the next so one-off costs
(allocator growth, oneDNN kernel selection) fall on both; the values of the two must be equal bit for bit.
Printed: torch threads, ``os.getloadavg()`` before and after, and per set the mean and median seconds per
architecture of each way and their ratio.

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_shared_pass.py            # 10 architectures
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_shared_pass.py --archs 2  # smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

import torch

import proxies
from bench import benchmarks
from bench.data import data_root, load_batch
from bench.runner import DEFAULT_IMAGE_BATCH, ProxyOutcome, resolve_device, score_proxies
from proxies import Batch, NetworkFactory, Proxy


def built_in_zoo() -> list[Proxy]:
    """Every registered built-in proxy (plug-ins left out) at its reference options."""
    return [proxies.get(name) for name in proxies.names() if proxies.get_class(name).__module__.startswith("proxies.")]


def outcome_key(outcome: ProxyOutcome) -> tuple[str, ...]:
    """What must agree between the two ways: the value bit for bit (NaN as text), or the error."""
    if outcome.result is None:
        return ("error", str(outcome.error))
    return ("value", repr(outcome.result.value), repr(sorted(outcome.result.components.items())))


def time_set(zoo: Sequence[Proxy], factories: Sequence[NetworkFactory], batch: Batch, device: torch.device,
             seed: int) -> tuple[list[float], list[float], int]:
    """Per architecture, the seconds of the set scored separately and together, and the count of proxies
    whose two scores differ."""
    separate, together, differ = [], [], 0
    for k, factory in enumerate(factories):
        timed: dict[str, tuple[float, list[ProxyOutcome]]] = {}
        for way in (("separately", "together") if k % 2 == 0 else ("together", "separately")):
            start = time.perf_counter()
            if way == "together":
                outcomes = score_proxies(factory, zoo, lambda _: batch, device, seed)
            else:
                outcomes = [score_proxies(factory, [p], lambda _: batch, device, seed)[0] for p in zoo]
            timed[way] = time.perf_counter() - start, outcomes
        separate.append(timed["separately"][0])
        together.append(timed["together"][0])
        differ += sum(outcome_key(a) != outcome_key(b)
                      for a, b in zip(timed["separately"][1], timed["together"][1], strict=True))
    return separate, together, differ


def load_text() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=10, help="the first N of the ground truth's sample(N, 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="batch and proxy seed (default 0)")
    parser.add_argument("--data", default=None, help="data folder (default $ZENBENCH_DATA)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    nb201 = benchmarks.resolve("nb201")
    archs = nb201.ground_truth(data_root(args.data)).sample(args.archs, 0)
    factories = [nb201.factory(nb201.parse(arch), "cifar10") for arch in archs]
    zoo = built_in_zoo()
    shared = [p for p in zoo if p.shared_pass() is not None]
    size = max(p.batch_size or DEFAULT_IMAGE_BATCH for p in zoo if p.needs != "nothing")
    batch = load_batch("cifar10", size, args.seed, root=data_root(args.data))
    batch = Batch(batch.images.to(device), batch.labels.to(device), batch.num_classes, batch.source)

    print(f"{len(archs)} NB201 architectures (ground truth sample({args.archs}, 0)), cifar10, device {device}, "
          f"torch threads {torch.get_num_threads()}, batch {batch.source} ({size} images), torch {torch.__version__}")
    print(f"load average before: {load_text()}")
    for label, members in (("zoo", zoo), ("shared group", shared)):
        separate, together, differ = time_set(members, factories, batch, device, args.seed)
        print(f"{label} ({len(members)} proxies: {', '.join(p.name for p in members)})")
        for way, seconds in (("separately", separate), ("together", together)):
            print(f"  {way:<10}  mean {statistics.fmean(seconds):7.2f} s/arch  median {statistics.median(seconds):7.2f}"
                  f"  per arch {' '.join(f'{s:.2f}' for s in seconds)}")
        ratio = statistics.fmean(together) / statistics.fmean(separate)
        print(f"  together / separately: {ratio:.3f} (mean); scores that differ: {differ}")
    print(f"load average after: {load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
