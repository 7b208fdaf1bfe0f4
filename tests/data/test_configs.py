"""Every configs/data/*.yaml matches its registry entry: its keys are the constructor's parameters."""

import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlx.config.schema import DATA_BUILDER_KEYS
from dlx.registry import DATA

CONFIG_FOLDER = Path(__file__).resolve().parents[2] / "configs" / "data"
BUILDER_KEYS = {"name", *DATA_BUILDER_KEYS}
REQUIRED_FROM_USER = {  # `???` in the config
    "tabular": {"path": "table.csv", "target": "label"},
    "sst2": {"root": "SST-2"},
    "char_lm": {"path": "input.txt"},
}


def resolved_config(name: str) -> dict:
    data = OmegaConf.load(CONFIG_FOLDER / f"{name}.yaml")
    data.merge_with(REQUIRED_FROM_USER.get(name, {}))
    root = OmegaConf.create({"seed": 7, "task": {"name": "classification"}, "data": data})
    return OmegaConf.to_container(root, resolve=True)["data"]


def test_every_registered_data_set_has_a_config():
    assert sorted(path.stem for path in CONFIG_FOLDER.glob("*.yaml")) == DATA.names()


@pytest.mark.parametrize("name", DATA.names())
def test_config_keys_are_constructor_parameters(name):
    config = resolved_config(name)
    assert config["name"] == name and config["seed"] == 7
    data_class = DATA.get(name)
    parameters = inspect.signature(data_class).parameters
    arguments = {key: value for key, value in config.items() if key not in BUILDER_KEYS}
    assert set(arguments) <= set(parameters), f"{name}.yaml has keys its class does not take"
    for key, parameter in parameters.items():
        assert parameter.annotation is not inspect.Parameter.empty, (
            f"{data_class.__name__}({key}) has no type"
        )
    data_class(**arguments)  # builds without touching the data


@pytest.mark.parametrize("name", ["digits", "xor", "spirals"])
def test_config_metadata_matches_the_loaded_data(name):
    config = resolved_config(name)
    arguments = {key: value for key, value in config.items() if key not in BUILDER_KEYS}
    metadata = DATA.get(name)(**arguments).metadata()
    assert config["input_shape"] == metadata.input_shape
    assert config["num_classes"] == metadata.num_classes and config["num_outputs"] == metadata.num_outputs
    assert config["class_names"] in (None, metadata.class_names)


def test_vision_class_names_match_torchvision():
    from torchvision.datasets import FashionMNIST

    from tests.datasets_on_disk import CIFAR10_CLASSES

    assert resolved_config("fashion_mnist")["class_names"] == FashionMNIST.classes
    assert resolved_config("cifar10")["class_names"] == CIFAR10_CLASSES
    assert resolved_config("mnist")["class_names"] == [str(digit) for digit in range(10)]
