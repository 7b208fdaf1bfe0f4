"""A task with two optimizers, named by `task._target_=tests.tasks.critic_task.CriticTask`: a classifier and
a critic the task owns, whose loss reaches the critic through the classifier's outputs as a GAN's generator
loss reaches its discriminator."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlx.tasks.classification import ClassificationTask

# (largest difference between the critic's gradient at its step and its own loss's gradient), per step
CRITIC_GRADIENT_ERRORS: list[float] = []


class CriticTask(ClassificationTask):
    def __init__(
        self, model: nn.Module, num_classes: int, label_smoothing: float = 0.0, critic_first: bool = True
    ):
        super().__init__(model, num_classes=num_classes, label_smoothing=label_smoothing)
        self.critic = nn.Linear(num_classes, 1)
        self.critic_first = critic_first

    def configure_optimizers(self, build_optimizer, attach_scheduler):
        critic = torch.optim.SGD(self.critic.parameters(), lr=0.05, momentum=0.9)
        return [attach_scheduler(build_optimizer(self.model)), attach_scheduler(critic)]

    def train_batch(self, batch, optimization):
        inputs, targets = batch
        logits = self.model(inputs)
        critic_loss = self.critic(logits.detach().softmax(-1)).square().mean()
        own_gradients = torch.autograd.grad(critic_loss, list(self.critic.parameters()), retain_graph=True)
        if self.critic_first:  # plain backward: the previous batch's model loss reached the critic
            optimization.backward(critic_loss)
            self._record(own_gradients)
            optimization.step(1)
            model_loss = self._model_loss(logits, targets)
            optimization.backward(model_loss)
            optimization.step(0)
        else:  # this batch's model loss reaches the critic before the critic's own backward
            model_loss = self._model_loss(logits, targets)
            optimization.backward(model_loss, 0)
            optimization.step(0)
            optimization.backward(critic_loss, 1)
            self._record(own_gradients)
            optimization.step(1)
        return model_loss.detach()

    def _model_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets) + self.critic(logits.softmax(-1)).mean()

    def _record(self, own_gradients: tuple[torch.Tensor, ...]) -> None:
        errors = [
            (p.grad - g).abs().max() for p, g in zip(self.critic.parameters(), own_gradients, strict=True)
        ]
        CRITIC_GRADIENT_ERRORS.append(float(max(errors)))
