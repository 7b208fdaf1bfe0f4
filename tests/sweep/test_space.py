import pytest

from dlx.errors import DlxError
from dlx.sweep.space import (
    grid_points,
    overrides_for,
    parse_search_space,
    split_sweep_arguments,
    uses_log_axis,
)


def test_discrete_values_form_a_grid_over_the_product_and_fixed_overrides_pass_through():
    base, parameters = parse_search_space(
        [
            "model=cnn",
            "optimizer.lr=1e-4,1e-3",
            "optimizer.weight_decay=choice(0, 0.01)",
            "+model.dropout=0.1",
        ],
        [],
    )
    assert base == ["model=cnn", "+model.dropout=0.1"]
    assert [p.name for p in parameters] == ["optimizer.lr", "optimizer.weight_decay"]
    points = grid_points(parameters)
    assert len(points) == 4
    assert overrides_for(parameters, points[-1]) == ["optimizer.lr=0.001", "optimizer.weight_decay=0.01"]


def test_hydra_sweep_functions_become_the_right_distributions():
    _, (lr, epochs, batch, model) = parse_search_space(
        [
            "optimizer.lr=tag(log, interval(1e-5, 1e-1))",
            "trainer.max_epochs=tag(int, interval(1, 4))",
            "data.batch_size=range(16, 65, 16)",
            "model=glob(*, exclude=[airbench, gpt, hf, resnet, rnn, transformer])",
        ],
        [],
    )
    assert (lr.low, lr.high, lr.log, lr.is_discrete) == (1e-5, 1e-1, True, False)
    assert lr.override(0.001) == "optimizer.lr=0.001"
    assert epochs.integer and epochs.override(3) == "trainer.max_epochs=3"
    assert batch.choices == [16, 32, 48, 64]
    assert model.choices == ["cnn", "mlp"]


def test_values_that_are_not_plain_keep_the_text_hydra_needs():
    _, (channels, text) = parse_search_space(["model.channels=[16,32],[32,64]", 'experiment="a b",c'], [])
    assert channels.override("[32,64]") == "model.channels=[32,64]"
    assert text.override("a b") == 'experiment="a b"'


def test_sweep_settings_and_named_space_are_taken_out_before_hydra():
    rest, name, settings = split_sweep_arguments(["sweep=lr_range", "sweep.trials=3", "model=cnn"])
    assert (rest, name, settings) == (["model=cnn"], "lr_range", ["trials=3"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=interval(1)", "missing a required argument: 'end'"),
        ("optimizer.lr=interval(a, b)", "Cannot parse"),
        ("optimizer.lr=interval(1e-1, 1e-5)", "needs low < high"),
        ("optimizer.lr=tag(log, interval(0, 1))", "positive lower bound"),
        ("data.batch_size=range(5, 5)", "has no values"),
        ("optimizer=glob(zz*)", "has no values"),
        ("optimizer.lr=glob(*)", "glob() picks options of a config group"),
        ("optimizer.lr=1e-3,1e-3", "names a value twice"),
        (
            "data.batch_size=tag(int, interval(64, 16))",
            "Type e.g. `'data.batch_size=tag(int, interval(16, 64))'`",
        ),
    ],
)
def test_malformed_sweeps_are_refused_with_the_reason(override, message):
    with pytest.raises(DlxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_search_space([override], [])


def test_log_axis_for_log_tagged_or_geometrically_spaced_values():
    _, (lr, wd) = parse_search_space(
        ["optimizer.lr=1e-4,3e-4,1e-3,3e-3", "optimizer.weight_decay=0.1,0.2,0.3"], []
    )
    assert uses_log_axis(lr, lr.choices)
    assert not uses_log_axis(wd, wd.choices)
    _, (tagged,) = parse_search_space(["optimizer.lr=tag(log, interval(0.1, 0.2))"], [])
    assert uses_log_axis(tagged, [0.1, 0.15])
