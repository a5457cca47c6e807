"""The one Python API (bench.api): a benchmark cell, a custom model (module:callable, timm, a bare nn.Module),
a small benchmark read back as a DataFrame, a search; and the ``score`` options that reach it."""

from __future__ import annotations

import json
import math
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from torch import nn

from bench import api
from bench.cli import main
from proxies import ProxyError
from search.spaces.nb201 import nb201_param_count

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
TINYNET = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.head = nn.Linear(8, num_classes)

    def forward_pre_gap(self, x):
        return self.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.head(self.forward_pre_gap(x).mean((2, 3)))


def build(num_classes=10):
    return TinyNet(num_classes)
'''


def tiny_params(num_classes: int) -> int:
    """By hand: conv 3*8*9 + 8, BN 2*8, head 8*K + K."""
    return 3 * 8 * 9 + 8 + 2 * 8 + 8 * num_classes + num_classes


@pytest.fixture
def tinynet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tinynet.py").write_text(TINYNET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_score_an_nb201_cell() -> None:
    result = api.score(BEST, ["params"], device="cpu", threads=1)
    assert result.scores[0].value == pytest.approx(nb201_param_count(BEST, 10) / 1e6)
    assert (result.arch, result.benchmark, result.threads) == (BEST, "nb201", 1)


def test_score_a_custom_model_from_the_cli(tinynet, capsys) -> None:
    argv = ["score", "--model", "tinynet:build", "--input-shape", "3,16,16", "--num-classes", "7",
            "--proxies", "params,zen,naswot", "--proxy-option", "naswot.batch_size=4", "--device", "cpu", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    values = {s["proxy"]: s for s in out["scores"]}
    assert values["params"]["value"] == pytest.approx(tiny_params(7) / 1e6)  # num_classes reached the builder
    assert math.isfinite(values["zen"]["value"]) and math.isfinite(values["naswot"]["value"])
    assert values["naswot"]["batch_source"] == "gaussian:3x16x16:seed=0"
    assert (out["arch"], out["benchmark"]) == ("tinynet:build", api.MODEL_BENCHMARK)


def test_timm_not_importable_is_one_line(monkeypatch, capsys) -> None:
    """Here torchvision (and so timm) cannot import beside the CPU torch wheel; the error says so."""
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    assert main(["score", "--model", "timm:resnet18", "--proxies", "params", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timm is not importable" in err and "zenbench[timm]" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "tinynet:nosuch"], "cannot import"),
    (["--model", "tinynet"], "expected package.module:callable or timm:NAME"),
    (["--model", "tinynet:build", "--input-shape", "3,16"], "--input-shape '3,16'"),
    (["--model", "tinynet:torch"], "not a callable"),
])
def test_model_errors_are_one_line(tinynet, capsys, argv, message) -> None:
    assert main(["score", *argv, "--proxies", "params", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_bare_module_is_wrapped_with_fresh_inits() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = api.score(net, ["params", "synflow"], num_classes=5, device="cpu")
    assert result.scores[0].value == pytest.approx(sum(p.numel() for p in net.parameters()) / 1e6)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the user's module untouched
    other = api.score(net, ["synflow"], num_classes=5, device="cpu", seed=1)
    assert other.scores[0].value != result.scores[1].value  # each seed re-initialises the copy
    factory = api.as_factory(net, num_classes=5)
    torch.manual_seed(0)
    first = factory().state_dict()
    torch.manual_seed(0)
    assert all(torch.equal(first[k], v) for k, v in factory().state_dict().items())
    (failure,) = api.score(net, ["zen"], num_classes=5, device="cpu").failures  # not an AttributeError
    assert failure.error.startswith(f"{ProxyError.__name__}: ") and "no forward_pre_gap or forward_features" in \
        failure.error


def test_a_small_benchmark_as_a_dataframe(tmp_path, nb201_csv) -> None:
    store = tmp_path / "s.db"
    summary = api.run_benchmark(store, ["params"], sample=6, seed=0, device="cpu", ground_truth=nb201_csv,
                                progress=False)
    frame = api.scores_frame(store)
    assert len(frame) == summary.n_computed == 6 and set(frame["proxy"]) == {"params"}
    expected = {arch: nb201_param_count(arch, 10) / 1e6 for arch in frame["arch"]}
    assert frame.set_index("arch")["value"].to_dict() == pytest.approx(expected)
    assert api.scores_frame(store, "cifar100").empty


def test_search_matches_the_command(tmp_path, capsys) -> None:
    result = api.search("params", iterations=4, population=12, seed=0, device="cpu", progress=False)
    assert main(["search", "--proxy", "params", "--iterations", "4", "--population", "12", "--device", "cpu",
                 "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert (tmp_path / "s" / "best_structure.txt").read_text().strip() == result.best
    assert result.completed and result.iterations == 4


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"zenbench {version('zenbench')}\n"


def test_train_matches_the_command(tmp_path, capsys) -> None:
    """api.train and ``zenbench train`` are one code path: the same seed gives the same per-epoch log."""
    from test_train import MICRO, synthetic_set, write_cifar_pickles

    data = tmp_path / "cifar"
    write_cifar_pickles(data, synthetic_set(64, 3, num_classes=10), synthetic_set(32, 4, num_classes=10))
    result = api.train(MICRO, 1, batch_size=32, device="cpu", data_source=str(data), out=tmp_path / "api",
                       progress=False)
    assert main(["train", "--structure", MICRO, "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--data",
                 str(data), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("final test accuracy"))
    assert result.completed and line.startswith(f"final test accuracy: {result.log[-1].test_acc:.2f}%")
    assert (tmp_path / "api" / "checkpoint.pt").exists()
