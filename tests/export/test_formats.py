"""Every registered model family, exported to every format, computes what the PyTorch model computes."""

import pytest
import torch

from dlx.errors import DlxError
from dlx.export import FORMATS
from dlx.export.command import export_checkpoint
from dlx.export.parity import TOLERANCE
from dlx.export.signature import file_sha256
from dlx.registry import MODELS
from tests.export.runs import FAMILY_SETTINGS, NOT_EXPORTABLE


def test_every_registered_family_has_test_settings():
    missing = sorted(set(MODELS.names()) - set(FAMILY_SETTINGS))
    assert not missing, f"add settings for {missing} to FAMILY_SETTINGS in tests/export/runs.py"


@pytest.mark.parametrize("export_format", FORMATS)
@pytest.mark.parametrize("family", MODELS.names())
def test_each_family_exports_to_each_format_within_tolerance(family, export_format, checkpoint_of):
    checkpoint = checkpoint_of(family)
    if (family, export_format) in NOT_EXPORTABLE:
        with pytest.raises(DlxError, match=NOT_EXPORTABLE[family, export_format]):
            export_checkpoint(export_format, checkpoint)
        return
    results = export_checkpoint(export_format, checkpoint)

    report = results["report"]
    assert results["path"].parent == checkpoint.parent and results["path"].stat().st_size > 0
    assert report.max_abs_difference <= TOLERANCE
    assert report.samples > 2, "checked beyond the traced batch"
    if report.agreement is not None:  # a classifier (a language model's outputs are not one decision)
        assert report.agreement[0] == report.agreement[1] == report.samples
    assert set(report.latency_ms) == {1, 64} and all(
        t > 0 for pair in report.latency_ms.values() for t in pair
    )


@pytest.mark.parametrize("export_format", FORMATS)
def test_the_exported_file_runs_at_any_batch_size_and_carries_its_metadata(export_format, checkpoint_of):
    from dlx.export.command import load_runner
    from dlx.export.onnx_runtime import decode_metadata
    from dlx.export.pt2_export import read_pt2_metadata
    from dlx.export.torchscript_export import read_torchscript_metadata
    from dlx.restore import restore_run

    checkpoint = checkpoint_of("cnn")
    path = export_checkpoint(export_format, checkpoint, check=False)["path"]
    run = restore_run(checkpoint)
    inputs = run.data.splits["test"][0][:7]
    runner = load_runner(export_format, path)
    with torch.inference_mode():
        torch.testing.assert_close(runner(inputs), run.model(inputs), atol=TOLERANCE, rtol=0)
        assert runner(inputs[:1]).shape == (1, 10)

    if export_format == "onnx":
        import onnx

        raw = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    else:
        raw = (read_pt2_metadata if export_format == "pt2" else read_torchscript_metadata)(path)
    metadata = decode_metadata(raw)
    assert metadata["class_names"] == [str(digit) for digit in range(10)]
    assert metadata["input_shape"] == [1, 8, 8] and metadata["input_dtype"] == "float32"
    assert metadata["dynamic_axes"] == {"0": "batch"}
    assert metadata["scale"] == pytest.approx(1 / 16) and len(metadata["mean"]) == len(metadata["std"]) == 1
    assert metadata["checkpoint_sha256"] == file_sha256(checkpoint)
    assert metadata["version"] and metadata["format"] == export_format and metadata["exporter"]
