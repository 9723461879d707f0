"""The spatial neighbour graph, stored under squidpy's keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg
from sklearn.neighbors import NearestNeighbors

from .._utils import (
    ScdeepclustInputError,
    batch_labels,
    check_adata,
    check_group_labels,
    check_spatial,
    warn_if_overwriting,
)
from ._anisotropic import anisotropic_weighted


def knn_graph(
    coords: np.ndarray,
    n_neighs: int = 6,
    radius: float | None = None,
    *,
    groups: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Symmetric spatial distance graph on ``coords`` (kd-tree, O(N log N)); no self-loops.

    Parameters
    ----------
    coords
        ``n x 2`` coordinates.
    n_neighs
        Nearest neighbours per point (ignored when ``radius`` is given).
    radius
        Link every pair closer than this instead of the ``n_neighs`` nearest.
    groups
        Optional per-point sample labels: edges never cross samples.

    Returns
    -------
    ``n x n`` float32 CSR matrix of distances (an edge of length 0 is stored as 0).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if groups is None:
        return _knn_block(coords, n_neighs, radius)
    n = coords.shape[0]
    labels = pd.Categorical(check_group_labels(groups, func="pp.knn_graph"))
    rows, cols, vals = [], [], []
    for code in range(len(labels.categories)):
        members = np.flatnonzero(labels.codes == code)
        block = _knn_block(coords[members], n_neighs, radius).tocoo()
        rows.append(members[block.row])
        cols.append(members[block.col])
        vals.append(block.data)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).astype(np.float32)


def _knn_block(coords: np.ndarray, n_neighs: int, radius: float | None) -> sp.csr_matrix:
    """Symmetric distance graph on ``coords`` (kd-tree, O(N log N)); no self-loops."""
    n = coords.shape[0]
    if n < 2:
        return sp.csr_matrix((n, n), dtype=np.float32)
    tree = NearestNeighbors(algorithm="kd_tree").fit(coords)
    if radius is None:
        k = min(n_neighs + 1, n)
        dist, idx = tree.kneighbors(coords, n_neighbors=k)
        rows = np.repeat(np.arange(n), k)
        graph = sp.csr_matrix((dist.ravel() + 1e-12, (rows, idx.ravel())), shape=(n, n))
    else:
        graph = tree.radius_neighbors_graph(coords, radius=radius, mode="distance")
        graph.data = graph.data + 1e-12
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph = graph.maximum(graph.T).tocsr()
    graph.data = graph.data - 1e-12
    graph.data[graph.data < 0] = 0
    return graph.astype(np.float32)


def spatial_neighbors(
    adata: AnnData,
    *,
    n_neighs: int = 6,
    radius: float | None = None,
    spatial_key: str = "spatial",
    library_key: str | None = None,
    key_added: str = "spatial",
    copy: bool = False,
) -> AnnData | None:
    """Build the spatial neighbour graph of spots (squidpy-compatible keys).

    Each spot is linked to its ``n_neighs`` nearest spots (or to every spot within
    ``radius``); the graph is made symmetric. With ``library_key`` the graph is built
    within each sample only, never across samples.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm[spatial_key]``.
    n_neighs
        Number of nearest neighbours (6 matches the Visium hexagonal grid).
    radius
        If given, link all spots within this distance instead of k nearest.
    spatial_key
        ``obsm`` key of the coordinates.
    library_key
        ``obs`` column naming the sample of each spot; edges never cross samples. Every spot
        needs a value (NaN or None is an error).
    key_added
        Prefix of the outputs: ``obsp[f"{key_added}_connectivities"]``,
        ``obsp[f"{key_added}_distances"]`` and ``uns[f"{key_added}_neighbors"]``.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    func = "pp.spatial_neighbors"
    check_adata(adata, func=func)
    coords = check_spatial(adata, func=func, key=spatial_key)
    if radius is None and (isinstance(n_neighs, bool) or int(n_neighs) != n_neighs or n_neighs < 1):
        raise ScdeepclustInputError(
            f"{func}: n_neighs must be a positive integer, got {n_neighs!r}."
        )
    if radius is not None and not radius > 0:
        raise ScdeepclustInputError(f"{func}: radius must be positive, got {radius!r}.")
    libraries = batch_labels(adata, library_key, func=func, name="library_key")

    distances = knn_graph(coords, int(n_neighs), radius, groups=libraries)

    connectivities = distances.copy()
    connectivities.data = np.ones_like(connectivities.data)

    adata = adata.copy() if copy else adata
    conn_key, dist_key = f"{key_added}_connectivities", f"{key_added}_distances"
    for key in (conn_key, dist_key):
        warn_if_overwriting(adata, "obsp", key, func=func)
    warn_if_overwriting(adata, "uns", f"{key_added}_neighbors", func=func)
    adata.obsp[conn_key] = connectivities
    adata.obsp[dist_key] = distances
    degree = np.diff(connectivities.indptr)
    adata.uns[f"{key_added}_neighbors"] = {
        "connectivities_key": conn_key,
        "distances_key": dist_key,
        "params": {
            "n_neighbors": int(n_neighs),
            "radius": radius,
            "coord_type": "generic",
            "spatial_key": spatial_key,
            "library_key": library_key,
        },
        "mean_degree": float(degree.mean()),
        "n_isolated": int((degree == 0).sum()),
    }
    return adata if copy else None


#: squidpy's key of the spatial connectivities (``sq.gr.spatial_neighbors``).
CONNECTIVITIES_KEY = "spatial_connectivities"


def spatial_graph(
    adata: AnnData,
    *,
    connectivities_key: str | None = CONNECTIVITIES_KEY,
    n_neighs: int = 6,
    batches: np.ndarray | None = None,
    batch_key: str | None = None,
    build: bool = True,
    func: str,
) -> tuple[sp.csr_matrix, dict]:
    """The spatial graph a tool uses, and its record (nothing is written to ``adata``).

    The graph in ``obsp[connectivities_key]`` is reused when present (``n_neighs`` is then
    ignored, which the record and an info line say). A directed graph (squidpy's k-NN
    graph is not symmetric) is symmetrised with ``max(G, G.T)``, with an info line; a graph
    with edges between spots of different ``batches`` is refused. Without the key, a
    ``n_neighs``-nearest-neighbour graph is built within each batch (with ``build``; else
    an error says how to build it). ``connectivities_key=None`` always builds.

    Returns
    -------
    ``(graph, record)``: the binary or weighted float32 CSR graph and a dict with
    ``source`` (``"obsp"`` or ``"built"``), ``key``, ``n_neighs`` (None when reused),
    ``symmetrised``, ``batch_key``, ``n_edges`` and ``note``.
    """
    record = {
        "source": "built",
        "key": None,
        "n_neighs": int(n_neighs),
        "symmetrised": False,
        "batch_key": batch_key,
        "note": "",
    }
    if connectivities_key is not None and connectivities_key in adata.obsp:
        graph = _stored_graph(adata, connectivities_key, batches, batch_key, func=func)
        asymmetric = (graph != graph.T).nnz > 0
        if asymmetric:
            graph = graph.maximum(graph.T).tocsr()
            logg.info(
                f"{func}: obsp[{connectivities_key!r}] is directed (not symmetric); "
                "symmetrised as max(G, G.T)"
            )
        note = f"n_neighs={n_neighs} ignored: the graph in obsp[{connectivities_key!r}] was reused"
        logg.info(f"{func}: {note}")
        record.update(
            source="obsp", key=connectivities_key, n_neighs=None, symmetrised=asymmetric, note=note
        )
    elif connectivities_key not in (None, CONNECTIVITIES_KEY) or not build:
        available = ", ".join(map(repr, adata.obsp)) or "none"
        raise ScdeepclustInputError(
            f"{func}: adata.obsp[{connectivities_key!r}] is missing (obsp keys: {available}); "
            "build it with sdc.pp.spatial_neighbors(adata) (or squidpy's "
            "sq.gr.spatial_neighbors) or name the graph with connectivities_key=."
        )
    else:
        graph = knn_graph(check_spatial(adata, func=func), int(n_neighs), groups=batches)
        graph.data = np.ones_like(graph.data)  # binary, as pp.spatial_neighbors stores it
    record["n_edges"] = int(graph.nnz)
    return graph, record


def _stored_graph(
    adata: AnnData, key: str, batches: np.ndarray | None, batch_key: str | None, *, func: str
) -> sp.csr_matrix:
    """``obsp[key]`` as float32 CSR, checked: square, finite, non-negative, within batches."""
    graph = sp.csr_matrix(adata.obsp[key], dtype=np.float32)
    if graph.shape != (adata.n_obs, adata.n_obs):
        raise ScdeepclustInputError(
            f"{func}: obsp[{key!r}] has shape {graph.shape}, expected "
            f"({adata.n_obs}, {adata.n_obs})."
        )
    if graph.nnz and (not np.isfinite(graph.data).all() or graph.data.min() < 0):
        raise ScdeepclustInputError(
            f"{func}: obsp[{key!r}] holds negative, NaN or inf weights; expected "
            "non-negative connectivities."
        )
    if batches is not None:
        coo = graph.tocoo()
        codes = pd.factorize(np.asarray(batches))[0]
        crossing = int(np.count_nonzero(codes[coo.row] != codes[coo.col]))
        if crossing:
            raise ScdeepclustInputError(
                f"{func}: obsp[{key!r}] has {crossing} edge(s) between spots of different "
                f"samples (batch_key {batch_key!r}); expected a graph built within each sample: "
                f"rebuild it with sdc.pp.spatial_neighbors(adata, library_key={batch_key!r}) "
                f"(or sq.gr.spatial_neighbors(adata, library_key={batch_key!r}))."
            )
    return graph


def row_normalized(graph: sp.spmatrix, *, self_loops: bool = True) -> sp.csr_matrix:
    """Row-stochastic averaging operator of ``graph`` (optionally including each node itself)."""
    graph = sp.csr_matrix(graph, dtype=np.float32)
    if self_loops:
        graph = graph + sp.identity(graph.shape[0], dtype=np.float32, format="csr")
    degree = np.asarray(graph.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0
    return (sp.diags(1.0 / degree).astype(np.float32) @ graph).tocsr()


#: Edges per block when the expression distances of a graph's edges are computed.
EDGE_BLOCK = 200_000


def expression_weighted(
    graph: sp.spmatrix, features: np.ndarray, width_scale: float = 1.0
) -> sp.csr_matrix:
    """``graph`` with each edge ``(i, j)`` multiplied by ``exp(-d2_ij / (width_scale x median d2))``.

    ``d2_ij`` is the squared distance between rows ``i`` and ``j`` of ``features`` and the
    median is taken over the edges between distinct nodes, so neighbours that look alike
    keep their weight and neighbours across a domain boundary lose most of it (a
    bilateral filter). Computed in blocks of :data:`EDGE_BLOCK` edges.
    """
    coo = sp.coo_matrix(graph, dtype=np.float32)
    features = np.asarray(features, dtype=np.float32)
    d2 = np.empty(coo.nnz, dtype=np.float32)
    for start in range(0, coo.nnz, EDGE_BLOCK):
        stop = min(start + EDGE_BLOCK, coo.nnz)
        diff = features[coo.row[start:stop]] - features[coo.col[start:stop]]
        d2[start:stop] = np.einsum("ij,ij->i", diff, diff)
    between = d2[coo.row != coo.col]
    width = width_scale * float(np.median(between)) if between.size else 0.0
    kernel = np.exp(-d2 / np.float32(width + 1e-12)).astype(np.float32)
    return sp.csr_matrix((coo.data * kernel, (coo.row, coo.col)), shape=coo.shape)


def averaging_operator(
    graph: sp.spmatrix,
    features: np.ndarray | None = None,
    expression_weight: float = 0.0,
    width_scale: float = 1.0,
    *,
    coords: np.ndarray | None = None,
    anisotropy: float = 0.0,
) -> sp.csr_matrix:
    """Row-stochastic neighbourhood average (each node included), partly expression-weighted.

    ``(1 - expression_weight) * row_normalized(graph) + expression_weight *
    row_normalized(expression_weighted(graph, features, width_scale))``: at 0 the plain
    average of the node and its neighbours; above 0 a share of it down-weights dissimilar
    neighbours. With ``anisotropy`` > 0 the graph's edges are first weighted by
    :func:`~scdeepclust.pp.anisotropic_weighted` (strength ``anisotropy``, directions
    from ``features`` at ``coords``), so both parts average along a layer more than
    across it.
    """
    if anisotropy:
        if features is None or coords is None:
            raise ValueError("averaging_operator: anisotropy > 0 needs the features and coords.")
        graph = anisotropic_weighted(graph, coords, features, anisotropy)
    uniform = row_normalized(graph, self_loops=True)
    if not expression_weight:
        return uniform
    if features is None:
        raise ValueError("averaging_operator: expression_weight > 0 needs the features.")
    weighted = row_normalized(expression_weighted(graph, features, width_scale), self_loops=True)
    mixed = np.float32(1 - expression_weight) * uniform + np.float32(expression_weight) * weighted
    return sp.csr_matrix(mixed, dtype=np.float32)
