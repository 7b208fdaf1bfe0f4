"""`dlx export`: a checkpoint becomes a deployable file (ONNX, TorchScript, torch.export), checked against
the PyTorch model it came from.

command.py drives it; signature.py describes the model's input and metadata; onnx_export.py,
torchscript_export.py and pt2_export.py write the files; parity.py compares them with the original.
This package's ``__init__`` and onnx_runtime.py import no torch: `dlx predict` on ONNX files uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FORMATS = ("onnx", "torchscript", "pt2")


@dataclass
class ExportedFile:
    path: Path
    exporter: str  # which exporter wrote it (and why, when it is a fallback), as printed
    fp32_size: int | None = None  # for an int8 file: the size of the same model in float32
