"""Training on several processes (GPUs, machines) with PyTorch's DistributedDataParallel.

Launch any training command with ``torchrun``; each process then calls :func:`setup`, which
reads the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins the process
group (NCCL on CUDA, Gloo on the CPU) and picks this process's device. The
:class:`~funnelkit.train.Trainer` notices the process group by itself: every rank draws the
same full batch from the same seeded generator and keeps its own equal slice, so the gradient
that DDP averages over the ranks is exactly the mean gradient of the single-process batch.
Rank 0 alone prints and writes checkpoints.

Outside ``torchrun`` the process-group functions here are no-ops: rank 0 of a world of one.

The image flows need two more things to be that run, both done here. Their ActNorm layers (Glow,
Kingma and Dhariwal 2018, Sec. 3.1; one in every step of the paper's A.8 and A.9) initialise
themselves from the first training batch they see: :func:`initialise_from_full_batch` lets them see
the full batch (every rank holds it) before the first step is sharded. Their batch norm (in the
couplings' conditioners) would normalise each rank's slice: :func:`wrap` swaps it for
:class:`~funnelkit.distributed_batch_norm.DistributedBatchNorm`, whose statistics are summed over
the ranks (on Gloo too; torch's SyncBatchNorm is CUDA-only). What stays out of reach is a training
forward pass that draws random numbers (dropout with p > 0, a VAE's sampled latent): each rank would
draw its own noise for its slice, not the single process's for the batch, so :func:`check_exact`
refuses such a model under ``torchrun``.
"""

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

from .device import pick_device
from .distributed_batch_norm import convert_batch_norm, local_statistics
from .models.vae import VAE

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


def random_in_training(model):
    """What in ``model``'s training forward pass draws random numbers (dropout with p > 0, a VAE's
    sampled latent), as a list of short phrases; empty for a deterministic model."""
    found = []
    if isinstance(model, VAE):
        found.append("the VAE's sampled latent (its ELBO draws z)")
    dropouts = [name for name, m in model.named_modules()
                if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0]
    if dropouts:
        found.append(f"dropout with p > 0 ({len(dropouts)} layer{'s' if len(dropouts) > 1 else ''}, "
                     f"e.g. {dropouts[0]}, p={model.get_submodule(dropouts[0]).p})")
    return found


def check_exact(model, name="this model"):
    """Raise ValueError when data-parallel training of ``model`` could not be the single-process run:
    its training forward draws random numbers (:func:`random_in_training`), which each rank would
    draw for its own slice instead of the single process's for the whole batch."""
    found = random_in_training(model)
    if found:
        raise ValueError(f"{name} cannot train under torchrun as the one-process run does: its training forward "
                         f"pass draws random numbers ({'; '.join(found)}), and each rank would draw its own for its "
                         "slice of the batch; train it as one process (or pick a preset without dropout)")


def uninitialised(model):
    """The layers of ``model`` that initialise themselves from their first training batch and have
    not yet done so (nflows' ActNorm: an ``initialized`` buffer still False)."""
    return [m for m in model.modules()
            if isinstance(getattr(m, "initialized", None), torch.Tensor) and not bool(m.initialized)]


@torch.no_grad()
def initialise_from_full_batch(model, batch):
    """Let every not-yet-initialised data-dependent layer (ActNorm) of ``model`` initialise from
    the whole ``batch``, as it would in a single process; returns whether there was one.

    One training-mode forward pass of ``model.log_prob(batch)`` without gradients, in which batch
    norm takes the statistics of ``batch`` on this rank alone (every rank holds the full batch; see
    :func:`~funnelkit.distributed_batch_norm.local_statistics`), so each ActNorm sees exactly the
    input it sees in the single process's first step. The batch norms' running statistics are put
    back afterwards: the first step moves them once, as in one process. The Trainer calls this
    before it shards each batch; after the first step it finds nothing to do.
    """
    if not uninitialised(model):
        return False
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    kept = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    model.train()
    with local_statistics():
        model.log_prob(batch.to(device=model.device, dtype=model.dtype))
    for m, buffers in zip(norms, kept):
        for k, v in buffers.items():
            getattr(m, k).copy_(v)
    return True


def wrap(model):
    """The loss module of ``model``, wrapped in DDP when a process group is running.

    In a process group the model is first checked (:func:`check_exact`) and its batch norms become
    :class:`~funnelkit.distributed_batch_norm.DistributedBatchNorm` (in place, the same parameters).
    """
    loss = NegativeLogLikelihood(model)
    if not is_active():
        return loss
    check_exact(model)
    convert_batch_norm(model)
    device = model.device
    return torch.nn.parallel.DistributedDataParallel(loss, device_ids=[device] if device.type == "cuda" else None)
