"""`dlx predict`: classes for images (or a data split) from an exported ONNX file or a checkpoint, and for
texts from a text classifier's checkpoint.

Given an ONNX file, only onnxruntime, numpy and PIL are imported (no torch): the file's dlx metadata says
how to turn an image into the model's input, exactly as the run's data module did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.console import console
from dlx.errors import DlxError

IMAGE_MODES = {1: "L", 3: "RGB"}


@dataclass
class Prediction:
    input: str
    top: list[tuple[str, float]]  # (class, probability), most likely first; regression: ("output i", value)
    target: str | None = None
    notes: list[str] = field(default_factory=list)


def predict(
    source: Path, arguments: list[str], top_k: int = 1, limit: int = 16, trust_checkpoint: bool = False
) -> list[Prediction]:
    """Predict with ``source`` (a .onnx file or a checkpoint) on the images among ``arguments`` (texts for a
    text classifier's checkpoint); for a checkpoint, the other arguments are overrides, and without
    inputs it predicts on ``data.split``."""
    for option, value, example in (("--top-k", top_k, 3), ("--limit", limit, 16)):
        if value < 1:
            raise DlxError(f"{option} must be at least 1, got {value}. Type e.g. `{option} {example}`.")
    from dlx.export.command import RUNTIMES, SUFFIXES

    for export_format in ("torchscript", "pt2"):  # what dlx export writes besides ONNX
        if source.name.endswith(SUFFIXES[export_format]):
            raise DlxError(
                f"{source} is a {RUNTIMES[export_format]} file; dlx predict reads an ONNX file "
                "(`dlx export onnx CKPT`) or a checkpoint (.ckpt). Give the checkpoint it was exported "
                f"from, or load the file with {RUNTIMES[export_format]} in your own code."
            )
    overrides = [argument for argument in arguments if "=" in argument or argument.startswith("~")]
    given = [argument for argument in arguments if argument not in overrides]  # image files, or texts
    if source.suffix.lower() == ".onnx":
        if overrides:
            raise DlxError(
                f"Overrides ({' '.join(overrides)}) apply to a checkpoint, not to an ONNX file. Pass only "
                "image files after the .onnx file, or a checkpoint instead."
            )
        predictions, metadata = _predict_with_onnx(source, [Path(image) for image in given], top_k)
    else:
        predictions, metadata = _predict_with_checkpoint(
            source, given, overrides, top_k, limit, trust_checkpoint
        )
    _print_predictions(source, metadata, predictions, top_k)
    return predictions


def _predict_with_onnx(path: Path, images: list[Path], top_k: int) -> tuple[list[Prediction], dict[str, Any]]:
    from dlx.export.onnx_runtime import open_session, read_metadata

    if not images:
        raise DlxError(
            f"Give the image files to classify after the ONNX file, e.g. `dlx predict {path} digit.png`."
        )
    session = open_session(path)
    metadata = read_metadata(session, path)
    inputs, notes = prepare_images(images, metadata)
    outputs = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return _predictions([str(image) for image in images], outputs, metadata, top_k, notes), metadata


def _predict_with_checkpoint(
    path: Path, given: list[str], overrides: list[str], top_k: int, limit: int, trust_checkpoint: bool
) -> tuple[list[Prediction], dict[str, Any]]:
    import torch

    from dlx.export.onnx_runtime import decode_metadata
    from dlx.export.signature import deployment_metadata
    from dlx.generate import is_language_model
    from dlx.restore import restore_run

    def refuse_language_models(cfg: Any) -> None:
        if is_language_model(cfg):
            raise DlxError(
                f"{path} is a language model (task={cfg.task.get('name')}): its outputs are next-token "
                "scores, not predictions for a sample. Sample text from it with "
                f"`dlx generate {path} --prompt 'ROMEO:'`."
            )

    # New inputs need only what the checkpoint says about its data, not the data set (maybe a download).
    run = restore_run(
        path, overrides, trust_checkpoint, check_config=refuse_language_models, read_data=not given
    )
    metadata = decode_metadata(deployment_metadata(run, "float32", {0: "batch"}))
    targets = None
    if given and hasattr(run.data, "encode_texts"):  # a text classifier: the arguments are texts
        inputs, names, notes = run.data.encode_texts(given), given, [[] for _ in given]
    elif given:
        images = [Path(image) for image in given]
        prepared, notes = prepare_images(images, metadata)
        inputs, names = torch.from_numpy(prepared), [str(image) for image in images]
    else:
        split = str(run.cfg.data.get("split") or "val")
        run.data.loader(split)  # refuses an unknown split with the list of valid ones
        inputs, labels = run.data.example_batch(split, limit)
        names, notes = [f"{split}[{index}]" for index in range(len(inputs))], [[] for _ in range(len(inputs))]
        if hasattr(run.data, "decode_texts"):  # a text classifier: show what each sample says
            texts = run.data.decode_texts(inputs)
            names = [f"{name} {_shortened(text)}" for name, text in zip(names, texts, strict=True)]
        targets = labels.tolist()
    with torch.inference_mode():
        outputs = run.model(inputs).float().numpy()
    predictions = _predictions(names, outputs, metadata, top_k, notes)
    if targets is not None:
        class_names = metadata.get("class_names")
        for prediction, target in zip(predictions, targets, strict=True):
            if isinstance(target, list) and len(target) == 1:  # one regression target per row
                target = target[0]
            if class_names and isinstance(target, int):
                prediction.target = class_names[target]
            else:  # a number: as many digits as float32 holds, not its binary noise
                prediction.target = f"{target:.7g}" if isinstance(target, float) else str(target)
    return predictions, metadata


def _shortened(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


# -- images -> model inputs -----------------------------------------------------------------------
def prepare_images(paths: list[Path], metadata: dict[str, Any]) -> tuple[Any, list[list[str]]]:
    """A float batch (N, C, H, W) prepared as the run's data module prepares its images, and the notes
    on what had to change (mode, size) per image."""
    import numpy as np

    shape = list(metadata["input_shape"])
    checkpoint = metadata.get("checkpoint") or "CKPT"
    if str(metadata.get("input_dtype", "")).startswith(("int", "uint")) and len(shape) == 1:
        raise DlxError(
            f"This ONNX file takes token ids (a text model, data={metadata.get('data')}) and carries no "
            "tokenizer, so it reads neither images nor typed text. Predict texts with the checkpoint it "
            f'was exported from: `dlx predict {checkpoint} "your text"` (a language model: `dlx generate '
            f"{checkpoint}`)."
        )
    if len(shape) != 3 or shape[0] not in IMAGE_MODES:
        raise DlxError(
            f"This model takes inputs of shape {shape}, not 1- or 3-channel images, and dlx predict reads "
            f"image files. Predict on its data instead: `dlx predict {checkpoint} data.split=val` (or "
            "test, where the data holds a labelled one)."
        )
    scale = metadata.get("scale")
    if scale is None:
        raise DlxError(
            f"The model's data module ({metadata.get('data')}) declares no pixel scale "
            "(metadata().extra['scale']), so dlx cannot tell how its images map to inputs. Predict on its "
            "data instead: `dlx predict CKPT data.split=val` (or test, where the data holds a labelled one)."
        )
    channels = shape[0]
    mean = np.asarray(metadata.get("mean") or [0.0] * channels, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(metadata.get("std") or [1.0] * channels, dtype=np.float32).reshape(-1, 1, 1)
    batch, notes = [], []
    for path in paths:
        pixels, image_notes = _read_image(path, shape, raw_max=1.0 / scale)
        batch.append((pixels * np.float32(scale) - mean) / std)
        notes.append(image_notes)
    return np.stack(batch).astype(metadata.get("input_dtype") or "float32"), notes


def _read_image(path: Path, shape: list[int], raw_max: float) -> tuple[Any, list[str]]:
    """Pixels (C, H, W) as float32 in the image's own range, converted to the model's mode and size."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    if not path.is_file():
        raise DlxError(f"Image '{path}' does not exist. Pass image files (PNG, JPEG, ...) after the model.")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise DlxError(
            f"'{path}' is not an image PIL can read ({error}). Pass PNG, JPEG or similar files."
        ) from error
    notes = []
    mode = IMAGE_MODES[channels]
    if image.mode != mode:
        notes.append(f"converted {image.mode} to {mode} ({channels} channel{'s' if channels > 1 else ''})")
        image = image.convert(mode)
    if image.size != (width, height):
        notes.append(f"resized {image.size[0]}x{image.size[1]} to {width}x{height}")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if raw_max < 255 and pixels.max() > raw_max * 1.001:
        # The image (8-bit after the conversion above) uses 0..255 for what the training images put in
        # 0..raw_max (digits: 0..16); one that stays within 0..raw_max was saved in that range.
        notes.append(f"scaled 8-bit values 0..255 to the training images' 0..{raw_max:g}")
        pixels = pixels * np.float32(raw_max / 255)
    return pixels, notes


# -- outputs -> table -----------------------------------------------------------------------------
def _predictions(
    names: list[str], outputs: Any, metadata: dict[str, Any], top_k: int, notes: list[list[str]]
) -> list[Prediction]:
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(names), -1)
    class_names = metadata.get("class_names") or []
    predictions = []
    for name, row, image_notes in zip(names, outputs, notes, strict=True):
        if _is_classifier(metadata, len(row)):
            probabilities = np.exp(row - row.max())
            probabilities /= probabilities.sum()
            order = np.argsort(-probabilities, kind="stable")[:top_k]
            top = [(str(class_names[index]), float(probabilities[index])) for index in order]
        else:
            target = metadata.get("target")  # a table's target column names its one output
            labels = (
                [target]
                if isinstance(target, str) and len(row) == 1
                else [f"output {i}" for i in range(len(row))]
            )
            top = [(label, float(value)) for label, value in zip(labels, row, strict=True)]
        predictions.append(Prediction(name, top, notes=image_notes))
    return predictions


def _is_classifier(metadata: dict[str, Any], outputs: int) -> bool:
    class_names = metadata.get("class_names")
    return bool(class_names) and metadata.get("task") == "classification" and len(class_names) == outputs


def _print_predictions(
    source: Path, metadata: dict[str, Any], predictions: list[Prediction], top_k: int
) -> None:
    from rich.table import Table

    for prediction in predictions:
        for note in prediction.notes:
            console.print(f"[yellow]note:[/] {prediction.input}: {note}", soft_wrap=True)
    described = ", ".join(str(metadata[key]) for key in ("experiment", "model") if metadata.get(key))
    table = Table(title=f"dlx predict: {source.name}" + (f" ({described})" if described else ""))
    table.add_column("input", overflow="fold")
    table.add_column("prediction")
    classifier = _is_classifier(metadata, len(metadata.get("class_names") or []))
    table.add_column("probability" if classifier else "value", justify="right")
    with_targets = any(prediction.target is not None for prediction in predictions)
    errors = [] if with_targets and not classifier else None  # a regression's, not right or wrong
    if with_targets:
        table.add_column("true")
    if errors is not None:
        table.add_column("error", justify="right")
    if top_k > 1:
        table.add_column(f"top {top_k}")
    for prediction in predictions:
        label, value = prediction.top[0]
        row = [prediction.input, label, f"{value:.4f}"]
        if errors is not None:
            error = _error(value, prediction.target)
            errors.append(error)
            row += [str(prediction.target), "-" if error is None else f"{error:+.4g}"]
        elif with_targets:
            mark = "" if prediction.target == label else " [red]x[/]"
            row.append(f"{prediction.target}{mark}")
        if top_k > 1:
            row.append(", ".join(f"{name} {probability:.3f}" for name, probability in prediction.top))
        table.add_row(*row)
    console.print(table)
    if errors is not None:
        known = [abs(error) for error in errors if error is not None]
        if known:
            console.print(f"mean absolute error {sum(known) / len(known):.4g} over {len(known)}")
    elif with_targets:
        correct = sum(prediction.target == prediction.top[0][0] for prediction in predictions)
        console.print(f"{correct}/{len(predictions)} correct")


def _error(value: float, target: str | None) -> float | None:
    try:
        return value - float(target)
    except (TypeError, ValueError):
        return None
