"""``zenbench search``: ZenNet searches that write, resume and report; NB201 validation; one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from search.spaces.zennet import Structure

TESTS = Path(__file__).resolve().parent
TINY_ZEN = ["--batch-size", "2", "--population", "11", "--no-progress"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_default_search_writes_and_resumes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code, stdout, _ = _run(capsys, "--iterations", "4", "--out", str(out), *TINY_ZEN)
    assert code == 0 and "cifar-params1M" in stdout and "best structure:" in stdout
    best = Structure.parse((out / "best_structure.txt").read_text())
    assert best.num_layers <= 18 and best[-1].type == "SuperConvK1BNRELU"
    assert len(pd.read_csv(out / "history.csv")) == 4
    code, stdout, _ = _run(capsys, "--iterations", "6", "--out", str(out), "--resume", *TINY_ZEN)
    assert code == 0 and "6 iterations" in stdout
    assert list(pd.read_csv(out / "history.csv").iteration) == list(range(6))


def test_mobilenet_preset_runs(tmp_path, capsys) -> None:
    code, stdout, _ = _run(capsys, "--preset", "imagenet-flops400M", "--resolution", "32", "--iterations", "2",
                           "--out", str(tmp_path / "m"), *TINY_ZEN)
    assert code == 0 and "mobilenet space" in stdout
    assert Structure.parse((tmp_path / "m" / "best_structure.txt").read_text())[-1].out_channels == 2048


@pytest.mark.parametrize(("argv", "message"), [
    (["--init", "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)"], "channel chain broken"),
    (["--init", "nonsense"], "neither a published ZenNet"),
    (["--preset", "imagenet-flops400M", "--space", "resnet"], "searches the mobilenet space"),
    (["--resume"], "nothing to resume"),
    (["--proxy", "nope"], "unknown proxy 'nope'"),
    (["--population", "10"], "must exceed the warm-up size"),
    (["--preset", "imagenet-flops400M", "--proxy", "naswot"], "needs images"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv: list[str], message: str) -> None:
    code, _, err = _run(capsys, "--out", str(tmp_path / "e"), "--iterations", "1", "--no-progress", *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_existing_search_needs_resume(tmp_path, capsys) -> None:
    out = str(tmp_path / "r")
    assert _run(capsys, "--iterations", "2", "--out", out, *TINY_ZEN)[0] == 0
    code, _, err = _run(capsys, "--iterations", "2", "--out", out, *TINY_ZEN)
    assert code == 2 and "add --resume" in err


def test_nb201_validation_with_ground_truth(nb201_csv, tmp_path, capsys) -> None:
    code, stdout, _ = _run(capsys, "--space", "nb201", "--proxy", "ground-truth", "--evaluations", "60", "--runs", "2",
                           "--ground-truth", str(nb201_csv), "--out", str(tmp_path), "--no-progress")
    assert code == 0
    assert "optimum of the space" in stdout and "94.37" in stdout and stdout.count("(this run)") == 2
    assert "NASWOT v1" in stdout and "TE-NAS" in stdout
    runs = pd.read_csv(tmp_path / "nb201_search_runs.csv")
    assert len(runs) == 4 and runs.accuracy.between(80, 94.38).all()


def test_nb201_validation_with_a_proxy(nb201_csv, capsys) -> None:
    code, stdout, _ = _run(capsys, "--space", "nb201", "--proxy", "params", "--evaluations", "12", "--runs", "1",
                           "--ground-truth", str(nb201_csv), "--device", "cpu", "--no-progress")
    assert code == 0 and "Zen-NAS EA with params (this run)" in stdout


def test_benchmark_flag_equals_the_space_alias(nb201_csv, tmp_path, capsys) -> None:
    argv = ["--proxy", "ground-truth", "--evaluations", "20", "--runs", "1", "--ground-truth", str(nb201_csv),
            "--no-progress"]
    code, by_space, _ = _run(capsys, "--space", "nb201", *argv)
    assert code == 0
    code, by_benchmark, _ = _run(capsys, "--benchmark", "nb201", "--out", str(tmp_path), *argv)
    assert code == 0 and by_benchmark.startswith(by_space.rstrip())  # plus the line naming the csv
    assert by_space.startswith("NAS-Bench-201 cifar10: cifar10_test accuracy (%) of the found architecture")
    code, _, err = _run(capsys, "--space", "resnet", "--benchmark", "nb201", *argv)
    assert code == 2 and "disagree" in err


def test_a_variant_the_benchmark_lacks_stops_the_search_in_one_line(nb201_csv, capsys) -> None:
    """Zen on the residual-free network needs a no-reslink variant; NB201 has none: every candidate would
    fail, so the search stops at once instead of scoring them all -inf."""
    code, _, err = _run(capsys, "--benchmark", "nb201", "--proxy", "zen", "--batch-size", "2", "--proxy-option",
                        "network=no-reslink", "--evaluations", "3", "--runs", "1", "--population", "11",
                        "--ground-truth", str(nb201_csv), "--device", "cpu", "--no-progress")
    assert code == 2 and "NAS-Bench-201 has no 'no-reslink' network" in err and err.count("\n") == 1


def test_no_candidate_within_budget_writes_no_best_and_says_so(tmp_path, capsys) -> None:
    """Issue 11 bug 5: the search claimed to have written best_structure.txt, which did not exist, and exited 0."""
    out = tmp_path / "s"
    code, stdout, _ = _run(capsys, "--iterations", "5", "--max-params", "10", "--out", str(out), *TINY_ZEN)
    assert code == 1 and not (out / "best_structure.txt").exists()
    assert "best_structure.txt not written: no candidate met the constraints" in stdout
    assert "best_structure.txt," not in stdout.replace("not written", "")


@pytest.mark.parametrize("space", ["resnet", "nb201"])
def test_population_zero_is_refused(tmp_path, capsys, nb201_csv, space) -> None:
    code, _, err = _run(capsys, "--space", space, "--population", "0", "--iterations", "1", "--evaluations", "2",
                        "--ground-truth", str(nb201_csv), "--out", str(tmp_path / "p"), "--no-progress")
    assert code == 2 and "--population 0" in err and err.count("\n") == 1


def _search_command(out: Path, nb201_csv: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "search", "--benchmark", "nb201", "--proxy",
            "test_runner:SlowWeightProbe", "--evaluations", "6", "--runs", "3", "--population", "11",
            "--device", "cpu", "--threads", "1", "--ground-truth", str(nb201_csv), "--out", str(out),
            "--no-progress", *extra]


def test_ctrl_c_stops_the_whole_benchmark_search_and_resume_finishes_it(tmp_path, nb201_csv) -> None:
    """Issue 11 bug 1: Ctrl-C stopped only the run in progress; the others carried on, the command exited 0
    with a truncated run in the mean, and --resume did nothing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "interrupted"
    csv = out / "nb201_search_runs.csv"
    process = subprocess.Popen(_search_command(out, nb201_csv), env={**env, "ZENBENCH_TEST_DELAY": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (csv.exists() and len(pd.read_csv(csv)) >= 2) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "(this run)" not in stdout  # no table mixing in a truncated run
    kept = pd.read_csv(csv)
    assert 2 <= len(kept) < 6 and (kept.evaluations == 6).all()  # finished runs only, each complete
    rerun = subprocess.run(_search_command(out, nb201_csv), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and "add --resume" in rerun.stderr
    resumed = subprocess.run(_search_command(out, nb201_csv, "--resume"), env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = subprocess.run(_search_command(tmp_path / "straight", nb201_csv), env=env, capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    columns = ["run", "seed", "method", "arch", "fitness", "accuracy", "evaluations", "unique_evaluations"]
    pd.testing.assert_frame_equal(pd.read_csv(csv)[columns],
                                  pd.read_csv(tmp_path / "straight" / "nb201_search_runs.csv")[columns])
    assert resumed.stdout.replace(str(out), "OUT") == straight.stdout.replace(str(tmp_path / "straight"), "OUT")


def test_nb101_ground_truth_search_finds_accuracies_through_the_graph_hash(capsys, data_root) -> None:
    """The NB101 EA's children are unpruned cell specs the table lacks; their accuracy is that of the
    isomorphic evaluated cell (before: NaN for every EA run)."""
    code, stdout, _ = _run(capsys, "--benchmark", "nb101", "--proxy", "ground-truth", "--evaluations", "30",
                           "--runs", "2", "--no-progress")
    assert code == 0, stdout
    line = next(row for row in stdout.splitlines() if row.startswith("Zen-NAS EA with ground-truth"))
    assert "no ground truth" not in line and "have no ground truth" not in stdout
