"""A spatial vote on the final labels: soft assignments averaged over each spot's neighbours.

Clusterings of single cells label neighbouring cells of one domain differently where their
types differ; a vote over a window of nearest neighbours (GraphST's ``refine_label`` does a
hard one over 50 spots) cleans that up. The window grows with the section, so that it
covers the same share of every tissue: a fixed window of 12-50 neighbours erases the small
domains of the 176-346-spot HER2ST sections (C1 .474 to .009 at 50).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from .._utils import ScdeepclustInputError, check_group_labels

#: The window holds one observation in ``VOTE_SHARE`` of its sample (rounded; 0 = no vote).
#: Chosen leave-one-dataset-out in 5 of 5 folds among 1/100 to 1/1000 of the sample and
#: 1/(c k) rules (``benchmarks/results/selection.md``, session 10).
VOTE_SHARE = 200
#: Largest window: a guard for atlas-sized samples, never reached on the shared sections
#: (osmFISH, 4,839 cells, gets 24).
MAX_WINDOW = 50
#: Weight of the observation's own assignment beside each neighbour's (weight 1).
SELF_WEIGHT = 0.5
_BLOCK = 5_000


def is_window(value) -> bool:
    """Whether ``value`` is a vote window: ``"auto"`` or an integer >= 0 (not a bool)."""
    if isinstance(value, str):
        return value == "auto"
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= 0


def vote_window(n_obs: int, window: int | str = "auto") -> int:
    """Neighbours in the vote of a sample of ``n_obs``: ``round(n_obs / 200)``, at most 50.

    Parameters
    ----------
    n_obs
        Observations in the sample.
    window
        ``"auto"`` (the rule) or a number of neighbours (0 switches the vote off).
    """
    if not is_window(window):
        raise ScdeepclustInputError(
            f"vote window must be 'auto' or an integer >= 0, got {window!r}."
        )
    if window == "auto":
        window = min(int(round(n_obs / VOTE_SHARE)), MAX_WINDOW)
    return int(min(window, n_obs - 1))


def spatial_vote(
    proba: np.ndarray,
    coords: np.ndarray,
    window: int | str = "auto",
    *,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Average every observation's soft assignment with those of its nearest neighbours.

    Each row becomes ``0.5 p_i + sum_j p_j`` over the ``window`` nearest observations ``j``
    of the same group (kd-tree on ``coords``), renormalised to sum to one; its argmax is
    the voted label. Computed in blocks of rows, so memory stays linear in ``n``.

    Parameters
    ----------
    proba
        ``n x k`` soft assignments (a one-hot matrix gives a plain majority vote).
    coords
        ``n x 2`` coordinates.
    window
        ``"auto"`` (:func:`vote_window` per group) or a number of neighbours (0: none).
    groups
        Optional sample of each observation: the vote never crosses samples.

    Returns
    -------
    The voted ``n x k`` assignments (float32) and the window used in each group.
    """
    proba = np.asarray(proba, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    n = proba.shape[0]
    if groups is None:
        codes, names = np.zeros(n, dtype=int), ["all"]
    else:
        labels = pd.Categorical(check_group_labels(groups, func="spatial_vote"))
        codes, names = labels.codes, [str(c) for c in labels.categories]
    voted = proba * SELF_WEIGHT
    windows = {}
    for code, name in enumerate(names):
        members = np.flatnonzero(codes == code)
        m = vote_window(members.size, window) if members.size > 1 else 0
        windows[name] = m
        if m > 0:
            voted[members] += _neighbour_sums(proba[members], coords[members], m)
    total = voted.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0  # rows without any vote (unlabelled, alone) stay zero
    return (voted / total).astype(np.float32), windows


def _neighbour_sums(proba: np.ndarray, coords: np.ndarray, m: int) -> np.ndarray:
    """Sum of the soft assignments of each row's ``m`` nearest other rows."""
    tree = NearestNeighbors(n_neighbors=m + 1, algorithm="kd_tree").fit(coords)
    sums = np.empty_like(proba)
    for start in range(0, proba.shape[0], _BLOCK):
        rows = np.arange(start, min(start + _BLOCK, proba.shape[0]))
        idx = tree.kneighbors(coords[rows], return_distance=False)
        keep = idx != rows[:, None]  # drop the row itself (not always first: duplicates)
        keep[keep.all(axis=1), -1] = False  # itself not found: drop the farthest instead
        sums[rows] = np.einsum("rm,rmk->rk", keep.astype(proba.dtype), proba[idx])
    return sums
