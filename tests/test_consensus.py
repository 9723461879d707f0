"""Consensus of several members' soft assignments (engine._consensus)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from scdeepclust.engine import (
    REG_COVAR,
    TiedGaussianMixture,
    agreement_matrix,
    aligned_mean,
    match_clusters,
    medoid_index,
    most_agreeing,
    most_likely_index,
    most_occupied,
    tied_mixture_scores,
)
from scdeepclust.engine._consensus import agreement_scores


def one_hot(labels, k, confidence=0.9):
    proba = np.full((len(labels), k), (1 - confidence) / (k - 1), dtype=np.float32)
    proba[np.arange(len(labels)), labels] = confidence
    return proba


def test_match_clusters_recovers_a_permutation():
    ref = np.repeat(np.arange(3), 10)
    relabelled = np.array([2, 0, 1])[ref]
    perm = match_clusters(ref, relabelled, 3)
    assert np.array_equal(one_hot(relabelled, 3)[:, perm].argmax(1), ref)


def test_medoid_index_is_the_member_agreeing_best_with_the_others():
    truth = np.repeat(np.arange(3), 20)
    odd = truth.copy()
    odd[truth == 2] = 1  # merges two domains
    odd[:10] = 2  # and splits one
    agreeing = [np.array([1, 2, 0])[truth], truth.copy()]
    agreeing[1][:2] = 1  # nearly the same partition
    assert medoid_index([odd, *agreeing]) in (1, 2)
    assert medoid_index([odd, truth]) == 0  # two members: the first


def test_aligned_mean_is_in_the_medoid_members_cluster_order():
    truth = np.repeat(np.arange(3), 20)
    odd = truth.copy()
    odd[truth == 2] = 1
    odd[:10] = 2
    renamed = np.array([1, 2, 0])[truth]
    members = [one_hot(odd, 3), one_hot(renamed, 3), one_hot(truth, 3)]
    # the two agreeing members outvote the odd one, in the medoid's (member 1's) names
    assert np.array_equal(aligned_mean(members).argmax(1), renamed)
    # with the first member as reference the same partition comes in the odd member's names
    by_first = aligned_mean(members, reference=0).argmax(1)
    assert len(set(zip(by_first, truth))) == 3 and not np.array_equal(by_first, renamed)
    assert np.allclose(aligned_mean(members).sum(1), 1.0, atol=1e-5)


def test_most_agreeing_keeps_the_members_that_agree_best_with_the_others():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, 300)
    odd = rng.integers(0, 3, 300)  # a partition unlike the others'
    noisy = [np.where(rng.random(300) < 0.1, rng.integers(0, 3, 300), base) for _ in range(4)]
    labelings = [noisy[0], odd, noisy[1], noisy[2], odd.copy(), noisy[3]]
    assert most_agreeing(labelings, 1.0) == [0, 1, 2, 3, 4, 5]
    kept = most_agreeing(labelings, 0.5)
    assert len(kept) == 3 and kept == sorted(kept) and 1 not in kept and 4 not in kept
    assert most_agreeing(labelings[:2], 0.1) == [0, 1]  # never fewer than two


def test_most_occupied_keeps_the_members_that_emptied_fewest_clusters():
    base = np.repeat(np.arange(4), 25)
    merged = np.where(base == 3, 2, base)  # domains 2 and 3 merged: one cluster empty
    renamed = np.array([3, 0, 1, 2])[base]  # all four clusters, other names
    assert most_occupied([merged, base, merged.copy(), renamed]) == [1, 3]
    # one member alone has the most: the next most occupied that agrees best joins it
    near = merged.copy()
    near[:5] = 1
    assert most_occupied([near, merged, base]) == [1, 2]
    assert most_occupied([merged, base]) == [0, 1]  # two or fewer: all


def _noisy_labelings(m=7, n=300, k=5, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    out = []
    for i in range(m):
        labels = truth.copy()
        flip = rng.random(n) < 0.05 + 0.05 * i
        labels[flip] = rng.integers(0, k, flip.sum())
        out.append(labels)
    return out


def test_agreement_matrix_holds_the_pairwise_ari():
    labelings = _noisy_labelings()
    matrix = agreement_matrix(labelings)
    assert matrix.shape == (7, 7)
    assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    assert matrix[1, 4] == adjusted_rand_score(labelings[1], labelings[4])


def test_a_precomputed_agreement_gives_the_same_choices_bit_for_bit():
    labelings = _noisy_labelings()
    matrix = agreement_matrix(labelings)
    subset = [0, 2, 3, 6]
    sub = [labelings[i] for i in subset]
    # a subset's scores from the full matrix equal those computed afresh, exactly
    assert np.array_equal(
        agreement_scores(sub, matrix[np.ix_(subset, subset)]), agreement_scores(sub)
    )
    assert most_agreeing(labelings, 0.5, matrix) == most_agreeing(labelings, 0.5)
    assert medoid_index(labelings, matrix) == medoid_index(labelings) == 0
    merged = [labels if i else np.minimum(labels, 3) for i, labels in enumerate(labelings)]
    assert most_occupied(merged, agreement_matrix(merged)) == most_occupied(merged)


def test_an_agreement_of_the_wrong_shape_is_refused():
    labelings = _noisy_labelings(m=4)
    with pytest.raises(ValueError, match="4 x 4 agreement_matrix of the 4 labellings"):
        most_agreeing(labelings, 0.5, agreement_matrix(labelings[:3]))


def test_tied_mixture_scores_are_scikit_learns_em_started_from_each_labelling():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(200, 4)) + shift for shift in (0.0, 3.0, 6.0)])
    truth = np.repeat(np.arange(3), 200)
    labelings = np.stack([truth, rng.integers(0, 3, 600), np.array([2, 0, 1])[truth]])
    scores = tied_mixture_scores(X, labelings, 3, tol=1e-8, max_iter=500)
    for labels, score in zip(labelings, scores):
        gmm = TiedGaussianMixture(3, tol=1e-8, max_iter=500)
        means = np.stack([X[labels == c].mean(0) for c in range(3)])
        resid = X - means[labels]
        gmm.means_init = means
        gmm.weights_init = np.bincount(labels) / labels.size
        gmm.precisions_init = np.linalg.inv(resid.T @ resid / len(X) + REG_COVAR * np.eye(4))
        assert score == pytest.approx(gmm.fit(X).score(X), abs=1e-6)
    assert scores[0] == pytest.approx(scores[2])  # a renaming fits the same mixture
    # before any EM iteration the mixture is the labelling's own: noise fits far worse
    unrefined = tied_mixture_scores(X, labelings, 3, max_iter=0)
    assert unrefined[0] == pytest.approx(scores[0], abs=1e-3)
    assert unrefined[1] < unrefined[0] - 0.5


def test_most_likely_index_prefers_the_partition_the_spaces_support_over_the_majority():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(3), 150)
    split = truth.copy()
    split[(truth == 0) & (np.arange(450) % 2 == 0)] = 1  # splits domain 0 at random
    split[truth == 2] = 2
    # two spaces that both show the three domains, at different scales
    spaces = [
        np.concatenate([rng.normal(size=(150, 3)) + 4.0 * c for c in range(3)]) * scale
        for scale in (1.0, 10.0)
    ]
    candidates = [split, split.copy(), split.copy(), np.array([1, 2, 0])[truth]]
    assert medoid_index(candidates) in (0, 1, 2)  # three heads outvote one
    assert most_likely_index(spaces, candidates, 3) == 3
    assert most_likely_index(spaces, candidates[:1], 3) == 0
    # a subset of the observations reaches the same choice
    assert most_likely_index(spaces, candidates, 3, max_obs=200) == 3
