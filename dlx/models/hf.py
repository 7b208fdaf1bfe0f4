"""A Hugging Face sequence classifier (``AutoModelForSequenceClassification``) as a dlx model: pretrained
from the Hub or a local folder, or built from a small config (tests, from-scratch baselines).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.errors import DlxError


def load_pretrained(name: str, num_labels: int, overrides: dict[str, Any]) -> nn.Module:
    """``from_pretrained`` from a local folder, the local cache, or the Hub when reachable; otherwise a
    DlxError that says how to point at a local folder."""
    from transformers import AutoModelForSequenceClassification

    from dlx.hub import from_cache_or_hub

    arguments = {"num_labels": num_labels, "ignore_mismatched_sizes": True, **overrides}
    folder = Path(name).expanduser()
    if folder.is_dir() or name.startswith(("/", "./", "../", "~")):
        if not (folder / "config.json").is_file():
            raise DlxError(
                f"model.pretrained '{name}' is not a model folder (it has no config.json). Point it at a "
                "folder written by `save_pretrained` or downloaded from the Hub (config.json plus "
                "model.safetensors), e.g. `model.pretrained=/models/bert-base-uncased`."
            )
        return AutoModelForSequenceClassification.from_pretrained(str(folder), **arguments)
    return from_cache_or_hub(
        functools.partial(AutoModelForSequenceClassification.from_pretrained, **arguments),
        name,
        f"The Hugging Face model '{name}' is not in the local cache and the Hub cannot be reached (no "
        "network, or HF_HUB_OFFLINE is set), so it cannot be loaded offline. On a machine with internet, "
        f"save it with `AutoModelForSequenceClassification.from_pretrained('{name}').save_pretrained("
        "'folder')` (and its tokenizer likewise), copy the folder here and type "
        "`model.pretrained=/path/to/folder data.tokenizer=/path/to/folder`.",
        lambda reason: (
            f"Could not load the Hugging Face model '{name}' from the Hub: {reason} Check the "
            "name (e.g. `model.pretrained=bert-base-uncased`) or point at a local folder with "
            "`model.pretrained=/path/to/folder`."
        ),
    )


def build_from_config(config: dict[str, Any], vocab_size: int | None, pad_id: int, num_labels: int):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    settings = dict(config)
    model_type = settings.pop("model_type", None)
    if model_type is None:
        raise DlxError(
            "model.config needs a model_type (bert, distilbert, roberta, ...), e.g. "
            "`model.config={model_type:bert,hidden_size:64,num_hidden_layers:2,num_attention_heads:2,"
            "intermediate_size:128}`."
        )
    if vocab_size is not None:
        settings.setdefault("vocab_size", vocab_size)
    settings.setdefault("pad_token_id", pad_id)
    try:
        hf_config = AutoConfig.for_model(model_type, num_labels=num_labels, **settings)
    except ValueError as error:
        raise DlxError(f"model.config is not a Hugging Face config: {error}") from error
    return AutoModelForSequenceClassification.from_config(hf_config)


class HFClassifier(nn.Module):
    """``forward(tokens [batch, time])``, right-padded with ``pad_id`` -> logits ``[batch, num_outputs]``.

    The Hugging Face model is ``self.hf_model``, so its modules are named ``hf_model.<its own names>``:
    for BERT ``hf_model.bert.embeddings``, ``hf_model.bert.encoder``, ``hf_model.classifier``.
    """

    def __init__(
        self,
        num_outputs: int,
        vocab_size: int | None = None,
        pad_id: int = 0,
        pretrained: str | None = None,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if num_outputs < 2:
            raise DlxError(
                f"model.num_outputs must be at least 2 classes for a sequence classifier, got {num_outputs}. "
                "Leave it as `${data.num_outputs}`."
            )
        if pretrained is not None:
            self.hf_model = load_pretrained(str(pretrained), num_outputs, dict(config or {}))
        elif config:
            self.hf_model = build_from_config(dict(config), vocab_size, pad_id, num_outputs)
        else:
            raise DlxError(
                "The hf model needs model.pretrained (a Hub name or a local folder, e.g. "
                "`model.pretrained=bert-base-uncased data.tokenizer=bert-base-uncased`) or model.config "
                "(a small architecture to train from scratch, e.g. `model.config={model_type:bert,"
                "hidden_size:64,num_hidden_layers:2,num_attention_heads:2,intermediate_size:128}`)."
            )
        model_vocabulary = self.hf_model.config.vocab_size
        if vocab_size is not None and vocab_size > model_vocabulary:
            raise DlxError(
                f"The data's vocabulary has {vocab_size} tokens but the model's embedding only "
                f"{model_vocabulary}: the text was tokenized with another tokenizer. Use the model's own: "
                "`data.tokenizer=${model.pretrained}`."
            )
        self.pad_id = pad_id

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        attention_mask = (tokens != self.pad_id).long()
        return self.hf_model(input_ids=tokens, attention_mask=attention_mask).logits
