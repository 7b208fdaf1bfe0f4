"""A Transformer encoder classifier over token ids: embeddings plus positions, pre-norm blocks whose
attention ignores padding, a final LayerNorm, then a [CLS] token or the mean of the tokens to a linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import DlxError
from dlx.models.attention import Block, require_heads_divide_width, sinusoidal_positions
from dlx.models.layers import require_choice, require_dropout, require_input_and_output, require_vocabulary

POSITIONS = ("sinusoidal", "learned")
POOLINGS = ("cls", "mean")


class TransformerClassifier(nn.Module):
    """``forward(tokens [batch, time])``, right-padded with ``pad_id`` -> logits ``[batch, num_outputs]``.

    Padding changes nothing: no token attends to a pad, and mean pooling counts real tokens only.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_outputs: int,
        vocab_size: int,
        pad_id: int = 0,
        d_model: int = 128,
        num_heads: int = 4,
        num_layers: int = 2,
        feedforward_size: int = 512,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        pooling: str = "cls",
        bias: bool = True,
    ):
        super().__init__()
        require_vocabulary("transformer", vocab_size)
        require_input_and_output("TransformerClassifier", input_shape, num_outputs)
        if len(input_shape) != 1:
            raise DlxError(
                f"The transformer classifier needs model.input_shape [max_length] of token ids, got "
                f"{list(input_shape)}. Use a text data module (`data=text_classification` or `data=sst2`)."
            )
        require_heads_divide_width(d_model, num_heads, "model.d_model", "model.num_heads")
        require_dropout(dropout)
        for key, value in (("num_layers", num_layers), ("feedforward_size", feedforward_size)):
            if value < 1:
                raise DlxError(f"model.{key} must be at least 1, got {value}. Type e.g. `model.{key}=2`.")
        self.positions = require_choice("model.positions", positions, POSITIONS)
        self.pooling = require_choice("model.pooling", pooling, POOLINGS)
        self.pad_id, self.d_model = pad_id, d_model
        self.max_length = input_shape[0]
        extra = 1 if self.pooling == "cls" else 0
        self.token_embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if extra else None
        self.position_embedding = (
            nn.Embedding(self.max_length + extra, d_model) if self.positions == "learned" else None
        )
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, num_heads, feedforward_size, dropout, bias) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, bias=bias)
        self.head = nn.Linear(d_model, num_outputs)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        if self.position_embedding is not None:
            nn.init.normal_(self.position_embedding.weight, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        real = tokens != self.pad_id  # [batch, time]
        x = self.token_embedding(tokens)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), x], dim=1)
            real = torch.cat([torch.ones_like(real[:, :1]), real], dim=1)
        length = x.shape[1]
        if self.position_embedding is not None:
            if not torch.compiler.is_exporting() and length > self.position_embedding.num_embeddings:
                raise DlxError(
                    f"A sequence of {tokens.shape[1]} tokens is longer than the {self.max_length} "
                    "positions learnt; truncate inputs to data.max_length, or use "
                    "`model.positions=sinusoidal`."
                )
            x = x + self.position_embedding(torch.arange(length, device=x.device))
        else:
            # The fixed codes have amplitude 1; scaling the small initial embeddings up keeps the tokens
            # from drowning in them, as "Attention Is All You Need" does.
            x = x * self.d_model**0.5 + sinusoidal_positions(length, self.d_model, x.device).to(x.dtype)
        x = self.dropout(x)
        # Every query may look at position 0 as well, so that a sequence of padding only (an empty text)
        # gets finite attention weights instead of a softmax over nothing (NaN).
        attend = real.clone()
        attend[:, 0] = True
        attend = attend[:, None, None, :]
        for block in self.blocks:
            x = block(x, attend)
        x = self.norm(x)
        if self.cls_token is not None:
            pooled = x[:, 0]
        else:
            weights = real.unsqueeze(-1).to(x.dtype)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled)
