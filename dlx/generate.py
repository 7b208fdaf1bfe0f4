"""`dlx generate CKPT`: sample text from a language-model checkpoint, printed token by token as it is sampled.

It needs the checkpoint alone: the model is rebuilt from its config and the text is encoded and decoded
with the vocabulary saved in it, so the training text may be gone.
"""

from __future__ import annotations

import logging
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from dlx.errors import DlxError

log = logging.getLogger("dlx")


def is_language_model(cfg: Any) -> bool:
    """Whether the run's task is LanguageModelingTask or a subclass, by registry name or ``_target_``."""
    from dlx.build import component_class
    from dlx.tasks.language_modeling import LanguageModelingTask

    try:
        task = component_class("task", cfg.task)
    except DlxError:
        return False
    return isinstance(task, type) and issubclass(task, LanguageModelingTask)


def check_sampling_options(
    temperature: float, top_k: int | None, top_p: float | None, max_new_tokens: int = 1
) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise DlxError(
            f"--temperature must be above 0, got {temperature}: it divides the logits. Type e.g. "
            "`--temperature 0.8` (lower: safer, more repetitive text; 1: the model's own distribution)."
        )
    if top_k is not None and top_k < 1:
        raise DlxError(
            f"--top-k must be at least 1, got {top_k}: it keeps the k most likely tokens. Type e.g. "
            "`--top-k 200`, or `--top-k 1` for greedy decoding."
        )
    if top_p is not None and not 0 < top_p <= 1:
        raise DlxError(
            f"--top-p must be in (0, 1], got {top_p}: it keeps the most likely tokens whose probabilities "
            "add up to p. Type e.g. `--top-p 0.95`, or `--top-p 1` to keep them all."
        )
    if max_new_tokens < 1:
        raise DlxError(f"--max-new-tokens must be at least 1, got {max_new_tokens}. Type e.g. 500.")


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row of ``logits`` [batch, vocab] -> ids [batch, 1].

    Temperature first, then top-k (keep the k highest logits), then top-p (nucleus: keep the smallest set
    of the most likely tokens whose probabilities reach p), as nanoGPT and Hugging Face order them.
    """
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_highest = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_highest, float("-inf"))
    probabilities = F.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probabilities, order = probabilities.sort(dim=-1, descending=True)
        # A token is dropped when the more likely ones before it already reach p; the first always stays.
        before = sorted_probabilities.cumsum(dim=-1) - sorted_probabilities
        sorted_probabilities = sorted_probabilities.masked_fill(before >= top_p, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(-1, order, sorted_probabilities)
    return torch.multinomial(probabilities, num_samples=1, generator=generator)


@dataclass
class LanguageModel:
    model: torch.nn.Module  # in eval mode, on its device
    data: Any  # the data module, with the checkpoint's vocabulary: encode(text) / decode(ids)
    cfg: DictConfig
    block_size: int  # the longest context the model takes


def load_language_model(path: Path, device: torch.device, trust_checkpoint: bool = False) -> LanguageModel:
    """Rebuild model and vocabulary from the checkpoint alone; refuse one that is not a language model."""
    from dlx.build import build_model, instantiate_data
    from dlx.config.validate import validate_config
    from dlx.engine.checkpoint import load_checkpoint, load_model_state
    from dlx.restore import refuse_untrusted_targets

    checkpoint = load_checkpoint(path)
    refuse_untrusted_targets(checkpoint, trust_checkpoint)
    cfg = OmegaConf.create(checkpoint["config"])
    task = cfg.task.get("_target_") or cfg.task.get("name")
    if not is_language_model(cfg):
        raise DlxError(
            f"{path} is not a language model: it was trained with task={task} "
            f"(model={cfg.model.get('name')}, data={cfg.data.get('name')}). `dlx generate` samples text from "
            "checkpoints trained with task=language_modeling, e.g. `dlx train recipe=shakespeare_char`; "
            "for a classifier use `dlx predict` or `dlx eval`."
        )
    validate_config(cfg)
    data = instantiate_data(cfg, checkpoint.get("data_state"))
    if not (hasattr(data, "encode") and hasattr(data, "decode")):
        raise DlxError(
            f"The data module of {path} ({type(data).__name__}) has no encode/decode, so its text cannot be "
            "turned into tokens and back. Language-model data modules (data=char_lm) have both."
        )
    model = build_model(cfg)
    load_model_state(model, checkpoint["model"])
    model.to(device).eval()
    block_size = getattr(model, "block_size", None) or int(cfg.data.input_shape[0])
    return LanguageModel(model, data, cfg, block_size)


@torch.inference_mode()
def sample_tokens(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    max_new_tokens: int,
    block_size: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` ids one at a time, each conditioned on at most the last ``block_size``."""
    ids = prompt_ids.view(1, -1)
    for _ in range(max_new_tokens):
        logits = model(ids[:, -block_size:])[:, -1, :]
        next_id = sample_next_token(logits, temperature, top_k, top_p, generator)
        ids = torch.cat([ids, next_id], dim=1)
        yield int(next_id)


def generate(
    checkpoint: Path,
    prompt: str = "\n",
    max_new_tokens: int = 500,
    temperature: float = 0.8,
    top_k: int | None = 200,
    top_p: float | None = None,
    seed: int | None = None,
    device: str = "auto",
    trust_checkpoint: bool = False,
    out: TextIO | None = None,
) -> str:
    """Print ``prompt`` and its sampled continuation to ``out`` (stdout) as it is sampled; return the text."""
    check_sampling_options(temperature, top_k, top_p, max_new_tokens)
    if not prompt:
        raise DlxError(
            "--prompt is empty: the model needs at least one character to continue. Type e.g. "
            "`--prompt ROMEO:`, or leave --prompt out to start from a newline."
        )
    out = out or sys.stdout
    target = _device(device)
    language_model = load_language_model(Path(checkpoint), target, trust_checkpoint)
    try:
        prompt_ids = torch.tensor(language_model.data.encode(prompt), dtype=torch.long, device=target)
    except DlxError as error:
        raise DlxError(f"--prompt {prompt!r}: {error}") from None
    if seed is None:
        seed = random.randrange(2**31)
        log.info("Sampling with seed %d (pass --seed %d to draw this text again)", seed, seed)
    generator = torch.Generator(device=target).manual_seed(seed)

    out.write(prompt)
    out.flush()
    new_ids = []
    tokens = sample_tokens(
        language_model.model,
        prompt_ids,
        max_new_tokens,
        language_model.block_size,
        temperature,
        top_k,
        top_p,
        generator,
    )
    for token in tokens:
        new_ids.append(token)
        out.write(language_model.data.decode([token]))
        out.flush()
    out.write("\n")
    out.flush()
    return prompt + language_model.data.decode(new_ids)


def _device(name: str) -> torch.device:
    from dlx.engine.precision import resolve_device

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DlxError(f"--device {name} but no CUDA GPU is visible to PyTorch. Type `--device cpu`.")
    try:
        return resolve_device(name)
    except DlxError:
        raise DlxError(
            f"--device '{name}' is not a device this machine has. Type `--device auto`, `cpu` or `cuda`."
        ) from None
