"""Louvain/Leiden community detection with a resolution search that hits a cluster count."""

from __future__ import annotations

import warnings

import numpy as np
import scanpy as sc
from anndata import AnnData

from ..engine import fit_subsample


def knn_graph_adata(
    features: np.ndarray, *, n_neighbors: int = 15, random_state: int = 0
) -> AnnData:
    """A throwaway AnnData holding the k-NN graph of ``features`` (Scanpy's ``pp.neighbors``,
    with its default transformer)."""
    tmp = AnnData(np.zeros((features.shape[0], 1), dtype=np.float32))
    tmp.obsm["X_rep"] = np.asarray(features, dtype=np.float32)
    n_neighbors = int(min(n_neighbors, features.shape[0] - 1))
    # Scanpy's default: exact below 4,096 observations, pynndescent above (pinned < 0.7 in
    # pyproject.toml, under which scanpy's approximate path works at any size)
    sc.pp.neighbors(tmp, use_rep="X_rep", n_neighbors=n_neighbors, random_state=random_state)
    return tmp


def _run_community(tmp: AnnData, flavor: str, resolution: float, random_state: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if flavor == "leiden":
            sc.tl.leiden(
                tmp,
                resolution=resolution,
                random_state=random_state,
                key_added="_c",
                flavor="leidenalg",
            )
        else:
            sc.tl.louvain(tmp, resolution=resolution, random_state=random_state, key_added="_c")
    return tmp.obs["_c"].cat.codes.to_numpy().astype(np.int64)


def community_labels(
    tmp: AnnData,
    *,
    flavor: str,
    n_clusters: int | None,
    resolution: float = 1.0,
    random_state: int = 0,
    max_steps: int = 20,
) -> tuple[np.ndarray, float, int]:
    """Cluster the graph in ``tmp``; with ``n_clusters``, bisect the resolution to hit it.

    Returns the labels, the resolution used and the number of search steps. When no
    resolution gives exactly ``n_clusters``, the closest count found is kept.
    """
    if n_clusters is None:
        return _run_community(tmp, flavor, resolution, random_state), resolution, 1
    low, high = 0.01, 3.0
    best = None
    for step in range(1, max_steps + 1):
        res = 0.5 * (low + high) if step > 1 else resolution
        labels = _run_community(tmp, flavor, res, random_state)
        k = len(np.unique(labels))
        if best is None or abs(k - n_clusters) < abs(best[2] - n_clusters):
            best = (labels, res, k)
        if k == n_clusters:
            return labels, res, step
        if k > n_clusters:
            high = res
        else:
            low = res
    return best[0], best[1], max_steps


class LeidenK:
    """``choose_k`` of :class:`scdeepclust.engine.SpatialDEC`: Leiden communities on the latent.

    Counts the Leiden communities (``resolution``) of the 15-nearest-neighbour graph of the
    pretrained latent space (subsampled to :data:`scdeepclust.engine.MAX_FIT_OBS`); at least 2.
    """

    def __init__(self, resolution: float = 0.5):
        self.resolution = resolution

    def __call__(self, estimator) -> int:
        latent = estimator.member_.latent
        seed = estimator.random_state
        tmp = knn_graph_adata(
            latent[fit_subsample(latent.shape[0], seed)], n_neighbors=15, random_state=seed
        )
        labels, _, _ = community_labels(
            tmp, flavor="leiden", n_clusters=None, resolution=self.resolution, random_state=seed
        )
        return max(2, len(np.unique(labels)))

    def __str__(self) -> str:
        return f"leiden on the latent (resolution {self.resolution})"
