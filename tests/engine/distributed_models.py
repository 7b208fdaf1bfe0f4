"""Models for the multi-process tests, named by `model._target_=tests.engine.distributed_models.<Name>`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dlx.models.mlp import MLP
from tests.tasks.critic_task import CriticTask


def dump_on_eval(module: torch.nn.Module, name: str, state: dict[str, torch.Tensor]) -> None:
    """Save ``state`` as `$DUMP_DIR/<name>rank<R>-<n>.pt`, n counting ``module``'s entries into eval mode."""
    if os.environ.get("DUMP_DIR"):
        module.validations = getattr(module, "validations", 0) + 1
        path = (
            Path(os.environ["DUMP_DIR"]) / f"{name}rank{os.environ.get('RANK', '0')}-{module.validations}.pt"
        )
        torch.save({key: value.detach().clone() for key, value in state.items()}, path)


class ParameterDumpingMLP(MLP):
    """Saves its parameters as each validation begins, one file per rank: `$DUMP_DIR/rank<R>-<n>.pt`."""

    def train(self, mode: bool = True) -> ParameterDumpingMLP:
        if not mode:
            dump_on_eval(self, "", self.state_dict())
        return super().train(mode)


class CrashingMLP(MLP):
    """Raises in rank 1's training forward number $CRASH_AT (default 3); trains normally on one process."""

    calls = 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.training and os.environ.get("RANK") == "1":
            type(self).calls += 1
            if type(self).calls == int(os.environ.get("CRASH_AT", "3")):
                raise ValueError("rank 1 crashed on purpose")
        return super().forward(inputs)


class CriticDumpingTask(CriticTask):
    """The two-optimizer CriticTask that saves its critic as each validation begins, one file per rank:
    `$DUMP_DIR/critic-rank<R>-<n>.pt`."""

    def train(self, mode: bool = True) -> CriticDumpingTask:
        if not mode:
            dump_on_eval(self, "critic-", self.own_state_dict())
        return super().train(mode)
