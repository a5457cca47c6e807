"""The report of ``zenbench reproduce``: per dataset, the paper's figure, ours under the paper's protocol (with
its interval), ours under zenbench's defaults, the verdict; a figure of ours against the paper's; the protocol
file printed in full."""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.data import portable_paths  # noqa: E402
from bench.reproduce import BATCH_RULES, INPUTS, SEED_RULES, UNJUDGED, Protocol  # noqa: E402
from bench.statistics import NAN_POLICIES  # noqa: E402
from bench.store import software_versions  # noqa: E402
from reports.render import markdown_table  # noqa: E402

_METRIC_NAMES = {"spearman_rho": "ρ", "kendall_tau": "τ", "pearson_r": "r"}


def _metric_name(measured: str) -> str:
    bare = measured.strip("|")
    name = _METRIC_NAMES.get(bare, bare.replace("ndcg@", "nDCG@"))
    return f"|{name}|" if measured.startswith("|") else name


def _fmt(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _with_ci(row: pd.Series, prefix: str) -> str:
    value, low, high = row[f"{prefix}_value"], row[f"{prefix}_low"], row[f"{prefix}_high"]
    if math.isnan(value):
        return "–"
    return f"{value:.3f} [{_fmt(low)}, {_fmt(high)}]"


def _verdict(row: pd.Series) -> str:
    if row["verdict"] == "inside" or row["verdict"] in UNJUDGED:
        return row["verdict"]
    return f"{row['verdict']} by {row['distance']:.3f}"


def _figure(table: pd.DataFrame, path: Path) -> bool:
    shown = table.dropna(subset=["published", "paper_value"])
    if shown.empty:
        return False
    datasets = list(dict.fromkeys(shown["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = shown[shown["dataset"] == dataset]
        for _, group in part.groupby("metric", sort=False):
            ax.errorbar(group["published"], group["paper_value"],
                        yerr=[group["paper_value"] - group["paper_low"], group["paper_high"] - group["paper_value"]],
                        fmt="o", ms=4, capsize=2, label=_metric_name(group["measured_as"].iloc[0]))
            for _, row in group.iterrows():
                ax.annotate(row["proxy"][:18], (row["published"], row["paper_value"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        low = min(part["published"].min(), part["paper_low"].min(), 0.0)
        high = max(part["published"].max(), part["paper_high"].max(), 0.0) + 0.05
        ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
        ax.set_xlim(part["published"].min() - 0.1, part["published"].max() + 0.1)
        ax.set_xlabel("paper's figure")
        ax.set_ylabel("ours, paper's protocol (95% interval)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def render_reproduction(protocol: Protocol, table: pd.DataFrame, out: str | os.PathLike, *, command: str,
                        n_sample: int | None, paper_archs: int, confidence: float, n_resamples: int) -> Path:
    """Write ``README.md``, ``verdicts.csv`` and ``paper_vs_ours.png`` into ``out``; returns the README path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "verdicts.csv", index=False)
    has_figure = _figure(table, out / "paper_vs_ours.png")
    judged = table[~table["verdict"].isin(UNJUDGED)]
    inside = int((judged["verdict"] == "inside").sum())
    scored = "all of the paper's" if n_sample is None or n_sample >= paper_archs else \
        f"a seeded sample of {n_sample:,} of the paper's"
    lines = [
        f"# Reproduce: {protocol.title}", "",
        f"`{protocol.name}` — {protocol.citation}.", "",
        "Regenerate with:", "", "```sh", command, "```", "",
        f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by zenbench {software_versions()[0]}, torch "
        f"{software_versions()[1]}. Architectures: {scored} {paper_archs:,} (sample seed {protocol.sample_seed}); "
        f"`--sample all` scores what the paper scored.", "",
        (f"**Verdict: {inside} of {len(judged)} published figures lie inside our {round(100 * confidence)}% "
         f"interval** under the paper's protocol." if len(judged) else
         "**Verdict: none.** The protocol gives no published figure to judge (see its notes); our figures stand "
         "alone."), "",
        "**How to read.** *paper* is the published figure. *ours (paper's protocol)* is the same proxy scored and "
        "measured as the protocol file below says (options, network, batch rule, input, init seeds, ground-truth "
        f"key, NaN policy, metric), with its {round(100 * confidence)}% bootstrap percentile interval over "
        f"architectures ({n_resamples} resamples, seed 0); an |x| metric folds the interval at 0. *verdict*: "
        "whether the paper's figure lies inside that interval, else by how much it lies outside (the distance to "
        "the nearer bound). *ours (zenbench default)* is the proxy with its reference defaults (one shared real "
        "batch, init seed 0, the benchmark's trained network and default ground-truth key, non-finite scores "
        "left out; for a component read-out, the proxy's own value), the same signed metric on the same "
        "architectures: how far the paper's protocol moves the "
        "figure. On a sample the intervals are wide; a figure over all architectures can still sit outside "
        "them for reasons the protocol notes list.", "",
    ]
    for dataset in protocol.datasets:
        part = table[table["dataset"] == dataset]
        if part.empty:
            continue
        first = part.iloc[0]
        lines += [f"## {dataset}", "",
                  f"Ground truth: `{first['gt_key']}` (paper's protocol), `{first['default_gt_key']}` (zenbench "
                  "default).", ""]
        rows = [[r["proxy"], _metric_name(r["measured_as"]), _fmt(r["published"]), _with_ci(r, "paper"), _verdict(r),
                 _with_ci(r, "default"), f"{int(r['n'])}", f"{int(r['n_nonfinite'])}"] for _, r in part.iterrows()]
        lines += [markdown_table(["proxy", "metric", "paper", "ours (paper's protocol)", "verdict",
                                  "ours (zenbench default)", "N", "non-finite"], rows), ""]
    if has_figure:
        lines += ["![ours against the paper's figures](paper_vs_ours.png)", ""]
    lines += [
        "## The protocol", "",
        f"- benchmark `{protocol.benchmark}`, datasets {', '.join(protocol.datasets)}; metric(s) "
        f"{', '.join(protocol.metrics)}{' as absolute values' if protocol.absolute else ', signed'};",
        f"- batch: {BATCH_RULES[protocol.batch]}, {INPUTS[protocol.inputs]}, batch size "
        f"{protocol.batch_size or 'each proxy' + chr(39) + 's own'}; init seeds {list(protocol.init_seeds)}: "
        f"{SEED_RULES[protocol.seed_rule]};",
        f"- non-finite scores: {NAN_POLICIES[protocol.nan_policy]};",
        *[f"- {p.label}: `{p.proxy}` options {dict(p.options) or 'default'}, network `{p.network}`"
          + (f", component `{p.component}`" if p.component else "") + (f" — {p.note}" if p.note else "") + ";"
          for p in protocol.proxies],
        "", "Notes:", "", *(f"- {n}" for n in protocol.notes), "",
        f"The file (`{Path(protocol.path).name}`), in full:", "", "```toml", protocol.text.rstrip(), "```", "",
    ]
    readme = out / "README.md"
    readme.write_text(portable_paths("\n".join(lines)))
    return readme
