"""The network of Keller Jordan's airbench94 CIFAR-10 speedrun (github.com/KellerJordan/cifar10-airbench).

A frozen 2x2 "whitening" convolution, then per entry of ``widths`` a block conv-pool-BN-GELU-conv-BN-GELU,
a global max-pool and a linear layer scaled down by ``output_scale``. BatchNorm layers learn only their
bias (their scale stays 1); every 3x3 convolution starts as an identity on its first input channels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError
from dlx.models.layers import require_choice, require_image_input

TEST_TIME_AUGMENTATIONS = ("none", "flip", "flip_translate")
WHITENING_EPSILON = 5e-4  # added to the patch covariance's eigenvalues (inputs are normalised)


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
    # An identity on the first input channels: the block starts close to passing its input through.
    nn.init.dirac_(conv.weight.data[:in_channels])
    return conv


def _batch_norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    norm.weight.requires_grad_(False)  # scale fixed at 1: the convolutions set the scale
    return norm


class ConvGroup(nn.Module):
    """Conv, 2x2 max-pool, BN, GELU, conv, BN, GELU: halves the map."""

    def __init__(self, in_channels: int, out_channels: int, norm_momentum: float):
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _batch_norm(out_channels, norm_momentum)
        self.conv2 = _conv(out_channels, out_channels)
        self.norm2 = _batch_norm(out_channels, norm_momentum)
        self.activation = nn.GELU()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.norm1(self.pool(self.conv1(inputs))))
        return self.activation(self.norm2(self.conv2(hidden)))


class AirbenchNet(nn.Module):
    """airbench94's network for images of any size that survives its pools.

    ``whiten``: the first training batch sets the first convolution's filters to the whitening transform of
    its image patches (and its opposite), which then stay frozen; false trains that layer like the rest.
    ``norm_momentum``: BatchNorm's running-statistics momentum in torch's sense (airbench's 0.6 decay).
    ``test_time_augmentation``: in eval mode, average the logits over the mirrored image (``flip``) and also
    over copies shifted by one pixel diagonally (``flip_translate``, six passes), as airbench94 evaluates.
    """

    # The signature is the config schema, so list defaults are spelled out (B006); they are only read.
    def __init__(
        self,
        input_shape: list[int],
        num_outputs: int,
        widths: list[int] = [64, 256, 256],  # noqa: B006
        whiten: bool = True,
        whiten_kernel_size: int = 2,
        norm_momentum: float = 0.4,
        output_scale: float = 1 / 9,
        test_time_augmentation: str = "flip_translate",
    ):
        super().__init__()
        require_image_input("model=airbench", input_shape, num_outputs)
        if not widths or any(width < 1 for width in widths):
            raise DlxError(
                f"model.widths must be a non-empty list of positive widths, got {list(widths)}. "
                "Type e.g. `model.widths=[64,256,256]`."
            )
        if whiten_kernel_size < 1 or not 0.0 < norm_momentum <= 1.0 or output_scale <= 0:
            raise DlxError(
                f"model.whiten_kernel_size={whiten_kernel_size} must be at least 1, model.norm_momentum="
                f"{norm_momentum} in (0, 1] and model.output_scale={output_scale} positive. Type e.g. "
                "`model.whiten_kernel_size=2 model.norm_momentum=0.4 model.output_scale=0.111`."
            )
        self.test_time_augmentation = require_choice(
            "model.test_time_augmentation", test_time_augmentation, TEST_TIME_AUGMENTATIONS
        )
        channels, height, width = input_shape
        smallest = whiten_kernel_size - 1 + 2 ** len(widths)
        if min(height, width) < smallest:
            raise DlxError(
                f"model=airbench with {len(widths)} blocks and a {whiten_kernel_size}x{whiten_kernel_size} "
                f"first convolution needs images of at least {smallest}x{smallest} pixels (each block halves "
                f"the map), got {height}x{width}. Use fewer blocks, e.g. `model.widths=[64,256]`."
            )

        whiten_width = 2 * channels * whiten_kernel_size**2  # the whitening filters and their opposites
        self.whiten = nn.Conv2d(channels, whiten_width, whiten_kernel_size, bias=True)
        self.whiten.weight.requires_grad_(not whiten)
        nn.init.zeros_(self.whiten.bias)
        # Saved in checkpoints, so a restored model is not whitened a second time.
        self.register_buffer("whitened", torch.tensor(False))
        self.register_load_state_dict_post_hook(lambda module, _: module._note_whitening_state())
        self.whiten_on_first_batch = whiten
        self.whitening_pending = whiten
        self.activation = nn.GELU()
        groups, in_channels = [], whiten_width
        for out_channels in widths:
            groups.append(ConvGroup(in_channels, out_channels, norm_momentum))
            in_channels = out_channels
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(in_channels, num_outputs, bias=False)
        self.output_scale = output_scale

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.groups(self.activation(self.whiten(inputs)))
        return self.head(self.pool(hidden).flatten(1)) * self.output_scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.training:
            if self.whitening_pending:
                self.whiten_from(inputs)
            return self.logits(inputs)
        if self.test_time_augmentation == "none":
            return self.logits(inputs)
        views = [inputs]
        if self.test_time_augmentation == "flip_translate":
            padded = F.pad(inputs, (1, 1, 1, 1), mode="reflect")
            height, width = inputs.shape[-2:]
            views += [padded[..., :height, :width], padded[..., 2:, 2:]]  # shifted down-right, up-left
        views += [view.flip(-1) for view in views]
        # One pass over all views (eval-mode BatchNorm treats every image alone), then regroup per view.
        logits = self.logits(torch.cat(views)).unflatten(0, (len(views), -1))
        if len(views) == 2:
            return logits.mean(0)
        return 0.5 * logits[0::3].mean(0) + 0.5 * torch.cat([logits[1:3], logits[4:6]]).mean(0)

    @torch.compiler.disable
    @torch.no_grad()
    def whiten_from(self, images: torch.Tensor) -> None:
        """Set the first convolution to whiten ``images``' patches: filters along the eigenvectors of
        their covariance, scaled by 1/sqrt(eigenvalue), each also negated so GELU keeps both signs."""
        conv = self.whiten
        channels = images.shape[1]
        kernel_height, kernel_width = conv.kernel_size
        with torch.autocast(images.device.type, enabled=False):
            patches = images.float().unfold(2, kernel_height, 1).unfold(3, kernel_width, 1)
            patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * kernel_height * kernel_width)
            covariance = patches.T @ patches / len(patches)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                # Every process whitens with the same filters: the layer is frozen, nothing syncs it later.
                torch.distributed.all_reduce(covariance)
                covariance /= torch.distributed.get_world_size()
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double().cpu())
        order = eigenvalues.argsort(descending=True)  # the strongest directions first
        scaled = eigenvectors[:, order].T / torch.sqrt(eigenvalues[order] + WHITENING_EPSILON).unsqueeze(1)
        filters = scaled.reshape(-1, channels, kernel_height, kernel_width)
        conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
        self.whitened.fill_(True)
        self.whitening_pending = False

    def _note_whitening_state(self) -> None:
        self.whitening_pending = self.whiten_on_first_batch and not bool(self.whitened)
