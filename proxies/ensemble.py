"""A rank ensemble of registered proxies: each member scored as it is alone, their ranks combined over the
population by a declared rule (:class:`proxies.base.PopulationRule`), as TE-NAS and AZ-NAS combine their own
measures. zenbench's own proxy (issue 13); the default members were chosen on NAS-Bench-Macro, not on the
benchmark the ensemble is reported on (``reports/ensemble/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import torch

from proxies.base import (
    Batch,
    NanPolicy,
    Needs,
    NetworkFactory,
    PopulationRule,
    Proxy,
    ProxyError,
    ProxyResult,
    Reference,
    _CostMeter,
)
from proxies.registry import get, get_class, register
from proxies.shared_pass import score_together

NEEDS_ORDER: tuple[Needs, ...] = ("nothing", "images", "images+labels")
COMPONENT_PREFIX = "ensemble."
"""A member's oriented value is stored as the component ``ensemble.MEMBER``."""


@register
@dataclass
class Ensemble(Proxy):
    """A rank ensemble: Σ w·log(rank/N) of its members' scores over the architectures ranked together.

    ``rule``: ``log_rank_sum`` (AZ-NAS's aggregation, the default) or ``rank_sum`` (Σ w·rank, TE-NAS's).

    - ``members``: comma-separated registered proxy names, each with its reference defaults. A member with a
      population rule of its own (AZ-NAS, TE-NAS) enters as that rule's score, nested; the others as their
      value, oriented higher-is-better.
    - ``weights``: comma-separated positive numbers, one per member; empty (default): equal weights.
    - Every member is scored on the same network factory, seed and batch as it would be alone (the batch is
      the largest any member takes; each takes its first ``batch_size`` images), shared passes run once
      (:func:`proxies.shared_pass.score_together`), so each ``ensemble.MEMBER`` component equals the
      member's own score. The cost is the members' together.
    - The ensemble is a population score: ``bench`` and ``report`` apply the rule over the architectures
      ranked together. Alone (one architecture, a search's fitness) the value is the first member's
      oriented score.

    A member that fails fails the ensemble's score of that architecture (the error names the member);
    ``--proxies all`` leaves the ensemble out (it would score its members twice).
    """

    name: ClassVar[str] = "ensemble"
    higher_is_better: ClassVar[bool] = True
    composite: ClassVar[bool] = True
    nan_policy: ClassVar[NanPolicy] = NanPolicy(
        frozenset({"nan", "-inf"}),
        "the value is the first member's oriented score (NaN or -inf where it is); an architecture with a NaN "
        "member component is left out of the population ranking, -inf ranks last")
    reference: ClassVar[Reference] = Reference(
        paper="zenbench (issue 13): a rank ensemble with members and weights fixed a priori",
        code="reports/ensemble/README.md (the selection protocol, every candidate)",
        choices={"members": "NASWOT, Jacobian covariance, grad-norm (chosen on NAS-Bench-Macro), each with its "
                            "reference defaults, scored as alone",
                 "score": "AZ-NAS's Σ log(rank/N) over the population, equal weights"})

    members: str = "naswot,jacob_cov,grad_norm"
    """The default: the combination with the best Kendall τ on 200 NAS-Bench-Macro CIFAR-10 architectures among
    all 32,767 of a 15-proxy pool (``scripts/ensemble_selection.py``, ``reports/ensemble/``), fixed before
    it was measured on NB201."""
    weights: str = ""
    rule: Literal["rank_sum", "log_rank_sum"] = "log_rank_sum"

    def _check(self) -> None:
        names = self.member_names
        if not names:
            raise self._option_error("members", "a comma-separated list of registered proxy names")
        if len(set(names)) != len(names):
            raise self._option_error("members", "each proxy once")
        for member in names:
            try:
                cls = get_class(member)
            except (LookupError, ValueError) as exc:
                raise self._option_error("members", f"registered proxy names ({exc})") from None
            if getattr(cls, "composite", False):
                raise self._option_error("members", f"proxies that are not ensembles themselves ({member!r} is)")
        try:
            self.population_rule()  # the rule checks its weights (count, positive, finite)
        except ValueError:
            raise self._option_error("weights", f"{len(names)} positive numbers, comma-separated, or empty") from None

    def weight_values(self) -> tuple[float, ...] | None:
        """``weights`` as numbers; ``None`` when empty (equal weights)."""
        words = [w.strip() for w in self.weights.split(",") if w.strip()]
        return tuple(float(w) for w in words) if words else None

    @property
    def member_names(self) -> list[str]:
        return [m.strip() for m in self.members.split(",") if m.strip()]

    @cached_property
    def member_proxies(self) -> list[Proxy]:
        """The member instances, reference defaults."""
        return [get(member) for member in self.member_names]

    @property
    def needs(self) -> Needs:  # type: ignore[override]
        return max((m.needs for m in self.member_proxies), key=NEEDS_ORDER.index)

    @property
    def batch_size(self) -> int | None:
        sizes = [m.batch_size for m in self.member_proxies if m.needs != "nothing" and m.batch_size is not None]
        return max(sizes) if sizes else None

    @property
    def input_kind(self) -> str:
        return "+".join(sorted({m.input_kind for m in self.member_proxies}))

    def population_rule(self) -> PopulationRule:
        entries: list[str | PopulationRule] = []
        for member in self.member_proxies:
            own = member.population_rule()
            entries.append(own if own is not None else COMPONENT_PREFIX + member.name)
        return PopulationRule(self.rule, tuple(entries), weights=self.weight_values())

    def score(self, factory: NetworkFactory, batch: Batch | None = None, device: str | torch.device = "cpu",
              seed: int = 0) -> ProxyResult:
        """Each member's :meth:`Proxy.score` with this ``seed`` (shared passes once); the cost is theirs
        together."""
        device = torch.device(device)
        batch = self.own_batch(batch)
        with _CostMeter(device) as meter:
            out = self._scores(factory, batch, device, seed)
        return self.as_result(out, meter.seconds, meter.peak_mb)

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> dict[str, float]:
        """:meth:`score`'s components, the members' seed drawn from the global torch RNG."""
        return self._scores(factory, batch, device, int(torch.randint(2**62, (1,))))

    def _scores(self, factory: NetworkFactory, batch: Batch | None, device: torch.device,
                seed: int) -> dict[str, float]:
        results = score_together(self.member_proxies, factory, lambda _: batch, device, seed)
        out: dict[str, float] = {}
        for member, result in zip(self.member_proxies, results, strict=True):
            if isinstance(result, Exception):
                raise ProxyError(f"ensemble member {member.name!r} failed: {result}") from result
            clash = sorted((set(result.components) | {COMPONENT_PREFIX + member.name}) & set(out))
            if clash:
                raise ProxyError(f"ensemble: two members give the component {clash[0]!r}")
            out[COMPONENT_PREFIX + member.name] = result.value if member.higher_is_better else -result.value
            out.update(result.components)
        out["value"] = out[COMPONENT_PREFIX + self.member_proxies[0].name]
        return out
