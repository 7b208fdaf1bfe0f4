import math

import pytest
import torch
from torch import nn

from dlx.tasks.language_modeling import LanguageModelingTask


class FixedLogits(nn.Module):
    """Returns the same next-token distribution at every position."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*tokens.shape, -1)


def test_a_uniform_model_has_loss_log_vocab_and_perplexity_vocab():
    task = LanguageModelingTask(FixedLogits(torch.zeros(50)))
    tokens = torch.randint(50, (4, 16))
    task.validation_step((tokens, tokens.roll(-1, dims=1)))
    metrics = task.compute_metrics()
    assert metrics["loss"] == pytest.approx(math.log(50))
    assert metrics["perplexity"] == pytest.approx(50)


def test_perplexity_is_exp_of_the_mean_per_token_loss_over_the_split():
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    task = LanguageModelingTask(FixedLogits(logits))
    # 8 tokens that cost -log 0.5 each, then 2 that cost -log 0.25: batches weigh by their tokens.
    task.validation_step((torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long)))
    task.validation_step((torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)))
    metrics = task.compute_metrics()
    mean_loss = (8 * math.log(2) + 2 * math.log(4)) / 10
    assert metrics["loss"] == pytest.approx(mean_loss)
    assert metrics["perplexity"] == pytest.approx(math.exp(mean_loss))
    task.validation_step((torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)))
    assert task.compute_metrics()["loss"] == pytest.approx(math.log(4))  # reset after each compute


def test_training_step_is_the_next_token_cross_entropy_and_has_gradients():
    model = FixedLogits(torch.zeros(5))
    task = LanguageModelingTask(model)
    loss = task.training_step((torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 4)))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(5)) and model.logits.grad[4] < 0
