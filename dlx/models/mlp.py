"""A multi-layer perceptron over flattened inputs."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlx.errors import DlxError
from dlx.models.layers import activation as build_activation
from dlx.models.layers import init_weights, require_dropout, require_input_and_output


class MLP(nn.Module):
    """Flatten, then ``Linear-[BatchNorm]-activation-[Dropout]`` per hidden size, then a Linear ``head``."""

    # The signature is the config schema, so list defaults are spelled out (B006); they are only read.
    def __init__(
        self,
        input_shape: list[int],
        num_outputs: int,
        hidden_sizes: list[int] = [256, 256],  # noqa: B006
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
        init: str = "default",
    ):
        super().__init__()
        require_input_and_output("MLP", input_shape, num_outputs)
        require_dropout(dropout)
        if any(size < 1 for size in hidden_sizes):
            raise DlxError(
                f"model.hidden_sizes must all be positive, got {list(hidden_sizes)}. "
                "Type e.g. `model.hidden_sizes=[256,128]`, or `model.hidden_sizes=[]` for a linear model."
            )
        layers: list[nn.Module] = []
        in_features = math.prod(input_shape)
        for size in hidden_sizes:
            layers.append(nn.Linear(in_features, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(build_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_features = size
        self.flatten = nn.Flatten()
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(in_features, num_outputs)
        init_weights(self, init, activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.flatten(inputs)))
