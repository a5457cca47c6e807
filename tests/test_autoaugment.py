"""AutoAugment's CIFAR-10 policy (search/autoaugment.py): the table against the paper's, every operation on
small images worked out by hand, PIL as an independent implementation where its semantics are torchvision's,
the batched policy against a per-image loop, and torchvision itself where it imports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from search.autoaugment import (
    CIFAR10_POLICY,
    OPERATIONS,
    SIGNED,
    AutoAugment,
    AutoAugmentError,
    Draws,
    Op,
    apply_op,
    autocontrast,
    brightness,
    color,
    contrast,
    equalize,
    grayscale,
    invert,
    magnitude_bins,
    posterize,
    rotate,
    sharpness,
    shear_x,
    shear_y,
    solarize,
    translate_x,
    translate_y,
)

# The CIFAR-10 policy as ZenNAS trains with it: DataLoader/autoaugment.py (DeepVoltaire's transcription of the
# paper's table), p1 op1 bin1 p2 op2 bin2. The bins of AutoContrast, Equalize and Invert mean nothing there
# (those operations take no magnitude). Sub-policy 16's second Equalize has p 0.8 there and 0.6 in torchvision.
PAPER_CIFAR10 = """
0.1 invert 7 0.2 contrast 6 | 0.7 rotate 2 0.3 translateX 9 | 0.8 sharpness 1 0.9 sharpness 3
0.5 shearY 8 0.7 translateY 9 | 0.5 autocontrast 8 0.9 equalize 2 | 0.2 shearY 7 0.3 posterize 7
0.4 color 3 0.6 brightness 7 | 0.3 sharpness 9 0.7 brightness 9 | 0.6 equalize 5 0.5 equalize 1
0.6 contrast 7 0.6 sharpness 5 | 0.7 color 7 0.5 translateX 8 | 0.3 equalize 7 0.4 autocontrast 8
0.4 translateY 3 0.2 sharpness 6 | 0.9 brightness 6 0.2 color 8 | 0.5 solarize 2 0.0 invert 3
0.2 equalize 0 0.6 autocontrast 0 | 0.2 equalize 8 0.8 equalize 4 | 0.9 color 9 0.6 equalize 6
0.8 autocontrast 4 0.2 solarize 8 | 0.1 brightness 3 0.7 color 0 | 0.4 solarize 5 0.9 autocontrast 3
0.9 translateY 9 0.7 translateY 9 | 0.9 autocontrast 2 0.8 solarize 3 | 0.8 equalize 8 0.1 invert 3
0.7 translateY 9 0.9 autocontrast 1
"""


def grid_image(rows: int, cols: int, channels: int = 3) -> torch.Tensor:
    """1 x C x rows x cols uint8 whose pixel (i, j) holds 10 * i + j + 1 in every channel (+ 100 * channel)."""
    base = (10 * torch.arange(rows).view(-1, 1) + torch.arange(cols) + 1).to(torch.uint8)
    return torch.stack([base + 100 * c for c in range(channels)]).unsqueeze(0)


def random_images(n: int, seed: int, low: int = 0, high: int = 256, side: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, 3, side, side), dtype=torch.uint8, generator=g)


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def from_pil(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def per_image_pil(images: torch.Tensor, op) -> torch.Tensor:
    return torch.stack([from_pil(op(to_pil(image))) for image in images])


# ----------------------------------------------------------------------------- the policy table


def test_policy_is_the_25_cifar10_sub_policies_zennas_and_torchvisions_tables_share():
    """Names, bins and probabilities agree with ZenNAS's table everywhere but one probability, where we keep
    torchvision's value (the brief's reference): sub-policy 16, (Equalize 0.2, Equalize 0.6 | ZenNAS 0.8)."""
    rows = [row.split() for line in PAPER_CIFAR10.strip().splitlines() for row in line.split("|")]
    assert len(rows) == len(CIFAR10_POLICY) == 25
    differ = {}
    for i, ((p1, name1, bin1, p2, name2, bin2), ours) in enumerate(zip(rows, CIFAR10_POLICY, strict=True)):
        for stage, ((p, name, bin_), op) in enumerate(zip(((p1, name1, bin1), (p2, name2, bin2)), ours, strict=True)):
            assert op.name.lower() == name.lower()
            assert op.bin == (None if op.name in ("AutoContrast", "Equalize", "Invert") else int(bin_))
            if op.p != float(p):
                differ[(i, stage)] = (op.p, float(p))
    assert differ == {(16, 1): (0.6, 0.8)}
    assert CIFAR10_POLICY[16] == (Op("Equalize", 0.2, None), Op("Equalize", 0.6, None))


def test_magnitude_bins_are_torchvisions():
    assert magnitude_bins("ShearY", 32, 32)[8].item() == pytest.approx(0.3 * 8 / 9)
    assert magnitude_bins("Rotate", 32, 32)[2].item() == pytest.approx(30 * 2 / 9)
    assert magnitude_bins("Color", 32, 32)[9].item() == pytest.approx(0.9)
    # 150/331 of the width (x) or height (y); 32 px: bins 9, 8, 3 -> 14.50, 12.89, 4.83 px
    assert [magnitude_bins("TranslateX", 32, 32)[b].item() for b in (9, 8, 3)] == pytest.approx(
        [150 / 331 * 32, 150 / 331 * 32 * 8 / 9, 150 / 331 * 32 * 3 / 9])
    assert magnitude_bins("TranslateY", 20, 40)[9].item() == pytest.approx(150 / 331 * 20)
    assert magnitude_bins("Posterize", 32, 32).tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    solarize_bins = magnitude_bins("Solarize", 32, 32)
    assert solarize_bins[0] == 255 and solarize_bins[9] == 0 and solarize_bins[2].item() == pytest.approx(255 * 7 / 9)
    assert magnitude_bins("Equalize", 32, 32).abs().sum() == 0
    with pytest.raises(AutoAugmentError, match="Cutout"):
        magnitude_bins("Cutout", 32, 32)


# ----------------------------------------------------------------------------- each operation by hand


def test_invert():
    x = grid_image(4, 4)
    assert torch.equal(invert(x), 255 - x)
    assert invert(torch.tensor([0, 1, 254, 255], dtype=torch.uint8).view(1, 1, 2, 2)).flatten().tolist() == [
        255, 254, 1, 0]


def test_posterize_keeps_the_high_bits():
    values = torch.tensor([0, 7, 8, 100, 200, 255], dtype=torch.uint8).view(1, 1, 2, 3)
    assert posterize(values, 5).flatten().tolist() == [0, 0, 8, 96, 200, 248]  # 100 = 0b1100100 -> 0b1100000
    assert posterize(values, 4).flatten().tolist() == [0, 0, 0, 96, 192, 240]
    assert torch.equal(posterize(values, 8), values)
    both = posterize(values.expand(2, 1, 2, 3), torch.tensor([8.0, 6.0]))  # one bit count per image
    assert both[0].flatten().tolist() == [0, 7, 8, 100, 200, 255] and both[1].flatten().tolist() == [0, 4, 8, 100,
                                                                                                       200, 252]


def test_solarize_inverts_at_and_above_the_threshold():
    values = torch.tensor([0, 127, 128, 200, 198, 199], dtype=torch.uint8).view(1, 1, 2, 3)
    assert solarize(values, 128).flatten().tolist() == [0, 127, 127, 55, 57, 56]
    assert solarize(values, 255 * 7 / 9).flatten().tolist() == [0, 127, 128, 55, 198, 56]  # bin 2: 198.33
    assert torch.equal(solarize(values, 0), 255 - values)


def test_autocontrast_stretches_each_channel_and_leaves_flat_ones():
    x = torch.zeros(1, 3, 1, 3, dtype=torch.uint8)
    x[0, 0, 0] = torch.tensor([50, 100, 150])  # scale 2.55: 0, 127.5 -> 127, 255
    x[0, 1, 0] = torch.tensor([7, 7, 7])  # flat: unchanged
    x[0, 2, 0] = torch.tensor([0, 85, 255])  # already full range
    out = autocontrast(x)
    assert out[0, 0, 0].tolist() == [0, 127, 255]
    assert out[0, 1, 0].tolist() == [7, 7, 7]
    assert out[0, 2, 0].tolist() == [0, 85, 255]
    # torchvision's scale is reciprocal(max - min) * 255 in float32 (Tensor.__rtruediv__), then truncation:
    # for a range of 61 the channel's maximum lands on 254 (255 / 61 divided exactly would give 255)
    assert autocontrast(torch.tensor([0, 61], dtype=torch.uint8).view(1, 1, 1, 2)).flatten().tolist() == [0, 254]
    for low, high in ((10, 95), (3, 48), (0, 7), (100, 161)):
        scale = np.float32(255) * (np.float32(1) / np.float32(high - low))
        values = torch.tensor([low, low + 1, low + 2, high], dtype=torch.uint8).view(1, 1, 1, 4)
        expected = [min(255, int(np.float32(v - low) * scale)) for v in values.flatten().tolist()]
        assert autocontrast(values).flatten().tolist() == expected


def test_equalize_of_a_known_histogram():
    """32 x 32 channel: 512 pixels of 0, 256 of 100, 256 of 200. step = (1024 - 256) // 255 = 3; v maps to
    (pixels below v + 1) // 3: 0 -> 0, 100 -> 513 // 3 = 171, 200 -> 769 // 3 = 256 -> 255."""
    channel = torch.cat([torch.zeros(512), torch.full((256,), 100.0), torch.full((256,), 200.0)])
    channel = channel.to(torch.uint8).view(32, 32)
    x = torch.stack([channel, channel.flip(0), torch.full((32, 32), 9, dtype=torch.uint8)]).unsqueeze(0)
    out = equalize(x)
    mapped = channel.clone().apply_({0: 0, 100: 171, 200: 255}.get)
    assert torch.equal(out[0, 0], mapped) and torch.equal(out[0, 1], mapped.flip(0))
    assert torch.equal(out[0, 2], x[0, 2])  # one value only: step 0, unchanged
    small = grid_image(4, 4)  # 16 pixels: step 0, unchanged
    assert torch.equal(equalize(small), small)


def test_equalize_matches_pil():
    images = (random_images(6, 0) // 37) * 37  # few distinct values, so equalisation moves them
    out = equalize(images)
    assert (out != images).float().mean() > 0.5
    assert torch.equal(out, per_image_pil(images, ImageOps.equalize))


def test_posterize_solarize_invert_match_pil():
    images = random_images(6, 1)
    assert torch.equal(posterize(images, 5), per_image_pil(images, lambda im: ImageOps.posterize(im, 5)))
    assert torch.equal(solarize(images, 128), per_image_pil(images, lambda im: ImageOps.solarize(im, 128)))
    assert torch.equal(invert(images), per_image_pil(images, ImageOps.invert))


@pytest.mark.parametrize("fill", [0, 7])
def test_translate_shifts_by_whole_pixels_with_fill(fill):
    x = grid_image(5, 5)
    right = translate_x(x, 2.9, fill)  # truncated to 2
    assert torch.equal(right[..., 2:], x[..., :3]) and (right[..., :2] == fill).all()
    left = translate_x(x, -2.9, fill)
    assert torch.equal(left[..., :3], x[..., 2:]) and (left[..., 3:] == fill).all()
    down = translate_y(x, 1.0, fill)
    assert torch.equal(down[..., 1:, :], x[..., :4, :]) and (down[..., 0, :] == fill).all()
    up = translate_y(x, -4.5, fill)
    assert torch.equal(up[..., 0, :], x[..., 4, :]) and (up[..., 1:, :] == fill).all()
    both = translate_x(x.expand(2, -1, -1, -1), torch.tensor([1.0, -1.0]), fill)  # one shift per image
    assert torch.equal(both[0, :, :, 1:], x[0, :, :, :4]) and torch.equal(both[1, :, :, :4], x[0, :, :, 1:])


def test_shear_about_the_top_left_corner():
    """s = 0.5: output row i takes column j + 0.5 * (i + 0.5), rounded: offsets 0, 1, 1, 2 for rows 0..3."""
    x = grid_image(4, 4, channels=1).expand(1, 3, 4, 4) + 0
    sheared = shear_x(x, 0.5)[0, 0].tolist()
    assert sheared == [[1, 2, 3, 4], [12, 13, 14, 0], [22, 23, 24, 0], [33, 34, 0, 0]]
    assert shear_x(x, -0.5)[0, 0].tolist() == [[1, 2, 3, 4], [0, 11, 12, 13], [0, 21, 22, 23], [0, 0, 31, 32]]
    # ShearY is ShearX of the transposed image
    assert torch.equal(shear_y(x.transpose(-1, -2), 0.5, fill=9),
                       shear_x(x, 0.5, fill=9).transpose(-1, -2))
    assert (shear_x(x, 0.5, fill=9)[0, :, 3, 2:] == 9).all()


def test_rotate_counter_clockwise_about_the_centre():
    x = random_images(2, 2, side=6)
    assert torch.equal(rotate(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)))  # counter-clockwise
    assert torch.equal(rotate(x, -90.0), torch.rot90(x, -1, dims=(-2, -1)))
    assert torch.equal(rotate(x, 180.0), x.flip(-1, -2))
    assert torch.equal(rotate(x, 0.0), x)
    # 45 degrees on a 4 x 4 constant image: only the four corner pixels (centres 2.12 px out) leave the image
    flat = torch.full((1, 3, 4, 4), 50, dtype=torch.uint8)
    turned = rotate(flat, 45.0, fill=(1, 2, 3))
    corners = torch.zeros(4, 4, dtype=torch.bool)
    corners[0, 0] = corners[0, 3] = corners[3, 0] = corners[3, 3] = True
    for c, value in enumerate((1, 2, 3)):
        assert (turned[0, c][corners] == value).all() and (turned[0, c][~corners] == 50).all()


def test_geometric_operations_match_pil_nearest_affine():
    """PIL's affine transform samples pixel centres with the same inverse maps as torchvision's tensor path."""
    images = random_images(4, 3)
    for s in (0.26666668, -0.1):
        assert torch.equal(shear_x(images, s), per_image_pil(
            images, lambda im, s=s: im.transform(im.size, Image.AFFINE, (1, s, 0, 0, 1, 0), Image.NEAREST)))
        assert torch.equal(shear_y(images, s), per_image_pil(
            images, lambda im, s=s: im.transform(im.size, Image.AFFINE, (1, 0, 0, s, 1, 0), Image.NEAREST)))
    for degrees in (6.6666665, -30.0):
        assert torch.equal(rotate(images, degrees),
                           per_image_pil(images, lambda im, d=degrees: im.rotate(d, Image.NEAREST)))


def test_brightness_is_a_truncated_scale():
    x = torch.tensor([0, 100, 101, 200], dtype=torch.uint8).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    assert brightness(x, 1.5)[0, 0].flatten().tolist() == [0, 150, 151, 255]  # 151.5 -> 151, 300 -> 255
    assert brightness(x, 0.5)[0, 0].flatten().tolist() == [0, 50, 50, 100]
    assert apply_op("Brightness", x, -0.5)[0, 0].flatten().tolist() == [0, 50, 50, 100]  # factor 1 + m


def test_color_blends_with_the_truncated_grey():
    """(200, 100, 50): grey 0.2989 * 200 + 0.587 * 100 + 0.114 * 50 = 124.18 -> 124."""
    x = torch.tensor([200, 100, 50], dtype=torch.uint8).view(1, 3, 1, 1)
    assert grayscale(x).item() == 124
    assert grayscale(torch.full((1, 3, 1, 1), 100, dtype=torch.uint8)).item() == 99  # weights sum to 0.9999
    assert color(x, 0.0).flatten().tolist() == [124, 124, 124]
    assert color(x, 0.5).flatten().tolist() == [162, 112, 87]
    assert color(x, 1.5).flatten().tolist() == [238, 88, 13]
    assert torch.equal(color(x, 1.0), x)
    grey = torch.full((1, 1, 2, 2), 80, dtype=torch.uint8)
    assert torch.equal(color(grey, 0.1), grey)  # one channel: nothing to desaturate


def test_contrast_blends_with_the_mean_grey():
    """R = G = B = 21, 41, 61, 81 have grey levels 20, 40, 60, 80 (0.9999 x, truncated); mean 50."""
    x = torch.tensor([21, 41, 61, 81], dtype=torch.uint8).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    assert grayscale(x).flatten().tolist() == [20, 40, 60, 80]
    assert contrast(x, 0.0)[0, 0].flatten().tolist() == [50, 50, 50, 50]
    assert contrast(x, 0.5)[0, 0].flatten().tolist() == [35, 45, 55, 65]  # (x + 50) / 2: 35.5 -> 35, ...
    assert contrast(x, 2.0)[0, 0].flatten().tolist() == [0, 32, 72, 112]  # 2x - 50, clamped at 0


def test_sharpness_blends_with_the_smoothed_interior():
    """3 x 3, all 10 except the centre 140: smoothed centre (8 * 10 + 5 * 140) / 13 = 60; border unchanged."""
    x = torch.full((1, 3, 3, 3), 10, dtype=torch.uint8)
    x[..., 1, 1] = 140
    assert sharpness(x, 0.0)[0, 0].tolist() == [[10, 10, 10], [10, 60, 10], [10, 10, 10]]
    assert sharpness(x, 2.0)[0, 0].tolist() == [[10, 10, 10], [10, 220, 10], [10, 10, 10]]  # 2 * 140 - 60
    assert sharpness(x, 0.5)[0, 0, 1, 1].item() == 100
    # 4 x 4 ramp 0..15: interior pixel (1, 1) = 5, neighbours 0 1 2 4 6 8 9 10: (40 + 25) / 13 = 5 exactly;
    # rounded cases: 3 at (0, 0): (43 + 25) / 13 = 5.23 -> 5; 9 at (0, 0): (49 + 25) / 13 = 5.69 -> 6
    ramp = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).expand(1, 3, 4, 4).clone()
    assert sharpness(ramp, 0.0)[0, 0, 1, 1].item() == 5
    ramp[..., 0, 0] = 3
    assert sharpness(ramp, 0.0)[0, 0, 1, 1].item() == 5
    ramp[..., 0, 0] = 9
    assert sharpness(ramp, 0.0)[0, 0, 1, 1].item() == 6
    assert torch.equal(sharpness(ramp, 0.0)[..., 0, :], ramp[..., 0, :])  # border pixels are kept
    tiny = torch.full((1, 3, 2, 2), 5, dtype=torch.uint8)
    assert torch.equal(sharpness(tiny, 0.0), tiny)  # no interior


def test_blends_stay_within_one_of_pils_rounding():
    """PIL rounds where torchvision truncates (and computes its own grey), so the two differ by at most 1."""
    images = random_images(4, 4, low=30, high=200)
    for name, enhancer in (("Brightness", ImageEnhance.Brightness), ("Color", ImageEnhance.Color),
                           ("Contrast", ImageEnhance.Contrast), ("Sharpness", ImageEnhance.Sharpness)):
        for magnitude in (0.5, -0.7):
            ours = apply_op(name, images, magnitude)
            theirs = per_image_pil(images, lambda im, e=enhancer, m=magnitude: e(im).enhance(1 + m))
            assert (ours.int() - theirs.int()).abs().max() <= 1, name


def test_every_operation_keeps_dtype_and_shape_and_rejects_unknown_names():
    images = random_images(3, 5)
    for name in OPERATIONS:
        out = apply_op(name, images, torch.tensor([0.3, -0.6, 5.0], dtype=torch.float64))
        assert out.dtype == torch.uint8 and out.shape == images.shape, name
    with pytest.raises(AutoAugmentError, match="Cutout"):
        apply_op("Cutout", images, 0.0)


# ----------------------------------------------------------------------------- the policy on a batch


def forced(choice: list[int], coins: list[list[float]], signs: list[list[int]]) -> Draws:
    return Draws(torch.tensor(choice), torch.tensor(coins), torch.tensor(signs))


def test_a_forced_sub_policy_applies_both_operations_in_order_with_signs():
    """Sub-policy 1 = (Rotate p 0.7 bin 2, TranslateX p 0.3 bin 9); sign bit 0 negates the magnitude."""
    images = random_images(3, 6)
    aa = AutoAugment()
    draws = forced([1, 1, 1], [[0.0, 0.3], [0.0, 0.31], [0.71, 0.0]], [[1, 0], [0, 1], [1, 1]])
    out = aa(images, torch.Generator(), draws)
    degrees, pixels = magnitude_bins("Rotate", 32, 32)[2], magnitude_bins("TranslateX", 32, 32)[9]
    assert torch.equal(out[0], translate_x(rotate(images[:1], degrees), -pixels)[0])  # coin 0.3 <= p 0.3
    assert torch.equal(out[1], rotate(images[1:2], -degrees)[0])  # coin 0.31 > 0.3: translate skipped
    assert torch.equal(out[2], translate_x(images[2:3], pixels)[0])
    # unsigned magnitudes ignore the sign bit: sub-policy 5 = (ShearY 0.2 bin 7, Posterize 0.3 bin 7: 5 bits)
    posterized = aa(images[:1], torch.Generator(), forced([5], [[0.5, 0.0]], [[0, 0]]))
    assert torch.equal(posterized, posterize(images[:1], 5))


def test_batched_policy_equals_a_loop_over_images():
    images = random_images(120, 7)
    aa = AutoAugment()
    draws = aa.draw(len(images), torch.Generator().manual_seed(3))
    out = aa(images, torch.Generator(), draws)
    for i, image in enumerate(images):
        expected = image.unsqueeze(0)
        for stage, op in enumerate(CIFAR10_POLICY[int(draws.choice[i])]):
            if draws.coins[i, stage] <= op.p:
                magnitude = 0.0 if op.bin is None else float(magnitude_bins(op.name, 32, 32)[op.bin])
                if op.name in SIGNED and draws.signs[i, stage] == 0:
                    magnitude = -magnitude
                expected = apply_op(op.name, expected, magnitude)
        assert torch.equal(out[i], expected[0]), i
    assert (out != images).flatten(1).any(1).float().mean() > 0.5


def test_draws_are_seeded_and_follow_the_policy_probabilities():
    aa = AutoAugment()
    a = aa.draw(20000, torch.Generator().manual_seed(0))
    b = aa.draw(20000, torch.Generator().manual_seed(0))
    assert torch.equal(a.choice, b.choice) and torch.equal(a.coins, b.coins) and torch.equal(a.signs, b.signs)
    counts = torch.bincount(a.choice, minlength=25).float() / 20000
    assert counts.min() > 0.03 and counts.max() < 0.05  # uniform: 0.04 each
    assert abs(a.signs.float().mean().item() - 0.5) < 0.01
    p = torch.tensor([[op.p for op in sub] for sub in CIFAR10_POLICY])[a.choice]
    applied = (a.coins <= p).float().mean(0)
    assert torch.allclose(applied, p.mean(0), atol=0.01)
    images = random_images(8, 8)
    assert torch.equal(aa(images, torch.Generator().manual_seed(1)), aa(images, torch.Generator().manual_seed(1)))


def test_bad_policies_inputs_and_backends_are_rejected_by_name():
    with pytest.raises(AutoAugmentError, match="uint8"):
        AutoAugment()(torch.zeros(2, 3, 8, 8), torch.Generator())
    with pytest.raises(AutoAugmentError, match="Cutout"):
        AutoAugment([(Op("Cutout", 0.5, 3), Op("Invert", 0.1, None))])
    with pytest.raises(AutoAugmentError, match="Rotate: magnitude bin"):
        AutoAugment([(Op("Rotate", 0.5, 10), Op("Invert", 0.1, None))])
    with pytest.raises(AutoAugmentError, match="Invert: magnitude bin"):
        AutoAugment([(Op("Rotate", 0.5, 1), Op("Invert", 0.1, 3))])
    with pytest.raises(AutoAugmentError, match="probability"):
        AutoAugment([(Op("Rotate", 1.5, 1), Op("Invert", 0.1, None))])
    with pytest.raises(AutoAugmentError, match="backend"):
        AutoAugment(backend="albumentations")
    with pytest.raises(AutoAugmentError, match="fill"):
        rotate(random_images(1, 9), 10.0, fill=(1, 2))


# ----------------------------------------------------------------------------- torchvision, where it imports


@pytest.fixture(scope="module")
def torchvision_available() -> None:
    """Skips unless torchvision imports. It does not here, nor in CI: not installed, and its wheels need the
    torch build they were made for (beside this CPU torch: "operator torchvision::nms does not exist")."""
    try:
        pytest.importorskip("torchvision", reason="torchvision is not installed (nor in CI): nothing to compare")
        import torchvision.transforms.autoaugment  # noqa: F401
    except Exception as exc:  # a torchvision built for another torch fails on import with a RuntimeError
        pytest.skip(f"torchvision does not import beside this torch: {str(exc).splitlines()[0]}")


def test_torchvision_backend_without_torchvision_is_a_one_line_error():
    try:
        import torchvision.transforms.autoaugment  # noqa: F401
    except Exception:
        with pytest.raises(AutoAugmentError, match="backend 'torchvision' needs torchvision") as caught:
            AutoAugment(backend="torchvision")
        assert len(str(caught.value).splitlines()) == 1
    else:
        pytest.skip("torchvision imports here: the backend works (see the comparisons below)")


def test_each_operation_matches_torchvision(torchvision_available):
    from torchvision.transforms.autoaugment import _apply_op
    from torchvision.transforms.functional import InterpolationMode

    images = random_images(6, 10)
    for name in OPERATIONS:
        bins = magnitude_bins(name, 32, 32)
        signs = (1, -1) if name in SIGNED else (1,)
        for magnitude in {sign * float(bins[b]) for b in (1, 2, 5, 8, 9) for sign in signs}:
            theirs = _apply_op(images, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
            assert torch.equal(apply_op(name, images, magnitude), theirs), (name, magnitude)


def test_torchvision_backend_gives_the_same_batch(torchvision_available):
    images = random_images(64, 11)
    draws = AutoAugment().draw(64, torch.Generator().manual_seed(4))
    assert torch.equal(AutoAugment()(images, torch.Generator(), draws),
                       AutoAugment(backend="torchvision")(images, torch.Generator(), draws))
