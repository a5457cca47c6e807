"""Results store: unique keys, NaN/inf round trip, run records, merging with conflict detection, and the
conversion of a store written by zenbench 0.1 (schema 1)."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3

import numpy as np
import pytest
from _store_v1 import write_v1_store
from scipy import stats

from bench.store import (
    _SCORE_COLUMNS,
    KEY_COLUMNS,
    SCHEMA_VERSION,
    MergeConflictError,
    ResultStore,
    ScoreRow,
    StoreError,
    merge_stores,
)


def make_row(arch: int | str = 0, value: float = 1.5, **changes) -> ScoreRow:
    row = ScoreRow(
        benchmark="nb201", network="default", arch=f"arch{arch}", dataset="cifar10", proxy="p",
        option_hash="abc", seed=0, value=value, components={"part": value / 2}, seconds=0.01, peak_memory_mb=2.0,
        device="cpu", batch_source="none", batch_mode="shared", batch_seed=None, batch_size=None,
        data_source="auto", input_kind="none", proxy_class="m:P", options={"k": 3, "name": "x"},
        higher_is_better=True, population_rule=None, gt_key="cifar10_test", disconnected=False,
        nan_policy="keep-flag-exclude", zenbench_version="0", torch_version="0", run_id="r",
    )
    return dataclasses.replace(row, **changes)


def test_rows_round_trip_and_duplicates_are_ignored(tmp_path):
    with ResultStore(tmp_path / "s.db") as store:
        assert store.add(make_row(0, 1.5))
        assert not store.add(make_row(0, 99.0))  # same key: ignored, first value kept
        assert store.add(make_row(1, math.nan))
        assert store.add(make_row(2, -math.inf, disconnected=True))
        assert store.add(make_row(0, 2.5, seed=1))  # another seed is another key
        assert store.add(make_row(0, 2.5, option_hash="def"))  # another protocol too
        assert store.add(make_row(0, 2.5, network="naslib"))  # another network too
        assert store.add(make_row(0, 2.5, benchmark="macro"))  # and another benchmark
        rule = {"rule": "rank_sum", "components": ["part"], "precision": None}
        assert store.add(make_row(3, 4.0, population_rule=rule))
        assert store.count() == 8
        assert store.done("nb201", "default", "cifar10", "p", "abc", 0) == {"arch0", "arch1", "arch2", "arch3"}
        assert store.done("nb201", "naslib", "cifar10", "p", "abc", 0) == {"arch0"}
        assert store.protocols("nb201", "default", "cifar10", "p", "abc", 0) == {("shared", "auto")}
        assert store.benchmarks() == ["macro", "nb201"]
    with ResultStore(tmp_path / "s.db", create=False) as store:  # everything was committed
        assert len(store.scores(benchmark="macro")) == 1
        frame = store.scores(benchmark="nb201").set_index(["arch", "seed", "option_hash", "network"])
    key = ("arch0", 0, "abc", "default")
    assert frame.loc[key, "value"] == 1.5
    assert frame.loc[key, "components"] == {"part": 0.75}
    assert frame.loc[key, "options"] == {"k": 3, "name": "x"}
    assert frame.loc[key, "population_rule"] is None and frame.loc[("arch3", 0, "abc", "default"),
                                                                   "population_rule"] == rule
    assert math.isnan(frame.loc[("arch1", 0, "abc", "default"), "value"])
    assert frame.loc[("arch1", 0, "abc", "default"), "nonfinite"]
    assert frame.loc[("arch2", 0, "abc", "default"), "value"] == -math.inf
    assert frame.loc[("arch2", 0, "abc", "default"), "nonfinite"]
    assert frame.loc[("arch2", 0, "abc", "default"), "disconnected"] and not frame.loc[key, "nonfinite"]


def test_unique_key_is_enforced_by_sqlite(tmp_path):
    path = tmp_path / "s.db"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    index_sql = " ".join(r[0] or "" for r in db.execute("SELECT sql FROM sqlite_master WHERE type='table'"))
    assert "UNIQUE (benchmark, network, arch, dataset, proxy, option_hash, seed)" in index_sql


def test_run_records(tmp_path):
    with ResultStore(tmp_path / "s.db") as store:
        run = store.begin_run("zenbench bench --sample 3", {"seed": 4}, "cpu")
        store.finish_run(run.run_id, "interrupted", 2)
        runs = store.runs()
    assert list(runs["command"]) == ["zenbench bench --sample 3"]
    assert runs.iloc[0]["config"] == {"seed": 4}
    assert runs.iloc[0]["status"] == "interrupted" and runs.iloc[0]["n_computed"] == 2
    assert runs.iloc[0]["finished"] >= runs.iloc[0]["started"]


def test_missing_or_foreign_store_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore(tmp_path / "none.db", create=False)
    with pytest.raises(StoreError, match="folder"):
        ResultStore(tmp_path / "no" / "such" / "s.db")
    (tmp_path / "junk.db").write_text("not a database, just text that is long enough to fill a header" * 10)
    with pytest.raises(StoreError, match="cannot open"):
        ResultStore(tmp_path / "junk.db", create=False)
    path = tmp_path / "old.db"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema 99"):
        ResultStore(path, create=False)


def test_a_store_written_by_zenbench_0_1_is_converted_on_open(tmp_path):
    path = tmp_path / "v1.db"
    tables = write_v1_store(path)
    old = {(r["arch"], r["proxy"]): r for r in tables["scores"]}
    with ResultStore(path, create=False) as store:
        frame = store.scores()
        runs = store.runs()
        meta = dict(store._db.execute("SELECT key, value FROM meta").fetchall())
    assert meta == {"schema_version": str(SCHEMA_VERSION), "converted_from_schema": "1"}
    assert len(frame) == len(tables["scores"]) == 12 and list(runs["run_id"]) == [tables["runs"][0]["run_id"]]
    assert set(frame["benchmark"]) == {"nb201"} and set(frame["network"]) == {"default"}
    assert "arch_index" not in frame and "space" not in frame
    for row in frame.itertuples():  # every value, component and flag as 0.1 stored it, keyed by its string
        before = old[(row.arch, row.proxy)]
        assert row.value == before["value"] or (math.isnan(row.value) and before["value"] is None)
        assert row.components == json.loads(before["components"]) and row.disconnected == bool(before["disconnected"])
        assert row.option_hash == before["option_hash"]
    tenas = frame[frame["proxy"] == "tenas"]
    assert list(tenas["population_rule"]) == [{"rule": "rank_sum", "components": ["tenas.ntk", "tenas.lr"],
                                               "precision": None}] * 6
    assert frame.loc[frame["proxy"] == "params", "population_rule"].isna().all()
    with ResultStore(path) as store:  # converted once: it reopens as schema 2 and takes new rows
        assert store.add(make_row("new"))
        assert store.done("nb201", "default", "cifar10", "tenas", tenas["option_hash"].iloc[0], 0) == set(tenas["arch"])
    # the statistics rank the stored components as 0.1's TE-NAS combine_population did: rank sum, ties averaged
    from bench.statistics import population_scores

    combined, note = population_scores(tenas.reset_index(drop=True))
    ntk = np.array([c["tenas.ntk"] for c in tenas["components"]])
    lr = np.array([c["tenas.lr"] for c in tenas["components"]])
    assert note is None
    np.testing.assert_array_equal(combined, stats.rankdata(ntk) + stats.rankdata(lr))


def test_conversion_is_all_or_nothing(tmp_path):
    path = tmp_path / "v1.db"
    write_v1_store(path)
    db = sqlite3.connect(path)  # two NB201 indices holding one architecture string: schema 2 cannot key them
    db.execute("INSERT INTO scores SELECT space, arch_index + 1, arch, dataset, proxy, option_hash, seed, value, "
               "components, seconds, peak_memory_mb, device, batch_source, batch_mode, batch_seed, batch_size, "
               "data_source, input_kind, proxy_class, options, higher_is_better, gt_key, disconnected, nan_policy, "
               "zenbench_version, torch_version, run_id, created, nonfinite FROM scores LIMIT 1")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="cannot open results store.*UNIQUE"):
        ResultStore(path, create=False)
    db = sqlite3.connect(path)  # nothing changed
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 13
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["meta", "runs",
                                                                                               "scores"]
    db.close()


def _store(path, rows, command="cmd"):
    with ResultStore(path) as store:
        run = store.begin_run(command, {}, "cpu")
        for row in rows:
            store.add(dataclasses.replace(row, run_id=run.run_id))
        store.finish_run(run.run_id, "completed", len(rows))
    return path


def test_merge_unions_rows_and_runs(tmp_path):
    a = _store(tmp_path / "a.db", [make_row(0), make_row(1, math.nan)], "shard 0")
    b = _store(tmp_path / "b.db", [make_row(2), make_row(1, math.nan)], "shard 1")  # NaN equals NaN
    summary = merge_stores([a, b], tmp_path / "all.db")
    assert (summary.offered, summary.added, summary.runs_added) == (4, 3, 2)
    with ResultStore(tmp_path / "all.db", create=False) as merged:
        assert merged.count() == 3
        assert sorted(merged.runs()["command"]) == ["shard 0", "shard 1"]
    again = merge_stores([a, b], tmp_path / "all.db")  # idempotent
    assert again.added == 0 and again.runs_added == 0


def test_merge_conflict_writes_nothing(tmp_path):
    a = _store(tmp_path / "a.db", [make_row(0, 1.0)])
    b = _store(tmp_path / "b.db", [make_row(5, 3.0), make_row(0, 2.0)])
    with pytest.raises(MergeConflictError, match="merge conflict"):
        merge_stores([a, b], tmp_path / "all.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "b.db"]  # no target left behind (bug 4)
    c = _store(tmp_path / "c.db", [make_row(0, 1.0, components={"part": 7.0})])
    with pytest.raises(MergeConflictError):
        merge_stores([a, c], tmp_path / "other.db")


def test_merge_bad_input(tmp_path):
    a = _store(tmp_path / "a.db", [make_row(0)])
    with pytest.raises(StoreError, match="does not exist"):
        merge_stores([a, tmp_path / "missing.db"], tmp_path / "all.db")
    with pytest.raises(StoreError, match="also the merge target"):
        merge_stores([a], a)
    with pytest.raises(StoreError, match="at least one"):
        merge_stores([], tmp_path / "all.db")


def test_merge_of_a_store_with_itself(tmp_path):
    """Issue 11 bug 4: ``zenbench merge t.db t.db --into m.db`` crashed with "database is locked"."""
    t = _store(tmp_path / "t.db", [make_row(0, 1.0), make_row(1, 2.0)])
    summary = merge_stores([t, t], tmp_path / "m.db")
    assert (summary.added, len(summary.sources)) == (2, 1)
    with ResultStore(tmp_path / "m.db", create=False) as merged:
        assert sorted(merged.scores()["arch"]) == ["arch0", "arch1"]


def test_conflict_into_an_existing_target_keeps_it(tmp_path):
    target = _store(tmp_path / "m.db", [make_row(7, 1.0)])
    other = _store(tmp_path / "o.db", [make_row(7, 2.0)])
    with pytest.raises(MergeConflictError):
        merge_stores([other], target)
    with ResultStore(target, create=False) as kept:
        assert kept.scores()["value"].tolist() == [1.0]


def test_a_foreign_sqlite_file_is_refused_without_writing(tmp_path):
    """Issue 11 bug 5: opening a non-zenbench SQLite file wrote the zenbench schema into it."""
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE people (name TEXT)")
    db.execute("INSERT INTO people VALUES ('ada')")
    db.commit()
    db.close()
    before = path.read_bytes()
    for create in (False, True):
        with pytest.raises(StoreError, match="not a zenbench results store") as info:
            ResultStore(path, create=create)
        assert "\n" not in str(info.value)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_truncated_store_gives_one_line_and_loses_nothing(tmp_path):
    path = _store(tmp_path / "s.db", [make_row(k, float(k)) for k in range(300)])
    data = path.read_bytes()
    broken = tmp_path / "broken.db"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as info:
        with ResultStore(broken, create=False) as store:
            store.scores()
    assert "\n" not in str(info.value) and "broken.db" in str(info.value)
    assert broken.read_bytes() == data[: len(data) // 2]  # nothing rewritten
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="garbage.db"):
        ResultStore(garbage)
    assert garbage.read_bytes() == b"not a database at all" * 100


@pytest.mark.parametrize(("column", "bad"), [("value", "'abc'"), ("components", "'[1, 2]'"), ("seed", "'x'"),
                                             ("options", "'{broken'")])
def test_a_row_of_the_wrong_type_gives_one_line_and_keeps_the_rows(tmp_path, column, bad):
    path = _store(tmp_path / "s.db", [make_row(0, 1.0), make_row(1, 2.0)])
    db = sqlite3.connect(path)
    db.execute(f"UPDATE scores SET {column}={bad} WHERE arch='arch1'")
    db.commit()
    db.close()
    with ResultStore(path, create=False) as store:
        with pytest.raises(StoreError, match=f"column '{column}'.*arch='arch1'") as info:
            store.scores()
        assert "\n" not in str(info.value)
        assert store.count() == 2


def test_failures_are_recorded_and_cleared_by_a_success(tmp_path):
    key = {c: getattr(make_row(4), c) for c in KEY_COLUMNS}
    with ResultStore(tmp_path / "s.db") as store:
        store.add_failure(key, "ValueError: boom", "r1")
        store.add_failure(key, "ValueError: boom again", "r2")  # the latest error replaces the first
        failures = store.failures()
        assert failures[["arch", "error", "run_id"]].values.tolist() == [["arch4", "ValueError: boom again", "r2"]]
        assert store.add(make_row(4))
        assert store.failures().empty


@pytest.mark.parametrize("schema", [2, 3, 4])
def test_new_columns_round_trip_and_an_older_store_is_converted(tmp_path, schema):
    with ResultStore(tmp_path / "s.db") as store:
        store.add(make_row(0, sample_seed=5, threads=2, load_avg=0.75, copied_from="arch9", shared_with="snip,plain"))
        row = store.scores().iloc[0]
    assert (row["seed"], row["sample_seed"], row["threads"], row["load_avg"], row["copied_from"],
            row["shared_with"]) == (0, 5, 2, 0.75, "arch9", "snip,plain")
    old = tmp_path / "old.db"
    db = sqlite3.connect(old)
    db.executescript(f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '{schema}');""")
    later = {2: ("sample_seed", "threads", "load_avg", "copied_from", "shared_with"),
             3: ("copied_from", "shared_with"), 4: ("shared_with",)}[schema]
    columns = [c for c in _SCORE_COLUMNS if c not in later]
    db.execute(f"CREATE TABLE scores ({', '.join(columns)}, UNIQUE ({', '.join(KEY_COLUMNS)}))")
    values = {**{f.name: getattr(make_row(3, seed=4), f.name) for f in dataclasses.fields(ScoreRow)},
              "nonfinite": 0, "components": "{}", "options": "{}", "population_rule": None}
    db.execute(f"INSERT INTO scores ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
               [values[c] for c in columns])
    db.commit()
    db.close()
    with ResultStore(old, create=False) as store:
        row = store.scores().iloc[0]
        expected_sample_seed = 4 if schema == 2 else make_row(3).sample_seed  # schema 3 stored its own
        assert (row["arch"], row["seed"], row["sample_seed"], row["copied_from"], row["shared_with"]) == \
            ("arch3", 4, expected_sample_seed, None, None)
        assert store.failures().empty
    db = sqlite3.connect(old)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    db.close()
