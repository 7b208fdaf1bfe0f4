import onnx
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.errors import DlxError
from dlx.export.command import export_checkpoint
from dlx.export.onnx_export import export_onnx, onnx_runner
from dlx.export.onnx_runtime import open_session, read_metadata
from tests.export.edge_models import SequenceMean
from tests.export.signatures import signature_for


def _operators(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_int8_is_smaller_quantized_and_reports_the_accuracy_change(checkpoint_of):
    results = export_checkpoint("onnx", checkpoint_of("mlp"), quantize="int8")

    path, report = results["path"], results["report"]
    assert path.name == "best.int8.onnx"
    assert results["fp32_size"] > results["size"] == path.stat().st_size
    assert "MatMulInteger" in _operators(path)
    eager, exported, total = report.accuracy
    assert total == 270 and abs(exported - eager) < 0.1
    assert report.split_agreement[1] == total and report.split_agreement[0] >= 0.9 * total
    metadata = read_metadata(open_session(path), path)
    assert metadata["quantization"].startswith("int8") and metadata["class_names"][0] == "0"


def test_int8_leaves_convolutions_in_float32(checkpoint_of):
    path = export_checkpoint("onnx", checkpoint_of("cnn"), quantize="int8", check=False)["path"]
    operators = _operators(path)
    assert "Conv" in operators and "ConvInteger" not in operators and "MatMulInteger" in operators


def test_an_opset_the_dynamo_exporter_cannot_write_falls_back_and_says_so(checkpoint_of):
    results = export_checkpoint("onnx", checkpoint_of("mlp"), opset=13)

    assert results["exporter"].startswith("TorchScript-based torch.onnx, opset 13 (dynamo exporter failed")
    assert onnx.load(str(results["path"])).opset_import[0].version == 13
    assert results["report"].within_tolerance


def test_a_declared_sequence_axis_stays_dynamic(tmp_path):
    model = SequenceMean().eval()
    signature = signature_for([5, 3], dynamic_axes={0: "batch", 1: "sequence"})
    export_onnx(model, signature, tmp_path / "sequence.onnx", opset=18, int8=False)

    runner = onnx_runner(tmp_path / "sequence.onnx")
    for batch, length in [(1, 2), (3, 11)]:
        inputs = torch.randn(batch, length, 3)
        torch.testing.assert_close(runner(inputs), model(inputs), atol=1e-5, rtol=0)
    dims = open_session(tmp_path / "sequence.onnx").get_inputs()[0].shape
    assert dims == ["batch", "sequence", 3]


def test_a_model_onnx_cannot_express_is_refused_with_the_operation_named(checkpoint_with):
    checkpoint = checkpoint_with("svd", "model._target_=tests.export.edge_models.SingularValueNet")
    with pytest.raises(DlxError, match=r"cannot be exported to ONNX: .*svd") as refused:
        export_checkpoint("onnx", checkpoint, trust_checkpoint=True)
    assert "dlx export pt2" in str(refused.value)
    assert not list(checkpoint.parent.glob("*.onnx"))  # nor a partial file

    result = CliRunner().invoke(app, ["export", "onnx", str(checkpoint), "--trust-checkpoint"])
    assert result.exit_code == 2, result.output
    assert "cannot be exported to ONNX" in result.output and "Traceback" not in result.output
    assert "ONNX graph being constructed" not in result.output, "the exporter's dump stays hidden"


def test_outputs_beyond_the_tolerance_exit_1_and_say_so(checkpoint_of, monkeypatch):
    from dlx.export import command

    real_runner = command.load_runner
    monkeypatch.setattr(command, "load_runner", lambda *args: lambda x: real_runner(*args)(x) + 1e-3)
    result = CliRunner().invoke(app, ["export", "onnx", str(checkpoint_of("mlp"))])

    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "FAIL" in text and "above the tolerance 0.0001" in text and "--no-check" in text
    assert "Traceback" not in result.output


def test_the_runtime_refuses_an_onnx_file_of_an_opset_it_cannot_run(tmp_path):
    model = SequenceMean().eval()
    path = tmp_path / "future.onnx"
    export_onnx(model, signature_for([5, 3]), path, opset=18, int8=False)
    proto = onnx.load(str(path))
    proto.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    onnx.save(proto, str(path))
    with pytest.raises(DlxError, match=f"onnxruntime {onnxruntime.__version__} cannot run"):
        open_session(path)
