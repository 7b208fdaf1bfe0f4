"""Optimizer builders over shared parameter groups: weight decay only where it helps, per-module lrs.

Every builder takes the model and its config keys. Each parameter group records ``lr_multiplier``, the
ratio of its lr to the configured ``lr``; schedulers scale every group's initial lr, so the ratio holds.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import torch
from torch import nn

from dlx.errors import DlxError, did_you_mean

_TORCH_NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # every BatchNorm*, SyncBatchNorm and InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)
# Catches norms defined outside torch by name, e.g. FrozenBatchNorm2d or LlamaRMSNorm.
_NORM_CLASS_NAME = re.compile(r"Norm(\d[dD])?$")


def is_norm_layer(module: nn.Module) -> bool:
    return isinstance(module, _TORCH_NORM_LAYERS) or bool(_NORM_CLASS_NAME.search(type(module).__name__))


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of biases, normalisation-layer parameters and other 0-d/1-d parameters (gains, scales)."""
    names = set()
    for module_name, module in model.named_modules():
        if is_norm_layer(module):
            prefix = f"{module_name}." if module_name else ""
            names.update(prefix + name for name, _ in module.named_parameters(recurse=False))
    for name, parameter in model.named_parameters():
        if name == "bias" or name.endswith(".bias") or parameter.ndim <= 1:
            names.add(name)
    return names


def _longest_matching_prefix(name: str, prefixes: list[str]) -> str | None:
    matches = [prefix for prefix in prefixes if name == prefix or name.startswith(prefix + ".")]
    return max(matches, key=len) if matches else None


def _require_prefixes_match(model: nn.Module, lr_multipliers: dict[str, float]) -> None:
    parameter_names = [name for name, _ in model.named_parameters()]
    top_level = [name for name, _ in model.named_children()]
    for prefix, multiplier in lr_multipliers.items():
        if multiplier < 0:
            raise DlxError(
                f"optimizer.lr_multipliers['{prefix}'] must be zero or positive, got {multiplier}. "
                f"Type e.g. `optimizer.lr_multipliers={{{prefix}:0.1}}`."
            )
        if not any(_longest_matching_prefix(name, [prefix]) for name in parameter_names):
            raise DlxError(
                f"optimizer.lr_multipliers key '{prefix}' matches no parameter of the model."
                f"{did_you_mean(prefix, top_level)} Keys are module-name prefixes such as "
                f"'layer1' or 'layer1.0'; this model's top-level modules are: {', '.join(top_level)}."
            )


def unwrapped(model: nn.Module) -> nn.Module:
    """The user's module inside DDP and torch.compile wrappers, whose parameter names configs use (the
    wrappers prefix them with ``module.`` and ``_orig_mod.``)."""
    from torch.nn.parallel import DistributedDataParallel

    # torch.compile's wrapper class: a model can only be one once torch._dynamo is loaded (importing it
    # just to look would cost more than a second).
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    compiled = (eval_frame.OptimizedModule,) if eval_frame is not None else ()
    while isinstance(model, (DistributedDataParallel, *compiled)):
        model = model.module if isinstance(model, DistributedDataParallel) else model._orig_mod
    return model


def build_param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    decay_bias_and_norm: bool = False,
    lr_multipliers: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Group trainable parameters by (lr multiplier, decayed or not), in model order.

    ``lr_multipliers`` maps module-name prefixes to a multiple of ``lr``; the longest matching prefix wins.
    """
    model = unwrapped(model)
    lr_multipliers = dict(lr_multipliers or {})
    _require_prefixes_match(model, lr_multipliers)
    no_decay = set() if decay_bias_and_norm else no_decay_parameter_names(model)
    prefixes = list(lr_multipliers)
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        prefix = _longest_matching_prefix(name, prefixes)
        multiplier = float(lr_multipliers[prefix]) if prefix is not None else 1.0
        decayed = weight_decay > 0 and name not in no_decay  # without decay, one group (a faster step)
        group = groups.setdefault(
            (multiplier, decayed),
            {
                "params": [],
                "lr": lr * multiplier,
                "weight_decay": weight_decay if decayed else 0.0,
                "lr_multiplier": multiplier,
            },
        )
        group["params"].append(parameter)
    if not groups:
        raise DlxError(
            "The model has no trainable parameters (all have requires_grad=False), so there is nothing to "
            "optimise. Unfreeze some layers, or check the model config."
        )
    return list(groups.values())


def fused_kernel(groups: list[dict[str, Any]], fused: bool | None) -> bool | None:
    """``fused=None`` picks PyTorch's fused kernel (one call for all parameters instead of a Python loop
    over them: the step of a small model takes half the time) when every parameter is a plain floating
    tensor on the CPU or a CUDA device; otherwise PyTorch's own default (FSDP's sharded tensors, say)."""
    if fused is not None:
        return fused
    plain = all(
        type(parameter) is nn.Parameter
        and parameter.is_floating_point()
        and parameter.device.type in ("cpu", "cuda")
        for group in groups
        for parameter in group["params"]
    )
    return True if plain else None


def _require_positive(key: str, value: float, example: str) -> None:
    if not 0 < value < math.inf:
        raise DlxError(
            f"optimizer.{key} must be a positive number, got {value}. Type e.g. `optimizer.{key}={example}`."
        )


def _require_non_negative(key: str, value: float, example: str) -> None:
    if not 0 <= value < math.inf:
        raise DlxError(
            f"optimizer.{key} must be zero or positive, got {value}. Type e.g. `optimizer.{key}={example}`."
        )


def _require_betas(betas: list[float]) -> tuple[float, float]:
    if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
        raise DlxError(
            f"optimizer.betas must be two numbers in [0, 1), got {list(betas)}. "
            "Type e.g. `optimizer.betas=[0.9,0.999]`."
        )
    return float(betas[0]), float(betas[1])


# The signatures below are the config schemas, so list defaults are spelled out (B006); they are only read.


def sgd(
    model: nn.Module,
    lr: float = 0.05,
    momentum: float = 0.9,
    nesterov: bool = False,
    dampening: float = 0.0,
    weight_decay: float = 5e-4,
    decay_bias_and_norm: bool = False,
    lr_multipliers: dict[str, float] | None = None,
    fused: bool | None = None,
) -> torch.optim.SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum."""
    _require_positive("lr", lr, "0.05")
    _require_non_negative("momentum", momentum, "0.9")
    _require_non_negative("weight_decay", weight_decay, "5e-4")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise DlxError(
            f"optimizer.nesterov needs momentum > 0 and dampening 0, got momentum={momentum}, "
            f"dampening={dampening}. Type e.g. `optimizer.momentum=0.9 optimizer.dampening=0`, "
            "or `optimizer.nesterov=false`."
        )
    groups = build_param_groups(model, lr, weight_decay, decay_bias_and_norm, lr_multipliers)
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        fused=fused_kernel(groups, fused),
    )


def adam(
    model: nn.Module,
    lr: float = 1e-3,
    betas: list[float] = [0.9, 0.999],  # noqa: B006
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    decay_bias_and_norm: bool = False,
    lr_multipliers: dict[str, float] | None = None,
    fused: bool | None = None,
) -> torch.optim.Adam:
    """Adam; its weight decay is L2 added to the gradient (use adamw for decoupled decay)."""
    arguments = (lr, betas, eps, weight_decay, amsgrad, decay_bias_and_norm, lr_multipliers, fused)
    return _adam_kind(torch.optim.Adam, model, *arguments, weight_decay_example="0")


def adamw(
    model: nn.Module,
    lr: float = 1e-3,
    betas: list[float] = [0.9, 0.999],  # noqa: B006
    eps: float = 1e-8,
    weight_decay: float = 0.05,
    amsgrad: bool = False,
    decay_bias_and_norm: bool = False,
    lr_multipliers: dict[str, float] | None = None,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """Adam with decoupled weight decay."""
    arguments = (lr, betas, eps, weight_decay, amsgrad, decay_bias_and_norm, lr_multipliers, fused)
    return _adam_kind(torch.optim.AdamW, model, *arguments, weight_decay_example="0.05")


def _adam_kind(
    optimizer_class: type[torch.optim.Optimizer],
    model: nn.Module,
    lr: float,
    betas: list[float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decay_bias_and_norm: bool,
    lr_multipliers: dict[str, float] | None,
    fused: bool | None,
    weight_decay_example: str,
) -> torch.optim.Optimizer:
    _require_positive("lr", lr, "1e-3")
    _require_positive("eps", eps, "1e-8")
    _require_non_negative("weight_decay", weight_decay, weight_decay_example)
    groups = build_param_groups(model, lr, weight_decay, decay_bias_and_norm, lr_multipliers)
    return optimizer_class(
        groups,
        lr=lr,
        betas=_require_betas(betas),
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        fused=fused_kernel(groups, fused),
    )


def rmsprop(
    model: nn.Module,
    lr: float = 1e-3,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
    decay_bias_and_norm: bool = False,
    lr_multipliers: dict[str, float] | None = None,
) -> torch.optim.RMSprop:
    """RMSprop: gradients divided by a running root-mean-square."""
    _require_positive("lr", lr, "1e-3")
    _require_positive("eps", eps, "1e-8")
    _require_non_negative("momentum", momentum, "0.9")
    _require_non_negative("weight_decay", weight_decay, "0")
    if not 0.0 <= alpha < 1.0:
        raise DlxError(f"optimizer.alpha must be in [0, 1), got {alpha}. Type e.g. `optimizer.alpha=0.99`.")
    groups = build_param_groups(model, lr, weight_decay, decay_bias_and_norm, lr_multipliers)
    return torch.optim.RMSprop(
        groups, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered, weight_decay=weight_decay
    )
