"""Seconds per architecture of every proxy on 30 fixed NB201 architectures, beside the reference codes' times.

Architectures: NB201 indices ``range(0, 15625, 521)`` (30), CIFAR-10, one shared real training batch (seeded),
each proxy at its reference batch size, ``torch.set_num_threads(2)`` (``--threads``). Printed per proxy:
median and 90th-percentile seconds per architecture, the reference implementation's median on a machine of
this kind (issue #3: SynFlow 0.245, grad-norm 0.535, NASWOT 1.67, Zen 0.32 (zero-cost-nas, nas-without-
training, ZenNAS codes); issue #10: snip 0.66, grasp 2.14, fisher 0.76, jacob_cov 0.71 (zero-cost-nas),
AZ-NAS 0.64 (its harness; grad-norm 0.61 and synflow 0.28 there, the stricter #3 figures are kept); TE-NAS NTK
1.20 on its thin network and 14.7 on the full network, TE-NAS linear
regions 0.12 (TENAS code; the NTK timings used a batch of 64, so our NTK rows do too)), the ratio ours /
reference and the verdict against the requirement (ratio <= 1) and the target (ratio <= 0.5).

``--loop-baseline`` also times, on the same architectures, batch and networks, the NTK as the reference
computes it (TENAS ``get_ntk_n``: one batched forward, then one ``backward`` per sample with
``retain_graph``, gradients of every "weight" parameter concatenated, Θ = J·Jᵀ, eigenvalues), so the
ratio of the two NTK rows is measured under identical conditions; the κ of both must agree.

The time of one score is ``ProxyResult.seconds``: the proxy's whole computation on a fresh network,
building and initialising it included (the factory call), data already on the device. The first
``--warmup`` scores of each proxy (on the first architecture) are run and thrown away: they pay one-off
costs (allocator growth, oneDNN kernel selection, lazy imports) that a long scoring run does not.

Full command (quiet machine; about 15 minutes on 2 CPU threads, most of it TE-NAS on the full network):
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_speed.py
With the same-machine loop baseline for the NTK rows (adds about 10 minutes):
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_speed.py --loop-baseline
Smoke test:
    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/bench_proxy_speed.py --archs 2 --proxies synflow,tenas.lr
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import proxies
from bench.data import data_root, load_batch
from bench.ground_truth import GroundTruth
from bench.runner import resolve_device
from proxies.mechanics import build
from proxies.tenas import NTK_VARIANT, condition_number
from search.spaces.nb201 import Nb201Factory

FIXED_ARCHS: tuple[int, ...] = tuple(range(0, 15625, 521))
"""The 30 NB201 indices the reference timings were taken on."""


@dataclass(frozen=True)
class Variant:
    """One timed row: a registered proxy with options, and the reference median (None: no reference)."""

    label: str
    proxy: str
    options: dict[str, Any] = field(default_factory=dict)
    reference: float | None = None
    note: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("zen", "zen", {}, 0.32, "ZenNAS, batch 64"),
    Variant("grad_norm", "grad_norm", {}, 0.535, "zero-cost-nas, batch 64"),
    Variant("synflow", "synflow", {}, 0.245, "zero-cost-nas"),
    Variant("naswot", "naswot", {}, 1.67, "nas-without-training, batch 128"),
    Variant("tenas.ntk-thin", "tenas", {"parts": "ntk", "batch_size": 64}, 1.20, "TENAS NTK, thin net, batch 64"),
    Variant("tenas.ntk-full", "tenas", {"parts": "ntk", "network": "full", "batch_size": 64}, 14.7,
            "TENAS NTK, full net, batch 64"),
    Variant("tenas.lr", "tenas", {"parts": "lr"}, 0.12, "TENAS linear regions, 3,000 3x3 crops"),
    Variant("tenas", "tenas", {}, None, "default protocol: thin NTK at batch 72 + linear regions"),
    Variant("snip", "snip", {}, 0.66, "zero-cost-nas, batch 64"),
    Variant("grasp", "grasp", {}, 2.14, "zero-cost-nas, batch 64"),
    Variant("fisher", "fisher", {}, 0.76, "zero-cost-nas, batch 64"),
    Variant("jacob_cov", "jacob_cov", {}, 0.71, "zero-cost-nas, batch 64"),
    Variant("az_nas", "az_nas", {}, 0.64, "AZ-NAS harness, NB201"),
    Variant("plain", "plain", {}, None, "zero-cost-nas definition"),
    Variant("epe_nas", "epe_nas", {}, None, "NASLib definition"),
    Variant("l2_norm", "l2_norm", {}, None, "NASLib definition"),
    Variant("zico", "zico", {}, None, "SLDGroup/ZiCo, 2 batches"),
    Variant("meco", "meco", {}, None, "HamsterMimi/MeCo"),
    Variant("swap", "swap", {}, None, "pym1024/SWAP"),
    Variant("params", "params", {}, None, "analytic"),
    Variant("flops", "flops", {}, None, "analytic"),
)


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: list[float]
    reference: float | None
    note: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        return float(np.percentile(self.seconds, 90))

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.median / self.reference


def parse_archs(text: str) -> list[int]:
    """``N`` = the first N of the 30 fixed architectures; ``i,j,k`` = those NB201 indices."""
    if "," not in text and text.strip().isdigit() and int(text) <= len(FIXED_ARCHS):
        if int(text) < 1:
            raise argparse.ArgumentTypeError("--archs: expected at least one architecture")
        return list(FIXED_ARCHS[: int(text)])
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--archs {text!r}: expected a count up to 30 or comma-separated "
                                         f"NB201 indices") from None


def select_variants(text: str | None) -> list[Variant]:
    if text is None:
        return list(VARIANTS)
    by_label = {v.label: v for v in VARIANTS}
    chosen = []
    for label in (part.strip() for part in text.split(",") if part.strip()):
        if label not in by_label:
            raise SystemExit(f"--proxies: unknown row {label!r}; expected some of {', '.join(by_label)}")
        chosen.append(by_label[label])
    return chosen


def time_variants(variants: list[Variant], archs: list[int], gt: GroundTruth, dataset: str,
                  batch: proxies.Batch, device: torch.device, seed: int, warmup: int) -> list[Timing]:
    """Score every variant on every architecture; seconds per score, warm-up scores excluded."""
    built = [(v, proxies.get(v.proxy, **v.options)) for v in variants]
    seconds: dict[str, list[float]] = {v.label: [] for v in variants}
    first = Nb201Factory(gt.arch(archs[0]), dataset)
    for _, proxy in built:
        for _ in range(warmup):
            proxy.score(first, batch, device, seed)
    with tqdm(total=len(archs) * len(built), unit="score", desc="timing") as bar:
        for index in archs:
            factory = Nb201Factory(gt.arch(index), dataset)
            for variant, proxy in built:
                bar.set_postfix_str(f"arch {index} {variant.label}")
                seconds[variant.label].append(proxy.score(factory, batch, device, seed).seconds)
                bar.update()
    return [Timing(v.label, seconds[v.label], v.reference, v.note) for v in variants]


def loop_ntk(factory: Nb201Factory, images: torch.Tensor, device: torch.device, seed: int,
             thin: bool) -> tuple[float, float]:
    """(seconds, κ) of the reference NTK computation: a per-sample backward loop (TENAS ``get_ntk_n``), on
    the network ``tenas`` scores with this seed (its first per-measure seed, drawn as ``TeNas.compute`` does)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        torch.manual_seed(int(torch.randint(2**62, (2,))[0]))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        net = build(factory, device, "kaiming_fan_out", variant=NTK_VARIANT if thin else None)
        weights = [p for name, p in net.named_parameters() if "weight" in name]
        logits = net(images)
        rows = []
        for i in range(len(logits)):
            grads = torch.autograd.grad(logits[i].sum(), weights, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([torch.zeros_like(w).flatten() if g is None else g.flatten()
                                   for w, g in zip(weights, grads, strict=True)]))
        jacobian = torch.stack(rows).double()
        kappa = condition_number(jacobian @ jacobian.T)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, kappa


def time_loop_baselines(variants: list[Variant], archs: list[int], gt: GroundTruth, dataset: str,
                        batch: proxies.Batch, device: torch.device, seed: int, warmup: int) -> list[Timing]:
    """The per-sample loop on the NTK rows' networks and batch; checks its κ against ours."""
    timings = []
    for variant in (v for v in variants if v.proxy == "tenas" and v.options.get("parts") == "ntk"):
        proxy = proxies.get(variant.proxy, **variant.options)
        images = batch.images[: proxy.batch_size]
        thin = variant.options.get("network", "thin") == "thin"
        for _ in range(warmup):
            loop_ntk(Nb201Factory(gt.arch(archs[0]), dataset), images, device, seed, thin)
        seconds, worst = [], 0.0
        for index in tqdm(archs, unit="arch", desc=f"loop baseline {variant.label}"):
            factory = Nb201Factory(gt.arch(index), dataset)
            took, kappa = loop_ntk(factory, images, device, seed, thin)
            ours = -proxy.score(factory, batch, device, seed).value
            if math.isfinite(kappa) and math.isfinite(ours):
                worst = max(worst, abs(ours - kappa) / kappa)
            seconds.append(took)
        timings.append(Timing(f"{variant.label} loop", seconds, None,
                              f"per-sample backward loop; max relative kappa difference to ours {worst:.1e}"))
    return timings


def verdict(ratio: float | None) -> str:
    if ratio is None:
        return ""
    if ratio <= 0.5:
        return "target met (<= 0.5x)"
    return "requirement met (<= 1x)" if ratio <= 1 else "SLOWER than reference"


def print_table(timings: list[Timing], header: str) -> None:
    print(header)
    print(f"{'proxy':<16} {'median s':>9} {'p90 s':>9} {'ref s':>7} {'ratio':>6}  verdict / note")
    for t in timings:
        ref = "" if t.reference is None else f"{t.reference:.3f}"
        ratio = "" if t.ratio is None else f"{t.ratio:.2f}"
        tail = "  ".join(part for part in (verdict(t.ratio), t.note) if part)
        print(f"{t.label:<16} {t.median:>9.3f} {t.p90:>9.3f} {ref:>7} {ratio:>6}  {tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=parse_archs, default=list(FIXED_ARCHS),
                        help="N (first N of the 30 fixed architectures) or comma-separated NB201 indices")
    parser.add_argument("--proxies", default=None,
                        help=f"comma-separated rows (default all): {', '.join(v.label for v in VARIANTS)}")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seed", type=int, default=0, help="batch and proxy seed (default 0)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed scores per proxy first (default 1)")
    parser.add_argument("--data", default=None, help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--ground-truth", default=None, help="NB201 table (default: $ZENBENCH_DATA lookup)")
    parser.add_argument("--loop-baseline", action="store_true",
                        help="also time the reference per-sample loop for the TE-NAS NTK rows (same machine)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    variants = select_variants(args.proxies)
    gt = GroundTruth.load(args.ground_truth)
    sizes = [proxies.get(v.proxy, **v.options).batch_size or 0 for v in variants]
    batch = load_batch(args.dataset, max([1, *sizes]), args.seed, root=data_root(args.data))
    batch = proxies.Batch(batch.images.to(device), None if batch.labels is None else batch.labels.to(device),
                          batch.num_classes, batch.source)
    try:
        timings = time_variants(variants, args.archs, gt, args.dataset, batch, device, args.seed, args.warmup)
        if args.loop_baseline:
            timings += time_loop_baselines(variants, args.archs, gt, args.dataset, batch, device, args.seed,
                                           args.warmup)
    except KeyboardInterrupt:
        print("interrupted: no figures", file=sys.stderr)
        return 130
    print_table(timings, f"{len(args.archs)} NB201 architectures, {args.dataset}, device {device}, "
                         f"{args.threads} CPU threads, batch {batch.source}; warm-up excluded ({args.warmup} "
                         f"score(s) per proxy); torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
