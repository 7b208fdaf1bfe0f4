"""The pre-norm Transformer block the encoder classifier and the GPT share, as nanoGPT writes it.

Attention is ``F.scaled_dot_product_attention``: PyTorch picks a fused kernel (flash, memory-efficient)
where the device and the mask allow one, and the exporters know the operation.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError


def require_heads_divide_width(width: int, num_heads: int, width_key: str, heads_key: str) -> None:
    if num_heads < 1 or width < 1 or width % num_heads:
        raise DlxError(
            f"{width_key}={width} must be a positive multiple of {heads_key}={num_heads}: each head "
            f"gets {width_key} / {heads_key} channels. Type e.g. `{width_key}=128 {heads_key}=4`."
        )


class SelfAttention(nn.Module):
    """Multi-head self-attention: one projection to queries, keys and values, one back."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.c_attn = nn.Linear(width, 3 * width, bias=bias)
        self.c_proj = nn.Linear(width, width, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, attend: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        """``attend``: boolean [batch, 1, 1, keys], False for keys (padding) no query may look at."""
        batch, length, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0, is_causal=causal
        )
        y = y.transpose(1, 2).contiguous().view(batch, length, width)
        return self.resid_dropout(self.c_proj(y))


class FeedForward(nn.Module):
    def __init__(self, width: int, hidden: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, width, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``; the residual path stays un-normalised."""

    def __init__(self, width: int, num_heads: int, hidden: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, bias=bias)
        self.attn = SelfAttention(width, num_heads, dropout, bias)
        self.ln_2 = nn.LayerNorm(width, bias=bias)
        self.mlp = FeedForward(width, hidden, dropout, bias)

    def forward(
        self, x: torch.Tensor, attend: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attend, causal)
        return x + self.mlp(self.ln_2(x))


def sinusoidal_positions(length: int, width: int, device: torch.device) -> torch.Tensor:
    """The fixed sin/cos position codes of "Attention Is All You Need", [length, width], for any length."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width)
    )
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return codes


def init_gpt_weights(model: nn.Module, num_layers: int) -> None:
    """nanoGPT's init: N(0, 0.02) for linear and embedding weights, zero biases, and the projections
    back into the residual stream (``c_proj``) scaled by 1/sqrt(2 * layers), as GPT-2 does."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
    for name, parameter in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * num_layers))
