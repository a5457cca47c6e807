"""Options are checked once, in the base class, from their declared types and field-metadata bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest
import torch

import proxies
from proxies import Batch, NetworkFactory, Proxy
from proxies.options import FINITE, GE, GT, expected_value


@dataclass
class Declared(Proxy):
    """Options of every checked kind."""

    name: ClassVar[str] = "options_declared"
    nan_policy: ClassVar[str] = "always finite"

    flag: bool = False
    count: int = field(default=2, metadata={GE: 1})
    scale: float = field(default=1.0, metadata={GT: 0, FINITE: True})
    label: str = "a"
    mode: Literal["x", "y", "z"] = "x"
    limit: int | None = None
    low: int = 0
    high: int = 1

    def _check(self) -> None:
        if self.low > self.high:
            raise self._option_error("low", f"at most high ({self.high})")

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return 0.0


@pytest.mark.parametrize(("options", "message"), [
    ({"flag": 1}, "option flag=1: expected True or False"),
    ({"count": 0}, "option count=0: expected an integer >= 1"),
    ({"count": True}, "option count=True: expected an integer >= 1"),
    ({"count": 1.5}, "option count=1.5: expected an integer >= 1"),
    ({"scale": 0}, "option scale=0: expected a finite number > 0"),
    ({"scale": math.inf}, "option scale=inf: expected a finite number > 0"),
    ({"scale": "2"}, "option scale='2': expected a finite number > 0"),
    ({"label": 3}, "option label=3: expected a string"),
    ({"mode": "w"}, "option mode='w': expected 'x', 'y' or 'z'"),
    ({"limit": "4"}, "option limit='4': expected an integer or None"),
    ({"low": 2}, r"option low=2: expected at most high \(1\)"),
])
def test_a_bad_option_is_one_line_naming_proxy_option_value_and_expectation(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^proxy 'options_declared': {message}$"):
        Declared(**options)


def test_declared_values_are_accepted_as_they_are() -> None:
    proxy = Declared(flag=True, count=3, scale=2, label="b", mode="z", limit=5)
    assert (proxy.scale, type(proxy.scale)) == (2, int)  # an int for a float, not converted: hashes keep it


def test_bounds_apply_to_numbers_and_none_passes_them() -> None:
    assert expected_value(int | None, None, {GE: 1}) is None
    assert expected_value(int | None, 0, {GE: 1}) == "an integer >= 1 or None"
    assert expected_value(None, 0, {GE: 1}) == "a number >= 1"  # an annotation that did not resolve
    assert expected_value(list[int], [0], {GE: 1}) is None  # not a checked type
    assert expected_value(Literal[1, 2], True) == "1 or 2"


def test_builtin_options_declare_their_bounds() -> None:
    for name, options, message in [
        ("zen", {"batch_size": 0}, "proxy 'zen': option batch_size=0: expected an integer >= 1"),
        ("meco", {"resize": 0}, "proxy 'meco': option resize=0: expected an integer >= 1 or None"),
        ("jacob_cov", {"k": 0.0}, "proxy 'jacob_cov': option k=0.0: expected a number > 0"),
        ("tenas", {"lr_crop": 0}, "proxy 'tenas': option lr_crop=0: expected an integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=f"^{message}$"):
            proxies.get(name, **options)
