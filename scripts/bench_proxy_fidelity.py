"""Rank fidelity of every proxy on NB201: Spearman rho and Kendall tau-b against test accuracy, beside the
published bands.

Sample: ``--archs`` (default 300) NB201 architectures drawn by ``GroundTruth.sample(n, --seed)``; dataset
``--dataset`` (default CIFAR-10); one shared real training batch (``bench.data.load_batch``, same seed);
every proxy at its reference protocol, plus Zen-Score with ``bn_stat="batch"``. Ground truth: the test
accuracy after the 200-epoch schedule (``cifar10_test`` for CIFAR-10, REFERENCE A.0).

Correlations are signed, on the score oriented by the proxy's direction (``higher_is_better``), after the
proxy's population-level combination (``combine_population``: TE-NAS's rank sum of −κ and #LR; the value
itself for the others). Non-finite scores (the NaN policies: e.g. a disconnected NB201 cell) are left out
of the correlations and counted. Bands (CIFAR-10; issue #3 / REFERENCE A.3d): SynFlow 0.74-0.80,
NASWOT 0.76-0.81, grad-norm 0.55-0.66, #params 0.73-0.78 (and conv-only FLOPs, which rank identically),
TE-NAS rank sum >= 0.65; Zen-Score has no band (an earlier independent check gave rho ~0.40 with
``bn_stat=running_var`` and ~0.49 with ``batch`` on 1,000 architectures).

Scores are cached in a CSV (``--out``), one row per (architecture, proxy variant) written as soon as it is
scored, so an interrupted run (Ctrl-C) resumes where it stopped when started again with the same
command; figures are printed for whatever the file holds.

Full command (quiet machine; about 30-40 minutes on 2 CPU threads, most of it TE-NAS and NASWOT):
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_fidelity.py --out fidelity_c10_300.csv
Smoke test:
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_fidelity.py --archs 3 --out /tmp/f.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import proxies
from bench.data import data_root, load_batch
from bench.ground_truth import GroundTruth
from bench.runner import resolve_device
from bench.statistics import kendall_tau, spearman_rho
from search.spaces.nb201 import Nb201Factory

CSV_FIELDS = ("index", "variant", "value", "components", "seconds")


@dataclass(frozen=True)
class Variant:
    """A scored row: a registered proxy with options, and its published CIFAR-10 Spearman band."""

    label: str
    proxy: str
    options: dict[str, Any] = field(default_factory=dict)
    band: tuple[float, float] | None = None
    note: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("synflow", "synflow", {}, (0.74, 0.80)),
    Variant("naswot", "naswot", {}, (0.76, 0.81)),
    Variant("grad_norm", "grad_norm", {}, (0.55, 0.66)),
    Variant("params", "params", {}, (0.73, 0.78)),
    Variant("flops", "flops", {}, (0.73, 0.78), "conv-only FLOPs rank as #params"),
    Variant("tenas", "tenas", {}, (0.65, 1.0), "rank sum of -kappa and #LR"),
    Variant("zen", "zen", {}, None, "earlier check: ~0.40 (1,000 archs)"),
    Variant("zen@batch", "zen", {"bn_stat": "batch"}, None, "earlier check: ~0.49 (1,000 archs)"),
)


@dataclass(frozen=True)
class Fidelity:
    label: str
    n_scored: int
    n_nonfinite: int
    spearman: float
    kendall: float
    band: tuple[float, float] | None
    note: str

    @property
    def verdict(self) -> str:
        if self.band is None or math.isnan(self.spearman):
            return ""
        return "PASS" if self.band[0] <= self.spearman <= self.band[1] else "MISS"


def select_variants(text: str | None) -> list[Variant]:
    if text is None:
        return list(VARIANTS)
    by_label = {v.label: v for v in VARIANTS}
    unknown = [p for p in text.split(",") if p.strip() and p.strip() not in by_label]
    if unknown:
        raise SystemExit(f"--proxies: unknown {', '.join(unknown)}; expected some of {', '.join(by_label)}")
    return [by_label[p.strip()] for p in text.split(",") if p.strip()]


def read_cache(path: Path) -> dict[tuple[int, str], dict[str, Any]]:
    """Rows already scored, keyed by (NB201 index, variant label)."""
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or tuple(reader.fieldnames) != CSV_FIELDS:
            raise SystemExit(f"--out {path}: not a fidelity cache (columns {reader.fieldnames}, expected "
                             f"{list(CSV_FIELDS)})")
        return {(int(r["index"]), r["variant"]): {"value": float(r["value"]),
                                                  "components": json.loads(r["components"]),
                                                  "seconds": float(r["seconds"])} for r in reader}


def score_missing(variants: list[Variant], indices: list[int], gt: GroundTruth, dataset: str,
                  batch: proxies.Batch, device: torch.device, seed: int, out: Path,
                  cache: dict[tuple[int, str], dict[str, Any]]) -> bool:
    """Score every (architecture, variant) not in ``cache``, appending each to ``out`` at once. Returns
    False when interrupted by Ctrl-C (what was scored is kept)."""
    todo = [(i, v) for i in indices for v in variants if (i, v.label) not in cache]
    built = {v.label: proxies.get(v.proxy, **v.options) for v in variants}
    new_file = not out.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", newline="") as fh, tqdm(total=len(todo), unit="score", desc="scoring") as bar:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        if new_file:
            writer.writeheader()
        try:
            for index, variant in todo:
                bar.set_postfix_str(f"arch {index} {variant.label}")
                result = built[variant.label].score(Nb201Factory(gt.arch(index), dataset), batch, device, seed)
                row = {"value": result.value, "components": result.components, "seconds": result.seconds}
                cache[(index, variant.label)] = row
                writer.writerow({"index": index, "variant": variant.label, "value": repr(result.value),
                                 "components": json.dumps(result.components), "seconds": f"{result.seconds:.6f}"})
                fh.flush()
                bar.update()
        except KeyboardInterrupt:
            return False
    return True


def fidelity(variant: Variant, indices: list[int], accuracy: np.ndarray,
             cache: dict[tuple[int, str], dict[str, Any]]) -> Fidelity:
    """Signed rho and tau-b of one variant over the scored architectures of the sample."""
    proxy = proxies.get(variant.proxy, **variant.options)
    scored = [k for k, i in enumerate(indices) if (i, variant.label) in cache]
    rows = [cache[(indices[k], variant.label)] for k in scored]
    values = np.array([r["value"] for r in rows], dtype=float)
    names = sorted({name for r in rows for name in r["components"]})
    components = {name: np.array([r["components"].get(name, math.nan) for r in rows], dtype=float)
                  for name in names}
    combined = np.asarray(proxy.combine_population(values, components), dtype=float) if rows else values
    oriented = combined if proxy.higher_is_better else -combined
    finite = np.isfinite(oriented)
    truth = accuracy[scored]
    enough = int(finite.sum()) >= 3
    return Fidelity(variant.label, len(rows), int((~finite).sum()),
                    spearman_rho(oriented[finite], truth[finite]) if enough else math.nan,
                    kendall_tau(oriented[finite], truth[finite]) if enough else math.nan,
                    variant.band, variant.note)


def print_table(results: list[Fidelity], header: str, bands: bool) -> None:
    print(header)
    print(f"{'proxy':<11} {'scored':>6} {'non-fin':>7} {'rho':>7} {'tau_b':>7}  {'band (rho)':<11} verdict  note")
    for r in results:
        band = "" if r.band is None or not bands else (f">= {r.band[0]:.2f}" if r.band[1] >= 1 else
                                                       f"{r.band[0]:.2f}-{r.band[1]:.2f}")
        verdict = r.verdict if bands else ""
        print(f"{r.label:<11} {r.n_scored:>6} {r.n_nonfinite:>7} {r.spearman:>7.3f} {r.kendall:>7.3f}  "
              f"{band:<11} {verdict:<7}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300, help="architectures sampled (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="sample, batch and proxy seed (default 0)")
    parser.add_argument("--dataset", default="cifar10", help="cifar10 (default), cifar100 or imagenet16")
    parser.add_argument("--proxies", default=None,
                        help=f"comma-separated variants (default all): {', '.join(v.label for v in VARIANTS)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="score cache CSV (default fidelity_<dataset>_<archs>_seed<seed>.csv); resumed if present")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--data", default=None, help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--ground-truth", default=None, help="NB201 table (default: $ZENBENCH_DATA lookup)")
    args = parser.parse_args(argv)
    if args.archs < 3:
        parser.error("--archs: at least 3 architectures are needed for a correlation")

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    variants = select_variants(args.proxies)
    out = args.out or Path(f"fidelity_{args.dataset}_{args.archs}_seed{args.seed}.csv")
    gt = GroundTruth.load(args.ground_truth)
    indices = gt.sample(args.archs, args.seed)
    column = gt.column(args.dataset, "test", "200")
    accuracy = gt.accuracies(indices, args.dataset, "test", "200")
    sizes = [proxies.get(v.proxy, **v.options).batch_size or 0 for v in variants]
    batch = load_batch(args.dataset, max([1, *sizes]), args.seed, root=data_root(args.data))
    batch = proxies.Batch(batch.images.to(device), None if batch.labels is None else batch.labels.to(device),
                          batch.num_classes, batch.source)

    cache = read_cache(out)
    finished = score_missing(variants, indices, gt, args.dataset, batch, device, args.seed, out, cache)
    if not finished:
        print(f"interrupted: scores so far kept in {out}; rerun the same command to resume", file=sys.stderr)
    results = [fidelity(v, indices, accuracy, cache) for v in variants]
    print_table(results, f"{len(indices)} NB201 archs (sample seed {args.seed}), ground truth {column} "
                         f"({gt.source}), batch {batch.source}, device {device}; signed correlations, "
                         f"non-finite scores excluded; cache {out}", bands=args.dataset == "cifar10")
    return 0 if finished else 130


if __name__ == "__main__":
    raise SystemExit(main())
