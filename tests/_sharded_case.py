"""The case shared by ``test_scale.py``'s sharded-features test and its ``torchrun`` worker.

The row-block features (``pp._chunked``) of a small synthetic tissue in 12 blocks of 128
rows, the PCAs fitted on a 400-row subsample (as on an atlas, where it is a fraction), once
sparse with two samples and ``seurat`` genes, once dense with ``variance`` genes. ``X`` is
wrapped to record the rows of every block read.
"""

import numpy as np

import scdeepclust as sdc
import scdeepclust.pp._chunked as chunked
from scdeepclust.pp._spatial_neighbors import spatial_graph

CHUNK = 128
FIT_OBS = 400  # set as chunked.FIT_OBS by the caller


class CountingReads:
    """``X`` that records the first row of every block read through ``X[start:stop]``."""

    def __init__(self, X):
        self.X, self.starts = X, []

    @property
    def shape(self):
        return self.X.shape

    @property
    def dtype(self):
        return self.X.dtype

    def __getitem__(self, rows: slice):
        self.starts.append(rows.start)
        return self.X[rows]


def features() -> dict[str, np.ndarray]:
    """Expression PCs and reduced neighbour features, and the blocks read (``reads_*``)."""
    assert chunked.FIT_OBS == FIT_OBS
    adata = sdc.datasets.synthetic(n_obs=1500, n_vars=80, n_domains=3, random_state=3)
    batches = np.where(np.arange(adata.n_obs) % 3, "a", "b")
    graph, _ = spatial_graph(adata, n_neighs=6, batches=batches, func="test")
    out = {}
    cases = {"sparse": (adata.X, batches, "seurat"), "dense": (adata.X.toarray(), None, "variance")}
    for name, (X, samples, flavor) in cases.items():
        counted = CountingReads(X)
        pcs = chunked.expression_pcs_chunked(
            counted, n_comps=30, n_top_genes=40, gene_selection=flavor, batches=samples, chunk=CHUNK
        )
        out[f"pcs_{name}"] = pcs
        out[f"features_{name}"] = chunked.reduced_spatial_features(
            pcs, graph, lam=0.8, hops=3, n_comps=10, chunk=CHUNK
        )
        out[f"reads_{name}"] = np.asarray(counted.starts) // CHUNK
    return out
