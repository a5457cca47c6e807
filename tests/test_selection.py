"""Ensemble selection: every candidate measured on both benchmarks, the winner chosen on the selection one only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import selection as sel


def _bench(seed: int, n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.normal(size=n), index=[f"a{i}" for i in range(n)])
    scores = pd.DataFrame({"good": truth + rng.normal(scale=0.3, size=n), "noise": rng.normal(size=n),
                           "half": truth + rng.normal(scale=1.0, size=n)}, index=truth.index)
    return scores, truth


def test_candidates_in_fixed_order():
    assert sel.candidates(["a", "b", "c"], [2, 1]) == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c")]


def test_combination_is_the_log_rank_sum_by_hand():
    scores = pd.DataFrame({"x": [1.0, 2.0, 3.0, -np.inf], "y": [4.0, 3.0, 2.0, 1.0]})
    n = 4
    by_hand = np.log(stats.rankdata(scores["x"]) / n) + np.log(stats.rankdata(scores["y"]) / n)
    assert np.allclose(sel.combination_scores(scores, ["x", "y"]), by_hand)


def test_selection_marks_the_best_on_selection_and_reports_all():
    select, report = _bench(0), _bench(1)
    combos = sel.candidates(["good", "noise", "half"], [1, 2])
    table = sel.selection_table(select, report, combos)
    assert len(table) == len(combos) and table["chosen"].sum() == 1
    by_hand = [stats.kendalltau(sel.combination_scores(select[0], c), select[1]).statistic for c in combos]
    assert np.allclose(table["tau_selection"], by_hand)
    assert table.loc[table["chosen"], "members"].item() == "+".join(combos[int(np.argmax(by_hand))])
    report_hand = stats.kendalltau(sel.combination_scores(report[0], ["good"]), report[1]).statistic
    assert table.loc[table["members"] == "good", "tau_report"].item() == pytest.approx(report_hand)
    assert table.loc[table["members"] == "noise", "rank_on_selection"].item() == len(combos)


def test_a_member_missing_on_either_benchmark_is_named():
    select, report = _bench(0), _bench(1)
    with pytest.raises(ValueError, match=r"report benchmark has no scores of member\(s\) \['zen'\]"):
        sel.selection_table((select[0].assign(zen=1.0), select[1]), report, [("zen",)])
    with pytest.raises(ValueError, match=r"selection benchmark has no scores of member\(s\) \['zen'\]"):
        sel.selection_table(select, (report[0].assign(zen=1.0), report[1]), [("zen",)])
