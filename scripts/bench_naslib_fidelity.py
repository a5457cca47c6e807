"""Per-architecture fidelity against NASLib: Spearman between our scores and NASLib's published ones, per proxy.

Data: ``$ZENBENCH_DATA/nb201/naslib_zc_nasbench201.json`` (NAS-Bench-Suite-Zero's early release, NASLib
commit 1bdbd960: per dataset about 724 NB201 architectures, each with NASLib's score of every proxy). Its
keys are NASLib op-index tuples in NASLib's edge order (n1←0, n2←0, n3←0, n2←1, n3←1, n3←2; ops 0 skip,
1 none, 2 conv 3×3, 3 conv 1×1, 4 pool); :func:`decode` maps them to NB201 strings, and the mapping is checked
before anything is scored (:func:`check_decoding`): the file's ``params`` of every architecture must equal
``params_*_M`` of ``nb201.csv`` exactly (the op codes), and its ``val_accuracy`` must rank as NB201's
validation accuracy of the decoded architectures (the edge order, which params cannot see).

Per proxy the table gives the Spearman ρ over the architectures between our value and NASLib's, two ways:
"rho" with every non-finite score set to −1e8 on both sides (NASLib's ``ZeroCost.query`` writes NaN/inf as
−1e8; a few raw NaN in the file are treated the same), so they tie for last place; "rho fin" over the
architectures both scored finite. NASLib stores log(synflow) (ours reports log too): Spearman compares ranks,
so the log changes nothing. Bar: NASLib's own release-to-release agreement (Spearman of this file against
the later full release over 446 shared CIFAR-10 architectures; ``data/README.md``). PASS when "rho" is within
0.03 of it for synflow, nwot, snip, grad_norm, fisher, jacov and l2_norm; grasp, epe_nas and plain are shown
beside their (low) ceilings without a verdict; params and flops check the decoding (params must give 1).
The bars are CIFAR-10 figures; on the other datasets they are printed for orientation only.

Protocol, NASLib's and ours (``naslib/runners/zc/benchmarks/runner.py``, ``predictors/zerocost.py``):

- batch: NASLib's zero-cost configs set ``batch_size: 32`` (``naslib/runners/zc/zc_config.yaml``; the
  datasheet says 64), and the file agrees: its jacov never exceeds −32.23, and −Σ[log λ + 1/λ] ≤ −B for any B×B
  correlation matrix, so B = 32 (at 64 our jacob_cov is about −65 and our nwot about twice NASLib's 387).
  Default ``--batch-size 32``;
- NASLib draws a fresh batch per architecture from its shuffled training loader (70% train portion, random
  crop + flip augmentation) and builds every network from one running global RNG (seed 0 set once), so each
  architecture sees its own init and batch. We score every architecture with seed ``--seed`` and one shared,
  unaugmented batch ``bench.data.load_batch(dataset, batch, seed)`` of real training images (CIFAR-100: CIFAR-10
  images with a 100-class head, ImageNet16-120: the 14-class sample; the header prints the batch source).
  Random init and batch are what cap NASLib's own agreement (plain 0.19, grasp 0.70);
- network: ``--network default`` (NB201's trained network, every BN affine and tracking) or ``naslib``
  (NASLib's NB201 graph: cell-op BNs without affine or running statistics, reduction BNs without affine);
- every proxy at its reference defaults with ``batch_size`` set to the batch (proxies that have the option).

Scores are cached, one row per (dataset, network, batch, seed, proxy protocol, architecture), in a CSV
(``--store``, default ``runs/naslib_fidelity.csv``), flushed row by row: an interrupted run resumes where it
stopped, and the table is printed for whatever the cache holds. (``bench.runner.run_benchmark`` draws its own
seeded sample of architectures; this script needs NASLib's, so it keeps its own cache.)

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_naslib_fidelity.py --archs 50
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_naslib_fidelity.py --network naslib
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import proxies
from bench.benchmarks import get as get_benchmark
from bench.data import data_root, load_batch, portable_paths
from bench.ground_truth import GroundTruth
from bench.runner import resolve_device, resolve_proxies
from bench.statistics import spearman_rho
from proxies import Proxy
from search.spaces.nb201 import NETWORKS, Nb201Arch, Nb201Factory

DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16"}
"""NASLib's dataset keys in the file -> ours."""
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
"""NASLib's op indices (``naslib/search_spaces/nasbench201/conversions.py``)."""
NASLIB_EDGE_OF_NB201 = (0, 1, 3, 2, 4, 5)
"""For each NB201 string position (n1←0, n2←0, n2←1, n3←0, n3←1, n3←2), its place in NASLib's edge order."""
NASLIB_NONFINITE = -1e8
"""What NASLib's ``ZeroCost.query`` writes for a NaN or infinite score."""
FIELDS = ("dataset", "network", "batch_size", "seed", "proxy", "option_hash", "arch_code", "value", "seconds",
          "batch_source", "device")
"""The cache's columns; rows are keyed by the NB201 benchmark's architecture code (six op indices, as the
score tables are). Caches of earlier versions, keyed by the NB201 string (``arch``, with NASLib's ``key``
beside it in the oldest), are rewritten in this form on open."""
OLD_HEADERS = (FIELDS[:6] + ("arch",) + FIELDS[7:], FIELDS[:6] + ("key", "arch") + FIELDS[7:])
NOT_STORED = ("params",)
"""Proxies whose scores the cache keeps in memory only: the parameter count equals the benchmark's published
``params_*_M`` column exactly, so a stored copy would be a copy of the data; it is recomputed (milliseconds)."""


@dataclass(frozen=True)
class Row:
    """One NASLib proxy and its zenbench counterpart."""

    naslib: str
    proxy: str
    options: dict[str, Any] = field(default_factory=dict)
    agreement: float | None = None
    """NASLib's release-to-release Spearman (CIFAR-10, 446 architectures)."""
    barred: bool = False
    """True: PASS/MISS within 0.03 of ``agreement``; False: shown beside it as a ceiling."""
    note: str = ""


ROWS: tuple[Row, ...] = (
    Row("synflow", "synflow", {}, 0.9998, True, "NASLib stores log(synflow); ranks, so the log changes nothing"),
    Row("nwot", "naswot", {}, 0.991, True),
    Row("snip", "snip", {}, 0.985, True),
    Row("grad_norm", "grad_norm", {}, 0.983, True),
    Row("fisher", "fisher", {}, 0.977, True),
    Row("jacov", "jacob_cov", {}, 0.956, True),
    Row("l2_norm", "l2_norm", {}, 0.947, True),
    Row("epe_nas", "epe_nas", {}, 0.81, False),
    Row("grasp", "grasp", {}, 0.70, False),
    Row("plain", "plain", {}, 0.19, False),
    Row("params", "params", {}, None, False, "decoding check: must be 1"),
    Row("flops", "flops", {"count": "all"}, None, False, "NASLib counts pooling and BN as count='all' does"),
)
MARGIN = 0.03
NB201 = get_benchmark("nb201")
EDGE_ORDER_RHO = 0.97


def decode(key: str) -> Nb201Arch:
    """The NB201 architecture of a NASLib key such as ``"(0, 2, 3, 2, 3, 1)"``."""
    ops = ast.literal_eval(key)
    if not (isinstance(ops, tuple) and len(ops) == 6 and all(isinstance(o, int) and 0 <= o < 5 for o in ops)):
        raise ValueError(f"NASLib NB201 key {key!r}: expected a tuple of six op indices 0..4")
    return Nb201Arch(tuple(NASLIB_OPS[ops[i]] for i in NASLIB_EDGE_OF_NB201))


def check_decoding(entries: dict[str, dict], gt: GroundTruth, dataset: str) -> str:
    """Check :func:`decode` on every entry, else exit; returns what was checked, for the table's header.

    The op codes: the file's ``params`` equals ``params_*_M`` of ``nb201.csv`` exactly (it counts the 1×1
    and 3×3 convolutions, whatever their edges). The edge order, which params cannot see: NASLib's
    ``val_accuracy`` (one training run) against the NB201 mean validation accuracy of the decoded
    architecture, Spearman >= 0.97 (0.989-0.992 on the three datasets; swapping any two edges gives <= 0.91).
    """
    archs = {key: decode(key) for key in entries}
    wrong = [key for key, arch in archs.items() if entries[key]["params"]["score"] != gt.params(arch, dataset)]
    if wrong:
        key = wrong[0]
        raise SystemExit(f"decoding check failed on {len(wrong)} of {len(entries)} architectures, e.g. {key}: "
                         f"NASLib params {entries[key]['params']['score']} M, nb201.csv "
                         f"{gt.params(archs[key], dataset)} M for {archs[key]}")
    theirs = np.array([entries[key]["val_accuracy"] for key in archs])
    ours = np.array([gt.accuracy(arch, dataset, "valid") for arch in archs.values()])
    rho = spearman_rho(theirs, ours)
    if len(archs) >= 3 and not rho >= EDGE_ORDER_RHO:
        raise SystemExit(f"decoding check failed: NASLib's val_accuracy against the decoded architectures' NB201 "
                         f"validation accuracy has Spearman {rho:.3f} < {EDGE_ORDER_RHO} (wrong edge order?)")
    return (f"decoding checked: params equal on all {len(archs)}, val_accuracy vs NB201 valid accuracy rho "
            f"{rho:.3f}")


def select_rows(text: str | None) -> list[Row]:
    by_name = {r.naslib: r for r in ROWS}
    if text is None:
        return list(ROWS)
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in by_name]
    if unknown:
        raise SystemExit(f"--proxies: unknown {', '.join(unknown)}; expected NASLib names among {', '.join(by_name)}")
    return [by_name[p] for p in names]


def build_proxies(rows: list[Row], batch_size: int) -> dict[str, Proxy]:
    """NASLib name -> our proxy with ``batch_size`` set; rows whose proxy is not registered are left out."""
    built = {}
    for row in rows:
        try:
            proxy = proxies.get(row.proxy, **row.options)
        except proxies.UnknownProxyError:
            print(f"note: {row.naslib}: proxy {row.proxy!r} is not registered; skipped")
            continue
        built[row.naslib] = resolve_proxies([proxy], batch_size)[0]
    return built


class ScoreCache:
    """Rows of :data:`FIELDS` in a CSV, appended and flushed one at a time (but those of :data:`NOT_STORED`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, str]] = []
        if path.exists():
            with path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                header = tuple(reader.fieldnames or ())
                if header != FIELDS and header not in OLD_HEADERS:
                    raise SystemExit(f"--store {path}: not a cache of this script (columns {reader.fieldnames})")
                read = [{k: row[k] for k in FIELDS} if header == FIELDS else
                        {k: NB201.arch_code(Nb201Arch.from_string(row["arch"])) if k == "arch_code" else row[k]
                         for k in FIELDS} for row in reader]
            self.rows = [row for row in read if row["proxy"] not in NOT_STORED]
            if header != FIELDS or len(self.rows) < len(read):
                with path.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, FIELDS)
                    writer.writeheader()
                    writer.writerows(self.rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", newline="")
        self._writer = csv.DictWriter(self._fh, FIELDS)
        if self._fh.tell() == 0:  # a new or empty file; a header-only one keeps its header
            self._writer.writeheader()

    def close(self) -> None:
        self._fh.close()

    def select(self, dataset: str, network: str, batch_size: int, seed: int, proxy: Proxy,
               archs: dict[str, str]) -> dict[str, dict]:
        """Stored rows of one protocol for ``archs`` (NASLib key -> NB201 code), by NASLib key."""
        want = (dataset, network, str(batch_size), str(seed), proxy.name, proxy.option_hash())
        stored = {r["arch_code"]: r for r in self.rows
                  if (r["dataset"], r["network"], r["batch_size"], r["seed"], r["proxy"], r["option_hash"]) == want}
        return {key: stored[arch] for key, arch in archs.items() if arch in stored}

    def add(self, row: dict[str, Any]) -> None:
        text = {k: str(row[k]) for k in FIELDS}
        if text["proxy"] not in NOT_STORED:
            self._writer.writerow(text)
            self._fh.flush()
        self.rows.append(text)


@dataclass(frozen=True)
class Fidelity:
    row: Row
    n: int
    ours_nonfinite: int
    theirs_nonfinite: int
    rho: float
    rho_finite: float
    seconds: float
    naslib_seconds: float

    @property
    def verdict(self) -> str:
        if self.row.agreement is None or math.isnan(self.rho):
            return ""
        if not self.row.barred:
            return "ceiling"
        return "PASS" if self.rho >= self.row.agreement - MARGIN else "MISS"


def naslib_convention(values: np.ndarray) -> np.ndarray:
    """Non-finite scores as NASLib writes them (−1e8)."""
    return np.where(np.isfinite(values), values, NASLIB_NONFINITE)


def fidelity(row: Row, keys: list[str], entries: dict[str, dict], stored: dict[str, dict]) -> Fidelity | None:
    scored = [k for k in keys if k in stored]
    if len(scored) < 3:
        return None
    ours = np.array([float(stored[k]["value"]) for k in scored])
    theirs = np.array([float(entries[k][row.naslib]["score"]) for k in scored])
    ours_nf = ~np.isfinite(ours)
    theirs_nf = ~np.isfinite(theirs) | (theirs == NASLIB_NONFINITE)
    both = ~ours_nf & ~theirs_nf
    rho_finite = spearman_rho(ours[both], theirs[both]) if both.sum() >= 3 else math.nan
    return Fidelity(row, len(scored), int(ours_nf.sum()), int(theirs_nf.sum()),
                    spearman_rho(naslib_convention(ours), naslib_convention(theirs)), rho_finite,
                    statistics.median(float(stored[k]["seconds"]) for k in scored),
                    statistics.median(float(entries[k][row.naslib]["time"]) for k in scored))


def print_table(results: list[Fidelity], header: str) -> None:
    print(header)
    print(f"{'NASLib':<10} {'zenbench':<22} {'archs':>5} {'nf ours':>7} {'nf NASLib':>9} {'rho':>7} {'rho fin':>7} "
          f"{'bar':>12} {'verdict':<8} {'s/arch':>6} {'NASLib s':>8}  note")
    for r in results:
        options = ",".join(f"{k}={v}" for k, v in r.row.options.items())
        ours = r.row.proxy + (f"({options})" if options else "")
        bar = "" if r.row.agreement is None else (
            f">= {r.row.agreement - MARGIN:.3f}" if r.row.barred else f"ceil {r.row.agreement:.2f}")
        print(f"{r.row.naslib:<10} {ours:<22} {r.n:>5} {r.ours_nonfinite:>7} {r.theirs_nonfinite:>9} {r.rho:>7.3f} "
              f"{r.rho_finite:>7.3f} {bar:>12} {r.verdict:<8} {r.seconds:>6.2f} {r.naslib_seconds:>8.2f}  {r.row.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", choices=list(DATASETS), help="NASLib dataset (default cifar10)")
    parser.add_argument("--archs", type=int, default=None, help="the first N architectures of the file (default all)")
    parser.add_argument("--proxies", default=None,
                        help=f"comma-separated NASLib names (default all): {', '.join(r.naslib for r in ROWS)}")
    parser.add_argument("--store", type=Path, default=Path("runs/naslib_fidelity.csv"),
                        help="resumable CSV cache of scores (default runs/naslib_fidelity.csv)")
    parser.add_argument("--network", default="default", choices=list(NETWORKS),
                        help="NB201 network: default (trained network) or naslib (NASLib's BN choices)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32, as NASLib's file)")
    parser.add_argument("--seed", type=int, default=0, help="batch and proxy seed (default 0)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--data", default=None, help="data folder (default $ZENBENCH_DATA)")
    args = parser.parse_args(argv)
    if args.archs is not None and args.archs < 3:
        parser.error("--archs: at least 3 architectures are needed for a correlation")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")

    torch.set_num_threads(args.threads)
    root = data_root(args.data)
    if root is None:
        raise SystemExit("no data folder: set ZENBENCH_DATA or pass --data")
    with (root / "nb201" / "naslib_zc_nasbench201.json").open() as fh:
        entries: dict[str, dict] = json.load(fh)[args.dataset]
    dataset = DATASETS[args.dataset]
    gt = GroundTruth.load(os.path.join(root, "nb201", "nb201.csv"), progress=False)
    checked = check_decoding(entries, gt, dataset)  # on the whole file, whatever --archs takes
    keys = list(entries)[:args.archs]
    archs = {key: NB201.arch_code(decode(key)) for key in keys}
    rows = select_rows(args.proxies)
    built = build_proxies(rows, args.batch_size)
    device = resolve_device(args.device)

    cache = ScoreCache(args.store)
    protocol = (dataset, args.network, args.batch_size, args.seed)
    done = {name: cache.select(*protocol, proxy, archs) for name, proxy in built.items()}
    todo = {name: {k for k in keys if k not in done[name]} for name in built}
    batch = None
    if any(todo[name] and proxy.needs != "nothing" for name, proxy in built.items()):
        batch = load_batch(dataset, args.batch_size, args.seed, root=root)
        batch = proxies.Batch(batch.images.to(device), None if batch.labels is None else batch.labels.to(device),
                              batch.num_classes, batch.source)
    status = 0
    try:
        for key in tqdm([k for k in keys if any(k in t for t in todo.values())], unit="arch", desc=args.dataset):
            arch = decode(key)
            factory = Nb201Factory(arch, dataset, network=args.network)
            for name, proxy in built.items():
                if key not in todo[name]:
                    continue
                uses_batch = proxy.needs != "nothing"
                result = proxy.score(factory, batch if uses_batch else None, device, args.seed)
                source = portable_paths(batch.source) if uses_batch and batch is not None else "none"
                cache.add(dict(dataset=dataset, network=args.network, batch_size=args.batch_size, seed=args.seed,
                               proxy=proxy.name, option_hash=proxy.option_hash(), arch_code=NB201.arch_code(arch),
                               value=result.value, seconds=result.seconds, batch_source=source,
                               device=str(device)))
    except KeyboardInterrupt:
        status = 130
    finally:
        cache.close()

    results = [f for row in rows if row.naslib in built
               if (f := fidelity(row, keys, entries, cache.select(*protocol, built[row.naslib], archs))) is not None]
    sources = sorted({portable_paths(r["batch_source"]) for r in cache.rows if r["batch_source"] != "none"
                      and (r["dataset"], r["network"], r["batch_size"], r["seed"]) == tuple(map(str, protocol))})
    print_table(results, f"NASLib zero-cost scores ({args.dataset}, first {len(keys)} architectures of the file; "
                         f"{checked}) against zenbench: network {args.network}, batch "
                         f"{args.batch_size}, seed {args.seed}, device {device}; batch {', '.join(sources) or '-'}; "
                         f"cache {args.store}" + ("" if args.dataset == "cifar10" else
                                                  "; bars are CIFAR-10 figures, for orientation"))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
