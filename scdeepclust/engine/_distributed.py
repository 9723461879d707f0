"""Launching the deep tools on several processes or machines with ``torchrun``.

``torchrun`` starts one process per GPU (or per CPU worker) on every node and sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Every tool's
run context calls :func:`init_distributed`, which then opens the process group (NCCL when
CUDA is available, gloo otherwise; ``SCDEEPCLUST_DIST_BACKEND`` overrides) and pins each
process to its GPU. The training loops then train data-parallel
(:mod:`scdeepclust.nn._distributed`). Row-block features (``pp._chunked``) are sharded:
each rank reads and processes its share of the blocks and all-reduces assemble them; the
in-memory features are computed by every rank. Every rank ends with the same features and
the same labels, so any rank (conventionally rank 0) writes the result. Outside
``torchrun`` nothing changes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..nn._distributed import is_distributed, world

__all__ = ["init_distributed", "is_distributed", "world"]


def init_distributed(backend: str | None = None) -> bool:
    """Open the process group described by ``torchrun``'s environment, once.

    Returns whether the run is distributed (more than one process). Does nothing when
    ``WORLD_SIZE`` is unset or 1, or when a process group is already open.
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = backend or os.environ.get("SCDEEPCLUST_DIST_BACKEND")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return dist.get_world_size() > 1
