"""Model inputs for the deep tools: spatial (or plain) expression features and the graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from sklearn.decomposition import PCA

from .._utils import ScdeepclustInputError, batch_labels, check_counts, check_spatial
from ..pp._features import expression_pcs, spatial_embedding
from ..pp._spatial_neighbors import _knn_graph


@dataclass
class ModelInputs:
    """What the deep tools feed to ``scdeepclust.nn``.

    Attributes
    ----------
    features
        ``n_obs x n_features`` float32, standardised so the first component has unit variance.
    graph
        Binary spatial graph (None for non-spatial runs).
    graph_source
        Where the graph came from (``"obsp"`` or ``"built"``), for the record.
    """

    features: np.ndarray
    graph: sp.csr_matrix | None
    graph_source: str | None


def spatial_graph_for(adata: AnnData, *, n_neighs: int, batch_key: str | None, func: str):
    """The spatial graph in ``obsp["spatial_connectivities"]``, or one built (not stored)."""
    if "spatial_connectivities" in adata.obsp:
        return sp.csr_matrix(adata.obsp["spatial_connectivities"], dtype=np.float32), "obsp"
    coords = check_spatial(adata, func=func)
    if batch_key is None:
        return _knn_graph(coords, n_neighs, None), "built"
    from ..pp._spatial_neighbors import spatial_neighbors

    tmp = AnnData(
        sp.csr_matrix((adata.n_obs, 1), dtype=np.float32), obs=adata.obs[[batch_key]].copy()
    )
    tmp.obsm["spatial"] = coords
    spatial_neighbors(tmp, n_neighs=n_neighs, library_key=batch_key)
    return tmp.obsp["spatial_connectivities"], "built"


def prepare_inputs(
    adata: AnnData,
    *,
    spatial: bool,
    n_top_genes: int,
    n_pcs: int,
    n_comps: int,
    lam: float,
    hops: int,
    n_neighs: int,
    batch_key: str | None,
    random_state: int,
    func: str,
) -> ModelInputs:
    """Expression PCs, neighbour-aggregated when ``spatial``, reduced to ``n_comps`` by PCA."""
    check_counts(adata.X, func=func)
    batches = batch_labels(adata, batch_key, func=func)
    graph, source = (None, None)
    if spatial:
        graph, source = spatial_graph_for(adata, n_neighs=n_neighs, batch_key=batch_key, func=func)
        if graph.shape[0] != adata.n_obs:
            raise ScdeepclustInputError(
                f"{func}: obsp['spatial_connectivities'] has shape {graph.shape}, "
                f"expected ({adata.n_obs}, {adata.n_obs})."
            )
    try:
        pcs = expression_pcs(
            adata.X,
            n_comps=n_pcs,
            n_top_genes=n_top_genes,
            batches=batches,
            random_state=random_state,
        )
    except ScdeepclustInputError as err:
        raise ScdeepclustInputError(f"{func}: {err}") from err
    features = spatial_embedding(pcs, graph, lam=lam, hops=hops) if spatial else pcs
    n_comps = int(min(n_comps, features.shape[0] - 1, features.shape[1]))
    if n_comps < features.shape[1]:
        solver = "full" if min(features.shape) <= 500 else "randomized"
        features = PCA(n_comps, svd_solver=solver, random_state=random_state).fit_transform(
            features
        )
    scale = float(features[:, 0].std()) or 1.0
    return ModelInputs((features / scale).astype(np.float32), graph, source)
