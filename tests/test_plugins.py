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


def _install_entry_points(where: Path, lines: dict[str, str]) -> None:
    dist_info = where / "zenbench_plugin_broken-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: zenbench-plugin-broken\nVersion: 0.1\n")
    body = "".join(f"{name} = {value}\n" for name, value in lines.items())
    (dist_info / "entry_points.txt").write_text(f"[zenbench.proxies]\n{body}")


def _write_module(where: Path, name: str, text: str) -> None:
    (where / f"{name}.py").write_text(text)


_BAD_MODULE = '''
from dataclasses import dataclass
from proxies import Proxy

@dataclass
class Nameless(Proxy):
    def compute(self, factory, batch, device):
        return 1.0

class NotAProxy:
    name = "not_a_proxy"
'''


def test_broken_entry_points_do_not_break_other_proxies(fresh_registry: None, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _write_module(tmp_path, "zb_raises_on_import", "raise RuntimeError('boom at import')\n")
    _write_module(tmp_path, "zb_bad_classes", _BAD_MODULE)
    _install_entry_points(tmp_path, {"import_fails": "zb_raises_on_import:X",
                                     "nameless": "zb_bad_classes:Nameless",
                                     "not_a_proxy": "zb_bad_classes:NotAProxy",
                                     "missing_attr": "zb_bad_classes:Nope"})
    monkeypatch.syspath_prepend(str(tmp_path))
    names = proxies.names()
    assert "synflow" in names and not {"import_fails", "nameless", "not_a_proxy", "missing_attr"} & set(names)
    broken = registry.broken_plugins()
    assert "boom at import" in broken["import_fails"]
    assert "non-empty class attribute 'name'" in broken["nameless"]
    assert "not a proxies.Proxy subclass" in broken["not_a_proxy"]
    assert "cannot be imported" in broken["missing_attr"]
    for name, reason in broken.items():
        assert "\n" not in reason
        with pytest.raises(proxies.UnknownProxyError, match=name):
            proxies.get(name)
    # A built-in still scores from the CLI; the broken plug-in named on the CLI is a one-line error.
    assert main(["score", "--arch", BEST, "--proxies", "params", "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    assert main(["score", "--arch", BEST, "--proxies", "import_fails", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "import_fails" in err[0] and "boom at import" in err[0]


def test_spec_of_a_nameless_class_is_a_clear_error(fresh_registry: None, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "zb_bad_spec", _BAD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(proxies.UnknownProxyError, match="non-empty class attribute 'name'"):
        proxies.get("zb_bad_spec:Nameless")


def test_spec_finds_a_module_in_the_current_directory(fresh_registry: None, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zb_cwd_proxy.py").write_text((REPO / "tests" / "_plugin_pkg" / "myproxy.py").read_text()
                                              .replace("plugin_l2_norm", "cwd_l2_norm"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    proxy = proxies.get("zb_cwd_proxy:MyProxy")
    assert proxy.name == "cwd_l2_norm"
