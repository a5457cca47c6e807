"""Training throughput of a ZenNet with the zenbench recipe (issue #5 benchmark): images per second.

For each device, on a synthetic uint8 dataset of ``--pool`` images held on that device (pixel values do not
change the cost), after ``--warmup`` steps:

- ``pipeline``: the input pipeline alone (gather, crop + flip, normalise, random erasing, mixup);
- ``step``: forward + backward + SGD on one prepared batch, repeated (no input pipeline);
- ``train``: both, as the training loop runs them.

``pipeline share`` is the pipeline's time over the full loop's: it should stay small, so that the device
is not starved. Figures: ``--images`` images per measurement, at ``--batch-size``.

Full run (quiet machine): ``python scripts/bench_train_speed.py --structure ZenNet-1.0M --batch-size 64
--images 640 --warmup 5 --devices cpu,cuda`` (cuda is skipped when absent).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.data import normalization
from bench.runner import resolve_device
from search.spaces.zennet import count_params
from search.train import ImageSet, TrainConfig, Trainer, zennet_for_training
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


def measure(structure: str, device: torch.device, batch_size: int, images: int, warmup: int, pool: int,
            seed: int = 0) -> Throughput:
    """Images per second of the pipeline, the optimisation step and the two together on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    train = ImageSet(torch.randint(0, 256, (pool, 3, 32, 32), dtype=torch.uint8, generator=generator),
                     torch.randint(0, 10, (pool,), generator=generator), 10)
    test = ImageSet(train.images[:batch_size], train.labels[:batch_size], 10)
    config = TrainConfig(epochs=1000, batch_size=batch_size, seed=seed)
    trainer = Trainer(zennet_for_training(structure, 10, seed=seed), train, test, config, *normalization("cifar10"),
                      device, progress=False, verbose=False)
    order = torch.randperm(pool, device=device)
    steps = max(1, images // batch_size)

    def indices(i: int) -> torch.Tensor:
        start = (i * batch_size) % (pool - batch_size + 1)
        return order[start:start + batch_size]

    for i in range(warmup):
        trainer.train_step(*trainer.make_batch(indices(i)))
    fixed = trainer.make_batch(indices(0))
    seconds_pipeline = _timed(device, steps, lambda i: trainer.make_batch(indices(i)))
    seconds_step = _timed(device, steps, lambda i: trainer.train_step(*fixed))
    seconds_train = _timed(device, steps, lambda i: trainer.train_step(*trainer.make_batch(indices(i))))
    done = steps * batch_size
    return Throughput(str(device), done / seconds_pipeline, done / seconds_step, done / seconds_train)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="ZenNet-1.0M", help="published name, structure string or file")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=640, help="images per measurement (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    parser.add_argument("--pool", type=int, default=50_000, help="images held on the device (CIFAR-10: 50,000)")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    structure = str(resolve_structure(args.structure))
    print(f"structure: {args.structure} ({count_params(structure, 10) / 1e6:.3f} M params, CIFAR-10 head)")
    print(f"batch {args.batch_size}, {args.images} images per figure after {args.warmup} warm-up steps, "
          f"{args.pool:,} images on the device, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':<10}{'pipeline img/s':>16}{'step img/s':>14}{'train img/s':>14}{'pipeline share':>16}")
    for name in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"{name:<10}skipped: CUDA is not available")
            continue
        device = resolve_device(name)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        result = measure(structure, device, args.batch_size, args.images, args.warmup, args.pool)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"{label:<10}{result.pipeline:>16,.0f}{result.step:>14,.0f}{result.train:>14,.0f}"
              f"{result.pipeline_share:>15.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
