"""What an exported model takes and carries: input shape and dynamic axes, real example inputs, metadata.

Everything comes from the run's own data module, so an export needs nothing but the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlx
from dlx.errors import DlxError
from dlx.export.onnx_runtime import METADATA_PREFIX

if TYPE_CHECKING:
    import torch

    from dlx.restore import RestoredRun

EXAMPLE_SIZE = 2  # a batch of one would let the exporters fix the batch axis at 1
CHECK_SIZE = 64
METADATA_FILE = "dlx_metadata.json"  # inside TorchScript and pt2 archives


@dataclass
class ModelSignature:
    input_shape: list[int]  # without the batch axis
    dtype: str
    dynamic_axes: dict[int, str]  # axis of the batched input -> name; always {0: "batch", ...}
    example: torch.Tensor  # EXAMPLE_SIZE real inputs the exporters trace with
    check_inputs: torch.Tensor  # up to CHECK_SIZE real inputs the parity check compares on
    check_split: str
    metadata: dict[str, str]  # what a deployed file carries, for `dlx predict`


def describe_run(run: RestoredRun) -> ModelSignature:
    """The signature of a restored run's model, from its data module (a validation batch when it has one)."""
    split = _first_split_with_samples(run.data)
    if split is None:
        raise DlxError(
            "The run's data module has no samples in any split, so there is nothing to export with or "
            "check against. Point the data at its files with overrides, e.g. `data.root=/path/to/data`."
        )
    check_inputs, _ = run.data.example_batch(split, CHECK_SIZE)
    input_shape = list(run.cfg.data.input_shape)
    if list(check_inputs.shape[1:]) != input_shape:
        raise DlxError(
            f"The data module yields inputs of shape {list(check_inputs.shape[1:])} but its config says "
            f"input_shape {input_shape}; an export needs them to agree. Re-train with the data as it is now."
        )
    example = check_inputs[:EXAMPLE_SIZE]
    if len(example) < EXAMPLE_SIZE:
        example = example.repeat(EXAMPLE_SIZE, *([1] * len(input_shape)))
    data_metadata = run.data_metadata
    dynamic_axes = {0: "batch", **_declared_dynamic_axes(data_metadata.extra)}
    signature = ModelSignature(
        input_shape=input_shape,
        dtype=str(check_inputs.dtype).removeprefix("torch."),
        dynamic_axes=dynamic_axes,
        example=example,
        check_inputs=check_inputs,
        check_split=split,
        metadata={},
    )
    signature.metadata = deployment_metadata(run, signature.dtype, dynamic_axes)
    return signature


def _first_split_with_samples(data: Any) -> str | None:
    for name in ("val", "test", "train"):
        inputs = data.splits.get(name, (None, None))[0]
        if inputs is not None and len(inputs):
            return name
    return None


def _declared_dynamic_axes(extra: dict[str, Any]) -> dict[int, str]:
    """Axes besides the batch whose size varies, as the data module declares them: for inputs shaped
    (batch, sequence, features), ``extra["dynamic_axes"] = {"sequence": 1}``."""
    declared = extra.get("dynamic_axes") or {}
    return {int(axis): str(name) for name, axis in declared.items()}


def deployment_metadata(run: RestoredRun, dtype: str, dynamic_axes: dict[int, str]) -> dict[str, str]:
    """The string key/values an exported file carries so that `dlx predict` needs nothing else."""
    cfg = run.cfg
    data_metadata = run.data_metadata
    model_name = cfg.model.get("name") or cfg.model.get("_target_")
    values: dict[str, Any] = {
        "version": dlx.__version__,
        "checkpoint_sha256": file_sha256(run.checkpoint_path),
        "checkpoint": str(run.checkpoint_path.resolve()),
        "experiment": cfg.get("experiment"),
        "model": model_name,
        "data": cfg.data.get("name") or cfg.data.get("_target_"),
        "task": cfg.task.get("name") or cfg.task.get("_target_"),
        "input_shape": list(cfg.data.input_shape),
        "input_dtype": dtype,
        "dynamic_axes": {str(axis): name for axis, name in dynamic_axes.items()},
        "class_names": list(cfg.data.class_names) if cfg.data.get("class_names") else None,
        "features": data_metadata.extra.get("features"),  # a table's input columns, in order
        "target": data_metadata.extra.get("target"),  # and the column it predicts
        "mean": data_metadata.mean,
        "std": data_metadata.std,
        "scale": data_metadata.extra.get("scale"),
        "preprocessing": "inputs = (raw * scale - mean) / std, per channel",
    }
    return {
        METADATA_PREFIX + key: value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_dims(signature: ModelSignature) -> dict[int, Any]:
    """torch.export's description of the dynamic axes of the one input."""
    from torch.export import Dim

    return {axis: Dim(name, min=1) for axis, name in signature.dynamic_axes.items()}
