"""Small pieces the models share: config checks, activation lookup by name, weight-init schemes."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from dlx.errors import DlxError, did_you_mean

INIT_SCHEMES = ("default", "kaiming", "xavier", "orthogonal")

# Activations that change the tensor's shape or need arguments cannot sit between two layers.
_NOT_ELEMENTWISE = {"glu", "multiheadattention", "softmax", "softmax2d", "softmin", "logsoftmax", "threshold"}


def require_choice(key: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``, else raise a DlxError naming them."""
    choices = list(choices)
    normalized = str(value).lower()
    if normalized not in choices:
        raise DlxError(
            f"{key} '{value}' is unknown.{did_you_mean(normalized, choices)} "
            f"Choose one of: {', '.join(choices)} (e.g. `{key}={choices[0]}`)."
        )
    return normalized


def require_input_and_output(model: str, input_shape: list[int], num_outputs: int) -> None:
    if not input_shape or any(size < 1 for size in input_shape):
        raise DlxError(
            f"{model} needs model.input_shape as a list of positive sizes without the batch dimension, "
            f"got {input_shape}. Leave it as `${{data.input_shape}}` or type e.g. "
            "`model.input_shape=[1,28,28]`."
        )
    if num_outputs < 1:
        raise DlxError(
            f"model.num_outputs must be at least 1, got {num_outputs}. "
            "Leave it as `${data.num_outputs}` or type e.g. `model.num_outputs=10`."
        )


def require_image_input(model: str, input_shape: list[int], num_outputs: int) -> None:
    """``require_input_and_output`` for models of images: the shape is [channels, height, width]."""
    require_input_and_output(model, input_shape, num_outputs)
    if len(input_shape) != 3:
        raise DlxError(
            f"{model} needs model.input_shape [channels, height, width], got {list(input_shape)}. "
            "Use `model=mlp` for flat features, or a data module that yields images."
        )


def require_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise DlxError(f"model.dropout must be in [0, 1), got {dropout}. Type e.g. `model.dropout=0.1`.")


def _activation_classes() -> dict[str, type[nn.Module]]:
    classes = {}
    for class_name in torch.nn.modules.activation.__all__:
        if class_name.lower() not in _NOT_ELEMENTWISE:
            classes[class_name.lower()] = getattr(nn, class_name)
    return classes


def activation(name: str) -> nn.Module:
    """Build a torch.nn activation from its name, case- and underscore-insensitively (``leaky_relu``)."""
    classes = _activation_classes()
    key = name.lower().replace("_", "").replace("-", "")
    if key not in classes:
        raise DlxError(
            f"model.activation '{name}' is unknown.{did_you_mean(key, classes)} "
            f"Choose one of: {', '.join(sorted(classes))} (e.g. `model.activation=gelu`)."
        )
    return classes[key]()


def _gain_name(activation_name: str) -> str:
    """The ``nn.init.calculate_gain`` name closest to an activation; ReLU-like ones share relu's gain."""
    key = activation_name.lower().replace("_", "")
    exact = {"tanh": "tanh", "sigmoid": "sigmoid", "selu": "selu", "leakyrelu": "leaky_relu"}
    return exact.get(key, "relu")


def init_weights(model: nn.Module, scheme: str, activation_name: str = "relu") -> None:
    """Re-initialise every Linear and Conv layer of ``model``; ``default`` keeps PyTorch's own init."""
    scheme = require_choice("model.init", scheme, INIT_SCHEMES)
    if scheme == "default":
        return
    gain_name = _gain_name(activation_name)
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        if scheme == "kaiming":
            nonlinearity = gain_name if gain_name in ("relu", "leaky_relu") else "relu"
            nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain(gain_name))
        else:
            nn.init.orthogonal_(module.weight, gain=nn.init.calculate_gain(gain_name))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def require_vocabulary(model: str, vocab_size: int | None) -> None:
    """Models of token ids need the data's vocabulary size; other data modules have none."""
    if vocab_size is None or vocab_size < 1:
        text_data = "`data=char_lm`" if model == "gpt" else "`data=text_classification` or `data=sst2`"
        raise DlxError(
            f"model={model} reads token ids, but the data has no vocabulary (model.vocab_size={vocab_size}). "
            f"Use a text data module: {text_data}."
        )
