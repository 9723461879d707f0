"""One run context for every tool: seed, device, threads and the clock.

``run_context`` forks the global torch RNG (CPU and every CUDA device) so that a run leaves
it as it found it, limits torch's and the BLAS/OpenMP thread pools (threadpoolctl) and
times the run. The tools, the estimators and the command line use nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..nn import resolve_device
from ._distributed import init_distributed


@contextmanager
def limit_threads(n_threads: int | None) -> Iterator[None]:
    """At most ``n_threads`` torch, BLAS and OpenMP threads inside the block (restored after).

    Small models train fastest on one thread, and a single thread is immune to the slow-down
    that idle spinning thread pools of other libraries cause on few cores. ``None`` keeps
    the libraries' settings.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def forked_rng() -> Iterator[None]:
    """Restore the global torch RNG of the CPU and of every CUDA device after the block."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield


def seed_torch(seed: int) -> torch.Generator:
    """Seed torch's global RNG (CPU and CUDA) and return a CPU generator for shuffling.

    Call inside :func:`forked_rng` (or :func:`run_context`) to leave the global state alone.
    """
    torch.manual_seed(int(seed))
    return torch.Generator(device="cpu").manual_seed(int(seed))


@dataclass
class RunContext:
    """What a run was given and when it started (see :func:`run_context`)."""

    random_state: int
    device: torch.device
    n_threads: int | None
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        """Seconds since the run started."""
        return float(time.perf_counter() - self.started)

    def seed(self, offset: int = 0) -> torch.Generator:
        """Seed torch with ``random_state + offset``; a CPU generator for shuffling."""
        return seed_torch(self.random_state + offset)


@contextmanager
def run_context(
    random_state: int = 0, device: str | torch.device = "auto", n_threads: int | None = 1
) -> Iterator[RunContext]:
    """Open a run: resolve the device, fork the RNGs, limit the threads, start the clock.

    Parameters
    ----------
    random_state
        Seed of the run (:meth:`RunContext.seed`).
    device
        ``"auto"`` (GPU when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_threads
        Thread limit for torch, BLAS and OpenMP inside the run; ``None`` keeps the setting.

    Yields
    ------
    The :class:`RunContext`.
    """
    if n_threads is not None and (isinstance(n_threads, bool) or int(n_threads) < 1):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}.")
    init_distributed()  # under torchrun: open the process group (no-op otherwise)
    context = RunContext(int(random_state), resolve_device(device), n_threads)
    with limit_threads(n_threads), forked_rng():
        yield context
