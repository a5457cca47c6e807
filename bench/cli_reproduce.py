"""``zenbench reproduce NAME``: a paper's table by its protocol's name, beside zenbench's defaults, with a verdict.
A thin layer over :mod:`bench.reproduce` and :func:`reports.reproduce.render_reproduction`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.cli_bench import EXIT_FAILURES, parse_sample
from bench.cli_options import add_threads_option
from bench.statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bench.reproduce import builtin_protocols

    parser = subparsers.add_parser(
        "reproduce", help="run a paper's protocol by name and compare with its published table",
        description="Score and measure the proxies of a paper's table as the paper did (a declarative protocol "
        "file: options, network, batch, input, init seeds, ground-truth key, NaN policy, metric, sample), beside "
        "zenbench's default protocol, and write a report with the paper's figure, ours with a 95%% interval, and "
        "a verdict. Built-in protocols: " + ", ".join(builtin_protocols()) + "; or the path of your own .toml "
        "(see bench/protocols/). Resumable: rerun the same command to continue.")
    parser.add_argument("protocol", metavar="NAME", nargs="?", help="a built-in protocol or a .toml file")
    parser.add_argument("--list", action="store_true", help="list the built-in protocols and exit")
    parser.add_argument("--sample", default=None, metavar="N|all",
                        help="architectures to score (default: the protocol's default_sample; all: the paper's)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    add_threads_option(parser)
    parser.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--out", default=None, metavar="DIR", help="report folder (default reports/reproduce/NAME)")
    parser.add_argument("--work", default=None, metavar="DIR",
                        help="folder of the two results stores (default runs/reproduce/NAME)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples (default 1000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from bench import benchmarks
    from bench.reproduce import (
        UNJUDGED,
        builtin_protocols,
        evaluate_protocol,
        load_protocol,
        paper_architectures,
        resolve_sample,
        score_protocol,
    )
    from reports.reproduce import render_reproduction

    if args.list or not args.protocol:
        for name in builtin_protocols():
            print(f"{name:18s} {load_protocol(name).title}")
        return 0 if args.list else 2
    protocol = load_protocol(args.protocol)
    sample = "default" if args.sample is None else parse_sample(args.sample)
    n = resolve_sample(protocol, sample)
    work = Path(args.work or Path("runs") / "reproduce" / protocol.name)
    out = Path(args.out or Path("reports") / "reproduce" / protocol.name)
    paper, default, failures = score_protocol(protocol, work, sample=n, device=args.device, threads=args.threads,
                                              data_root=args.data_root, progress=not args.no_progress)
    gt = benchmarks.resolve(protocol.benchmark).ground_truth()
    table = evaluate_protocol(protocol, paper, default, ground_truth=gt, n_resamples=args.resamples)
    words = ["zenbench", "reproduce", args.protocol] + (["--sample", args.sample] if args.sample else []) + \
        (["--device", args.device] if args.device else []) + (["--threads", str(args.threads)] if args.threads else [])
    readme = render_reproduction(protocol, table, out, command=shlex.join(words), n_sample=n,
                                 paper_archs=paper_architectures(protocol, gt),
                                 confidence=DEFAULT_CONFIDENCE, n_resamples=args.resamples)
    judged = table[~table["verdict"].isin(UNJUDGED)]
    print(f"{protocol.name}: {int((judged['verdict'] == 'inside').sum())} of {len(judged)} published figures inside "
          f"our interval; report {readme}", file=sys.stderr)
    for proxy, arch, seed, error in failures[:10]:
        print(f"failed: {proxy} on {arch} (init seed {seed}): {error}", file=sys.stderr)
    return EXIT_FAILURES if failures else 0
