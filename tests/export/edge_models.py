"""Small models at the edges of what the exporters can express, for the fallback and refusal tests."""

from __future__ import annotations

import math

import torch
from torch import nn


class SingularValueNet(nn.Module):
    """Classifies by the singular values of the image: ONNX has no SVD operator."""

    def __init__(self, input_shape: list[int], num_outputs: int):
        super().__init__()
        self.head = nn.Linear(min(input_shape[-2:]), num_outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(torch.linalg.svdvals(inputs.flatten(1, -3).mean(1)))


class DataDependentNet(nn.Module):
    """Takes a Python branch on the data's values: torch.export cannot trace that."""

    def __init__(self, input_shape: list[int], num_outputs: int):
        super().__init__()
        self.head = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.mean() > 0:
            return self.head(inputs.flatten(1))
        return -self.head(inputs.flatten(1))


class KeywordArgumentsNet(nn.Module):
    """A forward with ``**options``: torch.jit.script refuses it, torch.jit.trace manages."""

    def __init__(self, input_shape: list[int], num_outputs: int):
        super().__init__()
        self.head = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, inputs: torch.Tensor, **options: float) -> torch.Tensor:
        return self.head(inputs.flatten(1)) * options.get("temperature", 1.0)


class SequenceMean(nn.Module):
    """(batch, sequence, features) -> (batch, outputs): works at any sequence length."""

    def __init__(self, features: int = 3, num_outputs: int = 4):
        super().__init__()
        self.head = nn.Linear(features, num_outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(inputs.mean(1))
