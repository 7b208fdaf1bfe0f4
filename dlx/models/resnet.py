"""torchvision's ResNets, with a CIFAR stem for small images and optional ImageNet weights."""

from __future__ import annotations

import os
from typing import Any
from urllib.error import URLError

import torch
from torch import nn

from dlx.errors import DlxError, did_you_mean
from dlx.models.layers import require_choice, require_input_and_output

# depth -> (torchvision block class name, blocks per stage)
DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("BasicBlock", [2, 2, 2, 2]),
    34: ("BasicBlock", [3, 4, 6, 3]),
    50: ("Bottleneck", [3, 4, 6, 3]),
    101: ("Bottleneck", [3, 4, 23, 3]),
    152: ("Bottleneck", [3, 8, 36, 3]),
}
STYLES = ("cifar", "imagenet")


def resolve_pretrained_weights(depth: int, pretrained: str) -> Any:
    """The torchvision weights enum member for ``resnet<depth>`` named ``pretrained`` (e.g. ``DEFAULT``)."""
    from torchvision.models import get_model_weights

    weights_enum = get_model_weights(f"resnet{depth}")
    # Accept the full spelling torchvision prints, e.g. "ResNet50_Weights.IMAGENET1K_V2".
    name = str(pretrained).rpartition(".")[2].upper()
    if name not in weights_enum.__members__:
        choices = list(weights_enum.__members__)
        raise DlxError(
            f"model.pretrained '{pretrained}' is not a weights name of resnet{depth}."
            f"{did_you_mean(name, choices)} Choose one of: {', '.join(choices)} "
            "(e.g. `model.pretrained=DEFAULT`), or `model.pretrained=null` to train from scratch."
        )
    return weights_enum[name]


def download_state_dict(weights: Any) -> dict[str, torch.Tensor]:
    """Fetch (or read from torch's hub cache) the weights; say where to put the file when offline."""
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (URLError, OSError) as error:
        filename = os.path.basename(weights.url)
        target = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
        raise DlxError(
            f"Cannot download the pretrained weights {weights!r} ({error}). On a machine without internet, "
            f"download {weights.url} elsewhere and put it at {target} (that is "
            f"$TORCH_HOME/hub/checkpoints/{filename}), then run again; "
            "or type `model.pretrained=null` to train from scratch."
        ) from error


def _input_conv(
    old: nn.Conv2d, in_channels: int, kernel_size: int, stride: int, reuse_weights: bool
) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, old.out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    if reuse_weights:
        # Keeps pretrained filters useful on grey images: the RGB mean, rescaled to keep activation sizes.
        with torch.no_grad():
            mean_filter = old.weight.mean(dim=1, keepdim=True)
            conv.weight.copy_(mean_filter.repeat(1, in_channels, 1, 1) * 3 / in_channels)
    else:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    return conv


def build_resnet(
    input_shape: list[int],
    num_outputs: int,
    depth: int = 18,
    style: str = "cifar",
    pretrained: str | None = None,
    zero_init_residual: bool = False,
) -> nn.Module:
    """A torchvision ResNet with ``num_outputs`` outputs.

    ``style=cifar`` swaps the 7x7 stride-2 stem and max-pool for one 3x3 stride-1 conv, for 32x32 images;
    ``style=imagenet`` keeps torchvision's architecture and can load its ``pretrained`` weights.
    """
    from torchvision.models import resnet

    require_input_and_output("ResNet", input_shape, num_outputs)
    if len(input_shape) != 3:
        raise DlxError(
            f"ResNet needs model.input_shape [channels, height, width], got {list(input_shape)}. "
            "Use `model=mlp` for flat features, or a data module that yields images."
        )
    if depth not in DEPTHS:
        raise DlxError(
            f"model.depth {depth} is not a ResNet depth. Choose one of: {', '.join(map(str, DEPTHS))} "
            "(e.g. `model.depth=18`)."
        )
    style = require_choice("model.style", style, STYLES)
    if pretrained is not None and style != "imagenet":
        raise DlxError(
            "model.pretrained needs the ImageNet architecture the weights were trained with. "
            "Type `model.style=imagenet` as well, or `model.pretrained=null` for the CIFAR stem."
        )

    weights = resolve_pretrained_weights(depth, pretrained) if pretrained is not None else None

    block_name, stage_sizes = DEPTHS[depth]
    model = resnet.ResNet(getattr(resnet, block_name), stage_sizes, zero_init_residual=zero_init_residual)
    if weights is not None:
        model.load_state_dict(download_state_dict(weights))

    in_channels = input_shape[0]
    if style == "cifar":
        model.conv1 = _input_conv(model.conv1, in_channels, kernel_size=3, stride=1, reuse_weights=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        reuse_weights = pretrained is not None
        model.conv1 = _input_conv(
            model.conv1, in_channels, kernel_size=7, stride=2, reuse_weights=reuse_weights
        )
    model.fc = nn.Linear(model.fc.in_features, num_outputs)
    return model
