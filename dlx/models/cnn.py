"""A plain convolutional network: Conv-BN-activation-Pool blocks, an adaptive pool, a small head."""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import DlxError
from dlx.models.layers import activation as build_activation
from dlx.models.layers import init_weights, require_choice, require_dropout, require_image_input

POOLS = ("max", "avg", "none")


def _pool_layer(pool: str, odd_size: bool) -> nn.Module:
    # ceil_mode keeps odd and 1-pixel maps at least 1 pixel wide, so deep stacks work on small images;
    # on even maps it changes nothing but takes a slower kernel.
    if pool == "max":
        return nn.MaxPool2d(2, ceil_mode=odd_size)
    if pool == "avg":
        return nn.AvgPool2d(2, ceil_mode=odd_size)
    return nn.Identity()


class CNN(nn.Module):
    """``features`` (one block per entry of ``channels``), ``pool`` to ``pooled_size``², then ``head``.

    ``hidden_size`` adds a fully connected layer (with activation and dropout) before the output layer.
    """

    # The signature is the config schema, so list defaults are spelled out (B006); they are only read.
    def __init__(
        self,
        input_shape: list[int],
        num_outputs: int,
        channels: list[int] = [32, 64],  # noqa: B006
        kernel_size: int = 3,
        batch_norm: bool = True,
        pool: str = "max",
        pooled_size: int = 1,
        hidden_size: int | None = None,
        dropout: float = 0.0,
        activation: str = "relu",
        init: str = "default",
    ):
        super().__init__()
        require_image_input("CNN", input_shape, num_outputs)
        require_dropout(dropout)
        pool = require_choice("model.pool", pool, POOLS)
        for key, value in (("kernel_size", kernel_size), ("pooled_size", pooled_size)):
            if value < 1:
                raise DlxError(f"model.{key} must be at least 1, got {value}. Type e.g. `model.{key}=3`.")
        if not channels or any(width < 1 for width in channels):
            raise DlxError(
                f"model.channels must be a non-empty list of positive widths, got {list(channels)}. "
                "Type e.g. `model.channels=[32,64]`."
            )
        if hidden_size is not None and hidden_size < 1:
            raise DlxError(
                f"model.hidden_size must be positive or null, got {hidden_size}. "
                "Type e.g. `model.hidden_size=128`."
            )

        blocks: list[nn.Module] = []
        in_channels, height, width = input_shape
        for out_channels in channels:
            # Padding keeps the map's size, so only the pools shrink it; BatchNorm makes a bias redundant.
            blocks.append(
                nn.Conv2d(
                    in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm
                )
            )
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks.append(build_activation(activation))
            blocks.append(_pool_layer(pool, height % 2 == 1 or width % 2 == 1))
            if pool != "none":
                height, width = -(-height // 2), -(-width // 2)
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(pooled_size)
        self.pooled_size = (pooled_size, pooled_size)

        head: list[nn.Module] = [nn.Flatten()]
        in_features = in_channels * pooled_size * pooled_size
        if hidden_size is not None:
            head += [nn.Linear(in_features, hidden_size), build_activation(activation)]
            in_features = hidden_size
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(in_features, num_outputs))
        self.head = nn.Sequential(*head)
        init_weights(self, init, activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = self.features(inputs)
        if features.shape[-2:] != self.pooled_size:  # a pool to the size it has is a copy, both ways
            features = self.pool(features)
        return self.head(features)
