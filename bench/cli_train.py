"""``zenbench train``: train a ZenNet on CIFAR with the Zen-NAS CIFAR recipe (Lin et al., ICCV 2021;
idstcv/ZenNAS ``scripts/Zen_NAS_cifar_params1M.sh``).

A thin layer over :func:`bench.api.prepare_training` (resolve the structure, load the data, build the
network with ZenNAS's init and the :class:`search.train.Trainer`): it prints the recipe, trains,
checkpoints every epoch into ``--out`` and prints one line per epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.api import prepare_training
from search.autoaugment import BACKENDS
from search.spaces.zennet import count_params
from search.train import CHECKPOINT_NAME, LOG_NAME, TrainConfig, augmentation_summary

DATASETS = ("cifar10", "cifar100")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = TrainConfig(epochs=1)
    parser = subparsers.add_parser(
        "train", help="train a ZenNet on CIFAR (Zen-NAS recipe)",
        description="Train a ZenNet with the Zen-NAS CIFAR recipe: SGD + Nesterov 0.9, lr 0.1 per 256 images, "
        "linear warm-up then cosine to 0, weight decay 5e-4 (conv/linear weights only), label smoothing 0.1 + "
        "mixup 0.2, BN momentum 0.01, ZenNAS init; augmentation: "
        f"{augmentation_summary(defaults)}. Checkpoints every epoch; Ctrl-C saves and stops, --resume continues.")
    parser.add_argument("--structure", required=True, metavar="NAME|STRING|FILE",
                        help="a published ZenNet (e.g. ZenNet-1.0M), a structure string, or a file holding one")
    parser.add_argument("--dataset", choices=DATASETS, default="cifar10", help="default: cifar10")
    parser.add_argument("--epochs", type=int, required=True, help="training epochs (ZenNAS: 1440)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"default: {defaults.batch_size} (ZenNAS trains CIFAR at B=64 on one GPU)")
    parser.add_argument("--device", default=None, help="torch device; default: cuda if available, else cpu")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder for checkpoint.pt and log.csv; default: "
                        "runs/train-<dataset>-<structure hash>-e<epochs>-seed<seed>")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--data", dest="data_source", default="auto", metavar="SOURCE",
                        help="'auto' (the largest copy of the dataset under the data folder), or a CIFAR pickle "
                        "folder, image folder or .tar.gz laid out {train,test}/<class>/*.jpg; default auto")
    parser.add_argument("--data-root", default=None, metavar="DIR", help="data folder (default $ZENBENCH_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the init, data order and augmentation; default 0")
    parser.add_argument("--bn-momentum", type=float, default=defaults.bn_momentum,
                        help=f"BatchNorm momentum; default {defaults.bn_momentum} (ZenNAS); short runs want 0.1")
    parser.add_argument("--no-autoaugment", dest="autoaugment", action="store_false",
                        help="leave out AutoAugment's CIFAR-10 policy (on by default, as in ZenNAS's recipe)")
    parser.add_argument("--autoaugment-backend", choices=BACKENDS, default=defaults.autoaugment_backend,
                        help="who applies AutoAugment's operations: zenbench's batched tensor ops, or torchvision's "
                        f"own (needs torchvision); default {defaults.autoaugment_backend}")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch; default: torch's choice")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (per-epoch lines stay)")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, bn_momentum=args.bn_momentum,
                         autoaugment=args.autoaugment, autoaugment_backend=args.autoaugment_backend)
    run = prepare_training(args.structure, config, dataset=args.dataset, device=args.device, out=args.out,
                           resume=args.resume, data_source=args.data_source, data_root=args.data_root,
                           threads=args.threads, progress=not args.no_progress)
    trainer, out_dir = run.trainer, run.out_dir
    steps = trainer.total_steps
    warmup = config.warmup_steps(trainer.steps_per_epoch)
    print(f"structure: {run.structure}")
    print(f"params: {count_params(run.structure, run.num_classes) / 1e6:.3f} M; dataset {args.dataset} "
          f"({run.train_images:,} train / {run.test_images:,} test images, {run.num_classes} classes, source "
          f"{args.data_source}); device {run.device}")
    print(f"recipe: {config.epochs} epochs x {trainer.steps_per_epoch} steps at B={config.batch_size}, "
          f"lr {config.learning_rate:g} (warm-up {warmup} steps = {warmup / trainer.steps_per_epoch:.2f} epochs, "
          f"then cosine to 0), wd {config.weight_decay:g}, label smoothing {config.label_smoothing:g}, "
          f"mixup {config.mixup_alpha:g}, random erasing p={config.random_erase_p:g}, BN momentum {config.bn_momentum}")
    print(f"augmentation: {augmentation_summary(config)}")
    if config.bn_momentum is not None and (1 - config.bn_momentum) ** steps > 0.05:
        print(f"note: {steps} steps at BN momentum {config.bn_momentum} leave "
              f"{100 * (1 - config.bn_momentum) ** steps:.0f}% of the initial BN running statistics; "
              f"test accuracy will be low (use --bn-momentum 0.1 for short runs)")
    print(f"output: {out_dir}")
    sys.stdout.flush()

    result = trainer.fit(resume=args.resume)
    if not result.completed:
        print(f"stopped during epoch {result.epochs_done + 1}; checkpoint {result.checkpoint}. "
              f"Continue with the same command plus --resume" + ("" if args.out is not None else f" --out {out_dir}"))
        return 130
    last = result.log[-1]
    print(f"final test accuracy: {last.test_acc:.2f}% after {last.epoch} epochs "
          f"(log {out_dir / LOG_NAME}, checkpoint {out_dir / CHECKPOINT_NAME})")
    return 0
