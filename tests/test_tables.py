"""Score tables (bench.tables: export, import, --resume-from, report --table) and deduplicated runs (--dedupe)."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from _data_files import random_images, write_pickle

from bench import benchmarks
from bench.benchmarks.base import BenchmarkError, GroundTruthTable
from bench.cli import main
from bench.runner import run_benchmark
from bench.store import MergeConflictError, ResultStore
from bench.tables import TableError, export_table, import_table, read_table, sidecar_path
from proxies import Batch, NetworkFactory, Proxy, register

KEY = ["benchmark", "network", "arch", "dataset", "proxy", "option_hash", "seed"]


@register
@dataclass
class TableProbe(Proxy):
    """Log of the summed |weights| of a small NB201 variant, with a component; NaN when the cell is disconnected,
    +inf when ``inf_on`` is the spec (so every kind of value crosses the table)."""

    name: ClassVar[str] = "test_tables_probe"
    scale: float = 1.0
    inf_on: str = ""

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        if factory.arch.to_string() == self.inf_on:
            return {"value": math.inf, "probe.part": 1.0}
        if not factory.arch.is_connected:
            return {"value": math.nan, "probe.part": 0.0}
        net = factory(channels=4, cells_per_stage=1)
        total = sum(float(p.detach().abs().sum()) for p in net.parameters())
        return {"value": self.scale * math.log(total), "probe.part": total / 7.0}


@pytest.fixture(scope="module")
def gt(nb201_csv) -> GroundTruthTable:
    return benchmarks.get("nb201").ground_truth(nb201_csv)


def _run(store, gt, **kwargs):
    options = dict(sample=30, seed=0, device="cpu", ground_truth=gt, data_source="noise", progress=False)
    options.update(kwargs)
    return run_benchmark(store, options.pop("proxies", ["test_tables_probe", "params"]), **options)


def _frame(path) -> pd.DataFrame:
    with ResultStore(path, create=False) as store:
        return store.scores().set_index(KEY).sort_index()


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every stored field equal, except ``created`` and the rounded measurements (to their rounding)."""
    assert a.index.equals(b.index)
    for column in a.columns:
        if column == "created":
            continue
        if column in ("seconds", "peak_memory_mb", "load_avg"):
            pd.testing.assert_series_equal(a[column], b[column], atol=0.006, check_dtype=False)
            continue
        left, right = a[column].tolist(), b[column].tolist()
        same = [(x == y) or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
                for x, y in zip(left, right, strict=True)]
        assert all(same), (column, [(x, y) for x, y, s in zip(left, right, same, strict=True) if not s][:3])


def test_a_table_round_trips_every_score_bit_for_bit(tmp_path, gt):
    spec = gt.sample(30, 0)[3]
    store = tmp_path / "a.db"
    _run(store, gt, proxies=[TableProbe(inf_on=spec), TableProbe(scale=2.0), "params"], init_seeds=[0, 1])
    _run(store, gt, proxies=["test_tables_probe"], sample=40)  # a protocol with more architectures than others
    summary = export_table(store, tmp_path / "t.csv.gz")
    assert (summary.n_archs, summary.n_protocols) == (40, 7)
    wide = pd.read_csv(tmp_path / "t.csv.gz")
    assert len(wide) == 40 and wide["arch"].is_unique
    meta = json.loads(sidecar_path(tmp_path / "t.csv.gz").read_text())
    assert set(meta["columns"]) == {"params#0", "params#1", "test_tables_probe[inf_on=,scale=1.0]#0",
                                    "test_tables_probe[inf_on=,scale=2.0]#0", "test_tables_probe[inf_on=,scale=2.0]#1",
                                    f"test_tables_probe[inf_on={spec},scale=1.0]#0",
                                    f"test_tables_probe[inf_on={spec},scale=1.0]#1"}
    assert meta["columns"]["params#0"]["constant"]["device"] == "cpu"
    assert len(meta["runs"]) == 2
    added = import_table(tmp_path / "t.csv.gz", tmp_path / "b.db").added
    original, copy = _frame(store), _frame(tmp_path / "b.db")
    assert added == len(original) == 30 * 6 + 40
    assert copy["value"].isna().any() and (copy["value"] == math.inf).any()
    _same_rows(original, copy)
    assert import_table(tmp_path / "t.csv.gz", tmp_path / "b.db").added == 0  # a second import adds nothing
    with ResultStore(tmp_path / "b.db") as results:
        assert len(results.runs()) == 2


def test_resume_from_a_table_computes_only_what_it_lacks(tmp_path, gt):
    _run(tmp_path / "first.db", gt, sample=12)
    export_table(tmp_path / "first.db", tmp_path / "part.csv.gz")
    summary = _run(tmp_path / "fresh.db", gt, sample=20, resume_from=[tmp_path / "part.csv.gz"])
    assert (summary.n_already, summary.n_computed) == (24, 16)
    assert "--resume-from" in summary.command
    whole = _run(tmp_path / "whole.db", gt, sample=20)
    assert whole.n_computed == 40
    pd.testing.assert_series_equal(_frame(tmp_path / "fresh.db")["value"], _frame(tmp_path / "whole.db")["value"])


def test_import_refuses_a_table_that_disagrees_with_the_store(tmp_path, gt):
    _run(tmp_path / "a.db", gt, sample=5)
    export_table(tmp_path / "a.db", tmp_path / "t.csv.gz")
    table = pd.read_csv(tmp_path / "t.csv.gz", dtype={"arch": str})
    table.loc[table["test_tables_probe"].notna().idxmax(), "test_tables_probe"] += 1.0
    table.to_csv(tmp_path / "t.csv.gz", index=False)
    with pytest.raises(MergeConflictError, match=r"t\.csv\.gz has value .*test_tables_probe"):
        import_table(tmp_path / "t.csv.gz", tmp_path / "a.db")


def test_a_report_renders_from_tables_alone(tmp_path, gt, nb201_csv, capsys):
    _run(tmp_path / "a.db", gt, sample=25)
    assert main(["export", "--store", str(tmp_path / "a.db"), "--out", str(tmp_path / "t.csv.gz")]) == 0
    assert main(["report", "--table", str(tmp_path / "t.csv.gz"), "--out", str(tmp_path / "from_table"),
                 "--ground-truth", str(nb201_csv)]) == 0
    assert main(["report", "--store", str(tmp_path / "a.db"), "--out", str(tmp_path / "from_store"),
                 "--ground-truth", str(nb201_csv)]) == 0
    from_table = pd.read_csv(tmp_path / "from_table" / "correlations.csv")
    from_store = pd.read_csv(tmp_path / "from_store" / "correlations.csv")
    columns = ["label", "n", "kendall_tau", "spearman_rho"]
    pd.testing.assert_frame_equal(from_table[columns], from_store[columns])
    readme = (tmp_path / "from_table" / "README.md").read_text()
    assert f"--table {tmp_path / 't.csv.gz'}" in readme


@pytest.mark.parametrize("damage, message", [
    ("no sidecar", "does not exist"),
    ("bad json", "not readable JSON"),
    ("other format", "not a zenbench score table"),
    ("missing column", "missing"),
    ("not gzip", "not a readable CSV"),
])
def test_a_damaged_table_is_one_clear_error(tmp_path, gt, capsys, damage, message):
    _run(tmp_path / "a.db", gt, sample=4)
    table = tmp_path / "t.csv.gz"
    export_table(tmp_path / "a.db", table)
    sidecar = sidecar_path(table)
    if damage == "no sidecar":
        sidecar.unlink()
    elif damage == "bad json":
        sidecar.write_text("{not json")
    elif damage == "other format":
        sidecar.write_text(json.dumps({"format": "something else"}))
    elif damage == "missing column":
        pd.read_csv(table, dtype={"arch": str}).drop(columns=["params.seconds"]).to_csv(table, index=False)
    else:
        table.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(TableError, match=message):
        read_table(table)
    assert main(["bench", "--proxies", "params", "--sample", "4", "--resume-from", str(table),
                 "--store", str(tmp_path / "b.db"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zenbench: error: ") and len(err.splitlines()) == 1 and message in err


def test_a_table_name_must_say_csv(tmp_path):
    with pytest.raises(TableError, match=r"\.csv\.gz"):
        sidecar_path(tmp_path / "t.parquet")
    with gzip.open(tmp_path / "x.csv.gz", "wt") as f:
        f.write("arch\n")
    assert sidecar_path(tmp_path / "x.csv.gz").name == "x.json"


# ----------------------------------------------------------------------------- --dedupe


class PairedToy:
    """The test's toy benchmark whose architectures "ab" and "ba" are declared one isomorphism class, of
    identical networks (or, with ``isomorphism="functional"``, of one function through different networks)."""

    def __new__(cls, isomorphism: str = "identical"):
        from _toy_benchmark import ToyBenchmark

        class Paired(ToyBenchmark):
            name = "toy_paired"

            def isomorphism_id(self, arch: str) -> str:
                return "".join(sorted(arch))

        bench = Paired()
        bench.isomorphism = isomorphism
        return bench


@register
@dataclass
class ToyWeights(Proxy):
    """Sum of the toy network's |weights| (data-free, seeded)."""

    name: ClassVar[str] = "test_tables_toy_weights"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return sum(float(p.detach().abs().sum()) for p in factory().parameters())


def test_dedupe_scores_each_class_once_and_marks_the_copies(tmp_path):
    bench = PairedToy()
    store = tmp_path / "d.db"
    summary = run_benchmark(store, ["test_tables_toy_weights", "params"], benchmark=bench, device="cpu",
                            dedupe=True, progress=False)
    classes = {bench.isomorphism_id(s) for s in bench.ground_truth().table.index}
    assert (summary.n_computed, summary.n_copied) == (2 * len(classes), 2 * (16 - len(classes)))
    rows = _frame(store).reset_index()
    assert len(rows) == 32
    copied = rows[rows["copied_from"].notna()]
    by_key = rows.set_index(["proxy", "arch"])
    for _, row in copied.iterrows():
        source = by_key.loc[(row["proxy"], row["copied_from"])]
        assert bench.isomorphism_id(row["copied_from"]) == bench.isomorphism_id(row["arch"])
        assert row["copied_from"] != row["arch"] and pd.isna(source["copied_from"])
        assert (row["value"], row["components"]) == (source["value"], source["components"])
    # the scored members hold exactly what a run without --dedupe computes for them
    plain = run_benchmark(tmp_path / "p.db", ["test_tables_toy_weights", "params"], benchmark=bench, device="cpu",
                          progress=False)
    assert plain.n_computed == 32
    own = rows[rows["copied_from"].isna()].set_index(["proxy", "arch"])["value"]
    assert own.equals(_frame(tmp_path / "p.db").reset_index().set_index(["proxy", "arch"])["value"].loc[own.index])
    again = run_benchmark(store, ["test_tables_toy_weights", "params"], benchmark=bench, device="cpu", dedupe=True,
                          progress=False)
    assert (again.n_computed, again.n_copied, again.n_already) == (0, 0, 32)


@register
@dataclass
class ToyGradient(ToyWeights):
    """The same sum, declared to read only what reaches the output (as gradient proxies do)."""

    name: ClassVar[str] = "test_tables_toy_gradient"
    output_paths_only: ClassVar[bool] = True


def test_dedupe_copies_only_exact_scores_where_class_members_build_different_networks(tmp_path, capsys):
    proxies = ["test_tables_toy_gradient", "params"]
    archs = list(PairedToy().ground_truth().table.index)
    n_classes = len({PairedToy().isomorphism_id(s) for s in archs})
    # identical networks: both proxies copied; then the benchmark says its members only share a function
    store = tmp_path / "d.db"
    first = run_benchmark(store, proxies, benchmark=PairedToy(), device="cpu", dedupe=True, progress=False)
    assert first.n_copied == 2 * (len(archs) - n_classes)
    again = run_benchmark(store, proxies, benchmark=PairedToy("functional"), device="cpu", dedupe=True,
                          progress=False)
    # params' copies are dropped (one line says so) and scored on their own architecture; the gradient's stay
    assert (again.n_computed, again.n_copied) == (len(archs) - n_classes, 0)
    err = capsys.readouterr().err
    assert f"{len(archs) - n_classes} copied params score(s) dropped to be scored again" in err
    rows = _frame(store).reset_index()
    assert len(rows) == 2 * len(archs)
    assert rows.loc[rows["proxy"] == "params", "copied_from"].isna().all()
    assert rows.loc[rows["proxy"] == "test_tables_toy_gradient", "copied_from"].notna().sum() == len(archs) - n_classes
    # a fresh functional run copies only the declared proxy
    fresh = run_benchmark(tmp_path / "f.db", proxies, benchmark=PairedToy("functional"), device="cpu", dedupe=True,
                          progress=False)
    assert (fresh.n_computed, fresh.n_copied) == (n_classes + len(archs), len(archs) - n_classes)
    # an unknown kind is refused in one line naming it
    with pytest.raises(BenchmarkError, match="declares isomorphism 'same'; expected one of identical, functional"):
        run_benchmark(tmp_path / "x.db", proxies, benchmark=PairedToy("same"), device="cpu", dedupe=True,
                      progress=False)


def test_dedupe_copies_from_scores_already_in_the_store(tmp_path):
    bench = PairedToy()
    store = tmp_path / "d.db"
    run_benchmark(store, ["test_tables_toy_weights"], benchmark=bench, device="cpu", sample=6, progress=False)
    before = _frame(store).reset_index()
    summary = run_benchmark(store, ["test_tables_toy_weights"], benchmark=bench, device="cpu", dedupe=True,
                            progress=False)
    scored = {bench.isomorphism_id(a) for a in before["arch"]}
    classes = {bench.isomorphism_id(s) for s in bench.ground_truth().table.index}
    members = [s for s in bench.ground_truth().table.index if s not in set(before["arch"])]
    assert summary.n_computed == len(classes - scored)
    assert summary.n_copied == len(members) - len(classes - scored)
    export_table(store, tmp_path / "d.csv.gz")  # the copies' provenance crosses a table
    import_table(tmp_path / "d.csv.gz", tmp_path / "e.db")
    assert _frame(tmp_path / "e.db")["copied_from"].notna().sum() == summary.n_copied


# ----------------------------------------------------------------------------- columns the ground truth publishes


def test_a_column_equal_to_the_ground_truth_is_written_as_a_reference(tmp_path, monkeypatch):
    from conftest import require_data

    require_data("nb201/nb201.csv")
    store, table = tmp_path / "p.db", tmp_path / "p.csv.gz"
    run_benchmark(store, ["params", "synflow"], benchmark="nb201", sample=6, seed=0, device="cpu",
                  data_source="noise", progress=False)
    export_table(store, table)
    meta = json.loads(sidecar_path(table).read_text())
    assert meta["columns"]["params"]["from_ground_truth"] == "params_cifar10_M"
    assert "from_ground_truth" not in meta["columns"]["synflow"]  # a score, not a published count
    wide = pd.read_csv(table)
    assert "params" not in wide.columns and "params.seconds" in wide.columns and "synflow" in wide.columns
    rows, _, _ = read_table(table)
    with ResultStore(store, create=False) as results:
        stored = results.scores().set_index(["proxy", "arch"])["value"].sort_index()
    back = pd.Series({(r.proxy, r.arch): r.value for r in rows}).sort_index()
    assert back.to_dict() == stored.to_dict()  # bit for bit, read through the data folder
    monkeypatch.setenv("ZENBENCH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(TableError, match="column 'params' is nb201's ground-truth column 'params_cifar10_M'") as err:
        read_table(table)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- architecture codes (table version 2)


def test_nb201_codes_are_the_six_op_indices_of_every_cell():
    from search.spaces.nb201 import all_archs

    nb201 = benchmarks.get("nb201")
    archs = list(all_archs())
    codes = [nb201.arch_code(a) for a in archs]
    assert codes == sorted(codes) and len(set(codes)) == 15625  # their order is the enumeration's
    assert codes[0] == "000000" and codes[-1] == "444444"
    assert all(nb201.from_arch_code(c) == a for c, a in zip(codes, archs, strict=True))
    # by hand: |nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|
    spec = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    assert nb201.arch_code(nb201.parse(spec)) == "301423"
    for bad in ("30142", "3014235", "301425", "30142x", 301423):
        with pytest.raises(benchmarks.ArchSpecError, match="expected six op indices"):
            nb201.from_arch_code(bad)


def _as_version_1(table) -> None:
    """Rewrite a version-2 NB201 table as the spec-keyed version 1 that earlier zenbench wrote."""
    nb201 = benchmarks.get("nb201")
    meta = json.loads(sidecar_path(table).read_text())
    wide = pd.read_csv(table, dtype=str, keep_default_na=False)
    decode = {c: nb201.format(nb201.from_arch_code(c)) for c in wide["arch"]}
    for column in [c for c in wide.columns if c == "arch" or c.endswith(".copied_from")]:
        wide[column] = wide[column].map(lambda c: decode.get(c, c))
    wide.to_csv(table, index=False)
    meta["version"] = 1
    del meta["arch_codes"]
    sidecar_path(table).write_text(json.dumps(meta))


def test_an_nb201_table_keys_cells_by_code_and_still_reads_version_1(tmp_path, gt):
    nb201 = benchmarks.get("nb201")
    classes = pd.Series(gt.table.index, index=gt.table.index).groupby(
        lambda s: nb201.isomorphism_id(nb201.parse(s)))
    pairs = [spec for _, members in classes if len(members) >= 2 for spec in members.iloc[:2]][:20]
    paired = GroundTruthTable(gt.table.loc[pairs], gt.default_keys, gt.source)  # ten classes of two cells
    store, table = tmp_path / "a.db", tmp_path / "t.csv.gz"
    _run(store, paired, sample=20, proxies=[ToyWeightsNb201(), "params"], dedupe=True)
    copies = _frame(store)["copied_from"].notna().sum()
    assert copies == 10  # params is scored on every cell (NB201's classes differ in their dead edges)
    export_table(store, table)
    meta = json.loads(sidecar_path(table).read_text())
    assert meta["version"] == 2 and meta["arch_codes"] is True
    text = gzip.decompress(table.read_bytes()).decode()
    assert "~" not in text  # no architecture string anywhere, copies' provenance included
    wide = pd.read_csv(table, dtype=str)
    assert wide["arch"].str.fullmatch("[0-4]{6}").all() and wide["arch"].is_monotonic_increasing
    v2 = tmp_path / "v2.db"
    import_table(table, v2)
    _same_rows(_frame(store), _frame(v2))
    _as_version_1(table)
    assert "~" in gzip.decompress(table.read_bytes()).decode()
    v1 = tmp_path / "v1.db"
    import_table(table, v1)
    _same_rows(_frame(store), _frame(v1))
    assert _frame(v1)["copied_from"].notna().sum() == copies
    resumed = _run(tmp_path / "r.db", paired, proxies=[ToyWeightsNb201(), "params"], resume_from=[table],
                   sample=None)  # an old table resumes like a new one: nothing left to compute
    assert (resumed.n_already, resumed.n_computed) == (40, 0)


def test_a_bad_code_in_a_table_is_one_clear_error(tmp_path, gt):
    _run(tmp_path / "a.db", gt, sample=4)
    table = tmp_path / "t.csv.gz"
    export_table(tmp_path / "a.db", table)
    wide = pd.read_csv(table, dtype={"arch": str})
    wide.loc[1, "arch"] = "301429"
    wide.to_csv(table, index=False)
    with pytest.raises(TableError, match=r"t\.csv\.gz.*NB201 architecture code '301429'") as err:
        read_table(table)
    assert "\n" not in str(err.value)


@register
@dataclass
class ToyWeightsNb201(Proxy):
    """Sum of |weights| of a small NB201 variant, declared output-paths-only so ``--dedupe`` copies it."""

    name: ClassVar[str] = "test_tables_nb201_weights"
    output_paths_only: ClassVar[bool] = True

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return sum(float(p.detach().abs().sum()) for p in factory(channels=4, cells_per_stage=1).parameters())


def test_an_xz_table_round_trips_and_a_damaged_one_is_one_clear_error(tmp_path, gt):
    import lzma

    _run(tmp_path / "a.db", gt, sample=6)
    table = tmp_path / "t.csv.xz"
    export_table(tmp_path / "a.db", table)
    assert lzma.decompress(table.read_bytes()).startswith(b"arch,")
    import_table(table, tmp_path / "b.db")
    _same_rows(_frame(tmp_path / "a.db"), _frame(tmp_path / "b.db"))
    table.write_bytes(b"\xfd7zXZ\x00 not really xz")
    with pytest.raises(TableError, match="not a readable CSV"):
        read_table(table)


def test_a_table_names_the_data_folder_by_its_variable_and_resumes_from_it(tmp_path, gt, monkeypatch):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "cifar10-subset" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    write_pickle(folder / "data_batch_1", random_images(rng, 40, 32), rng.integers(0, 10, 40))
    monkeypatch.setenv("ZENBENCH_DATA", str(tmp_path / "data"))
    _run(tmp_path / "a.db", gt, sample=3, proxies=["naswot"], data_source="auto", batch_size=8)
    assert str(tmp_path / "data") in _frame(tmp_path / "a.db")["batch_source"].iloc[0]  # the store keeps the path
    export_table(tmp_path / "a.db", tmp_path / "t.csv.gz")
    published = sidecar_path(tmp_path / "t.csv.gz").read_text() + gzip.open(tmp_path / "t.csv.gz", "rt").read()
    assert str(tmp_path / "data") not in published and "$ZENBENCH_DATA/cifar10-subset" in published
    (column,) = json.loads(sidecar_path(tmp_path / "t.csv.gz").read_text())["columns"].values()
    source = "cifar10:train:$ZENBENCH_DATA/cifar10-subset/cifar-10-batches-py:seed=0"
    assert column["constant"]["batch_source"] == source
    resumed = _run(tmp_path / "b.db", gt, sample=5, proxies=["naswot"], data_source="auto", batch_size=8,
                   resume_from=[tmp_path / "t.csv.gz"])
    assert (resumed.n_already, resumed.n_computed) == (3, 2)
    export_table(tmp_path / "b.db", tmp_path / "u.csv.gz")  # old and new rows: one batch source again
    (column,) = json.loads(sidecar_path(tmp_path / "u.csv.gz").read_text())["columns"].values()
    assert "batch_source" not in column["per_row"] and column["constant"]["batch_source"] == source
