"""Preprocessing: spatial graph, normalisation, gene selection and spatial features.

The AnnData-facing functions (``spatial_neighbors``, ``normalize``, ``minmax_scale``,
``neighbor_features``) write into an AnnData; the others are array functions (arrays in,
arrays out) that the engine builds its model inputs from.
"""

from ._anisotropic import anisotropic_weighted, gradient_directions
from ._chunked import is_backed
from ._features import (
    expression_pcs,
    hop_weights,
    neighbor_average,
    neighbor_features,
    pca_model,
    spatial_embedding,
    standardize,
)
from ._normalize import highly_variable, log_normalize, minmax_scale, normalize, variance_genes
from ._pearson import sample_residuals
from ._spatial_neighbors import (
    CONNECTIVITIES_KEY,
    averaging_operator,
    expression_weighted,
    knn_graph,
    row_normalized,
    spatial_graph,
    spatial_neighbors,
)

__all__ = [
    "spatial_neighbors",
    "normalize",
    "minmax_scale",
    "neighbor_features",
    # array functions
    "knn_graph",
    "spatial_graph",
    "CONNECTIVITIES_KEY",
    "is_backed",
    "row_normalized",
    "averaging_operator",
    "expression_weighted",
    "anisotropic_weighted",
    "gradient_directions",
    "log_normalize",
    "highly_variable",
    "variance_genes",
    "sample_residuals",
    "standardize",
    "expression_pcs",
    "pca_model",
    "neighbor_average",
    "spatial_embedding",
    "hop_weights",
]
