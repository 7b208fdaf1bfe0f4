"""The whole-batch augmentations of dlx/data/augment.py: one draw per image, any device, any float dtype."""

import pytest
import torch
from torch.nn import functional as F

from dlx.data.augment import BatchAugmentations, RandomCrop, random_horizontal_flip


def distinct_images(count: int = 64, size: int = 32) -> torch.Tensor:
    """Images in which every pixel value is unique, so a window's position can be read off its pixels."""
    return torch.arange(count * 3 * size * size, dtype=torch.float32).view(count, 3, size, size)


def shift_that_made(cropped: torch.Tensor, original: torch.Tensor, padded: torch.Tensor, padding: int):
    """The (down, right) translation of ``original`` that ``cropped`` is, read from ``padded``."""
    size = original.shape[-1]
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            if torch.equal(cropped, padded[:, top : top + size, left : left + size]):
                return padding - top, padding - left
    return None


def test_reflect_crop_translates_each_image_by_its_own_shift_within_the_padding():
    torch.manual_seed(0)
    images = distinct_images()
    cropped = RandomCrop(2, "reflect")(images)
    assert cropped.shape == images.shape and cropped.dtype == images.dtype

    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    shifts = [shift_that_made(c, o, p, 2) for c, o, p in zip(cropped, images, padded, strict=True)]
    assert None not in shifts, "every output is a window of the mirrored-border image"
    assert len(set(shifts)) > 10  # 25 possible shifts, drawn per image
    moved = [index for index, shift in enumerate(shifts) if shift != (0, 0)]
    assert moved and not torch.equal(cropped[moved[0]], images[moved[0]])  # the content really moved
    assert {0, 2, -2} <= {down for down, _ in shifts}  # the full range is reached


def test_constant_crop_fills_the_border_with_each_channels_value():
    torch.manual_seed(1)
    images = torch.zeros(200, 3, 8, 8)
    fill = [-1.0, -2.0, -3.0]
    cropped = RandomCrop(3, "constant", fill=fill)(images)
    corner = cropped[:, :, 0, 0]  # outside the image whenever the shift is down and right
    shifted_in = corner.ne(0).all(1)
    assert shifted_in.any() and not shifted_in.all()
    assert torch.equal(corner[shifted_in], torch.tensor(fill).expand(int(shifted_in.sum()), 3))


def test_horizontal_flip_mirrors_about_half_the_images_each_whole():
    torch.manual_seed(0)
    images = distinct_images(200, size=4)
    flipped = random_horizontal_flip(images)
    mirrored = [torch.equal(out, image.flip(-1)) for out, image in zip(flipped, images, strict=True)]
    kept = [torch.equal(out, image) for out, image in zip(flipped, images, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert 60 < sum(mirrored) < 140


@pytest.mark.parametrize("padding_mode", ["constant", "reflect"])
def test_augmentations_stay_on_the_batchs_device_and_dtype(padding_mode):
    # The meta device stands in for a GPU: any step that built a tensor elsewhere would fail to mix with it.
    images = torch.empty(16, 3, 32, 32, device="meta", dtype=torch.bfloat16)
    augment = BatchAugmentations([RandomCrop(2, padding_mode, fill=[0.5, 0.5, 0.5]), random_horizontal_flip])
    out = augment(images)
    assert out.device == images.device and out.dtype == torch.bfloat16 and out.shape == images.shape
    assert "RandomCrop(padding=2" in repr(augment) and "random_horizontal_flip" in repr(augment)


def test_same_seed_same_draws():
    images = distinct_images(8)
    augment = BatchAugmentations([RandomCrop(2, "reflect"), random_horizontal_flip])
    torch.manual_seed(5)
    first = augment(images)
    torch.manual_seed(5)
    assert torch.equal(augment(images), first)
