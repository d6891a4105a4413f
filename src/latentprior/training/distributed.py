"""Data-parallel training over processes (``torchrun``): one global batch, sharded; gradients averaged.

Why not ``DistributedDataParallel``: the objectives call ``model.encode``, ``model.decode`` and
``prior.log_prob`` directly, never ``model.forward``, so DDP's hooks would not fire. The design is instead:

* every process draws the same global batch of ``train.batch_size`` images (the epoch permutation is a pure
  function of the seed) and keeps its contiguous shard of ``batch_size / world_size`` images;
* after each update's backward, :func:`all_reduce_gradients` replaces the gradients of that update's parameter
  group by their mean over processes (one all-reduce per update). Each process's loss is the mean over its
  shard, so the mean of the gradients is the gradient of the mean over the global batch, and every process's
  optimizer takes the same step: the replicas stay identical without a parameter broadcast;
* BatchNorm normalises with each process's shard by default (as DDP does). ``train.sync_bn`` swaps every
  BatchNorm for :class:`GlobalBatchNorm`, which normalises with the global batch's statistics, so a run on
  W processes computes the same losses as one process with the same global batch. ``torch.nn.SyncBatchNorm``
  is not used because it refuses CPU tensors (checked on torch 2.13), and the CPU/gloo path must work;
* reparameterisation and prior noise come from each process's own generator, seeded by rank, so the shards
  draw independent noise (the estimator is the single-process one; its random draws are not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["DistContext", "init_from_env", "current", "rank_seed", "all_reduce_gradients", "all_reduce_mean",
           "all_reduce_max",
           "broadcast_state", "average_batchnorm_buffers", "gather_objects", "GlobalBatchNorm",
           "convert_global_batchnorm"]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank in [0, world_size), local_rank picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and samples."""
        return self.rank == 0


def current() -> DistContext:
    """The context of the initialised default process group, or a single-process one."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    rank = dist.get_rank()
    return DistContext(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def init_from_env() -> DistContext:
    """Initialise the default process group from torchrun's variables when ``WORLD_SIZE`` > 1.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` (``env://``). The
    backend is gloo for CPU tensors, plus nccl for CUDA tensors when CUDA is present.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistContext()
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            backend = "cpu:gloo,cuda:nccl"
        else:
            backend = "gloo"
        dist.init_process_group(backend)
    return current()


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The noise seed of one process: distinct per rank (and per resumed step), reproducible."""
    return (seed * 1_000_003 + rank * 7919 + step * 104_729) % 2**63


def all_reduce_gradients(params: list[nn.Parameter]) -> None:
    """Replace each ``p.grad`` of ``params`` by its mean over processes, in one all-reduce per dtype.

    Parameters without a gradient are skipped; they are the same on every process (same graph).
    """
    world = dist.get_world_size()
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = _flatten_dense_tensors(grads)  # one buffer: one collective instead of one per tensor
        dist.all_reduce(flat)
        flat.div_(world)
        for g, r in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
            g.copy_(r)


def all_reduce_mean(values: Tensor) -> Tensor:
    """The mean over processes of a tensor (a copy; e.g. a stacked vector of metrics)."""
    out = values.detach().clone()
    dist.all_reduce(out)
    return out.div_(dist.get_world_size())


def all_reduce_max(value: int) -> int:
    """The largest of every process's ``value``, through a CPU tensor: with the ``cpu:gloo,cuda:nccl`` backend
    it goes over gloo, so asking every step costs no GPU sync."""
    out = torch.tensor([int(value)], dtype=torch.int64)
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return int(out.item())


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of ``src`` into the other processes (in place)."""
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, src)


def average_batchnorm_buffers(module: nn.Module) -> None:
    """Average BatchNorm running statistics over processes (per-replica BatchNorm only).

    The running averages are linear in the batch statistics, so averaging them after every step gives the
    running average of the shards' mean statistics: the global mean exactly, and for the variance the mean
    within-shard variance. Every process then holds the same model, and rank 0's checkpoint sees all data.
    """
    bufs = [b for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats
            for b in (m.running_mean, m.running_var)]
    if bufs:
        flat = _flatten_dense_tensors(bufs)
        dist.all_reduce(flat)
        flat.div_(dist.get_world_size())
        for b, r in zip(bufs, _unflatten_dense_tensors(flat, bufs), strict=True):
            b.copy_(r)


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (pickled; small objects such as RNG states)."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class _AllReduceSum(torch.autograd.Function):
    """A differentiable sum over processes: the gradient of a sum is the sum of every process's gradient.

    (torch.distributed.nn.functional.all_reduce does the same but is deprecated in torch 2.13.)
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training-mode statistics are the global batch's, across processes (gloo or nccl).

    Each process contributes its shard's count n_r, mean m_r and biased variance v_r in one differentiable
    all-reduce (a (W, 2C+1) table with one filled row per process); they combine as parallel moments::

        mean = Σ n_r m_r / N,    var = Σ n_r (v_r + (m_r − mean)²) / N

    so the output, the running statistics (unbiased variance, N/(N−1)) and the gradients (the all-reduce's
    backward sums every process's contribution) equal BatchNorm on the concatenated batch. Outside a process
    group, in eval mode, or with one process it is ordinary BatchNorm. State-dict keys are BatchNorm's.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (B, C, ...), got {x.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        world, rank, c = dist.get_world_size(), dist.get_rank(), x.shape[1]
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # statistics in fp32 at least
        dims = [0, *range(2, x.dim())]
        var, mean = torch.var_mean(xf, dim=dims, correction=0)  # (C,) each
        row = torch.cat([mean, var, mean.new_full((1,), x.numel() // c)])  # (2C+1,)
        zero = torch.zeros_like(row)
        table = _AllReduceSum.apply(torch.stack([row if r == rank else zero for r in range(world)]))  # (W, 2C+1)
        means, variances, counts = table[:, :c], table[:, c:2 * c], table[:, 2 * c:]
        n = counts.sum()
        g_mean = (counts * means).sum(0) / n  # (C,)
        g_var = (counts * (variances + (means - g_mean).pow(2))).sum(0) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(g_mean.to(self.running_mean.dtype), m)
                self.running_var.lerp_((g_var * n / (n - 1)).to(self.running_var.dtype), m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (xf - g_mean.view(shape)) * torch.rsqrt(g_var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm{1,2,3}d in ``module`` for :class:`GlobalBatchNorm`, sharing parameters and buffers.

    The same Parameter objects are kept, so optimizers built before or after the swap both work.
    """
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_global_batchnorm(child))
    return out
