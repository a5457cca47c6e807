"""ZenNet training: the CIFAR recipe of Zen-NAS (Lin et al., ICCV'21; idstcv/ZenNAS
``train_image_classification.py``, REFERENCE C.5), with the whole input pipeline on the training device.

Recipe (each default reproduces the reference; :class:`TrainConfig` names every choice):

- SGD, Nesterov momentum 0.9, learning rate ``lr_per_256 * batch_size / 256`` (0.025 at B=64), set
  every step: linear warm-up, then cosine to 0 (ZenNAS ``LearningRateScheduler``, mode ``cosine``).
  ZenNAS warms up for 5 of 1440 epochs; here the warm-up lasts ``min(warmup_epochs, warmup_fraction *
  epochs)`` so that a short run spends most of its steps on the cosine (2 epochs -> 0.2 epochs).
- Weight decay 5e-4 on conv and linear weights only; biases and BN affine parameters are not decayed,
  as ZenNAS's ``split_weights`` does.
- Label smoothing 0.1 and mixup alpha 0.2 applied together: smoothed one-hot targets, one
  Beta(0.2, 0.2) mixing weight per batch, partner images by a random permutation of the batch; the
  loss is the cross-entropy against the mixed soft targets. Train accuracy counts the un-mixed label.
- Augmentation per image, in ZenNAS's order (``DataLoader/__init__.py``, ``load_cifar_like``): random 32x32
  crop from the image zero-padded by 4 pixels, horizontal flip with p=0.5, AutoAugment's CIFAR-10 policy
  (:mod:`search.autoaugment`: torchvision's ``AutoAugment(CIFAR10)`` semantics, fill 0; ZenNAS's PIL copy
  of the policy fills with grey 128), normalisation, then random erasing (Zhong et al.; ZenNAS
  ``hotfix.transforms`` defaults: p=0.5, area 0.02-0.33 of the image, aspect ratio uniform in 0.3-3.3, up
  to 10 tries, value 0 after normalisation). ``autoaugment=False`` (``--no-autoaugment``) leaves it out.
- BN momentum 0.01 (PyTorch convention: weight of the new batch), as ZenNAS's ``--bn_momentum``.
- The network's own init is the caller's job (``zennet_init`` for ZenNets, REFERENCE C.1).

Input pipeline: the dataset lives on the training device as one uint8 tensor. Each batch is gathered,
cropped and flipped by one ``gather`` with per-image pixel offsets, AutoAugmented one operation
at a time on the images that drew it, normalised, erased with a vectorised mask and mixed by a
permutation; there are no DataLoader workers and no per-image Python. Randomness: one ``torch.Generator``
on the device (order, crops, flips, erasing, mixup partners), one on the host for AutoAugment's per-image
draws (so grouping the images by operation needs no device-to-host read) and one NumPy generator (the
per-batch mixup weight), all seeded from ``seed`` and checkpointed.

Speed (nothing here changes the arithmetic beyond float rounding): the network and its inputs are
channels-last (``torch.channels_last``: on CPU, oneDNN's convolutions then skip the layout copies around
every call), SGD uses torch's fused kernel where this torch offers it for the device (one kernel for all
parameters instead of a loop over them), and a step reads nothing back to the host (loss and accuracy
sums stay on the device until the epoch ends).

Checkpoints (``checkpoint.pt`` in ``out_dir``, written to a temporary file and renamed) hold the
model, optimizer, scheduler, the three generators, the position in the epoch and the log, after every
epoch and when a run stops early (Ctrl-C or ``max_steps``); resuming continues with the same random
stream, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from search.autoaugment import BACKENDS, AutoAugment
from search.spaces.zennet import Structure, build_zennet, zennet_init

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.csv"
AUTOAUGMENT_STREAM = 1
"""Seed-sequence key of the host generator for AutoAugment's draws (distinct from the device generator's)."""


class TrainError(ValueError):
    """A training setting or checkpoint that cannot be used."""


@dataclass(frozen=True)
class TrainConfig:
    """The CIFAR training recipe of ZenNAS (REFERENCE C.5); defaults reproduce it except ``epochs``
    (ZenNAS: 1440) and AutoAugment's fill (0 as torchvision, not ZenNAS's grey 128)."""

    epochs: int
    batch_size: int = 64
    lr_per_256: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 5.0
    warmup_fraction: float = 0.1
    """The warm-up never takes more than this fraction of all epochs."""
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2
    """Beta(alpha, alpha) mixing weight per batch; 0 turns mixup off."""
    crop_padding: int = 4
    horizontal_flip: bool = True
    autoaugment: bool = True
    """AutoAugment's CIFAR-10 policy after crop + flip (ZenNAS ``--auto_augment``); False leaves it out."""
    autoaugment_backend: str = "zenbench"
    """Who applies the operations: ``zenbench`` (:mod:`search.autoaugment`) or ``torchvision`` (where it imports)."""
    random_erase_p: float = 0.5
    random_erase_scale: tuple[float, float] = (0.02, 0.33)
    random_erase_ratio: tuple[float, float] = (0.3, 3.3)
    bn_momentum: float | None = 0.01
    """Momentum set on every BatchNorm layer; None keeps the network's own."""
    eval_batch_size: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.lr_per_256 > 0, f"lr_per_256 must be > 0, got {self.lr_per_256}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}"),
            (0 <= self.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.mixup_alpha >= 0, f"mixup_alpha must be >= 0, got {self.mixup_alpha}"),
            (self.crop_padding >= 0, f"crop_padding must be >= 0, got {self.crop_padding}"),
            (self.autoaugment_backend in BACKENDS,
             f"autoaugment_backend must be one of {', '.join(BACKENDS)}, got {self.autoaugment_backend!r}"),
            (0 <= self.random_erase_p <= 1, f"random_erase_p must be in [0, 1], got {self.random_erase_p}"),
            (0 < self.random_erase_scale[0] <= self.random_erase_scale[1] < 1,
             f"random_erase_scale must be (low, high) within (0, 1), got {self.random_erase_scale}"),
            (0 < self.random_erase_ratio[0] <= self.random_erase_ratio[1],
             f"random_erase_ratio must be (low, high) with 0 < low <= high, got {self.random_erase_ratio}"),
            (self.bn_momentum is None or 0 < self.bn_momentum <= 1,
             f"bn_momentum must be in (0, 1] or None, got {self.bn_momentum}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainError(message)

    @property
    def learning_rate(self) -> float:
        """Peak learning rate: ``lr_per_256`` scaled linearly with the batch size (0.025 at B=64)."""
        return self.lr_per_256 * self.batch_size / 256.0

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """Warm-up length in steps: ``min(warmup_epochs, warmup_fraction * epochs)`` epochs."""
        return int(round(min(self.warmup_epochs, self.warmup_fraction * self.epochs) * steps_per_epoch))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set as ``bench.data.load_dataset`` returns it: uint8 N x C x H x W, int64 labels."""

    images: Tensor
    labels: Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise TrainError(f"images must be a uint8 N x C x H x W tensor, got {self.images.dtype} "
                             f"of shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise TrainError(f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")
        if len(self) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < self.num_classes:
            raise TrainError(f"labels must lie in 0..{self.num_classes - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device, torch.int64), self.num_classes)


def zennet_for_training(structure: str | Structure, num_classes: int, seed: int = 0, use_se: bool = False) -> nn.Module:
    """A ZenNet (residual links and BN on) with ZenNAS's training init (REFERENCE C.1), seeded; the global
    torch RNG outside this call is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return zennet_init(build_zennet(structure, num_classes, use_se=use_se))


# ----------------------------------------------------------------------------- augmentation on tensors


class Augmentation:
    """The per-image training augmentation on a uint8 batch, vectorised over the batch on its device.

    ``mean``/``std`` are per-channel in 0..1 units (``bench.data.normalization``).
    """

    def __init__(self, config: TrainConfig, mean: Sequence[float], std: Sequence[float],
                 device: torch.device | str) -> None:
        self.config = config
        self.autoaugment = AutoAugment(backend=config.autoaugment_backend) if config.autoaugment else None
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 0..255 -> float, (x/255 - mean) / std."""
        return (images.float() - self.mean) / self.std

    def crop_and_flip(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """Random H x W crop of the zero-padded image and a horizontal flip with p=0.5, as one ``gather`` of
        per-image flat pixel offsets (about a tenth of the CPU time of the equivalent advanced indexing)."""
        n, channels, height, width = images.shape
        pad = self.config.crop_padding
        device = images.device
        padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
        top = torch.randint(0, 2 * pad + 1, (n, 1), device=device, generator=generator)
        left = torch.randint(0, 2 * pad + 1, (n, 1), device=device, generator=generator)
        rows = top + torch.arange(height, device=device)
        cols = torch.arange(width, device=device).expand(n, width)
        if self.config.horizontal_flip:
            flip = torch.rand(n, 1, device=device, generator=generator) < 0.5
            cols = torch.where(flip, width - 1 - cols, cols)
        cols = left + cols
        offsets = (rows.view(n, height, 1) * padded.shape[-1] + cols.view(n, 1, width)).view(n, 1, height * width)
        pixels = padded.reshape(n, channels, -1).gather(2, offsets.expand(n, channels, height * width))
        return pixels.view(n, channels, height, width)

    def random_erase(self, images: Tensor, generator: torch.Generator, tries: int = 10) -> Tensor:
        """Random erasing (Zhong et al. 2017) as ZenNAS's ``RandomErasing``: with probability p, the
        first of ``tries`` (area, aspect) draws whose box fits is set to 0 at a uniform position."""
        cfg = self.config
        n, _, height, width = images.shape
        device = images.device

        def uniform(low: float, high: float, shape: tuple[int, ...]) -> Tensor:
            return low + (high - low) * torch.rand(shape, device=device, generator=generator)

        area = uniform(*cfg.random_erase_scale, (n, tries)) * (height * width)
        aspect = uniform(*cfg.random_erase_ratio, (n, tries))
        box_h = torch.round(torch.sqrt(area * aspect)).long()
        box_w = torch.round(torch.sqrt(area / aspect)).long()
        fits = (box_h < height) & (box_w < width)
        first = fits.int().argmax(dim=1, keepdim=True)
        box_h, box_w = box_h.gather(1, first), box_w.gather(1, first)
        erase = (torch.rand(n, 1, device=device, generator=generator) < cfg.random_erase_p) & fits.any(1, True)
        top = (torch.rand(n, 1, device=device, generator=generator) * (height - box_h + 1)).long()
        left = (torch.rand(n, 1, device=device, generator=generator) * (width - box_w + 1)).long()
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        in_rows = (rows >= top) & (rows < top + box_h) & erase
        in_cols = (cols >= left) & (cols < left + box_w)
        mask = in_rows.view(n, 1, height, 1) & in_cols.view(n, 1, 1, width)
        return torch.where(mask, 0.0, images)

    def __call__(self, images: Tensor, generator: torch.Generator,
                 autoaugment_generator: torch.Generator | None = None) -> Tensor:
        """uint8 batch -> augmented, normalised float batch (before mixup). ``autoaugment_generator`` makes
        AutoAugment's per-image draws (default: ``generator``)."""
        out = self.crop_and_flip(images, generator)
        if self.autoaugment is not None:
            out = self.autoaugment(out, generator if autoaugment_generator is None else autoaugment_generator)
        out = self.normalize(out)
        if self.config.random_erase_p > 0:
            out = self.random_erase(out, generator)
        return out


def augmentation_summary(config: TrainConfig) -> str:
    """The training augmentation in the order it runs, in one line (for logs and help texts)."""
    crop = f"random crop ({config.crop_padding}-px zero padding)"
    flip = " + horizontal flip" if config.horizontal_flip else ""
    auto = (f"AutoAugment CIFAR-10 policy ({config.autoaugment_backend} ops, torchvision's semantics, fill 0)"
            if config.autoaugment else "AutoAugment off")
    return (f"{crop}{flip}, {auto}, normalisation, random erasing p={config.random_erase_p:g}; "
            f"mixup alpha {config.mixup_alpha:g} on top")


def soft_targets(labels: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """One-hot targets with label smoothing: 1 - eps + eps/K on the label, eps/K elsewhere."""
    return F.one_hot(labels, num_classes).float() * (1.0 - smoothing) + smoothing / num_classes


def mixup(inputs: Tensor, targets: Tensor, weight: float, partner: Tensor) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al. 2018) with one weight for the batch: w*x + (1-w)*x[partner], same for targets."""
    return (weight * inputs + (1.0 - weight) * inputs[partner],
            weight * targets + (1.0 - weight) * targets[partner])


# ----------------------------------------------------------------------------- optimizer and schedule


@dataclass
class WarmupCosine:
    """Learning-rate factor per step: linear warm-up (step+1)/warmup, then cosine from 1 to 0 at the
    last step (ZenNAS ``LearningRateScheduler`` in ``cosine`` mode, counted in steps)."""

    warmup_steps: int
    total_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step + 1 - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only; biases, BN and other parameters get none
    (ZenNAS ``split_weights``)."""
    decayed = {id(m.weight) for m in model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decayed], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with the recipe's momentum, Nesterov and decay groups; torch's fused kernel (``fused=True``) where
    this torch offers it for the parameters' device and dtype, else torch's default implementation."""
    groups = parameter_groups(model, config.weight_decay)
    settings = {"lr": config.learning_rate, "momentum": config.momentum, "nesterov": config.nesterov}
    try:
        return torch.optim.SGD(groups, fused=True, **settings)
    except (RuntimeError, TypeError):  # TypeError: a torch without fused SGD; RuntimeError: not for this device
        return torch.optim.SGD(groups, **settings)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EpochRecord:
    """One line of the training log."""

    epoch: int
    train_loss: float
    train_acc: float
    test_acc: float
    seconds: float
    images_per_s: float
    lr: float
    """Learning rate of the epoch's last step."""


LOG_FIELDS = [f.name for f in dataclasses.fields(EpochRecord)]


@dataclass(frozen=True)
class TrainResult:
    """What a call to :meth:`Trainer.fit` produced."""

    log: list[EpochRecord]
    epochs_done: int
    completed: bool
    """False when the run stopped early (Ctrl-C or ``max_steps``); resume it from the checkpoint."""
    test_acc: float | None
    """Test accuracy (%) after the last completed epoch; None before the first."""
    checkpoint: Path | None


# ----------------------------------------------------------------------------- trainer


@dataclass
class _EpochProgress:
    """Position inside an epoch and its running sums (device tensors, read once per epoch)."""

    order: Tensor
    step: int = 0
    loss_sum: Tensor | float = 0.0
    correct: Tensor | float = 0.0
    seen: int = 0
    seconds: float = 0.0


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class Trainer:
    """Trains ``model`` on ``train`` with the ZenNAS CIFAR recipe, evaluating on ``test`` every epoch.

    ``model`` must already be initialised (``zennet_init`` for ZenNets); it and both image sets are moved to
    ``device``. ``out_dir`` (optional) receives ``checkpoint.pt`` and ``log.csv``; without it nothing is written
    and nothing can be resumed. ``progress``: a progress bar (images/s, ETA); ``verbose``: print one line per
    epoch and a notice on Ctrl-C. ``description`` names the run; a checkpoint only resumes the same one.
    """

    def __init__(self, model: nn.Module, train: ImageSet, test: ImageSet, config: TrainConfig,
                 mean: Sequence[float], std: Sequence[float], device: str | torch.device,
                 out_dir: str | Path | None = None, progress: bool = True, verbose: bool = True,
                 description: str = "") -> None:
        if train.num_classes != test.num_classes:
            raise TrainError(f"train set has {train.num_classes} classes, test set {test.num_classes}")
        if len(train) < config.batch_size:
            raise TrainError(f"the training set has {len(train)} images, fewer than one batch of {config.batch_size}")
        if train.images.shape[1:] != test.images.shape[1:]:
            raise TrainError(f"train images {tuple(train.images.shape[1:])} and test images "
                             f"{tuple(test.images.shape[1:])} differ in shape")
        self.config = config
        self.device = torch.device(device)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.train_set = train.to(self.device)
        self.test_set = test.to(self.device)
        self.num_classes = train.num_classes
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.progress = progress
        self.verbose = verbose
        self.description = description
        self.augment = Augmentation(config, mean, std, self.device)
        if config.bn_momentum is not None:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = config.bn_momentum
        self.steps_per_epoch = len(self.train_set) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = make_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, WarmupCosine(config.warmup_steps(self.steps_per_epoch), self.total_steps))
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.autoaugment_generator = torch.Generator()
        self.autoaugment_generator.manual_seed(
            int(np.random.SeedSequence((config.seed, AUTOAUGMENT_STREAM)).generate_state(1, np.uint64)[0]))
        self.mix_rng = np.random.default_rng(config.seed)
        self.epoch = 0
        self.last_lr = float("nan")
        self.log: list[EpochRecord] = []
        self._current: _EpochProgress | None = None
        self._stop_requested = False

    # -- one step ------------------------------------------------------------------------------------

    def make_batch(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training batch for the given image indices: (augmented, mixed inputs, channels-last; soft targets;
        labels)."""
        cfg = self.config
        labels = self.train_set.labels.index_select(0, indices)
        inputs = self.augment(self.train_set.images.index_select(0, indices), self.generator,
                              self.autoaugment_generator)
        targets = soft_targets(labels, self.num_classes, cfg.label_smoothing)
        if cfg.mixup_alpha > 0:
            weight = float(self.mix_rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
            partner = torch.randperm(len(indices), device=self.device, generator=self.generator)
            inputs, targets = mixup(inputs, targets, weight, partner)
        return inputs.contiguous(memory_format=torch.channels_last), targets, labels

    def train_step(self, inputs: Tensor, targets: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """One SGD step; returns the (detached) mean loss and the number of correct top-1 predictions."""
        self.model.train()
        logits = self.model(inputs)
        loss = F.cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.last_lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), (logits.detach().argmax(1) == labels).sum()

    @torch.no_grad()
    def evaluate(self, images: ImageSet | None = None) -> float:
        """Top-1 accuracy (%) in eval mode on ``images`` (default: the test set)."""
        data = self.test_set if images is None else images.to(self.device)
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, len(data), self.config.eval_batch_size):
            batch = slice(start, start + self.config.eval_batch_size)
            inputs = self.augment.normalize(data.images[batch])
            logits = self.model(inputs.contiguous(memory_format=torch.channels_last))
            correct += (logits.argmax(1) == data.labels[batch]).sum()
        return 100.0 * int(correct) / max(1, len(data))

    # -- the loop --------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the current step, save a checkpoint and return (what Ctrl-C does)."""
        self._stop_requested = True

    def fit(self, resume: bool = False, max_steps: int | None = None) -> TrainResult:
        """Train to ``config.epochs``. ``resume``: continue from ``out_dir/checkpoint.pt`` (error if absent).
        ``max_steps``: stop (with a checkpoint) after that many steps in this call."""
        if resume:
            self.load_checkpoint()
        self._stop_requested = False
        steps_this_call = 0
        done_steps = self.epoch * self.steps_per_epoch + (self._current.step if self._current else 0)
        bar = tqdm(total=self.total_steps * self.config.batch_size, initial=done_steps * self.config.batch_size,
                   unit="img", unit_scale=True, disable=not self.progress, dynamic_ncols=True, desc="train")
        with bar, self._sigint_requests_stop():
            while self.epoch < self.config.epochs:
                if self._current is None:
                    order = torch.randperm(len(self.train_set), device=self.device, generator=self.generator)
                    self._current = _EpochProgress(order=order)
                current = self._current
                bar.set_description(f"epoch {self.epoch + 1}/{self.config.epochs}", refresh=False)
                started = time.perf_counter()
                while current.step < self.steps_per_epoch:
                    if self._stop_requested or (max_steps is not None and steps_this_call >= max_steps):
                        current.seconds += self._elapsed(started)
                        return self._stopped_early()
                    batch = current.order[current.step * self.config.batch_size:
                                          (current.step + 1) * self.config.batch_size]
                    loss, correct = self.train_step(*self.make_batch(batch))
                    current.loss_sum = current.loss_sum + loss * len(batch)
                    current.correct = current.correct + correct
                    current.seen += len(batch)
                    current.step += 1
                    steps_this_call += 1
                    bar.update(len(batch))
                current.seconds += self._elapsed(started)
                self._finish_epoch(bar)
        return TrainResult(list(self.log), self.epoch, True, self.log[-1].test_acc if self.log else None,
                           self._checkpoint_path())

    def _elapsed(self, started: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started

    def _finish_epoch(self, bar: tqdm) -> None:
        current = self._current
        assert current is not None
        record = EpochRecord(
            epoch=self.epoch + 1,
            train_loss=float(current.loss_sum) / current.seen,
            train_acc=100.0 * float(current.correct) / current.seen,
            test_acc=self.evaluate(),
            seconds=current.seconds,
            images_per_s=current.seen / current.seconds if current.seconds > 0 else float("nan"),
            lr=self.last_lr,
        )
        self.log.append(record)
        self.epoch += 1
        self._current = None
        self.save_checkpoint()
        if self.verbose:
            bar.write(format_record(record, self.config.epochs))

    def _stopped_early(self) -> TrainResult:
        path = self.save_checkpoint()
        return TrainResult(list(self.log), self.epoch, False, self.log[-1].test_acc if self.log else None, path)

    @contextmanager
    def _sigint_requests_stop(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, checkpoint, return. Second Ctrl-C: the usual KeyboardInterrupt."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            self.request_stop()
            if self.verbose:
                tqdm.write("interrupt: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)

    # -- checkpoints -----------------------------------------------------------------------------------

    def _checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_NAME

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue with the same random stream."""
        current = self._current
        return {
            "format": 2,
            "description": self.description,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state().cpu(),
            "autoaugment_generator": self.autoaugment_generator.get_state(),
            "mix_rng": self.mix_rng.bit_generator.state,
            "log": [dataclasses.asdict(r) for r in self.log],
            "in_epoch": None if current is None else {
                "order": current.order.cpu(), "step": current.step, "loss_sum": float(current.loss_sum),
                "correct": float(current.correct), "seen": current.seen, "seconds": current.seconds,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("config")
        if saved != self.config.to_dict():
            differ = sorted(k for k in self.config.to_dict() if (saved or {}).get(k) != self.config.to_dict()[k])
            raise TrainError(f"checkpoint was written with a different training configuration ({', '.join(differ)}); "
                             f"resume with the same settings or use a new output folder")
        if state.get("description", "") != self.description:
            raise TrainError(f"checkpoint is for {state.get('description')!r}, not {self.description!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.autoaugment_generator.set_state(state["autoaugment_generator"])
        self.mix_rng.bit_generator.state = state["mix_rng"]
        self.epoch = int(state["epoch"])
        self.log = [EpochRecord(**r) for r in state["log"]]
        in_epoch = state["in_epoch"]
        self._current = None if in_epoch is None else _EpochProgress(
            order=in_epoch["order"].to(self.device), step=in_epoch["step"], loss_sum=in_epoch["loss_sum"],
            correct=in_epoch["correct"], seen=in_epoch["seen"], seconds=in_epoch["seconds"])

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint.pt`` and ``log.csv`` atomically (temporary file, then rename)."""
        path = self._checkpoint_path()
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        _atomic_write(path, lambda tmp: torch.save(state, tmp))
        _atomic_write(path.with_name(LOG_NAME), lambda tmp: write_log_csv(self.log, tmp))
        return path

    def load_checkpoint(self) -> None:
        path = self._checkpoint_path()
        if path is None:
            raise TrainError("resume needs an output folder holding checkpoint.pt")
        if not path.is_file():
            raise TrainError(f"no checkpoint to resume from at {path}")
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def write_log_csv(log: Sequence[EpochRecord], path: str | Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in log)


def format_record(record: EpochRecord, epochs: int) -> str:
    """The printed per-epoch line."""
    return (f"epoch {record.epoch:>{len(str(epochs))}}/{epochs}  loss {record.train_loss:.4f}  "
            f"train {record.train_acc:5.2f}%  test {record.test_acc:5.2f}%  {record.seconds:7.1f} s  "
            f"{record.images_per_s:8.0f} img/s  lr {record.lr:.5f}")
