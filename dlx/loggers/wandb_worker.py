"""The process that talks to Weights & Biases for one training run (started by dlx.loggers.wandb_run).

Importing wandb and starting a run costs one to two seconds of Python; in this process it runs beside
training instead of holding the training process's interpreter lock. It reads one JSON request per line
on stdin (the first one starts the run) and reports warnings and its mode as JSON lines on stdout. When
stdin closes without a ``finish`` request (the training process died), it finishes the run as failed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from dlx.errors import first_line

_messages = sys.stdout  # replaced in main(): whatever else prints must not mix into the replies


def _report(**message: Any) -> None:
    print(json.dumps(message), file=_messages, flush=True)


def start_run(request: dict[str, Any]) -> Any:
    """wandb.init in the requested mode; online falls back to offline, and a failed start to no run."""
    import wandb

    arguments = request["arguments"]
    arguments["settings"] = wandb.Settings(
        init_timeout=float(request["init_timeout"]),
        console="off",
        silent=True,
        x_stats_pid=os.getppid(),  # the system charts' process memory and CPU: training's, not this one's
    )
    if request["mode"] == "online":
        try:
            return wandb.init(mode="online", **arguments)
        except Exception as error:  # unreachable server, bad key, timeout
            _report(
                mode="offline",
                warning=f"W&B online init failed ({first_line(error)[:160]}); logging offline instead. "
                f"Upload later with `wandb sync {arguments['dir']}/wandb`.",
            )
            wandb.teardown()  # a failed online start can leave the shared W&B service unusable
    try:
        return wandb.init(mode="offline", **arguments)
    except Exception as error:
        _report(
            mode="disabled",
            warning=f"W&B could not start ({first_line(error)[:160]}); continuing without it. metrics.jsonl "
            "has every metric.",
        )
        return None


def _upload_checkpoint(run: Any, path: str) -> None:
    import wandb

    artifact = wandb.Artifact(f"model-{run.id}", type="model")
    artifact.add_file(path)
    run.log_artifact(artifact, aliases=["best"])


def serve(lines: Any) -> None:
    run = start_run(json.loads(next(lines)))
    exit_code = 1  # unless the training process says otherwise
    for line in lines:
        request = json.loads(line)
        action = request["action"]
        if action == "finish":
            exit_code = request["exit_code"]
            break
        if run is None:
            continue
        try:
            if action == "log":
                run.log(request["metrics"], step=request["step"])
            elif action == "summary":
                run.summary.update(request["values"])
            elif action == "artifact upload":
                _upload_checkpoint(run, request["path"])
        except Exception as error:
            _report(
                warning=f"W&B {action} failed ({first_line(error)[:160]}); W&B logging is off for the rest "
                "of the run, metrics.jsonl continues."
            )
            run = None
    if run is not None:
        try:
            run.finish(exit_code=exit_code)
        except Exception as error:
            _report(warning=f"W&B finish failed ({first_line(error)[:160]}).")


def main() -> None:
    global _messages
    # Ctrl-C in the terminal is for the training process, which then finishes this run properly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)  # logging yields the CPU to training: on a busy machine it starts later, slows it less
    _messages = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed, by wandb or below Python, goes where stderr goes
    sys.stdout = sys.stderr
    import wandb  # the slow part, done while the training process builds its model

    try:
        wandb.setup()  # starts W&B's service, which wandb.init would otherwise start
    except Exception:
        pass  # wandb.init tries again, and reports what fails
    serve(iter(sys.stdin.readline, ""))


if __name__ == "__main__":
    main()
