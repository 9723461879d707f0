"""Combining several clusterings of the same observations into one (arrays only)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def match_clusters(reference: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """The permutation of ``labels``' clusters that best overlaps ``reference`` (Hungarian).

    Returns ``perm`` such that cluster ``perm[c]`` of ``labels`` is matched to cluster ``c``
    of ``reference``; reorder a soft assignment with ``proba[:, perm]``.
    """
    overlap = np.zeros((n_clusters, n_clusters))
    np.add.at(overlap, (np.asarray(reference), np.asarray(labels)), 1)
    rows, cols = linear_sum_assignment(-overlap)
    perm = np.empty(n_clusters, dtype=int)
    perm[rows] = cols
    return perm


def aligned_mean(probas: list[np.ndarray]) -> np.ndarray:
    """Average soft assignments after matching every one's clusters to the first one's.

    Cluster numbers are arbitrary in each member, so each member's columns are permuted to
    the first member's clusters (maximum overlap of the hard labels) before averaging.

    Parameters
    ----------
    probas
        ``n_obs x k`` soft assignments of the members (same ``k``).

    Returns
    -------
    The ``n_obs x k`` mean, in the first member's cluster order.
    """
    reference = probas[0].argmax(axis=1)
    n_clusters = probas[0].shape[1]
    total = np.asarray(probas[0], dtype=np.float64).copy()
    for proba in probas[1:]:
        perm = match_clusters(reference, proba.argmax(axis=1), n_clusters)
        total += proba[:, perm]
    return (total / len(probas)).astype(np.float32)
