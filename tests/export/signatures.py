"""Hand-made signatures, to test an exporter on a model without training a run."""

from __future__ import annotations

import torch

from dlx.export.signature import ModelSignature


def signature_for(input_shape: list[int], dynamic_axes: dict[int, str] | None = None) -> ModelSignature:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, *input_shape, generator=generator)
    return ModelSignature(
        input_shape=input_shape,
        dtype="float32",
        dynamic_axes=dynamic_axes or {0: "batch"},
        example=inputs[:2],
        check_inputs=inputs,
        check_split="val",
        metadata={"dlx.version": "test", "dlx.input_shape": str(input_shape)},
    )
