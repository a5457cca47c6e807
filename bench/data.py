"""Seeded image batches (for proxies) and whole splits (for training), normalised as NAS-Bench-201 trained.

Normalisation is the NB201 training code's (xautodl ``get_datasets``): per RGB channel, pixels / 255
minus ``mean``, divided by ``std``, with mean/std (in 0..255 units) CIFAR-10 (125.3, 123.0, 113.9) /
(63.0, 62.1, 66.7), CIFAR-100 (129.3, 124.1, 112.4) / (68.2, 65.4, 70.4), ImageNet16-120
(122.68, 116.66, 104.01) / (63.22, 61.26, 65.09). No augmentation: a proxy sees test-time pixels.

Sources (``source=``):

* ``"auto"``: the real data for the dataset under the data root (``root=`` or ``$ZENBENCH_DATA``):
  CIFAR-10 ``cifar-10-batches-py`` (full official), ``cifar10-subset/cifar-10-batches-py``,
  ``cifar10-jpeg.tar.gz``; CIFAR-100 ``cifar-100-python``; ImageNet16 ``ImageNet16`` (full),
  ``imagenet16-sample/ImageNet16``. With no CIFAR-100 copy, a *batch* for ``cifar100`` uses
  CIFAR-10 images (labels 0..9, CIFAR-100 normalisation, 100-class head) and says so in
  ``Batch.source``; :func:`load_dataset` (training) prefers the largest copy and never substitutes.
* a path: a CIFAR-10 pickle folder (whichever ``data_batch_*`` exist, ``test_batch``), a CIFAR-100
  pickle folder (``train``, ``test``, ``fine_labels``), an ImageNet16 pickle folder
  (``train_data_batch_*``, ``val_data``; labels 1..1000, ImageNet16-120 keeps 1..120 as 0..119; no md5
  check), or an image folder / ``.tar(.gz)`` laid out ``{train,test}/<class>/*.jpg`` (classes sorted by
  name, as torchvision's ``ImageFolder``). Image files are decoded only when a batch needs them.
* ``"noise"``: data-free standard Gaussian images with uniformly random labels.

A batch is ``numpy.random.default_rng(seed).permutation(N)[:batch_size]`` of the split: the same
(dataset, split, source, batch size, seed) gives the same batch, and a smaller batch is a prefix of a
larger one with the same seed (what ``Batch.take`` assumes).
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import pickle
import re
import tarfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from proxies.base import Batch
from search.spaces.nb201 import DATASETS

SPLITS: tuple[str, ...] = ("train", "test")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
_NB201_NORMALIZATION = {  # xautodl datasets/get_dataset_with_transform.py, 0..255 units, RGB
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "imagenet16": ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}
_AUTO_BATCH = {  # dataset -> candidates under the data root, most faithful first
    "cifar10": ("cifar-10-batches-py", "cifar10-subset/cifar-10-batches-py", "cifar10-jpeg.tar.gz", "cifar10-jpeg"),
    "cifar100": ("cifar-100-python",),
    "imagenet16": ("ImageNet16", "imagenet16-sample/ImageNet16"),
}
_AUTO_TRAINING = {  # for training, the copy with the most images first
    "cifar10": ("cifar-10-batches-py", "cifar10-jpeg.tar.gz", "cifar10-jpeg", "cifar10-subset/cifar-10-batches-py"),
    "cifar100": ("cifar-100-python",),
    "imagenet16": ("ImageNet16", "imagenet16-sample/ImageNet16"),
}
_IMAGENET16_CLASSES = DATASETS["imagenet16"][0]


class DataError(ValueError):
    """Image data that cannot be found or read (one-line message naming the path)."""


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return dataset


def normalization(dataset: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) per RGB channel in 0..1 units, as NAS-Bench-201 normalised ``dataset``."""
    mean, std = _NB201_NORMALIZATION[_check_dataset(dataset)]
    return tuple(m / 255 for m in mean), tuple(s / 255 for s in std)  # type: ignore[return-value]


def normalize(images: Tensor, dataset: str) -> Tensor:
    """uint8 (or 0..255 float) images N x 3 x H x W -> float32 normalised as NB201, on their device."""
    mean, std = (torch.tensor(v, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
                 for v in normalization(dataset))
    return (images.float() / 255 - mean) / std


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data folder: ``explicit`` (a ``--data`` flag), else ``$ZENBENCH_DATA``, else ``None``."""
    value, origin = (explicit, "data folder") if explicit is not None else (os.environ.get("ZENBENCH_DATA"),
                                                                           "ZENBENCH_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: {origin} is not a folder")
    return path


def portable_paths(value: Any) -> Any:
    """``value`` with the data folder (``$ZENBENCH_DATA``: resolved, absolute, or as given where that is a path)
    written ``$ZENBENCH_DATA`` in every string; mappings and lists (a run's configuration, a protocol's options)
    are rewritten throughout, anything else returned as it is. Runs record the paths they read
    (``Batch.source``, the ground truth); what zenbench publishes (score tables, reports) should read the same
    wherever the data lies."""
    if isinstance(value, Mapping):
        return {key: portable_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_paths(item) for item in value]
    if not isinstance(value, str) or not os.environ.get("ZENBENCH_DATA"):
        return value
    given = os.path.expanduser(os.environ["ZENBENCH_DATA"]).rstrip(os.sep) or os.sep
    root = Path(given)
    as_given = [given] if os.sep in given else []  # e.g. ``../shared/data``; a bare word is too loose to match
    for form in dict.fromkeys((str(root.resolve()), str(root.absolute()), *as_given)):
        value = re.sub(r"(?<![\w./-])" + re.escape(form) + r"(?![\w.-])", "$ZENBENCH_DATA", value)
    return value


# ----------------------------------------------------------------------------- one split on disk


@dataclass(frozen=True, eq=False)
class ImageSplit:
    """One split of an image dataset on disk: labels known up front, pixels read on demand."""

    kind: str
    """``cifar10-pickle``, ``cifar100-pickle``, ``imagenet16-pickle``, ``image-folder`` or ``image-tar``."""
    path: Path
    split: str
    labels: np.ndarray
    """int64 class index of every image."""
    names: tuple[str, ...]
    """Where each image lies (``data_batch_1[17]``, ``train/cat/0001.jpg``)."""
    resolution: int | None
    """Side of every image when the format fixes it (pickles), else ``None`` (checked when decoded)."""
    _reader: Callable[[np.ndarray, bool], np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, indices: Sequence[int] | np.ndarray, progress: bool = False) -> np.ndarray:
        """uint8 pixels N x 3 x H x W of the given images (decoding only those)."""
        return self._reader(np.asarray(indices, dtype=np.int64), progress)


def open_split(source: str | os.PathLike, split: str = "train") -> ImageSplit:
    """Open one split of a pickle folder, image folder or image tar (kind told by its layout).

    Opened splits are cached per (path, modification time, size), so repeated batches are cheap.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = Path(source).expanduser()
    kind = _detect_kind(path)
    stat = path.stat()
    return _open_cached(kind, str(path), split, stat.st_mtime_ns, stat.st_size)


def _detect_kind(path: Path) -> str:
    if path.is_file():
        if path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
            return "image-tar"
        raise DataError(f"{path}: not a data source (expected a pickle folder, an image folder or a .tar.gz)")
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    names = {p.name for p in path.iterdir()}
    if "test_batch" in names or any(n.startswith("data_batch_") for n in names):
        return "cifar10-pickle"
    if "val_data" in names or any(n.startswith("train_data_batch_") for n in names):
        return "imagenet16-pickle"
    if (path / "train").is_file() or (path / "test").is_file():
        return "cifar100-pickle"
    if (path / "train").is_dir() or (path / "test").is_dir():
        return "image-folder"
    raise DataError(f"{path}: no data_batch_*/test_batch (CIFAR-10), train/test files (CIFAR-100), "
                    f"train_data_batch_*/val_data (ImageNet16) or train/ test/ image folders")


@functools.lru_cache(maxsize=4)
def _open_cached(kind: str, path: str, split: str, mtime_ns: int, size: int) -> ImageSplit:
    opener = {"cifar10-pickle": _open_cifar10, "cifar100-pickle": _open_cifar100,
              "imagenet16-pickle": _open_imagenet16, "image-folder": _open_folder, "image-tar": _open_tar}[kind]
    return opener(Path(path), split)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # a corrupt pickle fails with any of a dozen exception types
        raise DataError(f"{path}: not a readable python pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(entry).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _pickled_images(files: list[Path], label_key: str, side: int,
                    keep: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Concatenate ``data`` (N x 3*side*side uint8, R, G, B planes) and labels of pickle batches,
    keeping per file only the images whose labels pass ``keep`` (a boolean mask of the labels)."""
    pixels, labels, names = [], [], []
    for file in files:
        entry = _load_pickle(file)
        if "data" not in entry or label_key not in entry:
            raise DataError(f"{file}: pickle lacks 'data' or {label_key!r} (keys: {', '.join(map(str, entry))})")
        data, lab = np.asarray(entry["data"]), np.asarray(entry[label_key])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side or len(lab) != len(data):
            raise DataError(f"{file}: expected uint8 data N x {3 * side * side} with N labels, "
                            f"found {data.dtype} {data.shape} and {len(lab)} labels")
        lab = lab.astype(np.int64)
        rows = np.arange(len(data)) if keep is None else np.flatnonzero(keep(lab))
        pixels.append(data[rows].reshape(-1, 3, side, side))
        labels.append(lab[rows])
        names.extend(f"{file.name}[{i}]" for i in rows)
    return np.concatenate(pixels), np.concatenate(labels), names


def _numbered(path: Path, prefix: str) -> list[Path]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    found = [(int(m.group(1)), p) for p in path.iterdir() if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def _in_memory(kind: str, path: Path, split: str, pixels: np.ndarray, labels: np.ndarray,
               names: list[str]) -> ImageSplit:
    return ImageSplit(kind, path, split, labels, tuple(names), pixels.shape[-1],
                      lambda idx, progress: np.ascontiguousarray(pixels[idx]))


def _require(files: list[Path], path: Path, what: str) -> list[Path]:
    if not files:
        raise DataError(f"{path}: no {what}")
    return files


def _open_cifar10(path: Path, split: str) -> ImageSplit:
    files = _numbered(path, "data_batch_") if split == "train" else [path / "test_batch"]
    files = _require([f for f in files if f.is_file()], path,
                     "data_batch_* files" if split == "train" else "test_batch")
    return _in_memory("cifar10-pickle", path, split, *_pickled_images(files, "labels", 32))


def _open_cifar100(path: Path, split: str) -> ImageSplit:
    files = _require([f for f in [path / split] if f.is_file()], path, f"CIFAR-100 {split!r} file")
    return _in_memory("cifar100-pickle", path, split, *_pickled_images(files, "fine_labels", 32))


def _open_imagenet16(path: Path, split: str) -> ImageSplit:
    files = _numbered(path, "train_data_batch_") if split == "train" else [path / "val_data"]
    files = _require([f for f in files if f.is_file()], path,
                     "train_data_batch_* files" if split == "train" else "val_data")
    # ImageNet16-120: classes 1..120 of 1..1000, filtered file by file (the full train split is ~1 GB)
    pixels, labels, names = _pickled_images(files, "labels", 16, keep=lambda y: (y >= 1) & (y <= _IMAGENET16_CLASSES))
    return _in_memory("imagenet16-pickle", path, split, pixels, labels - 1, names)


def _decode(blob: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    try:
        with Image.open(io.BytesIO(blob)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: cannot decode image ({exc})") from None


def _decoding_reader(fetch: Callable[[int], tuple[bytes, str]]) -> Callable[[np.ndarray, bool], np.ndarray]:
    """Reader that decodes only the requested images; all must share one size."""
    def read(indices: np.ndarray, progress: bool) -> np.ndarray:
        images = []
        for i in tqdm(indices, desc="decoding images", unit="img", disable=not progress, mininterval=0.5):
            blob, name = fetch(int(i))
            image = _decode(blob, name)
            if images and image.shape != images[0].shape:
                raise DataError(f"{name}: image is {image.shape[1]}x{image.shape[0]}, others are "
                                f"{images[0].shape[1]}x{images[0].shape[0]}")
            images.append(image)
        if not images:
            return np.zeros((0, 3, 0, 0), dtype=np.uint8)
        return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
    return read


def _folder_entries(paths: list[PurePosixPath], split: str, where: Path) -> tuple[list[int], np.ndarray]:
    """Positions of ``split/<class>/<image>`` entries (sorted by path) and their labels; classes are the
    sorted class names of both splits, so train and test agree."""
    def is_image(p: PurePosixPath) -> bool:
        return len(p.parts) >= 3 and p.parts[-3] in SPLITS and p.suffix.lower() in IMAGE_SUFFIXES

    classes = sorted({p.parts[-2] for p in paths if is_image(p)})
    chosen = sorted((p, i) for i, p in enumerate(paths) if is_image(p) and p.parts[-3] == split)
    if not chosen:
        raise DataError(f"{where}: no images under {split}/<class>/ ({', '.join(IMAGE_SUFFIXES)})")
    lookup = {c: k for k, c in enumerate(classes)}
    return [i for _, i in chosen], np.array([lookup[p.parts[-2]] for p, _ in chosen], dtype=np.int64)


def _open_folder(path: Path, split: str) -> ImageSplit:
    files = [p for s in SPLITS if (path / s).is_dir() for p in (path / s).glob("*/*") if p.is_file()]
    relative = [PurePosixPath(p.relative_to(path).as_posix()) for p in files]
    order, labels = _folder_entries(relative, split, path)
    chosen = [files[i] for i in order]

    def fetch(i: int) -> tuple[bytes, str]:
        try:
            return chosen[i].read_bytes(), str(chosen[i])
        except OSError as exc:
            raise DataError(f"{chosen[i]}: cannot read ({exc.strerror or exc})") from None

    return ImageSplit("image-folder", path, split, labels, tuple(str(relative[i]) for i in order), None,
                      _decoding_reader(fetch))


@functools.lru_cache(maxsize=1)
def _tar_index(path: str, mtime_ns: int, size: int) -> tuple[memoryview, list[tuple[PurePosixPath, int, int]]]:
    """The decompressed archive (kept in memory, shared by both splits) and its files as
    (name, data offset, size)."""
    where = Path(path)
    try:
        raw = where.read_bytes()
        if where.name.lower().endswith((".gz", ".tgz")):
            raw = gzip.decompress(raw)
        members = tarfile.open(fileobj=io.BytesIO(raw), mode="r:").getmembers()
    except OSError as exc:
        raise DataError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError) as exc:
        raise DataError(f"{where}: not a readable (gzipped) tar archive ({exc})") from None
    return memoryview(raw), [(PurePosixPath(m.name), m.offset_data, m.size) for m in members if m.isfile()]


def _open_tar(path: Path, split: str) -> ImageSplit:
    """Index the members of an image tar; a batch decodes only its own members."""
    stat = path.stat()
    raw, members = _tar_index(str(path), stat.st_mtime_ns, stat.st_size)
    order, labels = _folder_entries([name for name, _, _ in members], split, path)
    chosen = [members[i] for i in order]

    def fetch(i: int) -> tuple[bytes, str]:
        name, offset, size = chosen[i]
        if offset + size > len(raw):
            raise DataError(f"{path}:{name}: archive ends inside this member (truncated)")
        return raw[offset:offset + size].tobytes(), f"{path}:{name}"

    return ImageSplit("image-tar", path, split, labels, tuple(str(name) for name, _, _ in chosen), None,
                      _decoding_reader(fetch))


# ----------------------------------------------------------------------------- public entry points


def _resolve(dataset: str, source: str | os.PathLike, root: str | os.PathLike | None,
             training: bool) -> tuple[Path, str | None]:
    """(path, substitute) for a source; ``substitute`` names borrowed images (CIFAR-10 for CIFAR-100)."""
    if str(source) != "auto":
        return Path(source), None
    base = data_root(root)
    if base is None:
        raise DataError("no data folder: set ZENBENCH_DATA or pass --data-root DIR (or use noise images: "
                        "--data noise; data_source='noise' in Python)")
    candidates = (_AUTO_TRAINING if training else _AUTO_BATCH)[dataset]
    for relative in candidates:
        if (base / relative).exists():
            return base / relative, None
    if dataset == "cifar100" and not training:
        for relative in _AUTO_BATCH["cifar10"]:
            if (base / relative).exists():
                return base / relative, "cifar10-images"
    raise DataError(f"{base}: no {dataset} data (looked for {', '.join(candidates)})")


def _check_fits(images: ImageSplit, dataset: str, side: int | None) -> None:
    classes, resolution = DATASETS[dataset]
    if side is not None and side != resolution:
        raise DataError(f"{images.path}: images are {side}x{side}, {dataset} networks take {resolution}x{resolution}")
    if len(images) and (images.labels.min() < 0 or images.labels.max() >= classes):
        raise DataError(f"{images.path}: labels span {images.labels.min()}..{images.labels.max()}, "
                        f"{dataset} has {classes} classes")


def load_batch(dataset: str, batch_size: int, seed: int, source: str | os.PathLike = "auto", split: str = "train",
               root: str | os.PathLike | None = None) -> Batch:
    """``batch_size`` images with labels, normalised as NB201 trained ``dataset`` (see the module doc).

    ``Batch.source`` records ``dataset:split:/absolute/path:seed=N`` (``dataset:noise:gaussian:seed=N`` for noise;
    ``cifar100:train:cifar10-images:path:seed=N`` when CIFAR-10 images stand in for CIFAR-100).
    """
    dataset = _check_dataset(dataset)
    classes, resolution = DATASETS[dataset]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if str(source) == "noise":
        image_seed, label_seed = np.random.SeedSequence(seed).spawn(2)
        pixels = np.random.default_rng(image_seed).standard_normal((batch_size, 3, resolution, resolution),
                                                                   dtype=np.float32)
        labels = np.random.default_rng(label_seed).integers(0, classes, size=batch_size)
        return Batch(torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64)), classes,
                     f"{dataset}:noise:gaussian:seed={seed}")
    path, substitute = _resolve(dataset, source, root, training=False)
    images = open_split(path, split)
    _check_fits(images, dataset, images.resolution)
    if batch_size > len(images):
        raise DataError(f"{path}: {split} split has {len(images)} images, batch needs {batch_size}")
    chosen = np.random.default_rng(seed).permutation(len(images))[:batch_size]
    pixels = images.read(chosen)
    _check_fits(images, dataset, pixels.shape[-1])
    origin = f"{substitute}:{path.absolute()}" if substitute else str(path.absolute())
    return Batch(normalize(torch.from_numpy(pixels), dataset), torch.from_numpy(images.labels[chosen]), classes,
                 f"{dataset}:{split}:{origin}:seed={seed}")


def load_dataset(dataset: str, split: str = "train", source: str | os.PathLike = "auto",
                 root: str | os.PathLike | None = None, progress: bool = True) -> tuple[Tensor, Tensor, int]:
    """A whole split for training: (uint8 images N x 3 x H x W, int64 labels, number of classes).

    Pixels stay uint8 (a quarter of the memory; keep them on the device and :func:`normalize` after
    augmentation). ``progress`` shows a bar while image files are decoded.
    """
    dataset = _check_dataset(dataset)
    if str(source) == "noise":
        raise DataError("source 'noise' has no dataset to train on; pass real data")
    path, _ = _resolve(dataset, source, root, training=True)
    images = open_split(path, split)
    _check_fits(images, dataset, images.resolution)
    pixels = images.read(np.arange(len(images)), progress=progress)
    _check_fits(images, dataset, pixels.shape[-1])
    return torch.from_numpy(pixels), torch.from_numpy(images.labels.copy()), DATASETS[dataset][0]
