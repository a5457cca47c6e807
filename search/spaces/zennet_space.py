"""The two Zen-NAS mutation spaces (idstcv/ZenNAS ``SearchSpace/*.py``; REFERENCE C.2, C.3).

A mutation replaces one super-block by a candidate drawn from that block's neighbourhood:

- ``SuperConv*`` blocks (stem, head) change only their out-channels, and come back with one sub-layer.
  In the MobileNet-like space every ``SuperConvK1BNRELU`` (the head) is fixed.
- Residual blocks may become any type of the space, with out-channels and bottleneck channels from
  {x2.5, x2, x1.5, x1.25, x1, /1.25, /1.5, /2, /2.5} (clipped to >= 8, and <= 2048 in the ResNet-like
  space only, then ``smart_round`` to a multiple of 8) and sub_layers in {L-2..L+2} (> 0).
- Candidates keep the replaced block's in-channels and stride; afterwards the in-channels are re-chained.

ZenNAS draws uniformly from a flattened candidate list in which the type lists are *cumulative*
(``gen_search_space`` appends the growing list after each type), so within each family the k-th type
appears n-k times: in the ResNet-like space K1K3K1 and K3K3 are drawn with weight 3/12, K1K5K1 and K5K5
2/12, K1K7K1 and K7K7 1/12; in the MobileNet-like space IDWE1K3 has weight 12/78 down to IDWE6K7 1/78.
Channels and sub-layers are uniform given the type. This module reproduces those weights.

After mutation, ``split`` turns any residual block with sub_layers >= 6 into two blocks with
``6 // 2 = 3`` and ``6 - 3 = 3`` sub-layers (ZenNAS's ``split``: the second count comes from the threshold,
not from the block, so a 7-sub-layer block becomes 3 + 3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from search.evolution import Metrics
from search.spaces.zennet import BLOCK_TYPES, Block, Structure, count_flops, count_params, smart_round

CHANNEL_MULTIPLIERS: tuple[float, ...] = (2.5, 2.0, 1.5, 1.25, 1.0, 1 / 1.25, 1 / 1.5, 1 / 2, 1 / 2.5)
"""ZenNAS's channel moves, in its order (x2.5 ... /2.5)."""
SUB_LAYER_MOVES: tuple[int, ...] = (0, 1, 2, -1, -2)
SPLIT_LAYER_THRESHOLD = 6


@dataclass(frozen=True)
class MutationRules:
    """One Zen-NAS search space: the residual block families, channel cap and whether the head is fixed."""

    name: str
    families: tuple[tuple[str, ...], ...]
    channel_cap: int | None
    fixed_head: bool
    min_channels: int = 8
    round_base: int = 8
    split_layer_threshold: int = SPLIT_LAYER_THRESHOLD

    def __post_init__(self) -> None:
        unknown = [t for fam in self.families for t in fam if t not in BLOCK_TYPES]
        if unknown:
            raise ValueError(f"unknown block types in space {self.name!r}: {unknown}")

    @property
    def weighted_types(self) -> tuple[str, ...]:
        """Block types with ZenNAS's multiplicities (cumulative lists): uniform draws from this tuple
        reproduce its type distribution."""
        out: list[str] = []
        for fam in self.families:
            for k, t in enumerate(fam):
                out += [t] * (len(fam) - k)
        return tuple(out)

    def channel_choices(self, channels: int) -> tuple[int, ...]:
        return _channel_choices(channels, self.channel_cap, self.min_channels, self.round_base)

    @staticmethod
    def sub_layer_choices(sub_layers: int) -> tuple[int, ...]:
        return _sub_layer_choices(sub_layers)

    def mutate_block(self, block: Block, rng: np.random.Generator) -> Block:
        """A candidate for ``block`` drawn with ZenNAS's distribution (same in-channels and stride)."""
        if block.spec.family == "conv":
            if self.fixed_head and block.spec.kernel == 1:
                return Block(block.type, block.in_channels, block.out_channels, block.stride, 1)
            outs = self.channel_choices(block.out_channels)
            return Block(block.type, block.in_channels, outs[int(rng.integers(len(outs)))], block.stride, 1)
        assert block.bottleneck is not None
        types = self.weighted_types
        new_type = types[int(rng.integers(len(types)))]
        outs = self.channel_choices(block.out_channels)
        subs = self.sub_layer_choices(block.sub_layers)
        mids = self.channel_choices(block.bottleneck)
        out = outs[int(rng.integers(len(outs)))]
        sub = subs[int(rng.integers(len(subs)))]
        mid = mids[int(rng.integers(len(mids)))]
        return Block(new_type, block.in_channels, out, block.stride, sub, mid)

    def split(self, blocks: list[Block]) -> list[Block]:
        """ZenNAS ``split(split_layer_threshold)``: residual blocks with sub_layers >= threshold become
        (in, out, stride, t // 2) + (out, out, 1, t - t // 2)."""
        t = self.split_layer_threshold
        out: list[Block] = []
        for b in blocks:
            if b.spec.family != "conv" and b.sub_layers >= t:
                out.append(replace(b, sub_layers=t // 2))
                out.append(Block(b.type, b.out_channels, b.out_channels, 1, t - t // 2, b.bottleneck))
            else:
                out.append(b)
        return out

    def mutate(self, structure: Structure, num_replaces: int, rng: np.random.Generator) -> Structure:
        """ZenNAS ``get_new_random_structure_str``: ``num_replaces`` uniformly drawn block indices (a
        repeated index is skipped, not redrawn), each block replaced by a candidate, in-channels
        re-chained, then split."""
        blocks = [replace(b, label=None) if b.label is not None else b for b in structure.blocks]
        chosen: set[int] = set()
        for _ in range(num_replaces):
            i = int(rng.integers(len(blocks)))
            if i in chosen:
                continue
            chosen.add(i)
            blocks[i] = self.mutate_block(blocks[i], rng)
        for i in range(1, len(blocks)):
            if blocks[i].in_channels != blocks[i - 1].out_channels:
                blocks[i] = replace(blocks[i], in_channels=blocks[i - 1].out_channels)
        return Structure(tuple(self.split(blocks)))

    def contains(self, structure: Structure) -> str | None:
        """Why ``structure`` is not a possible child in this space (None: it is): residual types of the
        space, channels multiples of ``round_base`` within [min, cap], no block at or above the split
        threshold, chained channels (the last is checked by :class:`Structure` itself)."""
        allowed = {t for fam in self.families for t in fam}
        for i, b in enumerate(structure.blocks):
            if b.spec.family != "conv" and b.type not in allowed:
                return f"block {i} {b}: type not in space {self.name}"
            channels = [b.out_channels] + ([b.bottleneck] if b.bottleneck is not None else [])
            for c in channels:
                if c % self.round_base or c < self.min_channels or (self.channel_cap and c > self.channel_cap):
                    return f"block {i} {b}: channels {c} outside the space's rounding/limits"
            if b.spec.family != "conv" and b.sub_layers >= self.split_layer_threshold:
                return f"block {i} {b}: sub_layers {b.sub_layers} >= split threshold"
        return None


@lru_cache(maxsize=4096)
def _channel_choices(channels: int, cap: int | None, minimum: int, base: int) -> tuple[int, ...]:
    values = [max(minimum, channels * m) for m in CHANNEL_MULTIPLIERS]
    if cap is not None:
        values = [min(cap, v) for v in values]
    return tuple(sorted({smart_round(v, base) for v in values}, reverse=True))


@lru_cache(maxsize=256)
def _sub_layer_choices(sub_layers: int) -> tuple[int, ...]:
    return tuple(sorted({max(0, sub_layers + d) for d in SUB_LAYER_MOVES} - {0}, reverse=True))


RESNET_LIKE = MutationRules(
    "resnet",
    (("SuperResK1K3K1", "SuperResK1K5K1", "SuperResK1K7K1"), ("SuperResK3K3", "SuperResK5K5", "SuperResK7K7")),
    channel_cap=2048, fixed_head=False,
)
"""``search_space_XXBL.py``: bottleneck (K1KXK1) and basic (KXKX) residual blocks, channels capped at 2048."""

MOBILENET_LIKE = MutationRules(
    "mobilenet",
    (tuple(f"SuperResIDWE{e}K{k}" for k in (3, 5, 7) for e in (1, 2, 4, 6)),),
    channel_cap=None, fixed_head=True,
)
"""``search_space_IDW_fixfc.py``: the 12 inverted-residual types, no channel cap, the 1x1 head fixed."""

SPACES: dict[str, MutationRules] = {"resnet": RESNET_LIKE, "mobilenet": MOBILENET_LIKE}
SPACE_ALIASES: dict[str, str] = {"xxbl": "resnet", "idw_fixfc": "mobilenet"}


def get_rules(name: str) -> MutationRules:
    key = SPACE_ALIASES.get(name.lower(), name.lower())
    if key not in SPACES:
        choices = ", ".join([*SPACES, *SPACE_ALIASES])
        raise ValueError(f"unknown Zen-NAS search space {name!r}; expected one of {choices}")
    return SPACES[key]


@dataclass(frozen=True)
class ZenNetMutationSpace:
    """The Zen-NAS search space as the EA sees it (the ``search.evolution.SearchSpace`` protocol).

    Warm-up children (population <= 10) are the initial structure with one block replaced; later
    children are a population member with two blocks replaced. Constraints see ZenNAS's own counts
    (``convention="zennas"``, with residual links, at ``resolution`` and ``num_classes``), as its
    ``budget_model_size``/``budget_flops``/``max_layers`` do.
    """

    rules: MutationRules
    initial: Structure
    num_classes: int = 100
    resolution: int = 32
    warmup_replaces: int = 1
    child_replaces: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", Structure.parse(self.initial))

    @property
    def name(self) -> str:
        return f"zennet-{self.rules.name}"

    def warmup_child(self, rng: np.random.Generator) -> Structure:
        return self.rules.mutate(self.initial, self.warmup_replaces, rng)

    def child(self, parent: Structure, rng: np.random.Generator) -> Structure:
        return self.rules.mutate(parent, self.child_replaces, rng)

    def metrics(self, candidate: Structure) -> Metrics:
        return Metrics(
            params=count_params(candidate, self.num_classes, convention="zennas"),
            flops=count_flops(candidate, self.resolution, self.num_classes, convention="zennas"),
            layers=candidate.num_layers,
        )

    @staticmethod
    def to_string(candidate: Structure) -> str:
        return str(candidate)

    @staticmethod
    def from_string(text: str) -> Structure:
        return Structure.parse(text)

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "initial": str(self.initial), "num_classes": self.num_classes,
                "resolution": self.resolution, "warmup_replaces": self.warmup_replaces,
                "child_replaces": self.child_replaces, "split_layer_threshold": self.rules.split_layer_threshold}


CIFAR_INITIAL = ("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
                 "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)")
IMAGENET_INITIAL = ("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
                    "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)")


@dataclass(frozen=True)
class SearchPreset:
    """One of ZenNAS's search scripts (``scripts/Zen_NAS_*.sh``; REFERENCE C.4). Budgets in ZenNAS counts."""

    name: str
    space: str
    initial: str
    num_classes: int
    resolution: int
    max_layers: int
    max_params: float | None = None
    max_flops: float | None = None
    use_se_for_training: bool = False


PRESETS: dict[str, SearchPreset] = {p.name: p for p in (
    SearchPreset("cifar-params1M", "resnet", CIFAR_INITIAL, 100, 32, 18, max_params=1e6),
    SearchPreset("cifar-params2M", "resnet", CIFAR_INITIAL, 100, 32, 20, max_params=2e6),
    SearchPreset("imagenet-flops400M", "mobilenet", IMAGENET_INITIAL, 1000, 224, 14, max_flops=400e6,
                 use_se_for_training=True),
    SearchPreset("imagenet-flops600M", "mobilenet", IMAGENET_INITIAL, 1000, 224, 14, max_flops=600e6,
                 use_se_for_training=True),
    SearchPreset("imagenet-flops800M", "mobilenet", IMAGENET_INITIAL, 1000, 224, 16, max_flops=800e6,
                 use_se_for_training=True),
)}
"""ZenNAS's FLOPs/params search scripts; every one uses population 512, 480,000 iterations, batch 64."""
