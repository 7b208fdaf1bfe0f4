"""Backward, gradient accumulation, unscale-then-clip, optimizer and scheduler steps.

A task's ``train_batch`` calls ``backward`` and ``step``; a task with several optimizers (a GAN)
passes the optimizer's index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dlx.engine.precision import Precision


@dataclass
class OptimizerSetup:
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch.optim.lr_scheduler object, or None
    interval: str  # "step", "epoch", or "validation" (ReduceLROnPlateau)


class Optimization:
    def __init__(
        self,
        setups: list[OptimizerSetup],
        precision: Precision,
        clip_value: float | None = None,
        clip_algorithm: str = "norm",
    ):
        self.setups = setups
        self.several_optimizers = len(setups) > 1  # decided once: begin_batch runs on every batch
        self.precision = precision
        self.clip_value = clip_value
        self.clip_algorithm = clip_algorithm
        self.window = 1  # batches whose gradients the next optimizer step averages
        self.at_boundary = True
        self.measure_grad_norm = False
        self.stepped = False
        self.grad_norm: torch.Tensor | None = None
        self.last_graph: torch.Tensor | None = None  # see backward
        self.autocast = precision.autocast  # the context a task's forward pass runs in
        self._by_hand: tuple[set[int], Callable[[list[torch.Tensor]], None]] | None = None  # see below

    def average_by_hand(
        self, parameters: list[torch.Tensor], average: Callable[[list[torch.Tensor]], None]
    ) -> None:
        """Several processes: ``average`` these parameters' gradients (modules a task holds beside its
        DDP-wrapped model) before the step of the optimizer that holds them."""
        self._by_hand = ({id(p) for p in parameters}, average)

    def begin_batch(self, window: int, at_boundary: bool, measure_grad_norm: bool) -> None:
        """Called by the trainer: the accumulation window's size (smaller at an epoch's end), whether
        this batch closes it, and whether its step will be logged."""
        if self.several_optimizers and self.at_boundary:
            # The last batch closed a window, so this one opens the next: no optimizer may add in a gradient
            # left over from another one's loss (a generator's loss reaches the discriminator's weights).
            for setup in self.setups:
                setup.optimizer.zero_grad(set_to_none=True)
        self.window = window
        self.at_boundary = at_boundary
        self.measure_grad_norm = measure_grad_norm
        self.stepped = False

    def backward(self, loss: torch.Tensor, index: int | None = None) -> None:
        """Gradients of ``loss`` for every parameter, or only for optimizer ``index``'s (with several
        optimizers, so that a generator's loss leaves no gradient on the discriminator's weights)."""
        if self.window > 1:
            loss = loss / self.window
        if self.precision.scaler is not None:
            loss = self.precision.scaler.scale(loss)
        # The last step's graph (its saved tensors already freed by its backward) lives through this step's
        # forward pass, so autograd reuses each parameter's gradient accumulator instead of building new
        # ones, and goes just before this backward: the lifetime of `loss` in a hand-written loop. Either
        # way differs on the tiny MLP's step (scripts/bench, in lockstep): freed after its own backward,
        # 0.2-0.4% slower; kept through this backward too, 0.6% slower.
        self.last_graph = None
        if index is None:
            loss.backward()
        else:
            optimizer = self.setups[index].optimizer
            trained = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
            loss.backward(inputs=trained)
        self.last_graph = loss

    def step(self, index: int = 0) -> bool:
        """Step optimizer ``index`` if this batch closes an accumulation window; return whether it did."""
        if not self.at_boundary:
            return False
        setup = self.setups[index]
        optimizer, scaler = setup.optimizer, self.precision.scaler
        if self._by_hand is not None:
            ids, average = self._by_hand
            if params := [p for group in optimizer.param_groups for p in group["params"] if id(p) in ids]:
                average(params)
        if scaler is not None:
            scaler.unscale_(optimizer)  # clipping must see true gradient sizes
        if self.clip_value is not None or self.measure_grad_norm:
            parameters = [
                p for group in optimizer.param_groups for p in group["params"] if p.grad is not None
            ]
            if self.clip_value is not None and self.clip_algorithm == "norm":
                self.grad_norm = torch.nn.utils.clip_grad_norm_(parameters, self.clip_value)
            else:
                if self.clip_value is not None:
                    torch.nn.utils.clip_grad_value_(parameters, self.clip_value)
                if self.measure_grad_norm and parameters:
                    grads = [p.grad for p in parameters]
                    self.grad_norm = torch.nn.utils.get_total_norm(grads, foreach=_foreach_or_default(grads))
        if scaler is not None:
            scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if setup.scheduler is not None and setup.interval == "step":
            setup.scheduler.step()
        self.stepped = True
        return True

    def end_batch(self) -> None:
        if self.stepped and self.precision.scaler is not None:
            self.precision.scaler.update()

    def end_epoch(self) -> None:
        for setup in self.setups:
            if setup.scheduler is not None and setup.interval == "epoch":
                setup.scheduler.step()

    def after_validation(self, metric: float | None) -> None:
        for setup in self.setups:
            if setup.scheduler is not None and setup.interval == "validation" and metric is not None:
                if math.isfinite(metric):
                    setup.scheduler.step(metric)

    def learning_rate(self) -> float:
        return float(self.setups[0].optimizer.param_groups[0]["lr"])

    # -- checkpoint state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": [s.optimizer.state_dict() for s in self.setups],
            "schedulers": [
                s.scheduler.state_dict() if s.scheduler is not None else None for s in self.setups
            ],
            "scaler": self.precision.scaler.state_dict() if self.precision.scaler is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for setup, optimizer_state, scheduler_state in zip(
            self.setups, state["optimizers"], state["schedulers"], strict=True
        ):
            setup.optimizer.load_state_dict(optimizer_state)
            if setup.scheduler is not None and scheduler_state is not None:
                setup.scheduler.load_state_dict(scheduler_state)
        if self.precision.scaler is not None and state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])


def _foreach_or_default(tensors: list[torch.Tensor]) -> bool | None:
    """True (one norm kernel for all tensors, not one each) for plain tensors on the CPU or a CUDA
    device, which PyTorch's default leaves out on the CPU; otherwise PyTorch's default (FSDP's shards)."""
    plain = all(type(t) is torch.Tensor and t.device.type in ("cpu", "cuda") for t in tensors)
    return True if plain else None
