"""Rank fidelity of every proxy on NB201: Spearman rho and Kendall tau-b against test accuracy, beside the
published bands.

Sample: ``--archs`` (default 300) NB201 architectures drawn by ``GroundTruth.sample(n, --seed)``; dataset
``--dataset`` (default CIFAR-10); one shared real training batch (``bench.data.load_batch``, same seed);
every proxy at its reference protocol, plus Zen-Score with ``bn_stat="batch"``. Ground truth: the test
accuracy after the 200-epoch schedule (``cifar10_test`` for CIFAR-10, REFERENCE A.0).

Correlations are signed, on the score oriented by the proxy's direction (``higher_is_better``), after the
proxy's population-level combination (its stored ``population_rule``: TE-NAS's rank sum of −κ and #LR; the
value itself for the others). Non-finite scores (the NaN policies: e.g. a disconnected NB201 cell) are left out
of the correlations and counted (the suite's policy); the column "rho nf-last" ranks them last instead, as
the reference codes' own analyses do (−inf sorts last; NASLib maps NaN/inf to −1e8). Each rho comes with a
95% bootstrap interval over the architectures (:func:`bench.statistics.bootstrap_distribution`).

Sample check: #params is deterministic, so its rho on the sample minus its rho on all 15,625 architectures
shows how far the draw of architectures alone moves a correlation (printed under the table); a miss of
about that size, with the band inside the proxy's interval, is what an unrepresentative sample looks like,
and a larger sample (``--archs``) settles it. Bands (CIFAR-10; issue #3 / REFERENCE A.3d): SynFlow 0.74-0.80,
NASWOT 0.76-0.81, grad-norm 0.55-0.66, #params 0.73-0.78 (and conv-only FLOPs, which rank identically),
TE-NAS rank sum >= 0.65; Zen-Score has no band (REFERENCE A.3's independent check gave rho 0.40 with
``bn_stat=running_var`` and 0.49 with batch sigma on its 1,000 architectures; ``check_zen_anchor.py``
scores A.3's own sample and gives 0.40 for the former).

Scores go through the scoring runner (:func:`bench.runner.run_benchmark`) into a results store
(``--store``), so an interrupted run resumes where it stopped, and a store already filled by
``zenbench bench`` with the same seed is reused: ``GroundTruth.sample`` is nested, so the first 300
architectures of a 1,000-architecture run are this sample. Figures are printed for whatever the store holds.

Full command (about 30-40 minutes on 2 CPU threads from an empty store, most of it TE-NAS and NASWOT):
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_fidelity.py --store fidelity.db
Smoke test:
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_fidelity.py --archs 3 --store /tmp/f.db
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import proxies
from bench.ground_truth import GroundTruth
from bench.runner import run_benchmark
from bench.statistics import bootstrap_distribution, kendall_tau, population_scores, rank_nonfinite_last, spearman_rho
from bench.store import ResultStore


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
    Variant("zen", "zen", {}, None, "A.3: 0.40 on its own sample (check_zen_anchor.py: ours 0.40 there)"),
    Variant("zen@batch", "zen", {"bn_stat": "batch"}, None, "A.3: 0.49 with its own batch-sigma formula"),
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
    spearman_low: float = math.nan
    spearman_high: float = math.nan
    spearman_nonfinite_last: float = math.nan

    @property
    def verdict(self) -> str:
        if self.band is None or math.isnan(self.spearman):
            return ""
        if self.band[0] <= self.spearman <= self.band[1]:
            return "PASS"
        overlaps = self.spearman_low <= self.band[1] and self.spearman_high >= self.band[0]
        return "MISS (band within 95% CI)" if overlaps else "MISS"


def select_variants(text: str | None) -> list[Variant]:
    if text is None:
        return list(VARIANTS)
    by_label = {v.label: v for v in VARIANTS}
    unknown = [p for p in text.split(",") if p.strip() and p.strip() not in by_label]
    if unknown:
        raise SystemExit(f"--proxies: unknown {', '.join(unknown)}; expected some of {', '.join(by_label)}")
    return [by_label[p.strip()] for p in text.split(",") if p.strip()]


def fidelity(variant: Variant, indices: list[str], accuracy: np.ndarray, rows: Any) -> Fidelity:
    """Signed rho and tau-b of one variant over the architectures (spec strings) of the sample it has scored."""
    option_hash = proxies.get(variant.proxy, **variant.options).option_hash()
    mine = rows[(rows["proxy"] == variant.proxy) & (rows["option_hash"] == option_hash)]
    position = {spec: k for k, spec in enumerate(indices)}
    mine = mine[mine["arch"].isin(position)].drop_duplicates("arch")
    if mine.empty:
        return Fidelity(variant.label, 0, 0, math.nan, math.nan, variant.band, variant.note)
    mine = mine.iloc[np.argsort([position[a] for a in mine["arch"]], kind="stable")]  # the sample's order
    combined, _ = population_scores(mine)
    oriented = combined if bool(mine.iloc[0]["higher_is_better"]) else -combined
    truth = accuracy[[position[a] for a in mine["arch"]]]
    finite = np.isfinite(oriented)
    if int(finite.sum()) < 3:
        return Fidelity(variant.label, len(mine), int((~finite).sum()), math.nan, math.nan, variant.band, variant.note)
    draws = bootstrap_distribution(oriented[finite], truth[finite], metrics=["spearman_rho"])["spearman_rho"]
    low, high = np.percentile(draws[np.isfinite(draws)], [2.5, 97.5])
    return Fidelity(variant.label, len(mine), int((~finite).sum()), spearman_rho(oriented[finite], truth[finite]),
                    kendall_tau(oriented[finite], truth[finite]), variant.band, variant.note, float(low), float(high),
                    spearman_rho(rank_nonfinite_last(oriented), truth))


def sample_offset(gt: GroundTruth, indices: list[int], dataset: str) -> tuple[float, float]:
    """Spearman rho of #params against test accuracy on the sample and on every evaluated architecture."""
    everything = [int(i) for i in gt.evaluated]
    def rho(chosen: list[int]) -> float:
        return spearman_rho(np.array([gt.params(i, dataset) for i in chosen]),
                            gt.accuracies(chosen, dataset, "test", "200"))
    return rho(indices), rho(everything)


def print_table(results: list[Fidelity], header: str, bands: bool) -> None:
    print(header)
    print(f"{'proxy':<11} {'scored':>6} {'non-fin':>7} {'rho':>7} {'95% CI':>15} {'tau_b':>7} {'rho nf-last':>11}  "
          f"{'band (rho)':<11} {'verdict':<25} note")
    for r in results:
        band = "" if r.band is None or not bands else (f">= {r.band[0]:.2f}" if r.band[1] >= 1 else
                                                       f"{r.band[0]:.2f}-{r.band[1]:.2f}")
        verdict = r.verdict if bands else ""
        interval = f"[{r.spearman_low:.3f}, {r.spearman_high:.3f}]"
        print(f"{r.label:<11} {r.n_scored:>6} {r.n_nonfinite:>7} {r.spearman:>7.3f} {interval:>15} {r.kendall:>7.3f} "
              f"{r.spearman_nonfinite_last:>11.3f}  {band:<11} {verdict:<25} {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300, help="architectures sampled (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="sample, batch and proxy seed (default 0)")
    parser.add_argument("--dataset", default="cifar10", help="cifar10 (default), cifar100 or imagenet16")
    parser.add_argument("--proxies", default=None,
                        help=f"comma-separated variants (default all): {', '.join(v.label for v in VARIANTS)}")
    parser.add_argument("--store", type=Path, default=Path("fidelity.db"),
                        help="results store (default fidelity.db); resumed and reused if present")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--data", default=None, help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--ground-truth", default=None, help="NB201 table (default: $ZENBENCH_DATA lookup)")
    args = parser.parse_args(argv)
    if args.archs < 3:
        parser.error("--archs: at least 3 architectures are needed for a correlation")

    torch.set_num_threads(args.threads)
    variants = select_variants(args.proxies)
    gt = GroundTruth.load(args.ground_truth)
    indices = gt.sample(args.archs, args.seed)
    accuracy = gt.accuracies(indices, args.dataset, "test", "200")
    finished = True
    for variant in variants:
        summary = run_benchmark(args.store, [proxies.get(variant.proxy, **variant.options)], dataset=args.dataset,
                                sample=args.archs, seed=args.seed, device=args.device, ground_truth=gt,
                                data_root=args.data)
        if summary.interrupted:
            finished = False
            break
    with ResultStore(args.store, create=False) as store:
        rows = store.scores(args.dataset)
    results = [fidelity(v, [gt.arch(i).to_string() for i in indices], accuracy, rows) for v in variants]
    print_table(results, f"{len(indices)} NB201 archs (sample seed {args.seed}), ground truth "
                         f"{gt.column(args.dataset, 'test', '200')} ({gt.source}); signed correlations, "
                         f"non-finite scores excluded; store {args.store}", bands=args.dataset == "cifar10")
    on_sample, on_all = sample_offset(gt, indices, args.dataset)
    print(f"sample check: #params rho {on_sample:.3f} on these {len(indices)} archs, {on_all:.3f} on all "
          f"{len(gt.evaluated)} (the sample alone moves rho by {on_sample - on_all:+.3f})")
    return 0 if finished else 130


if __name__ == "__main__":
    raise SystemExit(main())
