"""NB201 search space against the benchmark itself: strict strings, the 6,466 canonical classes,
connectivity, parameter counts of every cell on every dataset, FLOPs, and the network's forward."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from search.spaces.nb201 import (
    DATASETS,
    OPS,
    ArchStringError,
    Nb201Arch,
    Nb201Factory,
    Nb201Network,
    all_archs,
    nb201_flops,
    nb201_param_count,
    parse_arch,
)

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def table(nb201_csv: Path) -> pd.DataFrame:
    return pd.read_csv(nb201_csv, index_col="index")


@pytest.fixture(scope="module")
def archs(table: pd.DataFrame) -> list[Nb201Arch]:
    return [Nb201Arch.from_string(text) for text in table["arch_str"]]


# ----------------------------------------------------------------------------- strings


@pytest.mark.parametrize("text, problem", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "expected 3 nodes"),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "expected 3 nodes"),
    ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ("|nor_conv_3x3~0|+|none~0|none~2|+|none~0|none~1|none~2|", "must read 'op~1'"),
    ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ("|max_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'max_pool_3x3'"),
    ("nor_conv_3x3~0+|none~0|none~1|+|none~0|none~1|none~2|", "enclosed in '|'"),
    ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 input edge(s), found 1"),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "needs 3 input edge(s), found 4"),
    ("", "expected 3 nodes"),
])
def test_malformed_strings_are_rejected_naming_string_and_problem(text: str, problem: str) -> None:
    with pytest.raises(ArchStringError) as err:
        Nb201Arch.from_string(text)
    message = str(err.value)
    assert problem in message and repr(text) in message and "\n" not in message


@pytest.mark.parametrize("value", [12, None, ["|nor_conv_3x3~0|"], b"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(ArchStringError, match="expected an NB201 architecture string, got"):
        Nb201Arch.from_string(value)  # type: ignore[arg-type]


def test_bad_op_tuples_are_rejected() -> None:
    for bad in [(0, 1, 2), (0, 1, 2, 3, 4, 5), (0, 0, 0, 0, 0, -1)]:
        with pytest.raises(ArchStringError, match="six op indices in 0..4"):
            Nb201Arch.from_indices(bad)
    with pytest.raises(ArchStringError, match="unknown NB201 op"):
        Nb201Arch(("conv",) * 6)


def test_round_trip_string_arch_indices_for_every_arch(table: pd.DataFrame, archs: list[Nb201Arch]) -> None:
    for text, arch in zip(table["arch_str"], archs, strict=True):
        assert arch.to_string() == text and str(arch) == text
        assert Nb201Arch.from_indices(arch.to_indices()) == arch
        assert parse_arch(arch.to_indices()) == parse_arch(text) == parse_arch(arch)
    # the csv holds each of the 5**6 cells exactly once
    assert {a.to_indices() for a in archs} == {a.to_indices() for a in all_archs()}
    assert len(archs) == len(OPS) ** 6
    # op indices follow NB201's order (none=0, skip=1, 1x1=2, 3x3=3, pool=4) and the edge order
    assert Nb201Arch.from_string(BEST_C10).to_indices() == (3, 3, 3, 1, 3, 2)
    assert Nb201Arch.from_string(BEST_C10).op(3, 0) == "skip_connect"


def test_canonical_form_gives_the_published_6466_classes(archs: list[Nb201Arch]) -> None:
    assert len({a.canonical for a in archs}) == 6_466
    # by hand: conv3x3(x) reached directly, or through node 1 and a skip, is the same network ...
    direct = Nb201Arch.from_string("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    through = Nb201Arch.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert direct != through and direct.canonical == through.canonical
    # ... a different op is not
    assert direct.canonical != Nb201Arch.from_string(
        "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|").canonical


def test_disconnected_exactly_at_chance(table: pd.DataFrame, archs: list[Nb201Arch]) -> None:
    connected = np.array([a.is_connected for a in archs])
    assert (~connected).sum() > 0
    assert np.array_equal(~connected, (table["cifar10_test"] == 10.0).to_numpy())
    assert not Nb201Arch.from_string(ALL_NONE).is_connected


# ----------------------------------------------------------------------------- parameters and FLOPs


def test_param_count_of_every_arch_on_every_dataset(table: pd.DataFrame, archs: list[Nb201Arch]) -> None:
    for ds, (classes, _) in DATASETS.items():
        counted = np.array([nb201_param_count(a, classes) for a in archs]) / 1e6
        assert np.abs(counted - table[f"params_{ds}_M"].to_numpy()).max() <= 1e-6 + 1e-12, ds


def _groups(archs: list[Nb201Arch]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, a in enumerate(archs):
        groups[(a.count("nor_conv_1x1"), a.count("nor_conv_3x3"))].append(i)
    return groups


def test_counted_modules_are_the_built_ones(table: pd.DataFrame, archs: list[Nb201Arch]) -> None:
    """One real network per (#1x1, #3x3) group and dataset (on the CPU: cheaper than the meta device,
    whose dispatch overhead outweighs the ~1 M-parameter init)."""
    groups = _groups(archs)
    assert len(groups) == 28  # n1 + n3 <= 6
    for (n1, n3), members in groups.items():
        arch = archs[members[len(members) // 2]]
        for ds, (classes, _) in DATASETS.items():
            # the benchmark's count only depends on the conv counts ...
            assert table[f"params_{ds}_M"].iloc[members].nunique() == 1
            net = Nb201Network(arch, num_classes=classes)
            built = sum(p.numel() for p in net.parameters())
            assert built == nb201_param_count(arch, classes), (n1, n3, ds)


@pytest.mark.parametrize("text", [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    BEST_C10,
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|",  # none edges
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|none~2|",  # disconnected, convs unused downstream
    "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|",  # disconnected, convs on zero inputs
    ALL_NONE,
])
def test_forward_calls_every_module_that_owns_parameters(text: str) -> None:
    torch.manual_seed(0)
    net = Nb201Network(text, num_classes=10)
    owners = {name: m for name, m in net.named_modules() if any(True for _ in m.parameters(recurse=False))}
    called: set[str] = set()
    for name, module in owners.items():
        module.register_forward_hook(lambda m, i, o, name=name: called.add(name))
    net(torch.randn(2, 3, 32, 32))
    assert called == set(owners)
    owned = sum(p.numel() for m in owners.values() for p in m.parameters(recurse=False))
    assert owned == nb201_param_count(text, 10)


def test_flops(table: pd.DataFrame, archs: list[Nb201Arch]) -> None:
    best = int(table["cifar10_test"].idxmax())
    assert archs[best].to_string() == BEST_C10
    assert nb201_flops(BEST_C10) == 153_272_960  # NATS-Bench: 153.27296 MFLOPs, convolutions and head only
    for ds, (classes, resolution) in DATASETS.items():
        with_pooling = np.array([nb201_flops(a, classes, resolution, count_pooling=True) for a in archs]) / 1e6
        offset = table[f"flops_{ds}_M"].to_numpy() - with_pooling
        assert offset.max() - offset.min() <= 2e-6, ds  # one constant per dataset: the same ranking
    # conv-only FLOPs rank exactly as the parameter count does (both depend on #1x1 and #3x3 alone)
    per_group = sorted((nb201_param_count(archs[m[0]]), nb201_flops(archs[m[0]])) for m in _groups(archs).values())
    assert all(p0 < p1 and f0 < f1 for (p0, f0), (p1, f1) in zip(per_group, per_group[1:], strict=False))


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_forward_shapes_and_pre_gap(dataset: str) -> None:
    classes, resolution = DATASETS[dataset]
    factory = Nb201Factory(Nb201Arch.from_string(BEST_C10), dataset)
    assert factory.input_shape == (3, resolution, resolution) and factory.num_classes == classes
    torch.manual_seed(0)
    net = factory().eval()
    x = torch.randn(2, *factory.input_shape)
    with torch.no_grad():
        logits, pre_gap, features = net(x), net.forward_pre_gap(x), net.forward_features(x)
    assert logits.shape == (2, classes)
    assert pre_gap.shape == (2, 64, resolution // 4, resolution // 4)
    assert torch.equal(pre_gap, features) and (pre_gap >= 0).all()  # after the final BN + ReLU
    assert torch.allclose(logits, net.classifier(pre_gap.mean(dim=(2, 3))), atol=1e-5)
    assert isinstance(net.classifier, nn.Linear) and net.classifier.out_features == classes
