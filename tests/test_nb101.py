"""NAS-Bench-101 against the benchmark itself: the graph hash and parameter counts the official data publish,
parameter counts of all 500 cells of NASLib's sample, spec strings, pruning, channels, networks, the
mutation space, and the official TFRecord format on a miniature file written here in that format."""

from __future__ import annotations

import base64
import collections
import itertools
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_data
from torch import nn

import bench.benchmarks as registry
from bench.benchmarks.base import ArchSpecError, Benchmark, BenchmarkError
from bench.benchmarks.nb101 import NASLIB_OPS, Nb101Benchmark
from bench.tfrecord import TFRecordError, crc32c, decode_model_metrics, read_nb101
from proxies.base import VariantUnavailable
from proxies.cost import count_flops
from search.evolution import CallableFitness, EvolutionarySearch
from search.spaces.nb101 import (
    DISCONNECTED,
    OPS,
    CellSpecError,
    Nb101Cell,
    Nb101Factory,
    Nb101MutationSpace,
    Nb101Network,
    graph_hash,
    mutate_cell,
    nb101_flops,
    nb101_param_count,
    random_cell,
    vertex_channels,
)

C3, C1, MP = OPS

# Published facts about three cells (google-research/nasbench README and notebook; the first record of
# nasbench_only108.tfrecord, quoted with its hash in several projects' tests).
FIRST_RECORD = Nb101Cell.from_matrix(
    [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, MP, C3, C3, C1, "output"])
FIRST_RECORD_HASH, FIRST_RECORD_PARAMS = "00005c142e6f48ac74fdcf73e3439874", 8_555_530
INCEPTION = Nb101Cell.from_matrix(  # README's query, as the user writes it
    [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, C3, MP, "output"])
INCEPTION_STORED = Nb101Cell.from_matrix(  # ... and as the dataset returns it (module_adjacency/operations)
    [[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, C3, C3, "output"])
INCEPTION_PARAMS = 2_694_282
POOLS = Nb101Cell.from_matrix(
    [[0, 1, 0, 1, 0, 0, 0], [0, 0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", MP, C3, MP, C1, MP, "output"])
POOLS_PARAMS = 3_468_426
SKIP_ONLY = Nb101Cell.from_string("01.00|input,output")
DISCONNECTED_CELL = Nb101Cell.from_string("010.000.000|input,conv3x3-bn-relu,output")


@pytest.fixture(scope="module")
def sample_path() -> Path:
    return require_data("nb101/naslib_zc_nasbench101.json")


@pytest.fixture(scope="module")
def sample(sample_path: Path) -> list[tuple[Nb101Cell, dict]]:
    """(cell, entry) of NASLib's 500 cells, decoded here from the raw keys (not by the benchmark)."""
    raw = json.loads(sample_path.read_text())["nasbench101"]["cifar10"]
    out = []
    for key, entry in raw.items():
        values = [int(v) for v in key.strip("()").split(",")]
        out.append((Nb101Cell.from_matrix(np.reshape(values[:49], (7, 7)), [NASLIB_OPS[v] for v in values[49:]]),
                    entry))
    return out


# ----------------------------------------------------------------------------- published facts


def test_graph_hash_and_params_reproduce_the_official_first_record() -> None:
    assert FIRST_RECORD.graph_hash == FIRST_RECORD_HASH
    assert nb101_param_count(FIRST_RECORD) == FIRST_RECORD_PARAMS


def test_inception_cell_as_written_and_as_stored_are_one_network_with_the_published_params() -> None:
    assert INCEPTION.array.tolist() != INCEPTION_STORED.array.tolist()
    assert INCEPTION.graph_hash == INCEPTION_STORED.graph_hash
    assert nb101_param_count(INCEPTION) == nb101_param_count(INCEPTION_STORED) == INCEPTION_PARAMS
    assert nb101_param_count(POOLS) == POOLS_PARAMS


@pytest.mark.parametrize("cell", [FIRST_RECORD, INCEPTION, POOLS, SKIP_ONLY, DISCONNECTED_CELL])
def test_built_network_has_the_analytic_parameter_count(cell: Nb101Cell) -> None:
    with torch.device("meta"):
        net = Nb101Network(cell)
    assert sum(p.numel() for p in net.parameters()) == nb101_param_count(cell)


def test_params_of_every_sample_cell_equal_naslibs(sample: list[tuple[Nb101Cell, dict]]) -> None:
    assert len(sample) == 500
    differ = [(c.to_string(), nb101_param_count(c), e["params"]) for c, e in sample
              if nb101_param_count(c) != round(e["params"] * 1e6)]
    assert differ == []


def test_naslib_op_codes_are_settled_by_the_params(sample: list[tuple[Nb101Cell, dict]]) -> None:
    """Any other assignment of codes 2/3/4 to the three operations breaks the parameter counts."""
    for perm in itertools.permutations((MP, C1, C3)):
        if perm == (MP, C1, C3):
            continue
        swap = dict(zip((MP, C1, C3), perm, strict=True))
        wrong = 0
        for cell, entry in sample[:50]:
            ops = [swap.get(op, op) for op in cell.ops]
            wrong += nb101_param_count(Nb101Cell(cell.matrix, tuple(ops))) != round(entry["params"] * 1e6)
        assert wrong > 10, perm


def test_cells_sharing_a_hash_have_at_most_the_three_repeats_accuracies(sample) -> None:
    """NASLib queried one of the 3 repeats per cell: cells our hash calls one network show <= 3 values."""
    by_hash = collections.defaultdict(set)
    for cell, entry in sample:
        by_hash[cell.graph_hash].add(round(entry["val_accuracy"], 9))
    assert max(len(v) for v in by_hash.values()) <= 3
    assert sum(len(v) > 1 for v in by_hash.values()) > 10  # the check has teeth: many hashes recur


# ----------------------------------------------------------------------------- graph hash


def _relabelled(cell: Nb101Cell, order: tuple[int, ...]) -> Nb101Cell | None:
    """The cell with vertex ``order[i]`` moved to position i, if that keeps the matrix upper-triangular."""
    m = cell.array[np.ix_(order, order)]
    if np.tril(m).any():
        return None
    return Nb101Cell.from_matrix(m, [cell.ops[v] for v in order])


@pytest.mark.parametrize("cell", [FIRST_RECORD, INCEPTION, POOLS])
def test_every_topological_relabelling_keeps_the_hash(cell: Nb101Cell) -> None:
    variants = [_relabelled(cell, (0, *p, 6)) for p in itertools.permutations(range(1, 6))]
    variants = [v for v in variants if v is not None and v != cell]
    assert len(variants) >= 1
    assert {v.graph_hash for v in variants} == {cell.graph_hash}
    assert {nb101_param_count(v) for v in variants} == {nb101_param_count(cell)}


def test_hash_is_invariant_under_random_permutations_of_any_labelled_digraph() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        size = int(rng.integers(3, 9))
        m = rng.integers(2, size=(size, size))
        labels = rng.integers(5, size=size).tolist()
        perm = rng.permutation(size)
        assert graph_hash(m[np.ix_(perm, perm)], [labels[v] for v in perm]) == graph_hash(m, labels)


@pytest.mark.parametrize("m, a, b", [
    # a chain whose ops are reversed (a hash that ignores a vertex's own label would confuse them)
    ([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
     [-1, 1, 0, 0, -2], [-1, 0, 0, 1, -2]),
    # a skip over the first vertex: direction matters
    ([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [-1, 1, 0, -2], [-1, 0, 1, -2]),
    # out-neighbours and own label alone cannot tell these apart
    ([[0, 1, 1, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
      [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
     [-1, 1, 0, 0, 0, 0, -2], [-1, 0, 0, 0, 1, 0, -2]),
])
def test_non_isomorphic_graphs_hash_differently(m: list, a: list, b: list) -> None:
    assert graph_hash(np.array(m), a) != graph_hash(np.array(m), b)


def test_op_swap_makes_a_different_network() -> None:
    swapped = Nb101Cell(FIRST_RECORD.matrix, ("input", C1, MP, C3, C3, C3, "output"))
    assert swapped.graph_hash != FIRST_RECORD.graph_hash


# ----------------------------------------------------------------------------- spec strings and pruning


def test_spec_strings_round_trip(sample) -> None:
    for cell, _ in sample:
        text = cell.to_string()
        assert Nb101Cell.from_string(text) == cell
        assert Nb101Cell.from_string(text).to_string() == text
    assert SKIP_ONLY.to_string() == "01.00|input,output"


@pytest.mark.parametrize("text, fault", [
    ("0100110.0010000", "expected 'ROWS|OPS'"),
    ("01.00|input,output|x", "expected 'ROWS|OPS'"),
    ("0|input", "2 to 7 matrix rows"),
    ("01000000.00000000.0.0.0.0.0.0|input,output", "2 to 7 matrix rows"),
    ("011.001|input,conv3x3-bn-relu,output", "matrix row 0 '011' must be 2 digits"),
    ("012.001.000|input,conv3x3-bn-relu,output", "must be 3 digits 0/1"),
    ("011.001.000|input,output", "3 matrix rows need 3 comma-separated labels, found 2"),
    ("011.101.000|input,conv3x3-bn-relu,output", "not upper-triangular: edge 1->0"),
    ("011.011.000|input,conv3x3-bn-relu,output", "not upper-triangular: edge 1->1"),
    ("011.001.000|input,conv5x5,output", "unknown operation 'conv5x5'"),
    ("011.001.000|conv3x3-bn-relu,conv3x3-bn-relu,output", "must start with 'input' and end with 'output'"),
    ("011.001.000|input,conv3x3-bn-relu,conv1x1-bn-relu", "must start with 'input' and end with 'output'"),
    ("0111111.0011111.0001111.0000111.0000011.0000001.0000000|input," + ",".join([C3] * 5) + ",output",
     "21 edges after pruning; NB101 allows at most 9"),
])
def test_malformed_specs_are_rejected_naming_spec_and_fault(text: str, fault: str) -> None:
    with pytest.raises(CellSpecError) as err:
        Nb101Cell.from_string(text)
    message = str(err.value)
    assert fault in message and repr(text) in message and "\n" not in message
    with pytest.raises(ArchSpecError, match="NB101"):
        Nb101Benchmark().parse(text)


def test_more_than_nine_edges_before_pruning_is_fine_when_pruning_leaves_nine() -> None:
    # vertex 5 reaches nothing: its 5 in-edges and its op vanish in pruning
    text = "0110010.0001011.0001110.0000111.0000011.0000000.0000000|input," + ",".join([C3] * 5) + ",output"
    cell = Nb101Cell.from_string(text)
    assert int(cell.array.sum()) == 14 and cell.pruned is not None
    assert cell.pruned.num_vertices == 6 and cell.pruned.num_edges == 9
    assert cell.pruned.matrix.tolist() == [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 1], [0, 0, 0, 1, 1, 0],
                                           [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]


def test_pruning_drops_vertices_off_every_input_output_path() -> None:
    # 1 is fed by nothing, 3 feeds nothing: only input -> 2 -> output survives
    cell = Nb101Cell.from_string("00100.00101.00001.00000.00000|input,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,"
                                 "output")
    assert cell.pruned.ops == ("input", MP, "output")
    assert cell.pruned.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert cell.graph_hash == Nb101Cell.from_string("010.001.000|input,maxpool3x3,output").graph_hash


def test_disconnected_cell_is_degenerate_and_its_logits_ignore_the_input() -> None:
    bench = Nb101Benchmark()
    assert bench.is_degenerate(DISCONNECTED_CELL) and not bench.is_degenerate(SKIP_ONLY)
    assert DISCONNECTED_CELL.pruned is None and bench.isomorphism_id(DISCONNECTED_CELL) == DISCONNECTED
    net = Nb101Network(DISCONNECTED_CELL, stem_channels=8).eval()
    with torch.no_grad():
        a, b = net(torch.randn(2, 3, 32, 32)), net(torch.randn(2, 3, 32, 32))
    assert torch.equal(a, b) and torch.equal(a[0], net.classifier.bias)


# ----------------------------------------------------------------------------- channels and network


def test_vertex_channels_split_the_output_with_the_remainder_first_and_fill_backwards() -> None:
    # 0 -> 1 -> {2, 3}; 2, 3, 4 -> out; 0 -> 4: 128 = 43 + 43 + 42, vertex 1 takes max(43, 43)
    m = np.array([[0, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1],
                  [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]])
    assert vertex_channels(64, 128, m) == [64, 43, 43, 43, 42, 128]
    # 1 -> {2, 3} where 3 has the smaller share: 1 takes the larger, 3 sees it truncated
    m2 = np.array([[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    assert vertex_channels(128, 257, m2) == [128, 129, 129, 128, 257]
    assert vertex_channels(128, 256, np.array([[0, 1], [0, 0]])) == [128, 256]


def test_forward_shapes_and_truncated_edges() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for cell in (FIRST_RECORD, SKIP_ONLY):
        net = Nb101Network(cell, stem_channels=16)
        assert net(x).shape == (2, 10)
        assert net.forward_pre_gap(x).shape == (2, 64, 8, 8)
    # 0 -> 1 -> {2, 3} -> out with 17 channels: vertex 1 has 9, vertex 3 has 8 and reads 1 truncated
    cell = Nb101Cell.from_string("01000.00110.00001.00001.00000|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,"
                                 "output")
    out = Nb101Network(cell, stem_channels=17, num_stacks=1, cells_per_stack=1).forward_pre_gap(x)
    assert out.shape == (2, 17, 32, 32)


def test_full_network_forward_and_bn_settings() -> None:
    net = Nb101Network(INCEPTION)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum == pytest.approx(0.003) and m.eps == 1e-5 for m in bns)
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        assert net.forward_pre_gap(torch.randn(1, 3, 32, 32)).shape == (1, 512, 8, 8)


@pytest.mark.parametrize("cell", [FIRST_RECORD, POOLS, SKIP_ONLY])
def test_analytic_flops_equal_the_conv_count_of_the_built_network(cell: Nb101Cell) -> None:
    net = Nb101Network(cell, stem_channels=16)
    assert nb101_flops(cell, stem_channels=16) == count_flops(net, (3, 32, 32), "conv")


def test_factory_builds_fresh_networks_tenas_variants_and_refuses_no_reslink() -> None:
    factory = Nb101Benchmark().factory(FIRST_RECORD.to_string(), "cifar10")
    assert isinstance(factory, Nb101Factory)
    assert factory.input_shape == (3, 32, 32) and factory.num_classes == 10
    small = factory(stem_channels=8, cells_per_stack=1)
    assert small.classifier.in_features == 32
    with pytest.raises(VariantUnavailable, match="NAS-Bench-101 has no 'no-reslink' network"):
        factory(variant="no-reslink")
    # TE-NAS's NTK network: stem 16 (128 / 8), one cell per stack, so stacks of 16, 32, 64 channels
    ntk = factory(variant="tenas-ntk")
    assert len(ntk.cells) == 3 + 2 and ntk.classifier.in_features == 64
    assert sum(p.numel() for p in ntk.parameters()) == nb101_param_count(FIRST_RECORD, stem_channels=16,
                                                                         cells_per_stack=1)
    # its linear-region network: one cell, no stem, 1 input channel; vertices 2 and 5 feed the output, so 2
    # output channels and one channel at every interior vertex
    lr = factory(variant="tenas-lr")
    assert isinstance(lr.stem, nn.Identity) and len(lr.cells) == 1 and lr.classifier.in_features == 2
    assert lr.cells[0].channels[1:-1] == [1] * 5
    assert lr(torch.randn(4, 1, 3, 3)).shape == (4, 10)
    assert factory(variant="tenas-lr", stem_channels=5).classifier.in_features == 5  # overrides win
    with pytest.raises(BenchmarkError, match="no dataset 'cifar100'"):
        Nb101Benchmark().factory(FIRST_RECORD, "cifar100")


# ----------------------------------------------------------------------------- mutation space


def test_random_and_mutated_cells_are_valid_and_reproducible() -> None:
    space = Nb101MutationSpace()
    rng = np.random.default_rng(1)
    cells = [space.warmup_child(rng) for _ in range(20)]
    assert all(c.is_connected and c.pruned.num_edges <= 9 and len(c.ops) == 7 for c in cells)
    assert len({c.to_string() for c in cells}) == 20
    assert [c.to_string() for c in (random_cell(np.random.default_rng(1)) for _ in range(1))] == [cells[0].to_string()]
    changes = []
    for parent in cells:
        child = space.child(parent, rng)
        assert child.is_connected and child.pruned.num_edges <= 9
        changes.append(int((child.array != parent.array).sum()) + sum(a != b for a, b in
                                                                     zip(child.ops, parent.ops, strict=True)))
    assert 1 < np.mean(changes) < 7  # 3 edges and 1 op in expectation, re-drawn when invalid
    again = mutate_cell(cells[0], np.random.default_rng(7))
    assert again == mutate_cell(cells[0], np.random.default_rng(7))
    metrics = space.metrics(FIRST_RECORD)
    assert metrics.params == FIRST_RECORD_PARAMS and metrics.flops == nb101_flops(FIRST_RECORD)
    assert space.from_string(space.to_string(FIRST_RECORD)) == FIRST_RECORD


def test_evolutionary_search_runs_over_the_space() -> None:
    """The EA with a fitness of -params: the best found is a valid cell no worse than any warm-up cell."""
    fitness = CallableFitness(lambda cell: -nb101_param_count(cell), "minus params")
    result = EvolutionarySearch(Nb101MutationSpace(), fitness, population_size=20, max_iterations=150, seed=3,
                                progress=False).run()
    best = Nb101Cell.from_string(result.best)
    assert best.is_connected and result.best_score == -nb101_param_count(best)
    warmup = result.history["score"].iloc[:10]
    assert result.best_score >= warmup.max() and result.best_score > warmup.min()


# ----------------------------------------------------------------------------- ground truth: NASLib's sample


def test_sample_ground_truth_table(sample_path: Path, sample) -> None:
    bench = registry.get("nb101")
    assert isinstance(bench, Benchmark) and bench.title == "NAS-Bench-101" and bench.datasets == ("cifar10",)
    gt = bench.ground_truth(sample_path)
    assert gt.table.shape == (500, 3)
    assert list(gt.table.columns) == ["cifar10_valid", "params_cifar10_M", "flops_cifar10_M"]
    assert gt.key("cifar10") == "cifar10_valid" and gt.trials is None
    assert round(gt.table["cifar10_valid"].max(), 2) == 94.71
    assert list(gt.table.index) == [c.to_string() for c, _ in sample]
    assert bench.ground_truth(sample_path.parent.parent) is gt  # the data folder finds it; loaded once
    info = bench.info(gt)
    assert "500 cells" in info and "94.71" in info


def test_published_scores_are_naslibs_under_our_names(sample_path: Path, sample) -> None:
    published = Nb101Benchmark().published_scores("cifar10", sample_path)
    assert list(published.table.index) == [c.to_string() for c, _ in sample]
    assert "jacob_cov" in published.table and "jacov" not in published.table and "val_accuracy" not in published.table
    cell, entry = sample[17]
    assert published.table.at[cell.to_string(), "jacob_cov"] == entry["jacov"]
    assert published.table.at[cell.to_string(), "synflow"] == entry["synflow"]
    assert "NASLib" in published.citation and "batch" in published.protocol


def test_published_scores_read_naslibs_nonfinite_mark_as_nan_and_refuse_other_files(tmp_path: Path,
                                                                                     sample_path: Path) -> None:
    key, entry = next(iter(json.loads(sample_path.read_text())["nasbench101"]["cifar10"].items()))
    path = tmp_path / "naslib_zc_nasbench101.json"
    path.write_text(json.dumps({"nasbench101": {"cifar10": {key: {**entry, "synflow": -1e8, "snip": 2.5}}}}))
    table = Nb101Benchmark().published_scores("cifar10", path).table
    assert np.isnan(table["synflow"].iloc[0]) and table["snip"].iloc[0] == 2.5
    with pytest.raises(BenchmarkError, match="no dataset 'cifar100'"):
        Nb101Benchmark().published_scores("cifar100", path)
    official = tmp_path / "nasbench_only108.tfrecord"
    official.write_bytes(b"")
    with pytest.raises(BenchmarkError, match="holds no proxy scores"):
        Nb101Benchmark().published_scores("cifar10", official)


def test_missing_or_corrupt_ground_truth_is_one_line(tmp_path: Path) -> None:
    bench = Nb101Benchmark()
    with pytest.raises(BenchmarkError, match="no such file") as err:
        bench.ground_truth(tmp_path)
    assert "\n" not in str(err.value)
    bad = tmp_path / "naslib_zc_nasbench101.json"
    bad.write_text('{"nasbench101": {"cifar10": {"(0, 1)": {"val_accuracy": 90}}}}')
    with pytest.raises(BenchmarkError, match="expected a tuple of 49 matrix entries and 7 op codes"):
        bench.ground_truth(bad)
    bad.write_text("{not json")
    with pytest.raises(BenchmarkError, match="not a readable JSON file"):
        bench.ground_truth(bad)


# ----------------------------------------------------------------------------- the official TFRecord format


def _crc32c_bitwise(data: bytes) -> int:
    """CRC-32C bit by bit (RFC 3720), independent of the table-driven reader."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = _crc32c_bitwise(data)
    return struct.pack("<I", ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF)


def _tfrecord(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return length + _masked(length) + payload + _masked(payload)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, wire: int, body: bytes) -> bytes:
    return _varint(number << 3 | wire) + (_varint(len(body)) + body if wire == 2 else body)


def _model_metrics(params: int, finals: tuple[float, float, float]) -> bytes:
    """A ``ModelMetrics`` with evaluations at epochs 0, 54, 108 (the last with ``finals`` = train, valid,
    test accuracy), an unknown field the reader must skip, the parameter count and the total time."""
    message = b""
    for epoch, (train, valid, test) in ((0, (0.1, 0.1, 0.1)), (54, (0.7, 0.6, 0.6)), (108, finals)):
        evaluation = b"".join(_field(n, 1, struct.pack("<d", v))
                              for n, v in ((1, epoch), (2, 10.0 * epoch), (3, train), (4, valid), (5, test)))
        evaluation += _field(6, 2, f"/ckpt/model.ckpt-{epoch}".encode()) + _field(9, 0, _varint(300))
        message += _field(1, 2, evaluation)
    return message + _field(2, 0, _varint(params)) + _field(3, 1, struct.pack("<d", 1234.5))


def _nb101_record(cell: Nb101Cell, module_hash: str, epochs: int, params: int, finals) -> bytes:
    raw_adjacency = "".join(str(v) for row in cell.matrix for v in row)
    payload = [module_hash, epochs, raw_adjacency, ",".join(cell.ops),
               base64.b64encode(_model_metrics(params, finals)).decode()]
    return _tfrecord(json.dumps(payload).encode())


RUNS = {  # (valid, test) of three repeats
    FIRST_RECORD: [(0.9264, 0.9206), (0.9241, 0.9211), (0.9290, 0.9198)],
    INCEPTION_STORED: [(0.9376, 0.9311), (0.9350, 0.9300), (0.9400, 0.9320)],
}


@pytest.fixture
def miniature(tmp_path: Path) -> tuple[Path, list[int]]:
    """Two cells x 3 repeats at 108 epochs, plus a 36-epoch record to skip; returns the record offsets."""
    records = []
    for cell, params in ((FIRST_RECORD, FIRST_RECORD_PARAMS), (INCEPTION_STORED, INCEPTION_PARAMS)):
        runs = [_nb101_record(cell, cell.graph_hash, 108, params, (1.0, valid, test)) for valid, test in RUNS[cell]]
        records += [runs[0], _nb101_record(cell, cell.graph_hash, 36, params, (0.5, 0.5, 0.5)), *runs[1:]]
    path = tmp_path / "nasbench_only108.tfrecord"
    path.write_bytes(b"".join(records))
    offsets = np.cumsum([0] + [len(r) for r in records])[:-1].tolist()
    return path, offsets


def test_crc32c_known_answer() -> None:
    data = np.frombuffer(b"123456789" + b"\x00" * 32, dtype=np.uint8)
    assert crc32c(data, [0, 9, 0], [9, 32, 0]).tolist() == [0xE3069283, 0x8A9136AA, 0]
    assert _crc32c_bitwise(b"123456789") == 0xE3069283


def test_protobuf_decoder_reads_params_times_and_every_evaluation() -> None:
    params, total, evaluations = decode_model_metrics(_model_metrics(42, (1.0, 0.93, 0.92)))
    assert (params, total, len(evaluations)) == (42, 1234.5, 3)
    assert evaluations[-1].current_epoch == 108 and evaluations[-1].training_time == 1080.0
    assert (evaluations[-1].validation_accuracy, evaluations[-1].test_accuracy) == (0.93, 0.92)
    assert decode_model_metrics(b"") == (0, 0.0, ())


def test_miniature_official_file_reads_into_the_ground_truth(miniature) -> None:
    path, _ = miniature
    records = list(read_nb101(path))
    assert [r.epochs for r in records] == [108, 36, 108, 108, 108, 36, 108, 108]
    assert records[0].module_hash == FIRST_RECORD_HASH and records[0].matrix == FIRST_RECORD.matrix
    gt = Nb101Benchmark().ground_truth(path)
    assert list(gt.table.index) == [FIRST_RECORD.to_string(), INCEPTION_STORED.to_string()]
    assert list(gt.table.columns) == ["cifar10_valid", "cifar10_test", "params_cifar10_M"]
    for cell, runs in RUNS.items():
        row = gt.table.loc[cell.to_string()]
        assert row["cifar10_valid"] == pytest.approx(100 * np.mean([v for v, _ in runs]))
        assert row["cifar10_test"] == pytest.approx(100 * np.mean([t for _, t in runs]))
        assert row["params_cifar10_M"] * 1e6 == pytest.approx(nb101_param_count(cell))
    trials = gt.trials
    assert len(trials) == 12 and set(trials["key"]) == {"cifar10_valid", "cifar10_test"}
    first_valid = trials[(trials["arch"] == FIRST_RECORD.to_string()) & (trials["key"] == "cifar10_valid")]
    assert first_valid["accuracy"].tolist() == pytest.approx([100 * v for v, _ in RUNS[FIRST_RECORD]])
    assert first_valid["trial"].tolist() == [0, 1, 2]
    info = Nb101Benchmark().info(gt)
    assert "2 cells" in info and "cifar10_test" in info and "3 repeats of 2 cells" in info
    assert Nb101Benchmark().isomorphism_id(Nb101Benchmark().parse(gt.table.index[0])) == FIRST_RECORD_HASH


@pytest.mark.parametrize("where, fault", [("payload", "CRC of its payload"), ("length", "CRC of its length"),
                                          ("huge length", "CRC of its length"), ("truncate", "truncated TFRecord")])
def test_corrupt_official_file_names_file_and_record_offset(miniature, where: str, fault: str) -> None:
    path, offsets = miniature
    data = bytearray(path.read_bytes())
    if where == "payload":
        data[offsets[2] + 40] ^= 0x01
    elif where == "length":
        data[offsets[2]] ^= 0x01
    elif where == "huge length":
        data[offsets[2] + 7] = 0xFF
    else:
        data = data[:offsets[2] + 30]
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError) as err:
        list(read_nb101(path))
    message = str(err.value)
    assert str(path) in message and f"byte offset {offsets[2]} (record 2)" in message and fault in message
    with pytest.raises(BenchmarkError, match=f"byte offset {offsets[2]}"):
        Nb101Benchmark().ground_truth(path)


def test_a_valid_tfrecord_that_is_not_nb101_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.tfrecord"
    path.write_bytes(_tfrecord(b'{"a": 1}'))
    with pytest.raises(TFRecordError, match="record at byte offset 0 is not a NAS-Bench-101 record"):
        list(read_nb101(path))
