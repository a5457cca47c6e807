"""Reproduce a paper's table by name: a named protocol, scored and measured as the paper did, beside zenbench's
default protocol and the paper's figure, with a verdict (``zenbench reproduce``).

A protocol is a small declarative TOML file (the built-ins live in ``bench/protocols/``; a user passes the path
of their own): the benchmark and datasets, the metric(s) and whether the paper took |ρ|, the ground-truth key
per dataset, the NaN policy, the batch rule (one shared batch or a fresh batch per architecture; real images or
Gaussian noise), the init seeds and how they are combined (the mean score over inits, or the mean metric over
runs), the sample rule (what the paper scored, and the sample this machine scores by default), and per proxy
its options, network variant, optional component read-out and the paper's figures. Nothing here is specific
to a paper: every choice is read from the file, checked in :func:`load_protocol`, and printed in the report.

What is measured, per proxy, dataset and metric:

- **paper protocol**: the proxy with the file's options on the sample, scored as the file says, measured with
  the file's metric against the file's ground-truth key and NaN policy, with a bootstrap interval (95% by
  default; :func:`bench.statistics.rank_metrics`); |ρ| where the paper took it (the interval folded at 0);
- **zenbench default**: the proxy with its reference defaults (shared real batch, init seed 0, the benchmark's
  network and default ground-truth key, non-finite scores left out), the same signed metric, same sample;
- **verdict**: whether the paper's figure lies inside our paper-protocol interval, and otherwise by how much
  it lies outside. On a sample the interval is wide; ``--sample all`` scores what the paper scored.

nDCG@K on a sample: K is scaled by the sample's share of the paper's architectures (VKDNW's K = 5,000 of
15,625 is about the top 32%), so the metric weighs the same share of the ranking.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import benchmarks
from bench.benchmarks.base import GroundTruthTable
from bench.statistics import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    NAN_POLICIES,
    Estimate,
    bootstrap_distribution,
    check_metrics,
    interval,
    ndcg_places,
    point_metrics,
    population_scores,
    rank_metrics,
    rank_nonfinite_last,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROTOCOL_DIR = Path(__file__).parent / "protocols"
SEED_RULES = {
    "mean-score": "each architecture's score is the mean over the init seeds, then one metric",
    "mean-metric": "one metric per init seed (the architectures finite under every seed), then the mean over seeds",
}
BATCH_RULES = {"shared": "one image batch for every architecture", "per-arch": "a fresh batch per architecture"}
INPUTS = {"real": "real training images of the dataset", "noise": "Gaussian noise images (no data)"}


UNJUDGED = ("no published figure", "not measured")
"""Verdicts that judge nothing (left out of the inside/outside count)."""


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class ProtocolProxy:
    """One row of a paper's table: the proxy, how the paper ran it, and its published figures
    (``published[metric][dataset]``)."""

    label: str
    proxy: str
    options: Mapping[str, Any] = field(default_factory=dict)
    network: str = "default"
    component: str | None = None
    """Read this stored component instead of the proxy's value (e.g. ``zen.log_delta``: Zen without its BN term)."""
    published: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Protocol:
    """A paper's protocol, as read from its TOML file (see the module docstring)."""

    name: str
    title: str
    citation: str
    benchmark: str
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    ground_truth: Mapping[str, str]
    proxies: tuple[ProtocolProxy, ...]
    absolute: bool = False
    nan_policy: str = "exclude"
    batch: str = "shared"
    inputs: str = "real"
    batch_size: int | None = None
    init_seeds: tuple[int, ...] = (0,)
    seed_rule: str = "mean-score"
    paper_archs: int | None = None
    """Architectures the paper scored (None: all of the benchmark)."""
    default_sample: int | None = 100
    sample_seed: int = 0
    notes: tuple[str, ...] = ()
    text: str = ""
    """The file's text, printed in full in the report."""
    path: str = ""


_TOP_KEYS = {"name", "title", "citation", "benchmark", "datasets", "metrics", "absolute", "ground_truth",
             "nan_policy", "batch", "inputs", "batch_size", "init_seeds", "seed_rule", "paper_archs",
             "default_sample", "sample_seed", "notes", "proxies"}
_PROXY_KEYS = {"label", "proxy", "options", "network", "component", "published", "note"}


def builtin_protocols() -> list[str]:
    """Names of the protocols shipped with zenbench (files in ``bench/protocols``), sorted."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))


def protocol_path(name: str | os.PathLike) -> Path:
    """A built-in protocol's file by name, or a user's file by path; a one-line error otherwise."""
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ProtocolError(f"protocol file {str(name)!r} does not exist")
        return path
    builtin = PROTOCOL_DIR / f"{name}.toml"
    if not builtin.is_file():
        raise ProtocolError(f"unknown protocol {str(name)!r}; expected one of {', '.join(builtin_protocols())} "
                            f"or the path of a .toml protocol file")
    return builtin


def load_protocol(name: str | os.PathLike) -> Protocol:
    """Read and check a protocol (a built-in name or a file path): every key known, every value of the
    expected kind, the benchmark, datasets, proxies, options, networks and metrics real. Errors name the file
    and the fault in one line."""
    path = protocol_path(name)
    text = path.read_text()
    where = f"protocol {path.name}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ProtocolError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(_TOP_KEYS)}")
    for key in ("name", "title", "citation", "benchmark", "datasets", "metrics", "ground_truth", "proxies"):
        if key not in data:
            raise ProtocolError(f"{where}: missing key {key!r}")
    bench_obj = _checked(where, "benchmark", lambda: benchmarks.resolve(data["benchmark"]))
    datasets = tuple(_strings(where, "datasets", data["datasets"]))
    bad = [d for d in datasets if d not in bench_obj.datasets]
    if bad:
        raise ProtocolError(f"{where}: dataset(s) {bad} not in {data['benchmark']} ({', '.join(bench_obj.datasets)})")
    metrics = tuple(_checked(where, "metrics", lambda: check_metrics(_strings(where, "metrics", data["metrics"]))))
    gt = data["ground_truth"]
    if not isinstance(gt, dict) or set(gt) != set(datasets) or not all(isinstance(v, str) for v in gt.values()):
        raise ProtocolError(f"{where}: ground_truth must map each dataset ({', '.join(datasets)}) to a key name")
    choices = {"nan_policy": NAN_POLICIES, "batch": BATCH_RULES, "inputs": INPUTS, "seed_rule": SEED_RULES}
    for key, allowed in choices.items():
        if key in data and data[key] not in allowed:
            raise ProtocolError(f"{where}: {key} {data[key]!r}; expected one of {', '.join(allowed)}")
    seeds = data.get("init_seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ProtocolError(f"{where}: init_seeds must be a non-empty list of non-negative integers")
    for key in ("paper_archs", "default_sample", "batch_size"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ProtocolError(f"{where}: {key} must be a positive integer, got {value!r}")
    proxies = tuple(_proxy_entry(where, i, entry, bench_obj, metrics, datasets)
                    for i, entry in enumerate(data["proxies"] if isinstance(data["proxies"], list) else [None]))
    labels = [p.label for p in proxies]
    if len(set(labels)) != len(labels):
        raise ProtocolError(f"{where}: proxy labels repeat: {labels}")
    return Protocol(
        name=str(data["name"]), title=str(data["title"]), citation=str(data["citation"]),
        benchmark=str(data["benchmark"]), datasets=datasets, metrics=metrics, ground_truth=dict(gt),
        proxies=proxies, absolute=bool(data.get("absolute", False)), nan_policy=data.get("nan_policy", "exclude"),
        batch=data.get("batch", "shared"), inputs=data.get("inputs", "real"), batch_size=data.get("batch_size"),
        init_seeds=tuple(seeds), seed_rule=data.get("seed_rule", "mean-score"), paper_archs=data.get("paper_archs"),
        default_sample=data.get("default_sample", 100), sample_seed=int(data.get("sample_seed", 0)),
        notes=tuple(_strings(where, "notes", data.get("notes", []))), text=text, path=str(path))


def _checked(where: str, key: str, make: Any) -> Any:
    try:
        return make()
    except (ValueError, LookupError) as exc:
        raise ProtocolError(f"{where}: {key}: {str(exc).splitlines()[0]}") from None


def _strings(where: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{where}: {key} must be a list of strings, got {value!r}")
    return list(value)


def _proxy_entry(where: str, i: int, entry: Any, bench_obj: Any, metrics: Sequence[str],
                 datasets: Sequence[str]) -> ProtocolProxy:
    from proxies import registry

    if not isinstance(entry, dict):
        raise ProtocolError(f"{where}: proxies must be a list of tables ([[proxies]])")
    here = f"{where}: proxies[{i}]"
    unknown = sorted(set(entry) - _PROXY_KEYS)
    if unknown or "proxy" not in entry:
        raise ProtocolError(f"{here}: " + (f"unknown key(s) {unknown}" if unknown else "missing key 'proxy'"))
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ProtocolError(f"{here}: options must be a table")
    _checked(here, "proxy", lambda: registry.get(entry["proxy"], **options))
    network = entry.get("network", "default")
    if network not in bench_obj.networks:
        raise ProtocolError(f"{here}: network {network!r} not one of {bench_obj.name}'s "
                            f"({', '.join(bench_obj.networks)})")
    published = entry.get("published", {})
    for metric, values in published.items():
        if metric not in metrics or not isinstance(values, dict) or not set(values) <= set(datasets) or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
            raise ProtocolError(f"{here}: published must map a protocol metric ({', '.join(metrics)}) to "
                                f"{{dataset = number}} for its datasets, got {metric!r} = {values!r}")
    return ProtocolProxy(label=str(entry.get("label", entry["proxy"])), proxy=entry["proxy"], options=dict(options),
                         network=network, component=entry.get("component"),
                         published={m: {d: float(v) for d, v in vals.items()} for m, vals in published.items()},
                         note=str(entry.get("note", "")))


# ----------------------------------------------------------------------------- scoring


def _default_names(protocol: Protocol) -> list[str]:
    return list(dict.fromkeys(p.proxy for p in protocol.proxies))


def protocol_proxy(protocol: Protocol, entry: ProtocolProxy) -> Any:
    """The proxy instance of ``entry``: its options, and the protocol's ``batch_size`` where the proxy has that
    option and the entry does not set it (as ``--batch-size`` does, :func:`bench.runner.resolve_proxies`)."""
    from bench.runner import resolve_proxies
    from proxies import registry

    proxy = registry.get(entry.proxy, **entry.options)
    return proxy if "batch_size" in entry.options else resolve_proxies([proxy], protocol.batch_size)[0]


def score_protocol(protocol: Protocol, work: str | os.PathLike, *, sample: int | None | str = "default",
                   device: str | None = None, threads: int | None = None, data_root: str | os.PathLike | None = None,
                   progress: bool = True) -> tuple[Path, Path, list[tuple[str, str, int, str]]]:
    """Score the protocol's proxies on its sample, into two stores under ``work``: ``paper.db`` (the paper's
    protocol) and ``default.db`` (zenbench's defaults). Resumable: a rerun computes only what is missing; an
    interrupted run raises KeyboardInterrupt (no report is made from a part).
    ``sample``: "default" (the protocol's ``default_sample``), an integer, or None / "all" (the paper's).
    Returns the two store paths and the failed scores (proxy, architecture, init seed, error): a failed score
    is left out of the figures like a non-finite one, and a rerun retries it."""
    from bench.runner import run_benchmark

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    n = resolve_sample(protocol, sample)
    paper_store, default_store = work / "paper.db", work / "default.db"
    common = dict(benchmark=protocol.benchmark, sample=n, seed=protocol.sample_seed, device=device,
                  threads=threads, data_root=data_root, progress=progress)
    summaries = []
    for dataset in protocol.datasets:
        for network in dict.fromkeys(p.network for p in protocol.proxies):
            made = [protocol_proxy(protocol, p) for p in protocol.proxies if p.network == network]
            unique = list({(type(m), m.option_hash()): m for m in made}.values())
            summaries.append(run_benchmark(
                paper_store, unique, network=network, dataset=dataset, init_seeds=protocol.init_seeds,
                batch_per_arch=protocol.batch == "per-arch", data_source="noise" if protocol.inputs == "noise"
                else "auto", **common))
            if summaries[-1].interrupted:
                raise KeyboardInterrupt  # the scores so far are stored; a rerun continues, no report of a part
        summaries.append(run_benchmark(default_store, _default_names(protocol), dataset=dataset, **common))
        if summaries[-1].interrupted:
            raise KeyboardInterrupt
    return paper_store, default_store, [f for s in summaries for f in s.failures]


def resolve_sample(protocol: Protocol, sample: int | None | str) -> int | None:
    """The number of architectures to score: the protocol's default, a given count, or None (the paper's)."""
    if sample == "default":
        return protocol.default_sample if protocol.paper_archs is None else \
            min(protocol.default_sample or protocol.paper_archs, protocol.paper_archs)
    if sample is None or sample == "all":
        return protocol.paper_archs
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 2:
        raise ValueError(f"--sample {sample!r}: expected an integer >= 2 or all")
    return sample


# ----------------------------------------------------------------------------- measuring


def fold_absolute(estimate: Estimate) -> Estimate:
    """|x| of an estimate and its interval: an interval that straddles 0 becomes [0, max |bound|]."""
    value, low, high = abs(estimate.value), estimate.low, estimate.high
    if math.isnan(low) or math.isnan(high):
        return Estimate(value, low, high)
    if low >= 0:
        return Estimate(value, low, high)
    if high <= 0:
        return Estimate(value, -high, -low)
    return Estimate(value, 0.0, max(-low, high))


def scaled_metric(metric: str, n: int, paper_archs: int) -> str:
    """``ndcg@K`` with K scaled to a sample of ``n`` of the paper's ``paper_archs`` (at least 1); others as is."""
    places = ndcg_places(metric)
    if places is None or n >= paper_archs:
        return metric
    return f"ndcg@{max(1, round(places * n / paper_archs))}"


def _is_correlation(metric: str) -> bool:
    """A metric whose sign a paper may drop (|ρ|, |τ|, |r|); nDCG and top-k are never folded."""
    return metric in ("spearman_rho", "kendall_tau", "pearson_r")


def paper_architectures(protocol: Protocol, ground_truth: GroundTruthTable) -> int:
    """The architectures the paper scored: the protocol's ``paper_archs``, else every evaluated one."""
    return protocol.paper_archs or len(ground_truth.evaluated())


def _variant_scores(rows: pd.DataFrame, component: str | None) -> pd.DataFrame:
    """Per (arch, seed) the oriented score of one proxy protocol: its component, or its value after the
    stored population rule (applied per init seed)."""
    frames = []
    direction = 1.0 if bool(rows["higher_is_better"].iloc[0]) else -1.0
    for seed, group in rows.groupby("seed", sort=True):
        if component is not None:
            values = np.array([(c or {}).get(component, math.nan) for c in group["components"]], float)
        else:
            values, _ = population_scores(group)
        frames.append(pd.DataFrame({"arch": group["arch"].to_numpy(), "seed": seed, "score": direction * values}))
    return pd.concat(frames, ignore_index=True)


def measure(scores: pd.DataFrame, truth: pd.Series, metrics: Sequence[str], *, seed_rule: str, nan_policy: str,
            absolute: bool, paper_archs: int, n_resamples: int = DEFAULT_RESAMPLES,
            confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> tuple[dict[str, Estimate], int, int]:
    """Each metric of oriented ``scores`` (columns arch, seed, score) against ``truth`` (accuracy by arch),
    combined over init seeds by ``seed_rule``, with ``nan_policy``; |metric| where ``absolute``. Returns the
    estimates (by metric name as given), the architectures used and the non-finite ones left out or ranked last."""
    wide = scores.pivot_table(index="arch", columns="seed", values="score", aggfunc="first", dropna=False)
    wide = wide.reindex([a for a in wide.index if a in truth.index and np.isfinite(truth[a])])
    accuracy = truth.reindex(wide.index).to_numpy(float)
    if seed_rule == "mean-score":
        columns = [wide.mean(axis=1, skipna=False).to_numpy(float)]
    else:
        columns = [wide[c].to_numpy(float) for c in wide.columns]
    finite = np.all([np.isfinite(c) for c in columns], axis=0)
    if nan_policy == "worst":
        columns, keep = [rank_nonfinite_last(c) for c in columns], np.ones(len(accuracy), bool)
    else:
        keep = finite
    n = int(keep.sum())
    if n < 2:
        return {m: Estimate(math.nan, math.nan, math.nan) for m in metrics}, n, int((~finite).sum())
    out = {}
    for metric in metrics:
        name = scaled_metric(metric, n, paper_archs)
        if len(columns) == 1:
            estimate = rank_metrics(columns[0][keep], accuracy[keep], metrics=[name], n_resamples=n_resamples,
                                    confidence=confidence, seed=seed)[name]
        else:  # the same resamples for every seed (same n and seed): the interval of the mean over seeds
            point = np.mean([point_metrics(c[keep], accuracy[keep], [name])[name] for c in columns])
            draws = np.mean([bootstrap_distribution(c[keep], accuracy[keep], n_resamples=n_resamples, seed=seed,
                                                    metrics=[name])[name] for c in columns], axis=0)
            estimate = interval(float(point), draws, confidence)
        out[metric] = fold_absolute(estimate) if absolute and _is_correlation(metric) else estimate
    return out, n, int((~finite).sum())


def verdict(published: float | None, estimate: Estimate) -> tuple[str, float]:
    """``inside`` when the published figure lies in our interval, else ``ours lower`` / ``ours higher`` and
    the distance from the figure to the nearer bound; ``no figure`` / ``not measured`` otherwise."""
    if published is None or (isinstance(published, float) and math.isnan(published)):
        return UNJUDGED[0], math.nan
    if any(math.isnan(x) for x in (estimate.value, estimate.low, estimate.high)):
        return UNJUDGED[1], math.nan
    if estimate.low <= published <= estimate.high:
        return "inside", 0.0
    if published > estimate.high:
        return "ours lower", published - estimate.high
    return "ours higher", estimate.low - published


def _rows_of(store: Path, dataset: str, benchmark: str) -> pd.DataFrame:
    from bench.store import ResultStore

    with ResultStore(store, create=False) as results:
        return results.scores(dataset=dataset, benchmark=benchmark)


def evaluate_protocol(protocol: Protocol, paper_store: str | os.PathLike, default_store: str | os.PathLike, *,
                      ground_truth: GroundTruthTable | None = None, n_resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """The verdict table: one row per (dataset, proxy label, metric) with the paper's figure, ours under the
    paper's protocol (interval), ours under zenbench's defaults (interval), the verdict and its distance, N."""
    from proxies import registry

    gt = ground_truth or benchmarks.resolve(protocol.benchmark).ground_truth()
    paper_archs = paper_architectures(protocol, gt)
    settings = dict(paper_archs=paper_archs, n_resamples=n_resamples, confidence=confidence, seed=seed)

    def measured(rows: pd.DataFrame, truth: pd.Series, component: str | None, **rules: Any
                 ) -> tuple[dict[str, Estimate], int, int]:
        if rows.empty:
            return {m: Estimate(math.nan, math.nan, math.nan) for m in protocol.metrics}, 0, 0
        return measure(_variant_scores(rows, component), truth, protocol.metrics, **rules, **settings)

    records = []
    for dataset in protocol.datasets:
        paper_rows = _rows_of(Path(paper_store), dataset, protocol.benchmark)
        default_rows = _rows_of(Path(default_store), dataset, protocol.benchmark)
        paper_truth = gt.table[gt.key(dataset, protocol.ground_truth[dataset])]
        default_truth = gt.table[gt.key(dataset)]
        for entry in protocol.proxies:
            made = protocol_proxy(protocol, entry)
            mine = paper_rows[(paper_rows["proxy"] == made.name) & (paper_rows["option_hash"] == made.option_hash())
                              & (paper_rows["network"] == entry.network)]
            default_hash = registry.get(entry.proxy).option_hash()
            theirs = default_rows[(default_rows["proxy"] == made.name) & (default_rows["option_hash"] == default_hash)
                                  & (default_rows["network"] == "default")]
            paper_est, n, n_bad = measured(mine, paper_truth, entry.component, seed_rule=protocol.seed_rule,
                                           nan_policy=protocol.nan_policy, absolute=protocol.absolute)
            default_est, n_default, _ = measured(theirs, default_truth, None, seed_rule="mean-score",
                                                 nan_policy="exclude", absolute=False)
            for metric in protocol.metrics:
                published = entry.published.get(metric, {}).get(dataset)
                word, distance = verdict(published, paper_est[metric])
                name = scaled_metric(metric, n, paper_archs)
                records.append({
                    "dataset": dataset, "proxy": entry.label, "metric": metric,
                    "measured_as": f"|{name}|" if protocol.absolute and _is_correlation(metric) else name,
                    "published": published if published is not None else math.nan,
                    **{f"paper_{k}": v for k, v in dataclasses.asdict(paper_est[metric]).items()},
                    "n": n, "n_nonfinite": n_bad,
                    **{f"default_{k}": v for k, v in dataclasses.asdict(default_est[metric]).items()},
                    "n_default": n_default, "verdict": word, "distance": distance,
                    "gt_key": gt.key(dataset, protocol.ground_truth[dataset]), "default_gt_key": gt.key(dataset),
                })
    return pd.DataFrame(records)
