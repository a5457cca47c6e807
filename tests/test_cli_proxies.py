"""``zenbench proxies`` / ``check-proxy``, and plug-in mistakes reaching the user as one line (issue 11, bug 3)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

import proxies
from bench.cli import main
from proxies import Proxy, ProxyError, registry
from proxies.testing import SmallNb201Factory

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
BADZC = '''
import torch
from dataclasses import dataclass
from proxies import Proxy


@dataclass
class ReturnsNone(Proxy):
    name = "badzc_none"

    def compute(self, factory, batch, device):
        return None


@dataclass
class ReturnsTensor(Proxy):
    name = "badzc_tensor"

    def compute(self, factory, batch, device):
        return torch.ones(3)


@dataclass
class ReturnsText(Proxy):
    name = "badzc_text"

    def compute(self, factory, batch, device):
        return "high"


@dataclass
class NoValue(Proxy):
    name = "badzc_novalue"

    def compute(self, factory, batch, device):
        return {"a": 1.0}


@dataclass
class Nondeterministic(Proxy):
    """Draws a number the seed does not fix (fails the kit's determinism check)."""

    name = "badzc_random"
    nan_policy = "never NaN"

    def compute(self, factory, batch, device):
        import random
        return random.random()
'''


@pytest.fixture
def badzc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``badzc`` module in the current directory (found as ``python -m`` would) and the registry restored."""
    (tmp_path / "badzc.py").write_text(BADZC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return tmp_path


@pytest.mark.parametrize(("spec", "expected"), [
    ("badzc:ReturnsNone", "returned the value as NoneType None"),
    ("badzc:ReturnsTensor", "as a Tensor of shape (3,)"),
    ("badzc:ReturnsText", "as str 'high'"),
    ("badzc:NoValue", "without the key 'value'"),
])
def test_a_bad_return_value_is_a_one_line_error_naming_the_proxy(badzc, capsys, spec, expected) -> None:
    proxy = proxies.get(spec)
    with pytest.raises(ProxyError, match="expected a number") as info:
        proxy.score(SmallNb201Factory())
    assert f"proxy {proxy.name!r}" in str(info.value) and expected in str(info.value)
    assert main(["score", "--arch", BEST, "--proxies", f"params,{spec}", "--device", "cpu"]) == 3  # some failed
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and proxy.name in captured.err and expected in captured.err
    assert captured.out.splitlines()[3].startswith("params ")  # the other proxy is scored and printed
    assert f"{proxy.name}  failed: ProxyError:" in captured.out


@pytest.mark.parametrize("value", [2.5, 3, np.float32(2.5), torch.tensor(2.5), torch.tensor([2.5]),
                                   {"value": torch.tensor(2.5), "part": np.int64(3)}])
def test_numbers_of_any_kind_are_accepted(value) -> None:
    class Fixed(Proxy):
        name = "fixed_for_test"

        def compute(self, factory, batch, device):
            return value

    result = Fixed().score(SmallNb201Factory())
    assert isinstance(result.value, float) and result.value in (2.5, 3.0)
    assert all(isinstance(v, float) for v in result.components.values())


def test_proxies_lists_every_registered_proxy(capsys) -> None:
    assert main(["proxies"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip() and not line.startswith(" ")}
    assert set(proxies.names()) <= listed
    zen_line = next(line for line in out.splitlines() if line.startswith("zen "))
    assert "nothing" in zen_line and "higher" in zen_line and "gaussian" in zen_line
    assert zen_line.endswith(inspect.getdoc(proxies.get_class("zen")).splitlines()[0])  # its docstring's first line
    synflow_line = next(line for line in out.splitlines() if line.startswith("synflow "))
    assert "ones" in synflow_line
    lines = out.splitlines()
    defaults = proxies.get("zen").options()
    assert lines[lines.index(zen_line) + 1] == "    options: " + ", ".join(f"{k}={v!r}" for k, v in defaults.items())


def test_proxies_lists_broken_plug_ins_with_their_reason(capsys, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_BROKEN", {"brokenzc": "plug-in entry point 'brokenzc' cannot be imported: x"})
    monkeypatch.setattr(registry, "_entry_points_loaded", True)
    assert main(["proxies"]) == 0
    out = capsys.readouterr().out
    assert "brokenzc" in out and "cannot be imported: x" in out


def test_proxies_name_describes_one(capsys) -> None:
    assert main(["proxies", "naswot"]) == 0
    out = capsys.readouterr().out
    cls = proxies.get_class("naswot")
    defaults = cls()
    assert out.splitlines()[0].startswith("naswot:")
    assert f"class: {cls.__module__}:{cls.__qualname__}" in out
    assert "needs: images" in out and "direction: higher is better" in out
    assert f"batch_size = {defaults.batch_size!r}" in out
    assert f"nan policy: {cls.nan_policy}" in out
    assert main(["proxies", "nosuch"]) == 2
    assert "unknown proxy 'nosuch'" in capsys.readouterr().err


def test_check_proxy_passes_a_good_proxy(capsys) -> None:
    assert main(["check-proxy", "params"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("pass") >= 5 and "params: all checks passed" in out


def test_check_proxy_fails_a_nondeterministic_proxy(badzc, capsys) -> None:
    assert main(["check-proxy", "badzc:Nondeterministic"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    declarations = next(line for line in lines if "declarations" in line)
    determinism = next(line for line in lines if "determinism" in line)
    assert "pass" in declarations and "FAIL" in determinism and "seed 0 gave" in determinism
    assert any("not run" in line for line in lines)


def test_check_proxy_of_a_class_that_cannot_load_is_one_line(badzc, capsys) -> None:
    assert main(["check-proxy", "badzc:Missing"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
