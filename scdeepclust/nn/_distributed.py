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

The row-block feature step (``pp._chunked``) is sharded with the helpers at the end:
:func:`my_blocks` hands block ``i`` to rank ``i % world``, :func:`allreduce_sum` adds the
ranks' partial arrays (statistics, or per-row outputs that are zero outside a rank's rows)
and :func:`any_rank` lets every rank stop when one found an error. Without a process group
they are the identity, so the single-process path is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
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


_T = TypeVar("_T")
#: Elements per NCCL all-reduce of :func:`allreduce_sum` (the GPU copy it needs at a time).
NCCL_PIECE = 2**24


def _collective_device() -> torch.device:
    """Where the tensors of a collective must live: this rank's GPU under NCCL, else CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def my_blocks(blocks: Iterable[_T]) -> Iterator[_T]:
    """This rank's share of ``blocks``: item ``i`` goes to rank ``i % world``.

    Parameters
    ----------
    blocks
        The same sequence on every rank (row slices, for instance).

    Yields
    ------
    _T
        The items of this rank, in order; all of them when not distributed.
    """
    rank, size = world()
    for i, block in enumerate(blocks):
        if i % size == rank:
            yield block


def allreduce_sum(array: np.ndarray) -> np.ndarray:
    """Sum ``array`` over the ranks, in place (torch's ``all_reduce``, ``SUM``).

    Every rank ends with the same values. Per-row outputs are assembled exactly when each
    rank fills its own rows of a zero array (the other ranks add zeros).

    Parameters
    ----------
    array
        A C-contiguous, writable float32 or float64 array of the same shape on every rank.

    Returns
    -------
    numpy.ndarray
        ``array`` itself, now holding the sum; untouched when not distributed.
    """
    if not is_distributed():
        return array
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError("allreduce_sum needs a C-contiguous, writable array.")
    tensor = torch.from_numpy(array).view(-1)  # shares the memory of `array`
    device = _collective_device()
    if device.type == "cpu":
        dist.all_reduce(tensor)
        return array
    for start in range(0, tensor.numel(), NCCL_PIECE):  # bounded GPU memory
        piece = tensor[start : start + NCCL_PIECE]
        on_device = piece.to(device)
        dist.all_reduce(on_device)
        piece.copy_(on_device.cpu())
    return array


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on at least one rank (``flag`` when not distributed).

    Parameters
    ----------
    flag
        This rank's value.

    Returns
    -------
    bool
        The same answer on every rank.
    """
    if not is_distributed():
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
