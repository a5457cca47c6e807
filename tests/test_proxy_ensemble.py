"""The ``ensemble`` proxy: members scored as alone, a nested weighted rank rule declared as data and applied by
the statistics (issue 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import proxies
from bench import benchmarks
from bench.cli_options import expand_proxies
from bench.runner import run_benchmark
from bench.statistics import apply_population_rule, population_scores, rule_components
from bench.store import ResultStore
from proxies.base import PopulationRule
from proxies.testing import SmallNb201Factory, synthetic_batch

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_nested_weighted_rule_by_hand():
    """log_rank_sum with weights (2, 1, 1) of a, b and the rank sum of (c, d):
    ranks a [1,2,3], b [3,1,2], c+d = [3,4,5] -> [1,2,3]; arch 0: 2·log(1/3) + log(3/3) + log(1/3) = 3·log(1/3)."""
    inner = PopulationRule("rank_sum", ("c", "d"))
    rule = PopulationRule("log_rank_sum", ("a", "b", inner), weights=(2, 1, 1)).to_dict()
    components = {"a": np.array([1.0, 2, 3]), "b": np.array([3.0, 1, 2]), "c": np.array([1.0, 3, 2]),
                  "d": np.array([2.0, 1, 3])}
    expected = [3 * math.log(1 / 3), 3 * math.log(2 / 3) + math.log(1 / 3), math.log(2 / 3)]
    np.testing.assert_allclose(apply_population_rule(rule, components), expected, rtol=1e-12)
    assert rule_components(rule) == ["a", "b", "c", "d"]
    components["d"] = np.array([2.0, np.nan, 3])  # a NaN inside the nested rule leaves the arch out
    out = apply_population_rule(rule, components)
    assert math.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()


def test_rules_without_weights_store_as_before_and_bad_weights_are_refused():
    assert PopulationRule("rank_sum", ("x", "y")).to_dict() == {"rule": "rank_sum", "components": ["x", "y"],
                                                               "precision": None}
    for weights in ((1,), (1, 0), (1, math.inf)):
        with pytest.raises(ValueError, match="one positive number per component"):
            PopulationRule("rank_sum", ("x", "y"), weights=weights)
    with pytest.raises(ValueError, match="2 weights for 3 components"):
        apply_population_rule({"rule": "rank_sum", "components": ["a", "b", "c"], "weights": [1, 1]},
                              {k: np.zeros(2) for k in "abc"})


def test_members_score_as_they_do_alone():
    factory = SmallNb201Factory(CELL)
    ensemble = proxies.get("ensemble", members="naswot,synflow,az_nas,meco,grad_norm")
    batch = synthetic_batch(factory, ensemble.batch_size, seed=1)
    result = ensemble.score(factory, batch, "cpu", seed=3)
    for member in ensemble.member_proxies:
        alone = member.score(factory, batch, "cpu", seed=3)
        assert result.components[f"ensemble.{member.name}"] == alone.value
        assert all(result.components[k] == v for k, v in alone.components.items())
    assert result.value == result.components["ensemble.naswot"]
    assert ensemble.needs == "images+labels" and ensemble.batch_size == 128  # naswot's 128, grad_norm's labels
    rule = ensemble.population_rule().to_dict()
    assert rule["components"][2] == proxies.get("az_nas").population_rule().to_dict()  # nested, as data


def test_bad_members_and_weights_are_one_line_errors():
    for options, fault in (({"members": "zen,nope"}, "unknown proxy 'nope'"), ({"members": "zen,zen"}, "once"),
                           ({"members": "ensemble"}, "not ensembles"), ({"weights": "1,2"}, "3 positive"),
                           ({"weights": "1,1,-1"}, "3 positive"), ({"weights": "1,1,x"}, "3 positive"),
                           ({"members": " , "}, "comma-separated")):
        with pytest.raises(ValueError, match=fault):
            proxies.get("ensemble", **options)


def test_all_leaves_the_ensemble_out():
    assert "ensemble" not in expand_proxies("all") and "zen" in expand_proxies("all")
    assert expand_proxies("all,ensemble")[-1] == "ensemble"


def test_bench_stores_the_rule_and_the_statistics_apply_it(tmp_path, nb201_csv):
    gt = benchmarks.get("nb201").ground_truth(nb201_csv)
    path = tmp_path / "ensemble.db"
    ensemble = proxies.get("ensemble", members="synflow,params,flops", weights="2,1,1", rule="rank_sum")
    run_benchmark(path, [ensemble], dataset="cifar10", sample=12, seed=0, device="cpu", ground_truth=gt,
                  data_source="noise", progress=False)
    with ResultStore(path) as store:
        rows = store.scores().reset_index(drop=True)
    combined, note = population_scores(rows)
    parts = {k: np.array([c[f"ensemble.{k}"] for c in rows["components"]]) for k in ("synflow", "params", "flops")}
    expected = 2 * stats.rankdata(parts["synflow"]) + stats.rankdata(parts["params"]) + stats.rankdata(parts["flops"])
    assert note is None and len(rows) == 12
    np.testing.assert_array_equal(combined, expected)
