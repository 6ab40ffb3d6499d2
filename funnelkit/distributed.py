"""Training on several processes (GPUs, machines) with PyTorch's DistributedDataParallel.

Launch any training command with ``torchrun``; each process then calls :func:`setup`, which
reads the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins the process
group (NCCL on CUDA, Gloo on the CPU) and picks this process's device. The
:class:`~funnelkit.train.Trainer` notices the process group by itself: every rank draws the
same full batch from the same seeded generator and keeps its own equal slice, so the gradient
that DDP averages over the ranks is exactly the mean gradient of the single-process batch.
Rank 0 alone prints and writes checkpoints.

Outside ``torchrun`` every function here is a no-op: rank 0 of a world of one.

The image flows are not yet the single-process run under DDP: their ActNorm layers initialise
themselves from the first batch they see (each rank's own slice), and their batch norm normalises
each rank's slice (torch's SyncBatchNorm is CUDA-only), so ``funnelkit train`` refuses every
experiment but four circles under ``torchrun``.
"""

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

from .device import pick_device

_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun():
    """Whether this process was started by ``torchrun`` (its environment names a rank)."""
    return all(name in os.environ for name in _LAUNCH_VARIABLES)


def is_active():
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main():
    """True on rank 0 (and in a single process): the one process that prints and writes."""
    return rank() == 0


def setup(device="auto"):
    """Join the ``torchrun`` process group if there is one; return this process's device.

    On CUDA each process takes the GPU of its ``LOCAL_RANK`` (``cuda:LOCAL_RANK``) and the
    NCCL backend; on the CPU (``device="cpu"``, or no GPU) the Gloo backend. Without
    ``torchrun`` this is :func:`~funnelkit.device.pick_device`.
    """
    chosen = pick_device(device)
    if not launched_by_torchrun():
        return chosen
    if chosen.type == "mps":
        raise ValueError("distributed training runs on CUDA GPUs or on the CPU, not on mps; pass --device cpu or cuda")
    local_rank = int(os.environ["LOCAL_RANK"])
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                             "start at most that many processes per node (--nproc_per_node)")
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return chosen


def teardown():
    """Leave the process group (a no-op when none is running)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device="auto"):
    """``with session(device) as d:`` runs :func:`setup` and, whatever happens, :func:`teardown`."""
    try:
        yield setup(device)
    finally:
        teardown()


def check_batch_size(batch_size, world):
    """Each of ``world`` ranks takes an equal slice of the batch, so ``world`` must divide it."""
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} cannot be split evenly over {world} processes; "
                         f"pick a multiple of {world} (each process must take the same number of points, "
                         "or the averaged gradient would not be the mean over the batch)")
    return batch_size // world


def shard(batch, rank_, world):
    """Rank ``rank_``'s slice of a batch: rows ``rank_, rank_ + world, ...`` (all slices equal-sized)."""
    check_batch_size(len(batch), world)
    return batch[rank_::world]


class NegativeLogLikelihood(torch.nn.Module):
    """``forward(x)`` is ``-model.log_prob(x).mean()``: the loss as a module's output.

    DDP synchronises the gradients of what its wrapped module's ``forward`` computes, while a
    flow's ``log_prob`` is a separate method; wrapping this adapter instead of the flow puts the
    loss through DDP's forward. The mean is taken in float32 or better even under autocast.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        log_prob = self.model.log_prob(x)
        if log_prob.dtype in (torch.float16, torch.bfloat16):
            log_prob = log_prob.float()
        return -log_prob.mean()


def wrap(model):
    """The loss module of ``model``, wrapped in DDP when a process group is running."""
    loss = NegativeLogLikelihood(model)
    if not is_active():
        return loss
    device = model.device
    return torch.nn.parallel.DistributedDataParallel(loss, device_ids=[device] if device.type == "cuda" else None)
