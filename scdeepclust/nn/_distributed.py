"""Data-parallel training through ``torch.distributed`` (DistributedDataParallel).

When a process group is initialised with more than one process (``torchrun``), the training
loops wrap the model in :class:`~torch.nn.parallel.DistributedDataParallel`: every rank
draws the same global mini-batch order (the generators are seeded alike), takes its own
strided share of each mini-batch (as :class:`~torch.utils.data.DistributedSampler` splits
a dataset) and DDP averages the gradients, so each step sees the whole mini-batch. The
decisions that end a loop (loss plateau, label change) are taken on values reduced over
the ranks, and batch-norm buffers are broadcast from rank 0 before the data are encoded, so
every rank holds the same model and the same labels. All communication is torch's own
collectives (gloo on CPU, NCCL on GPU). Without a process group nothing here is used.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the process group; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialised."""
    return world()[1] > 1


class LossModule(nn.Module):
    """``forward`` = ``model.loss`` (plus the soft assignment of ``clustering``), so that
    DDP, which hooks ``forward``, synchronises the gradients of both."""

    def __init__(self, model: nn.Module, clustering: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.clustering = clustering

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None):
        out = self.model.loss(x, target)
        if self.clustering is not None:
            out["q"] = self.clustering(out["z"])
        return out


def data_parallel(
    model: nn.Module, clustering: nn.Module | None = None
) -> nn.parallel.DistributedDataParallel | None:
    """The DDP-wrapped loss of ``model`` (and ``clustering``); ``None`` when not distributed."""
    if not is_distributed():
        return None
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(
        LossModule(model, clustering),
        device_ids=[device.index] if device.type == "cuda" else None,
    )


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's strided share of a global mini-batch (``idx[rank::world]``)."""
    rank, size = world()
    return idx[rank::size]


def min_batch_rows() -> int:
    """Smallest global mini-batch kept: two rows per rank (batch norm needs two)."""
    return 2 * world()[1]


def reduce_mean(total: float, count: int, device: torch.device) -> float:
    """``sum(total) / sum(count)`` over the ranks."""
    values = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return float(values[0] / values[1].clamp(min=1))


def sync_buffers(module: nn.Module) -> None:
    """Broadcast every buffer (batch-norm statistics) from rank 0."""
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank."""
    value = torch.tensor([int(flag)], dtype=torch.int64, device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())
