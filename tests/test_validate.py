"""``zenbench validate`` end to end at a tiny scale: search with two fitnesses, train one epoch on the CIFAR-10
subset, report; a rerun reads every stage back."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from bench.cli import main
from bench.cli_options import OptionError
from bench.validation import ZENNAS_OPTIONS, ValidationSetup, random_fitness, with_options
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


def _tiny_argv(tmp_path, data_root, proxies: str, *extra: str) -> list[str]:
    subset = data_root / "cifar10-subset" / "cifar-10-batches-py"
    return ["validate", "--proxies", proxies, "--iterations", "12", "--population", "16", "--epochs", "1",
            "--seeds", "0", "--max-params", "0.12e6", "--data", str(subset), "--device", "cpu", "--threads", "1",
            "--out", str(tmp_path / "e2e"), "--no-progress", *extra]


def test_tenas_fitness_is_zennas_port_and_options_replace_the_defaults():
    tenas = ValidationSetup(proxies=("tenas",)).fitness_proxy("tenas")
    assert (tenas.network, tenas.parts, tenas.batch_size) == ("full", "ntk", 64)  # compute_te_nas_score
    words = with_options(ZENNAS_OPTIONS, ["tenas.parts=ntk+lr"])
    assert "tenas.parts=ntk" not in words and "tenas.network=full" in words
    assert ValidationSetup(proxies=("tenas",), proxy_options=words).fitness_proxy("tenas").parts == "ntk+lr"
    with pytest.raises(OptionError, match="tenas.nope"):
        ValidationSetup(proxies=("tenas",), proxy_options=("tenas.nope=1",))


def test_tenas_thin_network_in_the_zennet_space_stops_the_search_in_one_line(tmp_path, data_root, capsys):
    """TE-NAS's thin networks exist for NB201 only: asking for one on a ZenNet is an error, not a -inf score
    for every candidate (the bug that made the first issue-14 study keep its initial structure)."""
    argv = _tiny_argv(tmp_path, data_root, "tenas", "--proxy-option", "tenas.network=thin")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the Zen-NAS space has no 'tenas-ntk' network" in err and "tenas.network=full" in err
    assert len(err.strip().splitlines()) == 1


PLUGIN = '''
import math
from dataclasses import dataclass
from proxies import Proxy


@dataclass
class AlwaysNaN(Proxy):
    name = "always_nan"

    def compute(self, factory, batch, device):
        return math.nan
'''


def test_a_search_that_scores_no_candidate_finite_stops_in_one_line(tmp_path, data_root, capsys, monkeypatch):
    (tmp_path / "nanproxy.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(_tiny_argv(tmp_path, data_root, "nanproxy:AlwaysNaN")) == 2
    err = capsys.readouterr().err
    assert "scored no candidate finite in 12 iterations" in err
    assert not (tmp_path / "e2e" / "train").exists()  # nothing trained on the initial structure
