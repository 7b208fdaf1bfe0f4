"""`dlx predict`: an exported ONNX file (or a checkpoint) classifies PNG files as the PyTorch model does."""

import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from dlx.cli import app
from dlx.data.digits import read_digits
from dlx.data.splits import fraction_split
from dlx.export.command import export_checkpoint
from dlx.predict import _shortened, predict
from dlx.restore import restore_run
from tests.export.runs import family_checkpoint
from tests.helpers import train_run

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return family_checkpoint(tmp_path_factory.getbasetemp() / "trained-runs", "cnn")


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    return export_checkpoint(
        "onnx", checkpoint, out=tmp_path_factory.mktemp("onnx") / "model.onnx", check=False
    )["path"]


@pytest.fixture(scope="module")
def first_val_digit():
    """The raw pixels (8x8, 0..16) of the first validation image, and the model input the data made of it."""
    pixels, _ = read_digits()
    index = fraction_split(len(pixels), 0.15, 0.15, 0)["val"][0]
    return pixels[index].reshape(8, 8).astype(np.uint8)


@pytest.fixture
def digit_png(first_val_digit, tmp_path):
    path = tmp_path / "digit.png"
    Image.fromarray(first_val_digit, mode="L").save(path)
    return path


def _pytorch_probabilities(checkpoint):
    run = restore_run(checkpoint)
    with torch.inference_mode():
        return torch.softmax(run.model(run.data.splits["val"][0][:1]), dim=1)[0]


def _probabilities(prediction):
    return dict(prediction.top)


def test_onnx_predict_on_a_png_gives_the_pytorch_models_class_and_probabilities(
    onnx_file, digit_png, checkpoint
):
    expected = _pytorch_probabilities(checkpoint)
    [prediction] = predict(onnx_file, [str(digit_png)], top_k=10)

    assert prediction.top[0][0] == str(int(expected.argmax()))
    probabilities = _probabilities(prediction)
    for digit in range(10):
        assert probabilities[str(digit)] == pytest.approx(float(expected[digit]), abs=1e-4)
    assert prediction.notes == []

    result = runner.invoke(app, ["predict", str(onnx_file), digit_png.name, "--top-k", "3"])  # cwd: tmp_path
    assert result.exit_code == 0, result.output
    assert "digit.png" in result.output and "top 3" in result.output


def test_checkpoint_predict_on_the_png_agrees_with_the_onnx_file(onnx_file, digit_png, checkpoint):
    [from_onnx] = predict(onnx_file, [str(digit_png)], top_k=3)
    [from_checkpoint] = predict(checkpoint, [str(digit_png)], top_k=3)
    assert [name for name, _ in from_checkpoint.top] == [name for name, _ in from_onnx.top]
    assert from_checkpoint.top[0][1] == pytest.approx(from_onnx.top[0][1], abs=1e-4)


def test_onnx_predict_never_imports_torch(onnx_file, digit_png):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dlx.cli import app\n"
        f"result = CliRunner().invoke(app, ['predict', {str(onnx_file)!r}, {str(digit_png)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('torch' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "False"


def test_an_rgb_image_is_converted_to_grey_with_a_note(onnx_file, digit_png, first_val_digit, tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.stack([first_val_digit] * 3, axis=-1), mode="RGB").save(rgb)
    [grey_prediction, rgb_prediction] = predict(onnx_file, [str(digit_png), str(rgb)], top_k=10)

    assert rgb_prediction.notes == ["converted RGB to L (1 channel)"]
    assert _probabilities(rgb_prediction) == pytest.approx(_probabilities(grey_prediction))


def test_an_image_of_another_size_is_resized_with_a_note(onnx_file, first_val_digit, tmp_path):
    large = tmp_path / "large.png"
    Image.fromarray(first_val_digit, mode="L").resize((16, 16), Image.Resampling.NEAREST).save(large)
    result = runner.invoke(app, ["predict", str(onnx_file), str(large)])

    assert result.exit_code == 0, result.output
    assert "note: " in result.output and "resized 16x16 to 8x8" in " ".join(result.output.split())


def test_an_ordinary_8_bit_image_is_scaled_to_the_training_range(onnx_file, first_val_digit, tmp_path):
    # Digits' pixels run 0..16; the same picture as a usual PNG runs 0..255 (16 -> 255).
    eight_bit, raw = tmp_path / "eight_bit.png", tmp_path / "raw.png"
    Image.fromarray(first_val_digit, mode="L").save(raw)
    Image.fromarray((first_val_digit.astype(np.float32) * 255 / 16).round().astype(np.uint8)).save(eight_bit)
    [as_trained, scaled] = predict(onnx_file, [str(raw), str(eight_bit)], top_k=10)
    assert scaled.notes == ["scaled 8-bit values 0..255 to the training images' 0..16"]
    assert as_trained.notes == []
    assert _probabilities(scaled) == pytest.approx(_probabilities(as_trained), abs=0.02)


def test_checkpoint_predict_on_a_data_split_shows_the_true_labels(checkpoint):
    result = runner.invoke(app, ["predict", str(checkpoint), "data.split=test", "--limit", "4"])

    assert result.exit_code == 0, result.output
    assert "test[3]" in result.output and "test[4]" not in result.output
    assert "true" in result.output and "/4 correct" in result.output


def test_checkpoint_predict_on_a_regression_shows_errors_in_the_targets_units(tmp_path, monkeypatch):
    """Numbers are not right or wrong: each row shows its error, and the mean absolute error closes."""
    from tests.helpers import only_run_folder, train_run

    monkeypatch.chdir(tmp_path)
    lines = ["a,y"] + [f"{a / 100:.4f},{200 + a:.4f}" for a in range(200)]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    train_run(
        "data=tabular", "task=regression", "data.path=table.csv", "data.target=y", "trainer.max_epochs=20"
    )
    best = only_run_folder() / "checkpoints" / "best.ckpt"
    result = runner.invoke(app, ["predict", str(best), "data.split=test", "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "error" in result.output and "mean absolute error" in result.output
    assert "correct" not in result.output
    mae = float(result.output.split("mean absolute error ")[1].split()[0])
    assert mae < 20  # targets 200-399: in their own units, and learnt
    predictions = predict(best, ["data.split=test"], limit=4)
    assert [name for p in predictions for name, _ in p.top] == ["y"] * 4  # named after the target column
    assert all(len(p.target.split(".")[-1]) <= 4 for p in predictions)  # 236.5, not 236.5000030517578


def _rewrite(onnx_file, tmp_path, change):
    proto = onnx.load(str(onnx_file))
    change(proto)
    path = tmp_path / "changed.onnx"
    onnx.save(proto, str(path))
    return str(path)


def _without_metadata(proto):
    del proto.metadata_props[:]


def _with_text_input(proto):
    _with_input_shape("[64]")(proto)
    for entry in proto.metadata_props:
        if entry.key == "dlx.input_dtype":
            entry.value = "int64"


def _with_input_shape(shape):
    def change(proto):
        for entry in proto.metadata_props:
            if entry.key == "dlx.input_shape":
                entry.value = shape

    return change


def _with_future_opset(proto):
    proto.opset_import[0].version = onnx.defs.onnx_opset_version() + 1


BAD_INPUT = [
    (lambda onnx_file, png, tmp: [str(tmp / "missing.onnx"), png], "does not exist"),
    (lambda onnx_file, png, tmp: [_rewrite(onnx_file, tmp, _without_metadata), png], "has no dlx metadata"),
    (lambda onnx_file, png, tmp: [_rewrite(onnx_file, tmp, _with_future_opset), png], "cannot run"),
    (
        lambda onnx_file, png, tmp: [_rewrite(onnx_file, tmp, _with_input_shape("[2]")), png],
        "not 1- or 3-channel",
    ),
    (
        lambda onnx_file, png, tmp: [_rewrite(onnx_file, tmp, _with_text_input), "a wonderful film"],
        "takes token ids (a text model, data=digits) and carries no tokenizer",
    ),
    (lambda onnx_file, png, tmp: [_broken_file(tmp, "model.onnx"), png], "is not an ONNX model"),
    (lambda onnx_file, png, tmp: [str(onnx_file), _broken_file(tmp, "fake.png")], "is not an image"),
    (lambda onnx_file, png, tmp: [str(onnx_file), str(tmp / "nowhere.png")], "does not exist"),
    (lambda onnx_file, png, tmp: [str(onnx_file)], "Give the image files"),
    (lambda onnx_file, png, tmp: [str(onnx_file), png, "data.split=test"], "apply to a checkpoint"),
    (lambda onnx_file, png, tmp: [str(onnx_file), png, "--top-k", "0"], "must be at least 1"),
    (lambda onnx_file, png, tmp: [str(tmp / "missing.ckpt"), png], "does not exist"),
    (lambda onnx_file, png, tmp: [_broken_file(tmp, "broken.ckpt"), png], "is unreadable"),
    (lambda onnx_file, png, tmp: [_broken_file(tmp, "model.torchscript.pt"), png], "is a TorchScript file"),
    (lambda onnx_file, png, tmp: [_broken_file(tmp, "model.pt2"), png], "is a torch.export file"),
]
BAD_INPUT_IDS = [
    "missing onnx",
    "no metadata",
    "opset too new",
    "not an image model",
    "text model",
    "corrupt onnx",
    "not an image",
    "missing image",
    "no images",
    "overrides with onnx",
    "top-k 0",
    "missing checkpoint",
    "corrupt checkpoint",
    "torchscript file",
    "pt2 file",
]


def _broken_file(folder, name):
    path = folder / name
    path.write_bytes(b"\x00\x01 this is not what the name says")
    return str(path)


@pytest.mark.parametrize("arguments, message", BAD_INPUT, ids=BAD_INPUT_IDS)
def test_bad_input_exits_2_with_one_line_and_no_traceback(arguments, message, onnx_file, digit_png, tmp_path):
    result = runner.invoke(app, ["predict", *arguments(onnx_file, str(digit_png), tmp_path)])

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Error:" in result.output and "Traceback" not in result.output


def test_a_text_classifier_predicts_typed_texts_as_it_read_its_data(tmp_path_factory):
    checkpoint = family_checkpoint(tmp_path_factory.getbasetemp() / "trained-runs", "rnn")
    run = restore_run(checkpoint)
    texts = run.data.read_splits()["val"].texts[:3]
    predictions = predict(checkpoint, texts, top_k=2)
    assert [prediction.input for prediction in predictions] == texts
    on_split = predict(checkpoint, ["data.split=val"], limit=3)  # each sample shown with its words
    decoded = [" ".join(t.lower().split()) for t in texts]
    assert [p.input.split(" ", 1)[1] for p in on_split] == [_shortened(text) for text in decoded]
    with torch.inference_mode():
        encoded = run.data.prepare(run.data.splits["val"][0][:3])
        expected = torch.softmax(run.model(encoded).float(), dim=1)
    for prediction, probabilities in zip(predictions, expected, strict=True):
        assert dict(prediction.top) == pytest.approx(
            {name: float(p) for name, p in zip(run.data.class_names, probabilities, strict=True)}, abs=1e-5
        )


def test_predicting_new_images_reads_no_data_files(tmp_path):
    """The checkpoint describes its inputs: predicting a PNG needs neither MNIST's files nor a download."""
    from tests.datasets_on_disk import write_mnist_idx

    write_mnist_idx(tmp_path / "mnist", n_train=60, n_test=20)
    train_run(
        "data=mnist",
        f"data.root={tmp_path / 'mnist'}",
        "data.download=false",
        "data.val_size=10",
        "model=mlp",
        "model.hidden_sizes=[16]",
        "trainer.max_epochs=1",
        f"output_dir={tmp_path / 'runs'}",
    )
    checkpoint = next((tmp_path / "runs").glob("*/*/checkpoints/best.ckpt"))
    image = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(image)
    with_data = predict(checkpoint, [str(image)], top_k=3)

    shutil.rmtree(tmp_path / "mnist")
    without_data = predict(checkpoint, [str(image)], top_k=3)
    _assert_same_predictions(without_data, with_data)
    assert not (tmp_path / "mnist").exists()  # nothing was downloaded either


def test_predicting_typed_texts_reads_no_data_files(tmp_path):
    from tests.text_on_disk import write_sst2_folder

    write_sst2_folder(tmp_path / "SST-2")
    train_run(
        "model=rnn",
        "data=sst2",
        f"data.root={tmp_path / 'SST-2'}",
        "data.max_length=12",
        "model.embedding_size=8",
        "model.hidden_size=8",
        "trainer.max_epochs=1",
        f"output_dir={tmp_path / 'runs'}",
    )
    checkpoint = next((tmp_path / "runs").glob("*/*/checkpoints/best.ckpt"))
    texts = ["a great film .", "the plot is dull and boring ."]
    with_data = predict(checkpoint, texts, top_k=2)

    shutil.rmtree(tmp_path / "SST-2")
    without_data = predict(checkpoint, texts, top_k=2)
    _assert_same_predictions(without_data, with_data)


def test_a_checkpoint_that_does_not_describe_its_data_reads_it_to_predict(checkpoint, digit_png, tmp_path):
    """Checkpoints written before they carried their DataMetadata still predict: their data is read."""
    state = torch.load(checkpoint, weights_only=True)
    del state["data_metadata"]
    older = tmp_path / "checkpoints" / "older.ckpt"
    older.parent.mkdir()
    torch.save(state, older)
    assert [p.top for p in predict(older, [str(digit_png)])] == [
        p.top for p in predict(checkpoint, [str(digit_png)])
    ]


def _assert_same_predictions(actual, expected):
    assert [[name for name, _ in p.top] for p in actual] == [[name for name, _ in p.top] for p in expected]
    assert [v for p in actual for _, v in p.top] == pytest.approx(
        [v for p in expected for _, v in p.top], abs=1e-6
    )
