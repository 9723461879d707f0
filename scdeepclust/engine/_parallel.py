"""Training and clustering ensemble members side by side, in forked worker processes.

The members of an ensemble are independent (each has its own seed), and each trains fastest
on one thread, so on a machine with several cores they train in parallel processes: a
``deep_cluster`` run of eight members on two cores takes about the time of five on one
(ten take about a third longer). Workers are
forked (Linux), so they see the parent's inputs without copying or pickling them; only the
results come back. Every member seeds its own RNGs, so its result does not depend on the
process it ran in: ``n_jobs=1`` and ``n_jobs=2`` give identical labels.

Members run in the calling process (``n_jobs`` = 1) on a GPU (CUDA does not survive a
fork), outside Linux, under ``torchrun``, inside a daemon process (which may not have
children), or when torch already uses several threads per process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from .._utils import ScdeepclustInputError
from ._distributed import is_distributed

#: The task of the current pool (inherited by the forked workers, never pickled).
_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def is_n_jobs(value) -> bool:
    """Whether ``value`` is a valid ``n_jobs``: ``None`` or an integer >= 1 (not a bool)."""
    if value is None:
        return True
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def check_n_jobs(n_jobs, func: str = "") -> None:
    """Raise :class:`ScdeepclustInputError` unless :func:`is_n_jobs` (prefixed with ``func``)."""
    if not is_n_jobs(n_jobs):
        prefix = f"{func}: " if func else ""
        raise ScdeepclustInputError(
            f"{prefix}n_jobs must be None or an integer >= 1, got {n_jobs!r}."
        )


def worker_count(n_jobs: int | None, n_tasks: int, device: torch.device | str = "cpu") -> int:
    """Worker processes for ``n_tasks`` member tasks (1: run them in this process).

    Parameters
    ----------
    n_jobs
        Processes asked for; ``None`` takes the cores available divided by torch's threads
        per process.
    n_tasks
        Members to train or cluster (never more workers than tasks).
    device
        The run's device: anything but the CPU runs in this process.
    """
    check_n_jobs(n_jobs)
    if n_jobs is None:
        n_jobs = max(available_cores() // max(torch.get_num_threads(), 1), 1)
    if (
        n_jobs == 1
        or n_tasks < 2
        or torch.device(device).type != "cpu"
        or not sys.platform.startswith("linux")
        or is_distributed()
        or mp.current_process().daemon
    ):
        return 1
    return int(min(n_jobs, n_tasks))


def map_members(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    n_jobs: int | None,
    device="cpu",
    *,
    desc: str = "members",
    verbose: bool = False,
) -> list[Any]:
    """``[func(item) for item in items]``, in :func:`worker_count` forked processes.

    Results come back in order. Warnings raised in a worker are raised again here, and so is
    its exception. Ctrl-C reaches the calling process only, which stops the workers.

    Parameters
    ----------
    func, items
        The task and its inputs (inherited by the workers, not pickled; results are).
    n_jobs, device
        See :func:`worker_count`.
    desc, verbose
        A progress bar over the finished items (with several workers).
    """
    workers = worker_count(n_jobs, len(items), device)
    if workers == 1:
        return [func(item) for item in items]
    global _TASK
    _TASK = (func, items)
    try:
        context = mp.get_context("fork")
        with warnings.catch_warnings():
            # Python >= 3.12 warns when a process with threads (a Jupyter kernel) forks; the
            # workers only compute and return, as torch's DataLoader workers do
            warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
            pool = context.Pool(workers, initializer=_ignore_interrupts)
        with pool:
            done = pool.imap(_run_one, range(len(items)), chunksize=1)
            bar = tqdm(done, total=len(items), desc=desc, disable=not verbose, leave=False)
            outcomes = list(bar)
    finally:
        _TASK = None
    results = []
    for result, caught in outcomes:
        for message, category in caught:
            warnings.warn(message, category, stacklevel=3)
        results.append(result)
    return results


def _ignore_interrupts() -> None:
    """Worker initialiser: Ctrl-C reaches the parent only, and SIGTERM kills at once.

    A worker inherits its parent's signal handlers. The command line turns SIGTERM into an
    exception; in a worker that handler would run Python cleanup inherited from the parent
    instead of exiting when ``Pool.terminate`` sends SIGTERM, and the pool then waited for
    it forever (seen once in a test run of ``scdeepclust cluster``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_one(index: int):
    func, items = _TASK
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(items[index])
    return result, [(str(w.message), w.category) for w in caught]
