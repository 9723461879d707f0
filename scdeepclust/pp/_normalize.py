"""Library-size normalisation, log1p, highly variable genes and the lineage's min-max scaling.

The model input is always derived into new keys: ``X`` (the counts) is never overwritten.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData

from .._utils import (
    ScdeepclustInputError,
    batch_labels,
    check_adata,
    check_counts,
    check_in_memory,
    counts_of,
    matrix_of,
    warn_if_overwriting,
)


def log_normalize(X, target_sum: float | None = None):
    """Scale each row to ``target_sum`` total counts (median library size if None), then log1p.

    Parameters
    ----------
    X
        Counts, observations x genes, dense or sparse.
    target_sum
        Counts per observation after scaling; ``None`` uses the median library size.

    Returns
    -------
    A float32 matrix of the same sparsity as ``X``; all-zero rows stay zero.
    """
    # check_counts refuses values beyond float32's range, so the cast below is safe
    check_counts(X, func="pp.log_normalize", what="X")
    X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)
    # library sizes in float64: a row of large float32 values can overflow a float32 sum
    libsize = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
    if target_sum is None:
        positive = libsize[libsize > 0]
        target_sum = float(np.median(positive)) if positive.size else 1.0
    scale = np.divide(target_sum, libsize, out=np.zeros_like(libsize), where=libsize > 0)
    if sp.issparse(X):
        out = sp.diags(scale.astype(np.float32)) @ X
        out = sp.csr_matrix(out)
        np.log1p(out.data, out=out.data)
        return out
    return np.log1p(X * scale[:, None].astype(np.float32))


def _rankable(X) -> bool:
    """Whether genes can be ranked by dispersion in ``X``: some gene varies across rows (or,
    for a single row, the genes differ); otherwise Scanpy's ``seurat`` flavour fails."""
    axis = 0 if X.shape[0] > 1 else None
    spread = X.max(axis=axis) - X.min(axis=axis)
    spread = spread.toarray() if sp.issparse(spread) else np.asarray(spread)
    return bool(spread.max() > 0)


def highly_variable(lognorm, n_top_genes: int, batches: pd.Series | None = None) -> np.ndarray:
    """Boolean mask of the ``n_top_genes`` most dispersed genes (Scanpy's ``seurat`` flavour).

    All genes are kept when there are no more than ``n_top_genes``; with ``batches``, genes
    are ranked within each batch and combined as Scanpy does.
    """
    n_vars = lognorm.shape[1]
    if n_vars <= n_top_genes:
        return np.ones(n_vars, dtype=bool)
    if batches is not None:
        # batches whose genes cannot be ranked (e.g. only all-zero spots) are left out
        batches = np.asarray(batches)
        informative = [b for b in pd.unique(batches) if _rankable(lognorm[batches == b])]
        if not informative:
            return np.zeros(n_vars, dtype=bool)
        rows = np.isin(batches, informative)
        if not rows.all():
            lognorm, batches = lognorm[rows], batches[rows]
    if not _rankable(lognorm):  # all-zero or constant genes: nothing is variable
        return np.zeros(n_vars, dtype=bool)
    tmp = AnnData(lognorm)
    if batches is not None:
        tmp.obs["batch"] = pd.Categorical(batches)
    result = sc.pp.highly_variable_genes(
        tmp,
        n_top_genes=n_top_genes,
        flavor="seurat",
        batch_key="batch" if batches is not None else None,
        inplace=False,
        subset=False,
    )
    return np.asarray(result["highly_variable"], dtype=bool)


def normalize(
    adata: AnnData,
    *,
    target_sum: float | None = None,
    n_top_genes: int = 2000,
    batch_key: str | None = None,
    layer: str | None = None,
    layer_added: str = "lognorm",
    copy: bool = False,
) -> AnnData | None:
    """The package's standard normalisation: library size + log1p, highly variable genes.

    Each spot is scaled to ``target_sum`` counts (the median library size by default), then
    ``log1p`` is applied; the result goes to ``layers[layer_added]``. The ``n_top_genes``
    most variable genes (Scanpy's ``seurat`` flavour, per ``batch_key`` when given) are
    flagged in ``var["highly_variable"]`` and the parameters recorded in ``uns["normalize"]``.
    ``X`` (and ``layers[layer]``) is left untouched.

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` (or ``layers[layer]``).
    target_sum
        Counts per spot after scaling; ``None`` uses the median library size.
    n_top_genes
        Number of highly variable genes to flag (all genes if there are fewer).
    batch_key
        ``obs`` column of samples; genes are ranked within each sample.
    layer
        Layer holding the raw counts (e.g. ``"counts"``); ``None`` reads ``X``.
    layer_added
        Layer that receives the log-normalised matrix.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    func = "pp.normalize"
    check_adata(adata, func=func)
    counts = counts_of(adata, layer, func=func)
    batches = batch_labels(adata, batch_key, func=func)
    lognorm = log_normalize(counts, target_sum)
    hvg = highly_variable(lognorm, n_top_genes, None if batches is None else pd.Series(batches))
    adata = adata.copy() if copy else adata
    warn_if_overwriting(adata, "layers", layer_added, func=func)
    warn_if_overwriting(adata, "var", "highly_variable", func=func)
    warn_if_overwriting(adata, "uns", "normalize", func=func)
    adata.layers[layer_added] = lognorm
    adata.var["highly_variable"] = hvg
    adata.uns["normalize"] = {
        "params": {
            "target_sum": target_sum,
            "n_top_genes": n_top_genes,
            "batch_key": batch_key,
            "layer": layer,
            "layer_added": layer_added,
        }
    }
    return adata if copy else None


def minmax_scale(
    adata: AnnData,
    *,
    layer: str | None = None,
    layer_added: str = "minmax",
    copy: bool = False,
) -> AnnData | None:
    """Scale every gene to [0, 1] by its minimum and maximum (the lineage's preprocessing).

    Constant genes become 0. The result is written to ``layers[layer_added]``.

    Parameters
    ----------
    adata
        Annotated data.
    layer
        Layer to scale; ``None`` scales ``X``.
    layer_added
        Layer that receives the scaled matrix.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    None, or the modified copy when ``copy=True``.
    """
    func = "pp.minmax_scale"
    check_adata(adata, func=func)
    X, what = matrix_of(adata, layer, func=func)
    check_in_memory(X, func=func, what=what)
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    # scale in float64 when given float64 (values beyond float32's range scale fine)
    X = X.astype(np.float64 if X.dtype == np.float64 else np.float32)
    if not np.isfinite(X).all():
        raise ScdeepclustInputError(f"{func}: the matrix to scale contains NaN or inf.")
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = np.where(hi > lo, (X - lo) / span, 0.0).astype(np.float32)
    adata = adata.copy() if copy else adata
    warn_if_overwriting(adata, "layers", layer_added, func=func)
    adata.layers[layer_added] = scaled
    return adata if copy else None


def variance_genes(lognorm, n_top_genes: int, batches: pd.Series | None = None) -> np.ndarray:
    """Boolean mask of the ``n_top_genes`` genes of highest variance in ``lognorm``.

    The plain ranking of the linear floor (no mean-dispersion binning): on panels that were
    already preselected (a few thousand genes) it keeps the genes that carry the most
    log-expression signal. With ``batches`` the variance is the mean of the per-batch
    variances, so a shift between samples does not count as variation.

    Parameters
    ----------
    lognorm
        Log-normalised expression, observations x genes (dense or sparse).
    n_top_genes
        Genes kept (all that vary when there are no more).
    batches
        Optional per-observation sample labels.
    """
    n_vars = lognorm.shape[1]
    groups = (
        [np.arange(lognorm.shape[0])]
        if batches is None
        else [np.flatnonzero(np.asarray(batches) == b) for b in pd.unique(np.asarray(batches))]
    )
    variance = np.zeros(n_vars)
    for rows in groups:
        block = lognorm[rows]
        mean = np.asarray(block.mean(axis=0), dtype=np.float64).ravel()
        square = block.multiply(block) if sp.issparse(block) else np.square(block)
        second = np.asarray(square.mean(axis=0), dtype=np.float64).ravel()
        variance += (second - mean**2) * len(rows)
    mask = np.zeros(n_vars, dtype=bool)
    top = np.argsort(-variance, kind="stable")[:n_top_genes]
    # a constant gene is not variable, even when rounding leaves it a tiny variance
    mask[top[variance[top] > 1e-8 * lognorm.shape[0]]] = True
    return mask
