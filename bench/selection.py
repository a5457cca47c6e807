"""Choosing a rank ensemble on one benchmark and reporting it on another, with every candidate shown.

An ensemble of proxies is only honest if its members and weights are fixed before the ground truth of the
benchmark it is reported on is looked at. :func:`selection_table` makes that protocol explicit: every
candidate combination (a tuple of member labels, combined by a population rule of
:data:`bench.statistics.POPULATION_RULES`, equal weights) is measured on the *selection* benchmark, the best
by Kendall τ there is marked ``chosen``, and every candidate's τ on the *report* benchmark is printed beside it,
so a reader sees the whole field, not only the winner. Members are the labels of
:func:`bench.statistics.evaluate`'s ``points`` (each variant's oriented score after its own population rule),
so a member may itself be a rank combination (TE-NAS, AZ-NAS). This module names no benchmark and no proxy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.statistics import apply_population_rule, kendall_tau


def member_scores(points: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.Series]:
    """From ``Evaluation.points``: a frame (arch × label) of oriented scores of one dataset, and the accuracy
    per arch."""
    part = points[points["dataset"] == dataset]
    wide = part.pivot_table(index="arch", columns="label", values="oriented_score", aggfunc="first", dropna=False)
    truth = part.groupby("arch")["accuracy"].first().reindex(wide.index)
    return wide, truth


def combination_scores(scores: pd.DataFrame, members: Sequence[str], rule: str = "log_rank_sum") -> np.ndarray:
    """The population score of ``members`` (columns of ``scores``) under ``rule``, equal weights; −inf counts
    as a finite worst score (ranked last), NaN leaves the architecture out."""
    components = {m: scores[m].to_numpy(float) for m in members}
    return apply_population_rule({"rule": rule, "components": list(members)}, components)


def candidates(pool: Sequence[str], sizes: Sequence[int]) -> list[tuple[str, ...]]:
    """Every combination of ``pool`` with a size in ``sizes``, in a fixed order (by size, then pool order)."""
    return [c for k in sorted(set(sizes)) for c in itertools.combinations(pool, k)]


def _tau(scores: pd.DataFrame, truth: pd.Series, members: Sequence[str], rule: str) -> tuple[float, int]:
    combined = combination_scores(scores, members, rule)
    keep = np.isfinite(combined) & np.isfinite(truth.to_numpy(float))
    if keep.sum() < 2:
        return float("nan"), int(keep.sum())
    return kendall_tau(combined[keep], truth.to_numpy(float)[keep]), int(keep.sum())


def selection_table(select: tuple[pd.DataFrame, pd.Series], report: tuple[pd.DataFrame, pd.Series],
                    combos: Sequence[Sequence[str]], rule: str = "log_rank_sum") -> pd.DataFrame:
    """τ of every candidate on the selection and the report benchmark (``(scores, truth)`` pairs from
    :func:`member_scores`); ``chosen`` marks the best on the selection benchmark (first in order on a tie),
    ``rank_on_selection`` and ``rank_on_report`` place each candidate among all. Candidates need every member
    on both benchmarks (one-line error otherwise)."""
    for name, (scores, _) in (("selection", select), ("report", report)):
        missing = sorted({m for c in combos for m in c} - set(scores.columns))
        if missing:
            raise ValueError(f"{name} benchmark has no scores of member(s) {missing}; scored: "
                             f"{', '.join(map(str, scores.columns))}")
    records = []
    for combo in combos:
        tau_select, n_select = _tau(*select, combo, rule)
        tau_report, n_report = _tau(*report, combo, rule)
        records.append({"members": "+".join(combo), "size": len(combo), "tau_selection": tau_select,
                        "n_selection": n_select, "tau_report": tau_report, "n_report": n_report})
    table = pd.DataFrame(records)
    if table.empty:
        return table
    best = int(table["tau_selection"].fillna(-np.inf).to_numpy().argmax())
    table["chosen"] = np.arange(len(table)) == best
    table["rank_on_selection"] = table["tau_selection"].rank(ascending=False, method="min")
    table["rank_on_report"] = table["tau_report"].rank(ascending=False, method="min")
    return table
