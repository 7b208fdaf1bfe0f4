"""TorchScript: torch.jit.script (torch.jit.trace as fallback), int8 linear layers with torch.ao."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlx.errors import DlxError
from dlx.export import ExportedFile
from dlx.export.signature import METADATA_FILE, ModelSignature
from dlx.export.silence import failure_reason, silenced

if TYPE_CHECKING:
    import torch


def export_torchscript(
    model: torch.nn.Module, signature: ModelSignature, path: Path, int8: bool
) -> ExportedFile:
    """Write ``path``; with ``int8`` its Linear layers hold int8 weights (dynamic quantization)."""
    if not int8:
        module, exporter = _script_or_trace(model, signature)
        _save(module, path, signature.metadata, exporter, "none")
        return ExportedFile(path, exporter)
    with tempfile.TemporaryDirectory(prefix="dlx-export-") as folder:
        float32_path = Path(folder) / "model.torchscript.pt"
        float32_module, _ = _script_or_trace(model, signature)
        _save(float32_module, float32_path, signature.metadata, "", "none")
        module, exporter = _script_or_trace(_quantize_linear_layers(model), signature)
        _save(module, path, signature.metadata, exporter, "int8 dynamic (torch.ao), Linear layers")
        return ExportedFile(
            path,
            exporter + ", int8 Linear layers by torch.ao (convolutions stay float32)",
            float32_path.stat().st_size,
        )


def _quantize_linear_layers(model: torch.nn.Module) -> torch.nn.Module:
    import torch

    # torch.ao's dynamic quantization covers Linear (and recurrent) layers; convolutions stay float32.
    with silenced():
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )


def _script_or_trace(model: torch.nn.Module, signature: ModelSignature) -> tuple[Any, str]:
    import torch

    try:
        with silenced():
            return torch.jit.script(model), "torch.jit.script"
    except Exception as error:
        script_reason = failure_reason(error)
    try:
        with silenced():
            traced = torch.jit.trace(model, (signature.example,), check_trace=False)
    except Exception as error:
        raise DlxError(
            f"The model cannot be exported to TorchScript: {failure_reason(error)} (torch.jit.script "
            f"failed first: {script_reason}). Try `dlx export pt2` or `dlx export onnx` instead."
        ) from error
    # A trace records one path through the model; the parity check on other inputs catches a wrong one.
    return traced, f"torch.jit.trace (torch.jit.script failed: {script_reason})"


def _save(module: Any, path: Path, metadata: dict[str, str], exporter: str, quantization: str) -> None:
    import torch

    carried = {
        **metadata,
        "dlx.format": "torchscript",
        "dlx.exporter": exporter,
        "dlx.quantization": quantization,
    }
    with silenced():
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(carried)})


def torchscript_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch

    with silenced():
        module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    return module


def read_torchscript_metadata(path: Path) -> dict[str, str]:
    import torch

    extra = {METADATA_FILE: ""}
    with silenced():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[METADATA_FILE])
