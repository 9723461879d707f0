"""From an AnnData to the engine's :class:`~scdeepclust.engine.ModelInputs`."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._utils import ScdeepclustInputError, batch_labels, check_counts, check_spatial
from ..engine import FeatureOptions, ModelInputs
from ..pp import knn_graph
from ..pp._chunked import is_backed


def spatial_graph_for(adata: AnnData, *, n_neighs: int, batches: np.ndarray | None, func: str):
    """The spatial graph in ``obsp["spatial_connectivities"]``, or one built (not stored).

    A built graph links each spot to its ``n_neighs`` nearest spots, within its sample when
    ``batches`` are given. Returns ``(graph, "obsp" | "built")``.
    """
    if "spatial_connectivities" in adata.obsp:
        graph = sp.csr_matrix(adata.obsp["spatial_connectivities"], dtype=np.float32)
        if graph.shape != (adata.n_obs, adata.n_obs):
            raise ScdeepclustInputError(
                f"{func}: obsp['spatial_connectivities'] has shape {graph.shape}, "
                f"expected ({adata.n_obs}, {adata.n_obs})."
            )
        return graph, "obsp"
    graph = knn_graph(check_spatial(adata, func=func), n_neighs, groups=batches)
    graph.data = np.ones_like(graph.data)  # binary, as pp.spatial_neighbors stores it
    return graph, "built"


def model_inputs(
    adata: AnnData,
    features: FeatureOptions,
    *,
    batch_key: str | None,
    random_state: int,
    func: str,
) -> ModelInputs:
    """Validate the counts (and coordinates) of ``adata`` and build the model inputs."""
    if not is_backed(adata.X):  # a backed X is validated block by block as it is read
        check_counts(adata.X, func=func)
    batches = batch_labels(adata, batch_key, func=func)
    graph, source = None, None
    if features.spatial:
        graph, source = spatial_graph_for(
            adata, n_neighs=features.n_neighs, batches=batches, func=func
        )
    try:
        return ModelInputs.build(
            adata.X,
            graph,
            options=features,
            batches=batches,
            random_state=random_state,
            graph_source=source,
        )
    except ScdeepclustInputError as err:
        raise ScdeepclustInputError(f"{func}: {err}") from err
