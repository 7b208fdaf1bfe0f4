import inspect
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dlx.errors import DlxError
from dlx.models.cnn import CNN
from dlx.models.mlp import MLP
from dlx.models.resnet import build_resnet, resolve_pretrained_weights
from dlx.registry import MODELS

MODEL_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
# Models of token ids; test_text_models.py trains them on text.
TOKEN_MODELS = {"rnn", "transformer", "gpt", "hf"}
# Settings a model takes from the data module, by interpolation.
DATA_FED = {"input_shape", "num_outputs", "vocab_size", "pad_id"}


def config_kwargs(name: str, input_shape: list[int], num_outputs: int = 10) -> dict:
    """The model's YAML defaults, with the data interpolations replaced by concrete values."""
    config = OmegaConf.load(MODEL_CONFIGS / f"{name}.yaml")
    config.input_shape = input_shape
    config.num_outputs = num_outputs
    kwargs = OmegaConf.to_container(config, resolve=True)
    kwargs.pop("name")
    kwargs.pop("_target_", None)
    return kwargs


def assert_trains(
    model: nn.Module, input_shape: list[int], num_outputs: int = 10, batch_size: int = 4
) -> None:
    model.train()
    outputs = model(torch.randn(batch_size, *input_shape))
    assert outputs.shape == (batch_size, num_outputs)
    outputs.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS.names())
def test_config_lists_every_parameter_with_its_default(name):
    config = OmegaConf.to_container(OmegaConf.load(MODEL_CONFIGS / f"{name}.yaml"))
    assert config["name"] == name
    assert "num_outputs" in config or "vocab_size" in config
    for key in DATA_FED & set(config):
        assert config[key] == f"${{data.{key}}}"
    parameters = inspect.signature(MODELS.get(name)).parameters
    defaults = {
        key: p.default
        for key, p in parameters.items()
        if p.default is not inspect.Parameter.empty and key not in DATA_FED
    }
    assert {key: config[key] for key in defaults} == defaults
    assert set(config) - {"name"} == set(parameters)


@pytest.mark.parametrize("input_shape", [[1, 28, 28], [3, 32, 32]])
@pytest.mark.parametrize("name", sorted(set(MODELS.names()) - TOKEN_MODELS))
def test_every_model_builds_from_its_config_and_trains(name, input_shape):
    torch.manual_seed(0)
    model = MODELS.get(name)(**config_kwargs(name, input_shape))
    assert_trains(model, input_shape)


def test_mlp_takes_flat_features_and_its_options():
    model = MLP([20], 3, hidden_sizes=[16, 8], activation="leaky_relu", batch_norm=True, dropout=0.2)
    kinds = [type(layer) for layer in model.hidden]
    assert kinds.count(nn.BatchNorm1d) == 2 and kinds.count(nn.Dropout) == 2
    assert kinds.count(nn.LeakyReLU) == 2
    assert_trains(model, [20], num_outputs=3)
    assert_trains(MLP([20], 1, hidden_sizes=[]), [20], num_outputs=1)


@pytest.mark.parametrize("scheme", ["default", "kaiming", "xavier", "orthogonal"])
def test_init_schemes_build_and_zero_biases(scheme):
    model = MLP([12], 2, hidden_sizes=[16], activation="tanh", init=scheme)
    assert_trains(model, [12], num_outputs=2)
    if scheme != "default":
        assert torch.all(model.head.bias == 0)


def test_unknown_activation_and_init_suggest_the_closest_name():
    with pytest.raises(DlxError, match=r"model.activation 'relu6x' is unknown. Did you mean 'relu6'\?"):
        MLP([4], 2, activation="relu6x")
    with pytest.raises(DlxError, match=r"model.init 'kaimin' is unknown. Did you mean 'kaiming'\?"):
        MLP([4], 2, init="kaimin")
    assert isinstance(MLP([4], 2, hidden_sizes=[3], activation="GELU", batch_norm=False).hidden[1], nn.GELU)


@pytest.mark.parametrize("size", [8, 9, 27, 28, 32])
def test_cnn_works_for_any_image_size(size):
    assert_trains(CNN([3, size, size], 10), [3, size, size])
    deep = CNN([1, size, size], 10, channels=[4, 4, 4, 4, 4, 4], pool="avg", hidden_size=8, dropout=0.1)
    assert_trains(deep, [1, size, size])


def test_cnn_expresses_a_lenet_style_network():
    model = CNN([1, 28, 28], 10, channels=[16, 32], pool="max", pooled_size=7, hidden_size=128)
    assert model.features(torch.zeros(1, 1, 28, 28)).shape == (1, 32, 7, 7)  # the adaptive pool is a no-op
    linears = [layer for layer in model.head if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(32 * 7 * 7, 128), (128, 10)]
    assert_trains(model, [1, 28, 28])
    assert model(torch.zeros(2, 1, 36, 36)).shape == (2, 10)  # other sizes still pool down to 7x7


def test_cnn_rejects_bad_values_with_a_fix():
    with pytest.raises(DlxError, match=r"Did you mean 'max'\?"):
        CNN([1, 8, 8], 2, pool="maxx")
    with pytest.raises(DlxError, match=r"\[channels, height, width\]"):
        CNN([64], 2)
    with pytest.raises(DlxError, match="model.dropout"):
        CNN([1, 8, 8], 2, dropout=1.5)


def test_resnet_cifar_style_keeps_small_images_large():
    model = build_resnet([3, 32, 32], 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    grey = build_resnet([1, 28, 28], 10)
    assert grey.conv1.in_channels == 1


def test_resnet_imagenet_style_and_bottleneck_depths():
    model = build_resnet([1, 64, 64], 5, depth=50, style="imagenet", zero_init_residual=True)
    assert model.conv1.kernel_size == (7, 7) and model.conv1.in_channels == 1
    assert model.fc.in_features == 2048 and len(model.layer3) == 6
    assert torch.all(model.layer1[0].bn3.weight == 0)
    assert_trains(model, [1, 64, 64], num_outputs=5, batch_size=2)


def test_resnet_rejects_unknown_depth_and_cifar_pretraining():
    with pytest.raises(DlxError, match="Choose one of: 18, 34, 50, 101, 152"):
        build_resnet([3, 32, 32], 10, depth=19)
    with pytest.raises(DlxError, match="model.style=imagenet"):
        build_resnet([3, 32, 32], 10, pretrained="DEFAULT")


def test_pretrained_names_resolve_to_torchvision_weights():
    from torchvision.models import ResNet18_Weights, ResNet50_Weights

    assert resolve_pretrained_weights(18, "DEFAULT") is ResNet18_Weights.IMAGENET1K_V1
    assert resolve_pretrained_weights(50, "IMAGENET1K_V1") is ResNet50_Weights.IMAGENET1K_V1
    assert resolve_pretrained_weights(50, "ResNet50_Weights.IMAGENET1K_V2") is ResNet50_Weights.IMAGENET1K_V2
    with pytest.raises(DlxError, match="Choose one of: IMAGENET1K_V1, DEFAULT"):
        resolve_pretrained_weights(18, "IMAGENET1K_V2")


def test_offline_pretrained_download_says_where_to_put_the_file(monkeypatch, tmp_path):
    from torchvision.models import ResNet18_Weights

    def unreachable(self, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", unreachable)
    with pytest.raises(DlxError) as error:
        build_resnet([3, 224, 224], 10, style="imagenet", pretrained="DEFAULT")
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in str(error.value)
    assert "model.pretrained=null" in str(error.value)


def test_pretrained_weights_load_and_adapt_to_grey_images(monkeypatch):
    from torchvision.models import ResNet18_Weights, resnet18

    torch.manual_seed(0)
    source = resnet18().state_dict()
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", lambda self, *args, **kwargs: source)
    model = build_resnet([1, 32, 32], 4, style="imagenet", pretrained="DEFAULT")
    assert torch.equal(model.layer2[0].conv1.weight, source["layer2.0.conv1.weight"])
    expected_stem = source["conv1.weight"].sum(dim=1, keepdim=True)
    assert torch.allclose(model.conv1.weight, expected_stem, atol=1e-6)
    assert model.fc.out_features == 4
    assert_trains(model, [1, 32, 32], num_outputs=4, batch_size=2)
