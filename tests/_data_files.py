"""Small image datasets in the official layouts, written into a test's tmp_path with known pixels."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np


def random_images(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    """uint8 N x 3 x side x side."""
    return rng.integers(0, 256, size=(n, 3, side, side), dtype=np.uint8)


def write_pickle(path: Path, images: np.ndarray, labels: np.ndarray, label_key: str = "labels", **extra) -> None:
    """One batch in the official pickle layout: ``data`` N x 3*H*W (R, G, B planes) plus labels."""
    entry = {"data": images.reshape(len(images), -1), label_key: [int(x) for x in labels], **extra}
    path.write_bytes(pickle.dumps(entry, protocol=2))


def write_image_folder(root: Path, splits: dict[str, dict[str, np.ndarray]], suffix: str = ".png") -> None:
    """``root/<split>/<class>/<NNNN><suffix>`` from uint8 N x 3 x H x W arrays (PNG: lossless)."""
    from PIL import Image

    for split, classes in splits.items():
        for name, images in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:04d}{suffix}")


def tar_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Pack ``folder``'s contents (relative names) into ``target`` (.tar or .tar.gz), plus raw ``extra`` members."""
    mode = "w:gz" if target.name.endswith(".gz") else "w"
    with tarfile.open(target, mode) as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        for name, blob in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return target
