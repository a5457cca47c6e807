"""``zenbench gt``: inspect the NAS-Bench-201 ground truth, convert an official file to the compact table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.ground_truth import DATASETS, SPLITS, GroundTruth, GroundTruthSummary, column_name, export_csv


def add_ground_truth_option(parser: argparse.ArgumentParser) -> None:
    """The ``--ground-truth PATH`` flag every command that reads the ground truth shares."""
    parser.add_argument(
        "--ground-truth", metavar="PATH", default=None,
        help="compact table (.csv), official NAS-Bench-201 file (.pth) or data folder; default: "
        "$ZENBENCH_DATA/nb201/nb201.csv, then the official file under $TORCH_HOME",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gt = subparsers.add_parser("gt", help="NAS-Bench-201 ground truth: summary, export",
                               description="Inspect the NAS-Bench-201 ground truth or convert an official file.")
    commands = gt.add_subparsers(dest="gt_command", metavar="SUBCOMMAND", required=True)

    info = commands.add_parser("info", help="summary: architectures, source, optima, disconnected, canonical classes")
    add_ground_truth_option(info)
    info.set_defaults(func=run_info)

    export = commands.add_parser("export", help="official .pth file -> compact table (.csv)",
                                 description="Convert an official NAS-Bench-201 file (minutes, many GB) to the "
                                 "compact table, plus nb201_cifar10_trials.csv in the same folder.")
    export.add_argument("--from", dest="source", required=True, metavar="FILE",
                        help="NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth")
    export.add_argument("--to", dest="target", required=True, metavar="CSV", help="the table to write")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(func=run_export)


def format_summary(summary: GroundTruthSummary) -> str:
    """The text of ``zenbench gt info``."""
    lines = [
        f"NAS-Bench-201 ground truth: {summary.num_archs:,} architectures "
        f"({summary.num_evaluated:,} evaluated)",
        f"source: {summary.source}",
        f"disconnected (input never reaches output): {summary.num_disconnected:,}",
        f"distinct networks (canonical classes): {summary.num_canonical:,}",
        "optima (hp=200, mean over seeds; accuracy % and NB201 index):",
        f"  {'dataset':<12}" + "".join(f"{split:>20}" for split in SPLITS),
    ]
    for ds in DATASETS:
        cells = []
        for split in SPLITS:
            best = summary.optima.get(column_name(ds, split))
            cells.append("n/a" if best is None else f"{best[1]:.2f} (#{best[0]})")
        lines.append(f"  {ds:<12}" + "".join(f"{cell:>20}" for cell in cells))
    lines.append("per-trial CIFAR-10 results: " + ("none" if summary.num_trials is None
                                                  else f"{summary.num_trials:,} trials"))
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    gt = GroundTruth.load(args.ground_truth)
    print(format_summary(gt.summary()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    if Path(args.source).is_file() and not args.no_progress:
        print(f"loading {args.source} (the official file takes minutes and many GB) ...", file=sys.stderr)
    gt = export_csv(args.source, args.target, progress=not args.no_progress)
    trials = gt.trials()
    print(f"wrote {len(gt.evaluated):,} evaluated of {len(gt):,} architectures to {args.target}"
          + ("" if trials is None else f" and {len(trials):,} CIFAR-10 trials next to it"))
    return 0
