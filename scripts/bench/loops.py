"""The same model, data, seed and batches trained three ways: a plain PyTorch loop, dlx's trainer, and
(if installed) Lightning's barebones Trainer. Each returns its per-step losses and milliseconds per step.

Only training steps are timed (from the second batch to the last optimizer step, inside one epoch, so
no epoch-end checkpoint or validation falls inside the window); dlx runs with its progress display,
metrics.jsonl logging and run folder on, W&B off.

``lockstep`` runs several loops by turns of a few dozen steps, one at a time. This VM's speed drifts by
5-15% within a minute, more than the few percent being measured; loops that take turns every few
milliseconds meet every slow moment alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from dlx.data.base import DataMetadata, DataModule


class RepeatedDigits(DataModule):
    """The bundled digits repeated (and for the CNN upsampled to MNIST's 28x28), so one epoch holds
    every timed step and nothing is downloaded."""

    def __init__(self, train_samples: int = 70000, size: int = 8, batch_size: int = 64, seed: int = 0):
        super().__init__(batch_size=batch_size, seed=seed)
        self.train_samples, self.size = train_samples, size

    def load(self) -> None:
        from dlx.data.digits import DigitsData

        digits = DigitsData(seed=self.seed).setup()
        for split, (inputs, targets) in digits.splits.items():
            if self.size != inputs.shape[-1]:
                inputs = F.interpolate(inputs, size=(self.size, self.size), mode="bilinear")
            repeats = -(-self.train_samples // len(inputs)) if split == "train" else 1
            self.splits[split] = (inputs.repeat(repeats, 1, 1, 1), targets.repeat(repeats))

    def metadata(self) -> DataMetadata:
        return DataMetadata([1, self.size, self.size], 10, 10, [str(i) for i in range(10)])


class RandomSequences(DataModule):
    """Token sequences of one length with a label that depends on them, for the LSTM row."""

    def __init__(
        self,
        samples: int = 20000,
        length: int = 32,
        vocab_size: int = 1000,
        batch_size: int = 64,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        self.samples, self.length, self.vocab_size = samples, length, vocab_size

    def load(self) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        for split, count in (("train", self.samples), ("val", 1000), ("test", 1000)):
            tokens = torch.randint(1, self.vocab_size, (count, self.length), generator=generator)
            self.splits[split] = (tokens, (tokens[:, 0] > self.vocab_size // 2).long())

    def metadata(self) -> DataMetadata:
        return DataMetadata([self.length], 2, 2, ["low", "high"], vocab_size=self.vocab_size, pad_id=0)


@dataclass
class Case:
    name: str
    overrides: list[str]
    steps: int
    segment: int  # steps per turn in lockstep: about 25 ms, and whole log intervals for the tiny MLP


CASES = [
    Case(
        "tiny MLP 64-256-256-10, digits 8x8, batch 64",
        [
            "model=mlp",
            "model.batch_norm=false",
            "data._target_=scripts.bench.loops.RepeatedDigits",
            "data.batch_size=64",
        ],
        1000,
        50,
    ),
    Case(
        "CNN conv16-conv32-fc128, 28x28, batch 128",
        [
            "model=cnn",
            "model.channels=[16,32]",
            "model.pooled_size=7",
            "model.hidden_size=128",
            "model.batch_norm=false",
            "data._target_=scripts.bench.loops.RepeatedDigits",
            "+data.size=28",
            "data.input_shape=[1,28,28]",
            "+data.train_samples=40000",
            "data.batch_size=128",
        ],
        300,
        2,
    ),
    Case(
        "LSTM 1x128, 32 tokens, vocab 1000, batch 64",
        [
            "model=rnn",
            "model.cell=lstm",
            "model.hidden_size=128",
            "model.embedding_size=64",
            "model.num_layers=1",
            "model.bidirectional=false",
            "data._target_=scripts.bench.loops.RandomSequences",
            "data.input_shape=null",
            "data.num_classes=null",
            "data.class_names=null",
            "data.batch_size=64",
        ],
        300,
        3,
    ),
]


def compose(case: Case, output_dir: Path, steps: int | None = None):
    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config

    return validate_config(
        compose_config(
            [
                *case.overrides,
                "logger=none",
                "trainer.progress=plain",
                f"trainer.max_steps={steps or case.steps}",
                "trainer.max_epochs=null",
                "trainer.log_every_n_steps=50",
                f"output_dir={output_dir}",
                "optimizer=adamw",
                "optimizer.lr=1e-3",  # the plain loops' AdamW and cross-entropy: no tuned settings
                "task.label_smoothing=0.0",
                "optimizer.weight_decay=0.0",
                "scheduler=cosine",
            ]
        )
    )


@dataclass
class LoopResult:
    losses: list[float]
    segment_ms: list[float]  # milliseconds per step in each stretch the clock ran (one without lockstep)

    @property
    def ms_per_step(self) -> float:
        return statistics.median(self.segment_ms)


class Clock:
    """Times one loop: ``step(index)`` at the start of each step (the clock starts at step 1: step 0 pays
    for one-time allocations in every loop), ``stop()`` after the last step."""

    def __init__(self) -> None:
        self.segments: list[tuple[float, int]] = []  # (seconds, steps) of each stretch timed
        self.index = self.first = 0
        self.started = 0.0

    def step(self, index: int) -> None:
        self.index = index
        if index == 1:
            self.start()

    def start(self) -> None:
        self.started, self.first = time.perf_counter(), self.index

    def stop(self) -> None:
        """After the step of the last ``step()`` call."""
        self.segments.append((time.perf_counter() - self.started, self.index - self.first + 1))

    def segment_ms(self) -> list[float]:
        return [seconds / steps * 1000 for seconds, steps in self.segments]


class _TurnClock(Clock):
    """A loop's clock in ``lockstep``: every ``segment`` steps it stops and hands the turn back."""

    def __init__(self, scheduler, segment: int):
        super().__init__()
        self.scheduler, self.segment = scheduler, segment

    def step(self, index: int) -> None:
        if index > 1 and (index - 1) % self.segment == 0:  # the turn ends before this step
            self.stop()
            self.scheduler.switch()
            self.index = index
            self.start()
        else:
            super().step(index)


def lockstep(loops: list[Callable[[Clock], LoopResult | None]], segment: int = 25) -> list[LoopResult | None]:
    """Run ``loops`` (each called with its clock) by turns of ``segment`` steps; return their results.

    The loops are greenlets in this one thread: a loop in a thread of its own ran 3x slower here (each
    thread gets its own OpenMP team). A loop keeps the turn from its start (building the model) to its
    end (a validation after the last step), so nothing else runs while one is timed.
    """
    from greenlet import getcurrent, greenlet

    scheduler = getcurrent()
    clocks = [_TurnClock(scheduler, segment) for _ in loops]
    runners = [greenlet(loop) for loop in loops]
    results: list[LoopResult | None] = [None] * len(loops)
    while any(not runner.dead for runner in runners):
        for index, (runner, clock) in enumerate(zip(runners, clocks, strict=True)):
            if not runner.dead:
                value = runner.switch(clock)  # the first switch starts the loop; the others resume it
                if runner.dead:
                    results[index] = value
    return results


def raw_loop(cfg, fused: bool | None = None, clock: Clock | None = None) -> LoopResult:
    """What a user writes by hand: same seed order as dlx, same batches, AdamW + cosine. ``fused=True``
    uses the fused AdamW kernel that dlx picks, so the two differ only by the trainer's bookkeeping."""
    from dlx.build import build_data, build_model
    from dlx.engine.trainer import seed_everything

    clock = clock or Clock()
    seed_everything(cfg.seed, deterministic=False)
    data = build_data(cfg)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr, weight_decay=0.0, fused=fused)
    steps = cfg.trainer.max_steps
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    losses = []
    model.train()
    for step, (inputs, targets) in enumerate(data.loader("train", epoch=0)):
        clock.step(step)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        losses.append(loss.detach())
        if step + 1 == steps:
            break
    clock.stop()
    return LoopResult([float(loss) for loss in losses], clock.segment_ms())


def dlx_loop(cfg, clock: Clock | None = None) -> LoopResult:
    """dlx's own trainer; its task's train_batch is wrapped only to record losses and the clock."""
    import dlx.build
    from dlx.train import fit_config

    clock, losses, steps = clock or Clock(), [], cfg.trainer.max_steps
    original_build_task = dlx.build.build_task

    def build_task(config, model):
        dlx.build.build_task = original_build_task  # only this run's task: another may start in lockstep
        task = original_build_task(config, model)
        train_batch = task.train_batch

        def timed_train_batch(batch, optimization):
            clock.step(len(losses))
            loss = train_batch(batch, optimization)
            losses.append(loss)
            if len(losses) == steps:
                clock.stop()  # the last step's end, before validation starts
            return loss

        task.train_batch = timed_train_batch
        return task

    dlx.build.build_task = build_task
    try:
        fit_config(cfg)
    finally:
        dlx.build.build_task = original_build_task
    return LoopResult([float(loss) for loss in losses], clock.segment_ms())


def lightning_loop(cfg, clock: Clock | None = None) -> LoopResult | None:
    """Lightning's barebones Trainer (no logging, progress or checkpoints) as a reference, if installed."""
    try:
        import lightning
    except ImportError:
        return None
    from dlx.build import build_data, build_model
    from dlx.engine.trainer import seed_everything

    seed_everything(cfg.seed, deterministic=False)
    data = build_data(cfg)
    model = build_model(cfg)
    steps = cfg.trainer.max_steps
    batches = list(data.loader("train", epoch=0))[:steps]
    clock, losses = clock or Clock(), []

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, index):
            clock.step(index)
            inputs, targets = batch
            loss = F.cross_entropy(self.model(inputs), targets)
            losses.append(loss.detach())
            return loss

        def on_train_batch_end(self, outputs, batch, index):
            if index + 1 == steps:
                clock.stop()  # after the last optimizer step

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=cfg.optimizer.lr, weight_decay=0.0)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    trainer = lightning.Trainer(
        barebones=True, max_steps=steps, accelerator="cpu", devices=1, num_sanity_val_steps=0
    )
    trainer.fit(Module(), train_dataloaders=_Batches(batches))
    return LoopResult([float(loss) for loss in losses], clock.segment_ms())


class _Batches:
    """The precomputed batches as one iterable (Lightning reads a plain list as several loaders)."""

    def __init__(self, batches: list):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def throughput_ratio(reference: list[LoopResult], ours: list[LoopResult]) -> float:
    """The median over lockstep turns of the reference's time per step over ours (above 1: we are faster).
    Turn by turn, the two ran moments apart; the median leaves out a turn that met a hiccup of the VM."""
    ratios = [
        theirs / mine
        for reference_run, our_run in zip(reference, ours, strict=True)
        for theirs, mine in zip(reference_run.segment_ms, our_run.segment_ms, strict=True)
    ]
    return statistics.median(ratios)


def max_loss_difference(a: LoopResult, b: LoopResult) -> float:
    if len(a.losses) != len(b.losses):
        return float("inf")
    return max(abs(x - y) for x, y in zip(a.losses, b.losses, strict=True))
