"""A causal decoder (GPT-2 style) after nanoGPT's model.py: token and position embeddings, pre-norm
blocks with causal self-attention, a final LayerNorm and a head that shares the token embedding's weights.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from dlx.errors import DlxError
from dlx.models.attention import Block, init_gpt_weights, require_heads_divide_width
from dlx.models.layers import require_dropout, require_vocabulary

log = logging.getLogger("dlx")


class GPT(nn.Module):
    """``forward(tokens [batch, time])`` -> next-token logits ``[batch, time, vocab_size]``."""

    predicts_next_tokens = True  # the one built-in model task=language_modeling trains (dlx/build.py)

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = True,
        tie_weights: bool = True,
    ):
        super().__init__()
        require_vocabulary("gpt", vocab_size)
        for key, value in (("block_size", block_size), ("n_layer", n_layer)):
            if value < 1:
                raise DlxError(f"model.{key} must be at least 1, got {value}. Type e.g. `model.{key}=4`.")
        require_heads_divide_width(n_embd, n_head, "model.n_embd", "model.n_head")
        require_dropout(dropout)
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab_size, n_embd),
                "wpe": nn.Embedding(block_size, n_embd),
                "drop": nn.Dropout(dropout),
                "h": nn.ModuleList(Block(n_embd, n_head, 4 * n_embd, dropout, bias) for _ in range(n_layer)),
                "ln_f": nn.LayerNorm(n_embd, bias=bias),
            }
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            # One matrix both reads tokens in and scores them out: fewer parameters, and it trains better
            # (Press & Wolf 2017); nanoGPT and GPT-2 do the same.
            self.transformer.wte.weight = self.lm_head.weight
        init_gpt_weights(self, n_layer)
        log.info("GPT: %.2fM parameters (without position embeddings)", self.parameter_count() / 1e6)

    def parameter_count(self, include_positions: bool = False) -> int:
        """Parameters, counted once when tied; nanoGPT leaves the position embeddings out of its count."""
        count = sum(p.numel() for p in self.parameters())
        return count if include_positions else count - self.transformer.wpe.weight.numel()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if not torch.compiler.is_exporting() and length > self.block_size:
            raise DlxError(
                f"A sequence of {length} tokens is longer than model.block_size={self.block_size}; crop "
                "it to the last block_size tokens (dlx generate does), or train with a larger block size."
            )
        positions = torch.arange(length, device=tokens.device)
        x = self.transformer.drop(self.transformer.wte(tokens) + self.transformer.wpe(positions))
        for block in self.transformer.h:
            x = block(x, causal=True)
        return self.lm_head(self.transformer.ln_f(x))
