"""The published ZenNets by name (idstcv/ZenNAS ``ZenNet/*.txt``, README table; REFERENCE C.6).

Structure strings are data copied from the repository files named in ``source``; the params/FLOPs/top-1
columns are the README's current table. Where the README's parameter count matches the network without its
SE modules (flops400M, flops600M) ``published_params_include_se`` says so; the FLOPs of all three
FLOPs-budget models match with or without SE (SE adds < 1 %).

``resolve_structure`` turns what a user types (a name here, a structure string, or a file holding one)
into a :class:`~search.spaces.zennet.Structure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from search.spaces.zennet import Structure, StructureError

_REPO = "idstcv/ZenNAS"
_COMMIT_FEB21 = "53af65e"  # first release of the ZenNet files
_COMMIT_CURRENT = "f1b9006"  # current res224 files (README table of the current release)


@dataclass(frozen=True)
class PublishedZenNet:
    """One published ZenNet: its structure and the README's figures (params and FLOPs in millions)."""

    name: str
    structure: str
    dataset: str
    resolution: int
    num_classes: int
    use_se: bool
    params_m: float
    flops_m: float
    top1: dict[str, float] = field(default_factory=dict)
    source: str = ""
    published_params_include_se: bool = True
    aliases: tuple[str, ...] = ()


_CIFAR_SRC = f"{_REPO}@{_COMMIT_FEB21}:ZenNet/zennet_cifar_model_size{{}}_res32.txt"
_IMAGENET_SRC = f"{_REPO}@{{}}:ZenNet/zennet_imagenet1k_{{}}_res224.txt"

_MODELS: tuple[PublishedZenNet, ...] = (
    PublishedZenNet(
        "ZenNet-0.5M",
        "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
        "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
        "SuperConvK1BNRELU(32,512,1,1)",
        "cifar", 32, 10, False, 0.5, 140, {"cifar10": 96.2, "cifar100": 79.9}, _CIFAR_SRC.format("05M"),
        aliases=("zennet_cifar10_model_size05M_res32", "zennet_cifar100_model_size05M_res32"),
    ),
    PublishedZenNet(
        "ZenNet-1.0M",
        "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
        "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
        "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)",
        "cifar", 32, 10, False, 1.0, 162, {"cifar10": 96.2, "cifar100": 80.1}, _CIFAR_SRC.format("1M"),
        aliases=("zennet_cifar10_model_size1M_res32", "zennet_cifar100_model_size1M_res32"),
    ),
    PublishedZenNet(
        "ZenNet-2.0M",
        "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,3)"
        "SuperResK1K7K1(176,272,1,24,3)SuperResK1K3K1(272,176,1,56,3)SuperResK1K3K1(176,176,1,64,4)"
        "SuperResK1K5K1(176,216,2,40,2)SuperResK1K3K1(216,72,2,56,2)SuperConvK1BNRELU(72,512,1,1)",
        "cifar", 32, 10, False, 2.0, 487, {"cifar10": 97.5, "cifar100": 84.4}, _CIFAR_SRC.format("2M"),
        aliases=("zennet_cifar10_model_size2M_res32", "zennet_cifar100_model_size2M_res32"),
    ),
    PublishedZenNet(
        "ZenNet-400M-SE",
        "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE1K7(40,64,2,64,1)"
        "SuperResIDWE4K7(64,96,2,96,5)SuperResIDWE2K7(96,224,2,224,5)SuperConvK1BNRELU(224,2048,1,1)",
        "imagenet", 224, 1000, True, 5.7, 410, {"imagenet": 78.0}, _IMAGENET_SRC.format(_COMMIT_CURRENT, "flops400M"),
        published_params_include_se=False, aliases=("zennet_imagenet1k_flops400M_SE_res224",),
    ),
    PublishedZenNet(
        "ZenNet-600M-SE",
        "SuperConvK3BNRELU(3,24,2,1)SuperResIDWE1K7(24,48,2,48,1)SuperResIDWE2K7(48,72,2,72,1)"
        "SuperResIDWE6K7(72,96,2,88,5)SuperResIDWE4K7(96,192,2,168,5)SuperConvK1BNRELU(192,2048,1,1)",
        "imagenet", 224, 1000, True, 7.1, 611, {"imagenet": 79.1}, _IMAGENET_SRC.format(_COMMIT_CURRENT, "flops600M"),
        published_params_include_se=False, aliases=("zennet_imagenet1k_flops600M_SE_res224",),
    ),
    PublishedZenNet(
        "ZenNet-900M-SE",
        "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,48,2,72,1)SuperResIDWE2K7(48,72,2,64,3)"
        "SuperResIDWE2K7(72,152,2,144,3)SuperResIDWE2K7(152,360,2,352,4)SuperResIDWE4K7(360,288,1,264,3)"
        "SuperConvK1BNRELU(288,2048,1,1)",
        "imagenet", 224, 1000, True, 19.4, 934, {"imagenet": 80.8}, _IMAGENET_SRC.format(_COMMIT_FEB21, "flops900M"),
        aliases=("zennet_imagenet1k_flops900M_SE_res224",),
    ),
    PublishedZenNet(
        "ZenNet-0.1ms",
        "SuperConvK3BNRELU(3,24,2,1)SuperResK3K3(24,32,2,64,1)SuperResK5K5(32,64,2,32,1)SuperResK5K5(64,168,2,96,1)"
        "SuperResK1K5K1(168,320,1,120,1)SuperResK1K5K1(320,640,2,304,3)SuperResK1K5K1(640,512,1,384,1)"
        "SuperConvK1BNRELU(512,2384,1,1)",
        "imagenet", 224, 1000, False, 30.1, 1700, {"imagenet": 77.8},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency01ms"), aliases=("zennet_imagenet1k_latency01ms_res224",),
    ),
    PublishedZenNet(
        "ZenNet-0.2ms",
        "SuperConvK3BNRELU(3,24,2,1)SuperResK1K5K1(24,32,2,32,1)SuperResK1K7K1(32,104,2,64,1)"
        "SuperResK1K5K1(104,512,2,160,1)SuperResK1K5K1(512,344,1,192,1)SuperResK1K5K1(344,688,2,320,4)"
        "SuperResK1K5K1(688,680,1,304,3)SuperConvK1BNRELU(680,2552,1,1)",
        "imagenet", 224, 1000, False, 49.7, 3400, {"imagenet": 80.8},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency02ms"), aliases=("zennet_imagenet1k_latency02ms_res224",),
    ),
    PublishedZenNet(
        "ZenNet-0.3ms",
        "SuperConvK3BNRELU(3,24,2,1)SuperResK1K5K1(24,64,2,32,1)SuperResK1K3K1(64,128,2,128,1)"
        "SuperResK1K7K1(128,432,2,128,1)SuperResK1K5K1(432,272,1,160,1)SuperResK1K5K1(272,848,2,384,4)"
        "SuperResK1K5K1(848,848,1,320,3)SuperResK1K5K1(848,456,1,320,3)SuperConvK1BNRELU(456,6704,1,1)",
        "imagenet", 224, 1000, False, 85.4, 4800, {"imagenet": 81.5},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency03ms"), aliases=("zennet_imagenet1k_latency03ms_res224",),
    ),
    PublishedZenNet(
        "ZenNet-0.5ms",
        "SuperConvK3BNRELU(3,8,2,1)SuperResK1K7K1(8,64,2,32,1)SuperResK1K3K1(64,152,2,128,1)"
        "SuperResK1K5K1(152,640,2,192,4)SuperResK1K5K1(640,640,1,192,2)SuperResK1K5K1(640,1536,2,384,4)"
        "SuperResK1K5K1(1536,816,1,384,3)SuperResK1K5K1(816,816,1,384,3)SuperConvK1BNRELU(816,5304,1,1)",
        "imagenet", 224, 1000, False, 118, 8300, {"imagenet": 82.7},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency05ms"), aliases=("zennet_imagenet1k_latency05ms_res224",),
    ),
    PublishedZenNet(
        "ZenNet-0.8ms",
        "SuperConvK3BNRELU(3,16,2,1)SuperResK1K5K1(16,64,2,64,1)SuperResK1K3K1(64,240,2,128,2)"
        "SuperResK1K7K1(240,640,2,160,3)SuperResK1K7K1(640,768,1,192,4)SuperResK1K5K1(768,1536,2,384,5)"
        "SuperResK1K5K1(1536,1536,1,384,3)SuperResK1K5K1(1536,2304,1,384,5)SuperConvK1BNRELU(2304,4912,1,1)",
        "imagenet", 224, 1000, False, 183, 13900, {"imagenet": 83.0},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency08ms"), aliases=("zennet_imagenet1k_latency08ms_res224",),
    ),
    PublishedZenNet(
        "ZenNet-1.2ms",
        "SuperConvK3BNRELU(3,32,2,1)SuperResK1K5K1(32,80,2,32,1)SuperResK1K7K1(80,432,2,128,5)"
        "SuperResK1K7K1(432,640,2,192,3)SuperResK1K7K1(640,1008,1,160,5)SuperResK1K7K1(1008,976,1,160,4)"
        "SuperResK1K5K1(976,2304,2,384,5)SuperResK1K5K1(2304,2496,1,384,5)SuperConvK1BNRELU(2496,3072,1,1)",
        "imagenet", 224, 1000, False, 180, 22000, {"imagenet": 83.6},
        _IMAGENET_SRC.format(_COMMIT_CURRENT, "latency12ms"), aliases=("zennet_imagenet1k_latency12ms_res224",),
    ),
)

_BY_NAME: dict[str, PublishedZenNet] = {}
for _m in _MODELS:
    for _key in (_m.name, *_m.aliases):
        _BY_NAME[_key.lower()] = _m


def list_names() -> list[str]:
    """Canonical names of the published ZenNets (aliases: ZenNAS's model-zoo keys)."""
    return [m.name for m in _MODELS]


def get(name: str) -> PublishedZenNet:
    """A published ZenNet by name or ZenNAS model-zoo key (case-insensitive)."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown ZenNet {name!r}; expected one of {', '.join(list_names())}") from None


def get_structure(name: str) -> str:
    """The structure string of a published ZenNet."""
    return get(name).structure


def resolve_structure(spec: str) -> Structure:
    """A structure from a published name, a structure string, or a file whose first line holds one."""
    text = spec.strip()
    if text.lower() in _BY_NAME:
        return Structure.parse(_BY_NAME[text.lower()].structure)
    if "(" in text:
        return Structure.parse(text)
    path = Path(text).expanduser()
    if path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not lines:
            raise StructureError(f"structure file {path} is empty")
        return Structure.parse(lines[0])
    raise StructureError(
        f"{spec!r} is neither a published ZenNet ({', '.join(list_names())}), a structure string, nor a file"
    )
