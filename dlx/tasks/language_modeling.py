"""Language modelling: every position predicts the next token; cross-entropy and perplexity."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlx.metrics import Mean
from dlx.tasks.base import Batch, Task


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits [batch, time, vocab] against the next tokens [batch, time]."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


class LanguageModelingTask(Task):
    """Batches are (tokens, the same tokens shifted by one); the model returns logits for every position.

    ``perplexity`` is exp of the mean per-token loss over the whole split (not a mean of per-batch
    perplexities), the number language-model papers report.
    """

    reads_targets = "next_tokens"

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.loss_mean = Mean()

    def training_step(self, batch: Batch) -> torch.Tensor:
        tokens, targets = batch
        return next_token_loss(self.model(tokens), targets)

    def validation_step(self, batch: Batch) -> None:
        tokens, targets = batch
        loss = next_token_loss(self.model(tokens), targets)
        self.loss_mean.update(loss, weight=targets.numel())

    def metric_modes(self) -> dict[str, str]:
        return {"loss": "min", "perplexity": "min"}

    def compute_metrics(self) -> dict[str, float]:
        loss = self.loss_mean.compute()
        self.loss_mean.reset()
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}  # exp overflows a float past ~709
