"""`dlx export` on the command line: the table, and one-line refusals of bad input (exit 2)."""

import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from dlx.cli import app
from dlx.errors import DlxError
from dlx.export.command import export_checkpoint

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _first_opset_the_runtime_cannot_run() -> int | None:
    for opset in range(18, onnx.defs.onnx_opset_version() + 1):
        ids = [helper.make_opsetid("", opset)]
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids))
        try:
            onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:
            return opset
    return None


def test_export_prints_the_check_table_and_writes_beside_the_checkpoint(checkpoint_of):
    checkpoint = checkpoint_of("mlp")
    result = invoke("export", "pt2", str(checkpoint))

    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for row in ["exporter", "export time", "file size", "max |PyTorch - export|", "argmax agreement"]:
        assert row in text
    assert "latency, batch 1" in text and "latency, batch 64" in text and "eager" in text
    assert "(tolerance 0.0001): pass" in text
    assert (checkpoint.parent / "best.pt2").is_file()  # named after best.ckpt


def test_no_check_skips_the_comparison(checkpoint_of, tmp_path):
    out = tmp_path / "deploy" / "digits.pt"
    result = invoke("export", "torchscript", str(checkpoint_of("mlp")), "--out", str(out), "--no-check")

    assert result.exit_code == 0, result.output
    assert "skipped (--no-check)" in result.output and "latency" not in result.output
    assert out.is_file()


def test_out_naming_a_folder_writes_the_default_name_into_it(checkpoint_of, tmp_path):
    checkpoint = checkpoint_of("mlp")
    before = checkpoint.read_bytes()
    result = invoke("export", "torchscript", str(checkpoint), "--out", str(tmp_path), "--no-check")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "best.torchscript.pt").is_file() and checkpoint.read_bytes() == before

    new_folder = tmp_path / "deploy"  # not there yet, and no file suffix: a folder
    result = invoke("export", "torchscript", str(checkpoint), "--out", str(new_folder), "--no-check")
    assert result.exit_code == 0, result.output
    assert (new_folder / "best.torchscript.pt").is_file()


def _corrupt_checkpoint(tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    return str(path)


REFUSALS = [
    (["export", "onnx", "missing.ckpt"], "does not exist"),
    (["export", "onnx", "{corrupt}"], "is unreadable"),
    (["export", "onxx", "{corrupt}"], "Did you mean 'onnx'"),
    (["export", "onnx", "{corrupt}", "--opset", "99"], "--opset 99 does not exist"),
    (["export", "onnx", "{corrupt}", "--opset", "3"], "--opset 3 does not exist"),
    (["export", "torchscript", "{corrupt}", "--opset", "18"], "--opset applies to ONNX only"),
    (
        ["export", "pt2", "{corrupt}", "--quantize", "int8"],
        "available for onnx (onnxruntime) and torchscript",
    ),
    (["export", "onnx", "{corrupt}", "--quantize", "int4"], "Unknown quantization 'int4'"),
    (["export", "torchscript", "{corrupt}", "--out", "{corrupt}"], "would write over a checkpoint"),
    (["export", "onnx", "{corrupt}", "--out", "last.ckpt"], "`--out broken.onnx`"),
]


@pytest.mark.parametrize("arguments, message", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_bad_input_exits_2_with_one_paragraph_and_no_traceback(arguments, message, tmp_path):
    corrupt = _corrupt_checkpoint(tmp_path)
    result = invoke(*[argument.replace("{corrupt}", corrupt) for argument in arguments])

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Error:" in result.output and "Traceback" not in result.output


def test_an_opset_the_runtime_cannot_run_is_refused_before_exporting(tmp_path):
    opset = _first_opset_the_runtime_cannot_run()
    if opset is None:
        pytest.skip(f"onnxruntime {onnxruntime.__version__} runs every opset onnx {onnx.__version__} knows")
    result = invoke("export", "onnx", _corrupt_checkpoint(tmp_path), "--opset", str(opset))

    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"cannot run opset {opset}" in text and "--opset 18" in text and "Traceback" not in text


@pytest.mark.parametrize("command", ["export", "predict"])
def test_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Examples" in result.output and f"dlx {command}" in result.output


def test_each_checkpoint_exports_to_its_own_file_and_a_failed_check_replaces_none(
    checkpoint_of, tmp_path, monkeypatch
):
    import dlx.export.parity

    best = checkpoint_of("mlp")
    last = best.with_name("last.ckpt")
    export_checkpoint("torchscript", best, out=tmp_path, check=False)
    export_checkpoint("torchscript", last, out=tmp_path, check=False)
    good = (tmp_path / "best.torchscript.pt").read_bytes()
    assert (tmp_path / "last.torchscript.pt").is_file()

    monkeypatch.setattr(dlx.export.parity, "TOLERANCE", -1.0)  # every comparison fails
    with pytest.raises(DlxError, match=r"best\.failed\.torchscript\.pt is kept for inspection"):
        export_checkpoint("torchscript", best, out=tmp_path)
    assert (tmp_path / "best.torchscript.pt").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.failed.torchscript.pt",
        "best.torchscript.pt",
        "last.torchscript.pt",
    ]


def test_a_run_folder_means_its_best_checkpoint(checkpoint_of):
    run_folder = checkpoint_of("mlp").parent.parent
    result = invoke("export", "torchscript", str(run_folder), "--no-check")
    assert result.exit_code == 0, result.output
    assert (run_folder / "checkpoints" / "best.torchscript.pt").is_file()
    (run_folder / "checkpoints" / "best.torchscript.pt").unlink()
