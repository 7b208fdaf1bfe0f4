"""Open ONNX files with onnxruntime and read dlx's metadata from them; no torch here (`dlx predict`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

METADATA_PREFIX = "dlx."
# Metadata values that are JSON (lists, numbers, null); the others are plain strings.
JSON_METADATA_KEYS = ("input_shape", "dynamic_axes", "class_names", "mean", "std", "scale", "opset")
LOWEST_OPSET = 7


def _quiet_session_options(threads: int | None = None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    return options


def open_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path`` (``threads``: None = onnxruntime's choice); a file it
    cannot run becomes a one-line DlxError."""
    import onnxruntime

    if not path.is_file():
        raise DlxError(
            f"ONNX file '{path}' does not exist. Write one with `dlx export onnx CKPT` "
            "(it goes beside the checkpoint: best.onnx for best.ckpt)."
        )
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=_quiet_session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... classes
        reason = " ".join(str(error).split())
        if "opset" in reason.lower():
            raise DlxError(
                f"onnxruntime {onnxruntime.__version__} cannot run '{path}': {_opset_reason(reason)} "
                "Export it again with an opset it supports, e.g. `dlx export onnx CKPT --opset 18`."
            ) from error
        raise DlxError(
            f"'{path}' is not an ONNX model onnxruntime can load ({_tail(reason)}). Export it again with "
            "`dlx export onnx CKPT`."
        ) from error


def check_runtime_runs_opset(opset: int) -> None:
    """Refuse an opset before exporting when the installed onnxruntime (or onnx) cannot run it."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    highest = onnx.defs.onnx_opset_version()
    if not LOWEST_OPSET <= opset <= highest:
        raise DlxError(
            f"--opset {opset} does not exist: onnx {onnx.__version__} knows opsets {LOWEST_OPSET} to "
            f"{highest}. Type e.g. `--opset 18`."
        )
    opset_ids = [helper.make_opsetid("", opset)]
    probe = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "opset_probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        ),
        opset_imports=opset_ids,
        # onnx's newest IR version may be newer than the runtime's; the opset decides what it must run.
        ir_version=helper.find_min_ir_version_for(opset_ids),
    )
    try:
        onnxruntime.InferenceSession(
            probe.SerializeToString(), _quiet_session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as error:
        raise DlxError(
            f"onnxruntime {onnxruntime.__version__} cannot run opset {opset}: "
            f"{_opset_reason(' '.join(str(error).split()))} Type a lower one, e.g. `--opset 18`."
        ) from error


def read_metadata(session: Any, path: Path) -> dict[str, Any]:
    """dlx's metadata of an ONNX model (keys without the ``dlx.`` prefix), decoded."""
    values = decode_metadata(session.get_modelmeta().custom_metadata_map)
    if "version" not in values or "input_shape" not in values:
        raise DlxError(
            f"'{path}' has no dlx metadata (input shape, classes, normalisation), so dlx cannot know how "
            "to prepare inputs for it. Export the checkpoint with `dlx export onnx CKPT`, or run "
            "`dlx predict CKPT ...` on the checkpoint itself."
        )
    return values


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """``{"dlx.input_shape": "[1, 28, 28]", ...}`` -> ``{"input_shape": [1, 28, 28], ...}``."""
    values: dict[str, Any] = {
        key[len(METADATA_PREFIX) :]: value for key, value in raw.items() if key.startswith(METADATA_PREFIX)
    }
    for key in JSON_METADATA_KEYS:
        if key in values:
            try:
                values[key] = json.loads(values[key])
            except json.JSONDecodeError as error:
                raise DlxError(
                    f"The dlx metadata '{METADATA_PREFIX}{key}' is damaged ({error}). Export the "
                    "checkpoint again with `dlx export onnx CKPT`."
                ) from error
    return values


def _opset_reason(reason: str) -> str:
    """onnxruntime's own words on the opsets it runs, else the end of its message."""
    import re

    supported = re.search(r"official support for domain ai\.onnx is till opset (\d+)", reason)
    return f"it runs opsets up to {supported.group(1)}." if supported else _tail(reason)


def _tail(reason: str, limit: int = 240) -> str:
    """The informative end of an onnxruntime message (its start is a C++ source location)."""
    reason = reason.rstrip(".") + "."
    return reason if len(reason) <= limit else "..." + reason[-limit:]
