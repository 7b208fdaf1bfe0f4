import pytest

from dlx.errors import DlxError
from dlx.export.pt2_export import export_pt2
from tests.export.edge_models import DataDependentNet
from tests.export.signatures import signature_for


def test_data_dependent_control_flow_is_refused_with_the_reason(tmp_path):
    with pytest.raises(DlxError, match="cannot be exported with torch.export: .*data-dependent") as refused:
        export_pt2(DataDependentNet([4], 3).eval(), signature_for([4]), tmp_path / "model.pt2")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 800
    assert not (tmp_path / "model.pt2").exists()
