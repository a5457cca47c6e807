"""NAS-Bench-Macro against the benchmark itself: parameter and FLOP counts of every one of the 6,561 keys,
built networks, the released ground truth, strict specs, the isomorphism the benchmark's own collection
script uses, the network variants and the EA's one-layer mutation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_data
from torch import nn

from bench.benchmarks.base import ArchSpecError, Benchmark, BenchmarkError
from bench.benchmarks.macro import MacroBenchmark
from proxies.base import VariantUnavailable
from search.spaces.macro import (
    OPS,
    VARIANT_OVERRIDES,
    InvertedResidual,
    MacroArch,
    MacroFactory,
    MacroMutationSpace,
    MacroNetwork,
    MacroSpecError,
    all_archs,
    macro_flops,
    macro_param_count,
    mutate_one_layer,
)

GT_FILE = "nasbench-macro/nas-bench-macro_cifar10.json"
BUILT = ("00000000", "22222222", "11111111", "02012100", "22212220", "10000000", "01000000", "12021012")


@pytest.fixture(scope="module")
def raw() -> dict:
    with open(require_data(GT_FILE)) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def gt():
    return MacroBenchmark().ground_truth(require_data(GT_FILE))


def _net(spec: str, seed: int = 0, **kwargs: object) -> MacroNetwork:
    torch.manual_seed(seed)
    return MacroFactory(MacroArch.from_string(spec))(**kwargs)


# ----------------------------------------------------------------------------- counts


def test_params_and_flops_equal_the_benchmark_for_every_key(raw: dict) -> None:
    assert len(raw) == 6561
    wrong_params = [k for k, v in raw.items() if macro_param_count(k) != v["params"]]
    wrong_flops = [k for k, v in raw.items() if macro_flops(k) != v["flops"]]
    assert wrong_params == [] and wrong_flops == []


def test_reference_anchors_and_a_hand_count() -> None:
    # REFERENCE F.1 anchors
    assert macro_param_count("02012100") == 890_666
    assert macro_param_count("22212220") == 1_985_514
    # 00000000 by hand: stem 3*9*32 + BN, three projections cin*cout + BN, head 256*1280 + BN, linear
    stem = 3 * 9 * 32 + 2 * 32
    projections = sum(c * 2 * c + 2 * 2 * c for c in (32, 64, 128))
    head = 256 * 1280 + 2 * 1280 + 1280 * 10 + 10
    assert macro_param_count("00000000") == stem + projections + head == 387_882
    # its MACs at 32x32: stem at 32², projections at 16², 8², 4², head at 4², linear
    macs = 3 * 9 * 32 * 32**2 + 32 * 64 * 16**2 + 64 * 128 * 8**2 + 128 * 256 * 4**2 + 256 * 1280 * 4**2 + 12_800
    assert macro_flops("00000000") == macs


@pytest.mark.parametrize("spec", BUILT)
def test_built_network_has_the_benchmark_parameter_count(spec: str, raw: dict) -> None:
    net = _net(spec)
    assert sum(p.numel() for p in net.parameters()) == raw[spec]["params"]
    for variant in ("tenas-ntk", "tenas-lr"):
        options = VARIANT_OVERRIDES[variant]
        thin = MacroFactory(MacroArch.from_string(spec))(variant=variant)
        assert sum(p.numel() for p in thin.parameters()) == macro_param_count(spec, **options)


@pytest.mark.parametrize("spec", ("22212220", "01000000", "12021012"))
def test_every_parameterised_module_runs_in_forward(spec: str) -> None:
    net = _net(spec)
    owners = {m for m in net.modules() if list(m.parameters(recurse=False))}
    ran: set[nn.Module] = set()
    handles = [m.register_forward_hook(lambda m, i, o: ran.add(m)) for m in owners]
    out = net(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    assert ran == owners
    assert out.shape == (2, 10) and net.forward_pre_gap(torch.randn(2, 3, 32, 32)).shape == (2, 1280, 4, 4)


# ----------------------------------------------------------------------------- ground truth


def test_ground_truth_table(gt, raw: dict) -> None:
    table = gt.table
    assert len(table) == 6561 and table.index.name == "arch"
    assert list(table.index) == sorted(raw) == [a.to_string() for a in all_archs()]
    assert np.array_equal(table["cifar10_test"].to_numpy(), [raw[k]["mean_acc"] for k in table.index])
    for column, field in (("params_cifar10_M", "params"), ("flops_cifar10_M", "flops")):
        assert np.array_equal(np.rint(table[column].to_numpy() * 1e6), [raw[k][field] for k in table.index])
    best = table["cifar10_test"].max()
    assert round(best, 2) == 93.13
    # the best network, 22212220, also has the key 22212202 (same network, identity moved)
    assert set(table.index[table["cifar10_test"] == best]) == {"22212202", "22212220"}
    assert gt.key("cifar10") == "cifar10_test" and gt.accuracy_keys == ["cifar10_test"]
    assert len(gt.evaluated()) == 6561
    info = MacroBenchmark().info(gt)
    assert "6,561 architectures" in info and "93.13 at 22212220" in info and "3,969" in info


def test_trials_are_the_three_seeds(gt, raw: dict) -> None:
    trials = gt.trials
    assert list(trials.columns) == ["arch", "trial", "accuracy", "key"]
    assert len(trials) == 3 * 6561 and set(trials["key"]) == {"cifar10_test"}
    assert Counter(trials.groupby("arch").size()) == {3: 6561}
    assert trials[trials["arch"] == "02012100"]["accuracy"].tolist() == raw["02012100"]["test_acc"]
    means = trials.groupby("arch")["accuracy"].mean()
    assert np.allclose(means.reindex(gt.table.index), gt.table["cifar10_test"], rtol=0, atol=1e-9)


def test_ground_truth_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    path = require_data(GT_FILE)
    bench = MacroBenchmark()
    monkeypatch.setenv("ZENBENCH_DATA", str(path.parents[1]))
    assert len(bench.ground_truth()) == 6561
    assert len(bench.ground_truth(path.parent)) == len(bench.ground_truth(path.parents[1])) == 6561
    monkeypatch.delenv("ZENBENCH_DATA")
    with pytest.raises(BenchmarkError, match="set ZENBENCH_DATA"):
        bench.ground_truth()


def _write(folder: Path, data: object, text: str | None = None) -> Path:
    folder.mkdir()
    path = folder / "nas-bench-macro_cifar10.json"
    path.write_text(json.dumps(data) if text is None else text)
    return path


def test_missing_or_corrupt_ground_truth_is_one_line_naming_the_path(tmp_path: Path, raw: dict) -> None:
    bench = MacroBenchmark()
    cases = {
        "no such file": tmp_path / "absent.json",
        "not a readable JSON": _write(tmp_path / "a", None, text='{"00000000": {"test_'),
        "expected a JSON object": _write(tmp_path / "b", [1, 2]),
        "1 missing": _write(tmp_path / "c", {k: v for k, v in raw.items() if k != "12012012"}),
        "1 unknown": _write(tmp_path / "d", {**raw, "00000003": raw["00000000"]}),
        "mean_acc": _write(tmp_path / "e", {**raw, "11111111": {**raw["11111111"], "mean_acc": 50.0}}),
        "test_acc must be": _write(tmp_path / "f", {**raw, "11111111": {**raw["11111111"], "test_acc": []}}),
        "positive integers": _write(tmp_path / "g", {**raw, "11111111": {**raw["11111111"], "params": 1.5}}),
        "expected an object with": _write(tmp_path / "h", {**raw, "11111111": {"params": 3}}),
    }
    for fault, path in cases.items():
        with pytest.raises(BenchmarkError) as err:
            bench.ground_truth(path)
        message = str(err.value)
        assert fault in message and str(path) in message and "\n" not in message, message


# ----------------------------------------------------------------------------- specs


@pytest.mark.parametrize("spec, fault", [
    ("0201210", "has 7 characters, expected 8"),
    ("020121000", "has 9 characters, expected 8"),
    ("", "has 0 characters"),
    ("0201210x", "layer 8 is 'x'"),
    ("30121000", "layer 1 is '3'"),
    (" 2012100", "layer 1 is ' '"),
    (2012100, "got int"),
    (None, "got NoneType"),
])
def test_malformed_specs_are_rejected_naming_spec_and_fault(spec: object, fault: str) -> None:
    for parse, error in ((MacroArch.from_string, MacroSpecError), (MacroBenchmark().parse, ArchSpecError)):
        with pytest.raises(error) as err:
            parse(spec)
        message = str(err.value)
        assert fault in message and repr(spec) in message and "\n" not in message, message


def test_specs_round_trip_and_enumerate_in_order() -> None:
    bench = MacroBenchmark()
    specs = [a.to_string() for a in all_archs()]
    assert len(set(specs)) == 6561 and specs == sorted(specs)
    assert all(bench.format(bench.parse(s)) == s for s in specs)
    assert MacroArch.from_string("02012100").ops == ("id", "ir_5x5_t6", "id", "ir_3x3_t3", "ir_5x5_t6",
                                                    "ir_3x3_t3", "id", "id")


# ----------------------------------------------------------------------------- isomorphism


def test_equivalent_specs_are_the_networks_the_benchmark_copies(raw: dict) -> None:
    bench = MacroBenchmark()
    classes: dict[str, list[str]] = {}
    for spec in raw:
        classes.setdefault(bench.isomorphism_id(bench.parse(spec)), []).append(spec)
    assert len(classes) == 3969  # 9 * 21 * 21: stage 1 keeps 3 x 3 orders, stages 2-3 3 x (1 + 2 + 4)
    assert all(canonical in members for canonical, members in classes.items())
    # the released file holds one training run per class: equivalent keys carry identical entries
    assert all(all(raw[m] == raw[canonical] for m in members) for canonical, members in classes.items())
    assert len({json.dumps(raw[c]["test_acc"]) for c in classes}) == 3969
    # the first layer of a stage is a projection, never a skip
    assert bench.isomorphism_id(bench.parse("10000000")) != bench.isomorphism_id(bench.parse("01000000"))
    assert raw["10000000"]["params"] != raw["01000000"]["params"]


def test_equivalent_specs_build_the_same_function() -> None:
    x = torch.randn(3, 3, 32, 32)
    a, b = _net("00010000").train(), _net("00001000").train()
    assert torch.equal(a(x), b(x))
    c = _net("00100100").train()  # the ir_3x3 moved across a stage boundary: a different network
    assert not torch.allclose(a(x), c(x))
    assert not any(MacroBenchmark().is_degenerate(a) for a in all_archs())


# ----------------------------------------------------------------------------- variants


def _residual_adds(net: nn.Module) -> int:
    return sum(isinstance(m, InvertedResidual) and m.use_residual for m in net.modules())


def test_no_reslink_differs_only_where_residual_adds_exist() -> None:
    x = torch.randn(4, 3, 32, 32)
    for spec, adds in (("00000000", 0), ("10000000", 0), ("01000000", 1), ("22222222", 5)):
        full, plain = _net(spec, seed=1), _net(spec, seed=1, variant="no-reslink")
        assert _residual_adds(full) == adds and _residual_adds(plain) == 0
        assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in full.parameters())
        same = torch.allclose(full.train()(x), plain.train()(x))
        assert same == (adds == 0), spec


def test_thin_variants_run_on_their_inputs() -> None:
    factory = MacroBenchmark().factory("22212220", "cifar10")
    ntk = factory(variant="tenas-ntk")
    assert ntk(torch.randn(8, *factory.input_shape)).shape == (8, 10)
    assert ntk.forward_pre_gap(torch.randn(2, 3, 32, 32)).shape == (2, 160, 4, 4)
    lr = factory(variant="tenas-lr")
    assert lr.stem.__class__ is nn.Identity and lr.features[0].conv[0].in_channels == 1
    assert lr(torch.randn(16, 1, 3, 3)).shape == (16, 10)
    assert lr.forward_pre_gap(torch.randn(16, 1, 3, 3)).shape == (16, 40, 1, 1)


def test_unknown_variant_is_refused_naming_it() -> None:
    factory = MacroBenchmark().factory("02012100", "cifar10")
    with pytest.raises(VariantUnavailable, match="'tenas-lr2'") as err:
        factory(variant="tenas-lr2")
    assert isinstance(err.value, TypeError)
    with pytest.raises(TypeError):
        factory(channels=3)  # NB201's thin-net keyword is no Macro argument


def test_factory_protocol() -> None:
    bench = MacroBenchmark()
    assert isinstance(bench, Benchmark)
    assert (bench.name, bench.title, bench.datasets, bench.networks) == ("macro", "NAS-Bench-Macro", ("cifar10",),
                                                                        ("default",))
    factory = bench.factory(bench.parse("02012100"), "cifar10")
    assert (factory.input_shape, factory.num_classes) == ((3, 32, 32), 10)
    a, b = factory(), factory()
    assert a is not b and not torch.equal(a.classifier.weight, b.classifier.weight)
    for call in (lambda: bench.factory("02012100", "cifar100"), lambda: bench.factory("02012100", "cifar10", "naslib"),
                 lambda: bench.mutation_space("imagenet16")):
        with pytest.raises(BenchmarkError):
            call()


# ----------------------------------------------------------------------------- mutation


def test_mutation_changes_exactly_one_layer_uniformly() -> None:
    rng = np.random.default_rng(0)
    parent = MacroArch.from_string("02012100")
    outcomes = Counter()
    for _ in range(4800):
        child = mutate_one_layer(parent, rng)
        changed = [i for i, (a, b) in enumerate(zip(parent.ops, child.ops, strict=True)) if a != b]
        assert len(changed) == 1 and child.canonical != parent.canonical
        outcomes[changed[0], child.ops[changed[0]]] += 1
    assert len(outcomes) == 16  # 8 layers x the 2 other ops
    assert max(outcomes.values()) < 1.25 * 300 and min(outcomes.values()) > 0.75 * 300


def test_mutation_space(raw: dict) -> None:
    space = MacroBenchmark().mutation_space("cifar10")
    assert isinstance(space, MacroMutationSpace) and space.name == "macro"
    rng = np.random.default_rng(1)
    warmup = [space.warmup_child(rng) for _ in range(3000)]
    counts = Counter(op for arch in warmup for op in arch.ops)
    assert set(counts) == set(OPS) and min(counts.values()) > 0.3 * 8 * 3000 * 0.9
    for arch in warmup[:50]:
        spec = space.to_string(arch)
        assert space.from_string(spec) == arch
        metrics = space.metrics(arch)
        assert (metrics.params, metrics.flops) == (raw[spec]["params"], raw[spec]["flops"])
    # layers: stem + head + the layers that compute (the three stage-first projections at least)
    assert [space.metrics(MacroArch.from_string(s)).layers for s in ("00000000", "01000000", "22222222")] == [5, 6, 10]
