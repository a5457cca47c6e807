"""``zenbench search``: the Zen-NAS evolutionary search, or a proxy validated by searching a benchmark.

ZenNet spaces (``--space resnet|mobilenet``): ZenNAS's search scripts as presets (default
``cifar-params1M``: ResNet-like space, params <= 1M, max 18 layers, 100-class head, 32x32, data-free
Zen-Score on the residual-free network, population 512), run for ``--iterations`` (default 1,000, the
first minutes of the paper's 480,000). Writes ``checkpoint.json``, ``history.csv`` and
``best_structure.txt`` under ``--out``; ``--resume`` continues a stopped search to the same result.

Benchmarks (``--benchmark nb201|macro|nb101|module:Class``, or ``--space`` with a benchmark name): R runs
of the EA over the benchmark's mutation space and of random search over its evaluated architectures, K
proxy evaluations each; the found architectures' accuracies come from the ground truth and are shown next
to published searches (NB201).

Thin layer over :func:`make_zennet_search` and :func:`run_benchmark_validation`, callable from Python.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from bench.cli_gt import add_ground_truth_option
from bench.cli_options import add_threads_option, apply_threads, parse_proxy_options
from bench.runner import (
    check_run,
    resolve_benchmark,
    resolve_proxies,
)
from bench.searching import (
    DEFAULT_ITERATIONS,
    DEFAULT_PRESET,
    GROUND_TRUTH_FITNESS,
    make_zennet_search,
    resolve_preset,
    run_benchmark_validation,
)
from proxies import Proxy
from proxies import get as get_proxy
from search.benchmark_search import SearchOutcome, published_table
from search.evolution import (
    BEST_FILE,
    CHECKPOINT_FILE,
    HISTORY_FILE,
    Budgets,
    EvolutionarySearch,
    SearchError,
    SearchResult,
)
from search.spaces.zennet import Structure, count_flops, count_params
from search.spaces.zennet_space import PRESETS, SearchPreset, ZenNetMutationSpace

ZENNET_SPACES = ("resnet", "mobilenet")
PAPER_SCALE = "--population 512 --iterations 480000"


EXIT_NO_CANDIDATE = 1
"""Exit code of a ZenNet search in which no candidate met the constraints (nothing to write)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search", help="Zen-NAS evolutionary search (ZenNet spaces) or proxy validation by search (benchmarks)",
        description="Zen-NAS evolutionary search over a ZenNet space (default: ZenNAS's CIFAR params<=1M script "
        "- ResNet-like space, max 18 layers, 100-class head, 32x32, data-free Zen-Score on the residual-free "
        f"network, population 512 - for the first {DEFAULT_ITERATIONS:,} of the paper's 480,000 iterations; the "
        f"paper's scale is {PAPER_SCALE}). Writes checkpoint.json, history.csv and best_structure.txt under "
        "--out; --resume continues a stopped search to the same result. With --benchmark NAME (nb201, macro, "
        "nb101, package.module:Class; or --space NAME): R runs of the EA over the benchmark's mutation space "
        "and of random search over its evaluated architectures, K proxy evaluations each, scored by the found "
        "architectures' ground-truth accuracy next to published searches.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  zenbench search                                   # CIFAR params<=1M, Zen-Score, 1,000 iterations\n"
        f"  zenbench search {PAPER_SCALE} --device cuda   # the paper's scale\n"
        "  zenbench search --preset imagenet-flops400M --device cuda\n"
        "  zenbench search --benchmark nb201 --proxy naswot --evaluations 100 --runs 5\n"
        "  zenbench search --benchmark macro --proxy zen --proxy-option network=no-reslink --runs 3\n"
        "  zenbench search --benchmark nb201 --proxy ground-truth --evaluations 100 --runs 5",
    )
    p.add_argument("--space", default=None, metavar="SPACE",
                   help="resnet (ZenNAS XXBL) or mobilenet (IDW_fixfc) ZenNet space, or a benchmark name as "
                   "--benchmark (default: the preset's, resnet)")
    p.add_argument("--benchmark", default=None, metavar="NAME",
                   help="validate the proxy by searching this benchmark: nb201, macro, nb101 or package.module:Class")
    p.add_argument("--proxy", default="zen",
                   help="fitness: a registered proxy or package.module:Class (default zen); on a benchmark also "
                   f"{GROUND_TRUTH_FITNESS!r} (the ground truth itself, an upper bound)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="the proxy's batch_size option (default: the proxy's own; zen: 64, as ZenNAS searches)")
    p.add_argument("--proxy-option", action="append", default=[], metavar="[PROXY.]KEY=VALUE",
                   help="any other option of the proxy, repeatable (e.g. repeat=4 or zen.repeat=4)")
    add_threads_option(p)
    p.add_argument("--seed", type=int, default=0, help="search seed (benchmarks: first run's seed; default 0)")
    p.add_argument("--population", type=int, default=None, metavar="N",
                   help="population size (default 512 for ZenNet spaces, as ZenNAS; 20 for benchmarks)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    p.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                   help="images for proxies that need them: auto, noise, or a path (default auto)")
    p.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    z = p.add_argument_group("ZenNet spaces (resnet, mobilenet)")
    z.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="a ZenNAS search script: budgets, max layers, init, classes, resolution "
                   f"(default {DEFAULT_PRESET['resnet']} for resnet, {DEFAULT_PRESET['mobilenet']} for mobilenet)")
    z.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                   help=f"EA iterations (default {DEFAULT_ITERATIONS:,}; the paper: 480,000)")
    z.add_argument("--init", default=None, metavar="NAME|STRING|FILE", help="initial structure (default: preset's)")
    z.add_argument("--max-params", type=float, default=None, help="params budget, ZenNAS count (default: preset's)")
    z.add_argument("--max-flops", type=float, default=None, help="FLOPs budget, ZenNAS count (default: preset's)")
    z.add_argument("--max-layers", type=int, default=None, help="layer budget (default: preset's)")
    z.add_argument("--max-latency", type=float, default=None, metavar="SECONDS",
                   help="latency budget per image, measured at batch 64 (fp16 on CUDA) for every candidate")
    z.add_argument("--num-classes", type=int, default=None, help="classifier size while searching (default: preset's)")
    z.add_argument("--resolution", type=int, default=None, help="input resolution (default: preset's)")
    z.add_argument("--out", default=None, metavar="DIR",
                   help="checkpoint, history.csv, best_structure.txt (default ./search-PRESET-seedS); on a "
                   "benchmark: where BENCHMARK_search_runs.csv is written (default: not written)")
    p.add_argument("--resume", action="store_true",
                   help="continue the search checkpointed in --out (benchmarks: the finished runs in --out)")
    z.add_argument("--checkpoint-every", type=int, default=100, metavar="N", help="iterations (default 100)")
    n = p.add_argument_group("benchmarks (nb201, macro, nb101, plug-ins)")
    n.add_argument("--evaluations", type=int, default=100, metavar="K", help="proxy evaluations per search (100)")
    n.add_argument("--runs", type=int, default=3, metavar="R", help="independent runs, seeds S..S+R-1 (default 3)")
    n.add_argument("--dataset", default=None, help="one of the benchmark's datasets (default: its first)")
    n.add_argument("--network", default="default", help="the benchmark's network option (default: its own)")
    add_ground_truth_option(n)
    p.set_defaults(func=run_search)


# ----------------------------------------------------------------------------- wiring


def _make_proxy(name: str, batch_size: int | None, options: list[str]) -> Proxy:
    """The one fitness proxy with its ``--proxy-option`` words (``KEY=VALUE`` or ``PROXY.KEY=VALUE``; one
    value per key: a search has one fitness)."""
    variants = parse_proxy_options(options, default_proxy=name).get(name, [{}]) if options else [{}]
    stray = [p for p in parse_proxy_options(options, default_proxy=name) if p != name]
    if stray or len(variants) > 1:
        raise SearchError(f"--proxy-option: a search has one fitness, {name!r}; give each of its options once"
                          + (f" (got options for {', '.join(stray)})" if stray else ""))
    return resolve_proxies([get_proxy(name, **variants[0]) if variants[0] else name], batch_size=batch_size)[0]


# ----------------------------------------------------------------------------- command


def run_search(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    if args.population is not None and args.population < 1:
        raise SearchError(f"--population {args.population}: expected a positive integer")
    benchmark = args.benchmark or (args.space if args.space not in (None, *ZENNET_SPACES) else None)
    if args.benchmark and args.space not in (None, args.benchmark):
        raise SearchError(f"--space {args.space} and --benchmark {args.benchmark} disagree; give one")
    if benchmark is not None:
        return _run_benchmark(args, benchmark)
    return _run_zennet(args)


def _run_zennet(args: argparse.Namespace) -> int:
    preset = resolve_preset(args.space, args.preset)
    proxy = _make_proxy(args.proxy, args.batch_size, args.proxy_option)
    budgets = Budgets(
        max_layers=args.max_layers if args.max_layers is not None else preset.max_layers,
        max_params=args.max_params if args.max_params is not None else preset.max_params,
        max_flops=args.max_flops if args.max_flops is not None else preset.max_flops,
        max_latency=args.max_latency,
    )
    out = Path(args.out or f"search-{preset.name}-seed{args.seed}")
    search = make_zennet_search(
        preset, proxy, iterations=args.iterations, population=args.population or 512, seed=args.seed,
        device=args.device, initial=args.init, budgets=budgets, num_classes=args.num_classes,
        resolution=args.resolution, data_source=args.data_source, data_root=args.data_root,
        checkpoint_every=args.checkpoint_every, progress=not args.no_progress)
    if (out / CHECKPOINT_FILE).exists() and not args.resume:
        raise SearchError(f"{out} already holds a search; add --resume to continue it or choose another --out")
    result = search.run(out, resume=args.resume)
    print(format_zennet_result(result, search, preset, out))
    if not result.completed:
        print(f"stopped at iteration {result.iterations:,}; continue with the same command plus --resume",
              file=sys.stderr)
        return 130
    return 0 if result.best else EXIT_NO_CANDIDATE


def format_zennet_result(result: SearchResult[Structure], search: EvolutionarySearch, preset: SearchPreset,
                         out: Path) -> str:
    """The text ``zenbench search`` prints for a ZenNet search."""
    space: ZenNetMutationSpace = search.space  # type: ignore[assignment]
    nc, res = space.num_classes, space.resolution
    fitness = search.fitness.describe().get("proxy")
    lines = [f"Zen-NAS search ({preset.name}, {space.rules.name} space, fitness {fitness}, seed {search.seed}): "
             f"{result.iterations:,} iterations, {result.evaluations:,} scored"]
    if not result.best:
        lines.append("no candidate met the constraints")
    else:
        best = Structure.parse(result.best)
        lines += [
            f"best score {result.best_score:.4f} (iteration {result.best_iteration:,})",
            f"best structure: {result.best}",
            f"  params {count_params(best, nc, 'zennas') / 1e6:.3f} M (ZenNAS count; module "
            f"{count_params(best, nc) / 1e6:.3f} M), FLOPs {count_flops(best, res, nc, 'zennas') / 1e6:.1f} M, "
            f"layers {best.num_layers}, at {res}px with {nc} classes",
        ]
    s = result.seconds
    total = s.get("total", 0.0) or math.nan
    lines.append(f"time {total:.1f} s ({result.iterations / total:.2f} it/s): " + ", ".join(
        f"{k} {s.get(k, 0.0):.1f} s" for k in ("mutation", "constraints", "latency", "fitness")))
    failures = getattr(search.fitness, "failures", 0)
    if failures:
        lines.append(f"{failures} candidate(s) failed to score and got -inf (last: {search.fitness.last_error})")
    written = [str(out / f) for f in (BEST_FILE, HISTORY_FILE, CHECKPOINT_FILE) if (out / f).exists()]
    lines.append(f"wrote {', '.join(written)}" if written else "wrote nothing")
    if not result.best:
        lines.append(f"{BEST_FILE} not written: no candidate met the constraints")
    return "\n".join(lines)


def _run_benchmark(args: argparse.Namespace, benchmark: str) -> int:
    proxy: str | Proxy = args.proxy
    if args.proxy != GROUND_TRUTH_FITNESS:
        proxy = _make_proxy(args.proxy, args.batch_size, args.proxy_option)
    bench_obj, name = resolve_benchmark(benchmark)
    dataset = check_run(bench_obj, args.dataset, args.network)
    if args.resume and not args.out:
        raise SearchError("--resume needs the --out folder of the search to continue")
    path = Path(args.out) / f"{bench_obj.name}_search_runs.csv" if args.out else None
    outcome, optimum, key = run_benchmark_validation(
        proxy, benchmark=bench_obj, evaluations=args.evaluations, runs=args.runs, seed=args.seed, dataset=dataset,
        network=args.network, population=args.population or 20, device=args.device, ground_truth=args.ground_truth,
        data_source=args.data_source, data_root=args.data_root, progress=not args.no_progress, out=path,
        resume=args.resume)
    label = proxy if isinstance(proxy, str) else proxy.name
    print(format_benchmark_result(outcome, optimum, label, dataset, args.evaluations, args.runs, args.seed,
                                  benchmark=name, title=bench_obj.title, key=key))
    if path is not None:
        print(f"wrote {path}")
    return 0


def format_benchmark_result(outcome: SearchOutcome, optimum: float, proxy: str, dataset: str, evaluations: int,
                            runs: int, seed: int, *, benchmark: str = "nb201", title: str = "NAS-Bench-201",
                            key: str | None = None) -> str:
    """The table ``zenbench search --benchmark NAME`` prints."""
    key = key or f"{dataset}_test"
    rows = []
    labels = {"evolution": f"Zen-NAS EA with {proxy} (this run)", "random": f"random search with {proxy} (this run)"}
    for r in outcome.summary.itertuples():
        found = "no ground truth" if pd.isna(r.mean) else f"{r.mean:.2f} ± {r.std:.2f}"
        rows.append((labels[r.method], evaluations, runs, found, "zenbench"))
    rows.append(("optimum of the space", "-", "-", f"{optimum:.2f}", "ground truth"))
    for r in published_table(dataset, benchmark).itertuples():
        rows.append((r.method, "-" if pd.isna(r.evaluations) else int(r.evaluations),
                     "-" if pd.isna(r.runs) else int(r.runs), f"{r.mean:.2f} ± {r.std:.2f}", r.source))
    header = (f"{title} {dataset}: {key} accuracy (%) of the found architecture, mean ± std over runs "
              f"(seeds {seed}..{seed + runs - 1}); {evaluations} fitness evaluations per search")
    widths = [max(len(str(row[i])) for row in rows + [("method", "evals", "runs", "accuracy", "source")])
              for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 4) else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [header, fmt.format("method", "evals", "runs", "accuracy", "source").rstrip()]
    lines += [fmt.format(*map(str, row)).rstrip() for row in rows]
    unique = outcome.runs.loc[outcome.runs.method == "evolution", "unique_evaluations"].mean()
    lines.append(f"EA: {unique:.1f} distinct architectures scored per run on average (repeats reuse the cached "
                 "score)")
    missing = int(outcome.runs["accuracy"].isna().sum())
    if missing:
        lines.append(f"{missing} found architecture(s) have no ground truth ({key}) and are left out of the means")
    return "\n".join(lines)
