"""ZenNet structures, builder, analytic counts, published ZenNets and the two Zen-NAS mutation spaces."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from proxies.base import VariantUnavailable
from search import zennets
from search.spaces.zennet import (
    BLOCK_TYPES,
    ResidualUnit,
    Structure,
    StructureError,
    ZenNetFactory,
    build_zennet,
    count_flops,
    count_params,
    smart_round,
    zennet_init,
)
from search.spaces.zennet_space import MOBILENET_LIKE, PRESETS, RESNET_LIKE, ZenNetMutationSpace, get_rules

TINY = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
CIFAR_INIT = ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
              "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)")
IMAGENET_INIT = ("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
                 "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)")
# Every family, odd channel counts, SE-able, stride 2 and 1, several sub-layers.
MIXED = ("SuperConvK5BNRELU(3,12,2,2)SuperResK3K5(12,20,1,6,2)SuperResK1K7K1(20,24,2,10,2)"
         "SuperResIDWE4K5(24,16,2,12,2)SuperResIDWE1K3(16,16,1,16,1)SuperConvK7BNRELU(16,20,1,1)")


def _numel(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _hook_flops(net: nn.Module, resolution: int) -> int:
    """Independent count from output shapes: conv C_in/g*C_out*k^2*H*W, BN C*H*W, linear in*out."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k_h, k_w = m.kernel_size
            total += m.in_channels // m.groups * m.out_channels * k_h * k_w * out[0, 0].numel()
        elif isinstance(m, nn.BatchNorm2d):
            total += out[0].numel()
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return total


# ----------------------------------------------------------------------------- strings


def test_round_trip_published_and_block_labels() -> None:
    for name in zennets.list_names():
        text = zennets.get_structure(name)
        assert str(Structure.parse(text)) == text
    labelled = "SuperConvK3BNRELU(stem|3,8,1,1)SuperResK1K3K1(8,16,2,8,1)"
    parsed = Structure.parse(labelled)
    assert parsed[0].label == "stem" and str(parsed) == labelled


def test_parse_fields_and_layer_count() -> None:
    s = Structure.parse(zennets.get_structure("ZenNet-1.0M"))
    b = s[2]
    assert (b.type, b.in_channels, b.out_channels, b.stride, b.bottleneck, b.sub_layers) == (
        "SuperResK1K7K1", 120, 192, 2, 16, 3)
    assert s[0].bottleneck is None
    assert s.num_layers == 1 + 1 + 3 + 4 + 2 + 3 + 3 + 1  # stem and head count 1 each


@pytest.mark.parametrize(("text", "expected"), [
    ("SuperFooK3(3,8,1,1)", "block 0 SuperFooK3: unknown block type"),
    ("SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8)", "block 1 SuperResK1K3K1(8,16,2,8): takes 5 arguments"),
    ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)", "block 1 SuperResK3K3(16,16,1,8,1): channel chain broken"),
    ("SuperConvK3BNRELU(3,8,0,1)", "block 0 SuperConvK3BNRELU: stride must be a positive integer"),
    ("SuperConvK3BNRELU(3,-8,1,1)", "out must be a positive integer"),
    ("SuperConvK3BNRELU(3,8,1,1)junk", "block 1: cannot parse 'junk'"),
    ("SuperConvK2BNRELU(3,8,1,1)", "unknown block type"),
    ("SuperResK1K4K1(3,8,1,8,1)", "unknown block type"),
    ("", "empty"),
])
def test_parse_errors_are_one_line_and_name_the_block(text: str, expected: str) -> None:
    with pytest.raises(StructureError) as info:
        Structure.parse(text)
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_all_block_families_are_known() -> None:
    assert len(BLOCK_TYPES) == 4 + 9 + 3 + 12
    assert smart_round(20) == 16 and smart_round(12) == 16 and smart_round(3) == 8  # half-to-even, floor 8


# ----------------------------------------------------------------------------- network and counts


def test_tiny_structure_counts_by_hand() -> None:
    # module convention: stem 3*8*9 + BN 2*8 = 232; res (stride 2): 8*8*9 + 2*8 + 8*16*9 + 2*16 = 1776 plus the
    # projection 8*16 + 16 (bias) + 2*16 = 176; head 16*32 + 2*32 = 576; classifier 32*10 + 10 = 330.
    assert count_params(TINY, 10) == 232 + 1776 + 176 + 576 + 330
    # ZenNAS convention: BN counts C, the projection in*out + out, the classifier in*out + 1.
    assert count_params(TINY, 10, convention="zennas") == 224 + (576 + 8 + 1152 + 16 + 144) + 544 + 321
    # FLOPs at 32: stem 3*8*9*1024 + 8*1024; res conv1 8*8*9*256 + 8*256, conv2 8*16*9*256 + 16*256;
    # head 16*32*256 + 32*256; classifier 320. The projection: module 8*16*256 + 16*256, ZenNAS at (16/2)^2.
    common = 221184 + 8192 + 147456 + 2048 + 294912 + 4096 + 131072 + 8192 + 320
    assert count_flops(TINY, 32, 10) == common + 32768 + 4096
    assert count_flops(TINY, 32, 10, convention="zennas") == common + 8 * 16 * 64 + 64 * 16


@pytest.mark.parametrize("flags", [{}, {"no_reslink": True}, {"no_bn": True}, {"use_se": True},
                                   {"use_se": True, "no_reslink": True}])
def test_analytic_counts_equal_the_built_module(flags: dict[str, bool]) -> None:
    for text, resolution in ((TINY, 32), (MIXED, 30), (IMAGENET_INIT, 17)):
        net = build_zennet(text, 7, **flags)
        assert count_params(text, 7, **flags) == _numel(net)
        assert count_flops(text, resolution, 7, **flags) == _hook_flops(net, resolution)


def test_published_cifar_counts_equal_the_built_module() -> None:
    for name in ("ZenNet-0.5M", "ZenNet-1.0M", "ZenNet-2.0M"):
        text = zennets.get_structure(name)
        net = build_zennet(text, 100)
        assert count_params(text, 100) == _numel(net)
        assert count_flops(text, 32, 100) == _hook_flops(net, 32)


@pytest.mark.parametrize("name", zennets.list_names())
def test_published_zennets_match_the_table_within_5_percent(name: str) -> None:
    m = zennets.get(name)
    se_for_params = m.use_se and m.published_params_include_se
    params = count_params(m.structure, m.num_classes, use_se=se_for_params)
    flops = count_flops(m.structure, m.resolution, m.num_classes, use_se=m.use_se)
    assert params / 1e6 == pytest.approx(m.params_m, rel=0.05)
    assert flops / 1e6 == pytest.approx(m.flops_m, rel=0.05)
    assert count_flops(m.structure, m.resolution, m.num_classes, "zennas", m.use_se) / 1e6 == pytest.approx(
        m.flops_m, rel=0.05)


def test_zennet_lookup_and_resolve(tmp_path) -> None:
    assert zennets.get("zennet_cifar100_model_size1M_res32").name == "ZenNet-1.0M"
    with pytest.raises(KeyError, match="unknown ZenNet 'ZenNet-3M'"):
        zennets.get("ZenNet-3M")
    path = tmp_path / "s.txt"
    path.write_text(TINY + "\n")
    assert str(zennets.resolve_structure(str(path))) == TINY
    assert str(zennets.resolve_structure("zennet-0.5m")) == zennets.get_structure("ZenNet-0.5M")
    with pytest.raises(StructureError, match="neither a published ZenNet"):
        zennets.resolve_structure("no-such-thing")


def test_forward_shapes_and_reslink_switch() -> None:
    net = build_zennet(TINY, 10)
    x = torch.randn(2, 3, 32, 32)
    assert net.forward_pre_gap(x).shape == (2, 32, 16, 16) and net(x).shape == (2, 10)
    assert sum(isinstance(m, ResidualUnit) for m in net.modules()) == 1
    plain = build_zennet(TINY, 10, no_reslink=True, no_bn=True)
    assert not any(isinstance(m, (ResidualUnit, nn.BatchNorm2d)) for m in plain.modules())
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    # Identity shortcut only when shape is kept: second units of a K1KXK1 block are identities.
    units = [m for m in build_zennet("SuperResK1K3K1(8,16,1,8,2)", 2).modules() if isinstance(m, ResidualUnit)]
    assert [isinstance(u.shortcut, nn.Identity) for u in units] == [False, True, True, True]


def test_zennet_init() -> None:
    torch.manual_seed(0)
    net = zennet_init(build_zennet(zennets.get_structure("ZenNet-0.5M"), 100))
    units = [m for m in net.modules() if isinstance(m, ResidualUnit)]
    assert units and all(float(u.body[-1].weight.detach().abs().sum()) == 0 for u in units)
    assert float(net.blocks[0][0][1].weight.detach().min()) == 1.0  # stem BN gamma stays 1
    conv = net.blocks[1][0].body[0]  # 1x1, 64 -> 16
    expected = 3.26033 * math.sqrt(2.0 / (64 + 16))
    assert float(conv.weight.detach().std()) == pytest.approx(expected, rel=0.1)
    fc_std = 3.26033 * math.sqrt(2.0 / (512 + 100))
    assert float(net.classifier.weight.detach().std()) == pytest.approx(fc_std, rel=0.1)
    assert float(net.classifier.bias.detach().abs().sum()) == 0


def test_factory_builds_the_scored_network_by_default() -> None:
    factory = ZenNetFactory(Structure.parse(TINY), num_classes=10, resolution=32)
    assert factory.input_shape == (3, 32, 32)
    assert not any(isinstance(m, ResidualUnit) for m in factory().modules())
    assert any(isinstance(m, ResidualUnit) for m in factory(no_reslink=False).modules())
    with pytest.raises(TypeError, match="channels"):
        factory(channels=4)


def test_factory_builds_named_variants_in_its_own_terms() -> None:
    """``no-reslink`` is ZenNet's residual-free network; TE-NAS's thin networks are NB201's only (refused in
    one line with the way out, never a network the proxy would score as -inf)."""
    factory = ZenNetFactory(Structure.parse(TINY), num_classes=10, resolution=32, no_reslink=False)
    assert not any(isinstance(m, ResidualUnit) for m in factory(variant="no-reslink").modules())
    for variant in ("tenas-ntk", "tenas-lr"):
        with pytest.raises(VariantUnavailable, match=f"no '{variant}' network.*tenas.network=full"):
            factory(variant=variant)


# ----------------------------------------------------------------------------- mutation spaces


def test_channel_and_sub_layer_moves_by_hand() -> None:
    assert RESNET_LIKE.channel_choices(64) == (160, 128, 96, 80, 64, 48, 40, 32, 24)
    assert RESNET_LIKE.channel_choices(1024) == (2048, 1536, 1280, 1024, 816, 680, 512, 408)  # 2048 cap
    assert MOBILENET_LIKE.channel_choices(1024)[0] == 2560  # no cap
    assert RESNET_LIKE.channel_choices(8) == (16, 8)  # 8 * 2.5 = 20 rounds half-to-even to 16
    assert RESNET_LIKE.sub_layer_choices(1) == (3, 2, 1)
    assert RESNET_LIKE.sub_layer_choices(5) == (7, 6, 5, 4, 3)
    assert get_rules("xxbl") is RESNET_LIKE and get_rules("idw_fixfc") is MOBILENET_LIKE
    with pytest.raises(ValueError, match="unknown Zen-NAS search space"):
        get_rules("vit")


def test_split_rule() -> None:
    blocks = list(Structure.parse("SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,7)").blocks)
    split = RESNET_LIKE.split(blocks)
    assert str(Structure(tuple(split))) == (
        "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,3)SuperResK1K3K1(16,16,1,8,3)")
    five = list(Structure.parse("SuperResK3K3(8,16,2,8,5)").blocks)
    assert RESNET_LIKE.split(five) == five


@pytest.mark.parametrize(("rules", "initial"), [(RESNET_LIKE, CIFAR_INIT), (MOBILENET_LIKE, IMAGENET_INIT)])
def test_mutations_stay_valid_and_inside_the_space(rules, initial) -> None:
    rng = np.random.default_rng(0)
    start = Structure.parse(initial)
    s = start
    for _ in range(300):
        child = rules.mutate(s, 2, rng)
        assert str(Structure.parse(str(child))) == str(child)  # valid, chained, round trip
        assert rules.contains(child) is None, rules.contains(child)
        assert child[0].in_channels == 3 and child[0].stride == start[0].stride
        strides = [b.stride for b in child]
        assert sorted(strides)[-1] <= 2 and strides.count(2) == [b.stride for b in start].count(2)
        if rules.fixed_head:
            assert child[-1].out_channels == 2048
        s = child


def test_one_replacement_changes_at_most_one_block() -> None:
    rng = np.random.default_rng(1)
    start = Structure.parse(CIFAR_INIT)
    for _ in range(200):
        child = RESNET_LIKE.mutate(start, 1, rng)
        assert len(child) == len(start)  # sub_layers <= 3 here, nothing splits
        changed = [i for i, (a, b) in enumerate(zip(start, child, strict=True))
                   if (a.type, a.out_channels, a.bottleneck, a.sub_layers) != (b.type, b.out_channels, b.bottleneck,
                                                                               b.sub_layers)]
        assert len(changed) <= 1


def test_type_distribution_follows_zennas_cumulative_lists() -> None:
    rng = np.random.default_rng(2)
    block = Structure.parse("SuperResK3K3(8,16,1,8,1)")[0]
    counts = Counter(RESNET_LIKE.mutate_block(block, rng).type for _ in range(12000))
    # weights 3:2:1 within each family of three: 3000, 2000, 1000 expected of 12000
    for t, expected in (("SuperResK1K3K1", 3000), ("SuperResK1K5K1", 2000), ("SuperResK1K7K1", 1000),
                        ("SuperResK3K3", 3000), ("SuperResK5K5", 2000), ("SuperResK7K7", 1000)):
        assert abs(counts[t] - expected) < 4 * math.sqrt(expected)


def test_space_metrics_are_zennas_counts() -> None:
    space = ZenNetMutationSpace(RESNET_LIKE, CIFAR_INIT, num_classes=100, resolution=32)
    child = space.child(Structure.parse(CIFAR_INIT), np.random.default_rng(3))
    m = space.metrics(child)
    assert m.params == count_params(child, 100, convention="zennas")
    assert m.flops == count_flops(child, 32, 100, convention="zennas")
    assert m.layers == child.num_layers
    # ZenNet-1.0M as published exceeds the 1e6 ZenNAS-count budget with the search's 100-class head
    assert count_params(zennets.get_structure("ZenNet-1.0M"), 100, convention="zennas") > 1e6


def test_presets_are_zennas_search_scripts() -> None:
    p1m, p400 = PRESETS["cifar-params1M"], PRESETS["imagenet-flops400M"]
    assert (p1m.initial, p1m.space, p1m.max_params, p1m.max_layers, p1m.num_classes) == (
        CIFAR_INIT, "resnet", 1e6, 18, 100)
    assert (p400.initial, p400.space, p400.max_flops, p400.max_layers, p400.resolution) == (
        IMAGENET_INIT, "mobilenet", 400e6, 14, 224)
    assert PRESETS["cifar-params2M"].max_layers == 20 and PRESETS["imagenet-flops800M"].max_layers == 16
