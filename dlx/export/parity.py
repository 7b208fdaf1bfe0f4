"""The check after every export: does the file compute what the PyTorch model computes, and how fast?"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlx.console import console
from dlx.errors import DlxError
from dlx.export import ExportedFile

if TYPE_CHECKING:
    import torch

    from dlx.export.signature import ModelSignature

# Largest |PyTorch - exported| allowed on any output of a float32 export; int8 exports are judged by
# how often they agree with PyTorch's argmax and by the change in validation accuracy instead.
TOLERANCE = 1e-4
LATENCY_BATCHES = (1, 64)
TIMING_WARMUP_CALLS = 3  # TorchScript's profiling executor optimises the graph during the first calls
TIMING_BUDGET_SECONDS = 0.3  # per measurement, after the warm-up
TIMING_MIN_RUNS, TIMING_MAX_RUNS = 3, 100

Runner = Callable[["torch.Tensor"], "torch.Tensor"]


class ParityCheckFailed(DlxError):
    """The exported file's outputs differ from the PyTorch model's by more than TOLERANCE."""

    exit_code = 1


@dataclass
class ParityReport:
    samples: int
    split: str
    max_abs_difference: float
    agreement: tuple[int, int] | None  # argmax equal to PyTorch's, out of; None when not a classifier
    latency_ms: dict[int, tuple[float, float]] = field(default_factory=dict)  # batch -> (eager, exported)
    accuracy: tuple[float, float, int] | None = None  # int8: (PyTorch, exported, samples) on the split
    split_agreement: tuple[int, int] | None = None  # int8: argmax agreement over the whole split

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_difference <= TOLERANCE


def check_parity(
    model: torch.nn.Module,
    runner: Runner,
    signature: ModelSignature,
    data: Any,
    classifier: bool,
    int8: bool,
) -> ParityReport:
    """Compare ``runner`` (the exported file) with ``model`` on real inputs, and time both."""
    import torch

    inputs = signature.check_inputs
    with torch.inference_mode():
        expected = model(inputs).float()
        actual = runner(inputs).float()
    if actual.shape != expected.shape:
        raise ParityCheckFailed(
            f"The exported model returns outputs of shape {list(actual.shape)} for {len(inputs)} inputs, "
            f"the PyTorch model {list(expected.shape)}: the export is wrong. Try another format."
        )
    report = ParityReport(
        samples=len(inputs),
        split=signature.check_split,
        max_abs_difference=float((actual - expected).abs().max()),
        agreement=_agreement(expected, actual) if classifier else None,
    )
    # One thread each: a fair comparison, and steady on a busy machine, where a second thread that
    # waits for a free core can stall every call of a multi-threaded runtime by tens of milliseconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for batch in LATENCY_BATCHES:
            batch_inputs = _batch_of(inputs, batch)
            report.latency_ms[batch] = (_latency_ms(model, batch_inputs), _latency_ms(runner, batch_inputs))
    finally:
        torch.set_num_threads(threads)
    if int8 and classifier:
        report.accuracy, report.split_agreement = _accuracy_on_split(
            model, runner, data, signature.check_split
        )
    return report


def _agreement(expected: torch.Tensor, actual: torch.Tensor) -> tuple[int, int]:
    return int((expected.argmax(1) == actual.argmax(1)).sum()), len(expected)


def _batch_of(inputs: torch.Tensor, size: int) -> torch.Tensor:
    repeats = -(-size // len(inputs))
    return inputs.repeat(repeats, *([1] * (inputs.dim() - 1)))[:size].contiguous()


def _latency_ms(run: Runner, inputs: torch.Tensor) -> float:
    """The fastest of as many calls as fit in the timing budget: on a shared machine the other programs
    only ever add time, so the minimum is the steadiest estimate (as timeit advises)."""
    import torch

    with torch.inference_mode():
        for _ in range(TIMING_WARMUP_CALLS):
            run(inputs)
        times: list[float] = []
        deadline = time.perf_counter() + TIMING_BUDGET_SECONDS
        while len(times) < TIMING_MIN_RUNS or (
            len(times) < TIMING_MAX_RUNS and time.perf_counter() < deadline
        ):
            start = time.perf_counter()
            run(inputs)
            times.append(time.perf_counter() - start)
    return min(times) * 1000


def _accuracy_on_split(
    model: torch.nn.Module, runner: Runner, data: Any, split: str
) -> tuple[tuple[float, float, int], tuple[int, int]]:
    import torch

    correct_eager = correct_exported = agree = total = 0
    with torch.inference_mode():
        for inputs, targets in data.loader(split, shuffle=False):
            eager = model(inputs).argmax(1)
            exported = runner(inputs).argmax(1)
            correct_eager += int((eager == targets).sum())
            correct_exported += int((exported == targets).sum())
            agree += int((eager == exported).sum())
            total += len(targets)
    return (correct_eager / total, correct_exported / total, total), (agree, total)


def raise_if_outside_tolerance(report: ParityReport, exported: ExportedFile) -> None:
    if exported.fp32_size is None and not report.within_tolerance:
        raise ParityCheckFailed(
            f"The exported model differs from the PyTorch model: max |difference| "
            f"{report.max_abs_difference:.3g} on {report.samples} {report.split} inputs, above the "
            f"tolerance {TOLERANCE:g}. The file {exported.path} is kept for inspection but should not be "
            "deployed; try another format (or `--opset`), or pass `--no-check` to skip this check."
        )


# -- the table ------------------------------------------------------------------------------------
def human_size(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


def _ms(milliseconds: float) -> str:
    digits = 3 if milliseconds < 1 else 2 if milliseconds < 100 else 0
    return f"{milliseconds:.{digits}f} ms"


def _percent(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.1f}%)"


def print_export_table(
    title: str, exported: ExportedFile, runtime: str, export_seconds: float, report: ParityReport | None
) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", caption_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    size = exported.path.stat().st_size
    table.add_row("file", str(exported.path))
    table.add_row("exporter", exported.exporter)
    table.add_row("export time", f"{export_seconds:.1f} s")
    table.add_row("file size", human_size(size))
    if exported.fp32_size is not None:
        change = 100 * (size - exported.fp32_size) / exported.fp32_size
        table.add_row(
            "size vs float32", f"{human_size(exported.fp32_size)} -> {human_size(size)} ({change:+.0f}%)"
        )
    if report is None:
        table.add_row("check", "skipped (--no-check)")
        console.print(table)
        return
    inputs = f"{report.samples} {report.split} inputs"
    if exported.fp32_size is None:
        verdict = "[green]pass[/]" if report.within_tolerance else "[bold red]FAIL[/]"
        table.add_row(
            "max |PyTorch - export|",
            f"{report.max_abs_difference:.2g} on {inputs} (tolerance {TOLERANCE:g}): {verdict}",
        )
    else:
        table.add_row(
            "max |PyTorch - export|", f"{report.max_abs_difference:.2g} on {inputs} (int8: not judged)"
        )
    if report.agreement is not None:
        table.add_row("argmax agreement", _percent(*report.agreement))
    if report.accuracy is not None and report.split_agreement is not None:
        eager, exported_accuracy, total = report.accuracy
        change = 100 * (exported_accuracy - eager)
        table.add_row(
            f"{report.split} accuracy",
            f"{100 * eager:.2f}% PyTorch -> {100 * exported_accuracy:.2f}% int8 ({change:+.2f} pt, {total})",
        )
        table.add_row(f"argmax agreement ({report.split})", _percent(*report.split_agreement))
    for batch, (eager_ms, exported_ms) in report.latency_ms.items():
        table.add_row(
            f"latency, batch {batch}",
            f"{_ms(eager_ms)} eager, {_ms(exported_ms)} {runtime} ({eager_ms / exported_ms:.1f}x)",
        )
    table.caption = "latency: one CPU thread each, the fastest of repeated calls after a warm-up"
    console.print(table)
