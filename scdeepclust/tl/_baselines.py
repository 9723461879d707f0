"""The lineage's methods, kept as honest baselines: KMeans on counts, PCA + KMeans/Louvain/Leiden."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from anndata import AnnData
from scanpy import logging as logg
from sklearn.cluster import KMeans

from .._utils import (
    check_adata,
    check_n_clusters,
    check_varies,
    counts_of,
    genes_record,
    highly_variable_genes_of,
    to_dense_float32,
)
from ..pp import expression_pcs
from ._graph_clustering import community_labels, knn_graph_adata
from ._record import ResultKeys, params_of, write_result


def _finish(adata, labels, *, arguments, method, start, func, extra=None):
    """Write a baseline's labels and its record (``params`` from its arguments)."""
    record = {
        "method": method,
        "params": params_of(arguments),
        "n_clusters": int(len(np.unique(labels))),
        "seconds": (datetime.now(start.tzinfo) - start).total_seconds(),
        **(extra or {}),
    }
    adata = adata.copy() if arguments["copy"] else adata
    added = write_result(
        adata,
        ResultKeys.clustering(arguments["key_added"], latent=False),
        record=record,
        func=func,
        labels=labels,
    )
    logg.info("    finished", time=start, deep=added)
    return adata if arguments["copy"] else None


def _pcs(adata, counts, *, arguments, func):
    """Expression PCs of a baseline (the user's highly variable genes when asked) and the
    ``genes`` entry of its record."""
    genes = highly_variable_genes_of(adata, arguments["use_highly_variable"], func=func)
    pcs = expression_pcs(
        counts,
        n_comps=arguments["n_comps"],
        n_top_genes=arguments["n_top_genes"],
        random_state=arguments["random_state"],
        genes=genes,
    )
    return pcs, genes_record(adata, genes)


def kmeans(
    adata: AnnData,
    n_clusters: int,
    *,
    layer: str | None = None,
    key_added: str = "kmeans",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """KMeans on the raw count matrix (the lineage's first baseline; ignores space).

    Parameters
    ----------
    adata
        Annotated data with counts in ``X``.
    n_clusters
        Number of clusters.
    layer
        Layer holding the raw counts (e.g. ``"counts"``); ``None`` reads ``X``.
    key_added
        ``obs`` column for the labels and ``uns`` key for the record.
    random_state
        Seed of KMeans.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    arguments = dict(locals())
    func = "tl.kmeans"
    check_adata(adata, func=func)
    counts = counts_of(adata, layer, func=func)
    check_n_clusters(n_clusters, adata.n_obs, func=func, required=True)
    check_varies(counts, func=func)
    start = logg.info(f"computing {func}")
    labels = KMeans(n_clusters, n_init=10, random_state=random_state).fit_predict(
        to_dense_float32(counts)
    )
    return _finish(adata, labels, arguments=arguments, method="kmeans", start=start, func=func)


def pca_kmeans(
    adata: AnnData,
    n_clusters: int,
    *,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    key_added: str = "pca_kmeans",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """KMeans on principal components of log-normalised highly variable genes.

    Parameters
    ----------
    adata
        Annotated data with counts in ``X``.
    n_clusters
        Number of clusters.
    n_comps, n_top_genes
        PCA size and number of highly variable genes (see :func:`scdeepclust.pp.expression_pcs`).
    layer
        Layer holding the raw counts (e.g. ``"counts"``); ``None`` reads ``X``.
    use_highly_variable
        Genes of ``var["highly_variable"]``: ``None`` uses them when the column exists
        (``n_top_genes`` is then not used), ``True`` requires it, ``False`` ignores it.
    key_added
        ``obs`` column for the labels and ``uns`` key for the record.
    random_state
        Seed of PCA and KMeans.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    arguments = dict(locals())
    func = "tl.pca_kmeans"
    check_adata(adata, func=func)
    counts = counts_of(adata, layer, func=func)
    check_n_clusters(n_clusters, adata.n_obs, func=func, required=True)
    start = logg.info(f"computing {func}")
    pcs, genes = _pcs(adata, counts, arguments=arguments, func=func)
    labels = KMeans(n_clusters, n_init=10, random_state=random_state).fit_predict(pcs)
    return _finish(
        adata,
        labels,
        arguments=arguments,
        method="pca_kmeans",
        start=start,
        func=func,
        extra={"genes": genes},
    )


def _pca_community(
    adata,
    n_clusters,
    *,
    flavor,
    n_comps,
    n_top_genes,
    n_neighbors,
    resolution,
    layer,
    use_highly_variable,
    key_added,
    random_state,
    copy,
):
    arguments = dict(locals())
    func = f"tl.pca_{flavor}"
    check_adata(adata, func=func)
    counts = counts_of(adata, layer, func=func)
    check_n_clusters(n_clusters, adata.n_obs, func=func)
    start = logg.info(f"computing {func}")
    pcs, genes = _pcs(adata, counts, arguments=arguments, func=func)
    tmp = knn_graph_adata(pcs, n_neighbors=n_neighbors, random_state=random_state)
    labels, used, steps = community_labels(
        tmp, flavor=flavor, n_clusters=n_clusters, resolution=resolution, random_state=random_state
    )
    return _finish(
        adata,
        labels,
        arguments=arguments,
        method=f"pca_{flavor}",
        start=start,
        func=func,
        extra={"resolution": float(used), "search_steps": int(steps), "genes": genes},
    )


def pca_louvain(
    adata: AnnData,
    n_clusters: int | None = None,
    *,
    resolution: float = 1.0,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    n_neighbors: int = 15,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    key_added: str = "pca_louvain",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Scanpy's PCA + Louvain; with ``n_clusters`` the resolution is searched to hit it.

    Parameters
    ----------
    adata
        Annotated data with counts in ``X``.
    n_clusters
        Target number of clusters; ``None`` uses ``resolution`` as given.
    resolution
        Louvain resolution (the search's first guess when ``n_clusters`` is set).
    n_comps, n_top_genes
        PCA size and number of highly variable genes.
    n_neighbors
        Size of the expression k-NN graph.
    layer
        Layer holding the raw counts (e.g. ``"counts"``); ``None`` reads ``X``.
    use_highly_variable
        Genes of ``var["highly_variable"]``: ``None`` uses them when the column exists
        (``n_top_genes`` is then not used), ``True`` requires it, ``False`` ignores it.
    key_added
        ``obs`` column for the labels and ``uns`` key for the record (with the resolution used).
    random_state
        Seed of PCA and Louvain.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    return _pca_community(
        adata,
        n_clusters,
        flavor="louvain",
        n_comps=n_comps,
        n_top_genes=n_top_genes,
        n_neighbors=n_neighbors,
        resolution=resolution,
        layer=layer,
        use_highly_variable=use_highly_variable,
        key_added=key_added,
        random_state=random_state,
        copy=copy,
    )


def pca_leiden(
    adata: AnnData,
    n_clusters: int | None = None,
    *,
    resolution: float = 1.0,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    n_neighbors: int = 15,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    key_added: str = "pca_leiden",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Scanpy's PCA + Leiden; with ``n_clusters`` the resolution is searched to hit it.

    Parameters are those of :func:`pca_louvain`.
    """
    return _pca_community(
        adata,
        n_clusters,
        flavor="leiden",
        n_comps=n_comps,
        n_top_genes=n_top_genes,
        n_neighbors=n_neighbors,
        resolution=resolution,
        layer=layer,
        use_highly_variable=use_highly_variable,
        key_added=key_added,
        random_state=random_state,
        copy=copy,
    )
