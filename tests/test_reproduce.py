"""zenbench reproduce: protocol files checked strictly, measures by hand (|x| folding, seed rules, NaN policies,
nDCG scaling, verdicts), and a user's own protocol file run end to end against the NB201 ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import reproduce as rp
from bench.cli import main
from bench.statistics import Estimate

TINY = """
name = "tiny"
title = "a user's protocol"
citation = "test"
benchmark = "nb201"
datasets = ["cifar10"]
metrics = ["spearman_rho", "kendall_tau"]
absolute = true
init_seeds = [0]
paper_archs = 15625
default_sample = 6

[ground_truth]
cifar10 = "cifar10_valid"

[[proxies]]
proxy = "params"
published = { spearman_rho = { cifar10 = 0.70 } }

[[proxies]]
label = "zen log-delta"
proxy = "zen"
options = { batch_size = 4 }
component = "zen.log_delta"
"""


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_builtin_protocol_loads_with_real_proxies_and_metrics():
    names = rp.builtin_protocols()
    expected = {"abdelfattah2021", "nbsuitezero2022", "vkdnw2025", "freerea2023", "naswot2021", "zennas-nb201"}
    assert expected <= set(names)
    for name in names:
        protocol = rp.load_protocol(name)
        assert protocol.name == name and protocol.proxies and protocol.text.startswith("#")
        for entry in protocol.proxies:
            rp.protocol_proxy(protocol, entry)  # builds
            assert set(entry.published) <= set(protocol.metrics)


@pytest.mark.data
def test_builtin_ground_truth_keys_exist(nb201_csv):
    from bench.benchmarks import resolve

    gt = resolve("nb201").ground_truth(nb201_csv)
    for name in rp.builtin_protocols():
        protocol = rp.load_protocol(name)
        for dataset, key in protocol.ground_truth.items():
            assert gt.key(dataset, key) == key


@pytest.mark.parametrize("edit, fault", [
    (lambda t: t + "\nbogus = 1\n", "unknown key"),
    (lambda t: t.replace('"kendall_tau"]', '"kendal"]'), "unknown metric"),
    (lambda t: t.replace('datasets = ["cifar10"]', 'datasets = ["cifar11"]'), "not in nb201"),
    (lambda t: t.replace('proxy = "params"', 'proxy = "nope"'), "unknown proxy"),
    (lambda t: t.replace("batch_size = 4", "batch_size = 0"), "batch_size"),
    (lambda t: t.replace("published = { spearman_rho", "published = { pearson_r"), "published"),
    (lambda t: t.replace('cifar10 = "cifar10_valid"', 'cifar100 = "x"'), "ground_truth"),
    (lambda t: t.replace("init_seeds = [0]", "init_seeds = []"), "init_seeds"),
    (lambda t: t.replace("[[proxies]]\nlabel", "[[proxies]]\nnetwork = 'huge'\nlabel"), "network 'huge'"),
    (lambda t: t.replace("absolute = true", "absolute = "), "not valid TOML"),
])
def test_bad_protocol_files_give_one_line_errors_naming_file_and_fault(tmp_path, edit, fault):
    path = _write(tmp_path, edit(TINY))
    with pytest.raises(rp.ProtocolError, match=fault) as caught:
        rp.load_protocol(path)
    assert "mine.toml" in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_protocol_name_lists_the_builtins():
    with pytest.raises(rp.ProtocolError, match="abdelfattah2021"):
        rp.load_protocol("nosuchpaper")


def test_fold_absolute_and_verdicts_by_hand():
    assert rp.fold_absolute(Estimate(-0.5, -0.7, -0.3)) == Estimate(0.5, 0.3, 0.7)
    assert rp.fold_absolute(Estimate(0.1, -0.2, 0.4)) == Estimate(0.1, 0.0, 0.4)
    assert rp.fold_absolute(Estimate(0.3, 0.1, 0.5)) == Estimate(0.3, 0.1, 0.5)
    assert rp.verdict(0.45, Estimate(0.4, 0.3, 0.5)) == ("inside", 0.0)
    word, distance = rp.verdict(0.75, Estimate(0.6, 0.55, 0.65))
    assert word == "ours lower" and distance == pytest.approx(0.10)
    word, distance = rp.verdict(0.2, Estimate(0.6, 0.5, 0.7))
    assert word == "ours higher" and distance == pytest.approx(0.3)
    assert rp.verdict(None, Estimate(0.6, 0.5, 0.7))[0] == "no published figure"
    assert rp.scaled_metric("ndcg@5000", 1000, 15625) == "ndcg@320"
    assert rp.scaled_metric("ndcg@5000", 15625, 15625) == "ndcg@5000"
    assert rp.scaled_metric("kendall_tau", 10, 15625) == "kendall_tau"


def _scores(values: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"arch": f"a{i}", "seed": s, "score": v} for s, vs in values.items()
                         for i, v in enumerate(vs)])


def test_measure_seed_rules_and_nan_policies_by_hand():
    truth = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=[f"a{i}" for i in range(5)])
    seeds = {0: [1.0, 2.0, 4.0, 3.0, 5.0], 1: [2.0, 1.0, 3.0, 4.0, 5.0]}
    est, n, bad = rp.measure(_scores(seeds), truth, ["spearman_rho"], seed_rule="mean-score", nan_policy="exclude",
                             absolute=False, paper_archs=5, n_resamples=50)
    mean = np.mean([seeds[0], seeds[1]], axis=0)
    assert est["spearman_rho"].value == pytest.approx(stats.spearmanr(mean, truth).statistic) and (n, bad) == (5, 0)
    est, _, _ = rp.measure(_scores(seeds), truth, ["spearman_rho"], seed_rule="mean-metric", nan_policy="exclude",
                           absolute=False, paper_archs=5, n_resamples=50)
    by_seed = [stats.spearmanr(seeds[s], truth).statistic for s in (0, 1)]
    assert est["spearman_rho"].value == pytest.approx(np.mean(by_seed))
    assert est["spearman_rho"].low <= est["spearman_rho"].value <= est["spearman_rho"].high
    broken = {0: [1.0, 2.0, math.nan, 3.0, -math.inf]}
    est, n, bad = rp.measure(_scores(broken), truth, ["kendall_tau"], seed_rule="mean-score", nan_policy="exclude",
                             absolute=False, paper_archs=5, n_resamples=50)
    assert (n, bad) == (3, 2) and est["kendall_tau"].value == pytest.approx(stats.kendalltau([1, 2, 3], [1, 2, 4])[0])
    est, n, bad = rp.measure(_scores(broken), truth, ["kendall_tau"], seed_rule="mean-score", nan_policy="worst",
                             absolute=False, paper_archs=5, n_resamples=50)
    assert (n, bad) == (5, 2)
    assert est["kendall_tau"].value == pytest.approx(stats.kendalltau([1, 2, 0, 3, 0], truth).statistic)


@pytest.mark.data
def test_a_users_protocol_runs_end_to_end_against_the_ground_truth(tmp_path, data_root, nb201_csv):
    path = _write(tmp_path, TINY)
    out, work = tmp_path / "report", tmp_path / "work"
    code = main(["reproduce", str(path), "--out", str(out), "--work", str(work), "--device", "cpu",
                 "--resamples", "100", "--no-progress", "--data-root", str(data_root)])
    assert code == 0
    table = pd.read_csv(out / "verdicts.csv")
    assert set(table["proxy"]) == {"params", "zen log-delta"} and len(table) == 4
    # params' |rho| against cifar10_valid of the sampled architectures, by hand from the table
    gt = pd.read_csv(nb201_csv).set_index("arch_str")
    from bench.store import ResultStore

    with ResultStore(work / "paper.db", create=False) as store:
        rows = store.scores(dataset="cifar10")
    params = rows[rows["proxy"] == "params"].set_index("arch")["value"]
    assert len(params) == 6
    by_hand = abs(stats.spearmanr(params, gt.loc[params.index, "cifar10_valid"]).statistic)
    row = table[(table["proxy"] == "params") & (table["metric"] == "spearman_rho")].iloc[0]
    assert row["paper_value"] == pytest.approx(by_hand) and row["measured_as"] == "|spearman_rho|"
    default_hand = stats.spearmanr(params, gt.loc[params.index, "cifar10_test"]).statistic
    assert row["default_value"] == pytest.approx(default_hand)
    assert row["verdict"] in ("inside", "ours lower", "ours higher")
    # the component read-out: zen's log-delta, not its value
    zen = rows[rows["proxy"] == "zen"].set_index("arch")
    delta = zen["components"].map(lambda c: c["zen.log_delta"]).astype(float)
    delta = delta[np.isfinite(delta)]
    zen_row = table[(table["proxy"] == "zen log-delta") & (table["metric"] == "spearman_rho")].iloc[0]
    assert zen_row["paper_value"] == pytest.approx(
        abs(stats.spearmanr(delta, gt.loc[delta.index, "cifar10_valid"]).statistic))
    assert zen_row["n"] == len(delta) and zen_row["n_nonfinite"] == 6 - len(delta)
    readme = (out / "README.md").read_text()
    assert "a user's protocol" in readme and 'proxy = "params"' in readme and "\\|ρ\\|" in readme
    # rerun: nothing rescored, same table
    before = len(rows)
    assert main(["reproduce", str(path), "--out", str(out), "--work", str(work), "--device", "cpu",
                 "--resamples", "100", "--no-progress", "--data-root", str(data_root)]) == 0
    with ResultStore(work / "paper.db", create=False) as store:
        assert len(store.scores()) == before
    pd.testing.assert_frame_equal(pd.read_csv(out / "verdicts.csv"), table)


def test_an_interrupted_scoring_run_makes_no_report_and_exits_130(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import bench.runner

    monkeypatch.setattr(bench.runner, "run_benchmark", lambda *a, **k: SimpleNamespace(interrupted=True, failures=()))
    path, out = _write(tmp_path, TINY), tmp_path / "report"
    assert main(["reproduce", str(path), "--out", str(out), "--work", str(tmp_path / "work"), "--no-progress"]) == 130
    assert not out.exists()
