"""Combining several clusterings of the same observations into one (arrays only)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from ..pp._chunked import fit_subsample
from ._mixture import tied_mixture_scores

#: Most observations :func:`most_likely_index` fits its mixtures on (a fixed random subset).
LIKELIHOOD_OBS = 20_000
#: Most members whose labels a likelihood-chosen consensus reference is picked from (the
#: first kept ones; every member's space judges them, so the cost is members x this).
LIKELIHOOD_CANDIDATES = 16


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


def agreement_matrix(labelings: list[np.ndarray]) -> np.ndarray:
    """The ARI of every pair of labellings (``m x m``, symmetric, zero diagonal).

    Computed once, it serves every choice among the same labellings: pass it (or its rows
    and columns of a subset) as ``agreement=`` to the functions below.
    """
    m = len(labelings)
    matrix = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            matrix[i, j] = matrix[j, i] = adjusted_rand_score(labelings[i], labelings[j])
    return matrix


def mean_agreement(agreement: np.ndarray) -> float:
    """The mean ARI over the distinct pairs of an :func:`agreement_matrix` (1.0 with fewer
    than two labellings: nothing disagrees)."""
    m = np.shape(agreement)[0]
    if m < 2:
        return 1.0
    return float(agreement[np.triu_indices(m, k=1)].mean())


def agreement_scores(
    labelings: list[np.ndarray], agreement: np.ndarray | None = None
) -> np.ndarray:
    """Each labelling's summed ARI with all the others.

    ``agreement``: their :func:`agreement_matrix`, when already computed. The sums run over
    the others in index order (a cumulative sum), so a subset's scores from the full
    matrix's rows and columns equal those computed from the subset's labellings.
    """
    m = len(labelings)
    if agreement is None:
        agreement = agreement_matrix(labelings)
    elif np.shape(agreement) != (m, m):
        raise ValueError(
            f"agreement must be the {m} x {m} agreement_matrix of the {m} labellings, "
            f"got shape {np.shape(agreement)}."
        )
    if m == 0:
        return np.zeros(0)
    return np.cumsum(agreement, axis=1)[:, -1]


def medoid_index(labelings: list[np.ndarray], agreement: np.ndarray | None = None) -> int:
    """Index of the labelling that agrees best with the others (highest summed ARI).

    Ties go to the earliest labelling; with fewer than three labellings it is 0.
    ``agreement``: their :func:`agreement_matrix`, when already computed.
    """
    return int(agreement_scores(labelings, agreement).argmax()) if len(labelings) > 2 else 0


def most_likely_index(
    latents: list[np.ndarray],
    labelings: list[np.ndarray],
    n_clusters: int,
    max_obs: int = LIKELIHOOD_OBS,
) -> int:
    """Index of the labelling that the latent spaces find most likely.

    Each latent space scores every labelling by the likelihood of a tied-covariance
    Gaussian mixture fitted to it by EM from that labelling (:func:`tied_mixture_scores`);
    the scores are standardised within each latent space (so every space weighs the same)
    and averaged over the spaces. Where an ensemble's members split into camps of
    partitions, a camp can win the vote of agreement by its numbers alone, while its
    members' own mixtures would have preferred the other camp's partition if they had
    found it: their restarts reach it rarely. This asks the members' spaces instead of
    counting heads. Ties go to the earliest labelling; with one labelling it is 0.

    Parameters
    ----------
    latents
        ``n_obs x d`` spaces (e.g. the members' pretrained latent spaces; any dimensions).
    labelings
        The candidate labellings, coded ``0 .. n_clusters - 1``.
    n_clusters
        Number of clusters of the candidates.
    max_obs
        The mixtures are fitted on at most this many observations (a fixed random subset,
        the same for every space and labelling), which bounds time and memory.
    """
    if len(labelings) < 2:
        return 0
    rows = fit_subsample(len(labelings[0]), 0, max_obs)
    candidates = np.stack([np.asarray(labels)[rows] for labels in labelings])
    votes = np.zeros(len(labelings))
    for latent in latents:
        scores = tied_mixture_scores(np.asarray(latent)[rows], candidates, n_clusters)
        spread = scores.std()
        votes += (scores - scores.mean()) / spread if spread > 0 else 0.0
    return int(votes.argmax())


def most_agreeing(
    labelings: list[np.ndarray], share: float, agreement: np.ndarray | None = None
) -> list[int]:
    """Indices (ascending) of the ``share`` of the labellings that agree best with the others.

    Keeps ``round(share x m)`` labellings, at least two (all when there are fewer), ranked by
    their summed ARI with all the others (ties to the earliest): an ensemble's members
    that found a partition unlike the rest's are left out of its consensus.
    ``agreement``: their :func:`agreement_matrix`, when already computed.
    """
    m = len(labelings)
    n_keep = min(max(int(round(share * m)), 2), m)
    if n_keep == m:
        return list(range(m))
    order = np.argsort(-agreement_scores(labelings, agreement), kind="stable")
    return sorted(order[:n_keep].tolist())


def most_occupied(labelings: list[np.ndarray], agreement: np.ndarray | None = None) -> list[int]:
    """Indices (ascending) of the labellings that left the fewest clusters empty.

    A member of an ensemble that emptied a cluster has merged two domains that others kept
    apart. The labellings with the most non-empty clusters are kept, at least two: when
    only one has the most, it is joined by the labelling with the next most that agrees
    best with the others (summed ARI; ties to the earliest). Two or fewer are all kept.
    ``agreement``: their :func:`agreement_matrix`, when already computed.
    """
    m = len(labelings)
    if m <= 2:
        return list(range(m))
    occupied = np.array([np.unique(np.asarray(labels)).size for labels in labelings])
    best = np.flatnonzero(occupied == occupied.max())
    if best.size >= 2:
        return best.tolist()
    order = np.lexsort((np.arange(m), -agreement_scores(labelings, agreement), -occupied))
    return sorted(order[:2].tolist())


def aligned_mean(probas: list[np.ndarray], reference: int | str = "medoid") -> np.ndarray:
    """Average soft assignments after matching every one's clusters to a reference's.

    Cluster numbers are arbitrary in each member, so each member's columns are permuted to
    the reference member's clusters (maximum overlap of the hard labels) before averaging.
    Matching to a member whose partition is unlike the others' (a split or merged domain)
    pulls the mean towards that partition, so by default the reference is the member that
    agrees best with the others (:func:`medoid_index`).

    Parameters
    ----------
    probas
        ``n_obs x k`` soft assignments of the members (same ``k``).
    reference
        ``"medoid"`` or the index of the reference member.

    Returns
    -------
    The ``n_obs x k`` mean, in the reference member's cluster order.
    """
    hard = [np.asarray(p).argmax(axis=1) for p in probas]
    ref = medoid_index(hard) if reference == "medoid" else int(reference)
    n_clusters = probas[ref].shape[1]
    total = np.zeros(probas[ref].shape, dtype=np.float64)
    for i, (proba, labels) in enumerate(zip(probas, hard)):
        total += proba if i == ref else proba[:, match_clusters(hard[ref], labels, n_clusters)]
    return (total / len(probas)).astype(np.float32)
