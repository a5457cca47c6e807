"""zenbench's Python API: the plain functions behind the commands, in one module.

- :func:`score`: proxies on one network: a benchmark's architecture (spec string, NB201 also an index), a
  custom model (an ``nn.Module``, a callable that builds one, or a :class:`~proxies.NetworkFactory`), or a
  ``--model`` spec loaded with :func:`load_model` (``package.module:callable``, ``timm:NAME``);
- :func:`run_benchmark`: a resumable scoring run into a store (:func:`bench.runner.run_benchmark`), and
  :func:`scores_frame`: the stored scores as a DataFrame;
- :func:`search` (the Zen-NAS evolutionary search of a preset) and :func:`validate_proxy` (a proxy as
  the fitness of a search on a benchmark, against random search);
- :func:`train` (a ZenNet with the Zen-NAS CIFAR recipe; :func:`prepare_training` sets it up).

A custom model is scored on Gaussian images of its ``input_shape`` (seeded), unless ``dataset`` names
a dataset whose images it takes. A bare ``nn.Module`` is wrapped: each build is a deep copy whose
submodules are re-initialised by their own ``reset_parameters`` under the proxy's seeded RNG, so every
proxy sees a fresh, seed-determined network, as from any factory.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.benchmarks.base import Benchmark
from bench.cli_options import apply_threads, make_proxies
from bench.runner import (
    DEFAULT_IMAGE_BATCH,
    RunConfigError,
    check_run,
    make_factory,
    resolve_benchmark,
    resolve_device,
    resolve_proxies,
    run_benchmark,
    score_proxies,
)
from bench.store import ResultStore
from proxies import Batch, NetworkFactory, Proxy
from proxies.base import VariantUnavailable
from proxies.registry import import_attribute

__all__ = ["ArchitectureScores", "Failure", "ModelError", "ModelFactory", "ProxyScore", "as_factory", "load_model",
           "prepare_training", "run_benchmark", "score", "scores_frame", "search", "train", "validate_proxy"]

MODEL_BENCHMARK = "model"
"""``ArchitectureScores.benchmark`` of a custom model (no benchmark behind it)."""


class ModelError(RunConfigError):
    """A custom model that cannot be loaded or built (one line naming the model and what was expected)."""


@dataclass(frozen=True)
class ProxyScore:
    """One proxy's score of the network, with the protocol that produced it."""

    proxy: str
    options: dict[str, Any]
    value: float
    seconds: float
    peak_memory_mb: float | None
    components: dict[str, float]
    input_kind: str
    batch_source: str | None
    """Where the images came from (``None`` for a proxy that takes no images)."""
    load_avg: float | None = None
    """The machine's 1-minute load when the proxy ran."""


@dataclass(frozen=True)
class Failure:
    """A proxy that raised on the network: its options and ``Type: message`` (one line)."""

    proxy: str
    options: dict[str, Any]
    error: str


@dataclass(frozen=True)
class ArchitectureScores:
    arch: str
    """The benchmark's spec string of the architecture, or the custom model's name."""
    index: int | None
    """The index the architecture was given by (NB201's ``--arch 123``), else ``None``."""
    dataset: str
    device: str
    seed: int
    scores: list[ProxyScore] = field(default_factory=list)
    benchmark: str = "nb201"
    """The benchmark, or :data:`MODEL_BENCHMARK` for a custom model."""
    network: str = "default"
    threads: int = 1
    """torch's CPU threads during the scoring."""
    failures: list[Failure] = field(default_factory=list)
    """Proxies that raised (the others are in ``scores``)."""


@dataclass(frozen=True)
class ModelFactory:
    """A :class:`~proxies.NetworkFactory` around a builder of custom networks. It has no named variants
    (``variant=`` raises :class:`~proxies.base.VariantUnavailable`) and takes no overrides."""

    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    name: str = "model"

    def __call__(self, variant: str | None = None, **overrides: Any) -> nn.Module:
        if variant is not None:
            raise VariantUnavailable(f"custom model {self.name} has no {variant!r} network")
        if overrides:
            raise TypeError(f"custom model {self.name} takes no overrides ({', '.join(overrides)})")
        net = self.build()
        if not isinstance(net, nn.Module):
            raise ModelError(f"model {self.name}: its builder returned {type(net).__name__}; expected a "
                             f"torch.nn.Module")
        return net


def _fresh_copy(module: nn.Module) -> nn.Module:
    net = copy.deepcopy(module)
    for sub in net.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            reset()
    return net


def _shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ModelError(f"input shape {input_shape!r}: expected three positive integers C,H,W, e.g. 3,224,224")
    return shape  # type: ignore[return-value]


def as_factory(model: nn.Module | Callable[..., nn.Module] | NetworkFactory, input_shape: Sequence[int] = (3, 32, 32),
               num_classes: int = 10, name: str | None = None) -> NetworkFactory:
    """A factory of ``model``: a factory is used as it is; an ``nn.Module`` is wrapped (fresh re-initialised
    copies, see the module doc); any other callable is called with no arguments for each network.
    ``input_shape`` [(3, 32, 32)] and ``num_classes`` [10] describe the network to the proxies."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes {num_classes!r}: expected a positive integer")
    if isinstance(model, NetworkFactory) and not isinstance(model, nn.Module):
        return model
    if isinstance(model, nn.Module):
        return ModelFactory(functools.partial(_fresh_copy, model), _shape(input_shape), num_classes,
                            name or type(model).__name__)
    if callable(model):
        return ModelFactory(model, _shape(input_shape), num_classes, name or getattr(model, "__name__", "model"))
    raise ModelError(f"model {model!r}: expected an nn.Module, a callable that builds one, or a NetworkFactory")


def load_model(spec: str, num_classes: int = 10) -> Callable[[], nn.Module]:
    """The builder a ``--model`` spec names: ``timm:NAME`` (``timm.create_model(NAME, pretrained=False,
    num_classes=...)``, the optional extra ``zenbench[timm]``) or ``package.module:callable`` (the current
    directory is importable; ``num_classes=`` is passed when the callable takes it)."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"--model {spec!r}: expected package.module:callable or timm:NAME")
    if module_name == "timm":
        try:
            import timm
        except Exception as exc:  # noqa: BLE001 - timm, or the torchvision it imports, fails to import
            raise ModelError(f"--model {spec!r}: timm is not importable ({type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); install the extra "
                             f"with pip install 'zenbench[timm]' and a torchvision built for torch "
                             f"{torch.__version__}") from None
        return functools.partial(timm.create_model, attr, pretrained=False, num_classes=num_classes)
    try:
        builder = import_attribute(module_name, attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"--model {spec!r}: cannot import ({exc})") from None
    if not callable(builder):
        raise ModelError(f"--model {spec!r}: {attr} is a {type(builder).__name__}, not a callable that builds a "
                         f"network")
    return functools.partial(builder, num_classes=num_classes) if _takes(builder, "num_classes") else builder


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _gaussian_batch(factory: NetworkFactory, size: int, seed: int, device: torch.device) -> Batch:
    """Seeded Gaussian images of the factory's input shape, with uniform labels of its classes."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn((size, *factory.input_shape), generator=generator)
    labels = torch.randint(0, factory.num_classes, (size,), generator=generator)
    shape = "x".join(map(str, factory.input_shape))
    return Batch(images.to(device), labels.to(device), factory.num_classes, f"gaussian:{shape}:seed={seed}")


def score_network(factory: NetworkFactory, proxies: Sequence[Proxy], device: torch.device, seed: int,
                  batch_size: int | None, load: Callable[[int], Batch]) -> tuple[list[ProxyScore], list[Failure]]:
    """Every proxy on ``factory`` with ``seed`` (:func:`bench.runner.score_proxies`); proxies that need images
    share one batch, ``load(size)``, of the largest size any of them needs (each takes its first
    ``proxy.batch_size`` images). A proxy that raises is a :class:`Failure`; the others are scored."""
    image_proxies = [p for p in proxies if p.needs != "nothing"]
    batch = load(max(p.batch_size or batch_size or DEFAULT_IMAGE_BATCH for p in image_proxies)) \
        if image_proxies else None
    scores, failures = [], []
    for outcome in score_proxies(factory, proxies, lambda _: batch, device, seed):
        proxy, result = outcome.proxy, outcome.result
        if result is None:
            failures.append(Failure(proxy.name, proxy.options(), str(outcome.error)))
            continue
        scores.append(ProxyScore(proxy.name, proxy.options(), result.value, result.seconds, result.peak_memory_mb,
                                 result.components, proxy.input_kind,
                                 outcome.batch.source if outcome.batch is not None else None, outcome.load_avg))
    return scores, failures


def resolve_arch(benchmark: Benchmark, text: str,
                 ground_truth: str | os.PathLike | None = None) -> tuple[Any, int | None]:
    """The architecture of ``text`` (the benchmark's parser), and the index it was given by when the
    benchmark takes one (NB201: digits, looked up in ``ground_truth``) rather than a spec."""
    text = text.strip()
    if ground_truth is not None:
        benchmark.ground_truth(ground_truth)  # validates the source; NB201 resolves indices in it
    arch = benchmark.parse(text)
    return arch, int(text) if text.isdigit() and benchmark.format(arch) != text else None


def score(
    arch_or_model: str | nn.Module | Callable[..., nn.Module] | NetworkFactory,
    proxies: Sequence[str | Proxy],
    *,
    benchmark: str | Benchmark = "nb201",
    dataset: str | None = None,
    network: str = "default",
    device: str | torch.device | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    proxy_options: dict[str, list[dict[str, Any]]] | None = None,
    threads: int | None = None,
    ground_truth: str | os.PathLike | None = None,
    data_source: str = "auto",
    data_root: str | os.PathLike | None = None,
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    name: str | None = None,
) -> ArchitectureScores:
    """Score one network with each proxy (names, ``module:Class`` specs or instances).

    ``arch_or_model``: a spec string of ``benchmark`` ["nb201"] (NB201 also takes an index, resolved in
    ``ground_truth``), or a custom model (see :func:`as_factory`; ``input_shape`` [(3, 32, 32)],
    ``num_classes`` [10] and ``name`` [its type's] describe it). ``dataset`` [None: the benchmark's first;
    a custom model: Gaussian images] picks the head and the images; ``network`` ["default"] one of the
    benchmark's networks; ``device`` [None: CUDA if available]; ``seed`` [0] seeds every proxy and the
    image batch; ``batch_size`` [None: each proxy's own] overrides the ``batch_size`` option of proxies that
    have one; ``proxy_options`` [None] per proxy spec, the option sets to score it with
    (:func:`bench.cli_options.parse_proxy_options`); ``threads`` [None: torch's choice] torch's CPU threads.
    Images come from ``bench.data.load_batch(dataset, B, seed, data_source, root=data_root)``. A proxy that
    raises does not stop the others: it is listed in ``failures`` with its one-line error.
    """
    in_effect = apply_threads(threads)
    torch_device = resolve_device(device)
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise RunConfigError(f"--batch-size {batch_size!r}: expected a positive integer")
    instances = [p for p in proxies if not isinstance(p, str)]
    proxy_list = [*make_proxies([p for p in proxies if isinstance(p, str)], proxy_options, batch_size),
                  *(resolve_proxies(instances, batch_size) if instances else [])]
    if not proxy_list:
        raise RunConfigError("no proxies given; expected e.g. --proxies zen,synflow")
    if isinstance(arch_or_model, str):
        bench_obj, bench_name = resolve_benchmark(benchmark)
        dataset = check_run(bench_obj, dataset, network)
        parsed, index = resolve_arch(bench_obj, arch_or_model, ground_truth)
        factory = make_factory(bench_obj, parsed, dataset, network)
        label, where = bench_obj.format(parsed), bench_name
    else:
        factory = as_factory(arch_or_model, input_shape, num_classes, name)
        label, where, index = getattr(factory, "name", name or type(factory).__name__), MODEL_BENCHMARK, None

    def load(size: int) -> Batch:
        if dataset is None:  # a custom model without a dataset
            return _gaussian_batch(factory, size, seed, torch_device)
        from bench.data import load_batch  # only image-using proxies need the data module

        loaded = load_batch(dataset, size, seed, source=data_source, root=data_root)
        labels = None if loaded.labels is None else loaded.labels.to(torch_device)
        return Batch(loaded.images.to(torch_device), labels, loaded.num_classes, loaded.source)

    scores, failures = score_network(factory, proxy_list, torch_device, seed, batch_size, load)
    return ArchitectureScores(label, index, dataset or "gaussian", str(torch_device), seed, scores, where, network,
                              in_effect, failures)


def scores_frame(store: str | os.PathLike, dataset: str | None = None) -> pd.DataFrame:
    """The scores of a results store (one row per stored score, every protocol column), optionally of
    one ``dataset``."""
    with ResultStore(store, create=False) as results:
        return results.scores(dataset) if dataset is not None else results.scores()


def search(proxy: str | Proxy = "zen", *, preset: str | None = None, space: str | None = None,
           out: str | os.PathLike | None = None, resume: bool = False, **options: Any) -> Any:
    """The Zen-NAS evolutionary search of ``preset`` [None: the default of ``space``, resnet] with ``proxy``
    ["zen"] as fitness; ``options`` are those of :func:`bench.searching.make_zennet_search` (iterations,
    population, seed, device, budgets, ...). Runs it (``out``: checkpoint, history and best structure;
    ``resume`` continues one) and returns its :class:`search.evolution.SearchResult`."""
    from bench.searching import make_zennet_search, resolve_preset

    instance = proxy if isinstance(proxy, Proxy) else resolve_proxies([proxy])[0]
    return make_zennet_search(resolve_preset(space, preset), instance, **options).run(out, resume=resume)


def validate_proxy(proxy: str | Proxy, **options: Any) -> Any:
    """A proxy as the fitness of an evolutionary search on a benchmark, beside random search:
    :func:`bench.searching.run_benchmark_validation` (returns the outcome, the best accuracy and the
    ground-truth key)."""
    from bench.searching import run_benchmark_validation

    return run_benchmark_validation(proxy, **options)


@dataclass(frozen=True)
class TrainingRun:
    """A ZenNet training set up by :func:`prepare_training`: ``trainer.fit(resume=...)`` runs it."""

    trainer: Any
    """The :class:`search.train.Trainer`."""
    structure: str
    dataset: str
    config: Any
    """The :class:`search.train.TrainConfig`."""
    device: torch.device
    out_dir: Path
    num_classes: int
    train_images: int
    test_images: int


def default_train_dir(structure: str, dataset: str, epochs: int, seed: int) -> Path:
    """``runs/train-<dataset>-<structure hash>-e<epochs>-seed<seed>``."""
    digest = hashlib.sha1(structure.encode()).hexdigest()[:8]
    return Path("runs") / f"train-{dataset}-{digest}-e{epochs}-seed{seed}"


def prepare_training(structure: str, config: Any, *, dataset: str = "cifar10", device: str | torch.device | None = None,
                     out: str | os.PathLike | None = None, resume: bool = False, data_source: str = "auto",
                     data_root: str | os.PathLike | None = None, threads: int | None = None,
                     progress: bool = True) -> TrainingRun:
    """Load the data and build the trainer of ``structure`` (a published ZenNet name, a structure string or
    a file holding one) with ``config`` (a :class:`search.train.TrainConfig`) on ``dataset`` ["cifar10"].
    ``device`` [None: CUDA if available; on CUDA cuDNN picks its fastest, not bitwise reproducible, kernels
    as ZenNAS does]; ``out`` [None: :func:`default_train_dir`] must not hold a checkpoint unless ``resume``;
    ``threads`` [None: torch's choice]; images from ``bench.data.load_dataset(dataset, split,
    source=data_source, root=data_root)``."""
    from bench.data import load_dataset, normalization
    from search.autoaugment import AutoAugment
    from search.train import CHECKPOINT_NAME, ImageSet, Trainer, zennet_for_training
    from search.zennets import resolve_structure

    apply_threads(threads)
    structure = str(resolve_structure(structure))
    if config.autoaugment:
        AutoAugment(backend=config.autoaugment_backend)  # an unusable backend fails here, before the data loads
    torch_device = resolve_device(device)
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out_dir = Path(out) if out is not None else default_train_dir(structure, dataset, config.epochs, config.seed)
    if not resume and (out_dir / CHECKPOINT_NAME).exists():
        raise FileExistsError(f"{out_dir / CHECKPOINT_NAME} exists: pass --resume to continue it, "
                              f"or choose another --out")
    train_images, train_labels, num_classes = load_dataset(dataset, "train", source=data_source, root=data_root,
                                                           progress=progress)
    test_images, test_labels, test_classes = load_dataset(dataset, "test", source=data_source, root=data_root,
                                                          progress=progress)
    train_set = ImageSet(train_images, train_labels, num_classes)
    test_set = ImageSet(test_images, test_labels, test_classes)
    mean, std = normalization(dataset)
    model = zennet_for_training(structure, num_classes, seed=config.seed)
    trainer = Trainer(model, train_set, test_set, config, mean, std, device=torch_device, out_dir=out_dir,
                      progress=progress, description=f"{structure} | {dataset}")
    return TrainingRun(trainer, structure, dataset, config, torch_device, out_dir, num_classes, len(train_set),
                       len(test_set))


def train(structure: str, epochs: int, *, dataset: str = "cifar10", resume: bool = False, **options: Any) -> Any:
    """Train ``structure`` for ``epochs`` with the Zen-NAS CIFAR recipe and return the
    :class:`search.train.TrainResult`. ``options``: those of :func:`prepare_training` (device, out,
    data_source, data_root, threads, progress), the rest are :class:`search.train.TrainConfig` fields
    (batch_size, seed, bn_momentum, autoaugment, ...)."""
    from search.train import TrainConfig

    setup = {k: options.pop(k) for k in ("device", "out", "data_source", "data_root", "threads", "progress")
             if k in options}
    run = prepare_training(structure, TrainConfig(epochs=epochs, **options), dataset=dataset, resume=resume, **setup)
    return run.trainer.fit(resume=resume)
