"""Image augmentations of whole batches (N, C, H, W): one random draw per image, no Python loop per image.

They run where the batch is (a data set kept on the GPU is augmented there) and draw from torch's global
RNG, which TensorLoader seeds per batch, so a resumed epoch repeats its draws exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

PADDING_MODES = ("constant", "reflect")


class RandomCrop:
    """Pad every side by ``padding``, then cut each image's own window of the original size: a random
    translation by up to ``padding`` pixels in each direction.

    ``constant`` pads with ``fill`` (one value per channel), ``reflect`` mirrors the pixels at the border.
    """

    def __init__(self, padding: int, padding_mode: str = "constant", fill: Sequence[float] = (0.0,)):
        self.padding, self.padding_mode = padding, padding_mode
        self.fill = torch.tensor(list(fill))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            return images
        count, channels, height, width = images.shape
        pad, device = self.padding, images.device
        if self.padding_mode == "reflect":
            padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
        else:
            if self.fill.device != device:  # moved once, not copied to the device at every batch
                self.fill = self.fill.to(device)
            fill = self.fill.to(images.dtype).view(1, -1, 1, 1)
            padded = fill.expand(count, channels, height + 2 * pad, width + 2 * pad).clone()
            padded[:, :, pad : pad + height, pad : pad + width] = images
        # Two gathers cut a different window out of every image: rows first, then columns.
        top = torch.randint(0, 2 * pad + 1, (count, 1, 1, 1), device=device)
        left = torch.randint(0, 2 * pad + 1, (count, 1, 1, 1), device=device)
        rows = top + torch.arange(height, device=device).view(1, 1, -1, 1)
        padded = padded.gather(2, rows.expand(count, channels, height, width + 2 * pad))
        columns = left + torch.arange(width, device=device).view(1, 1, 1, -1)
        return padded.gather(3, columns.expand(count, channels, height, width))

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding}, padding_mode={self.padding_mode!r})"


def random_horizontal_flip(images: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flipped = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flipped.view(-1, 1, 1, 1), images.flip(-1), images)


class PerSampleTransform:
    """Applies a torchvision v2 transform to each image of a batch, so every image gets its own random draw.

    For transforms without a whole-batch form here (rotation); v2 draws one set of parameters per call.
    """

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.transform = transform

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(image) for image in images])


class BatchAugmentations:
    """The augmentations of ``data.augment``, applied in order to a whole batch."""

    def __init__(self, steps: Sequence[Callable[[torch.Tensor], torch.Tensor]]):
        self.steps = list(steps)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            images = step(images)
        return images

    def __repr__(self) -> str:
        names = [getattr(step, "__name__", None) or repr(step) for step in self.steps]
        return f"BatchAugmentations({', '.join(names)})"
