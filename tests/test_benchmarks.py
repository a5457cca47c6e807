"""The benchmark interface: the registry (built-ins lazily, plug-ins by spec and entry point, one-line
errors), NAS-Bench-201 as a Benchmark, and a third-party benchmark through the whole generic layer
(runner, store, statistics, report, search) without a line of zenbench naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from bench import benchmarks
from bench.benchmarks.base import ArchSpecError, Benchmark, BenchmarkError, dedupe_class
from bench.cli import main
from bench.ground_truth import GroundTruth
from bench.runner import run_benchmark
from bench.store import ResultStore
from proxies.base import ProxyError, VariantUnavailable
from search.spaces.nb201 import Nb201Arch, Nb201Network, nb201_param_count

TOY = "_toy_benchmark:ToyBenchmark"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmarks, "_REGISTERED", dict(benchmarks._REGISTERED))
    monkeypatch.setattr(benchmarks, "_INSTANCES", dict(benchmarks._INSTANCES))
    monkeypatch.setattr(benchmarks, "BUILTIN", dict(benchmarks.BUILTIN))


# ----------------------------------------------------------------------------- registry


def test_builtins_are_listed_without_being_imported() -> None:
    code = ("import sys, bench.benchmarks as b; names = b.names(); "
            "print(names, [m for m in ('bench.benchmarks.nb201', 'bench.benchmarks.macro', 'bench.benchmarks.nb101', "
            "'proxies') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['macro', 'nb101', 'nb201'] []"


def test_a_broken_or_missing_module_breaks_only_itself(fresh_registry: None) -> None:
    benchmarks.BUILTIN["gone"] = "bench.benchmarks.no_such_module:Gone"
    benchmarks.BUILTIN["broken"] = "_toy_benchmark:NotThere"
    with pytest.raises(BenchmarkError) as error:
        benchmarks.get("gone")
    assert str(error.value).startswith("benchmark 'gone' (bench.benchmarks.no_such_module:Gone) cannot be loaded: "
                                       "ModuleNotFoundError")
    with pytest.raises(BenchmarkError, match="'broken'.*AttributeError"):
        benchmarks.get("broken")
    assert benchmarks.get("nb201").name == "nb201"  # the others still load
    assert "gone" in benchmarks.names() and "broken" in benchmarks.names()


def test_unknown_names_and_bad_specs_are_one_line_errors(fresh_registry: None) -> None:
    with pytest.raises(BenchmarkError) as error:
        benchmarks.get("nb999")
    assert str(error.value) == ("unknown benchmark 'nb999'; expected one of macro, nb101, nb201 or "
                                "'package.module:ClassName'")
    with pytest.raises(BenchmarkError, match="expected 'package.module:ClassName'"):
        benchmarks.get(":Nope")
    with pytest.raises(BenchmarkError, match=r"ToyNet\(\) failed: .*missing 2 required positional"):
        benchmarks.get("_toy_benchmark:ToyNet")  # its constructor needs arguments
    with pytest.raises(BenchmarkError, match="ToySpace lacks title, datasets, networks, parse, .*ground_truth"):
        benchmarks.get("_toy_benchmark:ToySpace")  # a class, but not a benchmark


def test_spec_register_and_entry_point(fresh_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy = benchmarks.get(TOY)
    assert isinstance(toy, Benchmark) and benchmarks.get(TOY) is toy  # one instance per process
    assert "toy" not in benchmarks.names()
    dist_info = tmp_path / "zenbench_toy-0.1.dist-info"  # what pip leaves for a plug-in distribution
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: zenbench-toy\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[zenbench.benchmarks]\ntoy = {TOY}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "toy" in benchmarks.names() and benchmarks.get("toy").title == "Toy-Bench"
    from _toy_benchmark import ToyBenchmark

    class Renamed(ToyBenchmark):
        name = "toy2"

    assert benchmarks.register(Renamed) is Renamed and benchmarks.get("toy2").name == "toy2"
    with pytest.raises(BenchmarkError, match="benchmark name 'toy2' is taken"):
        benchmarks.register(type("Other", (ToyBenchmark,), {"name": "toy2"}))


# ----------------------------------------------------------------------------- NAS-Bench-201


@pytest.fixture(scope="module")
def nb201(nb201_csv):
    bench = benchmarks.get("nb201")
    return bench, bench.ground_truth(nb201_csv), GroundTruth.load(nb201_csv)


def test_nb201_specs_isomorphism_and_degenerate_cells(nb201) -> None:
    bench, gt, legacy = nb201
    arch = bench.parse(BEST)
    assert bench.format(arch) == BEST and bench.parse("6111") == arch  # an index, through the ground truth
    assert bench.isomorphism_id(arch) == arch.canonical
    assert len({bench.isomorphism_id(bench.parse(s)) for s in gt.table.index}) == 6466  # NB201's own count
    degenerate = [bench.is_degenerate(bench.parse(s)) for s in gt.table.index]
    assert sum(degenerate) == int((~pd.Series([Nb201Arch.from_string(s).is_connected
                                               for s in legacy.table["arch_str"]])).sum())
    for bad, fault in (("|conv~0|", "malformed NB201"), ("99999", "not in"), (17, "expected an architecture")):
        with pytest.raises(ArchSpecError, match=fault) as error:
            bench.parse(bad)
        assert "\n" not in str(error.value)


def test_nb201_ground_truth_table_is_the_legacy_table_by_string(nb201) -> None:
    bench, gt, legacy = nb201
    assert len(gt) == 15625 and gt.table.index.name == "arch" and gt.table.index.is_unique
    assert list(gt.table.index) == list(legacy.table["arch_str"])  # NB201 index order
    for column in ("cifar10_test", "cifar100_valid", "hp12_imagenet16_test", "params_cifar10_M", "flops_cifar100_M"):
        np.testing.assert_array_equal(gt.table[column].to_numpy(), legacy.table[column].to_numpy())
    assert gt.default_keys == {"cifar10": "cifar10_test", "cifar100": "cifar100_test", "imagenet16": "imagenet16_test"}
    assert "params_cifar10_M" not in gt.accuracy_keys and "hp12_cifar10_valid" in gt.accuracy_keys
    assert gt.sample(50, 3) == [legacy.arch(i).to_string() for i in legacy.sample(50, 3)]  # the same sample
    trials, old = gt.trials, legacy.trials()
    assert len(trials) == len(old) == 36986 and set(trials["key"]) == {"cifar10_test"}
    assert list(trials["arch"]) == [legacy.arch(int(i)).to_string() for i in old["index"]]
    np.testing.assert_array_equal(trials["accuracy"], old["cifar10_test_v11"])


def test_nb201_networks_and_variants(nb201) -> None:
    bench, _, _ = nb201
    assert bench.networks == ("default", "naslib") and bench.datasets == ("cifar10", "cifar100", "imagenet16")
    arch = bench.parse(BEST)
    default, naslib = bench.factory(arch, "cifar100")(), bench.factory(arch, "cifar100", network="naslib")()
    assert sum(p.numel() for p in default.parameters()) == nb201_param_count(arch, 100)
    cell_bns = [m for m in naslib.cells[0].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    reduction_bns = [m for m in naslib.cells[5].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert cell_bns and all(not m.affine and not m.track_running_stats for m in cell_bns)
    assert reduction_bns and all(not m.affine and m.track_running_stats for m in reduction_bns)
    assert naslib.stem[1].affine and naslib.lastact[0].affine  # stem and final BN as NB201's
    # NASLib's net lacks exactly the BN γ and β of the 15 cells' convs and of the 2 reductions' two BNs
    n3, n1 = arch.count("nor_conv_3x3"), arch.count("nor_conv_1x1")
    missing = sum(5 * (n3 + n1) * 2 * c for c in (16, 32, 64)) + sum(2 * 2 * c for c in (32, 64))
    assert sum(p.numel() for p in default.parameters()) - sum(p.numel() for p in naslib.parameters()) == missing
    x = torch.randn(2, 3, 32, 32)
    assert naslib(x).shape == default(x).shape == (2, 100)
    with pytest.raises(BenchmarkError, match="no network 'tiny'"):
        bench.factory(arch, "cifar10", network="tiny")
    with pytest.raises(BenchmarkError, match="no dataset 'mnist'"):
        bench.factory(arch, "mnist")
    thin = bench.factory(arch, "cifar10", network="naslib")(variant="tenas-ntk")
    assert isinstance(thin, Nb201Network) and thin.network == "naslib" and thin.classifier.in_features == 12
    with pytest.raises(VariantUnavailable, match="unknown network variant 'wide'"):
        bench.factory(arch, "cifar10")(variant="wide")


# ----------------------------------------------------------------------------- a plug-in benchmark end to end


def test_a_plug_in_benchmark_runs_reports_and_searches(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "toy.db"
    summary = run_benchmark(store, ["params"], benchmark=TOY, sample=None, seed=0, device="cpu",
                            data_source="noise", progress=False)
    assert summary.n_archs == 16 and "--benchmark _toy_benchmark:ToyBenchmark" in summary.command
    with ResultStore(store, create=False) as results:
        rows = results.scores()
    assert set(rows["benchmark"]) == {TOY} and set(rows["arch"]) == set(benchmarks.get(TOY).ground_truth().table.index)
    assert rows.loc[rows["arch"] == "11", "disconnected"].all() and rows["disconnected"].sum() == 1
    # TE-NAS asks the factory for its thin networks by name; the toy benchmark has none: one line, no -inf
    with pytest.raises(ProxyError, match="Toy-Bench has no 'tenas-ntk' network") as error:
        run_benchmark(tmp_path / "tenas.db", ["tenas"], benchmark=TOY, sample=1, device="cpu", data_source="noise",
                      progress=False)
    assert "\n" not in str(error.value)

    from reports.render import render_report

    params = rows[rows["proxy"] == "params"].set_index("arch")
    result = render_report(store, tmp_path / "report", ground_truth=None, n_resamples=20)
    table = result.evaluation.table.set_index("proxy")
    truth = [50 + 10 * int(a[0]) + int(a[1]) for a in params.index]
    assert table.loc["params", "kendall_tau"] == pytest.approx(stats.kendalltau(params["value"], truth).statistic)
    readme = (tmp_path / "report" / "README.md").read_text()
    assert readme.startswith("# Zero-shot proxies on Toy-Bench: report")
    assert "_No published values" in readme  # published values belong to NB201
    # ... but the toy benchmark publishes per-architecture params with two values swapped
    swapped = params["value"].rename({"12": "44", "44": "12"}).reindex(params.index)
    agreement = pd.read_csv(tmp_path / "report" / "published_agreement.csv").set_index("label")
    assert agreement.loc["params", "n"] == 16
    assert agreement.loc["params", "spearman_rho"] == pytest.approx(stats.spearmanr(params["value"], swapped).statistic)
    assert agreement.loc["params", "spearman_rho"] < 1
    # beside it, each score's own τ against the same ground truth on the same architectures
    ours, theirs = agreement.loc["params", "our_kendall_tau"], agreement.loc["params", "published_kendall_tau"]
    assert ours == pytest.approx(stats.kendalltau(params["value"], truth).statistic)
    assert theirs == pytest.approx(stats.kendalltau(swapped, truth).statistic) and theirs != ours
    assert "### Per-architecture agreement with published scores" in readme and "Source: toy paper" in readme
    ceiling = result.evaluation.noise_ceiling.set_index("measure")
    assert ceiling.loc["trial0_vs_trial1", "kendall_tau"] == pytest.approx(1.0)  # trials ±0.5 keep the order
    assert main(["search", "--benchmark", TOY, "--proxy", "ground-truth", "--evaluations", "8", "--runs", "2",
                 "--population", "11", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Toy-Bench cifar10: cifar10_test accuracy (%)")
    optimum = next(line for line in out.splitlines() if line.startswith("optimum of the space"))
    assert optimum.split()[-3:] == ["94.00", "ground", "truth"]  # 50 + 10·4 + 4


# ----------------------------------------------------------------------------- what isomorphic architectures share


@pytest.mark.parametrize("name, data, kind", [("nb201", "nb201", "functional"),
                                              ("macro", "nasbench-macro", "identical"),
                                              ("nb101", "nb101", "identical")])
def test_declared_isomorphism_matches_the_benchmarks_own_parameter_counts(name: str, data: str, kind: str) -> None:
    """``identical`` promises that the members of a --dedupe class build one network: their published parameter
    counts agree. NB201's classes merge cells that differ in dead edges, whose convolutions the benchmark counts;
    NB101's graph hash merges cells that split their channels differently, so its dedupe classes are finer."""
    from conftest import require_data

    require_data(data)
    bench = benchmarks.get(name)
    assert bench.isomorphism == kind
    table = bench.ground_truth().table
    classes = pd.Series([dedupe_class(bench, bench.parse(a)) for a in table.index], index=table.index)
    spread = table["params_cifar10_M"].groupby(classes).agg(lambda v: v.max() - v.min())
    assert (classes.value_counts() > 1).sum() > 40  # classes with several members exist
    if kind == "identical":
        assert spread.max() == 0
    else:
        assert (spread > 0).sum() > 100
    hashes = {bench.isomorphism_id(bench.parse(a)) for a in table.index}
    assert len(set(classes)) - len(hashes) == {"nb201": 0, "macro": 0, "nb101": 3}[name]
