"""Device choice and mixed precision: torch.autocast, plus a GradScaler for fp16."""

from __future__ import annotations

import contextlib

import torch

from dlx.errors import DlxError

DTYPES = {"32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DlxError(
            f"trainer.device '{name}' is not a device. Type `trainer.device=auto`, `cpu`, `cuda`, "
            "`cuda:1` or `mps`."
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DlxError(
            f"trainer.device={name} but no CUDA GPU is visible to PyTorch. Use `trainer.device=auto` "
            "or `trainer.device=cpu`."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DlxError(
            f"trainer.device={name} but PyTorch sees {torch.cuda.device_count()} GPU(s) (numbered from 0). "
            "Use `trainer.device=cuda:0` or `trainer.device=auto`."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DlxError("trainer.device=mps but MPS is not available. Use `trainer.device=auto` or `cpu`.")
    return device


class Precision:
    """What ``trainer.precision`` means on one device."""

    def __init__(self, precision: str, device: torch.device):
        self.name = precision
        self.device = device
        self.dtype = DTYPES[precision]
        if precision == "fp16" and device.type == "mps":
            raise DlxError(
                "trainer.precision=fp16 is not supported with GradScaler on MPS. Use "
                "`trainer.precision=32` (or bf16 on a device that supports it)."
            )
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DlxError(
                "This GPU does not support bf16. Use `trainer.precision=fp16` or `trainer.precision=32`."
            )
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is torch.float32:
            return _FULL_PRECISION  # reusable: it holds no state
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


_FULL_PRECISION = contextlib.nullcontext()
