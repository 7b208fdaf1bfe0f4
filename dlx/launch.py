"""`dlx train trainer.devices=N`: start N processes through torchrun (torch.distributed.run), each running
`python -m dlx train <the same arguments>`, and report how they ended. Also the worker's side: record an
error where torchrun's agent reads it, and exit without the interpreter shutdown gloo can crash in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import DictConfig

from dlx.errors import DlxError

log = logging.getLogger("dlx")
LAUNCHED_ENV = "DLX_LAUNCHED"  # set for the workers `dlx train` starts: it reports their errors itself
SUMMARY_ENV = "DLX_LAUNCH_SUMMARY"  # where rank 0 leaves the run's summary for the launching process


def needs_launch(trainer: DictConfig) -> bool:
    from dlx.engine.distributed import launched_by_torchrun

    return trainer.devices * trainer.num_nodes > 1 and not launched_by_torchrun()


def train_arguments(
    overrides: list[str], config_dirs: list[Path], resume: Path | None, trust_checkpoint: bool
) -> list[str]:
    """The `dlx train` command line each process runs: the same run as this one."""
    arguments = ["train", *overrides]
    for folder in config_dirs:
        arguments += ["--config-dir", str(folder)]
    if resume is not None:
        arguments += ["--resume", str(resume)]
    if trust_checkpoint:
        arguments.append("--trust-checkpoint")
    return arguments


def launch_processes(cfg: DictConfig, arguments: list[str]) -> dict[str, Any]:
    """Run ``dlx <arguments>`` on trainer.devices processes per node; return rank 0's summary."""
    from dlx.engine.distributed import per_process_batch_size

    trainer = cfg.trainer
    world_size = trainer.devices * trainer.num_nodes
    if trainer.num_nodes > 1 and not trainer.rdzv_endpoint:
        raise DlxError(
            f"trainer.num_nodes={trainer.num_nodes} needs a meeting point: run the same command on every "
            "machine with `trainer.rdzv_endpoint=<first machine's host>:29400`."
        )
    if "batch_size" in cfg.data:
        per_process_batch_size(cfg.data.batch_size, world_size)  # refuse before starting anything
    torchrun = ["--nproc-per-node", str(trainer.devices), "--nnodes", str(trainer.num_nodes)]
    if trainer.rdzv_endpoint:
        torchrun += ["--rdzv-backend", "c10d", "--rdzv-endpoint", str(trainer.rdzv_endpoint)]
    else:
        torchrun.append("--standalone")  # a free local port, so runs side by side do not collide
    # torchrun passes a Ctrl-C or SIGTERM on to every worker once; they stop after the same step and save.
    torchrun += ["-m", "dlx", *arguments]

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    log.info("Starting %d processes through torchrun (%d per machine).", world_size, trainer.devices)
    summary_file = Path(tempfile.mkstemp(prefix="dlx-summary-", suffix=".json")[1])
    environment = {LAUNCHED_ENV: "1", SUMMARY_ENV: str(summary_file)}
    if "OMP_NUM_THREADS" not in os.environ:  # the processes share the cores
        environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // trainer.devices))
    try:
        with _environment(environment), _quiet_torchrun():
            run(parse_args(torchrun))
        text = summary_file.read_text(encoding="utf-8")
        return json.loads(text) if text else {"stop_reason": "finished"}
    except ChildFailedError as failure:
        return _outcome_of_failure(failure, world_size, trainer.collective_timeout)
    except SignalException as stop:  # torchrun has passed it on and waited for the workers
        return {"stop_reason": "interrupted", "signal": int(stop.sigval)}
    finally:
        summary_file.unlink(missing_ok=True)


def _outcome_of_failure(failure: Any, world_size: int, timeout: float) -> dict[str, Any]:
    """An interrupted run's summary, or a DlxError naming the rank that failed first and its message."""
    rank, process = _root_cause(failure.failures)
    report = process.error_file_data.get("dlx") or {}
    exit_code = report.get("exit_code", process.exitcode)
    if exit_code > 128 and report.get("interrupted"):
        return {"stop_reason": "interrupted", "signal": exit_code - 128}
    if report.get("collateral"):
        what = (
            f"it lost another process or waited for one longer than trainer.collective_timeout={timeout:g} s "
            f"({report['message']}). The other process hung or died without reporting an error; if a step "
            "can legitimately take that long, raise `trainer.collective_timeout`."
        )
    elif report:
        what = report["message"]
    elif process.exitcode < 0:
        cause = " (the out-of-memory killer sends it)" if -process.exitcode == signal.SIGKILL else ""
        what = f"it was killed by signal {process.signal_name()}{cause}, with no error recorded."
    else:
        what = f"it exited with code {process.exitcode} without recording an error."
    error = DlxError(f"Rank {rank} of {world_size} failed, and the run was stopped: {what}")
    error.exit_code = exit_code if exit_code > 0 else 1
    raise error


def _root_cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The rank whose own error stopped the run: the first to record one that is not a lost connection
    to another failed process."""

    def order(item: tuple[int, Any]) -> tuple[int, float, int]:
        report = item[1].error_file_data.get("dlx")
        if not report:
            # torchrun ends the others with SIGTERM once one process has died: not their own failure
            stopped_by_torchrun = item[1].exitcode == -signal.SIGTERM
            return (3 if stopped_by_torchrun else 2, item[1].timestamp, item[0])
        return (1 if report["collateral"] else 0, report["time"], item[0])

    return min(failures.items(), key=order)


# -- the worker's side -----------------------------------------------------------------------------
def run_worker(train: Callable[[], dict[str, Any]]) -> NoReturn:
    """Inside torchrun: train, hand the outcome to the launcher, leave the process group and exit with
    os._exit, skipping the interpreter shutdown that gloo processes can abort in."""
    from dlx.engine.distributed import leave_process_group

    exit_code = 1
    try:
        summary = train()
        interrupted = summary.get("stop_reason") == "interrupted"
        exit_code = 128 + (summary.get("signal") or signal.SIGINT) if interrupted else 0
        if interrupted:
            _record_error(exit_code, "interrupted", "", collateral=False, interrupted=True)
        elif os.environ.get(SUMMARY_ENV) and os.environ.get("RANK") == "0":
            Path(os.environ[SUMMARY_ENV]).write_text(json.dumps(summary, default=str), encoding="utf-8")
        leave_process_group(clean=True)
    except BaseException as error:  # noqa: BLE001 - every way out must reach os._exit
        exit_code = _report_failure(error)
        leave_process_group(clean=False)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)


def _report_failure(error: BaseException) -> int:
    from dlx.errors import DlxError

    if isinstance(error, DlxError):
        exit_code, message = error.exit_code, str(error)
    elif isinstance(error, KeyboardInterrupt):
        exit_code, message = 128 + signal.SIGINT, "stopped by Ctrl-C."
    else:
        exit_code, message = 1, _traceback_summary(error)
    details = "".join(traceback.format_exception(error))
    collateral = not isinstance(error, DlxError) and _is_lost_peer(error)
    _record_error(exit_code, message, details, collateral, interrupted=exit_code > 128)
    rank = os.environ.get("RANK", "?")
    if os.environ.get("DLX_DEBUG"):
        print(f"[rank {rank}] {details}", file=sys.stderr)
    elif not os.environ.get(LAUNCHED_ENV):  # started by the user's torchrun: nobody else will say it
        print(f"[rank {rank}] Error: {message}", file=sys.stderr)
    return exit_code


def _traceback_summary(error: BaseException) -> str:
    """'ValueError: text (raised in forward, model.py:12)': the error and where, without the stack."""
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    if frames:
        where = f" (raised in {frames[-1].name}, {Path(frames[-1].filename).name}:{frames[-1].lineno})"
    text = " ".join(str(error).split())[:500]
    return f"{type(error).__name__}: {text}{where}. Run with DLX_DEBUG=1 to see each process's traceback."


def _is_lost_peer(error: BaseException) -> bool:
    """An error that only says another process went away (its own error is the one to report)."""
    import torch.distributed as dist

    text = str(error).lower()
    lost = ("connection closed by peer", "connection reset by peer", "broken pipe", "timed out", "timeout")
    return isinstance(error, dist.DistError) or any(phrase in text for phrase in lost)


def _record_error(exit_code: int, message: str, details: str, collateral: bool, interrupted: bool) -> None:
    """Write the error file torchrun's agent reads (its own format, plus what dlx reports)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    record = {
        "message": {
            "message": message,
            "extraInfo": {"py_callstack": details or message, "timestamp": str(int(time.time()))},
        },
        "dlx": {
            "message": message,
            "exit_code": exit_code,
            "time": time.time(),
            "collateral": collateral,
            "interrupted": interrupted,
        },
    }
    with contextlib.suppress(OSError):
        Path(path).write_text(json.dumps(record), encoding="utf-8")


# -- the launching process ---------------------------------------------------------------------------
@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_torchrun() -> Iterator[None]:
    """torchrun's agent logs each step of its work; dlx reports the outcome itself (DLX_DEBUG: all)."""
    loggers = [
        logging.getLogger(name)
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith("torch.distributed") and not os.environ.get("DLX_DEBUG")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
