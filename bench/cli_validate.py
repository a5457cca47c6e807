"""``zenbench validate``: each proxy as the fitness of the Zen-NAS search, the found networks trained, and a
report beside ZenNAS's published comparison. A thin layer over :func:`bench.validation.run_validation` and
:func:`reports.validation.render_validation`."""

from __future__ import annotations

import argparse
import sys

from bench.cli_options import parse_init_seeds
from bench.validation import ZENNAS_OPTIONS, ValidationSetup, with_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = ValidationSetup()
    parser = subparsers.add_parser(
        "validate", help="end to end: search with each proxy, train what it finds, report",
        description="For each proxy: the Zen-NAS evolutionary search (same budget and seed), then the found "
        "network trained with the Zen-NAS recipe for each seed; a report (accuracy ± std per proxy beside ZenNAS's "
        "published column, params/FLOPs, training curves, bar chart). Resumable at every stage: rerun the same "
        "command to continue. 'random' is random search with the same number of evaluations. Defaults are a scale "
        "a 2-core CPU finishes in about four hours; ZenNAS: params <= 1M, 480k iterations, 1,440 epochs.")
    parser.add_argument("--proxies", default=",".join(defaults.proxies), metavar="LIST",
                        help=f"fitness proxies and 'random' (default {','.join(defaults.proxies)})")
    parser.add_argument("--preset", default=defaults.preset, help=f"search preset (default {defaults.preset})")
    parser.add_argument("--max-params", type=float, default=defaults.max_params,
                        help=f"parameter budget, overriding the preset's (default {defaults.max_params:g})")
    parser.add_argument("--iterations", type=int, default=defaults.iterations,
                        help=f"EA iterations per proxy (default {defaults.iterations})")
    parser.add_argument("--population", type=int, default=defaults.population,
                        help=f"EA population (default {defaults.population})")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"training epochs (default {defaults.epochs})")
    parser.add_argument("--seeds", default=",".join(map(str, defaults.seeds)), metavar="LIST",
                        help="training seeds (default 0,1)")
    parser.add_argument("--dataset", default=defaults.dataset, choices=["cifar10", "cifar100"])
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="training batch (default 64)")
    parser.add_argument("--no-autoaugment", action="store_true", help="train without AutoAugment")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                        help="training images: auto (full CIFAR under the data root) or a path")
    parser.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for stages and the report")
    parser.add_argument("--proxy-option", action="append", default=[], metavar="PROXY.KEY=VALUE",
                        help="an option of one proxy's fitness, repeatable, one value per key; it replaces the "
                        f"default for that key (defaults: ZenNAS's, {' '.join(ZENNAS_OPTIONS)})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from bench.validation import run_validation
    from reports.validation import render_validation

    setup = ValidationSetup(
        proxies=tuple(p.strip() for p in args.proxies.split(",") if p.strip()), preset=args.preset,
        max_params=args.max_params, iterations=args.iterations, population=args.population, epochs=args.epochs,
        seeds=tuple(parse_init_seeds(args.seeds, None)), dataset=args.dataset, batch_size=args.batch_size,
        autoaugment=not args.no_autoaugment, device=args.device, threads=args.threads,
        data_source=args.data_source, data_root=args.data_root,
        proxy_options=with_options(ZENNAS_OPTIONS, args.proxy_option))
    rows = run_validation(setup, args.out, progress=not args.no_progress)
    readme = render_validation(rows, setup, args.out)
    print(f"wrote {readme}", file=sys.stderr)
    return 0

