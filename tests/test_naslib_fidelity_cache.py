"""The NASLib fidelity script's score cache (scripts/bench_naslib_fidelity.py): keyed by NB201 codes."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_naslib_fidelity.py"
STRING = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("bench_naslib_fidelity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("with_key", [False, True])
def test_an_older_cache_keyed_by_strings_is_rewritten_by_code(script, tmp_path: Path, with_key: bool) -> None:
    header = ["dataset", "network", "batch_size", "seed", "proxy", "option_hash", *(["key"] if with_key else []),
              "arch", "value", "seconds", "batch_source", "device"]
    row = ["cifar10", "default", "32", "0", "synflow", "3a00052286f8", *(["(0, 1, 2, 3, 4, 0)"] if with_key else []),
           STRING, "42.5", "0.05", "none", "cpu"]
    path = tmp_path / "cache.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, row])
    cache = script.ScoreCache(path)
    cache.close()
    assert [r["arch_code"] for r in cache.rows] == ["301423"]  # none 0, skip 1, 1x1 2, 3x3 3, pool 4
    text = path.read_text()
    assert "~" not in text and text.splitlines()[0].split(",") == list(script.FIELDS)
    assert script.ScoreCache(path).rows == cache.rows  # the rewritten file reads back the same


def test_a_foreign_csv_is_refused(script, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="not a cache of this script"):
        script.ScoreCache(path)


def test_parameter_counts_are_kept_in_memory_and_dropped_from_an_older_file(script, tmp_path: Path) -> None:
    """params equals the benchmark's published column exactly: the cache file never holds a copy of it."""
    path = tmp_path / "cache.csv"
    row = dict(dataset="cifar10", network="default", batch_size=32, seed=0, proxy="params", option_hash="h",
               arch_code="301423", value=1.5, seconds=0.001, batch_source="none", device="cpu")
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, script.FIELDS)
        writer.writeheader()
        writer.writerows([row, {**row, "proxy": "synflow"}])
    cache = script.ScoreCache(path)
    assert [r["proxy"] for r in cache.rows] == ["synflow"]
    cache.add({**row, "arch_code": "000000"})
    cache.close()
    assert [r["proxy"] for r in cache.rows] == ["synflow", "params"]  # this run still has it
    assert [r["proxy"] for r in script.ScoreCache(path).rows] == ["synflow"]  # the file does not
