"""nanoGPT's CPU "baby GPT" on Tiny Shakespeare, as its train.py runs it, against `dlx train
recipe=shakespeare_char`, in the same session (whole processes, wall time and validation loss).

The reference is a faithful condensation of nanoGPT's model.py and train.py for exactly this command
line: `python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
--lr_decay_iters=2000 --dropout=0.0` (no biases, AdamW 1e-3 with betas (0.9, 0.99) and weight decay 0.1
on matrices, 100 warm-up steps, cosine to 1e-4, clip 1.0, an estimate of the losses on 20 random batches
every 250 steps, the loss read back every step). Both runs also report the loss over the whole
validation split, which is what dlx's validation measures.

    uv run python -m scripts.bench.nanogpt_reference /path/to/input.txt [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = r"""
import math, sys, time
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

started = time.perf_counter()
text = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
data = np.array([index[c] for c in text], dtype=np.uint16)
train_data, val_data = data[: int(0.9 * len(data))], data[int(0.9 * len(data)) :]
block_size, batch_size, n_layer, n_head, n_embd, vocab = 64, 12, 4, 4, 128, len(chars)
torch.manual_seed(1337)

def get_batch(split):
    source = train_data if split == "train" else val_data
    ix = torch.randint(len(source) - block_size, (batch_size,))
    x = torch.stack([torch.from_numpy(source[i : i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(source[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix])
    return x, y

class LayerNorm(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
    def forward(self, x):
        B, T, C = x.size()
        q, k, v = (
            t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in self.c_attn(x).split(n_embd, dim=2)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = LayerNorm(n_embd), Attention(), LayerNorm(n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=False), nn.GELU(), nn.Linear(4 * n_embd, n_embd, bias=False)
        )
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block() for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                projection = name.endswith("mlp.2.weight") or name.endswith("c_proj.weight")
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer) if projection else 0.02)
    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

model = GPT()
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))

def lr_at(it, warmup=100, decay_iters=2000, lr=1e-3, min_lr=1e-4):
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    ratio = (it - warmup) / (decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

@torch.no_grad()
def estimate_loss(eval_iters=20):
    model.eval()
    out = {
        split: torch.stack([model(*get_batch(split)) for _ in range(eval_iters)]).mean().item()
        for split in ("train", "val")
    }
    model.train()
    return out

x, y = get_batch("train")
for it in range(2001):
    for group in optimizer.param_groups:
        group["lr"] = lr_at(it)
    if it % 250 == 0:
        losses = estimate_loss()
        print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)
    if it == 2000:
        break
    loss = model(x, y)
    x, y = get_batch("train")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss.item()  # log_interval=1
training_seconds = time.perf_counter() - started

@torch.no_grad()
def whole_split_loss():
    model.eval()
    blocks = torch.from_numpy(val_data[: (len(val_data) - 1) // block_size * block_size + 1].astype(np.int64))
    x, y = blocks[:-1].view(-1, block_size), blocks[1:].view(-1, block_size)
    total = sum(model(x[i : i + 64], y[i : i + 64]).item() * len(x[i : i + 64]) for i in range(0, len(x), 64))
    return total / len(x)

measuring = time.perf_counter()
whole_val = whole_split_loss()
# Not part of nanoGPT: the bench subtracts this from the process's wall time.
result = {"estimate": losses["val"], "whole_val": whole_val, "training_seconds": training_seconds,
          "extra_seconds": time.perf_counter() - measuring}
print("RESULT " + json.dumps(result))
""".replace("import math, sys, time", "import json, math, sys, time")


def run_reference(text: Path) -> dict:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(text)], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.split("RESULT ")[1])
    result["wall_seconds"] = time.perf_counter() - started - result["extra_seconds"]
    return result


def run_dlx(text: Path, overrides: list[str]) -> dict:
    dlx = str(Path(sys.executable).with_name("dlx"))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [dlx, "train", "recipe=shakespeare_char", f"data.path={text}", "logger.mode=offline", *overrides],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        summary = json.loads(next(Path(folder).glob("outputs/*/*/summary.json")).read_text())
    return {"whole_val": summary["last_metrics"]["val/loss"], "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="extra dlx overrides")
    arguments = parser.parse_args()
    references, ours = [], []
    for _ in range(arguments.repeats):  # interleaved: a busy moment costs both alike
        references.append(run_reference(arguments.text))
        ours.append(run_dlx(arguments.text, arguments.overrides))
    print("| run | val loss (20-batch estimate) | val loss (whole split) | wall s |")
    print("|---|---:|---:|---:|")
    for name, runs in (("nanoGPT baby GPT (reference)", references), ("dlx recipe=shakespeare_char", ours)):
        estimate = statistics.median(r["estimate"] for r in runs) if "estimate" in runs[0] else None
        print(
            f"| {name} | {f'{estimate:.4f}' if estimate is not None else '-'} | "
            f"{statistics.median(r['whole_val'] for r in runs):.4f} | "
            f"{statistics.median(r['wall_seconds'] for r in runs):.1f} |"
        )


if __name__ == "__main__":
    main()
