import inspect
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dlx.errors import DlxError
from dlx.optim.optimizers import adamw, build_param_groups, sgd
from dlx.registry import OPTIMIZERS

OPTIMIZER_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "optimizer"


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 4, 3),  # 0
            nn.BatchNorm2d(4),  # 1
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 8),  # 4
            nn.LayerNorm(8),  # 5
        )
        self.head = nn.Linear(8, 3)

    def forward(self, inputs):
        return self.head(self.backbone(inputs))


def config_kwargs(name: str) -> dict:
    kwargs = OmegaConf.to_container(OmegaConf.load(OPTIMIZER_CONFIGS / f"{name}.yaml"))
    kwargs.pop("name")
    return kwargs


def group_of(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, dict]:
    """Parameter name -> the param group holding it."""
    by_id = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters() if id(p) in by_id}


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_config_lists_every_parameter_with_its_default(name):
    config = config_kwargs(name)
    parameters = inspect.signature(OPTIMIZERS.get(name)).parameters
    defaults = {key: p.default for key, p in parameters.items() if p.default is not inspect.Parameter.empty}
    assert config == defaults
    assert set(parameters) - set(defaults) == {"model"}


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_from_its_config_and_lowers_the_loss(name):
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = OPTIMIZERS.get(name)(model, **config_kwargs(name))
    inputs, targets = torch.randn(16, 1, 6, 6), torch.randn(16, 3)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_no_decay_groups_hold_exactly_the_biases_and_norm_parameters():
    model = TinyNet()
    optimizer = adamw(model, weight_decay=0.1)
    groups = group_of(optimizer, model)
    no_decay = {name for name, group in groups.items() if group["weight_decay"] == 0.0}
    assert no_decay == {
        "backbone.0.bias",
        "backbone.1.weight",
        "backbone.1.bias",
        "backbone.4.bias",
        "backbone.5.weight",
        "backbone.5.bias",
        "head.bias",
    }
    assert {name for name, group in groups.items() if group["weight_decay"] == 0.1} == {
        "backbone.0.weight",
        "backbone.4.weight",
        "head.weight",
    }


def test_norm_layers_outside_torch_are_found_by_class_name():
    class ChannelScaleNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, 8))  # 2-D, so only the class name gives it away

    model = nn.Sequential(nn.Linear(4, 8), ChannelScaleNorm())
    groups = build_param_groups(model, lr=0.1, weight_decay=0.1)
    decayed = [group for group in groups if group["weight_decay"] > 0]
    assert len(decayed) == 1 and decayed[0]["params"] == [model[0].weight]


def test_decay_bias_and_norm_puts_everything_under_weight_decay():
    model = TinyNet()
    optimizer = sgd(model, weight_decay=0.01, decay_bias_and_norm=True)
    assert len(optimizer.param_groups) == 1
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_lr_multipliers_use_the_longest_matching_prefix():
    model = TinyNet()
    optimizer = sgd(model, lr=0.1, lr_multipliers={"backbone": 0.1, "backbone.4": 0.5})
    groups = group_of(optimizer, model)
    lrs = {name: group["lr"] for name, group in groups.items()}
    assert lrs["backbone.0.weight"] == pytest.approx(0.01)
    assert lrs["backbone.5.bias"] == pytest.approx(0.01)
    assert lrs["backbone.4.weight"] == pytest.approx(0.05)
    assert lrs["backbone.4.bias"] == pytest.approx(0.05)
    assert lrs["head.weight"] == pytest.approx(0.1)
    assert groups["backbone.4.weight"]["lr_multiplier"] == 0.5
    assert groups["head.bias"]["lr_multiplier"] == 1.0


def test_lr_multipliers_name_the_modules_inside_ddp_and_compile_wrappers(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = TinyNet()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wrapped = torch.compile(DistributedDataParallel(model))
        optimizer = sgd(wrapped, lr=0.1, lr_multipliers={"backbone": 0.1})
    finally:
        dist.destroy_process_group()
    lrs = {name: group["lr"] for name, group in group_of(optimizer, model).items()}
    assert lrs["backbone.0.weight"] == pytest.approx(0.01) and lrs["head.weight"] == pytest.approx(0.1)


def test_a_prefix_that_matches_nothing_lists_the_top_level_modules():
    with pytest.raises(
        DlxError, match=r"'backbon' matches no parameter.*Did you mean 'backbone'\?.*backbone, head"
    ):
        sgd(TinyNet(), lr_multipliers={"backbon": 0.1})
    with pytest.raises(DlxError, match="lr_multipliers"):
        sgd(TinyNet(), lr_multipliers={"head": -1.0})


def test_frozen_parameters_are_left_out():
    model = TinyNet()
    model.backbone.requires_grad_(False)
    optimizer = adamw(model)
    assert set(group_of(optimizer, model)) == {"head.weight", "head.bias"}


def test_bad_values_say_what_to_type():
    with pytest.raises(DlxError, match=r"lr must be a positive number, got -0.1. Type e.g. `optimizer.lr="):
        adamw(TinyNet(), lr=-0.1)
    with pytest.raises(DlxError, match="optimizer.betas"):
        adamw(TinyNet(), betas=[0.9])
    with pytest.raises(DlxError, match="optimizer.nesterov"):
        sgd(TinyNet(), momentum=0.0, nesterov=True)


@pytest.mark.parametrize("build", [sgd, adamw])
def test_plain_cpu_parameters_get_the_fused_kernel_unless_it_is_turned_off(build):
    assert build(TinyNet()).defaults["fused"] is True
    assert not build(TinyNet(), fused=False).defaults["fused"]
