"""`dlx export FORMAT CKPT`: rebuild the run, write the file, check it against the PyTorch model."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, did_you_mean
from dlx.export import FORMATS, ExportedFile

log = logging.getLogger("dlx")

DEFAULT_OPSET = 18  # the lowest opset the dynamo exporter writes natively, and widely supported by runtimes
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "pt2": ".pt2"}
RUNTIMES = {"onnx": "onnxruntime", "torchscript": "TorchScript", "pt2": "torch.export"}
QUANTIZATIONS = ("int8",)


def check_options(export_format: str, opset: int | None, quantize: str | None) -> None:
    """Refuse impossible combinations before the (slow) checkpoint restore."""
    if export_format not in FORMATS:
        raise DlxError(
            f"Unknown export format '{export_format}'.{did_you_mean(export_format, FORMATS)} "
            f"Type one of: {', '.join(FORMATS)}, e.g. `dlx export onnx CKPT`."
        )
    if opset is not None and export_format != "onnx":
        raise DlxError(
            f"--opset applies to ONNX only. Drop it, or type `dlx export onnx CKPT --opset {opset}`."
        )
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise DlxError(
                f"Unknown quantization '{quantize}'.{did_you_mean(quantize, QUANTIZATIONS)} "
                "Type `--quantize int8`."
            )
        if export_format == "pt2":
            raise DlxError(
                "--quantize int8 is available for onnx (onnxruntime) and torchscript (torch.ao). Type "
                "`dlx export onnx CKPT --quantize int8`, or drop --quantize for pt2."
            )
    if export_format == "onnx":
        from dlx.export.onnx_runtime import check_runtime_runs_opset

        check_runtime_runs_opset(DEFAULT_OPSET if opset is None else opset)


def output_path(out: Path | None, checkpoint: Path, export_format: str, int8: bool) -> Path:
    """``--out`` (a file, or a folder to write the default name into), else beside the checkpoint; never
    over a checkpoint. The default name follows the checkpoint's (best.ckpt: best.onnx), so exporting
    last.ckpt does not replace best.ckpt's export."""
    name = f"{checkpoint.stem}{'.int8' if int8 else ''}{SUFFIXES[export_format]}"
    if out is None:
        return checkpoint.parent / name
    # A folder (one that does not exist yet: a name without a suffix) gets the default file name inside.
    path = out / name if out.is_dir() or (not out.exists() and not out.suffix) else out
    if path.suffix == ".ckpt" or (path.exists() and path.resolve() == checkpoint.resolve()):
        raise DlxError(
            f"--out {out} would write over a checkpoint. Name the exported file, e.g. "
            f"`--out {path.with_name(name)}`, or give a folder to write {name} into."
        )
    return path


def tagged(path: Path, tag: str) -> Path:
    """``path`` with ``tag`` before its format's suffix: best.onnx, "failed" -> best.failed.onnx."""
    name = path.name
    suffix = next((s for s in sorted(SUFFIXES.values(), key=len, reverse=True) if name.endswith(s)), "")
    return path.with_name(f"{name[: len(name) - len(suffix)]}.{tag}{suffix}")


def export_checkpoint(
    export_format: str,
    checkpoint: Path,
    out: Path | None = None,
    overrides: list[str] | None = None,
    opset: int | None = None,
    quantize: str | None = None,
    check: bool = True,
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """Export ``checkpoint`` to ``export_format``; print the check table; exit 1 past the tolerance."""
    from dlx.engine.checkpoint import checkpoint_file
    from dlx.export.parity import check_parity, print_export_table, raise_if_outside_tolerance
    from dlx.export.signature import describe_run
    from dlx.restore import restore_run

    check_options(export_format, opset, quantize)
    opset = DEFAULT_OPSET if opset is None else opset
    int8 = quantize == "int8"
    checkpoint = checkpoint_file(checkpoint)  # a run folder: its best.ckpt
    path = output_path(None if out is None else Path(out), checkpoint, export_format, int8)
    run = restore_run(checkpoint, overrides or [], trust_checkpoint)
    signature = describe_run(run)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DlxError(
            f"Cannot create the folder for --out {path}: {error.strerror}. Give a file in a writable folder."
        ) from error

    log.info("Exporting %s to %s ...", checkpoint.name, export_format)
    # Written beside its place and moved there once checked: an export that fails never replaces a good one.
    staged = tagged(path, "partial")
    try:
        started = time.perf_counter()
        exported = _export(export_format, run.model, signature, staged, opset, int8)
        export_seconds = time.perf_counter() - started
        report = None
        if check:
            runner = load_runner(export_format, staged)
            classifier = bool(run.cfg.data.get("class_names"))
            report = check_parity(run.model, runner, signature, run.data, classifier, int8)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    failed = report is not None and exported.fp32_size is None and not report.within_tolerance
    exported = replace(exported, path=tagged(path, "failed") if failed else path)
    os.replace(staged, exported.path)
    title = f"dlx export {export_format}{' int8' if int8 else ''}: {checkpoint.name}"
    print_export_table(title, exported, RUNTIMES[export_format], export_seconds, report)
    results: dict[str, Any] = {
        "path": exported.path,
        "exporter": exported.exporter,
        "size": exported.path.stat().st_size,
        "fp32_size": exported.fp32_size,
        "export_seconds": export_seconds,
        "report": report,
    }
    if report is not None:
        raise_if_outside_tolerance(report, exported)
    return results


def _export(
    export_format: str, model: Any, signature: Any, path: Path, opset: int, int8: bool
) -> ExportedFile:
    if export_format == "onnx":
        from dlx.export.onnx_export import export_onnx

        return export_onnx(model, signature, path, opset, int8)
    if export_format == "torchscript":
        from dlx.export.torchscript_export import export_torchscript

        return export_torchscript(model, signature, path, int8)
    from dlx.export.pt2_export import export_pt2

    return export_pt2(model, signature, path)


def load_runner(export_format: str, path: Path) -> Any:
    """The exported file, loaded back from disk by its runtime, as a function of a batch of inputs."""
    if export_format == "onnx":
        from dlx.export.onnx_export import onnx_runner

        return onnx_runner(path)
    if export_format == "torchscript":
        from dlx.export.torchscript_export import torchscript_runner

        return torchscript_runner(path)
    from dlx.export.pt2_export import pt2_runner

    return pt2_runner(path)
