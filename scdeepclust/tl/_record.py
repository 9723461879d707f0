"""Writing a tool's results into AnnData, the same way for every tool."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._uns import h5ad_writable
from .._utils import as_categorical_labels, relabel_by_size, warn_if_overwriting


def write_clustering(
    adata: AnnData,
    labels: np.ndarray,
    *,
    key_added: str,
    record: dict,
    func: str,
    obsm: dict[str, np.ndarray] | None = None,
) -> None:
    """Store labels in ``obs[key_added]`` (categorical, renumbered by size), arrays in ``obsm``
    and ``record`` in ``uns[key_added]`` (made writable by ``write_h5ad``, see
    :func:`~scdeepclust._uns.h5ad_writable`); warns before replacing any existing key."""
    obsm = obsm or {}
    warn_if_overwriting(adata, "obs", key_added, func=func)
    warn_if_overwriting(adata, "uns", key_added, func=func)
    for key in obsm:
        warn_if_overwriting(adata, "obsm", key, func=func)
    adata.obs[key_added] = as_categorical_labels(relabel_by_size(labels))
    for key, value in obsm.items():
        adata.obsm[key] = value
    adata.uns[key_added] = h5ad_writable(record)
