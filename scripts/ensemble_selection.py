"""Choose a rank ensemble on one benchmark, report it on another, and show every candidate (issue 13).

Every combination of the pool's members (equal weights, AZ-NAS's Σ log(rank/N); a member with its own
population rule, AZ-NAS or TE-NAS, enters as that rule's score) is measured by Kendall τ on the *selection*
benchmark; the best there is chosen; each candidate's τ on the *report* benchmark is printed beside it. Both
directions are run: chosen on NAS-Bench-Macro and reported on NB201 CIFAR-10, and the other way round. Writes
``OUT/README.md``, one compressed table of all candidates per direction and a scatter of τ on selection
against τ on report for every candidate.

    ZENBENCH_DATA=../shared/data .venv/bin/python scripts/ensemble_selection.py \\
        --nb201 reports/nb201/tables/cifar10.csv.xz --macro reports/macro/tables/cifar10.csv.xz \\
        --out reports/ensemble
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import proxies  # noqa: E402
from bench import benchmarks  # noqa: E402
from bench.selection import candidates, combination_scores, member_scores, selection_table  # noqa: E402
from bench.statistics import evaluate, rank_metrics  # noqa: E402
from bench.tables import table_scores  # noqa: E402

POOL = ("az_nas", "meco", "zico", "naswot", "synflow", "jacob_cov", "grad_norm", "snip", "fisher", "epe_nas",
        "plain", "zen", "flops", "params", "l2_norm")
"""The candidates' members: every built-in proxy at most about 0.6 s per NB201 architecture on one CPU thread
(SWAP, GraSP and TE-NAS, about 2 s, are left out for cost)."""


def member_frame(tables: list[str], benchmark: str, dataset: str) -> tuple[pd.DataFrame, pd.Series]:
    """Oriented scores (arch × proxy label, each after its own population rule) and the accuracy, from
    exported score tables: each pool member under its reference options (one column per proxy), on the
    architectures where every pool member present has a finite score (so every candidate is measured on
    the same architectures)."""
    rows, _ = table_scores(tables)
    reference = {name: proxies.get(name).option_hash() for name in set(rows["proxy"]) & set(POOL)}
    rows = rows[[reference.get(p) == h for p, h in zip(rows["proxy"], rows["option_hash"], strict=True)]]
    gt = benchmarks.get(benchmark).ground_truth(None)
    scores, truth = member_scores(evaluate(rows, gt, n_resamples=1).points, dataset)
    scored = scores[[m for m in POOL if m in scores.columns]].notna().all(axis=1)
    return scores[scored], truth[scored]


def with_interval(scores: pd.DataFrame, truth: pd.Series, members: list[str]) -> str:
    """τ and ρ of a combination with 95% bootstrap intervals (1,000 resamples, seed 0), as text."""
    combined = combination_scores(scores, members)
    keep = pd.notna(combined) & truth.notna().to_numpy()
    estimates = rank_metrics(combined[keep], truth.to_numpy(float)[keep], metrics=("kendall_tau", "spearman_rho"))
    tau, rho = estimates["kendall_tau"], estimates["spearman_rho"]
    return (f"τ {tau.value:.3f} [{tau.low:.3f}, {tau.high:.3f}], ρ {rho.value:.3f} [{rho.low:.3f}, {rho.high:.3f}] "
            f"(n={int(keep.sum())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nb201", required=True, action="append", help="NB201 CIFAR-10 score table (repeatable)")
    parser.add_argument("--macro", required=True, action="append", help="NAS-Bench-Macro CIFAR-10 score table "
                        "(repeatable)")
    parser.add_argument("--max-size", type=int, default=len(POOL), help="largest combination (default: all)")
    parser.add_argument("--out", required=True, help="report folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"NB201 C10": member_frame(args.nb201, "nb201", "cifar10"),
            "Macro C10": member_frame(args.macro, "macro", "cifar10")}
    pool = [m for m in POOL if all(m in scores.columns for scores, _ in data.values())]
    combos = candidates(pool, range(1, args.max_size + 1))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    command = " ".join(["scripts/ensemble_selection.py", *(f"--nb201 {x}" for x in args.nb201),
                        *(f"--macro {x}" for x in args.macro), f"--max-size {args.max_size}", f"--out {args.out}"])
    lines = ["# A rank ensemble chosen on one benchmark, reported on another", "",
             f"Regenerate with `ZENBENCH_DATA=../shared/data python {command}`.", "",
             f"Pool ({len(pool)}): {', '.join(pool)}. Candidates: every combination of 1 to {args.max_size} "
             f"members ({len(combos):,}), equal weights, Σ log(rank/N), each member with its reference options, every "
             "candidate of a benchmark on the same architectures: those where every pool member has a finite score "
             "(each member oriented higher-is-better, AZ-NAS after its own rank rule). "
             "The candidate with the best Kendall τ on the selection benchmark is *chosen*; its τ on the report "
             "benchmark is the honest figure. Every candidate's τ on both is in the tables and the figure, so a "
             "reader can judge the selection. Intervals: 95% bootstrap percentile, 1,000 resamples, seed 0.", ""]
    for axis, (select, report) in zip(axes, (("Macro C10", "NB201 C10"), ("NB201 C10", "Macro C10")), strict=True):
        table = selection_table(data[select], data[report], combos)
        slug = f"{select.split()[0].lower()}_to_{report.split()[0].lower()}"
        table.to_csv(out / f"candidates_{slug}.csv.gz", index=False, float_format="%.4f")
        chosen = table[table["chosen"]].iloc[0]
        best_report = table["tau_report"].max()
        axis.scatter(table["tau_selection"], table["tau_report"], s=4, alpha=0.3, color="0.4", label="candidate")
        singles = table[table["size"] == 1]
        axis.scatter(singles["tau_selection"], singles["tau_report"], s=18, color="tab:blue", label="one proxy")
        axis.scatter([chosen["tau_selection"]], [chosen["tau_report"]], s=80, marker="*", color="tab:red",
                     label=f"chosen: {chosen['members']}")
        axis.set(xlabel=f"Kendall τ on {select} (selection)", ylabel=f"Kendall τ on {report} (report)",
                 title=f"chosen on {select}, reported on {report}")
        axis.legend(fontsize=7, loc="lower right")
        top = table.sort_values("tau_selection", ascending=False).head(15)
        best_single = singles.sort_values("tau_selection", ascending=False).iloc[0]["members"]
        lines += [f"## Chosen on {select}, reported on {report}", "",
                  f"Chosen: **{chosen['members']}**, τ {chosen['tau_selection']:.3f} on {select} "
                  f"(n={chosen['n_selection']}), **τ {chosen['tau_report']:.3f} on {report}** "
                  f"(n={chosen['n_report']}), place {int(chosen['rank_on_report'])} of {len(table):,} there "
                  f"(the best candidate on {report}, known only after the fact: τ {best_report:.3f}).", "",
                  f"- chosen on {report}: {with_interval(*data[report], chosen['members'].split('+'))}",
                  f"- the best single proxy on {select} ({best_single}) on {report}: "
                  f"{with_interval(*data[report], [best_single])}", "",
                  f"All {len(table):,} candidates: `candidates_{slug}.csv.gz`. The 15 best on {select}:", "",
                  "| members | τ selection | τ report | place on report |", "|---|---|---|---|"]
        lines += [f"| {r.members} | {r.tau_selection:.3f} | {r.tau_report:.3f} | {int(r.rank_on_report)} |"
                  for r in top.itertuples()]
        lines += ["", "Single proxies:", "", "| proxy | τ selection | τ report |", "|---|---|---|"]
        lines += [f"| {r.members} | {r.tau_selection:.3f} | {r.tau_report:.3f} |"
                  for r in singles.sort_values("tau_selection", ascending=False).itertuples()]
        lines.append("")
        print(f"{select} -> {report}: chosen {chosen['members']} tau {chosen['tau_selection']:.3f} -> "
              f"{chosen['tau_report']:.3f} (best there {best_report:.3f})")
    figure.tight_layout()
    figure.savefig(out / "selection.png", dpi=130)
    lines += ["![every candidate: τ on the selection benchmark against τ on the report benchmark](selection.png)", ""]
    (out / "README.md").write_text("\n".join(lines))
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
