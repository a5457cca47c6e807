"""``zenbench bench`` (score proxies into a results store), ``merge`` (combine stores) and ``report``, for any
benchmark (``--benchmark``, alias ``--space``).

Thin wrappers over :func:`bench.runner.run_benchmark`, :func:`bench.store.merge_stores` and
:func:`reports.render.render_report`.
"""

from __future__ import annotations

import argparse
import sys

from bench.cli_gt import add_benchmark_option, add_ground_truth_option
from bench.cli_options import (
    add_proxy_option_argument,
    add_seed_options,
    add_threads_option,
    expand_proxies,
    make_proxies,
    parse_init_seeds,
    parse_proxy_options,
)
from bench.runner import RunConfigError, RunSummary, Shard, run_benchmark
from bench.statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, NAN_POLICIES
from bench.store import merge_stores
from bench.tables import export_table


def parse_sample(text: str) -> int | None:
    """``N`` (a positive integer) or ``all``."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise RunConfigError(f"--sample {text!r}: expected a positive integer or 'all'")
    return value


EXIT_FAILURES = 3
"""Exit code of ``zenbench bench`` when some (proxy, architecture) scores failed (the others are stored)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="score proxies on a benchmark's architectures into a results store",
        description="Score proxies on a seeded sample of a benchmark's evaluated architectures. Each score is "
        "stored as soon as it exists; rerunning the same command computes only what is missing. A proxy that "
        "fails on an architecture is recorded as failed (with its error) and the run goes on; exit codes: 0 "
        f"done, {EXIT_FAILURES} done but some scores failed (listed; a rerun retries them), 130 interrupted "
        "(Ctrl-C; rerun to finish), 2 bad input.")
    add_benchmark_option(bench)
    add_dataset_options(bench)
    bench.add_argument("--proxies", required=True, metavar="LIST",
                       help="comma-separated proxy names or package.module:Class specs, e.g. zen,synflow,params; "
                       "all: every registered proxy")
    add_proxy_option_argument(bench)
    bench.add_argument("--sample", required=True, metavar="N|all", help="architectures to sample, or all")
    bench.add_argument("--seed", type=int, default=0,
                       help="seed of the architecture sample (default 0); also the init seed unless "
                       "--init-seeds or --repeats is given")
    add_seed_options(bench)
    add_threads_option(bench)
    bench.add_argument("--batch-size", type=int, default=None, metavar="B",
                       help="batch_size option of every proxy that has one (default: each proxy's own)")
    bench.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    bench.add_argument("--batch-per-arch", action="store_true",
                       help="a fresh image batch per architecture (seed from --seed and the architecture's spec) "
                       "instead of one shared batch")
    bench.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                       help="images: auto (the dataset under the data root), noise, or a path (default auto)")
    bench.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    add_ground_truth_option(bench)
    bench.add_argument("--store", required=True, metavar="DB", help="results store (SQLite file, created if new)")
    bench.add_argument("--workers", type=int, default=1, metavar="N",
                       help="local worker processes (default 1: score in this process); each uses --threads "
                       "torch threads (default 1 with workers) or one of --devices")
    bench.add_argument("--devices", default=None, metavar="LIST",
                       help="devices of the workers, round-robin, e.g. cuda:0,cuda:1 (default: --device)")
    bench.add_argument("--executor", default="local", choices=["local", "ray"],
                       help="local: this process, or --workers processes (default); ray: tasks on a Ray cluster "
                       "(pip install 'zenbench[ray]'), one GPU each with --device cuda")
    bench.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                       help="the Ray cluster to join (default: start a local one of --workers CPUs on 127.0.0.1)")
    bench.add_argument("--dedupe", action="store_true",
                       help="score one architecture per isomorphism class and copy its scores to the others "
                       "(marked copied_from in the store; exact in distribution, not bit-identical)")
    bench.add_argument("--resume-from", action="append", default=[], metavar="TABLE",
                       help="a published score table (zenbench export) whose scores are written into the store "
                       "first, so only what it lacks is computed; repeatable")
    bench.add_argument("--shard", default="0/1", metavar="i/n",
                       help="score only sample positions p with p %% n == i (0 <= i < n; default 0/1)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(func=run_bench)

    merge = subparsers.add_parser("merge", help="merge results stores (e.g. shards) into one",
                                  description="Merge results stores. Rows with the same key must hold identical "
                                  "values, otherwise nothing is written and the conflict is reported.")
    merge.add_argument("sources", nargs="+", metavar="DB", help="stores to merge")
    merge.add_argument("--into", required=True, metavar="DB", help="target store (created if new)")
    merge.set_defaults(func=run_merge)

    export = subparsers.add_parser(
        "export", help="write a store's scores of one benchmark and dataset as a compressed score table",
        description="One row per architecture, one column per proxy protocol (with its per-row cost and "
        "components), the protocol in a JSON sidecar beside the table. The table is what a run commits and "
        "publishes: `zenbench bench --resume-from TABLE` continues from it, `zenbench report --table TABLE` "
        "renders from it.")
    export.add_argument("--store", required=True, metavar="DB", help="results store to read")
    export.add_argument("--out", required=True, metavar="TABLE",
                        help="table file, NAME.csv.xz or NAME.csv.gz (sidecar NAME.json)")
    export.add_argument("--benchmark", default=None, help="benchmark to export (default: the store's only one)")
    export.add_argument("--dataset", default=None, help="dataset to export (default: the store's only one)")
    export.set_defaults(func=run_export)

    report = subparsers.add_parser("report", help="Markdown report with CSV tables and PNG figures from a store",
                                   description="Rank correlations with bootstrap intervals, published values "
                                   "beside ours, the noise ceiling and the protocol, from a results store "
                                   "or a published score table.")
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--store", metavar="DB", help="results store to read")
    source.add_argument("--table", action="append", metavar="TABLE",
                        help="published score table(s) to read instead of a store (repeatable, e.g. one per "
                        "dataset)")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for README.md, CSV and PNG files")
    add_benchmark_option(report, default=None)
    add_ground_truth_option(report)
    report.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    report.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                        help=f"interval level (default {DEFAULT_CONFIDENCE})")
    report.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the resamples (default 0)")
    report.add_argument("--nan-policy", default="exclude", choices=list(NAN_POLICIES),
                        help="non-finite scores: " + "; ".join(f"{k}: {v}" for k, v in NAN_POLICIES.items()))
    report.add_argument("--title", default=None, help="report title (default: from the folder name)")
    report.add_argument("--gt", default=None, metavar="KEY", help="ground-truth key to rank against, e.g. "
                        "cifar10_valid or hp12_cifar10_test, for the dataset it names (default: the key each run "
                        "recorded, the benchmark's default); printed with every table")
    report.add_argument("--scatter-axes", default="rank", choices=["rank", "value"],
                        help="scatter plots of ranks (default: one outlier cannot flatten a panel) or raw values")
    report.set_defaults(func=run_report)


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """``--dataset`` (default: the benchmark's first) and ``--network`` (default ``default``)."""
    parser.add_argument("--dataset", default=None,
                        help="one of the benchmark's datasets (default: its first; NB201: cifar10, cifar100, "
                        "imagenet16)")
    parser.add_argument("--network", default="default",
                        help="the benchmark's network option (default: its trained network; NB201 also naslib)")


def run_bench(args: argparse.Namespace) -> int:
    sample = parse_sample(args.sample)
    shard = Shard.parse(args.shard)
    init_seeds = parse_init_seeds(args.init_seeds, args.repeats) \
        if args.init_seeds is not None or args.repeats is not None else None
    specs = expand_proxies(args.proxies)
    proxies = make_proxies(specs, parse_proxy_options(args.proxy_option), args.batch_size) \
        if args.proxy_option else specs
    summary = run_benchmark(
        args.store, proxies, benchmark=args.benchmark, network=args.network, dataset=args.dataset,
        sample=sample, seed=args.seed, init_seeds=init_seeds, batch_size=args.batch_size, device=args.device,
        batch_per_arch=args.batch_per_arch, ground_truth=args.ground_truth, data_source=args.data_source,
        data_root=args.data_root, shard=shard, threads=args.threads, resume_from=args.resume_from, dedupe=args.dedupe,
        workers=args.workers, devices=args.devices.split(",") if args.devices else None,
        executor=args.executor, ray_address=args.ray_address,
        progress=not args.no_progress)
    print(format_summary(summary), file=sys.stderr)
    if summary.interrupted:
        return 130
    return EXIT_FAILURES if summary.failures else 0


def format_summary(summary: RunSummary, limit: int = 20) -> str:
    """What ``zenbench bench`` prints when it ends: the counts, then each failure (proxy, architecture,
    init seed, error; the first ``limit``, then how many more)."""
    state = "interrupted: rows so far are kept, rerun the command to finish" if summary.interrupted else "done"
    lines = [f"{state}: {summary.n_computed} score(s) computed, {summary.n_already} already stored, "
             f"{summary.n_tasks} in this shard ({summary.n_archs} architectures); "
             + (f"{summary.n_copied} copied from an isomorphic architecture; " if summary.n_copied else "")
             + f"{summary.n_nonfinite} non-finite; "
             f"{len(summary.failures)} failed; store {summary.store}"]
    if summary.failures:
        lines.append(f"{len(summary.failures)} score(s) failed (stored as failed; rerun the command to retry "
                     "only these):")
        lines += [f"  {proxy} on {arch} (init seed {seed}): {error}"
                  for proxy, arch, seed, error in summary.failures[:limit]]
        if len(summary.failures) > limit:
            lines.append(f"  ... and {len(summary.failures) - limit} more")
    return "\n".join(lines)


def run_merge(args: argparse.Namespace) -> int:
    summary = merge_stores(args.sources, args.into)
    print(f"merged {len(summary.sources)} store(s) into {summary.into}: {summary.added} new row(s) of "
          f"{summary.offered} offered, {summary.runs_added} run record(s) added")
    return 0


def run_export(args: argparse.Namespace) -> int:
    summary = export_table(args.store, args.out, benchmark=args.benchmark, dataset=args.dataset)
    print(f"wrote {summary.table} and {summary.sidecar}: {summary.benchmark} {summary.dataset}, "
          f"{summary.n_archs} architectures, {summary.n_protocols} proxy protocol(s), {summary.n_scores} scores")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from reports.render import render_report  # matplotlib is imported only when a report is drawn

    result = render_report(args.store or args.table, args.out, benchmark=args.benchmark, ground_truth=args.ground_truth,
                           n_resamples=args.resamples,
                           confidence=args.confidence, seed=args.bootstrap_seed, nan_policy=args.nan_policy,
                           title=args.title, gt_key=args.gt, scatter_axes=args.scatter_axes)
    print(f"wrote {result.readme} ({len(result.files)} files)")
    return 0
