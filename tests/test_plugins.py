"""A proxy outside zenbench (tests/_plugin_pkg) plugs in by entry point and by ``module:Class`` spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import proxies
from bench.cli import main
from proxies import NetworkFactory, registry
from proxies.mechanics import weight_layers
from proxies.testing import SmallNb201Factory, check_proxy
from search.spaces.nb201 import Nb201Factory

REPO = Path(__file__).resolve().parents[1]
SPEC = "tests._plugin_pkg.myproxy:MyProxy"
NAME = "plugin_l2_norm"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SMALL = SmallNb201Factory()


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository root importable (for ``tests._plugin_pkg``), entry points not yet scanned, and the
    registry restored afterwards."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _install_entry_point(where: Path) -> None:
    """What ``pip install`` of a plug-in distribution leaves on sys.path: a dist-info with entry points."""
    dist_info = where / "zenbench_plugin_demo-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: zenbench-plugin-demo\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[zenbench.proxies]\n{NAME} = {SPEC}\n")


def _expected_value(scale: float, factory: NetworkFactory = SMALL, seed: int = 0) -> float:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = factory()
    return scale * sum(float(m.weight.detach().norm()) for m in weight_layers(net))


def test_not_known_without_entry_point_or_spec(fresh_registry: None) -> None:
    assert NAME not in proxies.names()
    with pytest.raises(proxies.UnknownProxyError, match=NAME):
        proxies.get(NAME)


def test_entry_point_registers_the_proxy(fresh_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_entry_point(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert NAME in proxies.names()
    proxy = proxies.get(NAME, scale=2.0)
    assert proxy.score(SmallNb201Factory()).value == pytest.approx(_expected_value(2.0), rel=1e-6)
    check_proxy(NAME)


def test_spec_loads_the_proxy(fresh_registry: None) -> None:
    proxy = proxies.get(SPEC, scale=3.0)
    assert type(proxy).__module__ == "tests._plugin_pkg.myproxy"
    assert proxy.score(SmallNb201Factory()).value == pytest.approx(_expected_value(3.0), rel=1e-6)
    assert NAME in proxies.names()  # a loaded spec is registered under its name


@pytest.mark.parametrize(("spec", "message"), [
    ("tests._plugin_pkg.myproxy:Nope", "cannot import"),
    ("tests._plugin_pkg.nomodule:MyProxy", "cannot import"),
    ("json:JSONDecoder", "not a proxies.Proxy subclass"),
    ("tests._plugin_pkg.myproxy:", "expected 'package.module:ClassName'"),
])
def test_bad_specs_are_clear_errors(fresh_registry: None, spec: str, message: str) -> None:
    with pytest.raises(proxies.UnknownProxyError, match=message):
        proxies.get(spec)


def test_cli_accepts_specs_and_entry_point_names(fresh_registry: None, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--arch", BEST, "--proxies", f"params,{SPEC}", "--device", "cpu", "--json"]) == 0
    scores = {s["proxy"]: s for s in json.loads(capsys.readouterr().out)["scores"]}
    assert scores.keys() == {"params", NAME}
    assert scores[NAME]["value"] == pytest.approx(_expected_value(1.0, Nb201Factory(BEST)), rel=1e-6)

    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != NAME})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    _install_entry_point(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["score", "--arch", BEST, "--proxies", NAME, "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"][0]["proxy"] == NAME
