"""One run on several processes: ``torchrun`` launches them, DistributedDataParallel averages the gradients.

``torchrun --nproc_per_node=N -m minddim train ...`` starts N copies of the same command; each reads its place
in the job from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Without torchrun (no
``WORLD_SIZE``, or ``WORLD_SIZE=1``) nothing here starts a process group and every command is the
single-process one, bit for bit.

The rules that make N processes follow the single-process run (README, "Training on several GPUs or machines"):

- **One global batch.** Every process draws the same global minibatch (indices, times t, noise eps) from the
  same seeded generator, in the order the single-process run draws them, and keeps its own contiguous block of
  rows (:func:`shard`): rank r of N keeps rows ``r B/N .. (r + 1) B/N - 1``. DDP averages the gradients of the
  N equal shards' mean losses, which is the gradient of the global batch's mean loss.
- **Sampling by rows.** ``sampling.sample(..., rows=...)`` takes the whole batch's x_T (each caller draws it from
  the shared generator), draws each step's noise for the whole batch and runs the network on this process's rows
  only; :func:`sample_across` gathers the rows of all processes.
- **Rank 0 writes.** Only rank 0 keeps the EMA and writes files (:func:`is_writer`).
- ``sample --out FOLDER`` (:mod:`minddim.sample_folder`) needs no process group: each process takes whole batches,
  b % N == rank, each with its own generator (:func:`launched_as`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.distributed as dist


class World(NamedTuple):
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""
    rank: int
    size: int
    local_rank: int


def launched_as() -> World:
    """This process's place as torchrun's environment gives it (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), process
    group or not: ``World(0, 1, 0)`` without torchrun. For work split without talking between the processes
    (``sample --out FOLDER`` takes whole batches round-robin)."""
    return World(*(int(os.environ.get(k, d)) for k, d in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"))))


def launched() -> bool:
    """Whether this process was started by torchrun as one of several (``WORLD_SIZE`` > 1)."""
    return launched_as().size > 1


def world() -> World:
    """The initialized process group's rank and size, or ``World(0, 1, 0)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), launched_as().local_rank)
    return World(0, 1, 0)


def is_writer() -> bool:
    """Whether this process writes the run's files and keeps the EMA: rank 0, or the only process."""
    return world().rank == 0


def process_device(device) -> torch.device:
    """``device`` for this process: ``"cuda"`` becomes ``cuda:LOCAL_RANK`` under torchrun (one GPU per process)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and launched():
        device = torch.device("cuda", launched_as().local_rank)
    return device


@contextmanager
def process_group(device="cpu"):
    """Under torchrun, join the job's process group for the block and leave it afterwards: NCCL when ``device``
    is a CUDA device (this process's GPU, :func:`process_device`), gloo otherwise. Without torchrun, nothing.
    Yields the device this process computes on. An exception in the block names this process's rank."""
    device = process_device(device)
    if not launched() or (dist.is_initialized()):
        yield device
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device
    except BaseException as e:
        e.add_note(f"(in the process of rank {dist.get_rank()} of {dist.get_world_size()})")
        raise
    finally:
        dist.destroy_process_group()


def shard(batch: int, name: str = "batch_size") -> slice:
    """This process's rows of a global batch of ``batch``: the r-th of N equal, contiguous blocks. A batch that
    the number of processes does not divide is a ValueError naming ``name``."""
    size = world().size
    if batch % size:
        raise ValueError(f"{name} ({batch}) must be a multiple of the number of processes ({size}): each process "
                         f"takes an equal share of the global batch")
    return rows_of(batch)


def rows_of(batch: int, rank: int | None = None) -> slice:
    """Rank ``rank``'s rows (default: this process's) of a batch to sample, as :func:`shard` but for any
    ``batch``: the first ``batch % N`` processes take one row more (as ``torch.tensor_split``)."""
    me, size, _ = world()
    rank = me if rank is None else rank
    per, extra = divmod(batch, size)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (rank < extra))


def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the processes (all_reduce); ``x`` itself with one process."""
    size = world().size
    if size == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / size


def barrier() -> None:
    """Wait until every process is here (no-op with one process)."""
    if world().size > 1:
        dist.barrier()


def gather_rows(x: torch.Tensor, batch: int) -> torch.Tensor:
    """The whole batch from every process's rows (:func:`rows_of`), in rank order, on every process."""
    size = world().size
    if size == 1:
        return x
    most = -(-batch // size)
    padded = torch.cat([x, x.new_zeros(most - len(x), *x.shape[1:])]) if len(x) < most else x.contiguous()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    rows = [rows_of(batch, r) for r in range(size)]
    return torch.cat([p[:r.stop - r.start] for p, r in zip(parts, rows)])


def sample_across(model, x_T: torch.Tensor, schedule, timesteps, eta=0.0, *, generator=None,
                  progress: bool = False, clip_x0: float | None = None) -> torch.Tensor:
    """:func:`minddim.sampling.sample` split by rows over the processes: each runs the network on its rows of
    ``x_T`` (drawing the noise of the whole batch from ``generator``, identical on every process) and all get
    the whole batch back. With one process this is ``sample`` itself."""
    from .sampling import sample

    if world().size == 1:
        return sample(model, x_T, schedule, timesteps, eta, generator=generator, progress=progress,
                      clip_x0=clip_x0)
    x = sample(model, x_T, schedule, timesteps, eta, generator=generator, progress=progress, clip_x0=clip_x0,
               rows=rows_of(len(x_T)))
    return gather_rows(x, len(x_T))


def launch_command(command: str) -> str:
    """``command`` (``python -m minddim ...``) as this job launched it: ``torchrun --nnodes M --nproc_per_node K
    -m minddim ...`` under torchrun (the rendezvous endpoint, which names a machine, left out); ``command``
    unchanged without it."""
    if not launched():
        return command
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    nodes = int(os.environ["WORLD_SIZE"]) // per_node
    return command.replace("python -m minddim", f"torchrun --nnodes {nodes} --nproc_per_node {per_node} -m minddim", 1)


def entry_point(main):
    """``main`` that, under torchrun, records a failure for the launcher (which then stops the other processes,
    exits non-zero and names the failed rank: ``torch.distributed.elastic.multiprocessing.errors.record``)."""
    if not launched():
        return main
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(main)
