import inspect
import io
import math
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dlx.errors import DlxError
from dlx.optim.optimizers import sgd
from dlx.optim.schedulers import ScheduleContext, warmup_cosine
from dlx.registry import SCHEDULERS

SCHEDULER_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "scheduler"
CONTEXT = ScheduleContext(total_steps=100, steps_per_epoch=10, max_epochs=10)
BASE_LR = 0.1
# A metric that improves, then stalls, so plateau's reductions happen within the run.
METRICS = [1.0, 0.9, 0.8] + [0.8] * 200


def config_kwargs(name: str, **overrides) -> dict:
    kwargs = OmegaConf.to_container(OmegaConf.load(SCHEDULER_CONFIGS / f"{name}.yaml"))
    kwargs.pop("name")
    return {**kwargs, **overrides}


def build(name: str, context: ScheduleContext = CONTEXT, **overrides):
    """A two-group SGD (the first at a tenth of the lr) and the named scheduler from its config."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = sgd(model, lr=BASE_LR, lr_multipliers={"0": 0.1}, decay_bias_and_norm=True)
    scheduler = SCHEDULERS.get(name)(optimizer, context, **config_kwargs(name, **overrides))
    return optimizer, scheduler


def advance(name: str, optimizer, scheduler, calls: range) -> list[list[float]]:
    """Step ``scheduler`` once per call as the trainer would; return every group's lr before each call."""
    lrs = []
    for call in calls:
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        if name == "plateau":
            scheduler.step(METRICS[call])
        else:
            scheduler.step()
    return lrs


def horizon(name: str) -> int:
    return CONTEXT.horizon(config_kwargs(name)["interval"])


def curve(name: str, **overrides) -> list[float]:
    """The full-lr group's lr before each step of the run, and after the last one."""
    optimizer, scheduler = build(name, **overrides)
    lrs = [lr for _, lr in advance(name, optimizer, scheduler, range(horizon(name)))]
    return lrs + [optimizer.param_groups[1]["lr"]]


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_config_lists_every_parameter_with_its_default(name):
    config = config_kwargs(name)
    parameters = inspect.signature(SCHEDULERS.get(name)).parameters
    defaults = {key: p.default for key, p in parameters.items() if p.default is not inspect.Parameter.empty}
    assert config == defaults
    assert set(parameters) - set(defaults) == {"optimizer", "context"}
    assert config["interval"] in ("step", "epoch")


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_state_dict_loads_weights_only_and_resumes_the_same_lrs(name):
    steps = range(horizon(name))
    middle = len(steps) // 2
    optimizer, scheduler = build(name)
    uninterrupted = advance(name, optimizer, scheduler, steps)

    optimizer, scheduler = build(name)
    resumed = advance(name, optimizer, scheduler, steps[:middle])
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    optimizer, scheduler = build(name)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    resumed += advance(name, optimizer, scheduler, steps[middle:])

    assert resumed == uninterrupted
    for scaled, full in uninterrupted:
        assert math.isfinite(full) and scaled == pytest.approx(0.1 * full, rel=1e-6, abs=1e-15)


def test_constant_exponential_step_and_multistep_curves():
    assert curve("constant") == pytest.approx([BASE_LR] * 11)
    assert curve("exponential") == pytest.approx([BASE_LR * 0.95**epoch for epoch in range(11)])
    # step_size null: a third of the 10 epochs
    assert curve("step")[:7] == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001])
    # milestones null: at 50% and 75% of the run
    assert curve("multistep") == pytest.approx([0.1] * 5 + [0.01] * 2 + [0.001] * 4)
    assert curve("multistep", milestones=[2])[1:4] == pytest.approx([0.1, 0.01, 0.01])


def test_cosine_reaches_half_way_and_eta_min():
    lrs = curve("cosine", eta_min=0.001)
    assert len(lrs) == 101
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[50] == pytest.approx((0.1 + 0.001) / 2)
    assert lrs[100] == pytest.approx(0.001)
    assert curve("cosine", interval="epoch")[5] == pytest.approx(0.05)


def test_warmup_cosine_starts_low_peaks_after_warmup_and_ends_at_eta_min():
    lrs = curve("warmup_cosine", warmup_steps=10, start_factor=0.01, eta_min=1e-4)
    assert lrs[0] == pytest.approx(0.001)
    assert all(a < b for a, b in pairwise(lrs[:11]))
    assert lrs[10] == pytest.approx(0.1) and max(lrs) == pytest.approx(0.1)
    assert all(a >= b for a, b in pairwise(lrs[10:]))
    assert lrs[100] == pytest.approx(1e-4)
    # warmup_fraction 0.05 of 100 steps is 5 steps
    assert max(range(101), key=curve("warmup_cosine").__getitem__) == 5
    # ...and over 10 epochs it rounds to 0, yet a requested fraction always warms up for at least one
    epoch_lrs = curve("warmup_cosine", interval="epoch")
    assert epoch_lrs[0] == pytest.approx(0.001) and epoch_lrs[1] == pytest.approx(0.1)


def test_onecycle_peaks_at_max_lr_at_pct_start():
    lrs = curve("onecycle", max_lr=0.5, pct_start=0.3)
    assert lrs[0] == pytest.approx(0.5 / 25)
    assert max(range(100), key=lrs.__getitem__) == 29
    assert lrs[29] == pytest.approx(0.5)
    assert lrs[99] == pytest.approx(0.5 / 25 / 1e4)
    assert curve("onecycle")[29] == pytest.approx(BASE_LR)  # max_lr null: the optimizer's lr


def test_plateau_reduces_after_patience_and_follows_the_monitor_mode():
    def lrs_for(mode, metrics, context=CONTEXT):
        optimizer, scheduler = build("plateau", context, mode=mode, patience=2)
        for metric in metrics:
            scheduler.step(metric)
        return optimizer.param_groups[1]["lr"]

    assert lrs_for("min", [1.0, 1.0, 1.0]) == pytest.approx(0.1)
    assert lrs_for("min", [1.0, 1.0, 1.0, 1.0]) == pytest.approx(0.01)
    rising = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert lrs_for(None, rising) == pytest.approx(0.01)  # the trainer monitors a loss: rising is worse
    accuracy_run = ScheduleContext(total_steps=100, steps_per_epoch=10, max_epochs=10, monitor_mode="max")
    assert lrs_for(None, rising, accuracy_run) == pytest.approx(0.1)


def test_bad_values_say_what_to_type():
    optimizer, _ = build("constant")
    with pytest.raises(DlxError, match=r"scheduler.interval 'epochs' is unknown. Did you mean 'epoch'\?"):
        SCHEDULERS.get("cosine")(optimizer, CONTEXT, interval="epochs")
    with pytest.raises(DlxError, match=r"scheduler.warmup_steps must be in \[0, 100\).*warmup_steps=10`"):
        warmup_cosine(optimizer, CONTEXT, warmup_steps=100)  # the example fits this run
    with pytest.raises(DlxError, match="scheduler.milestones"):
        SCHEDULERS.get("multistep")(optimizer, CONTEXT, milestones=[6, 3])
    with pytest.raises(DlxError, match="scheduler.pct_start"):
        SCHEDULERS.get("onecycle")(optimizer, CONTEXT, pct_start=1.5)
    with pytest.raises(DlxError, match="no steps to plan over"):
        SCHEDULERS.get("cosine")(optimizer, ScheduleContext(total_steps=0, steps_per_epoch=0, max_epochs=0))
