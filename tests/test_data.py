"""Image batches and datasets: real shared data (CIFAR-10 pickles and JPEG tar, ImageNet16 sample),
small files written here in every layout, corrupt files, noise."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_files import random_images, tar_folder, write_image_folder, write_pickle
from conftest import require_data

import bench.data as data
from bench.data import DataError, load_batch, load_dataset, normalization, normalize, open_split, portable_paths

SUBSET = "cifar10-subset/cifar-10-batches-py"
IMAGENET16 = "imagenet16-sample/ImageNet16"


def pixels_of(batch_images: torch.Tensor, dataset: str) -> np.ndarray:
    """Undo the normalisation: back to uint8 pixels."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in normalization(dataset))
    restored = ((batch_images * std + mean) * 255).round()
    assert (restored - (batch_images * std + mean) * 255).abs().max() < 1e-3  # it was exact uint8 pixels
    return restored.to(torch.uint8).numpy()


def raw_pickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


def one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


# ----------------------------------------------------------------------------- normalisation


def test_normalize_by_hand() -> None:
    image = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
    image[0, 0] = 255  # pure red
    x = normalize(image, "cifar10")
    assert x.dtype == torch.float32
    assert x[0, :, 0, 0].tolist() == pytest.approx([(255 - 125.3) / 63.0, -123.0 / 62.1, -113.9 / 66.7], abs=1e-5)
    assert normalize(image, "imagenet16")[0, 2, 0, 0].item() == pytest.approx(-104.01 / 65.09, abs=1e-5)


def test_real_cifar10_normalises_to_zero_mean_unit_std() -> None:
    """NB201's statistics are those of CIFAR-10's training set: a channel mix-up would be off by ~0.2."""
    batch = load_batch("cifar10", 4000, seed=0, source=require_data(SUBSET))
    assert batch.images.mean(dim=(0, 2, 3)).abs().max() < 0.03
    assert (batch.images.std(dim=(0, 2, 3)) - 1).abs().max() < 0.02


# ----------------------------------------------------------------------------- real data


def test_cifar10_pickle_batch_holds_real_images_with_their_labels() -> None:
    folder = require_data(SUBSET)
    batch = load_batch("cifar10", 64, seed=0, source=folder)
    assert batch.images.shape == (64, 3, 32, 32) and batch.images.dtype == torch.float32
    assert batch.num_classes == 10 and batch.source == f"cifar10:train:{folder.absolute()}:seed=0"
    raw = raw_pickle(folder / "data_batch_1")
    rows = {row.tobytes(): i for i, row in enumerate(raw["data"])}
    for image, label in zip(pixels_of(batch.images, "cifar10"), batch.labels.tolist(), strict=True):
        i = rows[image.reshape(-1).tobytes()]  # KeyError: not an image of the file
        assert raw["labels"][i] == label


def test_batches_are_seeded_and_nested() -> None:
    folder = require_data(SUBSET)
    a = load_batch("cifar10", 64, seed=5, source=folder, split="test")
    b = load_batch("cifar10", 64, seed=5, source=folder, split="test")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, load_batch("cifar10", 64, seed=6, source=folder, split="test").images)
    small = load_batch("cifar10", 16, seed=5, source=folder, split="test")
    assert torch.equal(small.images, a.images[:16]) and torch.equal(small.labels, a.labels[:16])
    assert torch.equal(a.take(16).images, small.images)


def test_jpeg_tar_matches_the_pickles() -> None:
    """test/<class>/NNNN.jpg is the NNNN-th image of that class in the official order: the subset's
    test_batch is the official test batch's first 1,000 images."""
    tar = require_data("cifar10-jpeg.tar.gz")
    folder = require_data(SUBSET)
    raw = raw_pickle(folder / "test_batch")
    class_names = raw_pickle(folder / "batches.meta")["label_names"]
    jpeg = open_split(tar, "test")
    assert len(jpeg) == 10_000 and np.bincount(jpeg.labels).tolist() == [1000] * 10
    position = {name: i for i, name in enumerate(jpeg.names)}
    seen = [0] * 10
    wanted, expected = [], []
    for i, label in enumerate(raw["labels"][:60]):
        wanted.append(position[f"test/{class_names[label]}/{seen[label]:04d}.jpg"])
        expected.append(raw["data"][i].reshape(3, 32, 32))
        seen[label] += 1
    assert jpeg.labels[wanted].tolist() == raw["labels"][:60]  # sorted class names == CIFAR-10 label order
    decoded = jpeg.read(wanted).astype(np.float64)
    mse = ((decoded - np.stack(expected)) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255**2 / mse)
    assert psnr.min() > 22 and np.median(psnr) > 27  # lossy JPEG, ~30 dB (data README)


def test_tar_batches_decode_only_what_they_need(monkeypatch: pytest.MonkeyPatch) -> None:
    tar = require_data("cifar10-jpeg.tar.gz")
    calls = []
    decode = data._decode
    monkeypatch.setattr(data, "_decode", lambda blob, name: calls.append(name) or decode(blob, name))
    batch = load_batch("cifar10", 8, seed=1, source=tar)
    assert len(calls) == 8 and batch.images.shape == (8, 3, 32, 32)
    assert batch.source == f"cifar10:train:{tar.absolute()}:seed=1"
    assert all(c.startswith(f"{tar}:train/") for c in calls)


def test_auto_sources_under_the_data_root(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENBENCH_DATA", str(data_root))
    subset = (data_root / SUBSET).absolute()
    c10 = load_batch("cifar10", 32, seed=2)
    assert c10.source == f"cifar10:train:{subset}:seed=2"
    c100 = load_batch("cifar100", 32, seed=2)  # no CIFAR-100 copy: CIFAR-10 images, said so
    assert c100.num_classes == 100 and c100.source == f"cifar100:train:cifar10-images:{subset}:seed=2"
    assert np.array_equal(pixels_of(c100.images, "cifar100"), pixels_of(c10.images, "cifar10"))
    assert not torch.allclose(c100.images, c10.images)  # normalised for the CIFAR-100 network
    imagenet16 = (data_root / IMAGENET16).absolute()
    assert load_batch("imagenet16", 8, seed=0).source.startswith(f"imagenet16:train:{imagenet16}:")
    with pytest.raises(DataError) as err:
        load_dataset("cifar100", "train")  # training never substitutes
    one_line(err, "cifar100", str(data_root))
    # training prefers the full JPEG copy over the 4,000-image subset
    root = tmp_path / "root"
    (root / "cifar10-subset").mkdir(parents=True)
    (root / SUBSET).symlink_to((data_root / SUBSET).resolve())
    (root / "cifar10-jpeg.tar.gz").symlink_to((data_root / "cifar10-jpeg.tar.gz").resolve())
    images, labels, classes = load_dataset("cifar10", "test", root=root, progress=False)
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8 and classes == 10
    assert labels.dtype == torch.int64 and labels.bincount().tolist() == [1000] * 10
    monkeypatch.delenv("ZENBENCH_DATA")
    with pytest.raises(DataError) as err:
        load_batch("cifar10", 8, seed=0)
    one_line(err, "ZENBENCH_DATA")


def test_imagenet16_sample() -> None:
    folder = require_data(IMAGENET16)
    batch = load_batch("imagenet16", 32, seed=0, source=folder)
    assert batch.images.shape == (32, 3, 16, 16) and batch.num_classes == 120
    kept = {7, 8, 10, 11, 12, 24, 52, 59, 61, 83, 96, 101, 104, 108}  # data README, labels 1..1000
    assert set(batch.labels.tolist()) <= {k - 1 for k in kept}
    raw = raw_pickle(folder / "train_data_batch_1")
    rows = {row.tobytes(): i for i, row in enumerate(raw["data"])}
    for image, label in zip(pixels_of(batch.images, "imagenet16"), batch.labels.tolist(), strict=True):
        assert raw["labels"][rows[image.reshape(-1).tobytes()]] == label + 1
    images, labels, classes = load_dataset("imagenet16", "test", source=folder)
    assert images.shape == (700, 3, 16, 16) and classes == 120 and labels.max() < 120


# ----------------------------------------------------------------------------- layouts written here


def test_cifar10_pickles_read_whichever_batches_exist(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    parts = {n: (random_images(rng, 5, 32), rng.integers(0, 10, 5)) for n in (1, 3, 12)}
    for n, (images, labels) in parts.items():
        write_pickle(tmp_path / f"data_batch_{n}", images, labels)
    test_images, test_labels = random_images(rng, 4, 32), rng.integers(0, 10, 4)
    write_pickle(tmp_path / "test_batch", test_images, test_labels)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))
    images, labels, classes = load_dataset("cifar10", "train", source=tmp_path)
    assert classes == 10
    assert np.array_equal(images.numpy(), np.concatenate([parts[n][0] for n in (1, 3, 12)]))  # numeric order
    assert labels.tolist() == np.concatenate([parts[n][1] for n in (1, 3, 12)]).tolist()
    images, labels, _ = load_dataset("cifar10", "test", source=tmp_path)
    assert np.array_equal(images.numpy(), test_images) and labels.tolist() == test_labels.tolist()
    assert open_split(tmp_path, "train").names[5] == "data_batch_3[0]"


def test_cifar100_layout_uses_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images, fine = random_images(rng, 6, 32), np.array([0, 99, 50, 3, 3, 7])
    write_pickle(tmp_path / "train", images, fine, label_key="fine_labels", coarse_labels=[19] * 6)
    write_pickle(tmp_path / "test", images[:2], fine[:2], label_key="fine_labels", coarse_labels=[1, 2])
    got, labels, classes = load_dataset("cifar100", "train", source=tmp_path)
    assert classes == 100 and np.array_equal(got.numpy(), images) and labels.tolist() == fine.tolist()
    batch = load_batch("cifar100", 6, seed=0, source=tmp_path)
    assert sorted(batch.labels.tolist()) == sorted(fine.tolist())
    with pytest.raises(DataError) as err:
        load_batch("cifar10", 2, seed=0, source=tmp_path)  # labels up to 99 on a 10-class head
    one_line(err, str(tmp_path), "10 classes")


def test_imagenet16_keeps_classes_1_to_120(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = random_images(rng, 6, 16)
    write_pickle(tmp_path / "train_data_batch_1", images[:3], np.array([1, 121, 120]))
    write_pickle(tmp_path / "train_data_batch_2", images[3:], np.array([1000, 60, 0]))
    write_pickle(tmp_path / "val_data", images[:2], np.array([5, 6]))
    got, labels, classes = load_dataset("imagenet16", "train", source=tmp_path)
    assert classes == 120 and labels.tolist() == [0, 119, 59]
    assert np.array_equal(got.numpy(), images[[0, 2, 4]])
    assert open_split(tmp_path, "train").names == ("train_data_batch_1[0]", "train_data_batch_1[2]",
                                                   "train_data_batch_2[1]")
    with pytest.raises(DataError) as err:
        load_batch("cifar10", 2, seed=0, source=tmp_path)
    one_line(err, "16x16", "32x32")


@pytest.mark.parametrize("packing", ["folder", ".tar", ".tar.gz"])
def test_image_folder_and_tars_read_exact_pixels(tmp_path: Path, packing: str) -> None:
    rng = np.random.default_rng(3)
    splits = {"train": {"zebra": random_images(rng, 3, 32), "ant": random_images(rng, 2, 32),
                        "moth": random_images(rng, 1, 32)},
              "test": {"ant": random_images(rng, 2, 32), "zebra": random_images(rng, 1, 32)}}
    folder = tmp_path / "images"
    write_image_folder(folder, splits)
    source = folder if packing == "folder" else tar_folder(folder, tmp_path / f"images{packing}",
                                                           extra={"README.md": b"not an image"})
    images, labels, classes = load_dataset("cifar10", "train", source=source)
    # classes sorted by name over both splits: ant=0, moth=1, zebra=2
    assert labels.tolist() == [0, 0, 1, 2, 2, 2]
    assert np.array_equal(images.numpy(), np.concatenate([splits["train"][c] for c in ("ant", "moth", "zebra")]))
    images, labels, _ = load_dataset("cifar10", "test", source=source)
    assert labels.tolist() == [0, 0, 2]  # zebra keeps label 2 though moth has no test image
    batch = load_batch("cifar10", 3, seed=0, source=source, split="test")
    assert batch.source == f"cifar10:test:{source}:seed=0"
    assert {tuple(x) for x in pixels_of(batch.images, "cifar10").reshape(3, -1).tolist()} == \
        {tuple(x) for x in images.numpy().reshape(3, -1).tolist()}


# ----------------------------------------------------------------------------- broken input


def test_corrupt_and_missing_files_give_one_line_errors_naming_the_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    cases: dict[str, Path] = {}
    # a CIFAR folder whose batch is cut in half
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    write_pickle(truncated / "data_batch_1", random_images(rng, 20, 32), rng.integers(0, 10, 20))
    blob = (truncated / "data_batch_1").read_bytes()
    (truncated / "data_batch_1").write_bytes(blob[: len(blob) // 2])
    cases["truncated pickle"] = truncated / "data_batch_1"
    # a pickle of the wrong thing, and one with the wrong image size
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))
    cases["not a dict"] = wrong / "data_batch_1"
    small = tmp_path / "small"
    small.mkdir()
    write_pickle(small / "data_batch_1", random_images(rng, 2, 16), [0, 1])
    cases["wrong size"] = small / "data_batch_1"
    for path in cases.values():
        with pytest.raises(DataError) as err:
            load_batch("cifar10", 1, seed=0, source=path.parent)
        one_line(err, str(path))
    # archives
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    folder = tmp_path / "images"
    write_image_folder(folder, {"train": {"a": random_images(rng, 40, 32)}}, suffix=".jpg")
    good = tar_folder(folder, tmp_path / "good.tar.gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path in (garbage, cut):
        with pytest.raises(DataError) as err:
            load_batch("cifar10", 1, seed=0, source=path)
        one_line(err, str(path))
    bad_jpeg = tar_folder(folder, tmp_path / "bad.tar", extra={"train/a/9999.jpg": b"\xff\xd8\xff garbage"})
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", "train", source=bad_jpeg, progress=False)
    one_line(err, f"{bad_jpeg}:train/a/9999.jpg", "cannot decode")
    # nothing there, or nothing recognisable
    (tmp_path / "empty").mkdir()
    (tmp_path / "nothing" / "train").mkdir(parents=True)
    for path in (tmp_path / "absent", tmp_path / "empty", tmp_path / "nothing", tmp_path / "notes.txt"):
        with pytest.raises(DataError) as err:
            load_batch("cifar10", 1, seed=0, source=path)
        one_line(err, str(path))


def test_bad_arguments(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    write_pickle(tmp_path / "data_batch_1", random_images(rng, 4, 32), [0, 1, 2, 3])
    for kwargs, needle in [(dict(batch_size=5), "has 4 images"), (dict(batch_size=0), "positive integer"),
                           (dict(batch_size=True), "positive integer"), (dict(split="valid"), "unknown split"),
                           (dict(dataset="mnist"), "unknown dataset")]:
        args = dict(dataset="cifar10", batch_size=2, seed=0, source=tmp_path) | kwargs
        with pytest.raises(DataError) as err:
            load_batch(**args)
        one_line(err, needle)
    with pytest.raises(DataError) as err:
        data.data_root(tmp_path / "absent")
    one_line(err, "absent")


# ----------------------------------------------------------------------------- noise


def test_noise_is_seeded_gaussian_with_labels() -> None:
    batch = load_batch("cifar100", 256, seed=7, source="noise")
    assert batch.images.shape == (256, 3, 32, 32) and batch.num_classes == 100
    assert batch.source == "cifar100:noise:gaussian:seed=7"
    assert abs(batch.images.mean().item()) < 0.01 and abs(batch.images.std().item() - 1) < 0.01
    assert batch.labels.min() >= 0 and batch.labels.max() < 100 and len(set(batch.labels.tolist())) > 50
    again, small = load_batch("cifar100", 256, 7, "noise"), load_batch("cifar100", 64, 7, "noise")
    assert torch.equal(again.images, batch.images) and torch.equal(again.labels, batch.labels)
    assert torch.equal(small.images, batch.images[:64]) and torch.equal(small.labels, batch.labels[:64])
    assert not torch.equal(load_batch("cifar100", 64, 8, "noise").images, small.images)
    assert load_batch("imagenet16", 4, 0, "noise").images.shape == (4, 3, 16, 16)
    with pytest.raises(DataError):
        load_dataset("cifar10", "train", source="noise")


def test_the_no_data_error_names_the_command_line_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 bug 6: the error told a command-line user to pass ``source='noise'`` (a Python argument)."""
    monkeypatch.delenv("ZENBENCH_DATA", raising=False)
    with pytest.raises(DataError, match="--data noise") as info:
        load_batch("cifar10", 4, 0)
    assert "\n" not in str(info.value)


def test_portable_paths_names_the_data_folder_by_its_variable(tmp_path, monkeypatch) -> None:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("ZENBENCH_DATA", str(root))
    text = (f"batch cifar10:train:{root}/cifar10-subset:seed=0; ground truth `{root}`. "
            f"other {root}2/x and {tmp_path}/x{root}")
    expected = (f"batch cifar10:train:$ZENBENCH_DATA/cifar10-subset:seed=0; ground truth "
                f"`$ZENBENCH_DATA`. other {root}2/x and {tmp_path}/x{root}")
    assert portable_paths(text) == expected
    config = {"ground_truth": f"{root}/gt.csv", "proxies": ["zen", f"{root}/m.py"], "batch_size": 64, "x": None}
    assert portable_paths(config) == {"ground_truth": "$ZENBENCH_DATA/gt.csv",
                                      "proxies": ["zen", "$ZENBENCH_DATA/m.py"], "batch_size": 64, "x": None}
    # a relative variable: recorded paths are absolute (load_batch) or resolved; both forms are rewritten
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(root)
    monkeypatch.setenv("ZENBENCH_DATA", "link")
    assert portable_paths(f"{tmp_path}/link/a {root}/b link/c") == "$ZENBENCH_DATA/a $ZENBENCH_DATA/b link/c"
    monkeypatch.setenv("ZENBENCH_DATA", "./link")  # a path as given is rewritten too; a bare word ("link") is not
    assert portable_paths("ground truth ./link/gt.csv, x./link") == "ground truth $ZENBENCH_DATA/gt.csv, x./link"
    monkeypatch.delenv("ZENBENCH_DATA")
    assert portable_paths(text) == text
