"""torch.export: a .pt2 program with a dynamic batch axis, loadable with torch.export.load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dlx.errors import DlxError
from dlx.export import ExportedFile
from dlx.export.signature import METADATA_FILE, ModelSignature, export_dims
from dlx.export.silence import failure_reason, silenced

if TYPE_CHECKING:
    import torch

EXPORTER = "torch.export (non-strict)"


def export_pt2(model: torch.nn.Module, signature: ModelSignature, path: Path) -> ExportedFile:
    import torch

    try:
        with silenced():
            program = torch.export.export(
                model, (signature.example,), dynamic_shapes=(export_dims(signature),), strict=False
            )
    except Exception as error:
        raise DlxError(
            f"The model cannot be exported with torch.export: {failure_reason(error)}. Data-dependent "
            "Python control flow and shapes fixed in the code are the usual causes; rewrite that part "
            "(torch.cond, shape arithmetic on tensors), or try `dlx export torchscript`."
        ) from error
    carried = {
        **signature.metadata,
        "dlx.format": "pt2",
        "dlx.exporter": EXPORTER,
        "dlx.quantization": "none",
    }
    with silenced():
        torch.export.save(program, str(path), extra_files={METADATA_FILE: json.dumps(carried)})
    return ExportedFile(path, EXPORTER)


def pt2_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch

    with silenced():
        program = torch.export.load(str(path))
    return program.module()


def read_pt2_metadata(path: Path) -> dict[str, str]:
    import torch

    extra = {METADATA_FILE: ""}
    with silenced():
        torch.export.load(str(path), extra_files=extra)
    return json.loads(extra[METADATA_FILE])
