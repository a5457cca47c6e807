"""Rank metrics against hand-worked permutations and scipy; bootstrap, paired bootstrap, noise ceiling;
population rules applied from stored data, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import statistics as st


def test_kendall_hand_worked():
    assert st.kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert st.kendall_tau([4, 3, 2, 1], [1, 2, 3, 4]) == pytest.approx(-1.0)
    # One adjacent swap among 4: 6 pairs, 1 discordant -> (5 - 1) / 6.
    assert st.kendall_tau([1, 2, 4, 3], [1, 2, 3, 4]) == pytest.approx(2 / 3)


def test_spearman_hand_worked():
    # One adjacent swap among 4: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60.
    assert st.spearman_rho([1, 2, 4, 3], [1, 2, 3, 4]) == pytest.approx(0.8)
    assert st.spearman_rho([10, 20, 30, 40, 50], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties take average ranks: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3) -> r = 0.866...
    assert st.spearman_rho([7, 7, 9], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)


def test_top_k_precision_hand_worked():
    truth = np.arange(20.0)  # true top 10% (2 of 20): items 19 and 18
    score = truth.copy()
    score[[18, 5]] = score[[5, 18]]  # the proxy's top 2 are 19 and 5 -> one of two is right
    assert st.top_k_places(20, 10) == 2
    assert st.top_k_precision(score, truth, 10) == pytest.approx(0.5)
    assert st.top_k_precision(truth, truth, 5) == pytest.approx(1.0)
    assert st.top_k_precision(-truth, truth, 10) == pytest.approx(0.0)
    # All tied: each of 4 items holds 1/4 of the single top place -> expected precision 1/4.
    assert st.top_k_precision([1, 1, 1, 1], [1, 2, 3, 4], 25) == pytest.approx(0.25)
    # Two tied for the single place, one of them truly best -> 1/2.
    assert st.top_k_precision([9, 9, 1, 0], [4, 3, 2, 1], 25) == pytest.approx(0.5)


def test_top_kendall_within_true_top_ten_percent():
    truth = np.arange(30.0)  # true top 10% = items 27, 28, 29
    score = truth.copy()
    score[27:] = [100.0, 99.0, 98.0]  # the proxy puts them first but in reverse order
    assert st.kendall_tau(score, truth) > 0.9
    assert st.top_kendall_tau(score, truth, 10) == pytest.approx(-1.0)


def test_point_metrics_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    truth = np.round(rng.normal(size=400), 1)
    score = np.round(truth + rng.normal(size=400), 0)  # heavy ties, as #params has
    assert st.kendall_tau(score, truth) == pytest.approx(stats.kendalltau(score, truth).statistic, abs=1e-12)
    assert st.spearman_rho(score, truth) == pytest.approx(stats.spearmanr(score, truth).statistic, abs=1e-12)
    assert st.pearson_r(score, truth) == pytest.approx(stats.pearsonr(score, truth).statistic, abs=1e-12)


@pytest.mark.parametrize("n", [120, st._PAIRWISE_MAX + 100])  # tau from all pairs, and from scipy per resample
def test_bootstrap_draws_equal_metrics_on_explicit_resamples(n):
    rng = np.random.default_rng(1)
    truth = rng.normal(size=n)
    score = np.round(truth + rng.normal(size=n), 1)
    draws = st.bootstrap_distribution(score, truth, n_resamples=4, seed=7)
    resamples = next(st._resamples(n, 4, 7))
    for b, rows in enumerate(resamples):
        s, t = score[rows], truth[rows]
        assert draws["kendall_tau"][b] == pytest.approx(stats.kendalltau(s, t).statistic, abs=1e-12)
        assert draws["spearman_rho"][b] == pytest.approx(stats.spearmanr(s, t).statistic, abs=1e-12)
        assert draws["pearson_r"][b] == pytest.approx(stats.pearsonr(s, t).statistic, abs=1e-12)
        assert draws["top5_precision"][b] == pytest.approx(st.top_k_precision(s, t, 5), abs=1e-12)
        places = int(st.top_k_places(n, 10))
        best = t >= np.sort(t)[::-1][places - 1]  # the true top 10%, ties at the cut included
        assert draws["top10_kendall_tau"][b] == pytest.approx(stats.kendalltau(s[best], t[best]).statistic,
                                                              abs=1e-12)


def test_ndcg_hand_worked_linear_gain_log2_discount():
    # score order 3 > 2 > 1 puts gains 1, 2, 3 at places 1..3; the ideal order puts 3, 2, 1 there.
    score, truth = np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])
    dcg, ideal = 1 + 2 / math.log2(3) + 3 / 2, 3 + 2 / math.log2(3) + 1 / 2
    assert st.ndcg_at_k(score, truth, 3) == pytest.approx(dcg / ideal, abs=1e-12)
    assert st.ndcg_at_k(score, truth, 2) == pytest.approx((1 + 2 / math.log2(3)) / (3 + 2 / math.log2(3)), abs=1e-12)
    assert st.ndcg_at_k(score, truth, 10) == st.ndcg_at_k(score, truth, 3)  # k above n means n
    assert st.ndcg_at_k(truth, truth, 2) == pytest.approx(1.0)


def test_ndcg_ties_share_their_places_discounts():
    # the two tied top scores share places 1 and 2: mean gain (3 + 1) / 2 on discounts 1 + 1/log2(3)
    score, truth = np.array([1.0, 1.0, 0.0]), np.array([3.0, 1.0, 2.0])
    dcg = 2 * (1 + 1 / math.log2(3)) + 2 / 2
    assert st.ndcg_at_k(score, truth, 3) == pytest.approx(dcg / (3 + 2 / math.log2(3) + 1 / 2), abs=1e-12)
    # with k = 1 the tie splits the first place's discount: (3 + 1) / 2 of a gain of 3
    assert st.ndcg_at_k(score, truth, 1) == pytest.approx(2 / 3, abs=1e-12)


def test_ndcg_bootstrap_draws_equal_ndcg_on_explicit_resamples():
    rng = np.random.default_rng(3)
    truth = rng.uniform(10, 94, size=80)
    score = np.round(truth + rng.normal(scale=20, size=80), -1)  # many ties
    draws = st.bootstrap_distribution(score, truth, n_resamples=5, seed=2, metrics=["ndcg@20"])
    for b, rows in enumerate(next(st._resamples(80, 5, 2))):
        assert draws["ndcg@20"][b] == pytest.approx(st.ndcg_at_k(score[rows], truth[rows], 20), abs=1e-12)
    assert st.point_metrics(score, truth, ["ndcg@20"])["ndcg@20"] == st.ndcg_at_k(score, truth, 20)
    for bad in (["ndcg@0"], ["ndcg@ten"], ["ndcg"], ["tau"]):
        with pytest.raises(ValueError, match="unknown metric"):
            st.rank_metrics(score, truth, metrics=bad)


def test_rank_metrics_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=500)
    score = truth + rng.normal(size=500)
    first = st.rank_metrics(score, truth, n_resamples=200, seed=3)
    again = st.rank_metrics(score, truth, n_resamples=200, seed=3)
    other = st.rank_metrics(score, truth, n_resamples=200, seed=4)
    assert first == again
    assert first["kendall_tau"] != other["kendall_tau"]
    for metric in st.METRICS:
        est = first[metric]
        assert est.low <= est.high
    tau = first["kendall_tau"]
    assert tau.low < tau.value < tau.high
    assert tau.high - tau.low < 0.15  # n = 500: the standard error of tau is about 0.03


def test_invalid_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        st.rank_metrics([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one length"):
        st.point_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="unknown metric"):
        st.bootstrap_distribution([1.0, 2.0], [1.0, 2.0], metrics=["auc"])


def test_paired_bootstrap_prefers_the_better_proxy():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=400)
    good = truth + 0.3 * rng.normal(size=400)
    poor = truth + 2.0 * rng.normal(size=400)
    ab = st.paired_bootstrap(good, poor, truth, n_resamples=200, seed=0)
    ba = st.paired_bootstrap(poor, good, truth, n_resamples=200, seed=0)
    assert ab.a == pytest.approx(st.kendall_tau(good, truth))
    assert ab.difference.value == pytest.approx(ab.a - ab.b)
    assert ab.difference.low > 0 and ab.probability_a_better == 1.0
    assert ba.probability_a_better == pytest.approx(1 - ab.probability_a_better)
    same = st.paired_bootstrap(good, good, truth, n_resamples=50, seed=0)
    assert same.probability_a_better == 0.5 and same.difference.value == 0.0


def test_noise_ceiling_hand_worked():
    trials = pd.DataFrame({
        "index": [0, 0, 0, 1, 1, 2, 2, 3, 4, 4],
        "trial": [0, 1, 2, 0, 1, 0, 1, 0, 0, 1],
        "acc": [90.0, 80.0, 70.0, 60.0, 50.0, 70.0, 95.0, 99.0, 40.0, 41.0],
    })
    ceiling = st.noise_ceiling(trials, n_resamples=20).set_index("measure")
    # Arch 3 has one run and is left out. First runs (90, 60, 70, 40); second (80, 50, 95, 41): one
    # discordant pair of 6 -> tau 2/3. Others' means: (75, 50, 95, 41): same order as the second runs.
    assert ceiling.loc["trial0_vs_trial1", "n"] == 4
    assert ceiling.loc["trial0_vs_trial1", "kendall_tau"] == pytest.approx(2 / 3)
    assert ceiling.loc["trial0_vs_mean_of_others", "kendall_tau"] == pytest.approx(2 / 3)
    subset = st.noise_ceiling(trials, archs=[0, 1, 4], n_resamples=20).set_index("measure")
    # The GroundTruthTable layout (arch spec strings, an ``accuracy`` and a ``key`` column) gives the same.
    named = trials.assign(arch=trials["index"].map("a{}".format), key="k").rename(columns={"acc": "accuracy"})
    named = st.noise_ceiling(named.drop(columns="index"), archs=["a0", "a1", "a4"], n_resamples=20)
    assert named.set_index("measure").loc["trial0_vs_trial1", "kendall_tau"] == pytest.approx(1.0)
    assert subset.loc["trial0_vs_trial1", "kendall_tau"] == pytest.approx(1.0)


@pytest.mark.data
def test_noise_ceiling_on_nb201_exceeds_params(nb201_csv):
    """The trained accuracies of one run rank another far better than #params ranks them."""
    trials = pd.read_csv(nb201_csv.parent / "nb201_cifar10_trials.csv")
    table = pd.read_csv(nb201_csv, index_col="index")
    sample = np.random.default_rng(0).choice(table.index.to_numpy(), 1000, replace=False)
    ceiling = st.noise_ceiling(trials, sample, n_resamples=50).set_index("measure")
    params_tau = st.kendall_tau(table.loc[sample, "params_cifar10_M"], table.loc[sample, "cifar10_test"])
    assert 0.5 < params_tau < 0.7  # REFERENCE A.3: 0.578 over all archs
    assert ceiling.loc["trial0_vs_trial1", "kendall_tau"] > params_tau + 0.1
    assert ceiling.loc["trial0_vs_mean_of_others", "n"] > 700  # about 86% of archs have >= 2 runs


RANK_SUM = {"rule": "rank_sum", "components": ["a", "b"], "precision": None}


def test_rank_sum_by_hand_ties_averaged_nan_left_out():
    # a ranks (1, 3, 2), b ranks (2, 1, 3) -> sums 3, 4, 5
    a, b = np.array([-5.0, 2.0, 1.0]), np.array([20.0, 10.0, 30.0])
    np.testing.assert_array_equal(st.apply_population_rule(RANK_SUM, {"a": a, "b": b}), [3, 4, 5])
    # ties share the average rank: a ranks (1.5, 1.5, 3), b ranks (1, 2, 3); -inf ranks last
    tied = st.apply_population_rule(RANK_SUM, {"a": np.array([1.0, 1.0, 7.0]), "b": np.array([-np.inf, 0.0, 4.0])})
    np.testing.assert_array_equal(tied, [2.5, 3.5, 6.0])
    # NaN in a component: that architecture is NaN and the others are ranked among themselves
    out = st.apply_population_rule(RANK_SUM, {"a": np.array([3.0, np.nan, 1.0]), "b": np.array([1.0, 5.0, 2.0])})
    np.testing.assert_array_equal(out, [2 + 1, np.nan, 1 + 2])
    # precision: -1234 and -1231 round to -1230 at 3 significant digits and tie
    rounded = {"rule": "rank_sum", "components": ["a", "b"], "precision": 3}
    pair = {"a": np.array([-1234.0, -1231.0]), "b": np.array([1.0, 1.0])}
    np.testing.assert_array_equal(st.apply_population_rule(rounded, pair), [3.0, 3.0])
    np.testing.assert_array_equal(st.apply_population_rule(RANK_SUM, pair), [2.5, 3.5])
    np.testing.assert_array_equal(st.round_significant(np.array([123456.0, -0.0012345, 0.0, np.inf]), 2),
                                  [120000.0, -0.0012, 0.0, np.inf])


def test_log_rank_sum_by_hand():
    # N = 4; a ranks (4, 1, 2, 3), b ranks (2.5, 2.5, 1, 4) (tie averaged): sum of log(rank / 4)
    rule = {"rule": "log_rank_sum", "components": ["a", "b"], "precision": None}
    a, b = np.array([9.0, -1.0, 0.0, 3.0]), np.array([5.0, 5.0, 2.0, 8.0])
    expected = [math.log(4 / 4) + math.log(2.5 / 4), math.log(1 / 4) + math.log(2.5 / 4),
                math.log(2 / 4) + math.log(1 / 4), math.log(3 / 4) + math.log(4 / 4)]
    np.testing.assert_allclose(st.apply_population_rule(rule, {"a": a, "b": b}), expected, rtol=0, atol=1e-15)
    # the best architecture on every component scores log(1) = 0, the maximum
    assert st.apply_population_rule(rule, {"a": np.array([1.0, 2.0]), "b": np.array([1.0, 2.0])})[1] == 0.0


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="unknown population rule 'vote'"):
        st.apply_population_rule({"rule": "vote", "components": ["a"]}, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="needs component"):
        st.apply_population_rule(RANK_SUM, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        st.apply_population_rule(RANK_SUM, {"a": np.zeros(2), "b": np.zeros(3)})


def test_statistics_and_reports_import_no_proxy_code():
    root = Path(st.__file__).resolve().parents[1]
    for path in [root / "bench" / "statistics.py", *sorted((root / "reports").glob("*.py"))]:
        lines = [line.strip() for line in path.read_text().splitlines()]
        assert not [line for line in lines if line.startswith(("import proxies", "from proxies"))], path


def _rows(proxy: str, values, *, higher_is_better=True, components=None, rule=None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({
        "benchmark": "nb201", "network": "default", "dataset": "cifar10", "proxy": proxy, "option_hash": "h",
        "seed": 0, "arch": [f"a{i:03d}" for i in range(n)], "value": np.asarray(values, float),
        "components": components or [{} for _ in range(n)], "options": [{} for _ in range(n)],
        "proxy_class": "no_such_plugin.module:Proxy", "higher_is_better": higher_is_better,
        "population_rule": [rule] * n, "gt_key": "cifar10_test", "disconnected": False, "seconds": 0.01,
        "peak_memory_mb": 1.0,
    })


def _truth(values) -> pd.DataFrame:
    values = np.asarray(values, float)
    return pd.DataFrame({"cifar10_test": values}, index=pd.Index([f"a{i:03d}" for i in range(len(values))],
                                                                 name="arch"))


def test_evaluate_orients_excludes_nonfinite_and_applies_the_stored_rule():
    n = 40
    truth = _truth(np.arange(n))
    lower_better = _rows("lower", -np.arange(n, dtype=float), higher_is_better=False)
    with_nan = _rows("nan", np.where(np.arange(n) < 5, np.nan, np.arange(n, dtype=float)))
    # Components whose rank sum orders the archs exactly as the truth, while the raw values are reversed;
    # the class named with the rows does not exist: the rule is data, no proxy code is loaded.
    comps = [{"a": float(i), "b": float(2 * i)} for i in range(n)]
    combined = _rows("ranked", -np.arange(n, dtype=float), components=comps, rule=RANK_SUM)
    missing = _rows("missing", -np.arange(n, dtype=float), rule=RANK_SUM)  # a rule without its components
    rows = pd.concat([lower_better, with_nan, combined, missing], ignore_index=True)
    evaluation = st.evaluate(rows, truth, n_resamples=30)
    result = evaluation.table.set_index("label")
    assert result.loc["lower", "kendall_tau"] == pytest.approx(1.0)  # value -i, lower is better -> oriented +i
    assert result.loc["nan", "n"] == n - 5 and result.loc["nan", "n_nonfinite"] == 5
    assert result.loc["nan", "kendall_tau"] == pytest.approx(1.0)
    assert result.loc["ranked", "kendall_tau"] == pytest.approx(1.0)
    assert bool(result.loc["ranked", "combined"]) and not bool(result.loc["lower", "combined"])
    assert result.loc["missing", "kendall_tau"] == pytest.approx(-1.0)  # raw values used, and said so
    assert any(note.startswith("missing: population rule not applied") for note in evaluation.notes)
    worst = st.evaluate(with_nan, truth, nan_policy="worst", n_resamples=30).table.iloc[0]
    assert worst["n"] == n and worst["n_nonfinite"] == 5
    # The 5 NaN archs are the truly worst 5, so ranking them last, tied, keeps tau = 1 among the rest
    # but their mutual tie costs a little: 10 tied pairs out of 780.
    assert worst["kendall_tau"] == pytest.approx(770 / np.sqrt(780 * 770))


def test_evaluate_joins_on_spec_strings_in_table_order_with_trials_from_the_table():
    from bench.benchmarks.base import GroundTruthTable

    n = 30
    rng = np.random.default_rng(1)
    accuracy = rng.normal(size=n)
    table = _truth(accuracy).iloc[::-1]  # the table's order is not the strings' order
    trials = pd.DataFrame({"arch": np.repeat(table.index, 2), "trial": np.tile([0, 1], n),
                           "accuracy": np.repeat(table["cifar10_test"].to_numpy(), 2) + rng.normal(0, 0.1, 2 * n),
                           "key": "cifar10_test"})
    gt = GroundTruthTable(table, {"cifar10": "cifar10_test"}, "test", trials)
    rows = _rows("p", accuracy + rng.normal(0, 0.5, n)).sample(frac=1, random_state=0)  # rows in any order
    evaluation = st.evaluate(rows, gt, n_resamples=20)
    (tau,) = evaluation.table["kendall_tau"]
    assert tau == pytest.approx(st.kendall_tau(rows["value"], accuracy[[int(a[1:]) for a in rows["arch"]]]))
    assert list(evaluation.points["arch"]) == list(table.index)  # evaluated in the ground truth's order
    ceiling = evaluation.noise_ceiling.set_index("measure")
    assert set(ceiling["gt_key"]) == {"cifar10_test"} and ceiling.loc["trial0_vs_trial1", "n"] == n
    wide = trials.pivot(index="arch", columns="trial", values="accuracy")
    assert ceiling.loc["trial0_vs_trial1", "kendall_tau"] == pytest.approx(st.kendall_tau(wide[0], wide[1]))


def test_evaluate_paired_table_is_antisymmetric():
    n = 60
    rng = np.random.default_rng(0)
    truth = _truth(rng.normal(size=n))
    rows = pd.concat([_rows("good", truth["cifar10_test"].to_numpy() + 0.1 * rng.normal(size=n)),
                      _rows("poor", rng.normal(size=n))], ignore_index=True)
    paired = st.evaluate(rows, truth, n_resamples=40).paired.set_index(["a", "b"])
    ab, ba = paired.loc[("good", "poor")], paired.loc[("poor", "good")]
    assert ab["tau_difference"] == pytest.approx(-ba["tau_difference"])
    assert ab["probability_a_better"] == pytest.approx(1 - ba["probability_a_better"])
    assert ab["probability_a_better"] > 0.95


def test_rank_nonfinite_last_ties_them_below_every_finite_score() -> None:
    out = st.rank_nonfinite_last(np.array([2.0, np.nan, -np.inf, 1.0, np.inf]))
    np.testing.assert_array_equal(out, [2.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(st.rank_nonfinite_last(np.array([3.0, -1.0])), [3.0, -1.0])
    np.testing.assert_array_equal(st.rank_nonfinite_last(np.array([np.nan, np.nan])), [0.0, 0.0])


def test_variant_labels_name_the_options_that_tell_protocols_apart() -> None:
    as_built, no_reslink = {"network": "as-built", "repeat": 1}, {"network": "no-reslink", "repeat": 1}
    rows = pd.DataFrame({
        "dataset": ["cifar10"] * 5, "seed": [0] * 5, "network": ["default"] * 5,
        "proxy": ["zen", "zen", "zen", "synflow", "naswot"],
        "option_hash": ["aaaaaaaa1", "bbbbbbbb2", "aaaaaaaa1", "cccccc3", "dddddd4"],
        "options": [as_built, no_reslink, as_built, {}, {}],
    })
    assert list(st.variant_labels(rows)) == ["zen[network=as-built]", "zen[network=no-reslink]",
                                             "zen[network=as-built]", "synflow", "naswot"]
    # options that do not tell two hashes apart (e.g. a changed default): the hash prefix instead
    same = rows.assign(options=[as_built, dict(as_built), as_built, {}, {}])
    assert list(st.variant_labels(same))[:2] == ["zen@aaaaaa", "zen@bbbbbb"]
    assert st.option_differences([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 2}]) == ["[a=1,b=2]", "[a=1,b=3]",
                                                                                     "[a=2,b=None]"]
