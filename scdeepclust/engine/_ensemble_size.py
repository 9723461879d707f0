"""How many autoencoders an ensemble trains: a fixed number, or ``"auto"`` by a compute rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn as snn

if TYPE_CHECKING:
    from ._options import TrainOptions

#: Rows an ``"auto"`` ensemble visits per pretraining epoch, all members together: 13-17
#: members on a 3,600-4,900-spot Visium slice or osmFISH, within the 30 s budget. It was
#: 32,000 (eight members) until session 19 made a training step faster, then 48,000;
#: 48,000 and 64,000 were swept over eight seeds (``benchmarks/results/selection.md``):
#: 64,000 scored best and fits the budget since session 20's faster step.
ENSEMBLE_ROWS = 64_000
#: Fewest and most members of an ``"auto"`` ensemble. The most was 20 until session 23: on
#: small data (BaristaSeq 41 members, STARmap 61, HER2ST 80 under this cap) the larger
#: ensemble lowers the seed sd of HER2ST's consensus (over eight seeds A1 .030, C1 .029,
#: D1 .012 against .040, .059, .044) at the same accuracy, in 7-14 s a section; a cap of
#: 200 is no steadier and takes 22-29 s on a few hundred spots
#: (``benchmarks/results/selection.md``, session 23).
AUTO_MEMBERS = (8, 80)


def budgeted_count(budget: int, rows: int, bounds: tuple[int, int]) -> int:
    """How many passes over ``rows`` rows fit a ``budget`` of rows, within ``bounds``
    (the rule behind every ``"auto"`` count: ensemble members, mixture restarts)."""
    low, high = bounds
    return int(min(max(budget // max(int(rows), 1), low), high))


def ensemble_size(n_members: int | str, n_obs: int, train: TrainOptions) -> int:
    """The number of members to train on ``n_obs`` observations.

    Parameters
    ----------
    n_members
        An integer is returned as is. ``"auto"`` spends a fixed pretraining budget: about
        :data:`ENSEMBLE_ROWS` rows per epoch for the whole ensemble, so small data (a few
        hundred to a couple of thousand spots, where one member costs little) gets more
        members and a steadier consensus, clipped to :data:`AUTO_MEMBERS`. An epoch visits
        at most ``batch_size x`` :attr:`~scdeepclust.nn.TrainConfig.max_batches_per_epoch`
        rows, so very large data gets the fewest.
    n_obs
        Observations the members are trained on.
    train
        The training options (their ``batch_size``).
    """
    if n_members != "auto":
        return int(n_members)
    rows = min(int(n_obs), train.batch_size * snn.TrainConfig.max_batches_per_epoch)
    return budgeted_count(ENSEMBLE_ROWS, rows, AUTO_MEMBERS)
