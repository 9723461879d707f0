"""Preprocessing: spatial graph, normalisation, gene selection and spatial features."""

from ._features import expression_pcs, neighbor_average, neighbor_features, spatial_embedding
from ._normalize import log_normalize, minmax_scale, normalize
from ._spatial_neighbors import spatial_neighbors

__all__ = [
    "spatial_neighbors",
    "normalize",
    "minmax_scale",
    "log_normalize",
    "expression_pcs",
    "neighbor_average",
    "spatial_embedding",
    "neighbor_features",
]
