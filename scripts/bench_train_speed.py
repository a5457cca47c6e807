"""Training throughput of a ZenNet with the zenbench recipe (issue #5 and #14 benchmark): images per second.

For each device, on ``--data`` (a CIFAR-10 source: pickle folder, image folder or the JPEG .tar.gz; its training
split is held on the device) or else on a synthetic uint8 dataset of ``--pool`` images, after ``--warmup``
steps:

- ``pipeline``: the input pipeline alone (gather, crop + flip, AutoAugment, normalise, random erasing, mixup);
- ``step``: forward + backward + SGD on one prepared batch, repeated (no input pipeline);
- ``train``: both, as the training loop runs them.

``pipeline share`` is the pipeline's time over the full loop's: it should stay small, so that the device
is not starved. Figures: ``--images`` images per measurement at ``--batch-size``, the best of ``--repeats``
measurements (on a shared machine the best is the least disturbed one; the load average is printed). On an
oversubscribed CPU, ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's OpenMP threads from spinning against each other
(2 threads at load 14 on 2 cores: 9-12 img/s spinning, about 47 passive, for the 0.19 M ZenNet below).
``--profile`` prints torch.profiler's operators by self CPU time over one ``train`` measurement: what is
not convolution, batch norm or ReLU (forward or backward) is not the network's own compute.

Full run (quiet machine): ``python scripts/bench_train_speed.py --structure ZenNet-1.0M --batch-size 64
--images 640 --warmup 5 --devices cpu,cuda`` (cuda is skipped when absent). Issue #14's CPU figure, a 0.19 M
ZenNet on the CIFAR-10 JPEGs: ``--data $ZENBENCH_DATA/cifar10-jpeg.tar.gz --threads 2 --devices cpu --structure
'SuperConvK3BNRELU(3,32,1,1)SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,128,2,64,1)SuperConvK1BNRELU(128,256,1,1)'``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.data import load_dataset, normalization
from bench.runner import resolve_device
from search.spaces.zennet import count_params
from search.train import ImageSet, TrainConfig, Trainer, augmentation_summary, zennet_for_training
from search.zennets import resolve_structure


@dataclass(frozen=True)
class Throughput:
    device: str
    pipeline: float
    step: float
    train: float

    @property
    def pipeline_share(self) -> float:
        return self.train / self.pipeline


def _timed(device: torch.device, steps: int, body: Callable[[int], object]) -> float:
    """Seconds for ``steps`` calls of ``body(i)``, synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        body(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def synthetic_set(pool: int, seed: int) -> ImageSet:
    """``pool`` uniform-noise uint8 CIFAR-sized images with random labels (the cost does not depend on pixels)."""
    generator = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (pool, 3, 32, 32), dtype=torch.uint8, generator=generator),
                    torch.randint(0, 10, (pool,), generator=generator), 10)


def measure(structure: str, train: ImageSet, device: torch.device, config: TrainConfig, images: int, warmup: int,
            repeats: int = 1, profile: bool = False) -> Throughput:
    """Images per second of the pipeline, the optimisation step and the two together on ``device``: the best
    of ``repeats`` measurements of ``images`` images each."""
    batch_size = config.batch_size
    test = ImageSet(train.images[:batch_size], train.labels[:batch_size], train.num_classes)
    trainer = Trainer(zennet_for_training(structure, train.num_classes, seed=config.seed), train, test, config,
                      *normalization("cifar10"), device, progress=False, verbose=False)
    pool = len(train)
    order = torch.randperm(pool, device=device)
    steps = max(1, images // batch_size)

    def indices(i: int) -> torch.Tensor:
        start = (i * batch_size) % (pool - batch_size + 1)
        return order[start:start + batch_size]

    for i in range(warmup):
        trainer.train_step(*trainer.make_batch(indices(i)))
    fixed = trainer.make_batch(indices(0))
    best = [float("inf")] * 3
    for _ in range(repeats):
        seconds = (_timed(device, steps, lambda i: trainer.make_batch(indices(i))),
                   _timed(device, steps, lambda i: trainer.train_step(*fixed)),
                   _timed(device, steps, lambda i: trainer.train_step(*trainer.make_batch(indices(i)))))
        best = [min(b, s) for b, s in zip(best, seconds, strict=True)]
    if profile:
        from torch.profiler import profile as profiler

        with profiler() as prof:
            _timed(device, steps, lambda i: trainer.train_step(*trainer.make_batch(indices(i))))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    done = steps * batch_size
    return Throughput(str(device), done / best[0], done / best[1], done / best[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="ZenNet-1.0M", help="published name, structure string or file")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=640, help="images per measurement (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per figure; the best is shown")
    parser.add_argument("--data", default=None, metavar="SOURCE",
                        help="CIFAR-10 source whose training split is trained on; default: synthetic --pool images")
    parser.add_argument("--pool", type=int, default=50_000, help="synthetic images held on the device (no --data)")
    parser.add_argument("--no-autoaugment", dest="autoaugment", action="store_false",
                        help="leave AutoAugment out of the pipeline")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of one train measurement")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    structure = str(resolve_structure(args.structure))
    config = TrainConfig(epochs=1000, batch_size=args.batch_size, autoaugment=args.autoaugment)
    if args.data is None:
        train = synthetic_set(args.pool, config.seed)
        source = f"{args.pool:,} synthetic images"
    else:
        train = ImageSet(*load_dataset("cifar10", "train", source=args.data, progress=False))
        source = f"{len(train):,} images of {args.data}"
    print(f"structure: {args.structure} ({count_params(structure, 10) / 1e6:.3f} M params, CIFAR-10 head)")
    print(f"batch {args.batch_size}, {args.images} images per figure (best of {args.repeats}) after {args.warmup} "
          f"warm-up steps, {source} on the device, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"augmentation: {augmentation_summary(config)}")
    print(f"{'device':<10}{'pipeline img/s':>16}{'step img/s':>14}{'train img/s':>14}{'pipeline share':>16}")
    for name in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"{name:<10}skipped: CUDA is not available")
            continue
        device = resolve_device(name)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        result = measure(structure, train, device, config, args.images, args.warmup, args.repeats, args.profile)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"{label:<10}{result.pipeline:>16,.0f}{result.step:>14,.0f}{result.train:>14,.0f}"
              f"{result.pipeline_share:>15.1%}")
    print(f"load average (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
