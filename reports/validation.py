"""The report of an end-to-end validation (``zenbench validate``): accuracy per proxy beside ZenNAS's column,
the found networks, training curves and a bar chart."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.validation import ValidationRow, ValidationSetup, summary_table  # noqa: E402
from reports.render import markdown_table  # noqa: E402


def _curves(rows: Sequence[ValidationRow], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for proxy in dict.fromkeys(r.proxy for r in rows):
        logs = [pd.DataFrame(list(r.log)) for r in rows if r.proxy == proxy and r.log]
        if not logs:
            continue
        curve = pd.concat(logs).groupby("epoch")["test_acc"].mean()
        ax.plot(curve.index, curve.to_numpy(), marker="o", ms=3, label=proxy)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%), mean over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _bars(table: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(len(table))
    ax.bar(x, table["test_acc_mean"], yerr=table["test_acc_std"].fillna(0), capsize=3, color="tab:blue",
           label="ours (this scale)")
    published = table["published_top1"].astype(float)
    if published.notna().any():
        ax.scatter([i for i, v in zip(x, published, strict=True) if pd.notna(v)], published.dropna(), marker="_",
                   s=400, color="black", zorder=3, label="ZenNAS published (params <= 1M, 1,440 epochs)")
    values = pd.concat([table["test_acc_mean"], published]).dropna()
    ax.set_ylim(max(0.0, values.min() - 10), min(100.0, values.max() + 5))
    ax.set_xticks(list(x), table["proxy"], rotation=30)
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_validation(rows: Sequence[ValidationRow], setup: ValidationSetup, out: str | os.PathLike) -> Path:
    """Write ``README.md``, ``results.csv`` (one row per proxy and seed), ``summary.csv``, ``curves.png`` and
    ``final_accuracy.png`` into ``out``; returns the README's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = summary_table(rows, setup.dataset)
    pd.DataFrame([{k: v for k, v in dataclasses.asdict(r).items() if k != "log"} for r in rows]).to_csv(
        out / "results.csv", index=False)
    table.to_csv(out / "summary.csv", index=False)
    _curves(rows, out / "curves.png")
    _bars(table, out / "final_accuracy.png")
    lines = [f"# End-to-end proxy validation on {setup.dataset}", "",
             "Each proxy is the fitness of the same Zen-NAS evolutionary search (same budget and seed); the network "
             "it finds is trained with the same recipe for each seed. `random` is random search with the same "
             "number of evaluations. ZenNAS's column is its README's (params ≤ 1M, 1,440 epochs): this study's "
             "scale is far smaller, so compare orderings, not numbers.", "",
             "Setup: `" + json.dumps(dataclasses.asdict(setup)) + "`", ""]
    headers = ["proxy", "test acc (%) mean ± std", "seeds", "ZenNAS published", "params (M)", "FLOPs (M)",
               "search s", "train s", "train img/s"]
    body = [[r.proxy, f"{r.test_acc_mean:.2f} ± {0 if pd.isna(r.test_acc_std) else r.test_acc_std:.2f}", r.seeds,
             "–" if pd.isna(r.published_top1) else f"{r.published_top1:.1f}", f"{r.params_m:.3f}", f"{r.flops_m:.1f}",
             f"{r.search_seconds:.0f}", f"{r.train_seconds:.0f}", f"{r.images_per_s:.0f}"]
            for r in table.itertuples()]
    lines += [markdown_table(headers, body), "", "![training curves](curves.png)", "",
              "![final accuracy](final_accuracy.png)", "", "Found structures:", ""]
    lines += [f"- `{r.proxy}`: `{r.structure}`" for r in table.itertuples()]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    return out / "README.md"
