"""Render a results store as a self-contained Markdown report with CSV tables and PNG figures.

``render_report(store, out)`` (``zenbench report``) reads the store and the benchmark's ground truth (it
never runs or imports a proxy: population combinations come stored as data), measures every stored proxy
protocol of one benchmark with :func:`bench.statistics.evaluate`, and writes into
``out``: ``README.md``; ``correlations.csv`` (one row per dataset and proxy protocol, every metric with
its interval), ``paired.csv``, ``noise_ceiling.csv``, ``published.csv``, ``protocol.csv``, ``runs.csv``;
per dataset ``scatter_<dataset>.png`` (score against accuracy, one panel per proxy) and
``cost_<dataset>.png`` (median seconds per architecture against τ, with the Pareto front).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import stats  # noqa: E402

from bench import benchmarks  # noqa: E402
from bench.benchmarks.base import Benchmark, GroundTruthTable, PublishedScores  # noqa: E402
from bench.data import portable_paths  # noqa: E402
from bench.statistics import (  # noqa: E402
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    NAN_POLICIES,
    NOISE_CEILING_MEASURES,
    TOP_K_PERCENTS,
    TOP_TAU_PERCENT,
    Evaluation,
    evaluate,
    kendall_tau,
    spearman_rho,
    variant_labels,
)
from bench.store import DEDUPE_NOTE, ResultStore, software_versions  # noqa: E402
from bench.tables import TABLE_SUFFIXES, table_scores  # noqa: E402
from reports.published import published_table  # noqa: E402

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16": "ImageNet16-120"}
CORRELATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kendall_tau", "τ"), ("spearman_rho", "ρ"), ("pearson_r", "r"),
    *((f"top{k}_precision", f"top-{k}%") for k in TOP_K_PERCENTS),
    (f"top{TOP_TAU_PERCENT}_kendall_tau", f"τ in true top-{TOP_TAU_PERCENT}%"),
)
"""Metric columns of the correlation table, in order, with their header."""
MIN_TOP_K_ARCHS = 5
"""A top-k% metric needs k% of N to be at least this many architectures; below, the report marks it "n too
small" (and leaves the column out when no row has enough)."""
SCATTER_AXES = {"rank": "ranks of score and accuracy (one outlier cannot flatten a panel)",
                "value": "raw scores (log or symlog when they span decades) against accuracy"}
"""``--scatter-axes`` choices."""


@dataclass(frozen=True)
class ReportResult:
    out: Path
    readme: Path
    files: tuple[Path, ...]
    evaluation: Evaluation


# ----------------------------------------------------------------------------- formatting


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value):
        return "–"
    return f"{float(value):.{digits}f}"


def _with_interval(row: pd.Series, metric: str) -> str:
    if metric not in row or pd.isna(row[metric]):
        return "–"
    return f"{_num(row[metric])} [{_num(row[f'{metric}_low'])}, {_num(row[f'{metric}_high'])}]"


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


NO_END = "no end recorded"
"""The status a report prints for a run whose store holds no end for it."""


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside cells is escaped."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _dataset_order(datasets: Sequence[str]) -> list[str]:
    known = [d for d in DATASET_NAMES if d in datasets]
    return known + sorted(set(datasets) - set(known))


# ----------------------------------------------------------------------------- figures


def _value_scale(values: np.ndarray) -> str:
    """``log`` for positive values spanning more than three decades, ``symlog`` for signed values that
    do, else ``linear``."""
    finite = values[np.isfinite(values)]
    nonzero = np.abs(finite[finite != 0])
    if nonzero.size < 2 or nonzero.max() / max(np.median(nonzero), 1e-300) < 1e3:
        return "linear"
    return "log" if (finite > 0).all() else "symlog"


def init_spreads(rows: pd.DataFrame, table: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (dataset, label) of a variant whose proxy protocol the store holds under several init seeds: the
    min and max finite score across the seeds of each architecture (index ``arch``, columns ``min``, ``max``)."""
    spreads = {}
    if rows.empty or table.empty:
        return spreads
    for (dataset, proxy, option_hash), group in rows.groupby(["dataset", "proxy", "option_hash"], sort=False):
        if group["seed"].nunique() < 2:
            continue
        finite = group[np.isfinite(group["value"].to_numpy(float))]
        bounds = finite.groupby("arch")["value"].agg(["min", "max"])
        labels = table[(table["dataset"] == dataset) & (table["proxy"] == proxy)
                       & (table["option_hash"] == option_hash)]["label"]
        spreads.update({(dataset, label): bounds for label in labels})
    return spreads


def _scatter_figure(points: pd.DataFrame, table: pd.DataFrame, dataset: str, path: Path, axes_kind: str = "rank",
                    spreads: dict[tuple[str, str], pd.DataFrame] | None = None) -> None:
    """One panel per proxy variant: score against accuracy, as ranks (``axes_kind="rank"``) or values. Where
    ``spreads`` has the variant's proxy protocol scored under several init seeds, a vertical bar spans the
    scores across inits of each architecture (values) or the ranks they would take (ranks)."""
    labels = list(table["label"])
    cols = min(4, len(labels))
    rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    for ax, (_, variant) in zip(axes.flat, table.iterrows(), strict=False):
        data = points[points["label"] == variant["label"]]
        values, accuracy = data["value"].to_numpy(float), data["accuracy"].to_numpy(float)
        keep = np.isfinite(values) & np.isfinite(accuracy)
        connected = keep & ~data["disconnected"].to_numpy(bool)
        cut = keep & data["disconnected"].to_numpy(bool)
        size = 6 if keep.sum() > 2000 else 12
        spread = (spreads or {}).get((dataset, variant["label"]))
        low = high = None
        if spread is not None:
            bounds = spread.reindex(data["arch"])
            low, high = bounds["min"].to_numpy(float), bounds["max"].to_numpy(float)
        direction = "" if variant["higher_is_better"] else ", lower is better"
        if axes_kind == "rank":
            x, y = np.full(len(values), np.nan), np.full(len(values), np.nan)
            x[keep], y[keep] = stats.rankdata(accuracy[keep]), stats.rankdata(values[keep])
            if low is not None:  # where the init extremes would rank among this panel's scores
                order = np.sort(values[keep])
                low = np.searchsorted(order, low, side="left") + 1
                high = np.searchsorted(order, high, side="right")
            ax.set_ylabel(f"score rank (1 = lowest{direction})", fontsize=9)
            ax.set_xlabel(f"{variant['gt_key']} accuracy rank (1 = lowest)", fontsize=9)
        else:
            x, y = accuracy, values
            scale = _value_scale(values[keep])
            if scale == "symlog":
                nonzero = np.abs(values[keep][values[keep] != 0])
                ax.set_yscale("symlog", linthresh=float(np.percentile(nonzero, 10)))
            elif scale == "log":
                ax.set_yscale("log")
            ax.set_ylabel(f"score ({scale}{direction})", fontsize=9)
            ax.set_xlabel(f"{variant['gt_key']} accuracy (%)", fontsize=9)
        if low is not None:
            ax.vlines(x[keep], low[keep], high[keep], color="tab:orange", alpha=0.35, linewidth=0.8,
                      label="range across init seeds")
        ax.scatter(x[connected], y[connected], s=size, alpha=0.5, color="tab:blue", linewidths=0,
                   rasterized=True, label="connected cell")
        if cut.any():
            ax.scatter(x[cut], y[cut], s=size + 4, alpha=0.7, color="tab:gray", marker="x",
                       linewidths=0.8, rasterized=True, label="disconnected cell")
        dropped = f", {int(variant['n_nonfinite'])} non-finite not shown" if variant["n_nonfinite"] else ""
        ax.set_title(f"{variant['label']}\nτ = {_num(variant.get('kendall_tau'))}, n = {int(keep.sum())}{dropped}",
                     fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if cut.any() or low is not None:
            ax.legend(fontsize=7, loc="best", markerscale=1.5)
    for ax in list(axes.flat)[len(labels):]:
        ax.set_visible(False)
    what = "rank of proxy score against rank of" if axes_kind == "rank" else "proxy score against"
    title = f"{DATASET_NAMES.get(dataset, dataset)}: {what} trained accuracy"
    fig.suptitle(title if cols > 1 else title.replace(": ", ":\n", 1), fontsize=12 if cols > 1 else 10)
    save_png(fig, path)


def save_png(fig: plt.Figure, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` as a PNG with a 256-colour palette and close it. A full-space scatter (thousands of
    translucent points per panel) is about 2 MB in full colour and a third of that as a palette, with no visible
    change (NAS-Bench-Macro's 18 panels: 2.02 MB -> 0.68 MB, largest channel difference 17 of 255, mean 0.08)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    image = Image.open(buffer).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Positions (by increasing cost) of the points no cheaper-or-equal point beats in quality."""
    order = np.lexsort((-quality, cost))
    front, best = [], -np.inf
    for i in order:
        if quality[i] > best:
            front.append(i)
            best = quality[i]
    return np.array(front, dtype=int)


def _cost_figure(table: pd.DataFrame, dataset: str, path: Path, confidence: float) -> None:
    data = table[np.isfinite(table.get("kendall_tau", pd.Series(np.nan, index=table.index)))]
    longest = max((len(str(label)) for label in data["label"]), default=0)
    fig, ax = plt.subplots(figsize=(max(6.4, 4.0 + 0.1 * longest), 4.6), layout="constrained")
    cost = np.clip(data["median_seconds"].to_numpy(float), 1e-6, None)
    tau = data["kendall_tau"].to_numpy(float)
    low, high = data["kendall_tau_low"].to_numpy(float), data["kendall_tau_high"].to_numpy(float)
    ax.errorbar(cost, tau, yerr=[tau - low, high - tau], fmt="o", color="tab:blue", ecolor="tab:gray",
                capsize=3, label=f"τ with {round(100 * confidence)}% interval")
    front = pareto_front(cost, tau)
    if len(front) > 1:
        ax.step(cost[front], tau[front], where="post", color="tab:orange", alpha=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("median seconds per architecture (log scale)")
    ax.set_ylabel("Kendall τ-b against accuracy")
    ax.set_title(f"{DATASET_NAMES.get(dataset, dataset)}: cost against ranking quality")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    if len(cost):
        ax.set_xlim(cost.min() / 3, cost.max() * 6)
    place_labels(ax, cost, tau, list(data["label"]))
    save_png(fig, path)


LABEL_OFFSETS = [(dx, dy) for dy in (4, -12, 14, -22, 24, -32, 34, -42, 44, -52, 54, -62)
                 for dx in (7, -7, 30, -30, 60, -60)]
"""Label positions tried per point, in points from it: right then left, then further out and up or down."""


def _overlap(box: Bbox, others: list[Bbox]) -> float:
    """Area (pixels²) that ``box`` shares with ``others``."""
    return sum(shared.width * shared.height for other in others
               if (shared := Bbox.intersection(box, other)) is not None)


def _gap(box: Bbox, centre: np.ndarray) -> float:
    """Distance (pixels) from ``box`` to a point (0 inside it)."""
    return math.hypot(max(box.x0 - centre[0], 0.0, centre[0] - box.x1),
                      max(box.y0 - centre[1], 0.0, centre[1] - box.y1))


def place_labels(ax: plt.Axes, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Annotate each point with the first offset of :data:`LABEL_OFFSETS` whose box overlaps no marker and no
    label placed before and lies nearer its own point than any other (so it names the right one), higher
    points first; else the offset with the least overlap, a box nearer its own point winning a tie. A leader
    line joins a label to its point where it sits away from it or nearer another point. Needs the axes'
    limits and scales set."""
    renderer = ax.figure.canvas.get_renderer()
    radius, pad = renderer.points_to_pixels(4), renderer.points_to_pixels(2)
    centres = ax.transData.transform(np.column_stack([x, y]))
    markers = [Bbox.from_extents(cx - radius, cy - radius, cx + radius, cy + radius) for cx, cy in centres]
    placed: list[Bbox] = []

    def annotate(i: int, dx: int, dy: int, leader: bool) -> Any:
        return ax.annotate(labels[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                           ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top",
                           bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
                           arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6} if leader else None)

    for i in np.argsort(-np.asarray(y), kind="stable"):
        obstacles = placed + markers[:i] + markers[i + 1:]
        best: tuple[tuple[float, bool], Any, Bbox, tuple[int, int]] | None = None
        for dx, dy in LABEL_OFFSETS:
            text = annotate(i, dx, dy, leader=abs(dy) > 12 or abs(dx) > 7)
            box = text.get_window_extent(renderer).padded(pad)  # the text's white box reaches past its extent
            own = _gap(box, centres[i])
            misleading = any(_gap(box, c) < own for j, c in enumerate(centres) if j != i)
            score = (_overlap(box, obstacles), misleading)
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, text, box, (dx, dy))
            else:
                text.remove()
            if score == (0, False):
                break
        assert best is not None
        if best[0][1] and best[1].arrow_patch is None:  # nearer another point: draw the line to its own
            best[1].remove()
            annotate(i, *best[3], leader=True)
        placed.append(best[2])


# ----------------------------------------------------------------------------- tables


def _top_percent(metric: str) -> float | None:
    """k of a top-k% metric (``top10_precision``, ``top5_kendall_tau``), else ``None``."""
    if not metric.startswith("top"):
        return None
    digits = metric[3:].split("_")[0]
    return float(digits) if digits.replace(".", "", 1).isdigit() else None


def _enough(percent: float | None, n: int) -> bool:
    return percent is None or percent / 100 * n >= MIN_TOP_K_ARCHS


def correlation_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the Markdown correlation table of one dataset (rows sorted by τ). A top-k%
    column is marked "n too small" where k% of N is under :data:`MIN_TOP_K_ARCHS` architectures, and left
    out where that holds for every row. The cost columns are followed by what the cost was measured with
    (threads, device, the machine's load: the ``cost_context`` column, where the table has it)."""
    columns = [(metric, name) for metric, name in CORRELATION_COLUMNS
               if any(_enough(_top_percent(metric), int(n)) for n in table["n"])]
    headers = ["proxy", "N", "non-finite", *(name for _, name in columns), "median cost/arch",
               "median peak memory", "cost measured with"]
    rows = []
    for _, row in table.iterrows():
        cells = [_with_interval(row, metric) if _enough(_top_percent(metric), int(row["n"])) else "n too small"
                 for metric, _ in columns]
        rows.append([row["label"], int(row["n"]), int(row["n_nonfinite"]), *cells,
                     _seconds(float(row["median_seconds"])),
                     "–" if pd.isna(row["median_peak_memory_mb"]) else f"{row['median_peak_memory_mb']:.1f} MB",
                     row.get("cost_context", "–")])
    return headers, rows


def cost_context(rows: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per (dataset, label): the thread counts, devices and median 1-minute load the costs were measured
    with, as one cell (``–`` for what the rows did not record, e.g. scores of zenbench before 0.2)."""
    frame = rows.assign(label=labels)
    records = []
    for (dataset, label), group in frame.groupby(["dataset", "label"], sort=False):
        threads = sorted({int(t) for t in group.get("threads", pd.Series(dtype=float)).dropna()})
        loads = group.get("load_avg", pd.Series(dtype=float)).dropna().to_numpy(float)
        parts = [(", ".join(map(str, threads)) + " thread" + ("s" if threads != [1] else "")) if threads else "–",
                 ", ".join(sorted(set(group["device"].dropna().astype(str)))) or "–",
                 f"load {np.median(loads):.2f}" if loads.size else "load –"]
        records.append({"dataset": dataset, "label": label, "cost_context": "; ".join(parts)})
    return pd.DataFrame(records, columns=["dataset", "label", "cost_context"])


def incomplete_samples(rows: pd.DataFrame, labels: pd.Series, runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, label) whose runs all drew a sample of ``--sample N`` architectures and that holds
    fewer than N of them: the count it holds, N (the smallest sample of those runs) and whether a run of it
    used ``--dedupe``. A run cut off before its end leaves such a column; without ``--dedupe`` it holds the
    first architectures of the seeded permutation (of each shard), a uniform subsample, with ``--dedupe`` it
    does not (one member of every class is scored before the others)."""
    columns = ["dataset", "label", "scored", "planned", "dedupe"]
    if rows.empty or runs.empty or "run_id" not in rows:
        return pd.DataFrame(columns=columns)
    configs = dict(zip(runs["run_id"], runs["config"], strict=True))
    records = []
    for (dataset, label), group in rows.assign(label=labels).groupby(["dataset", "label"], sort=False):
        used = [configs.get(run_id, {}) for run_id in set(group["run_id"])]
        samples = [config.get("sample") for config in used]
        if not samples or any(not isinstance(n, int) for n in samples):
            continue
        scored = group["arch"].nunique()
        if scored < min(samples):
            records.append({"dataset": dataset, "label": label, "scored": scored, "planned": min(samples),
                            "dedupe": any(config.get("dedupe") for config in used)})
    return pd.DataFrame(records, columns=columns)


def init_seed_table(rows: pd.DataFrame, single: pd.DataFrame, ground_truth: GroundTruthTable, *,
                    nan_policy: str, n_resamples: int, confidence: float, seed: int) -> pd.DataFrame:
    """Per (dataset, proxy protocol) scored under several init seeds: the seeds, the τ of each single init
    (min and max over seeds, from ``single``, the evaluation table), τ of the init-averaged score (the mean
    of each architecture's value and components over its finite inits, then the stored population rule)
    with its interval, and the spread across inits: the median over architectures of the standard
    deviation across inits, relative to the standard deviation across architectures of the averaged score."""
    key = ["benchmark", "network", "dataset", "proxy", "option_hash"]
    records, averaged = [], []
    for _, group in rows.groupby(key, sort=True):
        if group["seed"].nunique() < 2:
            continue
        finite = group[np.isfinite(group["value"].to_numpy(float))]
        if finite.empty:
            continue
        means = finite.groupby("arch", sort=False).agg(
            value=("value", "mean"), spread=("value", "std"),
            components=("components", lambda c: pd.DataFrame(list(c)).mean().to_dict()))
        first = finite.drop_duplicates("arch").set_index("arch").loc[means.index].reset_index()
        first = first.assign(value=means["value"].to_numpy(), components=list(means["components"]),
                             seed=int(group["seed"].min()))
        averaged.append(first)
        labels = single[(single["dataset"] == group["dataset"].iloc[0]) & (single["proxy"] == group["proxy"].iloc[0])
                        & (single["option_hash"] == group["option_hash"].iloc[0])]
        across = float(means["value"].std())
        records.append({"dataset": group["dataset"].iloc[0], "proxy": group["proxy"].iloc[0],
                        "option_hash": group["option_hash"].iloc[0],
                        "seeds": ",".join(map(str, sorted(group["seed"].unique()))),
                        "single_tau_min": labels["kendall_tau"].min() if "kendall_tau" in labels else np.nan,
                        "single_tau_max": labels["kendall_tau"].max() if "kendall_tau" in labels else np.nan,
                        "relative_init_spread": float(means["spread"].median()) / across if across > 0 else np.nan})
    if not records:
        return pd.DataFrame()
    table = pd.DataFrame(records)
    mean_eval = evaluate(pd.concat(averaged, ignore_index=True), ground_truth, nan_policy=nan_policy,
                         n_resamples=n_resamples, confidence=confidence, seed=seed).table
    taus = mean_eval.set_index(["dataset", "proxy", "option_hash"])
    for column in ("kendall_tau", "kendall_tau_low", "kendall_tau_high", "n"):
        table[f"mean_{column}"] = [taus[column].get((r["dataset"], r["proxy"], r["option_hash"]), np.nan)
                                   if column in taus else np.nan for _, r in table.iterrows()]
    return table


def _init_section(init_table: pd.DataFrame, single: pd.DataFrame, dataset: str, gt_key: str) -> list[str]:
    here = init_table[init_table["dataset"] == dataset] if not init_table.empty else init_table
    if here.empty:
        return []
    rows = []
    for _, r in here.iterrows():
        label = single[(single["dataset"] == dataset) & (single["proxy"] == r["proxy"])
                       & (single["option_hash"] == r["option_hash"])]["label"].iloc[0].split(" seed ")[0]
        interval = (f"{_num(r['mean_kendall_tau'])} [{_num(r['mean_kendall_tau_low'])}, "
                    f"{_num(r['mean_kendall_tau_high'])}]")
        rows.append([label, r["seeds"], f"{_num(r['single_tau_min'])} – {_num(r['single_tau_max'])}", interval,
                     _num(r["relative_init_spread"], 2)])
    return ["### Init seeds", "",
            f"Ground truth: `{gt_key}`. Proxies scored under several init seeds: τ of each single init (range over "
            "the seeds) beside τ of the score averaged over the inits (published numbers differ by exactly "
            "this), and the spread across inits (median over architectures of the score's standard deviation "
            "across inits, divided by its standard deviation across architectures; 0: the init does not matter).",
            "", markdown_table(["proxy", "init seeds", "τ, single init", "τ, init-averaged", "init spread"], rows),
            ""]


def _paired_matrix(paired: pd.DataFrame, labels: Sequence[str]) -> str:
    if paired.empty:
        return "_Fewer than two proxies with common finite scores._"
    lookup = paired.set_index(["a", "b"])["probability_a_better"]
    rows = [[a, *("–" if a == b else _num(lookup.get((a, b)), 2) for b in labels)] for a in labels]
    return markdown_table(["P(row better than column)", *labels], rows)


_OTHER_METRICS = {"spearman_rho_vs_val": "ρ vs NASLib val", "pairwise_accuracy": "pairwise accuracy"}


def published_section(published: pd.DataFrame, table: pd.DataFrame, dataset: str) -> list[str]:
    """Our τ and ρ beside each published value of the same proxy and dataset, sources listed below."""
    here = published[(published["dataset"] == dataset) & published["proxy"].isin(set(table["proxy"]))]
    if here.empty:
        return ["_No published values for these proxies on this dataset._", ""]
    sources = list(dict.fromkeys(here.sort_values("source")["source"]))
    number = {source: i + 1 for i, source in enumerate(sources)}
    rows = []
    for _, mine in table.iterrows():
        matches = here[here["proxy"] == mine["proxy"]]
        for (source, note), group in matches.groupby(["source", "note"], sort=True):
            metric = dict(zip(group["metric"], group["value"], strict=True))
            other = ", ".join(f"{_OTHER_METRICS.get(m, m)} {_num(v)}" for m, v in metric.items()
                              if m not in ("kendall_tau", "spearman_rho", "abs_spearman_rho"))
            rows.append([mine["label"], _num(mine.get("kendall_tau")), _num(mine.get("spearman_rho")),
                         _num(metric.get("kendall_tau")), _num(metric.get("spearman_rho")),
                         _num(metric.get("abs_spearman_rho")), other or "–", group.iloc[0]["archs"],
                         f"[{number[source]}]" + (f" {note}" if note else "")])
    first = here.drop_duplicates("source").set_index("source")
    notes = [f"{number[s]}. {first.at[s, 'citation']}. Protocol: {first.at[s, 'protocol']}. Ground truth: "
             f"{first.at[s, 'ground_truth']}." for s in sources]
    return ["Published numbers differ in protocol (ground-truth key, sample, batch, implementation); |ρ| is "
            "printed only where the source reports |ρ|.", "",
            markdown_table(["proxy", "our τ", "our ρ", "published τ", "published ρ", "published |ρ|", "other",
                            "archs", "source"], rows), "", *notes, ""]


def published_agreement(points: pd.DataFrame, table: pd.DataFrame, published: PublishedScores | None,
                        dataset: str) -> pd.DataFrame:
    """Per proxy variant of ``dataset`` whose proxy the source also scored, over the architectures where both
    scores are finite (``n``): Spearman ρ between our raw score and the published one, and the Kendall τ of
    each against the same ground truth (the published score oriented by our proxy's declared direction), so
    the source's own ranking quality on exactly these architectures stands beside ours. Empty without a source."""
    columns = ["dataset", "label", "proxy", "n", "spearman_rho", "our_kendall_tau", "published_kendall_tau"]
    if published is None:
        return pd.DataFrame(columns=columns)
    records = []
    for _, mine in table.iterrows():
        if mine["proxy"] not in published.table.columns:
            continue
        ours = points[(points["dataset"] == dataset) & (points["label"] == mine["label"])]
        theirs = published.table[mine["proxy"]].reindex(ours["arch"]).to_numpy(float)
        values = ours["value"].to_numpy(float)
        both = np.isfinite(values) & np.isfinite(theirs)
        record = dict(dataset=dataset, label=mine["label"], proxy=mine["proxy"], n=int(both.sum()),
                      spearman_rho=math.nan, our_kendall_tau=math.nan, published_kendall_tau=math.nan)
        if both.sum() >= 2:
            direction = 1.0 if bool(mine["higher_is_better"]) else -1.0
            accuracy = ours["accuracy"].to_numpy(float)[both]
            record.update(spearman_rho=spearman_rho(values[both], theirs[both]),
                          our_kendall_tau=kendall_tau(ours["oriented_score"].to_numpy(float)[both], accuracy),
                          published_kendall_tau=kendall_tau(direction * theirs[both], accuracy))
        records.append(record)
    return pd.DataFrame(records, columns=columns)


def _published_scores(bench_obj: Benchmark, dataset: str) -> tuple[PublishedScores | None, str | None]:
    """The benchmark's published per-architecture scores of ``dataset`` (``None`` where it has none), and
    a note when it has some but they cannot be read (the report goes on without them)."""
    scores = getattr(bench_obj, "published_scores", None)
    if scores is None:
        return None, None
    try:
        return scores(dataset), None
    except benchmarks.BenchmarkError as exc:
        return None, f"{dataset}: published per-architecture scores left out: {exc}"


def published_agreement_section(agreement: pd.DataFrame, published: PublishedScores | None) -> list[str]:
    """The per-architecture agreement table and the source's protocol (nothing without a source)."""
    if published is None:
        return []
    lines = ["### Per-architecture agreement with published scores", ""]
    if agreement.empty:
        return lines + [f"_{published.citation} scored none of these proxies._", ""]
    rows = [[r["label"], f"{r['n']:,}", _num(r["spearman_rho"]), _num(r["our_kendall_tau"]),
             _num(r["published_kendall_tau"])] for _, r in agreement.iterrows()]
    return lines + ["Spearman ρ between our score and the published score of the same architecture (raw "
                    "values, both finite; near 1: the same proxy up to protocol), and the Kendall τ of each "
                    "against this report's ground truth on exactly those architectures (the published score "
                    "taken in our proxy's direction).", "",
                    markdown_table(["proxy", "archs", "ρ (ours vs published)", "our τ", "published τ"], rows), "",
                    f"Source: {published.citation}. Their protocol: {published.protocol}.", ""]


def _describe_batches(sources: pd.Series, mode: str) -> str:
    unique = sorted(set(sources))
    if mode == "per-arch" and len(unique) > 1:
        return f"a batch per architecture ({len(unique)} batches), e.g. {unique[0]}"
    return ", ".join(unique)


def protocol_table(rows: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """One row per (dataset, proxy protocol): what each score was computed with."""
    rows = rows.assign(label=labels)
    records = []
    for (dataset, label), group in rows.groupby(["dataset", "label"], sort=True):
        first = group.iloc[0]
        records.append({
            "dataset": dataset, "proxy": label, "network": ", ".join(sorted(set(group["network"]))),
            "proxy_class": first["proxy_class"],
            "option_hash": first["option_hash"], "options": json.dumps(first["options"], sort_keys=True),
            "input_kind": ", ".join(sorted(set(group["input_kind"]))),
            "batch": _describe_batches(group["batch_source"], str(first["batch_mode"])),
            "batch_mode": ", ".join(sorted(set(group["batch_mode"]))),
            "batch_size": ", ".join(sorted({str(int(b)) for b in group["batch_size"].dropna()})) or "–",
            "seed": ", ".join(sorted({str(s) for s in group["seed"]})),
            "copied": int(group["copied_from"].notna().sum()) if "copied_from" in group else 0,
            "shared": int(group["shared_with"].notna().sum()) if "shared_with" in group else 0,
            "device": ", ".join(sorted(set(group["device"]))), "gt_key": ", ".join(sorted(set(group["gt_key"]))),
            "nan_policy": ", ".join(sorted(set(group["nan_policy"]))),
            "zenbench": ", ".join(sorted(set(group["zenbench_version"]))),
            "torch": ", ".join(sorted(set(group["torch_version"]))),
        })
    return pd.DataFrame(records)


def score_tables(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The score tables a report reads (``--table``): a list of paths, or one path named like a table
    (:data:`bench.tables.TABLE_SUFFIXES`); empty when ``source`` is a results store."""
    if isinstance(source, (str, os.PathLike)):
        name = Path(source).name
        return [Path(source)] if name.endswith(TABLE_SUFFIXES) else []
    return [Path(t) for t in source]


def _report_command(store: Path | Sequence[Path], out: Path, benchmark: str, ground_truth: str | os.PathLike | None,
                    n_resamples: int, confidence: float, seed: int, nan_policy: str, title: str | None,
                    gt_key: str | None = None, scatter_axes: str = "rank") -> str:
    source = ["--store", str(store)] if isinstance(store, Path) else [w for t in store for w in ("--table", str(t))]
    words = ["zenbench", "report", "--benchmark", benchmark, *source, "--out", str(out)]
    if ground_truth is not None:
        words += ["--ground-truth", str(ground_truth)]
    if n_resamples != DEFAULT_RESAMPLES:
        words += ["--resamples", str(n_resamples)]
    if confidence != DEFAULT_CONFIDENCE:
        words += ["--confidence", str(confidence)]
    if seed != 0:
        words += ["--bootstrap-seed", str(seed)]
    if nan_policy != "exclude":
        words += ["--nan-policy", nan_policy]
    if title is not None:
        words += ["--title", title]
    if gt_key is not None:
        words += ["--gt", gt_key]
    if scatter_axes != "rank":
        words += ["--scatter-axes", scatter_axes]
    return shlex.join(words)


# ----------------------------------------------------------------------------- the report


def with_gt_key(rows: pd.DataFrame, ground_truth: GroundTruthTable, key: str) -> pd.DataFrame:
    """``rows`` with ``gt_key`` set to ``key`` (``--gt``) for the dataset the key names (its ``_``-separated
    words hold the dataset: ``cifar10_valid``, ``hp12_cifar10_test``); a key the ground truth lacks, or
    that names no dataset of the rows, is a one-line ``ValueError``."""
    if key not in ground_truth.accuracy_keys:
        raise ValueError(f"--gt {key!r}: not a ground-truth key; expected one of "
                         f"{', '.join(ground_truth.accuracy_keys)}")
    datasets = [d for d in (sorted(set(rows["dataset"])) if not rows.empty else []) if d in key.split("_")]
    if not datasets:
        stored = ", ".join(sorted(set(rows["dataset"]))) if not rows.empty else "none"
        raise ValueError(f"--gt {key!r}: names none of the store's datasets ({stored})")
    return rows.assign(gt_key=rows["gt_key"].where(~rows["dataset"].isin(datasets), key))


def store_benchmark(rows: pd.DataFrame, benchmark: str | Benchmark | None) -> str:
    """The benchmark a report covers: the one asked for, else the store's only one (``nb201`` when empty)."""
    stored = sorted(set(rows["benchmark"])) if not rows.empty else []
    if benchmark is not None:
        return benchmark if isinstance(benchmark, str) else benchmark.name
    if len(stored) > 1:
        raise ValueError(f"the store holds scores of several benchmarks ({', '.join(stored)}); pick one with "
                         f"--benchmark")
    return stored[0] if stored else "nb201"


def render_report(store: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike, *,
                  benchmark: str | Benchmark | None = None,
                  ground_truth: str | os.PathLike | GroundTruthTable | Any = None,
                  n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                  nan_policy: str = "exclude", title: str | None = None, gt_key: str | None = None,
                  scatter_axes: str = "rank") -> ReportResult:
    """Write the report of ``store`` into the folder ``out`` (created). ``store``: a results store, or
    published score tables (a list of paths, or one path ending in ``.csv.xz``/``.csv.gz``/``.csv``;
    :func:`score_tables`), read without rescoring. Other parameters as ``zenbench report``:
    ``benchmark`` [None: the store's only benchmark] a name, ``module:Class`` spec or instance; its scores
    are reported against ``ground_truth`` [None: the benchmark's own lookup; a source it reads, or a loaded
    :class:`GroundTruthTable`]; ``n_resamples`` [1000] bootstrap resamples drawn with ``seed`` [0],
    ``confidence`` [0.95], ``nan_policy`` ["exclude"], ``title`` [from the benchmark and ``out``];
    ``gt_key`` [None: the key each run recorded, the benchmark's default] a ground-truth column (``--gt``, e.g.
    ``cifar10_valid``, ``hp12_cifar10_test``) that replaces the recorded key for the dataset it names;
    ``scatter_axes`` ["rank"] one of :data:`SCATTER_AXES`."""
    if scatter_axes not in SCATTER_AXES:
        raise ValueError(f"--scatter-axes {scatter_axes!r}: expected one of {', '.join(SCATTER_AXES)}")
    tables = score_tables(store)
    store, out = (Path(store) if not tables else None), Path(out)
    if not 0 < confidence < 1:
        raise ValueError(f"--confidence {confidence}: expected a level between 0 and 1, e.g. 0.95")
    if n_resamples < 1:
        raise ValueError(f"--resamples {n_resamples}: expected a positive integer")
    if tables:
        rows, runs = table_scores(tables)
    else:
        with ResultStore(store, create=False) as results:
            rows, runs = results.scores(), results.runs()
    source = ", ".join(f"`{t}`" for t in tables) if tables else f"`{store}`"
    name = store_benchmark(rows, benchmark)
    bench_obj = benchmarks.resolve(benchmark if benchmark is not None and not isinstance(benchmark, str) else name)
    rows = rows[rows["benchmark"] == name].reset_index(drop=True) if not rows.empty else rows
    runs = runs[[_run_benchmark(c) == name for c in runs["config"]]].reset_index(drop=True) if not runs.empty \
        else runs
    gt = ground_truth if isinstance(ground_truth, GroundTruthTable) else bench_obj.ground_truth(ground_truth)
    if gt_key is not None:
        rows = with_gt_key(rows, gt, gt_key)
    evaluation = evaluate(rows, gt, nan_policy=nan_policy, n_resamples=n_resamples, confidence=confidence, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def write_csv(frame: pd.DataFrame, name: str) -> None:
        frame.apply(lambda column: column.map(portable_paths) if column.dtype == object else column) \
            .to_csv(out / name, index=False)
        files.append(out / name)

    table = evaluation.table
    init_table = pd.DataFrame()
    labels = variant_labels(rows) if not rows.empty else pd.Series(dtype=str)
    incomplete = incomplete_samples(rows, labels, runs)
    if not table.empty:
        table = table.sort_values(["dataset", "kendall_tau" if "kendall_tau" in table else "label"],
                                  ascending=[True, False], na_position="last")
        table = table.merge(cost_context(rows, labels), on=["dataset", "label"], how="left")
        init_table = init_seed_table(rows, table, gt, nan_policy=nan_policy, n_resamples=n_resamples,
                                     confidence=confidence, seed=seed)
    write_csv(table, "correlations.csv")
    if not init_table.empty:
        write_csv(init_table, "init_seeds.csv")
    spreads = init_spreads(rows, table)
    write_csv(evaluation.paired, "paired.csv")
    write_csv(evaluation.noise_ceiling, "noise_ceiling.csv")
    published = published_table(name)
    present = set(rows["proxy"]) if not rows.empty else set()
    write_csv(published[published["proxy"].isin(present)], "published.csv")
    protocol = protocol_table(rows, labels) if not rows.empty else pd.DataFrame()
    write_csv(protocol, "protocol.csv")
    run_table = runs.drop(columns=["config"]).assign(config=runs["config"].map(json.dumps))
    write_csv(run_table, "runs.csv")

    report_title = title or f"Zero-shot proxies on {bench_obj.title}: {out.name}"
    lines = [f"# {report_title}", ""]
    gt_source = ground_truth if isinstance(ground_truth, (str, os.PathLike)) else None
    lines += _header(runs, tables or store, out, name, gt_source,
                     n_resamples, confidence, seed, nan_policy, title, gt_key, scatter_axes)
    networks = ", ".join(sorted(set(rows["network"]))) if not rows.empty else "–"
    lines += [
        f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by zenbench {software_versions()[0]} from "
        f"{source}: {len(rows):,} stored scores, {len(table)} proxy protocol(s), {len(runs)} recorded run(s). "
        f"Benchmark: {bench_obj.title} (`{name}`), network: {networks}. Ground truth: {gt.source}.", "",
        "**How to read.** τ is Kendall τ-b (ties handled as scipy), ρ Spearman, r Pearson on the raw scores. "
        "All are signed, with each proxy's declared direction applied (a lower-is-better score is negated), "
        "never |ρ|. top-k% is the share of the proxy's top k% that is in the true top k% (ties at the cut "
        f"share the places); τ in true top-{TOP_TAU_PERCENT}% ranks only the truly best architectures. Brackets: "
        f"{round(100 * confidence)}% bootstrap percentile intervals over architectures ({n_resamples} resamples, "
        f"seed {seed}). Non-finite scores: {NAN_POLICIES[nan_policy]}. Cost: median wall seconds per "
        "architecture of the proxy call, and its median peak memory (CUDA allocator, or growth of the "
        "process's peak RSS on CPU), with the threads, device and machine load it was measured with. A top-k% "
        f"metric needs k% of N to be at least {MIN_TOP_K_ARCHS} architectures: below, it reads \"n too small\" "
        f"(the column is left out when no proxy has enough). Scatter plots: {SCATTER_AXES[scatter_axes]}.", "",
    ]
    if table.empty:
        lines += ["_The store holds no scores._", ""]
    agreements = []
    for dataset in _dataset_order(list(table["dataset"].unique()) if not table.empty else []):
        per_arch, missing = _published_scores(bench_obj, dataset)
        if missing:
            evaluation.notes.append(missing)
        agreement = published_agreement(evaluation.points, table[table["dataset"] == dataset], per_arch, dataset)
        agreements.append(agreement)
        lines += _dataset_section(dataset, table[table["dataset"] == dataset], evaluation, published, runs, out,
                                  files, init_table, scatter_axes, spreads,
                                  incomplete[incomplete["dataset"] == dataset])
        lines += published_agreement_section(agreement, per_arch)
    if any(not a.empty for a in agreements):
        write_csv(pd.concat(agreements, ignore_index=True), "published_agreement.csv")
    lines += _noise_section(evaluation, bench_obj.title)
    lines += _protocol_section(protocol, runs)
    if evaluation.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in evaluation.notes), ""]
    readme = out / "README.md"
    readme.write_text(portable_paths("\n".join(lines)))
    files.insert(0, readme)
    return ReportResult(out, readme, tuple(files), evaluation)


def _run_benchmark(config: dict[str, Any]) -> str:
    """The benchmark of a recorded run (zenbench 0.1 called it ``space``)."""
    return str(config.get("benchmark") or config.get("space") or "nb201")


def _header(runs: pd.DataFrame, store: Path | Sequence[Path], out: Path, benchmark: str,
            ground_truth: str | os.PathLike | None,
            n_resamples: int, confidence: float, seed: int, nan_policy: str, title: str | None, gt_key: str | None,
            scatter_axes: str) -> list[str]:
    commands = list(dict.fromkeys(runs["command"])) if not runs.empty else []
    report = _report_command(store, out, benchmark, ground_truth, n_resamples, confidence, seed, nan_policy, title,
                             gt_key, scatter_axes)
    return ["Regenerate with:", "", "```sh", *commands, report, "```", ""]


def _dataset_section(dataset: str, table: pd.DataFrame, evaluation: Evaluation, published: pd.DataFrame,
                     runs: pd.DataFrame, out: Path, files: list[Path], init_table: pd.DataFrame,
                     scatter_axes: str, spreads: dict[tuple[str, str], pd.DataFrame],
                     incomplete: pd.DataFrame) -> list[str]:
    name = DATASET_NAMES.get(dataset, dataset)
    samples = sorted({(str(c.get("sample") or "all"), str(c.get("seed"))) for c in runs["config"]
                      if c.get("dataset") == dataset})  # runs of this benchmark only
    sample_text = "; ".join(f"sample {n} with seed {s}" for n, s in samples) or "not recorded"
    gt_key = ", ".join(sorted(set(table["gt_key"])))
    lines = [f"## {name}", "",
             f"Ground truth: `{gt_key}`. Architectures: {sample_text} "
             "(`GroundTruthTable.sample`, a seeded permutation of the evaluated architectures).", ""]
    headers, rows = correlation_rows(table)
    lines += [markdown_table(headers, rows), ""]
    for dedupe, group in incomplete.groupby("dedupe", sort=True):
        held = ", ".join(f"{r.label} {r.scored:,} of {r.planned:,}" for r in group.itertuples())
        lines += [f"**Incomplete:** {held} architectures of the sample their runs drew. " + (
            "A cut-off `--dedupe` run is not a uniform sample (it scores one member of every class first): "
            "read these rows as work in progress, not as the sample's correlations." if dedupe else
            "A cut-off run without `--dedupe` holds the first architectures of the seeded permutation of the "
            "sample (of each shard): a smaller uniform sample."), ""]
    points = evaluation.points[evaluation.points["dataset"] == dataset]
    scatter, cost = out / f"scatter_{dataset}.png", out / f"cost_{dataset}.png"
    _scatter_figure(points, table, dataset, scatter, scatter_axes, spreads)
    _cost_figure(table, dataset, cost, evaluation.confidence)
    files += [scatter, cost]
    lines += [f"![{name}: proxy score against accuracy]({scatter.name})", "",
              f"![{name}: cost against τ]({cost.name})", ""]
    paired = evaluation.paired[evaluation.paired["dataset"] == dataset] if not evaluation.paired.empty else \
        evaluation.paired
    lines += _init_section(init_table, table, dataset, gt_key)
    lines += ["### Which proxy ranks better?", ""]
    if not paired.empty:
        lines += [f"Ground truth: `{gt_key}`. Paired bootstrap on the {int(paired['n'].iloc[0]):,} architectures "
                  "every proxy scored finitely: the share of resamples in which the row's τ exceeds the column's "
                  "(1.00: always).", ""]
    lines += [_paired_matrix(paired, list(table["label"])), ""]
    return lines + ["### Published values beside ours", "", f"Ours against ground truth `{gt_key}`.", "",
                    *published_section(published, table, dataset)]


def _noise_section(evaluation: Evaluation, title: str) -> list[str]:
    lines = ["## Noise ceiling", ""]
    ceiling = evaluation.noise_ceiling
    if ceiling.empty or "kendall_tau" not in ceiling:
        return lines + [f"_Not computed: needs scores of a ground-truth key for which {title} publishes per-trial "
                        "results (NB201: `nb201_cifar10_trials.csv`)._", ""]
    rows = [[DATASET_NAMES.get(r["dataset"], r["dataset"]), r["gt_key"], NOISE_CEILING_MEASURES[r["measure"]],
             f"{int(r['n']):,}", _with_interval(r, "kendall_tau"), _with_interval(r, "spearman_rho")]
            for _, r in ceiling.iterrows()]
    return lines + [
        f"How well one training run of {title} ranks another, over the sampled architectures that have at "
        "least two runs (the benchmark's per-trial accuracies of the ground-truth key). No proxy can rank the "
        "noisy accuracy better than an independent training run does; the ground truth is the mean over runs, "
        "so the second line, one run against the mean of the others, is the closer bound.", "",
        markdown_table(["dataset", "ground truth", "measure", "N", "τ", "ρ"], rows), ""]


def _reference_choices(protocol: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Each proxy class's reference choices (init, BN mode, input...), as recorded by the runs that scored it
    (its structured reference at scoring time), folded."""
    recorded: dict[str, str] = {}
    for config in runs["config"]:
        for entry in config.get("proxies", []):
            if entry.get("reference"):
                recorded[entry["class"]] = entry["reference"]
    lines = []
    for proxy_class in dict.fromkeys(protocol["proxy_class"]):
        text = _reference_text(recorded.get(proxy_class))
        if text:
            lines += ["<details><summary>" + f"{proxy_class}: reference choices (init, BN, input), as recorded"
                      + "</summary>", "", "```text", text, "```", "", "</details>", ""]
    return lines


def _reference_text(reference: Any) -> str:
    """A recorded reference as text: zenbench 0.2 stores ``{paper, code, choices}``; earlier runs stored the
    class docstring."""
    if not isinstance(reference, dict):
        return str(reference or "")
    lines = [f"paper: {reference.get('paper', '')}", f"code: {reference.get('code', '')}"]
    lines += [f"{choice}: {what}" for choice, what in (reference.get("choices") or {}).items()]
    return "\n".join(lines)


def _protocol_section(protocol: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    lines = ["## Protocol", ""]
    if not protocol.empty:
        columns = ["dataset", "proxy", "network", "proxy_class", "option_hash", "options", "input_kind", "batch",
                   "batch_size", "seed", "device", "gt_key", "nan_policy", "copied", "shared"]
        lines += ["Init and BN handling are each proxy's reference defaults unless an option says otherwise (see "
                  "the docstring of its class).", "",
                  markdown_table(columns, protocol[columns].astype(str).to_numpy().tolist()), ""]
        versions = sorted(set(zip(protocol["zenbench"], protocol["torch"], strict=True)))
        lines += ["Software: " + "; ".join(f"zenbench {z}, torch {t}" for z, t in versions) + ".", ""]
        if protocol["shared"].sum() > 0:
            lines += ["`shared`: scores read from one pass shared with other proxies of the run (the same network, "
                      "batch and forward/backward; the values are bit-identical to scoring alone); their cost is "
                      "the proxy's share of the group's time.", ""]
        if protocol["copied"].sum() > 0:
            lines += [f"`copied`: scores of a deduplicated run (`--dedupe`): {DEDUPE_NOTE}", ""]
        lines += _reference_choices(protocol, runs)
    if not runs.empty:
        open_runs = runs["finished"].isna()
        rows = [[_dt.datetime.fromtimestamp(r["started"]).strftime("%Y-%m-%d %H:%M"),
                 NO_END if unfinished else r["status"], int(r["n_computed"]), r["device"],
                 f"python {r['python_version']}, {r['platform']}", f"`{r['command']}`"]
                for (_, r), unfinished in zip(runs.iterrows(), open_runs, strict=True)]
        lines += ["Runs recorded in the store:", "",
                  markdown_table(["started", "status", "scores added", "device", "platform", "command"], rows), ""]
        if open_runs.any():
            lines += [f"`{NO_END}`: the run was still going when its scores were read, or was killed (SIGKILL, the "
                      "machine's end) before it could record its end; its scores added are the rows it stored.", ""]
    return lines
