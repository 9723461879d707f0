"""Model inputs: expression principal components and neighbour-aggregated spatial features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from sklearn.decomposition import PCA

from .._utils import (
    ScdeepclustInputError,
    batch_labels,
    check_adata,
    check_group_labels,
    counts_of,
    highly_variable_genes_of,
    warn_if_overwriting,
)
from ._normalize import highly_variable, log_normalize, variance_genes
from ._spatial_neighbors import (
    CONNECTIVITIES_KEY,
    averaging_operator,
    spatial_graph,
)


def standardize(X, batches: np.ndarray | None = None, clip: float = 10.0) -> np.ndarray:
    """Dense float32 z-scores per gene (within each batch when given), clipped at +-``clip``.

    Constant genes become 0. ``X`` (dense or sparse) is not modified.
    """
    if batches is not None:
        batches = check_group_labels(batches, func="pp.standardize", what="batches")
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float32, copy=True)
    groups = (
        [np.arange(X.shape[0])]
        if batches is None
        else [np.flatnonzero(batches == b) for b in pd.unique(batches)]
    )
    for rows in groups:
        block = X[rows]
        mean = block.mean(axis=0, dtype=np.float64)
        std = block.std(axis=0, dtype=np.float64)
        # constant genes (up to float32 rounding of their mean) become 0, not amplified noise
        constant = std <= 1e-6 * np.maximum(np.abs(mean), 1e-30)
        std[constant] = 1.0
        scaled = np.clip((block - mean) / std, -clip, clip)
        scaled[:, constant] = 0.0
        X[rows] = scaled
    return X


def expression_pcs(
    X,
    *,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    gene_selection: str = "seurat",
    target_sum: float | None = None,
    batches: np.ndarray | None = None,
    random_state: int = 0,
    genes: np.ndarray | None = None,
    normalization: str = "log",
) -> np.ndarray:
    """Principal components of log-normalised, standardised highly variable genes.

    Normalisation and scaling are done per observation and per batch respectively, so a
    slice's sequencing depth or batch does not shift its components.

    Parameters
    ----------
    X
        Raw counts, observations x genes.
    n_comps
        Number of components (capped by the data's size).
    n_top_genes
        Highly variable genes kept before PCA.
    gene_selection
        ``"seurat"`` (Scanpy's dispersion ranking, :func:`highly_variable`) or
        ``"variance"`` (the genes of highest log-expression variance, :func:`variance_genes`).
    target_sum
        Counts per observation after library-size scaling; ``None`` uses the median.
    batches
        Optional per-observation batch labels (genes standardised within each batch).
    random_state
        Seed of the randomized SVD.
    genes
        Boolean mask of the genes to use (e.g. the user's ``var["highly_variable"]``);
        ``None`` selects ``n_top_genes`` with ``gene_selection``.
    normalization
        ``"log"`` (library size to ``target_sum``, log1p), ``"pearson"`` (analytic Pearson
        residuals of a negative binomial, genes ranked by residual variance instead of
        ``gene_selection``; Lause et al. 2021) or ``"log+pearson"`` (both, ``n_comps``
        components each, side by side at equal total variance: :func:`side_by_side`).

    Returns
    -------
    ``n_obs x n_comps`` float32 array (``2 n_comps`` columns for ``"log+pearson"``).
    """
    if normalization != "log":
        from ._chunked import expression_pcs_chunked  # one implementation of the residuals

        return expression_pcs_chunked(
            X,
            n_comps=n_comps,
            n_top_genes=n_top_genes,
            gene_selection=gene_selection,
            target_sum=target_sum,
            batches=batches,
            random_state=random_state,
            chunk=max(X.shape[0], 1),
            normalization=normalization,
            genes=genes,
        )
    lognorm = log_normalize(X, target_sum)
    batch_series = None if batches is None else pd.Series(batches)
    if genes is not None:
        hvg = np.asarray(genes, dtype=bool)
        if hvg.shape != (X.shape[1],):
            raise ScdeepclustInputError(
                f"expression_pcs: genes is a mask of {hvg.shape} entries; expected one per "
                f"gene ({X.shape[1]})."
            )
    elif gene_selection == "variance":
        hvg = variance_genes(lognorm, n_top_genes, batch_series)
    elif gene_selection == "seurat":
        hvg = highly_variable(lognorm, n_top_genes, batch_series)
    else:
        raise ScdeepclustInputError(
            f"expression_pcs: unknown gene_selection {gene_selection!r}; "
            "valid choices are 'seurat' and 'variance'."
        )
    scaled = standardize(lognorm[:, hvg], None if batches is None else np.asarray(batches))
    if not scaled.any():
        raise ScdeepclustInputError(
            "expression_pcs: no gene varies across observations (the counts are all zero or "
            "every gene is constant), so there is nothing to cluster; check that X holds counts."
        )
    pca = pca_model(scaled.shape, n_comps, random_state=random_state)
    if pca.n_components < 1:
        raise ScdeepclustInputError(
            f"expression_pcs: too little data for PCA ({scaled.shape[0]} x {scaled.shape[1]})."
        )
    return pca.fit_transform(scaled).astype(np.float32)


def side_by_side(views: list[np.ndarray]) -> np.ndarray:
    """Feature blocks of the same observations, each scaled to a mean squared row norm of
    one, concatenated: no block dominates by its units or its number of columns."""
    if len(views) == 1:
        return views[0]
    scaled = [
        v / (np.sqrt(np.mean(np.sum(v.astype(np.float64) ** 2, axis=1))) or 1.0) for v in views
    ]
    return np.hstack(scaled).astype(np.float32)


def pca_model(shape: tuple[int, int], n_comps: int, *, random_state: int = 0) -> PCA:
    """An unfitted PCA of at most ``n_comps`` components for data of ``shape``.

    The size is capped at ``min(n_obs - 1, n_features)``; the exact solver is used up to
    500 on the smaller side, the randomized one above.
    """
    n_comps = int(min(n_comps, shape[0] - 1, shape[1]))
    solver = "full" if min(shape) <= 500 else "randomized"
    return PCA(n_components=n_comps, svd_solver=solver, random_state=random_state)


def _check_hops(hops, func: str) -> None:
    if isinstance(hops, bool) or not isinstance(hops, int | np.integer) or hops < 0:
        raise ScdeepclustInputError(f"{func}: hops must be a non-negative integer, got {hops!r}.")


def _check_graph_rows(graph: sp.spmatrix, n_rows: int, func: str) -> None:
    if graph.shape != (n_rows, n_rows):
        raise ScdeepclustInputError(
            f"{func}: the graph has shape {graph.shape} but there are {n_rows} rows of "
            f"features; expected ({n_rows}, {n_rows})."
        )


def neighbor_average(features: np.ndarray, graph: sp.spmatrix, *, hops: int = 1) -> np.ndarray:
    """Average ``features`` over each node and its graph neighbours, ``hops`` times.

    A sparse matrix product per hop: linear in the number of edges, never N x N dense.
    """
    _check_hops(hops, "neighbor_average")
    out = np.asarray(features, dtype=np.float32)
    _check_graph_rows(graph, out.shape[0], "neighbor_average")
    operator = averaging_operator(graph)
    for _ in range(hops):
        out = np.asarray(operator @ out, dtype=np.float32)
    return out


def spatial_embedding(
    own: np.ndarray,
    graph: sp.spmatrix,
    *,
    lam: float = 0.8,
    hops: int = 2,
    hop_weighting: str = "equal",
    expression_weight: float = 0.0,
    coords: np.ndarray | None = None,
    anisotropy: float = 0.0,
) -> np.ndarray:
    """BANKSY-style features: own features and their neighbourhood averages, weighted by ``lam``.

    Returns ``[sqrt(1 - lam) * own, sqrt(lam * w_1) * avg_1, ..., sqrt(lam * w_hops) *
    avg_hops]`` where ``avg_h`` is the ``h``-hop neighbourhood average and the hop shares
    ``w_h`` sum to one: equal (``"equal"``) or growing with the hop (``"linear"``,
    ``w_h`` proportional to ``h``, which widens the neighbourhood that dominates).

    Parameters
    ----------
    own
        ``n_obs x d`` features.
    graph
        Spatial graph (its row-normalised form with self-loops averages).
    lam
        Total weight of the neighbourhood, in [0, 1].
    hops
        Number of neighbourhood averages.
    hop_weighting
        ``"equal"`` or ``"linear"`` shares of ``lam`` across hops.
    expression_weight
        Share of the averaging operator whose edges are weighted by the similarity of
        ``own`` at their two ends (:func:`~scdeepclust.pp.averaging_operator`); 0 averages
        over the graph alone.
    coords, anisotropy
        ``n_obs x 2`` coordinates and the strength with which edges across the local
        direction of change of ``own`` lose weight
        (:func:`~scdeepclust.pp.anisotropic_weighted`); 0 keeps the graph isotropic.
    """
    weights = hop_weights(lam, hops, hop_weighting)
    own = np.asarray(own, dtype=np.float32)
    _check_graph_rows(graph, own.shape[0], "spatial_embedding")
    operator = (
        averaging_operator(graph, own, expression_weight, coords=coords, anisotropy=anisotropy)
        if hops
        else None
    )
    parts = [weights[0] * own]
    smoothed = own
    for weight in weights[1:]:
        smoothed = np.asarray(operator @ smoothed, dtype=np.float32)
        parts.append(weight * smoothed)
    return np.hstack(parts).astype(np.float32)


def hop_weights(lam: float, hops: int, hop_weighting: str = "equal") -> list[float]:
    """Multipliers of ``[own, avg_1, ..., avg_hops]`` in :func:`spatial_embedding`.

    ``sqrt(1 - lam)`` for the own features and ``sqrt(lam * w_h)`` for hop ``h``, with
    shares ``w_h`` summing to one: equal, or proportional to ``h`` (``"linear"``).
    """
    if not 0.0 <= lam <= 1.0:
        raise ScdeepclustInputError(f"spatial_embedding: lam must be in [0, 1], got {lam!r}.")
    _check_hops(hops, "spatial_embedding")
    if hop_weighting not in ("equal", "linear"):
        raise ScdeepclustInputError(
            f"spatial_embedding: unknown hop_weighting {hop_weighting!r}; valid choices are "
            "'equal' and 'linear'."
        )
    shares = np.ones(hops) if hop_weighting == "equal" else np.arange(1, hops + 1, dtype=float)
    shares = shares / shares.sum() if hops else shares
    return [float(np.sqrt(1.0 - lam))] + [float(np.sqrt(lam * w)) for w in shares]


def neighbor_features(
    adata: AnnData,
    *,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    lam: float = 0.8,
    hops: int = 2,
    batch_key: str | None = None,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    connectivities_key: str = CONNECTIVITIES_KEY,
    key_added: str = "X_spatial",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Neighbour-aggregated expression features, the spatial input of the deep models.

    Computes expression PCs (:func:`expression_pcs`) and concatenates them with their
    averages over the spatial graph (:func:`spatial_embedding`), writing the result to
    ``obsm[key_added]``.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` (or ``layers[layer]``) and a spatial graph
        in ``obsp[connectivities_key]`` (:func:`scdeepclust.pp.spatial_neighbors` or
        squidpy's ``sq.gr.spatial_neighbors``).
    n_comps, n_top_genes
        Passed to :func:`expression_pcs`.
    lam
        Weight of the neighbourhood (0 = expression only, 1 = neighbourhood only).
    hops
        Number of neighbourhood averages (1 = direct neighbours, 2 adds their neighbours).
    batch_key
        ``obs`` column of samples for per-sample scaling; the graph must not link spots
        of different samples.
    layer
        Layer holding the raw counts; ``None`` reads ``X``.
    use_highly_variable
        Use the genes flagged in ``var["highly_variable"]``: ``None`` (default) when the
        column exists, ``True`` requires it, ``False`` ranks ``n_top_genes`` itself.
    connectivities_key
        ``obsp`` key of the spatial graph (squidpy's by default); a directed graph is
        symmetrised (``max(G, G.T)``).
    key_added
        ``obsm`` key for the features.
    random_state
        Seed of the PCA.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    func = "pp.neighbor_features"
    check_adata(adata, func=func)
    counts = counts_of(adata, layer, func=func)
    batches = batch_labels(adata, batch_key, func=func)
    graph, _ = spatial_graph(
        adata,
        connectivities_key=connectivities_key,
        batches=batches,
        batch_key=batch_key,
        build=False,
        func=func,
    )
    pcs = expression_pcs(
        counts,
        n_comps=n_comps,
        n_top_genes=n_top_genes,
        batches=batches,
        random_state=random_state,
        genes=highly_variable_genes_of(adata, use_highly_variable, func=func),
    )
    features = spatial_embedding(pcs, graph, lam=lam, hops=hops)
    adata = adata.copy() if copy else adata
    warn_if_overwriting(adata, "obsm", key_added, func=func)
    adata.obsm[key_added] = features
    return adata if copy else None
