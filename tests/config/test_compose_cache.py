"""The compose cache returns exactly what Hydra composes, and never a stale result."""

import os
import time

import pytest
from omegaconf import OmegaConf

from dlx.config import compose, compose_cache
from dlx.config.compose import compose_config
from dlx.config.paths import list_recipes

CASES = [[], ["model=cnn", "data=mnist", "optimizer.lr=0.01"], ["data=tabular"]] + [
    [f"recipe={r}"] for r in sorted(list_recipes())
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "compose"


@pytest.mark.parametrize("overrides", CASES, ids=[" ".join(c) or "defaults" for c in CASES])
def test_a_cached_config_equals_hydras(overrides, cache):
    first = compose_config(overrides)
    assert len(list(cache.glob("*.json"))) == 1
    second = compose_config(overrides)
    assert OmegaConf.to_container(second) == OmegaConf.to_container(first)
    assert OmegaConf.is_struct(second) == OmegaConf.is_struct(first)
    assert OmegaConf.missing_keys(second) == OmegaConf.missing_keys(first)  # data=tabular: path, target


def test_hits_skip_hydra_and_an_edited_config_file_is_a_miss(cache, tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    (folder / "model").mkdir(parents=True)
    option = folder / "model" / "wide.yaml"
    option.write_text(
        "name: mlp\ninput_shape: ${data.input_shape}\nnum_outputs: ${data.num_outputs}\nhidden_sizes: [512]\n"
    )
    assert compose_config(["model=wide"], [folder]).model.hidden_sizes == [512]

    def no_hydra(*args):
        raise AssertionError("composed again")

    monkeypatch.setattr(compose, "_compose_with_hydra", no_hydra)
    assert compose_config(["model=wide"], [folder]).model.hidden_sizes == [512]  # a hit
    monkeypatch.undo()
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path / "cache"))
    option.write_text(option.read_text().replace("[512]", "[64]"))
    os.utime(option, ns=(time.time_ns(), time.time_ns()))
    assert compose_config(["model=wide"], [folder]).model.hidden_sizes == [64]


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", "off")
    compose_config([])
    assert compose_cache.cache_folder() is None


def test_a_damaged_entry_is_a_miss(cache):
    compose_config([])
    (entry,) = cache.glob("*.json")
    entry.write_text("{{{ not json")
    assert compose_config([]).model.name == "mlp"
