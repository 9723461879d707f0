"""Tools: the baseline ladder and the deep models, each writing into AnnData."""

from ._ae_embed import ae_embed
from ._baselines import kmeans, pca_kmeans, pca_leiden, pca_louvain
from ._collapse import detect_collapse
from ._deep_cluster import deep_cluster
from ._label_transfer import label_transfer

__all__ = [
    "kmeans",
    "pca_kmeans",
    "pca_louvain",
    "pca_leiden",
    "ae_embed",
    "deep_cluster",
    "detect_collapse",
    "label_transfer",
]
