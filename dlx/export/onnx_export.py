"""ONNX: torch.onnx's dynamo exporter (TorchScript-based one as fallback), dlx metadata, int8 quantization."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dlx.errors import DlxError
from dlx.export import ExportedFile
from dlx.export.onnx_runtime import open_session
from dlx.export.signature import ModelSignature, export_dims
from dlx.export.silence import failure_reason, silenced

if TYPE_CHECKING:
    import torch

INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"
# Convolutions stay float32: onnxruntime's dynamic ConvInteger runs several times slower than its float
# Conv on CPU. Like torch.ao's dynamic quantization, int8 goes where it pays: matrix products, recurrences.
INT8_OPERATORS = ["MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"]


def export_onnx(
    model: torch.nn.Module, signature: ModelSignature, path: Path, opset: int, int8: bool
) -> ExportedFile:
    """Write ``path`` (float32, or int8 with dynamic quantization) with dlx's metadata."""
    if not int8:
        exporter = _export_float32(model, signature, path, opset)
        write_onnx_metadata(path, {**signature.metadata, **_format_metadata(exporter, opset, "none")})
        return ExportedFile(path, exporter)
    with tempfile.TemporaryDirectory(prefix="dlx-export-") as folder:
        float32_path = Path(folder) / "model.onnx"
        exporter = _export_float32(model, signature, float32_path, opset)
        quantize_int8(float32_path, path)
        quantization = "int8 dynamic (onnxruntime), " + ", ".join(INT8_OPERATORS)
        metadata = {**signature.metadata, **_format_metadata(exporter, opset, quantization)}
        write_onnx_metadata(path, metadata)
        exporter += ", int8 matrix products by onnxruntime.quantization (convolutions stay float32)"
        return ExportedFile(path, exporter, float32_path.stat().st_size)


def _format_metadata(exporter: str, opset: int, quantization: str) -> dict[str, str]:
    return {
        "dlx.format": "onnx",
        "dlx.exporter": exporter,
        "dlx.opset": str(opset),
        "dlx.quantization": quantization,
        "dlx.input_name": INPUT_NAME,
    }


def _export_float32(model: torch.nn.Module, signature: ModelSignature, path: Path, opset: int) -> str:
    """Export with the dynamo exporter, or the TorchScript-based one where that fails; name the one used."""
    import torch

    try:
        with silenced():
            torch.onnx.export(
                model,
                (signature.example,),
                str(path),
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=(export_dims(signature),),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                external_data=False,  # one self-contained file, whatever the model's size
                verbose=False,
                report=False,
            )
        written = _opset_of(path)
        if written == opset:
            return f"torch.onnx (dynamo), opset {opset}"
        # It converts to older opsets only where it can, and otherwise silently keeps its own.
        dynamo_reason = f"it wrote opset {written} instead of {opset}"
    except Exception as error:
        dynamo_reason = failure_reason(error)

    outputs_axes = {0: signature.dynamic_axes[0]}
    try:
        with silenced():
            torch.onnx.export(
                model,
                (signature.example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: signature.dynamic_axes, OUTPUT_NAME: outputs_axes},
            )
    except Exception as error:
        path.unlink(missing_ok=True)
        raise DlxError(
            f"The model cannot be exported to ONNX: {failure_reason(error)} (the dynamo exporter "
            f"failed first: {dynamo_reason}). Replace that operation in the model, or export it with "
            "`dlx export torchscript` or `dlx export pt2`, which run every PyTorch operation."
        ) from error
    return f"TorchScript-based torch.onnx, opset {opset} (dynamo exporter failed: {dynamo_reason})"


def _opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), -1)


def write_onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    kept = [entry for entry in model.metadata_props if not entry.key.startswith("dlx.")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def quantize_int8(float32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 quantization by onnxruntime: int8 weights, activations quantized on the fly."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(float32_path))
    # The exporter's recorded shapes go stale once the quantizer rewrites weights, and its shape
    # inference then refuses the model; it infers them afresh without them.
    del model.graph.value_info[:]
    prepared = float32_path.with_name("prepared.onnx")
    onnx.save(model, str(prepared))
    try:
        with silenced():
            quantize_dynamic(
                str(prepared),
                str(int8_path),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=INT8_OPERATORS,
            )
    except Exception as error:
        raise DlxError(
            f"onnxruntime could not quantize the model to int8: {failure_reason(error)}. Export it "
            "without `--quantize`, or with `dlx export torchscript CKPT --quantize int8`."
        ) from error


def onnx_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Run the ONNX file with onnxruntime on torch tensors, on one thread like PyTorch in the check."""
    import torch

    session = open_session(path, threads=1)
    input_name = session.get_inputs()[0].name

    def run(inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: inputs.numpy()})[0])

    return run
