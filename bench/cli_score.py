"""``zenbench score``: score one architecture of a benchmark, or a custom model (``--model``), with chosen
proxies, as a table or JSON.

A thin layer over :func:`bench.api.score`, which a user can call from Python.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from typing import Any

from bench.api import MODEL_BENCHMARK, ArchitectureScores, load_model, score
from bench.cli_bench import EXIT_FAILURES, add_dataset_options
from bench.cli_gt import add_benchmark_option, add_ground_truth_option
from bench.cli_options import OptionError, add_threads_option, expand_proxies, parse_proxy_options


def format_table(result: ArchitectureScores) -> str:
    """The text ``zenbench score`` prints."""
    where = f" ({result.benchmark} index {result.index})" if result.index is not None else ""
    sources = sorted({s.batch_source for s in result.scores if s.batch_source})
    network = f"  network: {result.network}" if result.network != "default" else ""
    what = "model" if result.benchmark == MODEL_BENCHMARK else "arch"
    lines = [f"{what}: {result.arch}{where}",
             f"benchmark: {result.benchmark}  dataset: {result.dataset}{network}  device: {result.device}  "
             f"threads: {result.threads}  seed: {result.seed}"
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
    lines += [f"{f.proxy}  failed: {f.error}" for f in result.failures]
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


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``C,H,W`` (three positive integers), e.g. ``3,224,224``."""
    try:
        shape = tuple(int(word) for word in str(text).split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise OptionError(f"--input-shape {text!r}: expected three positive integers C,H,W, e.g. 3,224,224")
    return shape  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    score_parser = subparsers.add_parser(
        "score", help="score one architecture of a benchmark, or a custom model, with chosen proxies",
        description="Score one architecture (the benchmark's spec string; NB201 also takes an index), or a custom "
        "network (--model), with each proxy; prints value, seconds, peak memory and components.")
    add_benchmark_option(score_parser)
    what = score_parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--arch", metavar="SPEC",
                      help="the benchmark's architecture spec (NB201: architecture string or NB201 index, which "
                      "needs the ground truth; macro: 8 digits such as 22212220)")
    what.add_argument("--model", metavar="SPEC",
                      help="a custom network instead of --arch: package.module:callable (returns a fresh untrained "
                      "nn.Module; ./module.py is found; num_classes= is passed when it takes it) or timm:NAME "
                      "(optional extra zenbench[timm]). Its forward_pre_gap or forward_features gives the "
                      "pre-pooling tensor. Images: Gaussian of --input-shape unless --dataset is given")
    score_parser.add_argument("--input-shape", default="3,32,32", metavar="C,H,W",
                              help="input shape of a --model network (default 3,32,32)")
    score_parser.add_argument("--num-classes", type=int, default=10, metavar="K",
                              help="classes of a --model network's head (default 10)")
    score_parser.add_argument("--proxies", required=True, metavar="LIST",
                              help="comma-separated proxy names or package.module:Class specs, e.g. "
                              "zen,synflow,params; all: every registered proxy")
    score_parser.add_argument("--proxy-option", action="append", default=[], metavar="PROXY.KEY=VALUE",
                              help="an option of one proxy, repeatable (e.g. zen.bn_stat=batch); the same key "
                              "twice scores the proxy once per value")
    add_dataset_options(score_parser)
    score_parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    add_threads_option(score_parser)
    score_parser.add_argument("--seed", type=int, default=0,
                              help="seed of every proxy and the image batch (default 0)")
    score_parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                              help="batch_size option of every proxy that has one (default: each proxy's own)")
    score_parser.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                              help="images: auto (the dataset under the data root), noise, or a path "
                              "(default auto)")
    score_parser.add_argument("--data-root", default=None, metavar="DIR",
                              help="data folder (default $ZENBENCH_DATA)")
    add_ground_truth_option(score_parser)
    score_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score_parser.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    common: dict[str, Any] = dict(
        proxy_options=parse_proxy_options(args.proxy_option), dataset=args.dataset, device=args.device,
        seed=args.seed, batch_size=args.batch_size, threads=args.threads, data_source=args.data_source,
        data_root=args.data_root)
    proxies = expand_proxies(args.proxies)
    if args.model is not None:
        result = score(load_model(args.model, args.num_classes), proxies, input_shape=parse_input_shape(
            args.input_shape), num_classes=args.num_classes, name=args.model, **common)
    else:
        result = score(args.arch, proxies, benchmark=args.benchmark, network=args.network,
                       ground_truth=args.ground_truth, **common)
    print(to_json(result) if args.json else format_table(result))
    for failure in result.failures:
        print(f"zenbench: proxy {failure.proxy} failed: {failure.error}", file=sys.stderr)
    return EXIT_FAILURES if result.failures else 0
