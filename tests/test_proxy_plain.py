"""plain against the signed Σ W ⊙ ∂L/∂W worked out by hand (numpy), and the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest
from _saliency import OneLayer, TwoLayer, as_numpy, batch, factory, one_layer_grad, two_layer_pass

import proxies
import proxies.plain  # noqa: F401 - registers the proxy
from proxies.testing import check_proxy


def test_one_layer_is_the_signed_sum_by_hand() -> None:
    b = batch(6)
    w, grad = one_layer_grad(*as_numpy(b))
    terms = w * grad
    assert (terms > 0).any() and (terms < 0).any()  # so a stray abs() would show
    assert proxies.get("plain", batch_size=6).score(factory(OneLayer), b).value == pytest.approx(terms.sum(), rel=1e-5)


def test_two_layers_add_their_terms() -> None:
    """∂L/∂W = (∂L/∂a)ᵀ · input for each linear layer, from the chain rule in numpy."""
    b = batch(9, seed=3)
    x, labels = as_numpy(b)
    (w1, a1, d1), (w2, _, d2) = two_layer_pass(x, labels)
    expected = (w1 * (d1.T @ x)).sum() + (w2 * (d2.T @ np.maximum(a1, 0))).sum()
    assert proxies.get("plain", batch_size=9).score(factory(TwoLayer), b).value == pytest.approx(expected, rel=1e-5)


def test_split_data_sums_the_chunk_gradients() -> None:
    b = batch(6)
    x, labels = as_numpy(b)
    w, g1 = one_layer_grad(x[:3], labels[:3])
    _, g2 = one_layer_grad(x[3:], labels[3:])
    value = proxies.get("plain", batch_size=6, split_data=2).score(factory(OneLayer), b).value
    assert value == pytest.approx((w * (g1 + g2)).sum(), rel=1e-5)


def test_passes_the_conformance_kit() -> None:
    report = check_proxy("plain")
    assert proxies.get("plain").higher_is_better and report.components == {}


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'plain': option split_data=3: expected an integer in 1\.\.batch_size \(2\)"):
        proxies.get("plain", batch_size=2, split_data=3)
