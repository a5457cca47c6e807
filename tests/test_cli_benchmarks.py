"""Issue 9's finish line, command by command, on the shipped NAS-Bench-Macro and NAS-Bench-101 data:
``gt info``, ``score --json``, ``bench``, ``report`` and ``search`` with ``--benchmark macro|nb101``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_data

import bench.benchmarks as registry
from bench.cli import main
from bench.store import ResultStore

NB101_BEST = ("0000111.0000110.0000010.0000101.0000010.0000001.0000000|input,maxpool3x3,maxpool3x3,maxpool3x3,"
              "conv3x3-bn-relu,conv3x3-bn-relu,output")
CASES = {  # benchmark -> (data it needs, an architecture, what gt info must print)
    "macro": ("nasbench-macro", "22212220", ["6,561 architectures", "93.13 at 22212220", "3,969"]),
    "nb101": ("nb101", NB101_BEST, ["500 cells", "292", "94.71"]),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, str, list[str]]:
    data, arch, needles = CASES[request.param]
    require_data(data)
    return request.param, arch, needles


def test_gt_info_names_the_space_and_its_best_architecture(case: tuple, capsys: pytest.CaptureFixture) -> None:
    name, _, needles = case
    assert main(["gt", "info", "--benchmark", name]) == 0
    out = capsys.readouterr().out
    for needle in needles:
        assert needle in out, (needle, out)


def test_score_json_gives_the_benchmarks_own_parameter_count(case: tuple, capsys: pytest.CaptureFixture) -> None:
    name, arch, _ = case
    assert main(["score", "--benchmark", name, "--arch", arch, "--proxies", "params,zen", "--json",
                 "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = {s["proxy"]: s["value"] for s in result["scores"]}
    assert result["arch"] == arch and set(scores) == {"params", "zen"}
    published = registry.get(name).ground_truth().table.loc[arch, "params_cifar10_M"]
    assert scores["params"] == pytest.approx(published, abs=1e-6)
    assert scores["zen"] > 0


def test_bench_report_and_search_run_on_the_benchmark(case: tuple, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    name, _, _ = case
    store = tmp_path / f"{name}.db"
    assert main(["bench", "--benchmark", name, "--dataset", "cifar10", "--proxies", "params,synflow", "--sample",
                 "4", "--seed", "0", "--device", "cpu", "--store", str(store), "--no-progress"]) == 0
    with ResultStore(store, create=False) as results:
        rows = results.scores()
    assert len(rows) == 8 and set(rows["benchmark"]) == {name}
    title = registry.get(name).title
    assert main(["report", "--benchmark", name, "--store", str(store), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "README.md").read_text().startswith(f"# Zero-shot proxies on {title}")
    capsys.readouterr()
    assert main(["search", "--benchmark", name, "--proxy", "params", "--evaluations", "12", "--runs", "1",
                 "--population", "11", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{title} cifar10:") and "random search with params" in out
