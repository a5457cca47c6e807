"""Scoring runs: resume after SIGKILL, shards merged equal one run, batch modes, Ctrl-C, bad input.

The proxies here are tiny test probes (a ``@register``-ed class in this module, reachable from a
subprocess as ``test_runner:Class``), so the machinery is tested independently of the real proxies.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import torch

import proxies
from bench import benchmarks
from bench.benchmarks.base import GroundTruthTable
from bench.cli import main
from bench.runner import RunConfigError, Shard, per_arch_batch_seed, run_benchmark
from bench.store import ResultStore, StoreError, merge_stores
from proxies import Batch, NetworkFactory, Proxy, Reference, UnknownProxyError, register
from reports.render import NO_END, render_report
from search.spaces.nb201 import Nb201Arch

TESTS = Path(__file__).resolve().parent


@register
@dataclass
class WeightProbe(Proxy):
    """Log of the summed |weights| of a small NB201 variant: data-free, seeded, cheap; NaN when the cell is
    disconnected (so the NaN path is exercised on exactly the flagged architectures)."""

    name: ClassVar[str] = "test_runner_weights"
    reference: ClassVar[Reference] = Reference(paper="zenbench's test probe", code="tests/test_runner.py",
                                               choices={"network": "NB201 variant, C=4, one cell per stage"})

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        if not factory.arch.is_connected:
            return {"value": math.nan, "probe.layers": 0.0}
        net = factory(channels=4, cells_per_stage=1)
        total = sum(float(p.detach().abs().sum()) for p in net.parameters())
        return {"value": math.log(total), "probe.layers": float(len(list(net.parameters())))}


@register
@dataclass
class SlowWeightProbe(WeightProbe):
    """:class:`WeightProbe` that sleeps 0.3 s per call where ``ZENBENCH_TEST_DELAY`` is set (the subprocess of
    the kill test, which needs time to kill mid-run); no option, so slow and fast runs share a protocol."""

    name: ClassVar[str] = "test_runner_slow_weights"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        if os.environ.get("ZENBENCH_TEST_DELAY"):
            time.sleep(0.3)
        return super().compute(factory, batch, device)


@register
@dataclass
class ImageProbe(Proxy):
    """Mean of the images it is given, plus the number it took."""

    name: ClassVar[str] = "test_runner_images"
    needs: ClassVar[str] = "images+labels"
    batch_size: int = 8

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        return {"value": float(batch.images.double().mean()), "probe.images": float(len(batch))}


@register
@dataclass
class InterruptingProbe(Proxy):
    """Raises KeyboardInterrupt (as Ctrl-C would) on call number ``after`` + 1 of the process."""

    name: ClassVar[str] = "test_runner_interrupt"
    after: int = 3
    calls: ClassVar[int] = 0

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        InterruptingProbe.calls += 1
        if InterruptingProbe.calls > self.after:
            raise KeyboardInterrupt
        return float(InterruptingProbe.calls)


@register
@dataclass
class FlakyProbe(Proxy):
    """Raises on the architectures whose spec string hashes odd, unless ``ZENBENCH_TEST_HEALED`` is set
    (a proxy bug that a later release fixes); otherwise the length of the spec string."""

    name: ClassVar[str] = "test_runner_flaky"
    scale: float = 1.0

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        spec = factory.arch.to_string()
        if sum(spec.encode()) % 2 and not os.environ.get("ZENBENCH_TEST_HEALED"):
            raise ValueError(f"cannot handle {spec}\nsecond line of the message")
        return self.scale * len(spec) + float(torch.rand(()))


PROBES = ["test_runner_weights", "test_runner_images"]
KEY = ["benchmark", "network", "arch", "dataset", "proxy", "option_hash", "seed"]


@pytest.fixture(scope="module")
def gt(nb201_csv) -> GroundTruthTable:
    return benchmarks.get("nb201").ground_truth(nb201_csv)


def _run(store, gt, **kwargs):
    options = dict(sample=6, seed=0, device="cpu", ground_truth=gt, data_source="noise", progress=False)
    options.update(kwargs)
    return run_benchmark(store, options.pop("proxies", PROBES), **options)


def _frame(path) -> pd.DataFrame:
    with ResultStore(path, create=False) as store:
        return store.scores().set_index(KEY).sort_index()


def test_rerun_computes_only_what_is_missing(tmp_path, gt):
    store = tmp_path / "s.db"
    first = _run(store, gt)
    assert (first.n_archs, first.n_tasks, first.n_computed, first.n_already) == (6, 12, 12, 0)
    assert not first.interrupted
    again = _run(store, gt)
    assert (again.n_computed, again.n_already) == (0, 12)
    larger = _run(store, gt, sample=8)  # the seeded sample of 8 extends the sample of 6
    assert (larger.n_computed, larger.n_already) == (4, 12)
    frame = _frame(store)
    assert len(frame) == 16 and not frame.index.duplicated().any()
    fresh = tmp_path / "fresh.db"
    _run(fresh, gt, sample=8)
    pd.testing.assert_series_equal(frame["value"], _frame(fresh)["value"])
    with ResultStore(store, create=False) as results:
        runs = results.runs()
    assert list(runs["status"]) == ["completed"] * 3 and list(runs["n_computed"]) == [12, 0, 4]
    assert runs["command"].iloc[2].startswith("zenbench bench --benchmark nb201 --dataset cifar10 --proxies "
                                              "test_runner_weights,test_runner_images --sample 8 --seed 0")
    assert set(frame.index.get_level_values("arch")) == set(gt.sample(8, 0))  # keyed by the spec strings


def test_rows_carry_protocol_and_flags(tmp_path, gt):
    store = tmp_path / "s.db"
    _run(store, gt, sample=8)
    frame = _frame(store).reset_index()
    assert (frame["arch"].map(lambda a: Nb201Arch.from_string(a).to_string()) == frame["arch"]).all()
    assert (frame["disconnected"] == frame["arch"].map(lambda a: not Nb201Arch.from_string(a).is_connected)).all()
    assert set(frame["benchmark"]) == {"nb201"} and set(frame["network"]) == {"default"}
    assert frame["population_rule"].isna().all()  # the probes declare none
    assert frame["disconnected"].any()  # the seed-0 sample of 8 holds one disconnected cell
    weights = frame[frame["proxy"] == "test_runner_weights"]
    assert (weights["nonfinite"] == weights["disconnected"]).all()
    assert weights.loc[~weights["nonfinite"], "value"].map(math.isfinite).all()
    assert set(weights["input_kind"]) == {"none"} and set(weights["batch_source"]) == {"none"}
    images = frame[frame["proxy"] == "test_runner_images"]
    assert set(images["input_kind"]) == {"real"} and set(images["batch_size"]) == {8}
    assert {c["probe.images"] for c in images["components"]} == {8.0}
    assert set(frame["gt_key"]) == {"cifar10_test"} and set(frame["device"]) == {"cpu"}
    assert set(frame["proxy_class"]) == {"test_runner:WeightProbe", "test_runner:ImageProbe"}
    assert set(frame["nan_policy"]) == {"keep-flag-exclude"}
    assert set(frame["torch_version"]) == {torch.__version__}


def test_shared_and_per_arch_batches(tmp_path, gt):
    shared = _frame(_run(tmp_path / "shared.db", gt, proxies=["test_runner_images"]).store).reset_index()
    assert shared["batch_source"].nunique() == 1 and "noise" in shared["batch_source"].iloc[0]
    assert set(shared["batch_mode"]) == {"shared"} and set(shared["batch_seed"]) == {0}
    assert shared["value"].nunique() == 1  # every architecture saw the same images
    per_arch = _frame(_run(tmp_path / "per.db", gt, proxies=["test_runner_images"],
                           batch_per_arch=True).store).reset_index()
    assert set(per_arch["batch_mode"]) == {"per-arch"} and per_arch["batch_source"].nunique() == 6
    assert list(per_arch["batch_seed"]) == [per_arch_batch_seed(0, a) for a in per_arch["arch"]]
    assert per_arch["value"].nunique() == 6
    with pytest.raises(StoreError, match="batch mode"):  # one store must not mix the two protocols
        _run(tmp_path / "shared.db", gt, proxies=["test_runner_images"], batch_per_arch=True)


@pytest.mark.data
def test_real_images_and_their_source_are_recorded(tmp_path, gt, data_root):
    frame = pd.concat([_frame(_run(tmp_path / "real.db", gt, proxies=["test_runner_images"], sample=2,
                                   dataset=dataset, data_source="auto", data_root=data_root).store).reset_index()
                       for dataset in ("cifar10", "cifar100")])
    sources = frame.groupby("dataset")["batch_source"].first()
    assert sources["cifar10"].startswith("cifar10:train:") and "cifar-10-batches-py" in sources["cifar10"]
    assert "cifar10-images" in sources["cifar100"]  # CIFAR-10 images stood in for CIFAR-100, and it says so
    assert set(frame["data_source"]) == {"auto"}


def test_batch_size_override_changes_the_protocol(tmp_path, gt):
    store = tmp_path / "s.db"
    _run(store, gt, sample=2)
    _run(store, gt, sample=2, batch_size=4)
    frame = _frame(store).reset_index()
    images = frame[frame["proxy"] == "test_runner_images"]
    assert images["option_hash"].nunique() == 2  # batch_size is an option of the image probe
    assert sorted({c["probe.images"] for c in images["components"]}) == [4.0, 8.0]
    assert frame[frame["proxy"] == "test_runner_weights"]["option_hash"].nunique() == 1  # it has no such option
    mixed = run_benchmark(tmp_path / "m.db", ["test_runner_images", ImageProbe(batch_size=16)], sample=1,
                          ground_truth=gt, data_source="noise", device="cpu", progress=False)
    assert mixed.n_computed == 2  # one batch of 16 loaded; the default probe took its first 8


def test_network_option_is_its_own_protocol(tmp_path, gt):
    store = tmp_path / "s.db"
    _run(store, gt, sample=3, proxies=["params"])
    naslib = _run(store, gt, sample=3, proxies=["params"], network="naslib")
    assert naslib.n_computed == 3 and "--network naslib" in naslib.command
    frame = _frame(store).reset_index()
    params = frame.pivot(index="arch", columns="network", values="value")
    # NASLib's NB201 has no BN affine parameters in its cells and reductions: fewer parameters, same order
    assert (params["naslib"] < params["default"]).all()
    with ResultStore(store, create=False) as results:
        assert [c["network"] for c in results.runs()["config"]] == ["default", "naslib"]


def test_a_converted_0_1_store_resumes_without_recomputing(tmp_path, gt):
    """The store 0.1 wrote for ``--proxies params,tenas --sample 6 --seed 0 --data noise``: after the
    conversion the same protocol finds every score (same spec strings, option hashes and sample). 0.1's tenas
    default was Kaiming init, now an option."""
    from _store_v1 import write_v1_store

    store = tmp_path / "v1.db"
    write_v1_store(store)
    kaiming_tenas = proxies.get("tenas", ntk_init="kaiming_fan_out", lr_init="kaiming_fan_in")
    again = _run(store, gt, proxies=["params", kaiming_tenas])
    assert (again.n_tasks, again.n_already, again.n_computed) == (12, 12, 0)


def test_shards_merge_to_the_unsharded_run(tmp_path, gt):
    whole = _run(tmp_path / "whole.db", gt, sample=7).store
    shards = [_run(tmp_path / f"shard{i}.db", gt, sample=7, shard=f"{i}/3") for i in range(3)]
    assert [s.n_archs for s in shards] == [3, 2, 2]
    merged = merge_stores([s.store for s in shards], tmp_path / "merged.db")
    assert merged.added == 14
    a, b = _frame(whole), _frame(tmp_path / "merged.db")
    assert a.index.equals(b.index)
    pd.testing.assert_series_equal(a["value"], b["value"])
    assert list(a["components"]) == list(b["components"])


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes(tmp_path, gt):
    store = tmp_path / "s.db"
    InterruptingProbe.calls = 0
    stopped = _run(store, gt, proxies=["test_runner_interrupt"])
    assert stopped.interrupted and stopped.n_computed == 3
    with ResultStore(store, create=False) as results:
        assert results.count() == 3 and results.runs()["status"].iloc[0] == "interrupted"
    InterruptingProbe.calls = -100
    finished = _run(store, gt, proxies=["test_runner_interrupt"])
    assert not finished.interrupted and (finished.n_computed, finished.n_already) == (3, 3)


def test_bad_input_is_refused(tmp_path, gt):
    with pytest.raises(UnknownProxyError, match="unknown proxy"):
        _run(tmp_path / "s.db", gt, proxies=["no_such_proxy"])
    with pytest.raises(RunConfigError, match="listed twice"):
        _run(tmp_path / "s.db", gt, proxies=["test_runner_weights", "test_runner_weights"])
    for text in ("8/8", "3", "a/b", "-1/4"):
        with pytest.raises(RunConfigError, match="shard"):
            Shard.parse(text)
    with pytest.raises(RunConfigError, match="dataset"):
        _run(tmp_path / "s.db", gt, dataset="mnist")
    with pytest.raises(RunConfigError, match="unknown benchmark 'nb999'"):
        _run(tmp_path / "s.db", gt, benchmark="nb999")
    with pytest.raises(RunConfigError, match="unknown network 'wide'"):
        _run(tmp_path / "s.db", gt, network="wide")
    with pytest.raises(RunConfigError, match="disagree"):
        _run(tmp_path / "s.db", gt, benchmark="macro", space="nb101")
    with pytest.raises(RunConfigError, match="batch-size"):
        _run(tmp_path / "s.db", gt, batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(RunConfigError, match="CUDA is not available"):
            _run(tmp_path / "s.db", gt, device="cuda")


@pytest.mark.parametrize("argv, message", [
    (["bench", "--proxies", "no_such_proxy", "--sample", "2", "--store", "{tmp}/s.db"], "unknown proxy"),
    (["bench", "--proxies", "test_runner:Nope", "--sample", "2", "--store", "{tmp}/s.db"], "cannot import"),
    (["bench", "--proxies", "test_runner_weights", "--sample", "2", "--store", "{tmp}/s.db", "--shard", "9/4"],
     "shard"),
    (["bench", "--proxies", "test_runner_weights", "--sample", "0", "--store", "{tmp}/s.db"], "--sample"),
    (["report", "--store", "{tmp}/missing.db", "--out", "{tmp}/r"], "does not exist"),
    (["merge", "{tmp}/missing.db", "--into", "{tmp}/all.db"], "does not exist"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, nb201_csv, argv, message):
    code = main([a.format(tmp=tmp_path) for a in argv] + (["--ground-truth", str(nb201_csv)]
                                                          if argv[0] in ("bench", "report") else []))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("zenbench: error:") and message in err and "\n" not in err


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()


def _slow_bench(store: Path, nb201_csv: Path, sample: int) -> tuple[list[str], dict[str, str]]:
    """A ``zenbench bench`` command line (0.3 s per architecture) and its environment."""
    command = [sys.executable, "-m", "bench.cli", "bench",
               "--proxies", "test_runner:SlowWeightProbe,test_runner_images", "--sample", str(sample), "--seed", "0",
               "--device", "cpu", "--data", "noise", "--no-progress",
               "--ground-truth", str(nb201_csv), "--store", str(store)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "ZENBENCH_TEST_DELAY": "1"}
    return command, env


def _start_and_signal(command: list[str], env: dict[str, str], store: Path, rows: int, sig: int):
    """Start the command, send ``sig`` once the store holds ``rows`` rows, wait for the process to end."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while _count(store) < rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, 1), (signal.SIGTERM, 2)], ids=["ctrl-c", "sigterm-pool"])
def test_ctrl_c_or_sigterm_in_the_command_exits_130_and_keeps_rows(tmp_path, nb201_csv, sig, workers):
    """SIGTERM (``kill``, a scheduler's pre-emption) stops a run as Ctrl-C does, with a worker pool too."""
    store = tmp_path / "interrupted.db"
    command, env = _slow_bench(store, nb201_csv, sample=40)
    code, err = _start_and_signal(command + ["--workers", str(workers)], env, store, 4, sig)
    assert code == 130, err[-2000:]
    assert "interrupted: rows so far are kept" in err
    with ResultStore(store, create=False) as results:
        runs = results.runs()
        assert list(runs["status"]) == ["interrupted"] and results.count() >= 4
        # The run's tally is the rows it stored (one fewer if Ctrl-C lands between a commit and the count).
        assert results.count() - 1 <= runs["n_computed"].iloc[0] <= results.count()


def test_sigkill_and_resume_loses_and_duplicates_nothing(tmp_path, nb201_csv, gt):
    """A ``zenbench bench`` process killed with SIGKILL mid-run, then rerun: exact rows, identical values."""
    store = tmp_path / "killed.db"
    command, env = _slow_bench(store, nb201_csv, sample=8)
    code, err = _start_and_signal(command, env, store, 4, signal.SIGKILL)
    killed_at = _count(store)
    assert code == -signal.SIGKILL, err[-2000:]
    assert 0 < killed_at < 16, f"the kill should land mid-run, found {killed_at} rows"
    with ResultStore(store, create=False) as results:
        runs = results.runs()
        assert list(runs["status"]) == ["running"]  # it never got to record its end,
        assert list(runs["n_computed"]) == [killed_at]  # so its tally is counted from the rows it stored
    readme = render_report(store, tmp_path / "report", ground_truth=gt, n_resamples=10).readme.read_text()
    assert f"| {NO_END} | {killed_at} | cpu |" in readme and f"`{NO_END}`: the run was still going" in readme
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{16 - killed_at} score(s) computed, {killed_at} already stored" in rerun.stderr
    killed = _frame(store)
    assert len(killed) == 16 and not killed.index.duplicated().any()
    uninterrupted = tmp_path / "whole.db"
    run_benchmark(uninterrupted, [SlowWeightProbe(), "test_runner_images"], sample=8, seed=0,
                  device="cpu", ground_truth=gt, data_source="noise", progress=False)
    whole = _frame(uninterrupted)
    pd.testing.assert_series_equal(killed["value"], whole["value"])
    assert list(killed["components"]) == list(whole["components"])



def test_a_failing_proxy_is_recorded_and_the_run_goes_on(tmp_path, gt, monkeypatch):
    """Issue 11 bug 2: one exception inside a proxy aborted the whole bench and kept no rows."""
    store = tmp_path / "s.db"
    summary = _run(store, gt, sample=8, proxies=["test_runner_flaky", "test_runner_weights"])
    specs = gt.sample(8, 0)
    odd = sorted(a for a in specs if sum(a.encode()) % 2)
    assert 0 < len(odd) < 8, "the sample should hold both kinds"
    assert sorted(arch for _, arch, _, _ in summary.failures) == odd
    assert sorted(summary.failures) == [("test_runner_flaky", a, 0, f"ValueError: cannot handle {a}") for a in odd]
    assert summary.n_computed == 16 - len(odd)  # every other score was computed and stored
    with ResultStore(store, create=False) as results:
        assert sorted(results.failures()["arch"]) == odd
        assert results.runs()["status"].iloc[0] == "completed with failures"
    monkeypatch.setenv("ZENBENCH_TEST_HEALED", "1")
    rerun = _run(store, gt, sample=8, proxies=["test_runner_flaky", "test_runner_weights"])
    assert (rerun.n_computed, rerun.failures) == (len(odd), ())  # only the failed ones were retried
    with ResultStore(store, create=False) as results:
        assert results.failures().empty and results.count() == 16


def test_the_command_names_each_failure_and_exits_3(tmp_path, capsys, nb201_csv):
    code = main(["bench", "--proxies", "test_runner:FlakyProbe", "--sample", "6", "--data", "noise", "--device",
                 "cpu", "--no-progress", "--store", str(tmp_path / "s.db"), "--ground-truth", str(nb201_csv)])
    err = capsys.readouterr().err
    assert code == 3, err
    failed = [line for line in err.splitlines() if line.startswith("  test_runner_flaky on ")]
    assert failed and all(": ValueError: cannot handle " in line for line in failed)
    assert f"{len(failed)} score(s) failed" in err


def test_init_seeds_are_apart_from_the_sample_seed(tmp_path, gt):
    store = tmp_path / "s.db"
    summary = _run(store, gt, sample=4, seed=7, init_seeds=[0, 1, 2], proxies=["test_runner_flaky"],
                   threads=1)
    assert summary.init_seeds == (0, 1, 2) and summary.n_tasks == 12
    frame = _frame(store).reset_index()
    ok = frame.groupby("arch")["seed"].apply(sorted).tolist()
    assert all(seeds == [0, 1, 2] for seeds in ok)
    assert set(frame["sample_seed"]) == {7} and set(frame["arch"]) <= set(gt.sample(4, 7))
    assert set(frame["threads"]) == {1} and frame["load_avg"].notna().all() and set(frame["device"]) == {"cpu"}
    by_seed = frame.pivot(index="arch", columns="seed", values="value")
    assert (by_seed[0] != by_seed[1]).all()  # the init seed reaches the proxy's RNG
    again = _run(tmp_path / "t.db", gt, sample=4, seed=7, init_seeds=[2], proxies=["test_runner_flaky"])
    assert again.n_computed == by_seed[2].notna().sum()
    assert _frame(tmp_path / "t.db").reset_index().set_index("arch")["value"].to_dict() == \
        by_seed[2].dropna().to_dict()
    with pytest.raises(RunConfigError, match="init seeds"):
        _run(store, gt, init_seeds=[-1])
    with pytest.raises(RunConfigError, match="threads"):
        _run(store, gt, threads=0)


def test_proxy_options_and_all_on_the_command_line(tmp_path, capsys, nb201_csv, monkeypatch):
    monkeypatch.setenv("ZENBENCH_TEST_HEALED", "1")
    store = tmp_path / "s.db"
    code = main(["bench", "--proxies", "test_runner:FlakyProbe", "--proxy-option", "test_runner:FlakyProbe.scale=2",
                 "--proxy-option", "test_runner:FlakyProbe.scale=3.5", "--sample", "3", "--data", "noise",
                 "--device", "cpu", "--no-progress", "--store", str(store), "--ground-truth", str(nb201_csv),
                 "--repeats", "2", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    frame = _frame(store).reset_index()
    assert sorted({o["scale"] for o in frame["options"]}) == [2, 3.5] and frame["option_hash"].nunique() == 2
    assert len(frame) == 3 * 2 * 2
    with ResultStore(store, create=False) as results:
        command = results.runs()["command"].iloc[0]
    assert "--proxy-option test_runner_flaky.scale=2 --proxy-option test_runner_flaky.scale=3.5" in command
    assert "--init-seeds 0,1" in command
    code = main(["bench", "--proxies", "all", "--sample", "1", "--data", "noise", "--device", "cpu",
                 "--no-progress", "--store", str(tmp_path / "all.db"), "--ground-truth", str(nb201_csv),
                 "--proxy-option", "nope.x=1"])
    err = capsys.readouterr().err
    assert code == 2 and "not among --proxies" in err
