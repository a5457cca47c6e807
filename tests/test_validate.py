"""``zenbench validate`` end to end at a tiny scale: search with two fitnesses, train one epoch on the CIFAR-10
subset, report; a rerun reads every stage back."""

from __future__ import annotations

import hashlib

import pandas as pd

from bench.cli import main
from bench.validation import random_fitness
from search.spaces.zennet import Structure


def test_random_search_draws_a_uniform_number_from_the_structure_and_seed():
    structure = Structure.parse("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperConvK1BNRELU(16,32,1,1)")
    expected = int.from_bytes(hashlib.sha256(f"7:{structure}".encode()).digest()[:8], "little") / 2**64
    assert random_fitness(7)(structure, 0) == expected
    assert random_fitness(8)(structure, 0) != expected and 0 <= expected < 1


def test_validate_runs_every_stage_resumes_and_reports(tmp_path, data_root, capsys):
    subset = data_root / "cifar10-subset" / "cifar-10-batches-py"
    argv = ["validate", "--proxies", "params,random", "--iterations", "30", "--population", "16", "--epochs", "1",
            "--seeds", "0", "--max-params", "0.12e6", "--data", str(subset), "--device", "cpu", "--threads", "1",
            "--batch-size", "128", "--no-autoaugment", "--out", str(tmp_path / "e2e"), "--no-progress"]
    assert main(argv) == 0
    summary = pd.read_csv(tmp_path / "e2e" / "summary.csv")
    assert list(summary["proxy"].sort_values()) == ["params", "random"]
    assert (summary["params_m"] <= 0.12).all() and summary["test_acc_mean"].between(0, 100).all()
    readme = (tmp_path / "e2e" / "README.md").read_text()
    assert "| random |" in readme and "93.5" in readme  # ZenNAS's random-search figure beside ours
    for figure in ("curves.png", "final_accuracy.png"):
        assert (tmp_path / "e2e" / figure).stat().st_size > 1000
    first = capsys.readouterr()
    assert "epoch 1/1" in first.out + first.err
    assert main(argv) == 0  # everything done: read back, nothing retrained
    again = capsys.readouterr()
    assert "epoch 1/1" not in again.out + again.err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "e2e" / "summary.csv").drop(columns=["search_seconds"]),
                                  summary.drop(columns=["search_seconds"]))
