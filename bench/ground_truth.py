"""NAS-Bench-201 ground truth: trained accuracy, parameters and FLOPs of every cell.

The NB201 backend of :class:`bench.benchmarks.nb201.Nb201Benchmark`, which turns it into the generic
``GroundTruthTable`` (indexed by architecture string) the bench layer reads; this module keeps the NB201
index, the official-file reader and the export.

Dong & Yang, "NAS-Bench-201", ICLR 2020. One :class:`GroundTruth` answers for each of the 15,625
architectures (indexed by their NB201 index) the accuracy on a dataset (``cifar10``, ``cifar100``,
``imagenet16``), split (``valid``, ``test``) and schedule (``hp="200"``, the ground truth, or the
low-fidelity ``"12"``), averaged over the trained seeds, plus parameters and FLOPs in millions.

Two backends fill the same table (the columns of ``nb201/nb201.csv`` in the shared data folder):

* the compact table ``nb201.csv`` (loads in a fraction of a second);
* the official files ``NAS-Bench-201-v1_0-e61699.pth`` / ``NAS-Bench-201-v1_1-096897.pth`` read
  through ``nas_201_api`` (minutes and many GB). The key per column follows the API exactly:
  ``cifar10_valid`` = ``get_more_info(i, 'cifar10-valid')['valid-accuracy']`` (x-valid of the net
  trained on 25k images), ``cifar10_test`` = ``get_more_info(i, 'cifar10')['test-accuracy']``
  (ori-test of the net trained on 50k), CIFAR-100 / ImageNet16-120 ``valid`` / ``test`` = x-valid /
  x-test; ``is_random=False`` (mean over seeds); params and FLOPs from the API's cost info
  (``get_cost_info``) of the 200-epoch results. :func:`export_csv` turns such a file into the table.

FLOPs differ by source: the compact table holds NASLib's counter (it also counts pooling and BN,
155.58 M for the largest net), a table exported from an official file holds NAS-Bench-201's own.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from search.spaces.nb201 import OPS, Nb201Arch, parse_arch

NUM_ARCHS = 15_625
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
SPLITS: tuple[str, ...] = ("valid", "test")
HPS: tuple[str, ...] = ("200", "12")
OFFICIAL_FILES: tuple[str, ...] = ("NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth")
"""Official benchmark files, newest first (the order :meth:`GroundTruth.load` tries them)."""
CSV_RELATIVE = Path("nb201") / "nb201.csv"
"""Where the compact table lies under a data folder (``$ZENBENCH_DATA``)."""
TRIALS_NAME = "nb201_cifar10_trials.csv"
"""Per-trial CIFAR-10 test accuracies, read from the folder of the compact table."""
NB201_HOME = "https://github.com/D-X-Y/NAS-Bench-201"

ACCURACY_COLUMNS: tuple[str, ...] = tuple(
    f"{prefix}{ds}_{split}" for prefix in ("", "hp12_") for ds in DATASETS for split in SPLITS
)
PARAMS_COLUMNS: tuple[str, ...] = tuple(f"params_{ds}_M" for ds in DATASETS)
FLOPS_COLUMNS: tuple[str, ...] = tuple(f"flops_{ds}_M" for ds in DATASETS)
COLUMNS: tuple[str, ...] = (
    "arch_str", *ACCURACY_COLUMNS[:6], *PARAMS_COLUMNS, *FLOPS_COLUMNS, *ACCURACY_COLUMNS[6:]
)
"""Columns of the compact table after ``index``, in file order."""
TRIALS_COLUMNS: tuple[str, ...] = ("index", "trial", "cifar10_test_v11")

_DATASET_ALIASES = {"cifar10": "cifar10", "cifar10-valid": "cifar10", "cifar100": "cifar100",
                    "imagenet16": "imagenet16", "imagenet16-120": "imagenet16"}
_API_DATASET = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
_API_ACCURACY = {  # (dataset, split) -> (API dataset key, get_more_info key); see the data README
    ("cifar10", "valid"): ("cifar10-valid", "valid-accuracy"),
    ("cifar10", "test"): ("cifar10", "test-accuracy"),
    ("cifar100", "valid"): ("cifar100", "valid-accuracy"),
    ("cifar100", "test"): ("cifar100", "test-accuracy"),
    ("imagenet16", "valid"): ("ImageNet16-120", "valid-accuracy"),
    ("imagenet16", "test"): ("ImageNet16-120", "test-accuracy"),
}
_ARCH_PATTERN = re.compile(
    r"\|{op}~0\|\+\|{op}~0\|{op}~1\|\+\|{op}~0\|{op}~1\|{op}~2\|".format(op="(?:" + "|".join(OPS) + ")")
)


class GroundTruthError(ValueError):
    """Ground truth that cannot be found, read or answered (one-line message naming the input)."""


def column_name(dataset: str = "cifar10", split: str = "test", hp: str | int = "200") -> str:
    """The ground-truth key of a (dataset, split, schedule), e.g. ``cifar10_test``, ``hp12_cifar100_valid``.

    ``dataset`` also accepts the API names ``cifar10-valid`` and ``ImageNet16-120``.
    """
    ds = _DATASET_ALIASES.get(str(dataset).lower())
    if ds is None:
        raise GroundTruthError(f"unknown NB201 dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise GroundTruthError(f"unknown NB201 split {split!r}; expected one of {', '.join(SPLITS)}")
    if str(hp) not in HPS:
        raise GroundTruthError(f"unknown NB201 schedule hp={hp!r}; expected one of {', '.join(HPS)}")
    return ("" if str(hp) == "200" else "hp12_") + f"{ds}_{split}"


@dataclass(frozen=True)
class GroundTruthSummary:
    """What ``zenbench gt info`` prints, as plain data."""

    source: str
    num_archs: int
    num_evaluated: int
    num_disconnected: int
    num_canonical: int
    optima: dict[str, tuple[int, float]]
    """Ground-truth key (hp=200) -> (NB201 index, accuracy) of the best architecture."""
    num_trials: int | None
    """Rows of the per-trial CIFAR-10 table, ``None`` when there is none."""


@dataclass(eq=False)
class GroundTruth:
    """NAS-Bench-201 ground truth as one table indexed by NB201 index (columns :data:`COLUMNS`).

    A row whose accuracies are all missing is an architecture the source did not evaluate; asking for
    a missing number raises :class:`GroundTruthError` instead of returning NaN.
    """

    table: pd.DataFrame
    source: str
    """Absolute path of the file it was loaded from."""
    trials_table: pd.DataFrame | Path | None = field(default=None, repr=False)
    """Per-trial CIFAR-10 accuracies, or the path of a csv read on first use."""

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, progress: bool = True) -> GroundTruth:
        """Find and load the ground truth.

        Lookup: ``path`` (a ``.csv`` table, an official ``.pth`` file, or a data folder holding
        ``nb201/nb201.csv``), then ``$ZENBENCH_DATA/nb201/nb201.csv``, then the official file under
        ``$TORCH_HOME`` (default ``~/.torch``) where ``nas_201_api`` looks for it. ``progress`` shows a
        bar while an official file is converted.
        """
        return cls._load_path(Path(path) if path is not None else default_source(), progress)

    @classmethod
    def _load_path(cls, path: Path, progress: bool) -> GroundTruth:
        if path.is_dir():
            candidate = path / CSV_RELATIVE
            if not candidate.is_file():
                raise GroundTruthError(f"{path}: folder has no {CSV_RELATIVE} (expected the ZENBENCH_DATA layout)")
            return cls.from_csv(candidate)
        if path.suffix == ".csv":
            return cls.from_csv(path)
        if path.suffix == ".pth":
            return cls.from_official(path, progress=progress)
        if not path.exists():
            raise GroundTruthError(f"{path}: no such file or folder")
        raise GroundTruthError(f"{path}: expected a .csv table, an official NAS-Bench-201 .pth file or a data folder")

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> GroundTruth:
        """Read the compact table and check its shape: the columns of :data:`COLUMNS`, indices
        0..15624 in order, valid and distinct architecture strings, numeric values, a complete last line."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise GroundTruthError(f"{path}: cannot read the NB201 table ({exc.strerror or exc})") from None
        if not raw.strip():
            raise GroundTruthError(f"{path}: NB201 table is empty (expected a header and 15,625 rows)")
        if not raw.endswith(b"\n"):
            raise GroundTruthError(f"{path}: NB201 table is truncated (its last line is incomplete)")
        try:
            table = pd.read_csv(io.BytesIO(raw), index_col="index", dtype={"arch_str": str}, encoding="utf-8")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GroundTruthError(f"{path}: not an NB201 table ({message})") from None
        _validate_table(table, str(path))
        trials = path.parent / TRIALS_NAME
        return cls(table, str(path.absolute()), trials if trials.is_file() else None)

    @classmethod
    def from_official(cls, path: str | os.PathLike, progress: bool = True) -> GroundTruth:
        """Read an official NAS-Bench-201 ``.pth`` file through ``nas_201_api`` into the table.

        The file is a pickle, so it is loaded with ``weights_only=False``: load only files you trust.
        """
        path = Path(path)
        api = _open_official(path)
        table, trials = _official_table(api, str(path), progress)
        return cls(table, str(path.absolute()), trials)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.table)

    @property
    def evaluated(self) -> np.ndarray:
        """NB201 indices (ascending) that have every 200-epoch accuracy."""
        mask = self.table[list(ACCURACY_COLUMNS[:6])].notna().all(axis=1).to_numpy()
        return self.table.index.to_numpy()[mask]

    def column(self, dataset: str = "cifar10", split: str = "test", hp: str | int = "200") -> str:
        """The ground-truth key, e.g. ``cifar10_test`` (see :func:`column_name`)."""
        return column_name(dataset, split, hp)

    def index(self, arch: str | Nb201Arch | Sequence[int]) -> int:
        """NB201 index of an architecture (string, :class:`Nb201Arch` or 6-tuple of op indices)."""
        text = parse_arch(arch).to_string()
        try:
            return self._index_of[text]
        except KeyError:
            raise GroundTruthError(f"architecture {text} is not in {self.source}") from None

    def arch(self, index: int) -> Nb201Arch:
        """The architecture with this NB201 index."""
        return Nb201Arch.from_string(self.table.at[self._check_index(index), "arch_str"])

    def accuracy(self, arch_or_index: int | str | Nb201Arch | Sequence[int], dataset: str = "cifar10",
                 split: str = "test", hp: str | int = "200") -> float:
        """Trained top-1 accuracy in percent, mean over seeds."""
        return float(self.accuracies([self._resolve(arch_or_index)], dataset, split, hp)[0])

    def accuracies(self, indices: Sequence[int] | np.ndarray, dataset: str = "cifar10", split: str = "test",
                   hp: str | int = "200") -> np.ndarray:
        """Accuracies (percent) of many NB201 indices, in the given order."""
        return self._values(indices, column_name(dataset, split, hp))

    def params(self, arch_or_index: int | str | Nb201Arch | Sequence[int], dataset: str = "cifar10") -> float:
        """Parameters in millions (the head differs by dataset)."""
        return float(self._values([self._resolve(arch_or_index)], f"params_{_dataset(dataset)}_M")[0])

    def flops(self, arch_or_index: int | str | Nb201Arch | Sequence[int], dataset: str = "cifar10") -> float:
        """FLOPs in millions as the source counts them (see the module docstring)."""
        return float(self._values([self._resolve(arch_or_index)], f"flops_{_dataset(dataset)}_M")[0])

    def sample(self, n: int | None, seed: int) -> list[int]:
        """``n`` distinct NB201 indices drawn with ``numpy.random.default_rng(seed)`` from the evaluated
        architectures (``None``: all of them, ascending).

        The indices come in drawn order, not sorted: a seeded permutation is cut after ``n``, so
        ``sample(k, seed) == sample(n, seed)[:k]`` for k <= n (a larger sample extends a smaller one).
        """
        pool = self.evaluated
        if n is None:
            return pool.tolist()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise GroundTruthError(f"sample size must be a non-negative integer or None, got {n!r}")
        if n > len(pool):
            raise GroundTruthError(f"cannot sample {n} architectures without replacement: {self.source} "
                                   f"has {len(pool)} evaluated")
        return np.random.default_rng(seed).permutation(pool)[:n].tolist()

    def trials(self) -> pd.DataFrame | None:
        """Per-trial CIFAR-10 test accuracies (columns ``index, trial, cifar10_test_v11``), or ``None``.

        From ``nb201_cifar10_trials.csv`` next to the compact table, or from the official file's
        per-seed ``cifar10`` ori-test results (``trial`` = position among the sorted seeds).
        """
        if isinstance(self.trials_table, Path):
            self.trials_table = _read_trials(self.trials_table)
        return self.trials_table

    def summary(self) -> GroundTruthSummary:
        """Counts and optima (hp=200, every dataset and split) for ``zenbench gt info``."""
        archs = [Nb201Arch.from_string(text) for text in self.table["arch_str"]]
        optima = {}
        for col in ACCURACY_COLUMNS[:6]:
            values = self.table[col]
            if values.notna().any():
                best = int(values.idxmax())
                optima[col] = (best, float(values.loc[best]))
        trials = self.trials()
        return GroundTruthSummary(
            source=self.source,
            num_archs=len(self),
            num_evaluated=len(self.evaluated),
            num_disconnected=sum(not a.is_connected for a in archs),
            num_canonical=len({a.canonical for a in archs}),
            optima=optima,
            num_trials=None if trials is None else len(trials),
        )

    # ------------------------------------------------------------------ internals

    @functools.cached_property
    def _index_of(self) -> dict[str, int]:
        return {text: int(i) for i, text in zip(self.table.index, self.table["arch_str"], strict=True)}

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index not in self.table.index:
            raise GroundTruthError(f"NB201 index {index!r} is not in {self.source} (0..{len(self) - 1})")
        return int(index)

    def _resolve(self, arch_or_index: int | str | Nb201Arch | Sequence[int]) -> int:
        if isinstance(arch_or_index, (int, np.integer)) and not isinstance(arch_or_index, bool):
            return self._check_index(arch_or_index)
        if isinstance(arch_or_index, (str, Nb201Arch, Sequence, np.ndarray)):
            return self.index(arch_or_index)  # type: ignore[arg-type]
        raise GroundTruthError(f"expected an NB201 index, architecture string, Nb201Arch or 6-tuple of op indices, "
                               f"got {arch_or_index!r}")

    def _values(self, indices: Sequence[int] | np.ndarray, column: str) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise GroundTruthError(f"NB201 indices must be a 1-D sequence of integers, got dtype {idx.dtype} "
                                   f"with shape {idx.shape}")
        outside = (idx < 0) | (idx >= len(self))
        if outside.any():
            raise GroundTruthError(f"NB201 index {int(idx[outside][0])} is not in {self.source} (0..{len(self) - 1})")
        values = self.table[column].to_numpy()[idx]
        missing = np.isnan(values)
        if missing.any():
            raise GroundTruthError(f"{self.source} has no {column} for NB201 index {int(idx[missing][0])} "
                                   f"({int(missing.sum())} of {idx.size} requested are missing)")
        return values


def default_source() -> Path:
    """Where :meth:`GroundTruth.load` looks without a path: ``$ZENBENCH_DATA/nb201/nb201.csv``, then the
    official file under ``$TORCH_HOME`` (newest first); a one-line error says what to do when neither exists."""
    looked = []
    data = os.environ.get("ZENBENCH_DATA")
    if data:
        candidate = Path(data) / CSV_RELATIVE
        if candidate.is_file():
            return candidate
        looked.append(str(candidate))
    torch_home = _torch_home()
    for name in OFFICIAL_FILES:
        candidate = torch_home / name
        if candidate.is_file():
            return candidate
    looked.append(str(torch_home / OFFICIAL_FILES[0]))
    raise GroundTruthError(
        "no NAS-Bench-201 ground truth found (looked for " + ", ".join(looked) + "): download "
        f"{OFFICIAL_FILES[0]} (linked from {NB201_HOME}) into {torch_home} ($TORCH_HOME), or set "
        f"ZENBENCH_DATA to a folder holding {CSV_RELATIVE}, or pass --ground-truth PATH"
    )


def _dataset(dataset: str) -> str:
    return column_name(dataset, "test", "200").rsplit("_", 1)[0]


def _torch_home() -> Path:
    """The folder ``nas_201_api`` reads the official file from: ``$TORCH_HOME``, default ``~/.torch``."""
    return Path(os.environ.get("TORCH_HOME") or Path.home() / ".torch").expanduser()


def _validate_table(table: pd.DataFrame, source: str) -> None:
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise GroundTruthError(f"{source}: NB201 table lacks column(s) {', '.join(missing)}")
    if len(table) != NUM_ARCHS or not (table.index.to_numpy() == np.arange(NUM_ARCHS)).all():
        raise GroundTruthError(f"{source}: NB201 table must hold indices 0..{NUM_ARCHS - 1} in order, "
                               f"found {len(table)} rows (truncated or corrupt?)")
    for col in COLUMNS[1:]:
        if table[col].dtype.kind != "f":
            try:
                table[col] = table[col].astype(np.float64)
            except (TypeError, ValueError):
                raise GroundTruthError(f"{source}: column {col} of the NB201 table is not numeric") from None
    texts = table["arch_str"]
    valid = texts.notna() & texts.astype(str).str.fullmatch(_ARCH_PATTERN)
    if not valid.all():
        bad = int(valid.idxmin())
        raise GroundTruthError(f"{source}: index {bad} has a malformed NB201 architecture string "
                               f"{table.at[bad, 'arch_str']!r}")
    if not texts.is_unique:
        dup = texts[texts.duplicated()].iloc[0]
        raise GroundTruthError(f"{source}: architecture {dup} appears more than once")


def _read_trials(path: Path) -> pd.DataFrame:
    try:
        trials = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise GroundTruthError(f"{path}: not a trials table ({str(exc).strip().splitlines()[0]})") from None
    if list(trials.columns) != list(TRIALS_COLUMNS) or trials.isna().any().any():
        raise GroundTruthError(f"{path}: trials table must have complete columns {', '.join(TRIALS_COLUMNS)}")
    return trials


# ----------------------------------------------------------------------------- official files


@contextlib.contextmanager
def _legacy_torch_load() -> Iterator[None]:
    """Let ``nas_201_api`` (2020) call ``torch.load`` as it did then: with ``weights_only=False``.

    Current torch defaults to ``weights_only=True``, which refuses the pickled result objects of
    the benchmark files. The patch covers the API's constructor only and is undone on exit.
    """
    original = torch.load
    torch.load = functools.partial(original, weights_only=False)
    try:
        yield
    finally:
        torch.load = original


def _open_official(path: Path):  # -> nas_201_api.NASBench201API
    if not path.is_file():
        raise GroundTruthError(f"{path}: no such NAS-Bench-201 file")
    from nas_201_api import NASBench201API  # heavy, and only needed here

    try:
        with _legacy_torch_load():
            api = NASBench201API(str(path), verbose=False)
    except Exception as exc:  # the API and the unpickler fail with any exception type on a bad file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GroundTruthError(f"{path}: not a NAS-Bench-201 benchmark file ({message})") from None
    meta = list(api.meta_archs)
    if len(meta) != NUM_ARCHS or not all(isinstance(t, str) and _ARCH_PATTERN.fullmatch(t) for t in meta):
        raise GroundTruthError(f"{path}: expected the {NUM_ARCHS} NB201 architecture strings, "
                               f"found {len(meta)} entries (not the NB201 topology space?)")
    return api


def _official_table(api, source: str, progress: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One row per architecture of the file (NaN where it has no result) and the per-trial table."""
    columns: dict[str, np.ndarray] = {c: np.full(NUM_ARCHS, np.nan) for c in COLUMNS[1:]}
    trial_rows: list[tuple[int, int, float]] = []
    evaluated = [i for i in range(NUM_ARCHS) if i in api.arch2infos_dict]
    if not evaluated:
        raise GroundTruthError(f"{source}: the NAS-Bench-201 file holds no evaluated architecture")
    for i in tqdm(evaluated, desc="NB201 file -> table", unit="arch", disable=not progress, mininterval=0.5):
        try:
            _official_row(api, i, columns, trial_rows)
        except Exception as exc:  # a malformed result object fails with any exception type
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GroundTruthError(f"{source}: cannot read the results of index {i} ({message})") from None
    table = pd.DataFrame({"arch_str": list(api.meta_archs), **columns}, index=pd.RangeIndex(NUM_ARCHS, name="index"))
    trials = pd.DataFrame(trial_rows, columns=list(TRIALS_COLUMNS)) if trial_rows else None
    return table[list(COLUMNS)], trials


def _official_row(api, i: int, columns: dict[str, np.ndarray], trial_rows: list[tuple[int, int, float]]) -> None:
    """Fill row ``i`` of ``columns`` from the API and append its per-trial CIFAR-10 results."""
    for hp in HPS:
        for api_ds in dict.fromkeys(api_ds for api_ds, _ in _API_ACCURACY.values()):
            try:
                info = api.get_more_info(i, api_ds, hp=hp, is_random=False)
            except KeyError:  # this file has no such results (v1_0 trained 12 epochs on cifar10-valid only)
                continue
            for (ds, split), (key_ds, key) in _API_ACCURACY.items():
                if key_ds == api_ds and key in info:
                    columns[column_name(ds, split, hp)][i] = info[key]
    full = api.arch2infos_dict[i]["200"]  # get_cost_info without its defensive deep copy
    for ds in DATASETS:
        with contextlib.suppress(KeyError):
            costs = full.get_compute_costs(_API_DATASET[ds])
            columns[f"params_{ds}_M"][i] = costs["params"]
            columns[f"flops_{ds}_M"][i] = costs["flops"]
    with contextlib.suppress(KeyError):
        for trial, seed in enumerate(full.get_dataset_seeds("cifar10")):
            test = full.get_metrics("cifar10", "ori-test", is_random=seed)
            trial_rows.append((i, trial, float(test["accuracy"])))


def export_csv(official: str | os.PathLike, csv_path: str | os.PathLike, progress: bool = True) -> GroundTruth:
    """Convert an official NAS-Bench-201 file to the compact table at ``csv_path``.

    Also writes the per-trial CIFAR-10 accuracies as ``nb201_cifar10_trials.csv`` in the same folder
    (where :meth:`GroundTruth.from_csv` looks for them). Both files are written to a temporary name
    and renamed, so an interrupted export leaves no half-written table. Returns the loaded ground truth.
    """
    csv_path = Path(csv_path)
    if csv_path.suffix != ".csv":
        raise GroundTruthError(f"{csv_path}: the compact table must be a .csv file")
    if not csv_path.parent.is_dir():
        raise GroundTruthError(f"{csv_path}: folder {csv_path.parent} does not exist")
    gt = GroundTruth.from_official(official, progress=progress)
    _write_atomic(gt.table, csv_path, "%.6f", index=True)
    trials = gt.trials()
    if trials is not None:
        _write_atomic(trials, csv_path.parent / TRIALS_NAME, "%.4f", index=False)
    return gt


def _write_atomic(frame: pd.DataFrame, path: Path, float_format: str, index: bool) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        frame.to_csv(tmp, float_format=float_format, index=index)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GroundTruthError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
