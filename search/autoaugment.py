"""AutoAugment's CIFAR-10 policy (Cubuk et al., "AutoAugment: Learning Augmentation Strategies from Data",
CVPR 2019) on uint8 image batches N x C x H x W, on their device, batched by operation.

Reference semantics: torchvision's ``transforms.AutoAugment(AutoAugmentPolicy.CIFAR10)`` on tensors
(``transforms/autoaugment.py``: policy table, ``_augmentation_space`` with 10 magnitude bins, ``get_params``,
``_apply_op``; ``_functional_tensor.py``: the operations). ZenNAS trains with DeepVoltaire's PIL
``CIFAR10Policy`` (REFERENCE C.5), which has the same 25 sub-policies, probabilities and bins but fills with
grey 128, shears with bicubic interpolation, translates by fractional pixels and solarizes on a 256..0
range; here torchvision's choices hold throughout, and ``fill`` is torchvision's default, 0.

Per image (torchvision ``get_params``): one sub-policy uniform among the 25, two coins U(0, 1), operation i
applies when ``coin_i <= p_i`` (the second to the first's output), and two sign bits: a signed magnitude is
negated when its bit is 0 (probability 0.5). The draws come from the ``torch.Generator`` passed in (the
trainer's is on the host: a few numbers per image, while the pixels stay on the device).

Magnitudes per bin b = 0..9 (torchvision ``_augmentation_space``): shear ``linspace(0, 0.3)`` (the tangent
of the shear angle), translate ``linspace(0, 150/331 * width or height)`` truncated to whole pixels,
rotate ``linspace(0, 30)`` degrees counter-clockwise, brightness / color / contrast / sharpness
``linspace(0, 0.9)`` used as the blend factor ``1 + m``, posterize ``8 - round(b / 2.25)`` bits kept,
solarize threshold ``linspace(255, 0)``.

Operations, each on a batch with one magnitude per image (torchvision's tensor ops, same float32 steps):

- geometric (ShearX/Y about the top-left corner, TranslateX/Y, Rotate about the centre): the inverse affine
  map of ``F.affine`` / ``F.rotate`` on pixel centres, sampled by ``grid_sample`` with nearest neighbour and
  ``fill`` outside the image;
- PIL-like blends ``clamp(f * x + (1 - f) * y, 0, 255)`` truncated to uint8: Brightness (y = 0), Color
  (y = grey ``0.2989 R + 0.587 G + 0.114 B`` truncated), Contrast (y = mean of that grey), Sharpness
  (y = the 3 x 3 smoothing ``[1 1 1; 1 5 1; 1 1 1] / 13`` rounded, border pixels kept);
- Posterize (keep the high bits), Solarize (invert pixels >= threshold), AutoContrast (stretch each channel's
  min..max to 0..255; a flat channel stays), Equalize (PIL's per-channel histogram equalisation), Invert.

The images are grouped by (stage, operation) so that each operation runs once per batch on the images that
draw it; the group sizes are read where the draws live (no synchronisation when they were drawn on the host,
one per batch when drawn on an accelerator).
``backend="torchvision"`` applies torchvision's own ``_apply_op`` to the same groups (split further by
magnitude, since torchvision takes one magnitude per call) for a cross-check where torchvision imports.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_BINS = 10
SIGNED = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness")
UNSIGNED = ("Posterize", "Solarize")
WITHOUT_MAGNITUDE = ("AutoContrast", "Equalize", "Invert")
OPERATIONS = SIGNED + UNSIGNED + WITHOUT_MAGNITUDE
BACKENDS = ("zenbench", "torchvision")


class AutoAugmentError(ValueError):
    """A policy, image batch or setting AutoAugment cannot use."""


def _unknown_operation(name: str) -> AutoAugmentError:
    return AutoAugmentError(f"unknown AutoAugment operation {name!r}; expected one of {', '.join(OPERATIONS)}")


@dataclass(frozen=True)
class Op:
    """One operation of a sub-policy: its name, the probability it applies and its magnitude bin
    (None for the operations without a magnitude)."""

    name: str
    p: float
    bin: int | None


def _policy(rows: Sequence[tuple[tuple, tuple]]) -> tuple[tuple[Op, Op], ...]:
    return tuple((Op(*first), Op(*second)) for first, second in rows)


CIFAR10_POLICY = _policy([
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
])
"""The 25 CIFAR-10 sub-policies of the paper as torchvision's ``AutoAugmentPolicy.CIFAR10`` lists them. ZenNAS's
(DeepVoltaire's) table is the same except sub-policy 16, whose second Equalize has p 0.8 there."""


def magnitude_bins(name: str, height: int, width: int, num_bins: int = NUM_BINS) -> Tensor:
    """The unsigned magnitude of each bin (float64 holding torchvision's float32 values); zeros for the
    operations without a magnitude."""
    spans = {"ShearX": 0.3, "ShearY": 0.3, "TranslateX": 150.0 / 331.0 * width, "TranslateY": 150.0 / 331.0 * height,
             "Rotate": 30.0, "Brightness": 0.9, "Color": 0.9, "Contrast": 0.9, "Sharpness": 0.9}
    if name in spans:
        return torch.linspace(0.0, spans[name], num_bins).double()
    if name == "Posterize":
        return (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4)).round().int()).double()
    if name == "Solarize":
        return torch.linspace(255.0, 0.0, num_bins).double()
    if name in WITHOUT_MAGNITUDE:
        return torch.zeros(num_bins, dtype=torch.float64)
    raise _unknown_operation(name)


# ----------------------------------------------------------------------------- operations


def _per_image(value: Tensor | float, images: Tensor) -> Tensor:
    """A magnitude as a float64 (n,) tensor on the images' device (a number applies to every image)."""
    out = torch.as_tensor(value, dtype=torch.float64, device=images.device)
    return out.expand(images.shape[0]) if out.dim() == 0 else out


def _check_images(images: Tensor) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise AutoAugmentError(f"images must be a uint8 N x C x H x W tensor, got {images.dtype} "
                               f"of shape {tuple(images.shape)}")


def _fill_values(fill: int | Sequence[int], channels: int) -> list[float]:
    values = [float(fill)] * channels if isinstance(fill, (int, float)) else [float(v) for v in fill]
    if len(values) != channels or not all(0 <= v <= 255 for v in values):
        raise AutoAugmentError(f"fill must be one value or {channels} values in 0..255, got {fill!r}")
    return values


@functools.lru_cache(maxsize=8)
def _pixel_centres(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """torchvision's base grid (1, H*W, 3): pixel centres (x, y, 1) from the image centre, and the
    normalisation (W/2, H/2) to grid_sample's -1..1."""
    base = torch.empty(1, height, width, 3, dtype=torch.float32, device=device)
    base[..., 0] = torch.linspace(-width * 0.5 + 0.5, width * 0.5 - 0.5, width, device=device)
    base[..., 1] = torch.linspace(-height * 0.5 + 0.5, height * 0.5 - 0.5, height, device=device).view(-1, 1)
    base[..., 2] = 1.0
    return base.view(1, height * width, 3), torch.tensor([0.5 * width, 0.5 * height], device=device)


def affine(images: Tensor, matrix: Tensor, fill: int | Sequence[int] = 0) -> Tensor:
    """Warp each image by its inverse affine ``matrix`` (n, 2, 3): the output pixel centred at (x, y), in
    pixels from the image centre with y down, takes the input at ``matrix @ (x, y, 1)``; nearest neighbour,
    ``fill`` outside (torchvision ``_gen_affine_grid`` + ``_apply_grid_transform``)."""
    n, channels, height, width = images.shape
    base, scale = _pixel_centres(height, width, images.device)
    grid = base.expand(n, -1, -1).bmm(matrix.to(torch.float32).transpose(1, 2) / scale)
    values = _fill_values(fill, channels)
    source = images.float()
    if any(values):
        source = torch.cat([source, torch.ones_like(source[:, :1])], dim=1)
    out = F.grid_sample(source, grid.view(n, height, width, 2), mode="nearest", padding_mode="zeros",
                        align_corners=False)
    if any(values):
        outside = out[:, -1:] < 0.5
        out = torch.where(outside, torch.tensor(values, device=images.device).view(1, -1, 1, 1), out[:, :-1])
    return out.round().to(torch.uint8)


def _matrices(a: Tensor, b: Tensor, c: Tensor, d: Tensor, e: Tensor, f: Tensor) -> Tensor:
    return torch.stack([a, b, c, d, e, f], dim=1).view(-1, 2, 3)


def shear_x(images: Tensor, shear: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Horizontal shear about the top-left corner: output (row i, column j) takes column j + s * (i + 1/2)."""
    s = _per_image(shear, images)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return affine(images, _matrices(one, s, s * images.shape[-2] / 2, zero, one, zero), fill)


def shear_y(images: Tensor, shear: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Vertical shear about the top-left corner: output (row i, column j) takes row i + s * (j + 1/2)."""
    s = _per_image(shear, images)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return affine(images, _matrices(one, zero, zero, s, one, s * images.shape[-1] / 2), fill)


def translate_x(images: Tensor, pixels: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Shift right by ``pixels`` (truncated to an integer, as torchvision's ``int(magnitude)``)."""
    t = _per_image(pixels, images).trunc()
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return affine(images, _matrices(one, zero, -t, zero, one, zero), fill)


def translate_y(images: Tensor, pixels: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Shift down by ``pixels`` (truncated to an integer)."""
    t = _per_image(pixels, images).trunc()
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return affine(images, _matrices(one, zero, zero, zero, one, -t), fill)


def rotate(images: Tensor, degrees: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Rotate counter-clockwise by ``degrees`` about the image centre, same size."""
    angle = torch.deg2rad(_per_image(degrees, images))
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    return affine(images, _matrices(cos, -sin, zero, sin, cos, zero), fill)


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision ``_blend``: clamp(f * x + (1 - f) * y, 0, 255) in float32, truncated to uint8."""
    ratio = factor.float().view(-1, 1, 1, 1)
    rest = (1.0 - factor).float().view(-1, 1, 1, 1)
    return (ratio * images.float() + rest * other.float()).clamp(0, 255).to(torch.uint8)


def grayscale(images: Tensor) -> Tensor:
    """ITU-R 601 luma ``0.2989 R + 0.587 G + 0.114 B`` truncated to uint8, shape N x 1 x H x W (one channel
    images are their own grey)."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.float().unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).to(torch.uint8).unsqueeze(1)


def brightness(images: Tensor, factor: Tensor | float) -> Tensor:
    """Blend with black: ``f * x`` (f = 1 + magnitude)."""
    return _blend(images, torch.zeros_like(images), _per_image(factor, images))


def color(images: Tensor, factor: Tensor | float) -> Tensor:
    """Saturation: blend with the image's grey version (one-channel images are returned unchanged)."""
    if images.shape[1] == 1:
        return images
    return _blend(images, grayscale(images), _per_image(factor, images))


def contrast(images: Tensor, factor: Tensor | float) -> Tensor:
    """Blend with the mean of the image's grey version."""
    mean = grayscale(images).float().mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(images, mean, _per_image(factor, images))


def sharpness(images: Tensor, factor: Tensor | float) -> Tensor:
    """Blend with the image smoothed by ``[1 1 1; 1 5 1; 1 1 1] / 13`` (rounded; border pixels unsmoothed).
    The smoothing sums k are integers, so ``round(k / 13) = (2k + 13) // 26`` exactly (k / 13 is never a tie)."""
    height, width = images.shape[-2:]
    if height <= 2 or width <= 2:
        return images
    x = images.to(torch.int32)
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    sums = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:] + 4 * x[..., 1:-1, 1:-1]
    smooth = images.clone()
    smooth[..., 1:-1, 1:-1] = torch.div(2 * sums + 13, 26, rounding_mode="floor").to(torch.uint8)
    return _blend(images, smooth, _per_image(factor, images))


def posterize(images: Tensor, bits: Tensor | float) -> Tensor:
    """Keep the ``bits`` high bits of every value (``x & ~(2**(8 - bits) - 1)``)."""
    kept = _per_image(bits, images).long().clamp(0, 8)
    mask = (256 - 2 ** (8 - kept)).to(torch.uint8).view(-1, 1, 1, 1)
    return images & mask


def solarize(images: Tensor, threshold: Tensor | float) -> Tensor:
    """Invert the values at or above ``threshold`` (compared in float32, as torchvision)."""
    limit = _per_image(threshold, images).float().view(-1, 1, 1, 1)
    return torch.where(images.float() >= limit, 255 - images, images)


def autocontrast(images: Tensor) -> Tensor:
    """Stretch each channel's min..max to 0..255: ``(x - min) * (255 / (max - min))`` truncated, with the scale
    computed as torchvision's ``reciprocal(max - min) * 255``; a flat channel is left as it is."""
    low = images.amin(dim=(-2, -1), keepdim=True).float()
    high = images.amax(dim=(-2, -1), keepdim=True).float()
    scale = (high - low).reciprocal() * 255
    flat = ~torch.isfinite(scale)
    low = torch.where(flat, 0.0, low)
    scale = torch.where(flat, 1.0, scale)
    return ((images - low) * scale).clamp(0, 255).to(torch.uint8)


def equalize(images: Tensor) -> Tensor:
    """PIL's histogram equalisation per channel (torchvision ``_scale_channel``): with
    ``step = (pixels - count of the channel's largest value) // 255``, value v maps to
    ``(cumulative count below v + step // 2) // step``; a channel with step 0 is left as it is."""
    n, channels, height, width = images.shape
    rows = images.reshape(n * channels, height * width).long()
    hist = torch.zeros(n * channels, 256, dtype=torch.long, device=images.device)
    hist.scatter_add_(1, rows, torch.ones_like(rows))
    top = hist.gather(1, rows.amax(dim=1, keepdim=True))
    step = torch.div(height * width - top, 255, rounding_mode="floor")
    below = hist.cumsum(dim=1) - hist
    lut = torch.div(below + torch.div(step, 2, rounding_mode="floor"), step.clamp(min=1), rounding_mode="floor")
    lut = torch.where(step > 0, lut.clamp(0, 255), torch.arange(256, device=images.device))
    return lut.gather(1, rows).to(torch.uint8).view(n, channels, height, width)


def invert(images: Tensor) -> Tensor:
    """255 - x."""
    return 255 - images


def apply_op(name: str, images: Tensor, magnitude: Tensor | float, fill: int | Sequence[int] = 0) -> Tensor:
    """Operation ``name`` with torchvision's reading of its (signed) magnitude: shear factor, pixels,
    degrees, blend factor ``1 + magnitude``, bits, threshold; ignored by AutoContrast / Equalize / Invert."""
    match name:
        case "ShearX":
            return shear_x(images, magnitude, fill)
        case "ShearY":
            return shear_y(images, magnitude, fill)
        case "TranslateX":
            return translate_x(images, magnitude, fill)
        case "TranslateY":
            return translate_y(images, magnitude, fill)
        case "Rotate":
            return rotate(images, magnitude, fill)
        case "Brightness":
            return brightness(images, 1.0 + _per_image(magnitude, images))
        case "Color":
            return color(images, 1.0 + _per_image(magnitude, images))
        case "Contrast":
            return contrast(images, 1.0 + _per_image(magnitude, images))
        case "Sharpness":
            return sharpness(images, 1.0 + _per_image(magnitude, images))
        case "Posterize":
            return posterize(images, magnitude)
        case "Solarize":
            return solarize(images, magnitude)
        case "AutoContrast":
            return autocontrast(images)
        case "Equalize":
            return equalize(images)
        case "Invert":
            return invert(images)
    raise _unknown_operation(name)


# ----------------------------------------------------------------------------- the policy on a batch


@dataclass(frozen=True)
class Draws:
    """Per-image random choices: sub-policy index (n,), coins (n, 2) in [0, 1), sign bits (n, 2)."""

    choice: Tensor
    coins: Tensor
    signs: Tensor


class AutoAugment:
    """AutoAugment on uint8 batches: each image draws its own sub-policy, coins and signs from ``generator``.

    ``policy``: pairs of :class:`Op` (default the CIFAR-10 policy); ``fill``: value(s) 0..255 for the area a
    geometric operation uncovers (torchvision's default 0); ``backend``: ``"zenbench"`` (this module's batched
    operations) or ``"torchvision"`` (torchvision's ``_apply_op`` on the same draws, where it imports).
    """

    def __init__(self, policy: Sequence[tuple[Op, Op]] = CIFAR10_POLICY, fill: int | Sequence[int] = 0,
                 backend: str = "zenbench") -> None:
        if backend not in BACKENDS:
            raise AutoAugmentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if not policy or any(len(sub) != 2 for sub in policy):
            raise AutoAugmentError("policy must be a non-empty sequence of (Op, Op) pairs")
        for op in (op for sub in policy for op in sub):
            if op.name not in OPERATIONS:
                raise _unknown_operation(op.name)
            if not 0.0 <= op.p <= 1.0:
                raise AutoAugmentError(f"{op.name}: probability must be in [0, 1], got {op.p}")
            if (op.bin is None) != (op.name in WITHOUT_MAGNITUDE) or not (op.bin is None or 0 <= op.bin < NUM_BINS):
                expected = "None" if op.name in WITHOUT_MAGNITUDE else f"a bin in 0..{NUM_BINS - 1}"
                raise AutoAugmentError(f"{op.name}: magnitude bin must be {expected}, got {op.bin!r}")
        self.policy = tuple(tuple(sub) for sub in policy)
        self.fill = fill
        self.backend = backend
        self.names = sorted({op.name for sub in self.policy for op in sub})
        self._apply_torchvision = _torchvision_apply_op() if backend == "torchvision" else None
        self._table_cache: dict[tuple[int, int, str], tuple[Tensor, Tensor, Tensor, Tensor]] = {}

    def draw(self, n: int, generator: torch.Generator) -> Draws:
        """The per-image choices for a batch of ``n`` (on the generator's device), in torchvision's order."""
        device = generator.device
        return Draws(choice=torch.randint(len(self.policy), (n,), device=device, generator=generator),
                     coins=torch.rand((n, 2), device=device, generator=generator),
                     signs=torch.randint(2, (n, 2), device=device, generator=generator))

    def _tables(self, height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per (sub-policy, stage): operation index into ``names``, probability (float32, as torchvision's
        ``probs[i] <= p`` compares), unsigned magnitude (float64), whether the magnitude is signed."""
        key = (height, width, str(device))
        if key not in self._table_cache:
            ops = self.policy
            self._table_cache[key] = (
                torch.tensor([[self.names.index(op.name) for op in sub] for sub in ops], device=device),
                torch.tensor([[op.p for op in sub] for sub in ops], dtype=torch.float32, device=device),
                torch.tensor([[0.0 if op.bin is None else float(magnitude_bins(op.name, height, width)[op.bin])
                               for op in sub] for sub in ops], dtype=torch.float64, device=device),
                torch.tensor([[op.name in SIGNED for op in sub] for sub in ops], device=device),
            )
        return self._table_cache[key]

    def __call__(self, images: Tensor, generator: torch.Generator, draws: Draws | None = None) -> Tensor:
        """The augmented batch (a new tensor). ``draws``: use these choices instead of drawing them."""
        _check_images(images)
        n, _, height, width = images.shape
        draws = self.draw(n, generator) if draws is None else draws
        index, p, magnitude, signed = self._tables(height, width, draws.choice.device)
        choice = draws.choice
        op = torch.where(draws.coins <= p[choice], index[choice], -1)
        flip = signed[choice] & (draws.signs == 0)
        value = torch.where(flip, -magnitude[choice], magnitude[choice]).to(images.device)
        slots = len(self.names) + 1  # slot 0: not applied
        stage_offset = torch.arange(2, device=op.device) * slots
        # the group sizes, read where the draws live: no synchronisation when they were drawn on the host
        counts = torch.bincount((op + 1 + stage_offset).flatten(), minlength=2 * slots).view(2, slots).tolist()
        order = torch.argsort(op, dim=0, stable=True).to(images.device)
        out = images
        for stage in range(2):
            # images sorted by their operation: each group is a contiguous slice, processed in place
            where = order[:, stage]
            grouped = out.index_select(0, where)
            magnitudes = value[:, stage].index_select(0, where)
            start = counts[stage][0]
            for k, name in enumerate(self.names):
                end = start + counts[stage][k + 1]
                if end > start:
                    grouped[start:end] = self._apply(name, grouped[start:end], magnitudes[start:end])
                start = end
            out = torch.empty_like(grouped).index_copy_(0, where, grouped)
        return out

    def _apply(self, name: str, images: Tensor, magnitude: Tensor) -> Tensor:
        if self._apply_torchvision is None:
            return apply_op(name, images, magnitude, self.fill)
        out = images.clone()
        fill = _fill_values(self.fill, images.shape[1])
        fill = fill if any(fill) else None  # torchvision's default: zeros, without the mask channel
        for m in torch.unique(magnitude).tolist():
            same = magnitude == m
            out[same] = self._apply_torchvision(images[same], name, m, fill)
        return out


def _torchvision_apply_op() -> Callable[[Tensor, str, float, list[float] | None], Tensor]:
    """torchvision's ``_apply_op`` with nearest interpolation (AutoAugment's default), or a one-line error."""
    try:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.autoaugment import _apply_op
    except Exception as exc:  # torchvision fails with ImportError or RuntimeError beside a mismatched torch
        raise AutoAugmentError(f"backend 'torchvision' needs torchvision, which does not import here: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    def apply(images: Tensor, name: str, magnitude: float, fill: list[float] | None) -> Tensor:
        return _apply_op(images, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=fill)

    return apply
