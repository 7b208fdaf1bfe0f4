"""A recurrent classifier over token ids: embedding, stacked (bi)directional RNN/LSTM/GRU layers that skip
the padding, then the final states (or the mean or max over time) into a linear head.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlx.errors import DlxError
from dlx.models.layers import require_choice, require_dropout, require_vocabulary

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "mean", "max")


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each right-padded sequence of ``x`` [batch, time, features] within its length; the padding
    stays at the end, so a forward RNN over the result reads each sequence backwards from its last token."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    last = lengths.unsqueeze(1) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class RNNClassifier(nn.Module):
    """``forward(tokens [batch, time])``, right-padded with ``pad_id`` -> logits ``[batch, num_outputs]``.

    Each layer and direction is its own one-layer ``nn.<cell>``, so the backward direction can start at
    each sequence's last real token: the result does not depend on how much padding follows.
    """

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        pad_id: int = 0,
        cell: str = "lstm",
        embedding_size: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
    ):
        super().__init__()
        require_vocabulary("rnn", vocab_size)
        for key, value in (
            ("num_outputs", num_outputs),
            ("embedding_size", embedding_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if value < 1:
                raise DlxError(f"model.{key} must be at least 1, got {value}. Type e.g. `model.{key}=128`.")
        self.cell = require_choice("model.cell", cell, CELLS)
        self.pooling = require_choice("model.pooling", pooling, POOLINGS)
        require_dropout(dropout)
        self.pad_id = pad_id
        directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        rnn_class = CELLS[self.cell]
        sizes = [embedding_size] + [hidden_size * directions] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(rnn_class(size, hidden_size, batch_first=True) for size in sizes)
        self.backward_layers = nn.ModuleList(
            rnn_class(size, hidden_size, batch_first=True) for size in sizes[: num_layers * (directions - 1)]
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * directions, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        real = tokens != self.pad_id
        # An all-padding (empty) text still runs one step, on its first (pad) token.
        lengths = real.sum(1).clamp(min=1)
        x = self.dropout(self.embedding(tokens))
        finals: list[torch.Tensor] = []
        for index, layer in enumerate(self.forward_layers):
            outputs, final = self._run(layer, x, lengths)
            finals = [final]
            if len(self.backward_layers):
                reversed_outputs, backward_final = self._run(
                    self.backward_layers[index], reverse_within_length(x, lengths), lengths
                )
                outputs = torch.cat([outputs, reverse_within_length(reversed_outputs, lengths)], dim=2)
                finals.append(backward_final)
            x = self.dropout(outputs)  # between layers, as nn.LSTM's dropout; and before the head
        if self.pooling == "last":
            pooled = torch.cat(finals, dim=1)
        else:
            valid = (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)).unsqueeze(-1)
            if self.pooling == "mean":
                pooled = (x * valid).sum(1) / lengths.unsqueeze(1).to(x.dtype)
            else:
                pooled = x.masked_fill(~valid, float("-inf")).amax(1)
        return self.head(pooled)

    def _run(
        self, layer: nn.Module, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs [batch, time, hidden] (zero past each length) and each sequence's last output."""
        if torch.jit.is_tracing() or torch.compiler.is_exporting():
            # Exporters cannot express packed sequences (their batch sizes per step depend on the data),
            # so exported files run the layer over the padding too and read the output at length - 1.
            # Both ways give the same result: the padding comes after each sequence's last real token.
            outputs, _ = layer(x)
            valid = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)
            outputs = outputs * valid.unsqueeze(-1).to(outputs.dtype)
        else:
            # Packing skips the padding's steps altogether (cuDNN and CPU alike): less work per batch.
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, _ = layer(packed)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=x.shape[1])
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
        return outputs, outputs.gather(1, index).squeeze(1)
