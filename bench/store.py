"""The results store: every proxy score with its protocol, in one SQLite file.

One row per (benchmark, network, architecture, dataset, proxy, option hash, seed), a UNIQUE key, where the
architecture is the benchmark's spec string (text) and ``network`` the benchmark's network option. Each
row is inserted the moment the score exists and committed at once (``INSERT OR IGNORE``), so a run killed
at any instant keeps every row it wrote and a rerun of the same command adds exactly the missing ones.
The file is in WAL mode with ``synchronous=NORMAL``: a commit survives the death of the process
(``kill -9``); an operating-system crash or power loss may lose the last commits but never corrupts the
file. Several processes may write one store at once (``busy_timeout``), though the intended parallel
layout is one store per shard, merged with :func:`merge_stores`.

Each row carries its protocol (benchmark and network, proxy class and options, the proxy's population
rule as data, input kind, batch source and mode, device, versions, ground-truth key, NaN policy), so any
two numbers can be told apart. NaN is stored as SQL NULL with ``nonfinite = 1``; ±inf are stored as they
are (and flagged).

Schema :data:`SCHEMA_VERSION` = 4. A store written by zenbench 0.1 (schema 1: NB201 only, keyed by
``space`` and the integer ``arch_index``) is converted in place when it is opened, in one transaction:
``space`` becomes ``benchmark``, the key uses the stored architecture string, ``network`` is
``default`` and TE-NAS rows get the rank-sum rule its ``combine_population`` applied then (the only
population combination 0.1 had). Stores of schemas 2 and 3 gain the columns later schemas added
(:data:`_ADDED_COLUMNS`). Older releases refuse a converted store.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 5
DEDUPE_NOTE = (
    "one member of each isomorphism class is scored and its score copied to the others (marked copied_from), "
    "for the proxies where that is exact in distribution: every proxy where the benchmark's isomorphic "
    "architectures build the same network; where they compute one function through networks that differ off the "
    "input-output paths, only the proxies declared output_paths_only (gradient and input-Jacobian ones), the "
    "others being scored on every member. A proxy at a given seed draws its weights from the same distribution "
    "for every member; a copy is not bit-identical to scoring that member, because the members' layers are "
    "created, and so their weights drawn, in another order.")
"""What ``dedupe`` does and why it is exact in distribution only (printed by reports of deduplicated runs;
the rows say ``copied_from``)."""
KEY_COLUMNS: tuple[str, ...] = ("benchmark", "network", "arch", "dataset", "proxy", "option_hash", "seed")


class StoreError(OSError):
    """A results store that is missing, unreadable, of another schema, or that cannot be merged."""


class MergeConflictError(StoreError):
    """Two stores hold different values for the same score key."""


@dataclass(frozen=True)
class ScoreRow:
    """One stored score and its protocol (the columns of the ``scores`` table)."""

    benchmark: str
    """Registry name of the benchmark (``nb201``, ``macro``, a plug-in's ``module:Class``)."""
    network: str
    """The benchmark's network option the factory built (``default``; NB201 also ``naslib``)."""
    arch: str
    """The benchmark's spec string of the architecture."""
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
    """``module:QualName`` of the proxy class (provenance; statistics never import it)."""
    options: Mapping[str, Any]
    higher_is_better: bool
    population_rule: Mapping[str, Any] | None
    """``PopulationRule.to_dict()`` of the proxy, or ``None``: applied by ``bench.statistics``."""
    gt_key: str
    disconnected: bool
    """The benchmark calls the architecture degenerate (NB201: a disconnected cell)."""
    nan_policy: str
    zenbench_version: str
    torch_version: str
    run_id: str
    created: float = field(default_factory=time.time)
    sample_seed: int | None = None
    """Seed of the architecture sample the row was scored for (``seed`` is the proxy's init seed)."""
    threads: int | None = None
    """``torch.get_num_threads()`` while the cost was measured."""
    load_avg: float | None = None
    """``os.getloadavg()[0]`` (the machine's 1-minute load) when the score was computed."""
    copied_from: str | None = None
    """``--dedupe``: the spec of the isomorphic architecture whose score this row copies (``None``: scored
    on this architecture itself)."""
    shared_with: str | None = None
    """The other proxies (comma-separated) whose shared pass this score was read from; its ``seconds`` is its
    share of the group's time (``None``: scored alone)."""

    @property
    def nonfinite(self) -> bool:
        return not math.isfinite(self.value)


_ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ScoreRow))
_SCORE_COLUMNS: tuple[str, ...] = (*_ROW_FIELDS, "nonfinite")
_RUN_COLUMNS: tuple[str, ...] = ("run_id", "started", "finished", "status", "command", "config", "zenbench_version",
                                 "torch_version", "python_version", "platform", "device", "n_computed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, status TEXT NOT NULL, command TEXT NOT NULL,
    config TEXT NOT NULL, zenbench_version TEXT, torch_version TEXT, python_version TEXT, platform TEXT,
    device TEXT, n_computed INTEGER NOT NULL DEFAULT 0
);
"""
_SCORES_TABLE = f"""
CREATE TABLE IF NOT EXISTS scores (
    benchmark TEXT NOT NULL, network TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL,
    proxy TEXT NOT NULL, option_hash TEXT NOT NULL, seed INTEGER NOT NULL,
    value REAL, components TEXT NOT NULL, seconds REAL, peak_memory_mb REAL, device TEXT,
    batch_source TEXT, batch_mode TEXT, batch_seed INTEGER, batch_size INTEGER, data_source TEXT,
    input_kind TEXT, proxy_class TEXT, options TEXT NOT NULL, higher_is_better INTEGER NOT NULL,
    population_rule TEXT, gt_key TEXT, disconnected INTEGER NOT NULL, nan_policy TEXT, zenbench_version TEXT,
    torch_version TEXT, run_id TEXT, created REAL, sample_seed INTEGER, threads INTEGER, load_avg REAL,
    copied_from TEXT, shared_with TEXT, nonfinite INTEGER NOT NULL,
    UNIQUE ({", ".join(KEY_COLUMNS)})
)"""
_FAILURES_TABLE = f"""
CREATE TABLE IF NOT EXISTS failures (
    benchmark TEXT NOT NULL, network TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL,
    proxy TEXT NOT NULL, option_hash TEXT NOT NULL, seed INTEGER NOT NULL, error TEXT NOT NULL,
    run_id TEXT, created REAL,
    UNIQUE ({", ".join(KEY_COLUMNS)})
)"""
_ADDED_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {
    3: (("sample_seed", "INTEGER"), ("threads", "INTEGER"), ("load_avg", "REAL")),
    4: (("copied_from", "TEXT"),),
    5: (("shared_with", "TEXT"),),
}
"""Columns each schema added to ``scores``. A converted schema-2 row gets ``sample_seed = seed`` (zenbench
used one seed for the sample and the proxies then) and no thread count or load; a converted row of schema 2
to 4 was scored on its own architecture and alone (``copied_from``, ``shared_with`` NULL)."""
_V1_COLUMNS = ("arch, dataset, proxy, option_hash, seed, value, components, seconds, peak_memory_mb, device, "
               "batch_source, batch_mode, batch_seed, batch_size, data_source, input_kind, proxy_class, options, "
               "higher_is_better, gt_key, disconnected, nan_policy, zenbench_version, torch_version, run_id, created, "
               "nonfinite")
_V1_TENAS = "proxies.tenas:TeNas"
"""The one schema-1 proxy class with a population combination: rank(tenas.ntk) + rank(tenas.lr), rounded to
its ``rank_precision``, when it computed both (``parts="ntk+lr"``)."""


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
        if self.path.is_file() and self.path.stat().st_size > 0:
            _check_is_store(self.path)  # read-only: a foreign or damaged file is refused before anything is written
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is not None and version[0] == "1":
                _migrate_v1(self._db)
            elif version is not None and version[0] in ("2", "3", "4"):
                _add_columns(self._db, int(version[0]))
            elif version is not None and version[0] != str(SCHEMA_VERSION):
                raise StoreError(f"results store {str(self.path)!r} has schema {version[0]}, this zenbench "
                                 f"reads schema {SCHEMA_VERSION} (and converts schemas 1 to 4)")
            self._db.executescript(_SCHEMA + _SCORES_TABLE + ";" + _FAILURES_TABLE + ";")
            if version is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
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
        """All recorded runs, oldest first (``config`` decoded). A run with no recorded end (``finished``
        empty: still running, or killed before it could record one) has as ``n_computed`` the scores it
        stored itself (copies within isomorphism classes not counted, as a finished run counts them)."""
        with self._reading():
            frame = pd.read_sql_query("SELECT * FROM runs ORDER BY started", self._db)
            frame["config"] = self._decode(frame, "config", json.loads)
            open_runs = frame["finished"].isna()
            if open_runs.any():
                ids = frame.loc[open_runs, "run_id"].tolist()
                counts = dict(self._db.execute(
                    f"SELECT run_id, COUNT(*) FROM scores WHERE copied_from IS NULL AND run_id IN "
                    f"({', '.join('?' * len(ids))}) GROUP BY run_id", ids).fetchall())
                frame.loc[open_runs, "n_computed"] = [counts.get(i, 0) for i in ids]
        return frame

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite's own errors (a truncated or damaged file) as one-line :class:`StoreError`s."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {str(self.path)!r} is damaged: {exc}") from None

    def _decode(self, frame: pd.DataFrame, column: str, convert: Callable[[Any], Any]) -> pd.Series:
        """``frame[column]`` converted row by row; a value of the wrong type is a one-line error naming the
        store, the column and the row (nothing in the file is changed)."""
        if convert in (_number, _integer) and frame[column].dtype.kind in "iuf" + ("b" if convert is _integer else ""):
            return frame[column]  # SQLite gave numbers throughout: nothing to check
        out = []
        for position, value in enumerate(frame[column]):
            try:
                out.append(convert(value))
            except (ValueError, TypeError) as exc:
                where = ", ".join(f"{c}={frame[c].iloc[position]!r}" for c in ("proxy", "arch", "seed")
                                  if c in frame.columns)
                raise StoreError(f"results store {str(self.path)!r}: column {column!r} holds {value!r} "
                                 f"({where or f'row {position}'}), which is not of its type ({exc})") from None
        return pd.Series(out, index=frame.index, dtype=object if column in _JSON_COLUMNS else None)

    # ------------------------------------------------------------------ scores

    def add(self, row: ScoreRow) -> bool:
        """Store one score and commit; ``False`` when its key was already there (nothing changed)."""
        values = _row_values(row)
        with self._reading():
            cursor = self._db.execute(self._insert_sql, [values[c] for c in _SCORE_COLUMNS])
            if cursor.rowcount == 1:
                self._db.execute(f"DELETE FROM failures WHERE {_KEY_MATCH}", [values[c] for c in KEY_COLUMNS])
        return cursor.rowcount == 1

    def add_many(self, rows: Sequence[ScoreRow]) -> int:
        """Store many scores in one transaction (an import); returns how many were new."""
        added = 0
        with self._reading():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    values = _row_values(row)
                    cursor = self._db.execute(self._insert_sql, [values[c] for c in _SCORE_COLUMNS])
                    if cursor.rowcount == 1:
                        added += 1
                        self._db.execute(f"DELETE FROM failures WHERE {_KEY_MATCH}", [values[c] for c in KEY_COLUMNS])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def add_run_records(self, runs: Sequence[Mapping[str, Any]]) -> int:
        """Copy run records (rows of :meth:`runs`, ``config`` as a mapping) into this store; returns how many
        were new (a run id already present is kept as it is)."""
        added = 0
        with self._reading():
            for run in runs:
                values = [_json(run.get(c) or {}) if c == "config" else run.get(c) for c in _RUN_COLUMNS]
                values[_RUN_COLUMNS.index("n_computed")] = values[_RUN_COLUMNS.index("n_computed")] or 0
                cursor = self._db.execute(f"INSERT OR IGNORE INTO runs ({', '.join(_RUN_COLUMNS)}) "
                                          f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", values)
                added += cursor.rowcount
        return added

    def add_failure(self, key: Mapping[str, Any], error: str, run_id: str | None = None) -> None:
        """Record that scoring ``key`` (the :data:`KEY_COLUMNS`) failed with ``error`` (one line); a rerun
        retries it, and a later success removes the record."""
        with self._reading():
            self._db.execute(
                f"INSERT OR REPLACE INTO failures ({', '.join(KEY_COLUMNS)}, error, run_id, created) "
                f"VALUES ({', '.join('?' * (len(KEY_COLUMNS) + 3))})",
                [key[c] for c in KEY_COLUMNS] + [error, run_id, time.time()])

    def failures(self) -> pd.DataFrame:
        """Recorded failures (key columns, ``error``, ``run_id``, ``created``), ordered by key."""
        with self._reading():
            return pd.read_sql_query(f"SELECT * FROM failures ORDER BY {', '.join(KEY_COLUMNS)}", self._db)

    def done(self, benchmark: str, network: str, dataset: str, proxy: str, option_hash: str, seed: int) -> set[str]:
        """Spec strings already scored for one proxy protocol."""
        with self._reading():
            cursor = self._db.execute(
                "SELECT arch FROM scores WHERE benchmark=? AND network=? AND dataset=? AND proxy=? AND option_hash=? "
                "AND seed=?", (benchmark, network, dataset, proxy, option_hash, seed))
            return {str(r[0]) for r in cursor}

    def copies(self, benchmark: str, network: str, dataset: str, proxy: str, option_hash: str,
               seed: int) -> dict[str, str]:
        """The rows of one proxy protocol that ``--dedupe`` copied: spec string → the spec it was copied from."""
        with self._reading():
            cursor = self._db.execute(
                "SELECT arch, copied_from FROM scores WHERE benchmark=? AND network=? AND dataset=? AND proxy=? "
                "AND option_hash=? AND seed=? AND copied_from IS NOT NULL",
                (benchmark, network, dataset, proxy, option_hash, seed))
            return {str(a): str(c) for a, c in cursor}

    def drop_copies(self, benchmark: str, network: str, dataset: str, proxy: str, option_hash: str, seed: int,
                    archs: Sequence[str]) -> int:
        """Delete copied rows (``--dedupe``) of one proxy protocol on ``archs``, so that a run scores them again
        (the runner does this where a copy is not exact); the number deleted. Own scores are never deleted."""
        with self._reading():
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            try:
                self._db.executemany(
                    "DELETE FROM scores WHERE benchmark=? AND network=? AND dataset=? AND proxy=? AND option_hash=? "
                    "AND seed=? AND arch=? AND copied_from IS NOT NULL",
                    [(benchmark, network, dataset, proxy, option_hash, seed, arch) for arch in archs])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            deleted = self._db.total_changes - before
        return deleted

    def protocols(self, benchmark: str, network: str, dataset: str, proxy: str, option_hash: str,
                  seed: int) -> set[tuple[str, str]]:
        """Distinct (batch mode, data source) pairs stored for one proxy protocol."""
        with self._reading():
            cursor = self._db.execute(
                "SELECT DISTINCT batch_mode, data_source FROM scores "
                "WHERE benchmark=? AND network=? AND dataset=? AND proxy=? AND option_hash=? AND seed=?",
                (benchmark, network, dataset, proxy, option_hash, seed))
            return {(str(a), str(b)) for a, b in cursor}

    def benchmarks(self) -> list[str]:
        """The benchmarks the stored scores belong to, sorted."""
        with self._reading():
            return sorted(str(r[0]) for r in self._db.execute("SELECT DISTINCT benchmark FROM scores"))

    def count(self) -> int:
        with self._reading():
            return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def scores(self, dataset: str | None = None, benchmark: str | None = None) -> pd.DataFrame:
        """Stored scores (``components``, ``options`` and ``population_rule`` decoded, NaN restored, flags as
        bool), ordered by key; optionally of one dataset and/or benchmark."""
        return self._select({c: v for c, v in (("dataset", dataset), ("benchmark", benchmark)) if v})

    def own_rows(self, benchmark: str, network: str, dataset: str, proxy: str, option_hash: str,
                 seed: int) -> list[ScoreRow]:
        """The rows of one proxy protocol scored on their own architecture (not copied by ``--dedupe``)."""
        frame = self._select(dict(benchmark=benchmark, network=network, dataset=dataset, proxy=proxy,
                                  option_hash=option_hash, seed=seed), "copied_from IS NULL")
        names = [f.name for f in fields(ScoreRow)]
        return [ScoreRow(**{n: (None if n in _OPTIONAL and _is_null(r[n]) else _python(r[n])) for n in names})
                for r in frame.to_dict("records")]

    def _select(self, conditions: Mapping[str, Any], extra: str | None = None) -> pd.DataFrame:
        clauses = [f"{c}=?" for c in conditions] + ([extra] if extra else [])
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._reading():
            frame = pd.read_sql_query(f"SELECT * FROM scores {where} ORDER BY {', '.join(KEY_COLUMNS)}", self._db,
                                      params=tuple(conditions.values()))
        for column in ("value", "seconds", "peak_memory_mb", "load_avg"):
            frame[column] = self._decode(frame, column, _number).astype(float)
        for column in ("seed", "sample_seed", "threads", "batch_seed", "batch_size"):
            frame[column] = self._decode(frame, column, _integer)
        for column in ("components", "options"):
            frame[column] = self._decode(frame, column, _mapping)
        frame["population_rule"] = self._decode(frame, "population_rule",
                                                lambda t: None if _is_null(t) else _mapping(t))
        for column in ("copied_from", "shared_with"):  # text or NULL: None, never NaN
            frame[column] = pd.Series([None if _is_null(v) else str(v) for v in frame[column]], index=frame.index,
                                      dtype=object)
        for column in ("higher_is_better", "disconnected", "nonfinite"):
            frame[column] = self._decode(frame, column, _integer).astype(bool)
        return frame


def _row_values(row: ScoreRow) -> dict[str, Any]:
    """The SQL values of a row's columns (NaN as NULL, mappings as JSON, flags as 0/1)."""
    values = {name: getattr(row, name) for name in _ROW_FIELDS}
    values["value"] = row.value if not math.isnan(row.value) else None
    values["components"] = _json(dict(row.components))
    values["options"] = _json(dict(row.options))
    values["population_rule"] = None if row.population_rule is None else _json(dict(row.population_rule))
    values["higher_is_better"] = int(row.higher_is_better)
    values["disconnected"] = int(row.disconnected)
    values["nonfinite"] = int(row.nonfinite)
    return values


_OPTIONAL = ("peak_memory_mb", "batch_seed", "batch_size", "sample_seed", "threads", "load_avg", "copied_from",
             "shared_with", "population_rule")
"""Row fields that may be NULL (``None`` in a :class:`ScoreRow`)."""
_JSON_COLUMNS = ("components", "options", "population_rule", "config")
_KEY_MATCH = " AND ".join(f"{c}=?" for c in KEY_COLUMNS)


def _python(value: Any) -> Any:
    """A numpy scalar as the Python number SQLite binds (other values unchanged)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes, dict)) else value


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float:
    """A stored REAL (NULL: NaN); text or bytes are the wrong type."""
    if _is_null(value):
        return math.nan
    if isinstance(value, (str, bytes)) or isinstance(value, bool):
        raise TypeError("expected a number")
    return float(value)


def _integer(value: Any) -> int | None:
    """A stored INTEGER (NULL: None)."""
    if _is_null(value):
        return None
    if isinstance(value, (str, bytes)) or float(value) != int(value):
        raise TypeError("expected an integer")
    return int(value)


def _mapping(text: Any) -> dict[str, Any]:
    decoded = json.loads(text) if isinstance(text, str) else None
    if not isinstance(decoded, dict):
        raise TypeError("expected a JSON object")
    return decoded


def _check_is_store(path: Path) -> None:
    """Refuse, without writing, a file that is not SQLite or an SQLite database that is not a zenbench
    store (no ``meta`` table with a schema version, but other tables)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
                if "meta" in tables else None
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open results store {str(path)!r}: {exc}") from None
    if version is None and tables:
        raise StoreError(f"{str(path)!r} is an SQLite database but not a zenbench results store (tables: "
                         f"{', '.join(sorted(tables))}); refusing to write to it")


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Convert a schema-1 store in place, in one transaction (see the module docstring)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_SCORES_TABLE.replace("CREATE TABLE IF NOT EXISTS scores", "CREATE TABLE scores_v2"))
        db.execute(f"INSERT INTO scores_v2 (benchmark, network, {_V1_COLUMNS}) "
                   f"SELECT space, 'default', {_V1_COLUMNS} FROM scores")
        for (options,) in db.execute("SELECT DISTINCT options FROM scores_v2 WHERE proxy_class=?",
                                     (_V1_TENAS,)).fetchall():
            decoded = json.loads(options)
            if decoded.get("parts", "ntk+lr") == "ntk+lr":
                rule = {"rule": "rank_sum", "components": ["tenas.ntk", "tenas.lr"],
                        "precision": decoded.get("rank_precision")}
                db.execute("UPDATE scores_v2 SET population_rule=? WHERE proxy_class=? AND options=?",
                           (_json(rule), _V1_TENAS, options))
        db.execute("DROP TABLE scores")
        db.execute("ALTER TABLE scores_v2 RENAME TO scores")
        _finish_migration(db, 1)
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _finish_migration(db: sqlite3.Connection, from_schema: int) -> None:
    """The common end of a conversion: ``sample_seed = seed`` where a schema before 3 had none (zenbench then
    used one seed for both), the schema version and where it came from, then commit."""
    if from_schema < 3:
        db.execute("UPDATE scores SET sample_seed=seed")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('converted_from_schema', ?)", (str(from_schema),))
    db.execute("COMMIT")


def _add_columns(db: sqlite3.Connection, from_schema: int) -> None:
    """Convert a store of schema 2, 3 or 4 in place, in one transaction: add the :data:`_ADDED_COLUMNS` of every
    later schema (and, from 2, the ``failures`` table)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for schema in range(from_schema + 1, SCHEMA_VERSION + 1):
            for column, kind in _ADDED_COLUMNS[schema]:
                db.execute(f"ALTER TABLE scores ADD COLUMN {column} {kind}")
        db.execute(_FAILURES_TABLE)
        _finish_migration(db, from_schema)
    except BaseException:
        db.execute("ROLLBACK")
        raise


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
    paths = list({Path(p).resolve(): Path(p) for p in sources}.values())  # a store given twice is merged once
    if not paths:
        raise StoreError("merge needs at least one source store")
    for path in paths:
        if not path.is_file():
            raise StoreError(f"source store {str(path)!r} does not exist")
        if target.exists() and path.resolve() == target.resolve():
            raise StoreError(f"source store {str(path)!r} is also the merge target")
    for path in paths:  # validates each schema before the target is touched
        ResultStore(path, create=False).close()
    created = not target.exists()
    try:
        offered, added, runs_added = _merge_into(target, paths)
    except BaseException:
        if created:  # nothing was written: leave no (empty) target behind
            for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                leftover.unlink(missing_ok=True)
        raise
    return MergeSummary(target, tuple(paths), offered, added, runs_added)


def _merge_into(target: Path, paths: Sequence[Path]) -> tuple[int, int, int]:
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
    return offered, added, runs_added
