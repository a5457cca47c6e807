"""The local worker pool (bench.executors.LocalPool) and ``run_benchmark(workers=N)``."""

from __future__ import annotations

import functools

import pandas as pd
import pytest
from _executor_probes import make_dies_on_three, make_square

from bench import benchmarks
from bench.cli import main
from bench.executors import LocalPool, RayPool, WorkerDied
from bench.runner import run_benchmark
from bench.store import ResultStore


def test_the_pool_returns_every_result_once():
    results = dict(LocalPool(functools.partial(make_square), 2, ["cpu"]).run(range(7)))
    assert results == {i: i * i for i in range(7)}


def test_a_killed_worker_loses_only_its_task_which_is_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENBENCH_TEST_MARKER", str(tmp_path / "died"))
    results = dict(LocalPool(make_dies_on_three, 2, ["cpu"]).run(range(6)))
    assert results == {i: i * i for i in range(6)}
    assert (tmp_path / "died").exists()  # the worker did die once


def test_a_task_that_kills_every_worker_is_given_up_after_one_retry(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENBENCH_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setenv("ZENBENCH_TEST_ALWAYS_DIE", "1")
    results = dict(LocalPool(make_dies_on_three, 2, ["cpu"]).run(range(6)))
    assert isinstance(results.pop(3), WorkerDied) and results == {i: i * i for i in (0, 1, 2, 4, 5)}


@pytest.fixture(scope="module")
def gt(nb201_csv):
    return benchmarks.get("nb201").ground_truth(nb201_csv)


def _values(path) -> pd.Series:
    with ResultStore(path, create=False) as store:
        return store.scores().set_index(["arch", "proxy"])["value"].sort_index()


def test_workers_store_what_one_process_computes_and_survive_a_killed_worker(tmp_path, gt, monkeypatch):
    options = dict(sample=6, seed=0, device="cpu", ground_truth=gt, progress=False, threads=1, data_source="noise")
    proxies = ["params", "naswot", "test_executor_killing"]
    run_benchmark(tmp_path / "one.db", proxies, **options)
    monkeypatch.setenv("ZENBENCH_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setenv("ZENBENCH_TEST_KILL_ARCH", gt.sample(6, 0)[2])
    summary = run_benchmark(tmp_path / "pool.db", proxies, workers=2, **options)
    assert (tmp_path / "died").exists() and not summary.failures and summary.n_computed == 18
    single, pooled = _values(tmp_path / "one.db"), _values(tmp_path / "pool.db")
    assert pooled.index.is_unique and pooled.index.equals(single.index)
    pd.testing.assert_series_equal(single, pooled)
    assert "--workers 2" in summary.command


def test_bad_workers_are_one_line(tmp_path, capsys):
    assert main(["bench", "--proxies", "params", "--sample", "2", "--workers", "0", "--store",
                 str(tmp_path / "s.db")]) == 2
    assert "--workers 0: expected a positive integer" in capsys.readouterr().err


def test_ray_on_a_local_loopback_cluster_survives_a_killed_worker(tmp_path, gt, monkeypatch):
    """The Ray executor on a real local cluster (127.0.0.1, no dashboard, two CPUs): a worker process killed
    mid-run is retried by Ray, every row is stored once, and the values equal a one-process run's."""
    import importlib.util

    if not _in_ci() and importlib.util.find_spec("ray") is None:  # CI installs the extra: there it must run
        pytest.skip("ray is not installed (pip install 'zenbench[ray]')")
    options = dict(sample=6, seed=0, device="cpu", ground_truth=gt, progress=False, threads=1, data_source="noise")
    proxies = ["params", "naswot", "test_executor_killing"]
    run_benchmark(tmp_path / "one.db", proxies, **options)
    monkeypatch.setenv("ZENBENCH_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setenv("ZENBENCH_TEST_KILL_ARCH", gt.sample(6, 0)[4])
    pools: list[RayPool] = []
    monkeypatch.setattr("bench.runner.RayPool", lambda *a, **k: pools.append(RayPool(*a, **k)) or pools[-1])
    summary = run_benchmark(tmp_path / "ray.db", proxies, executor="ray", workers=2, **options)
    assert pools[0].node_addresses == ["127.0.0.1"]  # the local cluster listens on loopback only
    assert (tmp_path / "died").exists() and not summary.failures and summary.n_computed == 18
    single, distributed = _values(tmp_path / "one.db"), _values(tmp_path / "ray.db")
    assert distributed.index.is_unique
    pd.testing.assert_series_equal(single, distributed)
    again = run_benchmark(tmp_path / "ray.db", proxies, executor="ray", workers=2, **options)
    assert (again.n_computed, again.n_already) == (0, 18)  # a rerun submits only what is missing: nothing


def _in_ci() -> bool:
    import os

    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
