"""Ground truth: the compact table, the official file through nas_201_api (a miniature written in the
API's own format), export between them, lookup order and one-line errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _gt_official import META_ARCHS, write_miniature

from bench.ground_truth import (
    ACCURACY_COLUMNS,
    COLUMNS,
    OFFICIAL_FILES,
    TRIALS_NAME,
    GroundTruth,
    GroundTruthError,
    column_name,
    export_csv,
)
from search.spaces.nb201 import ArchStringError, Nb201Arch, nb201_param_count

INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def gt(nb201_csv: Path) -> GroundTruth:
    return GroundTruth.from_csv(nb201_csv)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory):
    return write_miniature(tmp_path_factory.mktemp("official") / OFFICIAL_FILES[0])


@pytest.fixture(scope="module")
def mini_gt(mini) -> GroundTruth:
    return GroundTruth.from_official(mini.path, progress=False)


def one_line_error(exc_info: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# ----------------------------------------------------------------------------- compact table


def test_csv_matches_the_published_facts(gt: GroundTruth, nb201_csv: Path) -> None:
    assert len(gt) == 15_625 and gt.source == str(nb201_csv.absolute())
    assert list(gt.table.columns) == list(COLUMNS)
    assert gt.table.index.name == "index" and len(gt.evaluated) == 15_625
    assert gt.table.at[0, "arch_str"] == INDEX0 and gt.accuracy(0) == pytest.approx(85.863333)
    # the published optima (data README)
    for column, best in [("cifar10_test", 94.3733), ("cifar100_test", 73.5133), ("imagenet16_test", 47.3111),
                         ("cifar10_valid", 91.6067)]:
        assert gt.table[column].max() == pytest.approx(best, abs=1e-4)
    # cells that never connect input to output sit at chance on every dataset
    disconnected = [i for i in range(len(gt)) if not gt.arch(i).is_connected]
    assert len(disconnected) > 0
    for ds, chance in [("cifar10", 10.0), ("cifar100", 1.0), ("imagenet16", 0.83)]:
        assert np.allclose(gt.accuracies(disconnected, ds), chance, atol=0.01)


def test_column_names() -> None:
    assert column_name() == "cifar10_test"
    assert column_name("cifar10", "valid") == "cifar10_valid"
    assert column_name("cifar100", "test", 12) == "hp12_cifar100_test"
    assert column_name("ImageNet16-120", "valid", "200") == "imagenet16_valid"
    assert {column_name(d, s, h) for d in ("cifar10", "cifar100", "imagenet16") for s in ("valid", "test")
            for h in ("200", "12")} == set(ACCURACY_COLUMNS)
    for bad in [dict(dataset="mnist"), dict(split="train"), dict(hp=90)]:
        with pytest.raises(GroundTruthError) as err:
            column_name(**bad)
        one_line_error(err, "expected one of")


def test_queries_accept_index_string_arch_and_tuple(gt: GroundTruth) -> None:
    arch = Nb201Arch.from_string(INDEX0)
    for key in (0, np.int64(0), INDEX0, arch, arch.to_indices()):
        assert gt.accuracy(key, "cifar100", "valid") == gt.table.at[0, "cifar100_valid"]
        assert gt.params(key, "imagenet16") == gt.table.at[0, "params_imagenet16_M"]
        assert gt.flops(key, "cifar100") == gt.table.at[0, "flops_cifar100_M"]
    assert gt.accuracy(0, "cifar10", "test", hp=12) == gt.table.at[0, "hp12_cifar10_test"]
    assert gt.params(123, "cifar100") == pytest.approx(nb201_param_count(gt.arch(123), 100) / 1e6, abs=1e-6)
    idx = [15_624, 0, 7, 7]
    assert gt.accuracies(idx, "imagenet16", "test").tolist() == gt.table["imagenet16_test"].iloc[idx].tolist()
    assert gt.accuracies([], "cifar10").shape == (0,)


def test_index_and_arch_round_trip_over_the_whole_space(gt: GroundTruth) -> None:
    assert all(gt.index(gt.arch(i)) == i for i in range(len(gt)))
    assert gt.index(gt.arch(4321).to_indices()) == 4321


def test_bad_queries_are_one_line_errors(gt: GroundTruth) -> None:
    for bad in (15_625, -1, True, 3.0):
        with pytest.raises(GroundTruthError) as err:
            gt.accuracy(bad)
        one_line_error(err, "NB201 index")  # out of range, or not an index at all
    with pytest.raises(GroundTruthError) as err:
        gt.accuracies([0, 20_000])
    one_line_error(err, "20000")
    with pytest.raises(ArchStringError):
        gt.index("|nor_conv_3x3~0|+|bogus~0|")


def test_sample_is_seeded_distinct_and_nested(gt: GroundTruth) -> None:
    a = gt.sample(1000, seed=3)
    assert a == gt.sample(1000, seed=3)
    assert len(set(a)) == 1000 and all(0 <= i < 15_625 for i in a)
    assert gt.sample(100, seed=3) == a[:100]  # a larger sample extends a smaller one
    assert gt.sample(1000, seed=4) != a
    assert a != sorted(a)  # drawn order, documented
    assert gt.sample(None, seed=0) == list(range(15_625))
    assert sorted(gt.sample(15_625, seed=1)) == list(range(15_625))
    assert gt.sample(0, seed=0) == []
    for bad in (15_626, -1, 2.5):
        with pytest.raises(GroundTruthError) as err:
            gt.sample(bad, seed=0)
        one_line_error(err)


def test_trials_next_to_the_csv(gt: GroundTruth) -> None:
    trials = gt.trials()
    assert list(trials.columns) == ["index", "trial", "cifar10_test_v11"]
    counts = trials.groupby("index").size()
    assert counts.value_counts().to_dict() == {1: 2225, 2: 5439, 3: 7961}  # the v1.1 file's history
    # where v1.1 trained three seeds, their mean is the table's cifar10_test
    three = counts.index[counts == 3]
    mean = trials.groupby("index")["cifar10_test_v11"].mean().loc[three]
    assert np.allclose(mean.to_numpy(), gt.accuracies(three.to_numpy()), atol=1e-3)


def test_summary(gt: GroundTruth) -> None:
    s = gt.summary()
    assert (s.num_archs, s.num_evaluated, s.num_canonical) == (15_625, 15_625, 6_466)
    assert s.num_disconnected == int((gt.table["cifar10_test"] == 10.0).sum())
    best_index, best = s.optima["cifar10_test"]
    assert best == gt.table["cifar10_test"].max() and gt.accuracy(best_index) == best
    assert set(s.optima) == set(ACCURACY_COLUMNS[:6]) and s.num_trials == len(gt.trials())


# ----------------------------------------------------------------------------- broken tables


def _broken_tables(text: str) -> dict[str, str]:
    lines = text.splitlines(keepends=True)
    header = lines[0]
    return {
        "truncated mid-line": text[: len(text) // 2],
        "truncated at a line": "".join(lines[:5000]),
        "missing column": "".join(",".join(line.split(",")[:-1]) + "\n" for line in lines),
        "not numeric": header + lines[1].replace("85.863333", "eighty") + "".join(lines[2:]),
        "bad arch": header + lines[1].replace("avg_pool_3x3~0", "max_pool_3x3~0") + "".join(lines[2:]),
        "duplicate arch": header + lines[1] + lines[1].replace("0,|", "1,|", 1) + "".join(lines[3:]),
        "no index": "\n".join(line.split(",", 1)[1] for line in lines),
    }


def test_broken_tables_give_one_line_errors_naming_the_file(nb201_csv: Path, tmp_path: Path) -> None:
    text = nb201_csv.read_text()
    for name, broken in _broken_tables(text).items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        path.write_text(broken)
        with pytest.raises(GroundTruthError) as err:
            GroundTruth.from_csv(path)
        one_line_error(err, str(path))
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(os.urandom(4096) + b"\n")
    with pytest.raises(GroundTruthError) as err:
        GroundTruth.load(garbage)
    one_line_error(err, str(garbage))
    for missing in (tmp_path / "absent.csv", tmp_path / "absent.pth", tmp_path / "absent.txt"):
        with pytest.raises(GroundTruthError) as err:
            GroundTruth.load(missing)
        one_line_error(err, str(missing))
    with pytest.raises(GroundTruthError) as err:
        GroundTruth.load(tmp_path)  # a folder without nb201/nb201.csv
    one_line_error(err, str(tmp_path), "nb201/nb201.csv")


# ----------------------------------------------------------------------------- lookup order


def test_lookup_order(nb201_csv: Path, mini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    (data / "nb201").mkdir(parents=True)
    (data / "nb201" / "nb201.csv").symlink_to(nb201_csv.resolve())
    monkeypatch.setenv("ZENBENCH_DATA", str(data))
    monkeypatch.setenv("TORCH_HOME", str(mini.path.parent))
    assert GroundTruth.load().source == str(data / "nb201" / "nb201.csv")  # env before TORCH_HOME
    assert GroundTruth.load(mini.path, progress=False).source == str(mini.path)  # explicit first
    assert GroundTruth.load(data).source == str(data / "nb201" / "nb201.csv")  # a data folder
    monkeypatch.delenv("ZENBENCH_DATA")
    assert GroundTruth.load(progress=False).source == str(mini.path)  # official file under $TORCH_HOME
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(GroundTruthError) as err:
        GroundTruth.load()
    one_line_error(err, OFFICIAL_FILES[0], str(tmp_path / "empty"), "ZENBENCH_DATA", "--ground-truth")


# ----------------------------------------------------------------------------- official file


def test_miniature_file_needs_the_legacy_loader(mini) -> None:
    """The premise: the file holds pickled objects current torch refuses by default."""
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        torch.load(mini.path, weights_only=True)


def test_official_file_gives_the_numbers_it_holds(mini, mini_gt: GroundTruth) -> None:
    original_load = torch.load
    gt = GroundTruth.from_official(mini.path, progress=False)
    assert torch.load is original_load  # the weights_only patch is scoped
    assert len(gt) == 15_625 and gt.source == str(mini.path)
    assert gt.evaluated.tolist() == sorted(mini.expected)
    assert gt.table["arch_str"].tolist() == META_ARCHS
    for index, expected in mini.expected.items():
        for column in COLUMNS[1:]:
            if column in expected:
                assert gt.table.at[index, column] == pytest.approx(expected[column], abs=1e-9), (index, column)
            else:
                assert math.isnan(gt.table.at[index, column]), (index, column)
    # the columns a mix-up of splits would swap really differ
    row = mini.expected[6]
    assert len({row["cifar10_valid"], row["cifar10_test"], row["cifar100_valid"], row["cifar100_test"]}) == 4
    assert gt.accuracy(META_ARCHS[15000], "cifar100", "valid") == pytest.approx(mini.expected[15000]["cifar100_valid"])
    assert gt.params(6, "imagenet16") == pytest.approx(mini.expected[6]["params_imagenet16_M"])
    assert gt.flops(15000, "cifar10") == pytest.approx(mini.expected[15000]["flops_cifar10_M"])
    trials = gt.trials()
    assert list(trials.itertuples(index=False, name=None)) == mini.trials


def test_official_file_missing_results_are_errors_not_nan(mini_gt: GroundTruth) -> None:
    with pytest.raises(GroundTruthError) as err:
        mini_gt.accuracy(5)  # not evaluated
    one_line_error(err, "cifar10_test", "index 5")
    with pytest.raises(GroundTruthError) as err:
        mini_gt.accuracy(900, "cifar100", "test", hp="12")  # trained 12 epochs on cifar10-valid only
    one_line_error(err, "hp12_cifar100_test")
    assert sorted(mini_gt.sample(3, seed=0)) == [6, 900, 15000]
    with pytest.raises(GroundTruthError) as err:
        mini_gt.sample(4, seed=0)
    one_line_error(err, "3 evaluated")


def test_broken_official_files(tmp_path: Path) -> None:
    cases = {
        "garbage.pth": lambda p: p.write_bytes(os.urandom(2048)),
        "list.pth": lambda p: torch.save([1, 2, 3], p),
        "no_keys.pth": lambda p: torch.save({"meta_archs": []}, p),
        "few_archs.pth": lambda p: torch.save({"meta_archs": ["x"], "arch2infos": {}, "evaluated_indexes": []}, p),
        "nothing_evaluated.pth": lambda p: torch.save(
            {"meta_archs": META_ARCHS, "arch2infos": {}, "evaluated_indexes": []}, p),
    }
    for name, write in cases.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(GroundTruthError) as err:
            GroundTruth.from_official(path, progress=False)
        one_line_error(err, str(path))
    with pytest.raises(GroundTruthError) as err:
        GroundTruth.from_official(tmp_path / "absent.pth")
    one_line_error(err, "absent.pth")


# ----------------------------------------------------------------------------- export


def test_export_round_trips_through_the_csv_backend(mini, mini_gt: GroundTruth, tmp_path: Path) -> None:
    target = tmp_path / "nb201.csv"
    export_csv(mini.path, target, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["nb201.csv", TRIALS_NAME])  # no partial files
    back = GroundTruth.load(target)
    assert back.source == str(target)
    pd.testing.assert_frame_equal(back.table, mini_gt.table, check_exact=False, atol=1e-6, rtol=0)
    pd.testing.assert_frame_equal(back.trials(), mini_gt.trials(), check_exact=False, atol=1e-4, rtol=0)
    assert back.accuracy(6, "imagenet16", "test") == pytest.approx(mini.expected[6]["imagenet16_test"], abs=1e-6)


def test_export_checks_the_target_before_the_long_load(mini, tmp_path: Path) -> None:
    for target in (tmp_path / "table.txt", tmp_path / "absent" / "nb201.csv"):
        with pytest.raises(GroundTruthError) as err:
            export_csv(tmp_path / "absent.pth", target)  # the target is checked first
        one_line_error(err, str(target))


def test_an_empty_table_is_called_empty_not_truncated(tmp_path: Path) -> None:
    """Issue 11 bug 6."""
    for content in (b"", b"\n \n"):
        path = tmp_path / "empty.csv"
        path.write_bytes(content)
        with pytest.raises(GroundTruthError, match="NB201 table is empty") as info:
            GroundTruth.from_csv(path)
        assert "truncated" not in str(info.value)


@pytest.mark.parametrize("spec", ["-1", "15625", "+99999"])
def test_an_index_out_of_range_is_called_so(nb201_csv: Path, spec: str) -> None:
    """Issue 11 bug 6: ``--arch -1`` was reported as a malformed architecture string."""
    from bench import benchmarks
    from bench.benchmarks.base import ArchSpecError

    nb201 = benchmarks.get("nb201")
    nb201.ground_truth(nb201_csv)
    with pytest.raises(ArchSpecError, match=r"NB201 index .* is not in .*\(0\.\.15624\)") as info:
        nb201.parse(spec)
    assert "malformed" not in str(info.value)
