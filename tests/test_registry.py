import sys

import pytest
import torch

import dlx.registry
from dlx.errors import DlxError
from dlx.registry import MODELS, REGISTRIES, Registry


def test_unknown_names_suggest_the_closest_and_list_all():
    with pytest.raises(DlxError) as caught:
        MODELS.get("resnt")
    assert "Did you mean 'resnet'" in str(caught.value) and ", ".join(MODELS.names()) in str(caught.value)


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_entry_imports(kind):
    registry = REGISTRIES[kind]
    for name in registry.names():
        assert callable(registry.get(name)), name


def test_register_decorator_and_entry_points(tmp_path, monkeypatch):
    registry = Registry("widgets", {}, group="widget")

    @registry.register("mine")
    def build_mine():
        return "built"

    # An installed package's metadata as pip and uv write it; the second one declares no dlx entry points.
    for name, text in [
        (
            "their_widgets-1.0.dist-info",
            "[dlx.widgets]\ntheirs = collections:OrderedDict\n\n[other]\nx = y:z\n",
        ),
        ("unrelated-2.0.dist-info", "[console_scripts]\nunrelated = unrelated:main\n"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "METADATA").write_text(f"Name: {name.split('-')[0]}\nVersion: 1.0\n")
        (tmp_path / name / "entry_points.txt").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    dlx.registry._installed_entry_points.cache_clear()
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert dlx.registry._installed_entry_points() == {"dlx.widgets": {"theirs": "collections:OrderedDict"}}
    assert registry.get("theirs").__name__ == "OrderedDict"  # an unknown name looks at the installed packages
    assert registry.names() == ["mine", "theirs"]
    assert registry.get("mine")() == "built"
    dlx.registry._installed_entry_points.cache_clear()


def test_a_users_own_model_class_through_target(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "import torch\n"
        "class TinyNet(torch.nn.Module):\n"
        "    def __init__(self, input_shape: list[int], num_outputs: int, width: int = 16):\n"
        "        super().__init__()\n"
        "        size = 1\n"
        "        for d in input_shape: size *= d\n"
        "        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size, width),\n"
        "                                       torch.nn.ReLU(), torch.nn.Linear(width, num_outputs))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from tests.helpers import train_run

    summary = train_run("model._target_=mynets.TinyNet", "+model.width=32", "optimizer.lr=0.01")
    assert summary["best_metrics"]["val/acc"] > 0.5
    assert isinstance(sys.modules["mynets"].TinyNet(input_shape=[1, 8, 8], num_outputs=10), torch.nn.Module)
    with pytest.raises(DlxError, match="Valid keys for this model"):
        train_run("model._target_=mynets.TinyNet", "+model.widht=32")
