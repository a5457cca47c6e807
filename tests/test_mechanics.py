"""per_sample_grads against per-sample autograd loops, and the NTK of a linear model by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from proxies import per_sample_grads as engine
from proxies.mechanics import build, reinit
from proxies.per_sample_grads import per_sample_grads
from proxies.tenas import ntk_gram
from search.spaces.nb201 import Nb201Network

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def loop_rows(net: nn.Module, x: Tensor, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """The reference: one batched forward, then autograd.grad of each sample's summed logits."""
    out = net(x)
    rows: dict[str, list[Tensor]] = {k: [] for k in params}
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(out[i].sum(), list(params.values()), retain_graph=True, allow_unused=True)
        for k, g in zip(params, grads, strict=True):
            rows[k].append(torch.zeros_like(params[k]) if g is None else g)
    return {k: torch.stack(v) for k, v in rows.items()}


def assert_rows_equal(fast: dict[str, Tensor], slow: dict[str, Tensor]) -> None:
    assert fast.keys() == slow.keys()
    for k in slow:
        assert fast[k].shape == slow[k].shape, k
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-9, atol=1e-11, msg=k)


def test_per_sample_grads_equal_the_loop_on_an_nb201_net_with_train_mode_bn() -> None:
    torch.manual_seed(0)
    net = reinit(Nb201Network(BEST_CELL, channels=3, cells_per_stage=1), "kaiming_fan_out").double().train()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    params = dict(net.named_parameters())  # weights and biases: conv, BN γ and β, linear
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    fast = per_sample_grads(net, x, params)
    assert all(torch.equal(v, buffers[k]) for k, v in net.named_buffers())  # running stats untouched
    slow = loop_rows(net, x, params)
    assert_rows_equal(fast, slow)
    # BN couples the samples: row 0's gradient of the stem conv is not sample 0's gradient alone
    alone = torch.autograd.grad(net(x[:1]).sum(), net.stem[0].weight)[0]
    assert not torch.allclose(fast["stem.0.weight"][0], alone, rtol=1e-3)


class Mixed(nn.Module):
    """Strided, dilated, grouped and biased convs, a strided 1x1 conv (stride 2x3 on 5x5 positions),
    train- and eval-mode BN, GroupNorm (no fast path), a BN without affine parameters, average pools with
    and without padding, and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
        self.bn_a = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
        self.bn_b = nn.BatchNorm2d(4).eval()
        self.c = nn.Conv2d(4, 6, 2, stride=2, padding=0, bias=False)
        self.gn = nn.GroupNorm(2, 6)
        self.bn_plain = nn.BatchNorm2d(6, affine=False)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.d = nn.Conv2d(4, 3, 1, stride=(2, 3), bias=True)
        self.head = nn.Linear(13, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn_a(self.a(x)))
        x = torch.relu(self.bn_b(self.b(x))) + self.pool(x)
        z = nn.functional.avg_pool2d(x, 3, stride=2, ceil_mode=True)
        p = torch.relu(self.d(x)) ** 2  # not linear in x: its input gradient reaches the layers before
        x = self.bn_plain(self.gn(self.c(x)))
        return self.head(torch.cat([x.mean(dim=(2, 3)), z.mean(dim=(2, 3)), p.mean(dim=(2, 3))], dim=1))


@pytest.mark.parametrize("fused_sums_from", [engine._FUSED_SUMS_FROM, 0])
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_per_sample_grads_equal_the_loop_on_every_layer_form(chunk_size: int | None, fused_sums_from: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # 0: BN backward sums from the fused per-row kernel, the path the full NB201 net's large BN inputs take
    monkeypatch.setattr(engine, "_FUSED_SUMS_FROM", fused_sums_from)
    torch.manual_seed(1)
    net = Mixed().double()
    with torch.no_grad():
        net.bn_b.running_mean.uniform_(-1, 1)
        net.bn_b.running_var.uniform_(0.5, 2)
    x = torch.randn(5, 3, 9, 9, dtype=torch.float64)  # odd size: stride-2 convs need output padding
    params = dict(net.named_parameters())
    fast = per_sample_grads(net, x, params, chunk_size=chunk_size)
    assert_rows_equal(fast, loop_rows(net, x, params))


class Thin(nn.Module):
    """Strided 1x1 convs with 1 and 4 input channels at even sizes, as in TE-NAS's thin Macro networks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 1, 3, padding=1, bias=False)
        self.b = nn.Conv2d(1, 4, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.c = nn.Conv2d(4, 8, 1, stride=2, bias=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn(self.b(torch.relu(self.a(x)))))
        return self.head(torch.relu(self.c(x)).mean(dim=(2, 3)))


def thin_strided_1x1_case() -> None:
    """float32 rows of :class:`Thin` built channels-last (oneDNN's kernels) against the float64 loop."""
    torch.manual_seed(4)
    net = build(Thin, torch.device("cpu"), "kaiming_fan_out")
    assert net.c.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32)
    params = dict(net.named_parameters())
    fast = per_sample_grads(net, x, params)
    reference = Thin().double().train()
    reference.load_state_dict(net.state_dict())
    slow = loop_rows(reference, x.double(), dict(reference.named_parameters()))
    for k in slow:
        torch.testing.assert_close(fast[k].double(), slow[k], rtol=1e-4, atol=1e-5, msg=k)


def test_per_sample_grads_on_strided_1x1_convs_with_few_channels_in_channels_last() -> None:
    # in a subprocess: oneDNN's channels-last 1x1 stride-2 weight gradient with < 8 input channels crashes
    # the process (issue #6035), which must fail this test rather than end the pytest run
    tests = Path(__file__).resolve().parent
    code = f"import sys; sys.path.insert(0, {str(tests)!r}); import test_mechanics as t; t.thin_strided_1x1_case()"
    run = subprocess.run([sys.executable, "-c", code], cwd=tests.parent, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"rc {run.returncode}: {run.stderr[-2000:]}"


def test_per_sample_grads_of_a_custom_row_function_and_float32() -> None:
    torch.manual_seed(2)
    net = reinit(Nb201Network(BEST_CELL, channels=2, cells_per_stage=1), "kaiming_fan_in").train()
    x = torch.randn(4, 3, 8, 8)
    params = {k: v for k, v in net.named_parameters() if "weight" in k}
    fast = per_sample_grads(net, x, params, fn=lambda out: out[:, 3])
    out = net(x)
    for i in range(4):
        grads = torch.autograd.grad(out[i, 3], list(params.values()), retain_graph=True)
        for k, g in zip(params, grads, strict=True):
            torch.testing.assert_close(fast[k][i], g, rtol=1e-4, atol=1e-5, msg=k)
    with pytest.raises(ValueError, match="one value per sample"):
        per_sample_grads(net, x, params, fn=lambda out: out)


def test_ntk_of_a_linear_model_by_hand() -> None:
    # y = W x, s_i = Σ_o y_io: ∂s_i/∂W = 1·x_iᵀ, so Θ_ij = n_out · x_i·x_j
    torch.manual_seed(3)
    n_out = 7
    model = nn.Linear(5, n_out, bias=False)
    x = torch.randn(6, 5)
    expected = n_out * (x.double() @ x.double().T)
    torch.testing.assert_close(ntk_gram(model, x), expected, rtol=1e-6, atol=1e-6)
