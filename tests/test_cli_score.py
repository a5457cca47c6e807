"""``zenbench score``: one architecture, chosen proxies, a table or JSON; user errors exit 2 in one line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench import api
from bench.cli import main
from search.spaces.nb201 import nb201_flops, nb201_param_count

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["score", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_costs_as_json_match_the_closed_forms(capsys: pytest.CaptureFixture[str]) -> None:
    for dataset, classes, resolution in (("cifar10", 10, 32), ("imagenet16", 120, 16)):
        out = _json(capsys, "--arch", BEST, "--proxies", "params,flops", "--dataset", dataset, "--device", "cpu")
        values = {s["proxy"]: s["value"] for s in out["scores"]}
        assert values["params"] == pytest.approx(nb201_param_count(BEST, classes) / 1e6)
        assert values["flops"] == pytest.approx(nb201_flops(BEST, classes, resolution) / 1e6)
        assert (out["arch"], out["index"], out["dataset"], out["device"]) == (BEST, None, dataset, "cpu")


def test_index_resolves_through_the_ground_truth(capsys: pytest.CaptureFixture[str], nb201_csv) -> None:
    out = _json(capsys, "--arch", "0", "--proxies", "params", "--ground-truth", str(nb201_csv), "--device", "cpu")
    assert (out["arch"], out["index"]) == (INDEX0, 0)
    assert main(["score", "--arch", "15625", "--proxies", "params", "--ground-truth", str(nb201_csv)]) == 2
    assert "15625" in capsys.readouterr().err


def test_table_lists_value_seconds_memory_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--arch", BEST, "--proxies", "zen,synflow", "--batch-size", "4", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"arch: {BEST}"
    assert lines[2].split()[:4] == ["proxy", "value", "seconds", "peak"]
    zen_row, synflow_row = lines[3].split(), lines[4].split()
    assert zen_row[0] == "zen" and synflow_row[0] == "synflow"
    assert math.isfinite(float(zen_row[1])) and float(zen_row[2]) >= 0
    assert zen_row[-2].startswith("zen.log_delta=") and zen_row[-1].startswith("zen.bn_term=")


def test_image_proxies_get_a_recorded_batch(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "--arch", BEST, "--proxies", "naswot,grad_norm,synflow", "--batch-size", "8", "--data", "noise",
                "--seed", "3", "--device", "cpu")
    scores = {s["proxy"]: s for s in out["scores"]}
    assert scores["naswot"]["batch_source"] == "cifar10:noise:gaussian:seed=3"
    assert scores["naswot"]["options"] == {"batch_size": 8}
    assert scores["synflow"]["batch_source"] is None and scores["synflow"]["input_kind"] == "ones"
    again = _json(capsys, "--arch", BEST, "--proxies", "naswot,grad_norm,synflow", "--batch-size", "8", "--data",
                  "noise", "--seed", "3", "--device", "cpu")
    assert [s["value"] for s in again["scores"]] == [s["value"] for s in out["scores"]]


def test_real_images_from_the_data_root(data_root) -> None:
    result = api.score(BEST, ["naswot"], batch_size=16, device="cpu", data_root=data_root)
    (score,) = result.scores
    assert score.batch_source.startswith("cifar10:train:") and score.input_kind == "real"
    assert math.isfinite(score.value)


def test_default_device_is_cuda_when_available() -> None:
    result = api.score(BEST, ["params"])
    assert result.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_non_finite_values_stay_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--proxies", "synflow",
                "--device", "cpu")
    assert out["scores"][0]["value"] == "-inf"


def test_benchmark_and_network_are_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "--benchmark", "nb201", "--arch", BEST, "--proxies", "params", "--network", "naslib",
                "--device", "cpu")
    assert (out["benchmark"], out["network"], out["arch"]) == ("nb201", "naslib", BEST)
    # NASLib's NB201 has no affine BN in cells and reductions: fewer parameters than the trained network
    assert out["scores"][0]["value"] < nb201_param_count(BEST, 10) / 1e6


@pytest.mark.parametrize(("argv", "message"), [
    (["--arch", BEST, "--proxies", "zen,nosuchproxy"], "unknown proxy 'nosuchproxy'"),
    (["--arch", BEST, "--proxies", "params", "--network", "wide"], "unknown network 'wide' for NAS-Bench-201"),
    (["--arch", BEST, "--proxies", "params", "--dataset", "mnist"], "unknown dataset 'mnist' for NAS-Bench-201"),
    (["--arch", "|nor_conv_3x3~0|+|conv~0|", "--proxies", "params"], "malformed NB201 architecture string"),
    (["--arch", BEST, "--proxies", "zen", "--batch-size", "0"], "--batch-size"),
])
def test_user_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["score", *argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(("option", "expected"), [
    ("synflow.bn=maybe", "expected True or False"),
    ("zen.batch_size=abc", "expected an integer"),
    ("zen.batch_size=1.5", "expected an integer"),
    ("zen.bn_stat=nope", "expected 'running_var' or 'batch'"),
])
def test_proxy_options_of_the_wrong_type_are_one_line_errors(option: str, expected: str) -> None:
    from bench.cli_options import OptionError, make_proxies, parse_proxy_options

    with pytest.raises(OptionError, match=expected):
        make_proxies(["zen", "synflow"], parse_proxy_options([option]))


def test_proxy_options_of_the_declared_type_are_accepted() -> None:
    from bench.cli_options import make_proxies, parse_proxy_options

    made = make_proxies(["zen", "synflow"], parse_proxy_options(
        ["zen.bn_stat=batch", "zen.batch_size=16", "synflow.bn=True"]))
    assert [(p.name, p.options().get("bn_stat"), p.options().get("bn")) for p in made] == [
        ("zen", "batch", None), ("synflow", None, True)]
