"""Results store: unique keys, NaN/inf round trip, run records, merging with conflict detection."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest

from bench.store import MergeConflictError, ResultStore, ScoreRow, StoreError, merge_stores


def make_row(arch_index: int = 0, value: float = 1.5, **changes) -> ScoreRow:
    row = ScoreRow(
        space="nb201", arch_index=arch_index, arch=f"arch{arch_index}", dataset="cifar10", proxy="p",
        option_hash="abc", seed=0, value=value, components={"part": value / 2}, seconds=0.01, peak_memory_mb=2.0,
        device="cpu", batch_source="none", batch_mode="shared", batch_seed=None, batch_size=None,
        data_source="auto", input_kind="none", proxy_class="m:P", options={"k": 3, "name": "x"},
        higher_is_better=True, gt_key="cifar10_test", disconnected=False, nan_policy="keep-flag-exclude",
        zenbench_version="0", torch_version="0", run_id="r",
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
        assert store.count() == 5
        assert store.done("nb201", "cifar10", "p", "abc", 0) == {0, 1, 2}
        assert store.protocols("nb201", "cifar10", "p", "abc", 0) == {("shared", "auto")}
    with ResultStore(tmp_path / "s.db", create=False) as store:  # everything was committed
        frame = store.scores().set_index(["arch_index", "seed", "option_hash"])
    assert frame.loc[(0, 0, "abc"), "value"] == 1.5
    assert frame.loc[(0, 0, "abc"), "components"] == {"part": 0.75}
    assert frame.loc[(0, 0, "abc"), "options"] == {"k": 3, "name": "x"}
    assert math.isnan(frame.loc[(1, 0, "abc"), "value"]) and frame.loc[(1, 0, "abc"), "nonfinite"]
    assert frame.loc[(2, 0, "abc"), "value"] == -math.inf and frame.loc[(2, 0, "abc"), "nonfinite"]
    assert frame.loc[(2, 0, "abc"), "disconnected"] and not frame.loc[(0, 0, "abc"), "nonfinite"]


def test_unique_key_is_enforced_by_sqlite(tmp_path):
    path = tmp_path / "s.db"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    index_sql = " ".join(r[0] or "" for r in db.execute("SELECT sql FROM sqlite_master WHERE type='table'"))
    assert "UNIQUE (space, arch_index, dataset, proxy, option_hash, seed)" in index_sql


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
    with ResultStore(tmp_path / "all.db", create=False) as merged:
        assert merged.count() == 0 and merged.runs().empty
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
