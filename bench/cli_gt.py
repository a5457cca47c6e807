"""``zenbench gt``: inspect a benchmark's ground truth; convert an official NAS-Bench-201 file to the compact table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import benchmarks
from bench.benchmarks.base import Benchmark, GroundTruthTable
from bench.ground_truth import export_csv


def add_benchmark_option(parser: argparse.ArgumentParser, default: str | None = "nb201") -> None:
    """The ``--benchmark NAME`` flag (alias ``--space``) every command that reads a benchmark shares."""
    parser.add_argument(
        "--benchmark", "--space", dest="benchmark", default=default, metavar="NAME",
        help=f"{', '.join(benchmarks.names())} or package.module:Class (default {default or 'see below'})")


def add_ground_truth_option(parser: argparse.ArgumentParser) -> None:
    """The ``--ground-truth PATH`` flag every command that reads the ground truth shares."""
    parser.add_argument(
        "--ground-truth", metavar="PATH", default=None,
        help="the benchmark's ground truth: a file or data folder it reads (NB201: compact table .csv, official "
        ".pth file or data folder); default: the benchmark's own lookup under $ZENBENCH_DATA "
        "(NB201: then the official file under $TORCH_HOME)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gt = subparsers.add_parser("gt", help="benchmark ground truth: summary; NB201 export",
                               description="Inspect a benchmark's ground truth or convert an official "
                               "NAS-Bench-201 file.")
    commands = gt.add_subparsers(dest="gt_command", metavar="SUBCOMMAND", required=True)

    info = commands.add_parser("info", help="summary: architectures, source, optima, degenerate, isomorphism classes")
    add_benchmark_option(info)
    add_ground_truth_option(info)
    info.set_defaults(func=run_info)

    export = commands.add_parser("export", help="official NAS-Bench-201 .pth file -> compact table (.csv)",
                                 description="Convert an official NAS-Bench-201 file (minutes, many GB) to the "
                                 "compact table, plus nb201_cifar10_trials.csv in the same folder.")
    export.add_argument("--from", dest="source", required=True, metavar="FILE",
                        help="NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth")
    export.add_argument("--to", dest="target", required=True, metavar="CSV", help="the table to write")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(func=run_export)


def summary_text(benchmark: Benchmark, gt: GroundTruthTable) -> str:
    """The text of ``zenbench gt info``: the benchmark's own ``info(gt)`` where it has one, else counts
    (architectures, evaluated, degenerate, isomorphism classes), the best architecture per accuracy key and
    the per-trial results."""
    own = getattr(benchmark, "info", None)
    if callable(own):
        return own(gt)
    archs = [benchmark.parse(spec) for spec in gt.table.index]
    lines = [f"{benchmark.title} ground truth: {len(gt):,} architectures ({len(gt.evaluated()):,} evaluated)",
             f"source: {gt.source}",
             f"degenerate (output does not depend on the input): {sum(map(benchmark.is_degenerate, archs)):,}",
             f"distinct networks (isomorphism classes): {len({benchmark.isomorphism_id(a) for a in archs}):,}",
             "best architecture per ground-truth key (accuracy %; default keys marked *):"]
    defaults = set(gt.default_keys.values())
    for key in gt.accuracy_keys:
        values = gt.table[key]
        best = "n/a" if values.notna().sum() == 0 else f"{values.max():.2f}  {values.idxmax()}"
        lines.append(f"  {key + (' *' if key in defaults else ''):<24}{best}")
    trials = gt.trials
    lines.append("per-trial results: " + ("none" if trials is None else
                                         f"{len(trials):,} trials of {', '.join(sorted(set(trials['key'])))}"))
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    benchmark = benchmarks.get(args.benchmark)
    print(summary_text(benchmark, benchmark.ground_truth(args.ground_truth)))
    return 0


def run_export(args: argparse.Namespace) -> int:
    if Path(args.source).is_file() and not args.no_progress:
        print(f"loading {args.source} (the official file takes minutes and many GB) ...", file=sys.stderr)
    gt = export_csv(args.source, args.target, progress=not args.no_progress)
    trials = gt.trials()
    print(f"wrote {len(gt.evaluated):,} evaluated of {len(gt):,} architectures to {args.target}"
          + ("" if trials is None else f" and {len(trials):,} CIFAR-10 trials next to it"))
    return 0
