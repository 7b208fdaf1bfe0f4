import pytest
from omegaconf import OmegaConf

from dlx.config.compose import compose_config
from dlx.config.paths import configs_dir, list_recipes
from dlx.config.validate import validate_config
from dlx.errors import DlxError

GROUP_OPTIONS = [
    (group.name, path.stem)
    for group in sorted(configs_dir().iterdir())
    # sweep: search spaces for `dlx sweep` (tests/sweep plans each); tuned: chosen by the other groups
    if group.is_dir() and group.name not in ("sweep", "tuned")
    for path in sorted(group.glob("*.yaml"))
]
DATA_NEEDS = {
    "tabular": ["data.path=table.csv", "data.target=y"],
    "sst2": ["data.root=SST-2"],
    "char_lm": ["data.path=input.txt"],
}


@pytest.mark.parametrize("group, option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_config_option_composes_and_validates(group, option):
    extra = DATA_NEEDS.get(option, []) if group == "data" else []
    if group == "task" and option == "regression":
        extra = ["data=tabular", "data.task_type=regression", *DATA_NEEDS["tabular"]]
    cfg = validate_config(compose_config([f"{group}={option}", *extra]))
    assert cfg[group].get("name", option) == option


TUNED = sorted(path.stem for path in (configs_dir() / "tuned").glob("*.yaml"))


def _options(group: str) -> list[str]:
    return [option for g, option in GROUP_OPTIONS if g == group]


@pytest.mark.parametrize("name", TUNED)
def test_tuned_settings_apply_to_their_combination_only(name):
    """tuned/<data>_<model>_<task>.yaml names options that exist, and applies when all three are chosen."""
    combinations = [
        [f"data={data}", f"model={model}", f"task={task}"]
        for data in _options("data")
        for model in _options("model")
        for task in _options("task")
        if f"{data}_{model}_{task}" == name
    ]
    assert len(combinations) == 1, f"{name} should be <data>_<model>_<task> of existing options"
    settings = OmegaConf.to_container(OmegaConf.load(configs_dir() / "tuned" / f"{name}.yaml"))
    tuned = validate_config(compose_config(combinations[0]))
    other = validate_config(
        compose_config([*combinations[0], "model=cnn" if "model=cnn" not in combinations[0] else "model=mlp"])
    )
    for group, values in settings.items():
        for key, value in values.items():
            assert tuned[group][key] == value
    assert any(
        other[group][key] != value for group, values in settings.items() for key, value in values.items()
    )


def test_the_default_run_is_its_recipe():
    default = OmegaConf.to_container(validate_config(compose_config([])), resolve=True)
    recipe = OmegaConf.to_container(validate_config(compose_config(["recipe=digits_mlp"])), resolve=True)
    assert default == recipe


@pytest.mark.parametrize("recipe", sorted(list_recipes()))
def test_every_recipe_composes_validates_and_states_its_result(recipe):
    cfg = validate_config(compose_config([f"recipe={recipe}"]))
    assert cfg.experiment == recipe
    header = list_recipes()[recipe].read_text().splitlines()[:4]
    assert any(line.startswith("# Result") for line in header), "each recipe states its measured result"


def test_recipe_values_and_command_line_overrides_both_apply():
    cfg = compose_config(["recipe=mnist_cnn", "trainer.max_epochs=1", "+model.extra_note=hi"])
    assert cfg.model.name == "cnn" and cfg.model.channels == [16, 32]
    assert cfg.trainer.max_epochs == 1 and cfg.model.extra_note == "hi"


def test_override_grammar():
    cfg = compose_config(["~trainer.early_stopping", "++seed=7", "trainer.max_steps=null", "model=cnn"])
    assert "early_stopping" not in cfg.trainer and cfg.seed == 7 and cfg.trainer.max_steps is None
    cfg = compose_config(["model=cnn", "data=cifar10"])
    assert OmegaConf.to_container(cfg.model, resolve=True)["input_shape"] == [3, 32, 32]
    assert cfg.task.num_classes == 10  # ${data.num_classes}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.max_epoch=3"], r"Did you mean 'trainer.max_epochs'\? Type `trainer.max_epochs=3`.$"),
        (["optimizer.lrr=0.1"], r"Did you mean 'optimizer.lr'\?.* goes in with `\+optimizer.lrr=0.1`"),
        (["model.widht=3"], r"Unknown key 'model.widht'. .*prefix it with `\+` \(`\+model.widht=...`\)"),
        (["model=cnnn"], "Did you mean 'cnn'"),
        (["recipe=mnist"], "Available:"),
        (["groupp=x"], "Unknown key 'groupp'"),
        (["model.channels=[16,"], "Cannot parse an override"),
    ],
)
def test_composition_errors_name_the_fix(overrides, message):
    with pytest.raises(DlxError, match=message):
        compose_config(overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+trainer.max_epoch=3"], "Unknown key 'trainer.max_epoch'. Did you mean 'max_epochs'"),
        (["optimizer.lr=abc"], "expected float"),
        (["trainer.max_epochs=2.5"], "expected int"),
        (["model.hidden_sizes=[a,b]"], r"expected list\[int\], got a list of str. Type e.g. `model.hidden"),
        (["+model.widht=3"], "Valid keys for this model"),
        (["trainer.mode=maximum"], "trainer.mode=maximum is not one of min, max"),
        (["trainer.accumulate_grad_batches=0"], "at least 1"),
        (["+foo=1"], "Unknown top-level key 'foo'"),
        (["data=tabular"], "'data.path' must be set"),
    ],
)
def test_validation_names_the_key_and_the_fix(overrides, message):
    with pytest.raises(DlxError, match=message):
        validate_config(compose_config(overrides))


def test_user_config_dir_adds_options_and_recipes(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "wide_mlp.yaml").write_text(
        "name: mlp\ninput_shape: ${data.input_shape}\nnum_outputs: ${data.num_outputs}\n"
        "hidden_sizes: [1024]\n"
    )
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "my_digits.yaml").write_text(
        "# @package _global_\n# Result: mine\ndefaults:\n  - override /model: wide_mlp\nexperiment: mine\n"
    )
    cfg = validate_config(compose_config(["recipe=my_digits"], [tmp_path]))
    assert cfg.experiment == "mine" and cfg.model.hidden_sizes == [1024]
    assert "my_digits" in list_recipes([tmp_path])


def test_a_user_option_with_only_a_target_is_named_after_its_class(tmp_path):
    # As the README shows it: no `name:`, yet the experiment folder is named ${data.name}_${model.name}.
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mynet.yaml").write_text(
        "_target_: dlx.models.mlp.MLP\ninput_shape: ${data.input_shape}\n"
        "num_outputs: ${data.num_outputs}\nhidden_sizes: [32]\n"
    )
    cfg = validate_config(compose_config(["model=mynet"], [tmp_path]))
    assert cfg.model.name == "mlp" and cfg.experiment == "digits_mlp"


def test_plus_on_a_key_the_option_already_has_sets_it():
    cfg = validate_config(compose_config(["recipe=mnist_cnn", "+model.dropout=0.2"]))
    assert cfg.model.dropout == 0.2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.early_stopping.patience=0"], "at least 1 validation check"),
        (["trainer.overfit_batches=-1"], "overfit_batches must be 0"),
        (["trainer.max_time=abc"], "is not a duration"),
        (["trainer.max_time=0"], "max_time must be positive"),
        (["trainer.fast_dev_run=true", "trainer.overfit_batches=2"], "do not go together"),
    ],
)
def test_trainer_values_that_cannot_work(overrides, message):
    with pytest.raises(DlxError, match=message):
        validate_config(compose_config(overrides))
