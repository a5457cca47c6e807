"""One pass, many proxies: proxies that read their scores from the same computation share one run of it.

Several proxies build the same network (the same seed, the same build arguments) and run the same forward and
backward on the same images: snip, plain, fisher, grad_norm (its ``zero-cost-nas`` variant) and zico read the
per-chunk weight gradients of the cross-entropy (:func:`proxies.loss_saliency.gradient_pass`); jacob_cov and
epe_nas read the input Jacobian of the summed logits (:func:`proxies.input_jacobian.input_jacobian_pass`). A
proxy declares its pass with :meth:`~proxies.base.Proxy.shared_pass` and reads its score from the pass's result
with :meth:`~proxies.base.Proxy.from_pass`; :func:`score_together` runs each pass once for all its readers.

A pass is a run of ``steps`` (e.g. the chunks of a batch, one forward and backward each) on one network built
under the seeded RNG; readers of a pass share one run when their keys are equal, they were handed the same
batch object, and each one's steps are a prefix of the longest reader's: each step then runs on a network in
the very state (weights, buffers, RNG) it reaches when the reader computes alone, so a shared score is the
score alone, bit for bit (the same ops on the same tensors in the same order). A proxy scored with no other
reader of its pass, or with no pass, is scored by :meth:`~proxies.base.Proxy.score` as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from proxies.base import Batch, NetworkFactory, Proxy, ProxyError, ProxyResult, _CostMeter, seeded

PassRun = Callable[[NetworkFactory, Batch | None, torch.device, tuple[Hashable, ...], frozenset[Hashable]], Any]
"""``run(factory, batch, device, steps, reads)``: builds the network from ``factory`` (under the RNG the
caller seeded), runs ``steps`` on ``batch`` and computes the extra terms ``reads`` asks for."""


@dataclass(frozen=True)
class SharedPass:
    """The pass a proxy reads its score from.

    ``key``: what the pass's result depends on besides the network's seed, the batch handed to the proxy and
    the steps (its kind and build arguments, and e.g. the batch slice it runs on); ``steps``: the pass's own
    sequence of steps, each of which depends only on the steps before it; ``reads``: extra terms this proxy
    reads (e.g. Fisher terms on given chunks), computed in a shared run for the union over its readers;
    ``run``: the computation (:data:`PassRun`), the same function for every pass of one key.
    """

    key: Hashable
    run: PassRun = field(compare=False)
    steps: tuple[Hashable, ...] = ()
    reads: frozenset[Hashable] = frozenset()

    def alone(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> Any:
        """The pass as its proxy runs it by itself: its own steps and reads."""
        return self.run(factory, batch, device, self.steps, self.reads)

    def covers(self, other: SharedPass) -> bool:
        """Whether a run of this pass computes ``other``'s: equal keys and ``other.steps`` a prefix of ours."""
        return self.key == other.key and self.steps[:len(other.steps)] == other.steps


@dataclass
class Member:
    """A proxy at ``position`` in the caller's list, handed the batch ``supplied``; a reader of ``shared`` on
    ``batch``, its own slice of it (``shared`` ``None``: the proxy is scored alone)."""

    position: int
    proxy: Proxy
    supplied: Batch | None
    shared: SharedPass | None = None
    batch: Batch | None = None


@dataclass
class ScoringGroup:
    """Proxies scored from one run of the first member's pass (the one with the longest steps); a group of
    one is scored alone by :meth:`Proxy.score <proxies.base.Proxy.score>`."""

    members: list[Member]

    @property
    def positions(self) -> list[int]:
        return [m.position for m in self.members]

    def covers(self, member: Member) -> bool:
        """Whether ``member`` can read this group's pass: handed the same batch object, a pass it covers."""
        leader = self.members[0]
        return (leader.shared is not None and member.shared is not None and leader.supplied is member.supplied
                and leader.shared.covers(member.shared))

    def score(self, factory: NetworkFactory, device: torch.device | str, seed: int) -> list[ProxyResult | Exception]:
        """Each member's result, or the exception it raised (``KeyboardInterrupt`` propagates).

        A shared run is seeded and run in full precision as :meth:`Proxy.score <proxies.base.Proxy.score>`
        runs ``compute``; its wall time (the pass and every member's reading) is divided evenly among the
        members and each gets its peak memory, so the members' seconds add up to what the group cost, and
        ``shared_with`` names the others (a member's seconds are a share, not its cost alone)."""
        device = torch.device(device)
        if len(self.members) == 1:
            (alone,) = self.members
            return [_attempt(partial(alone.proxy.score, factory, alone.supplied, device, seed))]
        leader = self.members[0]
        reads = frozenset().union(*(m.shared.reads for m in self.members))
        with seeded(seed, device), _CostMeter(device) as meter:
            result = _attempt(partial(leader.shared.run, factory, leader.batch, device, leader.shared.steps, reads))
            outs = [result if isinstance(result, Exception) else _attempt(partial(m.proxy.from_pass, result, m.batch))
                    for m in self.members]
        share, names = meter.seconds / len(self.members), [m.proxy.name for m in self.members]
        results: list[ProxyResult | Exception] = []
        for k, (member, out) in enumerate(zip(self.members, outs, strict=True)):
            others = tuple(names[:k] + names[k + 1:])
            results.append(out if isinstance(out, Exception) else
                           _attempt(partial(member.proxy.as_result, out, share, meter.peak_mb, others)))
        return results


def _attempt(call: Callable[[], Any]) -> Any:
    """``call()``, or the exception it raised (only ``Exception``: Ctrl-C propagates)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - each proxy's failure is its own outcome
        return exc


def _member(position: int, proxy: Proxy, supplied: Batch | None) -> Member:
    """``proxy`` as a reader of its pass; scored alone where it has none or ``supplied`` does not suit it
    (then :meth:`Proxy.score <proxies.base.Proxy.score>` raises the error it raises alone)."""
    shared = proxy.shared_pass()
    if shared is None:
        return Member(position, proxy, supplied)
    try:
        return Member(position, proxy, supplied, shared, proxy.own_batch(supplied))
    except (ProxyError, ValueError):  # no batch, no labels (ProxyError), too few images (ValueError)
        return Member(position, proxy, supplied)


def plan(proxies: Sequence[Proxy], supplied: Sequence[Batch | None]) -> list[ScoringGroup]:
    """The groups :func:`score_together` scores ``proxies`` in, ``supplied[k]`` being the batch handed to
    ``proxies[k]``, ordered by their first position. Readers are taken longest steps first; each joins the
    first group that :meth:`~ScoringGroup.covers` it, or starts one."""
    members = [_member(k, p, b) for k, (p, b) in enumerate(zip(proxies, supplied, strict=True))]
    groups: list[ScoringGroup] = []
    for member in sorted((m for m in members if m.shared is not None), key=lambda m: -len(m.shared.steps)):
        group = next((g for g in groups if g.covers(member)), None)
        if group is None:
            groups.append(ScoringGroup([member]))
        else:
            group.members.append(member)
    groups += [ScoringGroup([m]) for m in members if m.shared is None]
    return sorted(groups, key=lambda g: min(g.positions))


def score_together(proxies: Sequence[Proxy], factory: NetworkFactory, batch_for: Callable[[Proxy], Batch | None],
                   device: torch.device | str, seed: int) -> list[ProxyResult | Exception]:
    """Score one network with each proxy, as ``proxy.score(factory, batch_for(proxy), device, seed)`` would,
    running each shared pass once (:func:`plan`); per proxy, in order, its result or the exception it raised.
    ``batch_for`` is asked only for proxies that need images."""
    supplied = [batch_for(p) if p.needs != "nothing" else None for p in proxies]
    results: dict[int, ProxyResult | Exception] = {}
    for group in plan(proxies, supplied):
        results.update(zip(group.positions, group.score(factory, device, seed), strict=True))
    return [results[k] for k in range(len(proxies))]
