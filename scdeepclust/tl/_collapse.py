"""Detecting degenerate clusterings: empty clusters, one dominant cluster, a constant embedding."""

from __future__ import annotations

import numpy as np


def detect_collapse(
    labels: np.ndarray | None,
    n_clusters: int,
    embedding: np.ndarray | None = None,
    *,
    max_fraction: float = 0.9,
) -> list[str]:
    """Reasons why a clustering looks degenerate (an empty list when it looks healthy).

    Parameters
    ----------
    labels
        Integer cluster labels (``None`` checks the embedding only).
    n_clusters
        Number of clusters requested.
    embedding
        The representation that was clustered; flagged when (nearly) constant.
    max_fraction
        Flag a single cluster holding more than this fraction of observations.
    """
    reasons = []
    if labels is not None and np.size(labels):
        labels = np.asarray(labels)
        counts = np.bincount(labels, minlength=n_clusters)
        used = int((counts > 0).sum())
        if used < n_clusters:
            reasons.append(f"{n_clusters - used} of {n_clusters} clusters are empty")
        if counts.max() / labels.size > max_fraction:
            reasons.append(
                f"one cluster holds {counts.max() / labels.size:.1%} of observations "
                f"(> {max_fraction:.0%})"
            )
    if embedding is not None:
        spread = float(np.nanstd(embedding, axis=0).max()) if embedding.size else 0.0
        if not np.isfinite(spread) or spread < 1e-6:
            reasons.append("the embedding is constant")
    return reasons
