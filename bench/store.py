"""The results store: every proxy score with its protocol, in one SQLite file.

One row per (space, architecture, dataset, proxy, option hash, seed), a UNIQUE key, inserted the moment
the score exists and committed at once (``INSERT OR IGNORE``), so a run killed at any instant keeps every
row it wrote and a rerun of the same command adds exactly the missing ones. The file is in WAL mode with
``synchronous=NORMAL``: a commit survives the death of the process (``kill -9``); an operating-system
crash or power loss may lose the last commits but never corrupts the file. Several processes may write
one store at once (``busy_timeout``), though the intended parallel layout is one store per shard, merged
with :func:`merge_stores`.

Each row carries its protocol (proxy class and options, input kind, batch source and mode, device,
versions, ground-truth key, NaN policy), so any two numbers can be told apart. NaN is stored as SQL NULL
with ``nonfinite = 1``; ±inf are stored as they are (and flagged).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1
KEY_COLUMNS: tuple[str, ...] = ("space", "arch_index", "dataset", "proxy", "option_hash", "seed")


class StoreError(OSError):
    """A results store that is missing, unreadable, of another schema, or that cannot be merged."""


class MergeConflictError(StoreError):
    """Two stores hold different values for the same score key."""


@dataclass(frozen=True)
class ScoreRow:
    """One stored score and its protocol (the columns of the ``scores`` table)."""

    space: str
    arch_index: int
    arch: str
    dataset: str
    proxy: str
    option_hash: str
    seed: int
    value: float
    components: Mapping[str, float]
    seconds: float
    peak_memory_mb: float | None
    device: str
    batch_source: str
    """``Batch.source`` of the images the proxy saw, ``none`` for data-free proxies."""
    batch_mode: str
    """``shared`` (one batch per dataset and seed) or ``per-arch`` (a batch per architecture)."""
    batch_seed: int | None
    batch_size: int | None
    data_source: str
    """What the run asked for: ``auto``, ``noise`` or a path (see ``bench.data.load_batch``)."""
    input_kind: str
    proxy_class: str
    """``module:QualName`` of the proxy class, so statistics can call its population combination."""
    options: Mapping[str, Any]
    higher_is_better: bool
    gt_key: str
    disconnected: bool
    nan_policy: str
    zenbench_version: str
    torch_version: str
    run_id: str
    created: float = field(default_factory=time.time)

    @property
    def nonfinite(self) -> bool:
        return not math.isfinite(self.value)


_ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ScoreRow))
_SCORE_COLUMNS: tuple[str, ...] = (*_ROW_FIELDS, "nonfinite")
_RUN_COLUMNS: tuple[str, ...] = ("run_id", "started", "finished", "status", "command", "config", "zenbench_version",
                                 "torch_version", "python_version", "platform", "device", "n_computed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, status TEXT NOT NULL, command TEXT NOT NULL,
    config TEXT NOT NULL, zenbench_version TEXT, torch_version TEXT, python_version TEXT, platform TEXT,
    device TEXT, n_computed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS scores (
    space TEXT NOT NULL, arch_index INTEGER NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL,
    proxy TEXT NOT NULL, option_hash TEXT NOT NULL, seed INTEGER NOT NULL,
    value REAL, components TEXT NOT NULL, seconds REAL, peak_memory_mb REAL, device TEXT,
    batch_source TEXT, batch_mode TEXT, batch_seed INTEGER, batch_size INTEGER, data_source TEXT,
    input_kind TEXT, proxy_class TEXT, options TEXT NOT NULL, higher_is_better INTEGER NOT NULL,
    gt_key TEXT, disconnected INTEGER NOT NULL, nan_policy TEXT, zenbench_version TEXT, torch_version TEXT,
    run_id TEXT, created REAL, nonfinite INTEGER NOT NULL,
    UNIQUE ({", ".join(KEY_COLUMNS)})
);
"""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def software_versions() -> tuple[str, str]:
    """Installed zenbench version and the loaded torch version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        zenbench = version("zenbench")
    except PackageNotFoundError:
        zenbench = "unknown"
    torch = sys.modules.get("torch")
    return zenbench, getattr(torch, "__version__", "not loaded")


@dataclass(frozen=True)
class RunRecord:
    """One invocation of a scoring run (the ``runs`` table)."""

    run_id: str
    command: str
    config: Mapping[str, Any]
    device: str


class ResultStore:
    """A results store (SQLite, WAL). Use as a context manager or call :meth:`close`.

    ``create=False`` refuses a missing file (for readers such as the report) instead of creating it.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StoreError(f"results store {str(self.path)!r} does not exist")
        if create and self.path.parent and not self.path.parent.exists():
            raise StoreError(f"cannot create results store {str(self.path)!r}: folder "
                             f"{str(self.path.parent)!r} does not exist")
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise StoreError(f"results store {str(self.path)!r} has schema {version[0]}, this zenbench "
                                 f"reads schema {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open results store {str(self.path)!r}: {exc}") from None
        self._insert_sql = (f"INSERT OR IGNORE INTO scores ({', '.join(_SCORE_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(_SCORE_COLUMNS))})")

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs

    def begin_run(self, command: str, config: Mapping[str, Any], device: str) -> RunRecord:
        """Record the start of a run; ``command`` is the exact command line that (re)produces it."""
        zenbench, torch = software_versions()
        record = RunRecord(uuid.uuid4().hex, command, dict(config), device)
        self._db.execute(
            f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
            (record.run_id, time.time(), None, "running", command, _json(config), zenbench, torch,
             platform.python_version(), platform.platform(), device, 0))
        return record

    def finish_run(self, run_id: str, status: str, n_computed: int) -> None:
        """Mark a run ``completed``, ``interrupted`` or ``failed`` with the number of rows it added."""
        self._db.execute("UPDATE runs SET finished=?, status=?, n_computed=? WHERE run_id=?",
                         (time.time(), status, n_computed, run_id))

    def runs(self) -> pd.DataFrame:
        """All recorded runs, oldest first (``config`` decoded)."""
        frame = pd.read_sql_query("SELECT * FROM runs ORDER BY started", self._db)
        frame["config"] = frame["config"].map(json.loads)
        return frame

    # ------------------------------------------------------------------ scores

    def add(self, row: ScoreRow) -> bool:
        """Store one score and commit; ``False`` when its key was already there (nothing changed)."""
        values = {name: getattr(row, name) for name in _ROW_FIELDS}
        values["value"] = row.value if not math.isnan(row.value) else None
        values["components"] = _json(dict(row.components))
        values["options"] = _json(dict(row.options))
        values["higher_is_better"] = int(row.higher_is_better)
        values["disconnected"] = int(row.disconnected)
        values["nonfinite"] = int(row.nonfinite)
        cursor = self._db.execute(self._insert_sql, [values[c] for c in _SCORE_COLUMNS])
        return cursor.rowcount == 1

    def done(self, space: str, dataset: str, proxy: str, option_hash: str, seed: int) -> set[int]:
        """Architecture indices already scored for one proxy protocol."""
        cursor = self._db.execute(
            "SELECT arch_index FROM scores WHERE space=? AND dataset=? AND proxy=? AND option_hash=? AND seed=?",
            (space, dataset, proxy, option_hash, seed))
        return {int(r[0]) for r in cursor}

    def protocols(self, space: str, dataset: str, proxy: str, option_hash: str, seed: int) -> set[tuple[str, str]]:
        """Distinct (batch mode, data source) pairs stored for one proxy protocol."""
        cursor = self._db.execute(
            "SELECT DISTINCT batch_mode, data_source FROM scores "
            "WHERE space=? AND dataset=? AND proxy=? AND option_hash=? AND seed=?",
            (space, dataset, proxy, option_hash, seed))
        return {(str(a), str(b)) for a, b in cursor}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def scores(self, dataset: str | None = None) -> pd.DataFrame:
        """Stored scores (``components`` and ``options`` decoded, NaN restored, flags as bool), ordered
        by key."""
        where, params = ("WHERE dataset=?", (dataset,)) if dataset else ("", ())
        frame = pd.read_sql_query(
            f"SELECT * FROM scores {where} ORDER BY {', '.join(KEY_COLUMNS)}", self._db, params=params)
        frame["value"] = frame["value"].astype(float)
        for column in ("components", "options"):
            frame[column] = frame[column].map(json.loads)
        for column in ("higher_is_better", "disconnected", "nonfinite"):
            frame[column] = frame[column].astype(bool)
        return frame


# ----------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class MergeSummary:
    """What :func:`merge_stores` did: rows offered by each source and rows new to the target."""

    into: Path
    sources: tuple[Path, ...]
    offered: int
    added: int
    runs_added: int


def merge_stores(sources: Sequence[str | os.PathLike], into: str | os.PathLike) -> MergeSummary:
    """Merge results stores into ``into`` (created if missing; its own rows are kept).

    Rows whose key is already present must carry the identical value and components (NaN equals NaN);
    otherwise nothing is written and :class:`MergeConflictError` names the first conflicting key. Run
    records are copied too, so the merged store still lists every command that produced it.
    """
    target = Path(into)
    paths = [Path(p) for p in sources]
    if not paths:
        raise StoreError("merge needs at least one source store")
    for path in paths:
        if not path.is_file():
            raise StoreError(f"source store {str(path)!r} does not exist")
        if target.exists() and path.resolve() == target.resolve():
            raise StoreError(f"source store {str(path)!r} is also the merge target")
    for path in paths:  # validates each schema before the target is touched
        ResultStore(path, create=False).close()
    key = " AND ".join(f"s.{c} = m.{c}" for c in KEY_COLUMNS)
    columns = ", ".join(_SCORE_COLUMNS)
    offered = added = runs_added = 0
    with ResultStore(target) as store:
        db = store._db
        aliases = [f"src{i}" for i in range(len(paths))]
        for alias, path in zip(aliases, paths, strict=True):  # ATTACH is not allowed inside a transaction
            db.execute(f"ATTACH DATABASE ? AS {alias}", (str(path),))
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for i, (alias, path) in enumerate(zip(aliases, paths, strict=True)):
                    conflict = db.execute(
                        f"SELECT {', '.join('s.' + c for c in KEY_COLUMNS)}, s.value, m.value "
                        f"FROM {alias}.scores s JOIN main.scores m ON {key} "
                        f"WHERE NOT (s.value IS m.value AND s.components = m.components) LIMIT 1").fetchone()
                    if conflict is not None:
                        where = dict(zip(KEY_COLUMNS, conflict[:len(KEY_COLUMNS)], strict=True))
                        raise MergeConflictError(
                            f"merge conflict: {path} has value {conflict[-2]!r} for {where}, but "
                            f"{'the target' if i == 0 else 'the target or an earlier source'} has {conflict[-1]!r}")
                    offered += db.execute(f"SELECT COUNT(*) FROM {alias}.scores").fetchone()[0]
                    added += db.execute(f"INSERT OR IGNORE INTO main.scores ({columns}) "
                                        f"SELECT {columns} FROM {alias}.scores").rowcount
                    runs_added += db.execute(f"INSERT OR IGNORE INTO main.runs ({', '.join(_RUN_COLUMNS)}) "
                                             f"SELECT {', '.join(_RUN_COLUMNS)} FROM {alias}.runs").rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            for alias in aliases:
                db.execute(f"DETACH DATABASE {alias}")
    return MergeSummary(target, tuple(paths), offered, added, runs_added)
