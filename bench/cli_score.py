"""``zenbench score``: score one architecture of a benchmark with chosen proxies, as a table or JSON.

A thin layer over :func:`score_architecture`, which a user can call from Python.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bench.benchmarks.base import Benchmark
from bench.cli_bench import add_dataset_options, parse_proxies
from bench.cli_gt import add_benchmark_option, add_ground_truth_option
from bench.runner import (
    DEFAULT_IMAGE_BATCH,
    check_run,
    make_factory,
    resolve_benchmark,
    resolve_device,
    resolve_proxies,
)
from proxies import Batch, Proxy


@dataclass(frozen=True)
class ProxyScore:
    """One proxy's score of the architecture, with the protocol that produced it."""

    proxy: str
    options: dict[str, Any]
    value: float
    seconds: float
    peak_memory_mb: float | None
    components: dict[str, float]
    input_kind: str
    batch_source: str | None
    """Where the images came from (``None`` for a proxy that takes no images)."""


@dataclass(frozen=True)
class ArchitectureScores:
    arch: str
    """The benchmark's spec string of the architecture."""
    index: int | None
    """The index the architecture was given by (NB201's ``--arch 123``), else ``None``."""
    dataset: str
    device: str
    seed: int
    scores: list[ProxyScore] = field(default_factory=list)
    benchmark: str = "nb201"
    network: str = "default"


def resolve_arch(benchmark: Benchmark, text: str,
                 ground_truth: str | os.PathLike | None = None) -> tuple[Any, int | None]:
    """The architecture of ``text`` (the benchmark's parser), and the index it was given by when the
    benchmark takes one (NB201: digits, looked up in ``ground_truth``) rather than a spec."""
    text = text.strip()
    if ground_truth is not None:
        benchmark.ground_truth(ground_truth)  # validates the source; NB201 resolves indices in it
    arch = benchmark.parse(text)
    return arch, int(text) if text.isdigit() and benchmark.format(arch) != text else None


def score_architecture(
    arch: str,
    proxies: Sequence[str | Proxy],
    dataset: str | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    ground_truth: str | os.PathLike | None = None,
    data_source: str = "auto",
    data_root: str | os.PathLike | None = None,
    benchmark: str | Benchmark = "nb201",
    network: str = "default",
) -> ArchitectureScores:
    """Score ``arch`` (a spec of ``benchmark`` ["nb201"]; NB201 also takes an index) with each proxy (names,
    ``module:Class`` specs or instances).

    ``dataset`` [None: the benchmark's first] picks the head and input size; ``network`` ["default"] one of
    the benchmark's networks; ``device`` [None: CUDA if available]; ``seed`` [0] seeds every proxy and the
    image batch; ``batch_size`` [None: each proxy's own] overrides the ``batch_size`` option of proxies that
    have one; ``ground_truth`` resolves an index; images for proxies that need them come from
    ``bench.data.load_batch(dataset, B, seed, data_source, root=data_root)``, one batch of the largest size
    needed, each proxy taking its first ``proxy.batch_size`` images.
    """
    bench_obj, bench_name = resolve_benchmark(benchmark)
    dataset = check_run(bench_obj, dataset, network)
    parsed, index = resolve_arch(bench_obj, arch, ground_truth)
    proxy_list = resolve_proxies(proxies, batch_size)
    torch_device = resolve_device(device)
    factory = make_factory(bench_obj, parsed, dataset, network)
    batch: Batch | None = None
    image_proxies = [p for p in proxy_list if p.needs != "nothing"]
    if image_proxies:
        from bench.data import load_batch  # only image-using proxies need the data module

        size = max(p.batch_size or batch_size or DEFAULT_IMAGE_BATCH for p in image_proxies)
        loaded = load_batch(dataset, size, seed, source=data_source, root=data_root)
        labels = None if loaded.labels is None else loaded.labels.to(torch_device)
        batch = Batch(loaded.images.to(torch_device), labels, loaded.num_classes, loaded.source)
    scores = []
    for proxy in proxy_list:
        uses_batch = proxy.needs != "nothing"
        result = proxy.score(factory, batch if uses_batch else None, torch_device, seed)
        scores.append(ProxyScore(proxy.name, proxy.options(), result.value, result.seconds, result.peak_memory_mb,
                                 result.components, proxy.input_kind, batch.source if uses_batch and batch else None))
    return ArchitectureScores(bench_obj.format(parsed), index, dataset, str(torch_device), seed, scores, bench_name,
                              network)


def format_table(result: ArchitectureScores) -> str:
    """The text ``zenbench score`` prints."""
    where = f" ({result.benchmark} index {result.index})" if result.index is not None else ""
    sources = sorted({s.batch_source for s in result.scores if s.batch_source})
    network = f"  network: {result.network}" if result.network != "default" else ""
    lines = [f"arch: {result.arch}{where}",
             f"benchmark: {result.benchmark}  dataset: {result.dataset}{network}  device: {result.device}  "
             f"seed: {result.seed}"
             + (f"  images: {', '.join(sources)}" if sources else "")]
    rows = [("proxy", "value", "seconds", "peak MB", "components")]
    for s in result.scores:
        peak = "-" if s.peak_memory_mb is None else f"{s.peak_memory_mb:.1f}"
        components = "  ".join(f"{k}={v:.6g}" for k, v in s.components.items())
        rows.append((s.proxy, f"{s.value:.6g}", f"{s.seconds:.3f}", peak, components))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        numbers = [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:], strict=True)]
        cells = [row[0].ljust(widths[0]), *numbers]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def to_json(result: ArchitectureScores) -> str:
    """JSON of the result; non-finite values are written as the strings "nan", "inf", "-inf"."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(asdict(result)), indent=2)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    score = subparsers.add_parser(
        "score", help="score one architecture of a benchmark with chosen proxies",
        description="Score one architecture (the benchmark's spec string; NB201 also takes an index) with each "
        "proxy; prints value, seconds, peak memory and components.")
    add_benchmark_option(score)
    score.add_argument("--arch", required=True, metavar="SPEC",
                       help="the benchmark's architecture spec (NB201: architecture string or NB201 index, which "
                       "needs the ground truth; macro: 8 digits such as 22212220)")
    score.add_argument("--proxies", required=True, metavar="LIST",
                       help="comma-separated proxy names or package.module:Class specs, e.g. zen,synflow,params")
    add_dataset_options(score)
    score.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    score.add_argument("--seed", type=int, default=0, help="seed of every proxy and the image batch (default 0)")
    score.add_argument("--batch-size", type=int, default=None, metavar="B",
                       help="batch_size option of every proxy that has one (default: each proxy's own)")
    score.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                       help="images: auto (the dataset under the data root), noise, or a path (default auto)")
    score.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    add_ground_truth_option(score)
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    result = score_architecture(
        args.arch, parse_proxies(args.proxies), dataset=args.dataset, device=args.device, seed=args.seed,
        batch_size=args.batch_size, ground_truth=args.ground_truth, data_source=args.data_source,
        data_root=args.data_root, benchmark=args.benchmark, network=args.network)
    print(to_json(result) if args.json else format_table(result))
    return 0
