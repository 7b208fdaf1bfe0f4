import pytest
import torch

from dlx.errors import DlxError
from dlx.export.command import export_checkpoint
from dlx.export.torchscript_export import export_torchscript, read_torchscript_metadata, torchscript_runner
from tests.export.edge_models import KeywordArgumentsNet
from tests.export.signatures import signature_for


def test_int8_quantizes_the_linear_layers_and_reports_the_accuracy_change(checkpoint_of):
    results = export_checkpoint("torchscript", checkpoint_of("mlp"), quantize="int8")

    path, report = results["path"], results["report"]
    assert path.name == "best.int8.torchscript.pt" and results["fp32_size"] > results["size"]
    kinds = {module.original_name for module in torchscript_runner(path).modules()}
    assert "LinearPackedParams" in kinds, "the Linear layers hold int8 weights"
    eager, exported, total = report.accuracy
    assert total == 270 and abs(exported - eager) < 0.1
    assert read_torchscript_metadata(path)["dlx.quantization"].startswith("int8")


def test_a_model_script_cannot_compile_is_traced_and_says_so(tmp_path):
    model = KeywordArgumentsNet([4], 3).eval()
    exported = export_torchscript(model, signature_for([4]), tmp_path / "model.pt", int8=False)

    assert exported.exporter.startswith("torch.jit.trace (torch.jit.script failed:")
    inputs = torch.randn(5, 4)
    torch.testing.assert_close(torchscript_runner(exported.path)(inputs), model(inputs))


def test_a_model_neither_script_nor_trace_can_handle_is_refused(tmp_path, monkeypatch):
    def broken_trace(*args, **kwargs):
        raise RuntimeError("Tracer cannot infer type of output")

    monkeypatch.setattr(torch.jit, "trace", broken_trace)
    with pytest.raises(DlxError, match="cannot be exported to TorchScript: Tracer cannot infer type"):
        export_torchscript(
            KeywordArgumentsNet([4], 3).eval(), signature_for([4]), tmp_path / "m.pt", int8=False
        )
