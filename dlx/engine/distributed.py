"""One run on several processes: the process group, the DDP/FSDP wrapper, and the few things the
processes must agree on. With one process every method does nothing.

torchrun starts the processes (`dlx train trainer.devices=N` calls it, see dlx/launch.py) with RANK,
LOCAL_RANK and WORLD_SIZE set. Each builds the same run from the same config and seed, trains on its share
of every global batch (dlx/data/base.py TensorLoader), and rank 0 alone writes files.
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import timedelta
from typing import Any

import torch
from omegaconf import DictConfig

from dlx.engine.precision import resolve_device
from dlx.errors import DlxError, first_line

log = logging.getLogger("dlx")


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def per_process_batch_size(global_batch_size: int, world_size: int) -> int:
    """data.batch_size is the global batch; each process takes an equal part of it."""
    if global_batch_size % world_size:
        suggestion = max(world_size, round(global_batch_size / world_size) * world_size)
        raise DlxError(
            f"data.batch_size={global_batch_size} is the global batch and must split evenly among the "
            f"{world_size} processes (trainer.devices x trainer.num_nodes). Type `data.batch_size="
            f"{suggestion}` (a multiple of {world_size}), or change trainer.devices."
        )
    return global_batch_size // world_size


class Processes:
    """This process's place in the run and the collectives the training loop calls."""

    def __init__(
        self, rank: int = 0, world_size: int = 1, device: torch.device | None = None, strategy: str = "ddp"
    ):
        self.rank, self.world_size, self.device, self.strategy = rank, world_size, device, strategy
        self.parallel_model: torch.nn.Module | None = None  # the DDP or FSDP module, once wrapped

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def shards_parameters(self) -> bool:
        return self.is_distributed and self.strategy == "fsdp"

    def place(self, device: torch.device) -> torch.device:
        """The device this process trains on: its own GPU (LOCAL_RANK) in a multi-process run."""
        return self.device if self.is_distributed else device

    def shard(self, data: Any) -> None:
        if self.is_distributed:
            per_process_batch_size(data.batch_size, self.world_size)
            data.shard(self.rank, self.world_size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP (averaged gradients) or FSDP (sharded parameters); the module itself keeps its state_dict."""
        if not self.is_distributed:
            return model
        if self.shards_parameters:
            from torch.distributed.fsdp import fully_shard

            # Each child with parameters is one unit of gathering; the root takes what is left.
            for child in model.children():
                if any(parameter.requires_grad for parameter in child.parameters()):
                    fully_shard(child)
            self.parallel_model = fully_shard(model)
        else:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.parallel_model = DistributedDataParallel(model, device_ids=device_ids)
        return self.parallel_model

    def share_task_state(self, task: torch.nn.Module) -> list[torch.nn.Parameter]:
        """Start every process from rank 0's copy of the modules a task holds beside its model (a GAN's
        discriminator), which DDP does not wrap; return their trainable parameters, whose gradients the
        optimizer step averages (``average_gradients``)."""
        held = [(name, tensor) for name, tensor in task.state_dict(keep_vars=True).items()]
        held = [tensor for name, tensor in held if not name.startswith("model.")]
        if not self.is_distributed or not held:
            return []
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in held:
                dist.broadcast(tensor.data, src=0)
        return [tensor for tensor in held if isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad]

    def average_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Average these parameters' gradients over the processes, as DDP does for the model's, in one
        all-reduce. A gradient that some process lacks counts as zeros there; one that every process
        lacks stays None (reading which costs one wait on the device)."""
        import torch.distributed as dist

        flat = torch.cat(
            [
                *(
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                    for p in parameters
                ),
                torch.tensor(
                    [p.grad is not None for p in parameters], dtype=torch.float32, device=self.device
                ),
            ]
        )
        dist.all_reduce(flat)
        present = flat[-len(parameters) :].tolist()
        offset = 0
        for p, anywhere in zip(parameters, present, strict=True):
            averaged = flat[offset : offset + p.numel()].view_as(p) / self.world_size
            offset += p.numel()
            if p.grad is not None:
                p.grad.copy_(averaged)
            elif anywhere:
                p.grad = averaged.to(p.dtype)

    def sync_gradients(self, now: bool) -> None:
        """Whether this batch's backward averages gradients over the processes: only the last batch of an
        accumulation window needs to (the others add to local gradients, with no communication)."""
        if self.parallel_model is None:
            return
        if self.shards_parameters:
            self.parallel_model.set_requires_gradient_sync(now)
        else:
            self.parallel_model.require_backward_grad_sync = now  # what DDP's no_sync() switches

    # -- agreements -------------------------------------------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every process if it is true on one (a stop asked for by a signal or a clock)."""
        if not self.is_distributed:
            return flag
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def combine_training_log(self, record: dict[str, float]) -> dict[str, float]:
        """The mean training loss over all processes and their summed throughput."""
        if not self.is_distributed:
            return record
        import torch.distributed as dist

        values = torch.tensor([record["train/loss"], record["samples_per_sec"]], device=self.device)
        dist.all_reduce(values)
        loss, samples_per_sec = values.tolist()
        return {**record, "train/loss": loss / self.world_size, "samples_per_sec": samples_per_sec}

    def share_from_main(self, value: Any) -> Any:
        """Rank 0's value of a small picklable object (the run folder it made), on every process."""
        if not self.is_distributed:
            return value
        import torch.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    # -- checkpoints ------------------------------------------------------------------------------
    def full_state(self, state: Any) -> Any:
        """``state`` with FSDP's parameter shards gathered into whole CPU tensors (every process must call
        this at the same point); a checkpoint so holds the same tensors whatever the process count."""
        if not self.shards_parameters:
            return state
        from torch.distributed.tensor import DTensor

        if isinstance(state, DTensor):
            return state.full_tensor().cpu()
        if isinstance(state, dict):
            return {key: self.full_state(value) for key, value in state.items()}
        if isinstance(state, list):
            return [self.full_state(value) for value in state]
        return state

    def shard_optimizer_state(self, state: dict[str, Any], optimizers: list[torch.optim.Optimizer]) -> dict:
        """A checkpoint's whole optimizer tensors cut into this process's shards (FSDP)."""
        if not self.shards_parameters:
            return state
        sharded = []
        for optimizer, saved in zip(optimizers, state["optimizers"], strict=True):
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            per_parameter = {}
            for index, values in saved["state"].items():
                parameter = parameters[int(index)]
                per_parameter[index] = {key: self._like(parameter, value) for key, value in values.items()}
            sharded.append({**saved, "state": per_parameter})
        return {**state, "optimizers": sharded}

    def _like(self, parameter: torch.Tensor, value: Any) -> Any:
        """``value`` (a whole tensor shaped like ``parameter``, e.g. Adam's moments) sharded like it."""
        from torch.distributed.tensor import DTensor, distribute_tensor

        if not isinstance(parameter, DTensor) or not torch.is_tensor(value) or value.shape != parameter.shape:
            return value
        return distribute_tensor(
            value.to(self.device), parameter.device_mesh, parameter.placements, src_data_rank=None
        )


def join_process_group(trainer: DictConfig) -> Processes:
    """Inside torchrun: join the other processes (gloo on CPU, NCCL on CUDA). Otherwise: one process."""
    requested = trainer.devices * trainer.num_nodes
    if not launched_by_torchrun():
        if requested > 1:
            raise DlxError(
                f"trainer.devices={trainer.devices} (x trainer.num_nodes={trainer.num_nodes}) asks for "
                "several processes, which only `dlx train` starts (through torchrun); this command trains "
                "in one process. Set `trainer.devices=1`, or run `dlx train` with these settings."
            )
        return Processes()
    world_size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    if world_size == 1:
        return Processes()
    import torch.distributed as dist

    device = _process_device(trainer.device, int(os.environ["LOCAL_RANK"]))
    if trainer.strategy == "fsdp" and device.type not in ("cpu", "cuda"):
        raise DlxError(f"trainer.strategy=fsdp runs on CPU or CUDA, not {device.type}.")
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            timeout=timedelta(seconds=float(trainer.collective_timeout)),
            device_id=device if device.type == "cuda" else None,
        )
    if rank != 0:  # one voice: the others report only errors
        log.setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    strategy = "ddp" if trainer.strategy == "auto" else trainer.strategy
    return Processes(rank, world_size, device, strategy)


def _process_device(name: str, local_rank: int) -> torch.device:
    device = resolve_device(name)
    if device.type == "cuda":
        if device.index is not None:
            raise DlxError(
                f"trainer.device={name} names one GPU, but each process of a multi-process run takes GPU "
                "LOCAL_RANK. Type `trainer.device=cuda` (choose GPUs with CUDA_VISIBLE_DEVICES)."
            )
        if local_rank >= torch.cuda.device_count():
            raise DlxError(
                f"Process {local_rank} of this machine has no GPU: PyTorch sees {torch.cuda.device_count()}. "
                f"Set `trainer.devices={torch.cuda.device_count()}` or fewer."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise DlxError(
            f"A multi-process run trains on CPU (gloo) or CUDA GPUs (NCCL), not {device.type}. Type "
            "`trainer.device=cpu` or `trainer.devices=1`."
        )
    return device


def leave_process_group(clean: bool) -> None:
    """After a clean run wait for the others (no rank tears down a connection still in use), then leave."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return
    try:
        if clean:
            dist.barrier()
        dist.destroy_process_group()
    except Exception as error:  # the run's outcome is already decided; say why leaving failed
        log.error("Leaving the process group failed: %s", first_line(error)[:200])
