"""The one proxy interface: a proxy scores a freshly built, untrained network.

A proxy is a small dataclass. Its class attributes say what it is (``name``, ``needs``,
``higher_is_better``, ``input_kind``, ``nan_policy``, ``reference``); :meth:`Proxy.protocol` gives all of it
as plain data. Its dataclass fields are its options, whose defaults
reproduce the reference protocol, checked on construction against their declared types and bounds
(:mod:`proxies.options`). :meth:`Proxy.score` seeds, times and measures the call and
delegates to :meth:`Proxy.compute`, the one method a new proxy writes. A proxy whose score is read from a
computation others share declares it (:meth:`Proxy.shared_pass`, :meth:`Proxy.from_pass`), and
:func:`proxies.shared_pass.score_together` runs it once for all of them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import math
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from proxies.options import check_fields, option_error
from proxies.precision import full_precision

if TYPE_CHECKING:
    from proxies.shared_pass import SharedPass

Needs = Literal["nothing", "images", "images+labels"]
HASH_DEFAULT = "hash_default"
"""Field-metadata key: ``False`` keeps an option at its default out of :meth:`Proxy.option_hash`."""


@runtime_checkable
class NetworkFactory(Protocol):
    """Each call returns a fresh, freshly initialised network on the CPU.

    The network has ``forward(x)`` (logits) and ``forward_pre_gap(x)`` or ``forward_features(x)``
    (the tensor before global pooling). ``variant=NAME`` (a key of :data:`VARIANTS`) asks for a named
    variant, which the factory builds in its benchmark's own terms or refuses with
    :class:`VariantUnavailable`; other keyword ``overrides`` are the factory's own constructor arguments
    (for NB201: ``channels``, ``cells_per_stage``, ...); a factory that cannot take them raises ``TypeError``.
    """

    input_shape: tuple[int, int, int]
    num_classes: int

    def __call__(self, **overrides: Any) -> nn.Module: ...


VARIANTS: dict[str, str] = {
    "tenas-ntk": "TE-NAS's thin network for the NTK (NB201: C=3, one cell per stage)",
    "tenas-lr": "TE-NAS's thin network for linear regions (NB201: one C=1 cell, 1 input channel, no stem)",
    "no-reslink": "the network with its residual links removed (Zen-NAS scores this one)",
}
"""Named network variants a proxy may ask a factory for (``factory(variant=NAME)``); each benchmark builds
them in its own terms, or raises :class:`VariantUnavailable`."""


class VariantUnavailable(TypeError):
    """A factory has no such network variant (the message names the variant and the benchmark)."""


T = TypeVar("T")


def resolve_variant(variant: str, available: Mapping[str, T], benchmark: str,
                    reasons: Mapping[str, str] | None = None) -> T:
    """What a factory builds for ``variant``: ``available[variant]``; else :class:`VariantUnavailable`
    naming the variant, the benchmark and, where ``reasons`` has one, why it has none."""
    if variant in available:
        return available[variant]
    if variant not in VARIANTS:
        raise VariantUnavailable(f"unknown network variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    why = (reasons or {}).get(variant)
    raise VariantUnavailable(f"{benchmark} has no {variant!r} network" + (f": {why}" if why else "")
                             + (f" (it has {', '.join(available)})" if available else ""))


@dataclass(frozen=True)
class PopulationRule:
    """A population-level combination of stored components, declared as data (stored with every row and
    applied by ``bench.statistics`` without importing proxy code).

    ``rule``: ``rank_sum`` (TE-NAS: Σ w·rank(component), ties averaged) or ``log_rank_sum`` (AZ-NAS:
    Σ w·log(rank/N)); ``components``: the component names, each oriented higher-is-better, or nested rules
    (an ensemble of TE-NAS and others ranks TE-NAS's own rank sum); ``precision``: significant digits each
    named component is rounded to before ranking (TE-NAS's ``precision=3``), or ``None``; ``weights``: one
    positive weight per component, or ``None`` for equal weights (1 each).
    """

    rule: Literal["rank_sum", "log_rank_sum"]
    components: tuple[str | PopulationRule, ...]
    precision: int | None = None
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.rule not in ("rank_sum", "log_rank_sum"):
            raise ValueError(f"population rule {self.rule!r}: expected rank_sum or log_rank_sum")
        if not self.components or not all((isinstance(c, str) and c) or isinstance(c, PopulationRule)
                                          for c in self.components):
            raise ValueError(f"population rule {self.rule}: components must be non-empty names or rules, got "
                             f"{self.components!r}")
        if self.precision is not None and (isinstance(self.precision, bool) or self.precision < 1):
            raise ValueError(f"population rule {self.rule}: precision must be None or >= 1, got {self.precision!r}")
        object.__setattr__(self, "components", tuple(self.components))
        if self.weights is not None:
            weights = tuple(float(w) for w in self.weights)
            if len(weights) != len(self.components) or not all(math.isfinite(w) and w > 0 for w in weights):
                raise ValueError(f"population rule {self.rule}: weights must be one positive number per component "
                                 f"({len(self.components)}), got {self.weights!r}")
            object.__setattr__(self, "weights", weights)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON): nested rules as dicts; ``weights`` only when given, so the stored rules of
        unweighted proxies read as before."""
        out: dict[str, Any] = {"rule": self.rule,
                               "components": [c.to_dict() if isinstance(c, PopulationRule) else c
                                              for c in self.components],
                               "precision": self.precision}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        return out


@dataclass(frozen=True)
class SimpleFactory:
    """A :class:`NetworkFactory` around any callable that builds a network (timm, torchvision, ...)."""

    build: Callable[..., nn.Module]
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10

    def __call__(self, **overrides: Any) -> nn.Module:
        return self.build(**overrides)


@dataclass(frozen=True)
class Batch:
    """Images (N, C, H, W), normalised as the network was trained, with labels where known."""

    images: Tensor
    labels: Tensor | None
    num_classes: int
    source: str = "unknown"
    """Where the images came from, recorded with every score (e.g. ``cifar10:train:seed0``)."""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def take(self, n: int) -> Batch:
        if n > len(self):
            raise ValueError(f"batch from {self.source} has {len(self)} images, the proxy needs {n}")
        labels = None if self.labels is None else self.labels[:n]
        return Batch(self.images[:n], labels, self.num_classes, self.source)


@dataclass(frozen=True)
class ProxyResult:
    """What one call to :meth:`Proxy.score` produced: plain data, no printing."""

    value: float
    seconds: float
    peak_memory_mb: float | None
    """CUDA: ``torch.cuda.max_memory_allocated`` during the call. CPU (Linux): growth of the process's
    peak resident set during the call. ``None`` where neither can be read."""
    components: dict[str, float] = field(default_factory=dict)
    shared_with: tuple[str, ...] = ()
    """The other proxies whose scores were read from the same pass (:mod:`proxies.shared_pass`); when any,
    ``seconds`` is this proxy's even share of the pass's wall time and ``peak_memory_mb`` the whole pass's."""


NonFinite = Literal["nan", "-inf", "+inf"]
NON_FINITE: frozenset[NonFinite] = frozenset({"nan", "-inf", "+inf"})


@dataclass(frozen=True)
class NanPolicy:
    """What a proxy scores a degenerate network, as data: ``values``, the non-finite values its score may
    take (a subset of :data:`NON_FINITE`; empty: always finite), and ``explanation``, when and why, in
    words (``str(policy)``). The conformance kit checks a disconnected cell scores a finite value or one
    of ``values``."""

    values: frozenset[NonFinite]
    explanation: str

    def __post_init__(self) -> None:
        values = frozenset(self.values)
        if not values <= NON_FINITE:
            raise ValueError(f"NaN policy values {sorted(values - NON_FINITE)}: expected a subset of "
                             f"{', '.join(sorted(NON_FINITE))}")
        if not isinstance(self.explanation, str) or not self.explanation:
            raise ValueError("a NaN policy needs an explanation: when the proxy scores which value")
        object.__setattr__(self, "values", values)

    @classmethod
    def from_text(cls, text: str) -> NanPolicy:
        """The policy of a plug-in that declares ``nan_policy`` as text alone (the form before this class):
        it allows NaN, -inf or +inf where the text names it (NaN in any letter case)."""
        named = {"nan"} if "nan" in text.lower() else set()
        return cls(frozenset(named | {v for v in ("-inf", "+inf") if v in text}), text)

    def allows(self, value: float) -> bool:
        """Whether the policy allows the score ``value`` (every finite value is allowed)."""
        if math.isfinite(value):
            return True
        return ("nan" if math.isnan(value) else "-inf" if value < 0 else "+inf") in self.values

    def to_dict(self) -> dict[str, Any]:
        return {"values": sorted(self.values), "explanation": self.explanation}

    def __str__(self) -> str:
        return self.explanation


@dataclass(frozen=True)
class Reference:
    """The reference protocol a proxy's defaults reproduce, as plain data (stored with every run):
    ``paper``, a short citation; ``code``, the repository and file of the reference implementation;
    ``choices``, each protocol choice and what the reference does, under the keys ``init``, ``bn``,
    ``input``, ``loss``, ``score`` where they apply, plus the proxy's own (e.g. ``{"input": "64 real
    CIFAR-10 images", "init": "PyTorch default", "bn": "train mode"}``)."""

    paper: str
    code: str = ""
    choices: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.paper, str) or not self.paper:
            raise ValueError("a reference needs a paper (a short citation)")
        if not isinstance(self.code, str) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in self.choices.items()):
            raise ValueError(f"reference {self.paper!r}: code and choices must be text, got {self.code!r}, "
                             f"{dict(self.choices)!r}")
        object.__setattr__(self, "choices", MappingProxyType(dict(self.choices)))

    def to_dict(self) -> dict[str, Any]:
        return {"paper": self.paper, "code": self.code, "choices": dict(self.choices)}


class ProxyError(RuntimeError):
    """A proxy could not score a network (bad input, unsupported network)."""


@dataclass
class Proxy(ABC):
    """Base class of every proxy. Subclasses are dataclasses whose fields are their options."""

    name: ClassVar[str]
    needs: ClassVar[Needs] = "nothing"
    higher_is_better: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"nan", "-inf"}),
        "a disconnected or degenerate network may score NaN or -inf")
    """What the proxy returns for degenerate networks; the conformance kit checks it is honoured. A subclass
    that declares it as text gets :meth:`NanPolicy.from_text` of it."""

    reference: ClassVar[Reference | None] = None
    """The reference protocol the option defaults reproduce (``None``: a proxy that declares none)."""
    composite: ClassVar[bool] = False
    """True for a proxy that scores other registered proxies (``ensemble``): ``--proxies all``, which
    scores those already, leaves it out."""
    output_paths_only: ClassVar[bool] = False
    """True when the score depends only on the weights and units on a path from the input to the output
    (weights off those paths get zero gradient, their activations never reach the output: gradient and
    input-Jacobian proxies). Only such a score may be copied between architectures that compute one function
    but build different networks (``--dedupe`` on a benchmark whose ``isomorphism`` is ``functional``);
    counts of parameters, FLOPs, activation patterns or BN statistics over the whole network may not."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("nan_policy"), str):
            cls.nan_policy = NanPolicy.from_text(cls.__dict__["nan_policy"])

    @property
    def batch_size(self) -> int | None:
        """Images per forward pass: the first ``batch_size`` of a supplied batch when the proxy needs
        images, else the size of the synthetic input it draws (Zen's Gaussian batch). ``None``: the proxy
        consumes a whole supplied batch, or needs none. Proxies expose it as a ``batch_size`` option."""
        return None

    @property
    def input_kind(self) -> str:
        """What the network is fed: ``real``, ``gaussian``, ``ones``, ``none`` (recorded with results)."""
        return "real" if self.needs != "nothing" else "none"

    def population_rule(self) -> PopulationRule | None:
        """The population-level combination of this proxy's stored components, as data (TE-NAS: the rank
        sum of its two components), or ``None`` (default): the values are ranked as they are. The runner
        stores ``rule.to_dict()`` with every row; ``bench.statistics`` applies it without proxy code."""
        return None

    def __post_init__(self) -> None:
        """Check every option against its declared type and bounds (:func:`proxies.options.check_fields`),
        then the proxy's cross-option checks (:meth:`_check`)."""
        check_fields(self, self.name)
        self._check()

    def _check(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Checks that involve several options (default: none); raise :meth:`_option_error`."""

    def _option_error(self, option: str, expected: str) -> ValueError:
        """The one-line error for option ``option``'s value, which should have been ``expected``."""
        return option_error(self.name, option, getattr(self, option), expected)

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def option_hash(self) -> str:
        """Stable short hash of the proxy name and options: two protocols of one proxy differ here.

        An option declared with ``field(metadata={HASH_DEFAULT: False})`` (one added after scores were
        stored) enters the hash only when it differs from its default, so the stored scores keep their key."""
        options = self.options()
        for f in dataclasses.fields(self):
            if f.metadata.get(HASH_DEFAULT, True) is False and options[f.name] == f.default:
                del options[f.name]
        text = json.dumps({"proxy": self.name, **options}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {"proxy": self.name, "options": self.options(), "needs": self.needs,
                "higher_is_better": self.higher_is_better, "input_kind": self.input_kind,
                "batch_size": self.batch_size}

    def protocol(self) -> dict[str, Any]:
        """Everything that defines this proxy's scores, as plain JSON data: :meth:`describe`, the option
        hash, the NaN policy, the population rule and the reference."""
        rule = self.population_rule()
        return {**self.describe(), "option_hash": self.option_hash(), "nan_policy": self.nan_policy.to_dict(),
                "population_rule": None if rule is None else rule.to_dict(),
                "reference": None if self.reference is None else self.reference.to_dict()}

    def shared_pass(self) -> SharedPass | None:
        """The pass this proxy's score is read from, which proxies declaring an equal one share
        (:mod:`proxies.shared_pass`); ``None`` (default): the proxy is always scored by :meth:`compute`."""
        return None

    def from_pass(self, result: Any, batch: Batch | None) -> float | Mapping[str, float]:
        """This proxy's score (what :meth:`compute` returns) read from ``result``, the result of a run of a pass
        that covers :meth:`shared_pass`; ``batch`` is the proxy's own slice (:meth:`own_batch`)."""
        raise NotImplementedError(f"proxy {self.name!r} declares a shared pass but does not read it")

    @abstractmethod
    def compute(
        self, factory: NetworkFactory, batch: Batch | None, device: torch.device
    ) -> float | Mapping[str, float]:
        """Score one network. Randomness must come from the global torch RNG, which :meth:`score`
        has seeded. Return the value, or a mapping with key ``"value"`` plus named components."""

    def score(self, factory: NetworkFactory, batch: Batch | None = None, device: str | torch.device = "cpu",
              seed: int = 0) -> ProxyResult:
        """Seed, time and measure :meth:`compute`, in IEEE float32 (no TF32 on CUDA, see
        :func:`proxies.precision.full_precision`). The caller's RNG state is left as it was."""
        device = torch.device(device)
        batch = self.own_batch(batch)
        with seeded(seed, device), _CostMeter(device) as meter:
            out = self.compute(factory, batch, device)
        return self.as_result(out, meter.seconds, meter.peak_mb)

    def own_batch(self, batch: Batch | None) -> Batch | None:
        """What :meth:`compute` gets of the supplied ``batch``: its first :attr:`batch_size` images, after
        checking it has what :attr:`needs` asks for (a :class:`ProxyError` when not); ``None`` for a data-free
        proxy's ``None``."""
        if self.needs != "nothing":
            if batch is None:
                raise ProxyError(f"proxy {self.name!r} needs {self.needs}; no batch was given")
            if self.needs == "images+labels" and batch.labels is None:
                raise ProxyError(f"proxy {self.name!r} needs labels; batch {batch.source!r} has none")
            if self.batch_size is not None:
                batch = batch.take(self.batch_size)
        return batch

    def as_result(self, out: float | Mapping[str, float], seconds: float, peak_memory_mb: float | None,
                  shared_with: tuple[str, ...] = ()) -> ProxyResult:
        """What :meth:`compute` returned, as a :class:`ProxyResult` with the measured cost (a one-line
        :class:`ProxyError` for anything but a number or a mapping with ``"value"``)."""
        if isinstance(out, Mapping):
            if "value" not in out:
                raise ProxyError(f"proxy {self.name!r}: compute() returned a mapping without the key 'value' "
                                 f"(keys {', '.join(map(repr, out))}); expected a number or a mapping with "
                                 f"'value' and named components")
            components = {str(k): _as_number(self.name, f"component {k!r}", v) for k, v in out.items()
                          if k != "value"}
            value = _as_number(self.name, "the value", out["value"])
        else:
            components, value = {}, _as_number(self.name, "the value", out)
        return ProxyResult(value, seconds, peak_memory_mb, components, shared_with)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """The block runs as :meth:`Proxy.score` runs :meth:`Proxy.compute`: the torch RNG (CPU, and ``device``
    when it is CUDA) seeded with ``seed`` and restored after, in IEEE float32 (:func:`full_precision`)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), full_precision():
        torch.manual_seed(seed)
        yield


def _as_number(proxy: str, what: str, value: object) -> float:
    """``value`` (a real number, or a one-element tensor or array) as a float; anything else is a one-line
    :class:`ProxyError` naming the proxy and what was expected."""
    expected = "expected a number (a float, or a tensor or array of one element)"
    if isinstance(value, (Tensor, np.ndarray)):
        count = value.size if isinstance(value, np.ndarray) else value.numel()
        if count == 1:
            return float(value.item())
        raise ProxyError(f"proxy {proxy!r}: compute() returned {what} as a {type(value).__name__} of shape "
                         f"{tuple(value.shape)}; {expected}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        text = repr(value)
        text = text if len(text) <= 40 else text[:37] + "..."
        raise ProxyError(f"proxy {proxy!r}: compute() returned {what} as {type(value).__name__} {text}; {expected}")
    return float(value)


def pre_gap(net: nn.Module, x: Tensor) -> Tensor:
    """The pre-pooling tensor of any supported network (``forward_pre_gap`` or timm's ``forward_features``)."""
    for attr in ("forward_pre_gap", "forward_pre_GAP", "forward_features"):
        fn = getattr(net, attr, None)
        if callable(fn):
            return fn(x)
    raise ProxyError(
        f"{type(net).__name__} has no forward_pre_gap or forward_features; the proxy needs the tensor "
        f"before global pooling"
    )


class _CostMeter:
    """Wall time and peak memory of a block (see :attr:`ProxyResult.peak_memory_mb`)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = math.nan
        self.peak_mb: float | None = None

    def __enter__(self) -> _CostMeter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _reset_peak_rss()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.seconds = time.perf_counter() - self._t0
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            self.seconds = time.perf_counter() - self._t0
            peak = _read_status_kb("VmHWM")
            if self._base is not None and peak is not None:
                self.peak_mb = max(0.0, (peak - self._base) / 1024)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def _read_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> int | None:
    """Return freed heap pages to the kernel (glibc ``malloc_trim``), reset the kernel's peak-RSS mark
    (Linux ``clear_refs`` 5) and return the current RSS in kB. Without the trim, a call that reuses pages
    an earlier call freed shows no growth and reads as ~0 MB."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return None
    return _read_status_kb("VmRSS")
