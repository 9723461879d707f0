"""Tools: the baseline ladder and the deep models, each writing into AnnData.

The deep tools validate the AnnData, resolve their option groups, open one run context and
call the AnnData-free engine (:mod:`scdeepclust.engine`); one writer stores the results.
"""

from ..engine import detect_collapse
from ._ae_embed import ae_embed
from ._baselines import kmeans, pca_kmeans, pca_leiden, pca_louvain
from ._deep_cluster import deep_cluster
from ._label_transfer import label_transfer
from ._smooth_labels import smooth_labels
from ._spatial_gmm import spatial_gmm

__all__ = [
    "kmeans",
    "pca_kmeans",
    "pca_louvain",
    "pca_leiden",
    "spatial_gmm",
    "smooth_labels",
    "ae_embed",
    "deep_cluster",
    "detect_collapse",
    "label_transfer",
]
