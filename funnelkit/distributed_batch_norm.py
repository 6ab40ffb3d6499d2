"""Batch normalisation whose training statistics are those of the whole batch, over every DDP rank.

Under ``torchrun`` each rank holds an equal slice of the training batch
(:mod:`funnelkit.distributed`). A plain batch norm (Ioffe and Szegedy 2015, Algorithm 1) would
normalise each slice by its own mean and variance, so the ranks together would not compute the
single-process model. :class:`DistributedBatchNorm` sums over all ranks instead: per channel c,
with N the number of values of channel c in the whole batch (rows times positions, all ranks),

.. math::

    \\mu_c = \\frac{1}{N} \\sum_{r, i} x_{r,i,c}, \\qquad
    \\sigma_c^2 = \\frac{1}{N} \\sum_{r, i} (x_{r,i,c} - \\mu_c)^2, \\qquad
    y = \\frac{x - \\mu_c}{\\sqrt{\\sigma_c^2 + \\epsilon}} \\, w_c + b_c,

the two sums (and N) all-reduced by a differentiable sum over the ranks whose backward all-reduces
the gradient as well (what ``torch.distributed.nn.functional.all_reduce`` does; torch 2.14
deprecates it): the forward values and, once DDP has averaged the gradients, the parameter
gradients are those of ``torch.nn.BatchNorm*d`` on the full batch, up to rounding. The running
statistics move as torch's do: ``running_mean <- (1 - m) running_mean + m mu`` and
``running_var <- (1 - m) running_var + m sigma^2 N / (N - 1)`` (the unbiased variance;
``momentum=None`` is the cumulative average).

It works on Gloo (the CPU) and NCCL alike; ``torch.nn.SyncBatchNorm`` is CUDA-only, so the kit
keeps this one code path, tested on the CPU. In evaluation mode, outside a process group, or
inside :func:`local_statistics`, it is torch's batch norm.

:func:`convert_batch_norm` swaps every ``BatchNorm1d/2d/3d`` of a model for this one, keeping
its parameters and buffers (the same tensors; ``state_dict`` keys unchanged).
"""

import contextvars
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm

_LOCAL = contextvars.ContextVar("funnelkit_batch_norm_local", default=False)


@contextmanager
def local_statistics():
    """Inside this block every :class:`DistributedBatchNorm` uses this process's batch alone (as
    when each rank holds the whole batch: :func:`funnelkit.distributed.initialise_from_full_batch`)."""
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


def _reduces_over_ranks():
    return (not _LOCAL.get() and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


class _SumOverRanks(torch.autograd.Function):
    """s = sum over ranks of t; the loss is the sum of every rank's, so ds/dt_r passes the sum over
    ranks of the incoming gradients back to each rank (the backward all-reduces too)."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def _summed_over_ranks(tensor):
    return _SumOverRanks.apply(tensor)


class DistributedBatchNorm(_BatchNorm):
    """``torch.nn.BatchNorm*d`` for inputs ``(batch, C, ...)`` whose training statistics are the
    whole batch's, summed over every rank of the process group (module docstring)."""

    def _check_input_dim(self, input):
        if input.dim() < 2 or input.shape[1] != self.num_features:
            raise ValueError(f"DistributedBatchNorm expects inputs of shape (batch, {self.num_features}, ...), "
                             f"got {tuple(input.shape)}")

    def forward(self, input):
        if not (self.training and _reduces_over_ranks()):
            return super().forward(input)
        self._check_input_dim(input)
        # statistics in float32 or better, also under bfloat16 autocast
        x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // x.shape[1])  # exact in float32 up to 2**24 values a channel
        first = _summed_over_ranks(torch.cat([x.sum(dims), count]))
        total, n = first[:-1], first[-1]
        mean = total / n
        centred = x - mean.view(shape)
        var = _summed_over_ranks((centred * centred).sum(dims)) / n  # biased: what normalises
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean.dtype), alpha=factor)
                unbiased = var.detach() * n / (n - 1)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        return out.to(input.dtype)


def convert_batch_norm(module):
    """Replace every torch batch norm inside ``module`` (in place) by a :class:`DistributedBatchNorm`
    holding the same parameter and buffer tensors; returns ``module`` (or its replacement, when
    ``module`` is itself a batch norm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, DistributedBatchNorm):
        new = DistributedBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        replaced = convert_batch_norm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
