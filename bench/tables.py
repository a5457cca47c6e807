"""Published score tables: a store's scores of one benchmark and dataset as one compressed CSV plus a sidecar.

A table is what a user downloads and what a scoring run that spans sessions commits: one row per
architecture (``arch``: the benchmark's short code where it has one, e.g. NB201's six op indices ``130234``,
else its spec string; see :func:`bench.benchmarks.base.encode_spec`; ``copied_from`` cells likewise), one
column per proxy protocol (its value), and beside it
the per-row measurements of that protocol (``LABEL.seconds`` always; ``LABEL.FIELD`` for every other stored
field that varies between rows, such as ``load_avg`` or ``batch_seed``; ``LABEL:COMPONENT`` for each named
component, e.g. ``tenas:tenas.ntk``). Everything that is constant within a protocol (options and their hash,
init seed, network, batch source and mode, batch size, device, threads where constant, input kind, population
rule, versions, ground-truth key, NaN policy) is written once, in the sidecar ``TABLE.json``, with the run
records (command and configuration) of the store. Paths under the data folder are written ``$ZENBENCH_DATA/...``
(:func:`bench.data.portable_paths`): a published table names the data it read, not the machine it ran on.

:func:`export_table` writes a table from a store; :func:`import_table` writes a table's rows into a store
(what ``zenbench bench --resume-from`` and ``zenbench report --table`` do), so a rerun computes only what the
table lacks. The round trip is exact for every stored field except ``created`` (set to the export time) and
the cost measurements, which are rounded (:data:`ROUNDING`: seconds to 0.1 ms, memory to 0.01 MB, load to
0.01); values and components keep every bit (``repr`` of the float). An empty ``LABEL.seconds`` cell means
"not scored"; a scored NaN keeps its seconds. A column whose values equal, bit for bit, a column the
benchmark's own ground truth publishes (params and FLOPs counts: a network that matches the benchmark's
reproduces them exactly) is written as a reference (``from_ground_truth`` in the sidecar) and read back
from the ground truth through the data folder, so a table never holds a copy of the benchmark's data. This
module knows no particular benchmark and no proxy.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import lzma
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import benchmarks
from bench.benchmarks.base import ArchSpecError, GroundTruthTable, arch_codes, decode_spec, encode_spec
from bench.data import portable_paths
from bench.statistics import option_differences
from bench.store import MergeConflictError, ResultStore, ScoreRow, StoreError, merge_stores, software_versions

TABLE_FORMAT = "zenbench-score-table"
TABLE_SUFFIXES = (".csv.xz", ".csv.gz", ".csv")
"""Table file names: xz (LZMA, about 40% smaller than gzip on score tables: a full-space NB201 table is 1.3 MB
instead of 2.2 MB), gzip, or plain CSV."""
TABLE_VERSION = 2
"""Version 2 keys rows by the benchmark's architecture code (sidecar ``arch_codes``); version 1, still read, by
the spec string."""
ROUNDING: dict[str, int] = {"seconds": 4, "peak_memory_mb": 2, "load_avg": 2}
"""Decimal places a measurement is rounded to in a table (the table is for ranking, the store keeps all)."""
_PROTOCOL_KEY = ("proxy", "option_hash", "seed", "network")
"""What tells two columns of one table apart (the rest of the store key, benchmark and dataset, is the table's)."""
_PER_ROW_ALWAYS = ("value", "seconds")
_DROPPED = ("created", "arch", "benchmark", "dataset", *_PROTOCOL_KEY)
_INTEGERS = ("seed", "batch_seed", "batch_size", "sample_seed", "threads")
_BOOLEANS = ("higher_is_better", "disconnected")
_MAPPINGS = ("options", "population_rule")
_TEXTS = ("network", "device", "batch_source", "batch_mode", "data_source", "input_kind", "proxy_class", "gt_key",
          "nan_policy", "zenbench_version", "torch_version", "run_id", "copied_from", "shared_with", *_MAPPINGS)
"""Row fields read back as text (a spec such as ``12`` in ``copied_from`` is not a number)."""


class TableError(StoreError):
    """A score table that is missing, malformed, or cannot be written."""


@dataclass(frozen=True)
class TableSummary:
    """What :func:`export_table` wrote, or what :func:`import_table` read and added."""

    table: Path
    sidecar: Path
    benchmark: str
    dataset: str
    n_archs: int
    n_protocols: int
    n_scores: int
    added: int = 0
    """Rows new to the store (:func:`import_table` only)."""


def sidecar_path(table: str | os.PathLike) -> Path:
    """``scores.csv.xz`` (or ``.csv.gz``, ``.csv``) → ``scores.json`` (the protocol file beside a table)."""
    path = Path(table)
    name = path.name
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    raise TableError(f"score table {str(path)!r}: expected a {', '.join(TABLE_SUFFIXES)} file name")


def column_labels(protocols: pd.DataFrame) -> list[str]:
    """One readable, unique label per protocol (rows of ``proxy, option_hash, seed, network, options``): the
    proxy name; where a name has several protocols, ``name[opt=value,...]`` with the options that differ
    between them, then ``@network`` and ``#seed`` where those differ."""
    labels = [str(p) for p in protocols["proxy"]]
    for proxy, group in protocols.groupby("proxy", sort=False):
        if len(group) == 1:
            continue
        differences = option_differences([dict(o) for o in group["options"]])
        for position, (index, row) in enumerate(group.iterrows()):
            label = str(proxy) + differences[position]
            if group["network"].nunique() > 1:
                label += f"@{row['network']}"
            if group["seed"].nunique() > 1:
                label += f"#{row['seed']}"
            labels[protocols.index.get_loc(index)] = label
    if len(set(labels)) < len(labels):  # identical options under different hashes: fall back to the hash
        labels = [f"{lab}@{h}" for lab, h in zip(labels, protocols["option_hash"], strict=True)]
    return labels


def _plain(value: Any) -> Any:
    """A JSON-able scalar from a pandas/numpy cell (NaN/None → None)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _published_column(values: pd.Series, gt: GroundTruthTable | None) -> str | None:
    """The non-accuracy ground-truth column (params, FLOPs) equal to ``values`` (indexed by spec) bit for
    bit on every scored architecture, or ``None``."""
    if gt is None or values.empty:
        return None
    for column in gt.table.columns:
        if column not in gt.accuracy_keys and pd.api.types.is_numeric_dtype(gt.table[column]) and \
                np.array_equal(values.to_numpy(float), gt.table[column].reindex(values.index).to_numpy(float)):
            return str(column)
    return None


def _ground_truth(benchmark: Any) -> GroundTruthTable | None:
    """The benchmark's ground truth through its own lookup, or ``None`` where it cannot be read."""
    try:
        return benchmark.ground_truth() if benchmark is not None else None
    except (benchmarks.BenchmarkError, OSError):
        return None


def _resolved(name: str) -> Any:
    """The benchmark called ``name``, or ``None`` where it cannot be loaded (its table then keys by spec)."""
    try:
        return benchmarks.resolve(name)
    except benchmarks.BenchmarkError:
        return None


def export_table(store: str | os.PathLike, table: str | os.PathLike, *, benchmark: str | None = None,
                 dataset: str | None = None) -> TableSummary:
    """Write the scores of ``benchmark`` and ``dataset`` in ``store`` as ``table`` (a name ending in one of
    :data:`TABLE_SUFFIXES`) and its sidecar (``.json``). ``benchmark``/``dataset`` [None: the store's only
    one; several is an error naming them]. Overwrites an existing table (export the store that holds
    everything, e.g. after
    ``--resume-from`` of the old table)."""
    table = Path(table)
    sidecar = sidecar_path(table)
    with ResultStore(store, create=False) as results:
        rows, runs = results.scores(dataset=dataset, benchmark=benchmark), results.runs()
    rows = rows.assign(**{name: rows[name].map(portable_paths) for name in _TEXTS if name in rows})
    runs = runs.apply(lambda column: column.map(portable_paths))
    for column, chosen in (("benchmark", benchmark), ("dataset", dataset)):
        present = sorted(set(rows[column])) if not rows.empty else []
        if chosen is None and len(present) > 1:
            raise TableError(f"{store}: holds scores of several {column}s ({', '.join(present)}); pick one with "
                             f"--{column}")
    if rows.empty:
        raise TableError(f"{store}: no scores{' of ' + benchmark if benchmark else ''}"
                         f"{' on ' + dataset if dataset else ''} to export")
    bench_name, dataset_name = str(rows["benchmark"].iloc[0]), str(rows["dataset"].iloc[0])
    protocols = rows.drop_duplicates(list(_PROTOCOL_KEY))[[*_PROTOCOL_KEY, "options"]].reset_index(drop=True)
    labels = column_labels(protocols)
    benchmark_ = _resolved(bench_name)
    coded = arch_codes(benchmark_)
    code = {spec: encode_spec(benchmark_, spec) for spec in set(rows["arch"])} if coded else {}
    archs = sorted(set(rows["arch"]), key=lambda spec: code.get(spec, spec))
    data: dict[str, Any] = {"arch": [code.get(spec, spec) for spec in archs]}
    columns: dict[str, Any] = {}
    gt = _ground_truth(benchmark_)
    candidates = [f.name for f in fields(ScoreRow) if f.name not in _DROPPED and f.name not in _PER_ROW_ALWAYS
                  and f.name != "components"]
    for label, (_, key) in zip(labels, protocols.iterrows(), strict=True):
        mask = np.logical_and.reduce([rows[c] == key[c] for c in _PROTOCOL_KEY])
        part = rows[mask].set_index("arch")
        group = part.reindex(archs)
        scored = group["seconds"].notna()
        constant, per_row = {}, []
        for name in candidates:
            cells = part[name].map(lambda v: json.dumps(v, sort_keys=True, default=str)
                                   if isinstance(v, Mapping) or v is None else v)
            if cells.nunique(dropna=False) <= 1:
                value = part[name].iloc[0]
                constant[name] = dict(value) if isinstance(value, Mapping) else _plain(value)
                if name == "copied_from" and constant[name] is not None:
                    constant[name] = code.get(constant[name], constant[name])
            else:
                per_row.append(name)
        published = _published_column(group["value"][scored], gt)
        if published is None:
            data[label] = group["value"].to_numpy()
        data[f"{label}.seconds"] = group["seconds"].round(ROUNDING["seconds"]).to_numpy()
        for name in per_row:
            values = group[name]
            if name in ROUNDING:
                values = values.astype(float).round(ROUNDING[name])
            elif name in _MAPPINGS:
                values = values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                                    else json.dumps(v, sort_keys=True))
            elif name == "copied_from":
                values = values.map(lambda v: code.get(v, v) if isinstance(v, str) else None)
            data[f"{label}.{name}"] = values.to_numpy()
        component_names = sorted({k for c in part["components"] for k in c})
        for component in component_names:
            data[f"{label}:{component}"] = group["components"].map(
                lambda c, k=component: c.get(k, math.nan) if isinstance(c, Mapping) else math.nan).to_numpy()
        columns[label] = {"key": {c: _plain(key[c]) for c in _PROTOCOL_KEY}, "constant": constant,
                          "per_row": per_row, "components": component_names, "n_scores": int(scored.sum())}
        if published is not None:
            columns[label]["from_ground_truth"] = published
    wide = pd.DataFrame(data)
    zenbench_version, torch_version = software_versions()
    meta = {
        "format": TABLE_FORMAT, "version": TABLE_VERSION, "benchmark": bench_name, "dataset": dataset_name,
        "arch_codes": coded,
        "n_archs": len(archs), "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "exported_by": {"zenbench": zenbench_version, "torch": torch_version}, "source_store": str(store),
        "rounding": ROUNDING, "columns": columns,
        "runs": [{k: _plain(v) for k, v in run.items()} for run in runs.to_dict("records")
                 if _run_touches(run, bench_name, dataset_name)],
    }
    table.parent.mkdir(parents=True, exist_ok=True)
    try:
        wide.to_csv(table, index=False, compression=_compression(table))
        sidecar.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
    except OSError as exc:
        raise TableError(f"cannot write score table {str(table)!r}: {exc}") from None
    return TableSummary(table, sidecar, bench_name, dataset_name, len(archs), len(labels), int(rows.shape[0]))


def _compression(table: Path) -> dict[str, Any] | None:
    """The pandas compression of a table file, by its suffix (xz at its strongest preset)."""
    if table.name.endswith(".xz"):
        return {"method": "xz", "preset": 9 | lzma.PRESET_EXTREME}
    return {"method": "gzip"} if table.name.endswith(".gz") else None


def _run_touches(run: Mapping[str, Any], benchmark: str, dataset: str) -> bool:
    config = run.get("config") or {}
    return config.get("benchmark", benchmark) == benchmark and config.get("dataset", dataset) == dataset


def read_table(table: str | os.PathLike) -> tuple[list[ScoreRow], list[dict[str, Any]], dict[str, Any]]:
    """The rows, run records and sidecar of a table; a missing or malformed file is a one-line
    :class:`TableError` naming it and the fault."""
    table = Path(table)
    sidecar = sidecar_path(table)
    for path in (table, sidecar):
        if not path.is_file():
            raise TableError(f"score table {str(table)!r}: {str(path)!r} does not exist")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise TableError(f"score table sidecar {str(sidecar)!r} is not readable JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != TABLE_FORMAT:
        raise TableError(f"{str(sidecar)!r} is not a zenbench score table sidecar (format {TABLE_FORMAT!r})")
    if meta.get("version") not in (1, TABLE_VERSION):
        raise TableError(f"score table {str(table)!r} has version {meta.get('version')!r}; this zenbench reads "
                         f"versions 1 to {TABLE_VERSION}")
    text = {"arch": str}
    for label, column in meta.get("columns", {}).items():
        text.update({f"{label}.{name}": str for name in column.get("per_row", []) if name in _TEXTS})
    try:
        wide = pd.read_csv(table, dtype=text, keep_default_na=False, na_values=[""],
                           compression="infer")
    except (OSError, ValueError, EOFError, gzip.BadGzipFile, lzma.LZMAError, pd.errors.ParserError) as exc:
        raise TableError(f"score table {str(table)!r} is not a readable CSV: {exc}") from None
    if meta.get("arch_codes"):
        _decode_archs(table, meta, wide)
    created = _dt.datetime.fromisoformat(meta["exported"]).timestamp()
    references = {label: _from_ground_truth(table, meta["benchmark"], label, column["from_ground_truth"],
                                            wide["arch"][wide[f"{label}.seconds"].notna()])
                  for label, column in meta["columns"].items()
                  if column.get("from_ground_truth") and f"{label}.seconds" in wide.columns}  # else: named below
    if references:
        wide = pd.concat([wide, pd.DataFrame(references, index=wide.index)], axis=1)
    rows: list[ScoreRow] = []
    for label, column in meta["columns"].items():
        needed = [label, f"{label}.seconds", *(f"{label}.{n}" for n in column["per_row"]),
                  *(f"{label}:{c}" for c in column["components"])]
        missing = [c for c in [*needed, "arch"] if c not in wide.columns]
        if missing:
            raise TableError(f"score table {str(table)!r}: column(s) {', '.join(missing)} named by the sidecar are "
                             "missing")
        for _, cells in wide[wide[f"{label}.seconds"].notna()].iterrows():
            fields_ = {**column["constant"], **column["key"], "benchmark": meta["benchmark"],
                       "dataset": meta["dataset"], "arch": cells["arch"], "created": created}
            fields_.update({name: cells[f"{label}.{name}"] for name in column["per_row"]})
            fields_["value"] = float(cells[label])
            fields_["seconds"] = float(cells[f"{label}.seconds"])
            fields_["components"] = {c: float(cells[f"{label}:{c}"]) for c in column["components"]
                                     if not pd.isna(cells[f"{label}:{c}"])}
            rows.append(_score_row(fields_, table, label))
    return rows, list(meta.get("runs", [])), meta


def _decode_archs(table: Path, meta: dict[str, Any], wide: pd.DataFrame) -> None:
    """Turn a version-2 table's architecture codes (``arch``, ``copied_from``) back into spec strings, in place,
    through the benchmark's ``from_arch_code``; a benchmark that cannot be loaded or a bad code: :class:`TableError`."""
    try:
        benchmark = benchmarks.resolve(meta["benchmark"])
    except benchmarks.BenchmarkError as exc:
        raise TableError(f"score table {str(table)!r} keys architectures by {meta['benchmark']}'s codes, which need "
                         f"the benchmark: {exc}") from None
    if "arch" not in wide.columns:
        raise TableError(f"score table {str(table)!r}: no 'arch' column")
    codes = set(wide["arch"])
    for label, column in meta.get("columns", {}).items():
        if "copied_from" in column.get("per_row", []) and f"{label}.copied_from" in wide.columns:
            codes.update(c for c in wide[f"{label}.copied_from"] if isinstance(c, str))
        elif isinstance(column.get("constant", {}).get("copied_from"), str):
            codes.add(column["constant"]["copied_from"])
    try:
        spec = {c: decode_spec(benchmark, c) for c in codes if isinstance(c, str)}
    except ArchSpecError as exc:
        raise TableError(f"score table {str(table)!r}: {exc}") from None
    if len(spec) < len(codes):
        raise TableError(f"score table {str(table)!r}: an 'arch' cell is empty")
    wide["arch"] = wide["arch"].map(spec)
    for label, column in meta.get("columns", {}).items():
        if f"{label}.copied_from" in wide.columns and "copied_from" in column.get("per_row", []):
            wide[f"{label}.copied_from"] = wide[f"{label}.copied_from"].map(
                lambda c: spec[c] if isinstance(c, str) else c)
        elif isinstance(column.get("constant", {}).get("copied_from"), str):
            column["constant"]["copied_from"] = spec[column["constant"]["copied_from"]]


def _from_ground_truth(table: Path, benchmark: str, label: str, column: str, archs: pd.Series) -> pd.Series:
    """The values of a column written as a reference to the ground truth's ``column`` (see the module
    docstring), for the scored ``archs``; a ground truth that cannot be read or lacks them: :class:`TableError`."""
    try:
        gt = benchmarks.resolve(benchmark).ground_truth()
    except benchmarks.BenchmarkError as exc:
        raise TableError(f"score table {str(table)!r}: column {label!r} is {benchmark}'s ground-truth column "
                         f"{column!r}, which cannot be read: {exc}") from None
    if column not in gt.table.columns:
        raise TableError(f"score table {str(table)!r}: column {label!r} refers to ground-truth column {column!r}, "
                         f"which {gt.source} lacks")
    values = gt.table[column].reindex(archs)
    if values.isna().any():
        raise TableError(f"score table {str(table)!r}: column {label!r}: {gt.source} has no {column!r} for "
                         f"{values.index[values.isna()][0]!r}")
    return pd.Series(values.to_numpy(float), index=archs.index)


def _score_row(values: dict[str, Any], table: Path, label: str) -> ScoreRow:
    """A :class:`ScoreRow` from a table's cells, each converted to its stored type."""
    for name in _INTEGERS:
        value = values.get(name)
        values[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
    for name in _BOOLEANS:
        values[name] = bool(values[name])
    for name in _MAPPINGS:
        value = values.get(name)
        values[name] = json.loads(value) if isinstance(value, str) else value
    for name in ("peak_memory_mb", "load_avg"):
        value = values.get(name)
        values[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    for name in ("copied_from", "shared_with"):  # an empty cell: scored on its own architecture, alone
        if isinstance(values.get(name), float):
            values[name] = None
    try:
        return ScoreRow(**values)
    except TypeError as exc:
        raise TableError(f"score table {str(table)!r}: column {label!r} does not describe a score ({exc})") from None


def table_scores(tables: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored scores and run records of one or more tables together, as :meth:`ResultStore.scores` and
    :meth:`ResultStore.runs` give them (the tables staged in a temporary store; a conflict between them is
    :func:`import_table`'s error)."""
    with tempfile.TemporaryDirectory() as folder:
        for table in tables:
            import_table(table, Path(folder) / "tables.db")
        with ResultStore(Path(folder) / "tables.db", create=False) as results:
            return results.scores(), results.runs()


def import_table(table: str | os.PathLike, store: str | os.PathLike) -> TableSummary:
    """Write the rows of ``table`` into ``store`` (created if new) with their run records, through
    :func:`bench.store.merge_stores`: rows already there must hold the same value and components, else
    nothing is written and :class:`~bench.store.MergeConflictError` names the first conflicting key."""
    rows, runs, meta = read_table(table)
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / "table.db"
        with ResultStore(staged) as results:
            results.add_many(rows)
            results.add_run_records(runs)
        try:
            added = merge_stores([staged], store).added
        except MergeConflictError as exc:  # name the table, not the staging file
            raise MergeConflictError(str(exc).replace(str(staged), str(table))) from None
    return TableSummary(Path(table), sidecar_path(table), meta["benchmark"], meta["dataset"], int(meta["n_archs"]),
                        len(meta["columns"]), len(rows), added)
