"""``zenbench search``: ZenNet searches that write, resume and report; NB201 validation; one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from search.spaces.zennet import Structure

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
