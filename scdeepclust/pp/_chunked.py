"""Bounded-memory model features: the expression PCs and neighbour features in row blocks.

The in-memory path (:func:`expression_pcs`, :func:`spatial_embedding` and a PCA) holds the
log-normalised genes and the ``n_obs x (hops + 1) n_pcs`` neighbour features densely. Above
:data:`CHUNKED_MIN_OBS` observations, or whenever ``X`` is backed on disk, the same steps are
done on row blocks of ``X`` so that memory grows with ``n_obs x (n_pcs + n_comps)`` only:

1. library sizes (one pass; the median is the default target);
2. per-sample gene statistics of the log-normalised block (sums, sums of squares, the same
   of ``expm1`` for Scanpy's ``seurat`` dispersions, detection counts), accumulated in
   float64 in one pass; they select the genes and standardise them;
3. the expression PCA is fitted on at most :data:`FIT_OBS` standardised rows (a seeded
   subsample) and applied to every block;
4. the neighbour averages are sparse products, made one hop at a time; the final PCA is
   fitted on the subsample's rows of all hops and, being linear, applied as a sum over
   hops of each hop's projection (the hops are never held side by side).

Everything is float32 except the statistics. Blocks are read with ``X[start:stop]``, which
works for numpy arrays, scipy sparse matrices, ``h5py`` datasets and anndata's backed sparse
matrices alike, so an AnnData opened with ``backed="r"`` is never loaded whole.

Under ``torchrun`` (a ``torch.distributed`` process group of more than one process) the
passes over all rows are sharded: block ``i`` is read and processed by rank ``i % world``
only (the library sizes and count checks, the gene statistics, the subsample's rows, the
projections and the neighbour products), and torch's all-reduce adds the ranks' parts
(:mod:`scdeepclust.nn._distributed`), so every rank ends with the single-process features.
The PCAs are fitted on every rank, on the same assembled subsample. ``torch`` is imported
on first use only: ``pp`` alone does not load it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._utils import ScdeepclustInputError, check_count_values, is_backed_sparse
from ._features import hop_weights, pca_model, side_by_side
from ._pearson import group_indicator, pearson_residuals, residual_statistics
from ._spatial_neighbors import averaging_operator

#: Above this many observations the features are computed in row blocks (bounded memory);
#: at or below it the in-memory path runs unchanged. ``SCDEEPCLUST_CHUNKED_MIN_OBS`` in the
#: environment overrides it (benchmarks use it to compare both paths at one size).
CHUNKED_MIN_OBS = 200_000
#: Rows per block (fewer for wide data: see :data:`BLOCK_VALUES`).
CHUNK_ROWS = 16_384
#: At most this many values in a dense block (rows x genes), 64 MB in float32.
BLOCK_VALUES = 2**24
#: Normalisations of the counts before the expression PCA (see :func:`expression_pcs`).
NORMALIZATIONS = ("log", "pearson", "log+pearson")
#: Rows the PCAs of the chunked path are fitted on (a seeded subsample when there are more).
FIT_OBS = 50_000
#: Entries (rows x genes) of the standardised sample an expression PCA of the chunked path
#: is fitted on: all :data:`FIT_OBS` rows up to 2,000 genes, fewer rows for wider gene sets
#: (at most 400 MB of float32, whatever the number of genes kept).
FIT_ENTRIES = 100_000_000


def is_backed(X) -> bool:
    """Whether ``X`` is on disk (an ``h5py`` dataset or anndata's backed sparse matrix)."""
    return isinstance(X, h5py.Dataset) or is_backed_sparse(X)


def chunked_min_obs() -> int:
    """The size threshold of the chunked path (:data:`CHUNKED_MIN_OBS` or the environment)."""
    value = os.environ.get("SCDEEPCLUST_CHUNKED_MIN_OBS")
    return int(value) if value else CHUNKED_MIN_OBS


def use_chunked(X) -> bool:
    """Whether the features of ``X`` are computed in row blocks (large or backed ``X``)."""
    return is_backed(X) or X.shape[0] > chunked_min_obs()


def row_blocks(n_obs: int, chunk: int = CHUNK_ROWS) -> Iterator[slice]:
    """Consecutive row slices of at most ``chunk`` rows."""
    for start in range(0, n_obs, chunk):
        yield slice(start, min(start + chunk, n_obs))


def read_block(X, rows: slice):
    """Rows ``rows`` of ``X`` in memory: a float32 CSR matrix or a float32 array."""
    block = X[rows]
    if sp.issparse(block):
        return sp.csr_matrix(block, dtype=np.float32)
    return np.asarray(block, dtype=np.float32)


def rows_by_block(
    n_obs: int, width: int, chunk: int, compute: Callable[[slice], np.ndarray]
) -> np.ndarray:
    """``compute(rows)`` for every row block, as one ``n_obs x width`` float32 matrix.

    Under ``torch.distributed`` each rank computes its own blocks into a zero matrix and a
    sum over the ranks assembles it (exact: the other ranks add zeros there).
    """
    from ..nn._distributed import allreduce_sum, my_blocks

    out = np.zeros((n_obs, width), dtype=np.float32)
    for rows in my_blocks(row_blocks(n_obs, chunk)):
        out[rows] = compute(rows)
    return allreduce_sum(out)


def check_counts_blocks(X, *, func: str, what: str = "adata.X", chunk: int = CHUNK_ROWS):
    """Validate counts block by block and return the float64 library sizes (one pass).

    Under ``torch.distributed`` each rank checks its own blocks; an invalid block stops
    every rank (with the details on the rank that read it).
    """
    from ..nn._distributed import allreduce_sum, any_rank, my_blocks

    dtype = X.dtype
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ScdeepclustInputError(f"{func}: {what} must be numeric, got dtype {dtype}.")
    libsize = np.zeros(X.shape[0])
    failure = None
    try:
        for rows in my_blocks(row_blocks(X.shape[0], chunk)):
            block = X[rows]
            if sp.issparse(block):
                block = sp.csr_matrix(block)
            else:
                block = np.asarray(block)
            check_count_values(block.data if sp.issparse(block) else block, func=func, what=what)
            libsize[rows] = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    except ScdeepclustInputError as error:
        failure = error
    if any_rank(failure is not None):
        raise failure or ScdeepclustInputError(
            f"{func}: {what} failed the count checks on another rank (see its error)."
        )
    return allreduce_sum(libsize)


def _lognorm_block(block, scale: np.ndarray):
    """``log1p(scale * block)`` in float32, keeping sparsity (as :func:`log_normalize`)."""
    if sp.issparse(block):
        out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ block)
        np.log1p(out.data, out=out.data)
        return out
    return np.log1p(block * scale[:, None].astype(np.float32))


class _GeneStats:
    """Per-sample sums over rows, accumulated block by block in float64."""

    def __init__(self, n_groups: int, n_vars: int):
        self.n = np.zeros(n_groups)
        # one buffer (one all-reduce under torch.distributed); the five sums are views of it
        self.sums = np.zeros((5, n_groups, n_vars))
        self.s1, self.s2 = self.sums[0], self.sums[1]  # log-normalised
        self.e1, self.e2 = self.sums[2], self.sums[3]  # expm1 (Scanpy's seurat)
        self.nnz = self.sums[4]

    def add(self, lognorm, codes: np.ndarray, n_groups: int) -> None:
        onehot = group_indicator(codes, n_groups)
        self.n += np.asarray(onehot.sum(axis=1)).ravel()
        if sp.issparse(lognorm):
            lognorm = lognorm.astype(np.float64)
            expm1 = lognorm.copy()
            np.expm1(expm1.data, out=expm1.data)
            square, esquare = lognorm.multiply(lognorm), expm1.multiply(expm1)
            present = (lognorm != 0).astype(np.float64)
        else:
            lognorm = lognorm.astype(np.float64)
            expm1 = np.expm1(lognorm)
            square, esquare, present = lognorm**2, expm1**2, (lognorm != 0).astype(np.float64)
        for total, part in (
            (self.s1, lognorm),
            (self.s2, square),
            (self.e1, expm1),
            (self.e2, esquare),
            (self.nnz, present),
        ):
            total += np.asarray((onehot @ part).todense() if sp.issparse(part) else onehot @ part)

    def sum_over_ranks(self) -> None:
        """Add up the ranks' statistics, in place (nothing when not distributed)."""
        from ..nn._distributed import allreduce_sum

        allreduce_sum(self.n)
        allreduce_sum(self.sums)

    def mean_var(self, first: np.ndarray, second: np.ndarray, ddof: int = 0):
        n = np.maximum(self.n, 1)[:, None]
        mean = first / n
        var = np.maximum(second / n - mean**2, 0.0)
        if ddof:
            var = var * n / np.maximum(n - ddof, 1)
        return mean, var


def _seurat_table(mean_e: np.ndarray, var_e: np.ndarray, n_top_genes: int) -> pd.DataFrame:
    """Scanpy's ``seurat`` dispersions of one sample from ``expm1`` means and variances."""
    mean = mean_e.copy()
    mean[mean == 0] = 1e-12
    dispersion = var_e / mean
    dispersion[dispersion == 0] = np.nan
    dispersion = np.log(dispersion)
    mean = np.log1p(mean)
    df = pd.DataFrame({"means": mean, "dispersions": dispersion})
    df["mean_bin"] = pd.cut(df["means"], bins=20)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0
    stats = stats.loc[df["mean_bin"]].set_index(df.index)
    norm = ((df["dispersions"] - stats["avg"]) / stats["dev"]).to_numpy()
    finite = np.sort(norm[~np.isnan(norm)])[::-1]
    cut = finite[min(n_top_genes, finite.size) - 1] if finite.size else np.inf
    return pd.DataFrame({"dispersions_norm": norm, "hv": np.nan_to_num(norm, nan=-np.inf) >= cut})


def _select_genes(stats: _GeneStats, n_top_genes: int, gene_selection: str, batched: bool):
    """The gene mask of :func:`highly_variable` / :func:`variance_genes` from statistics."""
    n_vars = stats.s1.shape[1]
    if n_vars <= n_top_genes:
        return np.ones(n_vars, dtype=bool)
    mask = np.zeros(n_vars, dtype=bool)
    if gene_selection == "variance":
        _, var = stats.mean_var(stats.s1, stats.s2)
        variance = (var * stats.n[:, None]).sum(axis=0)
        mask[np.argsort(-variance, kind="stable")[:n_top_genes]] = True
        return mask
    mean_e, var_e = stats.mean_var(stats.e1, stats.e2, ddof=1)
    _, var_l = stats.mean_var(stats.s1, stats.s2)
    informative = [g for g in range(len(stats.n)) if var_l[g].max() > 0]
    if not informative:
        return mask
    if not batched:
        return _seurat_table(mean_e[0], var_e[0], n_top_genes)["hv"].to_numpy()
    # Scanpy's batched seurat: genes unexpressed in a sample count as 0 there; genes are
    # ranked by the number of samples that select them, ties broken by mean dispersion
    nbatches, norm_sum = np.zeros(n_vars), np.zeros(n_vars)
    for g in informative:
        expressed = stats.nnz[g] > 0
        table = _seurat_table(mean_e[g, expressed], var_e[g, expressed], n_top_genes)
        nbatches[expressed] += table["hv"].to_numpy()
        norm_sum[expressed] += np.nan_to_num(table["dispersions_norm"].to_numpy(), nan=0.0)
    norm = norm_sum / len(informative)
    order = np.lexsort((-norm, -nbatches))
    mask[order[:n_top_genes]] = True
    return mask


def _standardize_block(block: np.ndarray, rows_codes, mean, std, clip: float = 10.0):
    """Per-sample z-scores clipped at +-``clip``; genes of zero ``std`` become 0."""
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return np.clip((block - mean[rows_codes]) / std[rows_codes], -clip, clip).astype(np.float32)


def _log_transform(X, scale, codes, n_groups, n_top_genes, selection, genes, chunk):
    """Genes, block transform and per-sample mean/std of the log-normalised path.

    ``selection`` is ``(gene_selection, batched)``; a std of 0 marks a constant gene (its
    block values are divided by 1 instead)."""
    from ..nn._distributed import my_blocks

    stats = _GeneStats(n_groups, X.shape[1])
    for rows in my_blocks(row_blocks(X.shape[0], chunk)):
        stats.add(_lognorm_block(read_block(X, rows), scale[rows]), codes[rows], n_groups)
    stats.sum_over_ranks()
    hvg = genes if genes is not None else _select_genes(stats, n_top_genes, *selection)
    mean, var = stats.mean_var(stats.s1[:, hvg], stats.s2[:, hvg])
    std = np.sqrt(var)

    def normalized(rows):
        lognorm = _lognorm_block(read_block(X, rows), scale[rows])[:, hvg]
        return lognorm.toarray() if sp.issparse(lognorm) else lognorm

    return hvg, normalized, mean.astype(np.float32), std.astype(np.float32)


def _pearson_transform(X, libsize, codes, n_groups, n_top_genes, genes, chunk):
    """Genes, block transform and per-sample mean/std of the Pearson-residual path."""
    from ..nn._distributed import allreduce_sum, my_blocks

    stats = residual_statistics(
        lambda rows: read_block(X, rows),
        lambda: my_blocks(row_blocks(X.shape[0], chunk)),
        X.shape[1],
        libsize,
        codes,
        n_groups,
        allreduce_sum,
    )
    hvg = genes if genes is not None else stats.top_genes(n_top_genes)
    mean, std = stats.mean_std(hvg)
    shares = stats.shares[:, hvg]

    def normalized(rows):
        counts = read_block(X, rows)[:, hvg]
        return pearson_residuals(counts, libsize[rows], shares[codes[rows]], stats.clip)

    return hvg, normalized, mean, std


def fit_subsample(n_obs: int, random_state: int, max_rows: int | None = None) -> np.ndarray:
    """Sorted indices of at most :data:`FIT_OBS` observations (and at most ``max_rows``;
    all of them when fewer), on which a PCA or a mixture is fitted before it is applied to
    every observation."""
    limit = FIT_OBS if max_rows is None else max(1, min(FIT_OBS, int(max_rows)))
    if n_obs <= limit:
        return np.arange(n_obs)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_obs, limit, replace=False))


def expression_pcs_chunked(
    X,
    *,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    gene_selection: str = "seurat",
    target_sum: float | None = None,
    batches: np.ndarray | None = None,
    random_state: int = 0,
    chunk: int = CHUNK_ROWS,
    func: str = "expression_pcs",
    normalization: str = "log",
    genes: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`expression_pcs` in row blocks of ``X`` (in memory or backed on disk).

    The genes are selected and standardised from statistics over all rows; the PCA is fitted
    on at most :data:`FIT_OBS` rows and applied to all. Returns ``n_obs x n_comps`` float32.
    Under ``torch.distributed`` each rank reads its share of the row blocks (see the module).
    ``normalization="pearson"`` standardises analytic Pearson residuals instead of
    log-normalised counts (genes ranked by residual variance, see :mod:`._pearson`);
    ``genes`` (a boolean mask) replaces the gene selection.
    """

    if gene_selection not in ("seurat", "variance"):
        raise ScdeepclustInputError(
            f"expression_pcs: unknown gene_selection {gene_selection!r}; "
            "valid choices are 'seurat' and 'variance'."
        )
    if normalization not in NORMALIZATIONS:
        raise ScdeepclustInputError(
            f"expression_pcs: unknown normalization {normalization!r}; "
            f"valid choices are {', '.join(map(repr, NORMALIZATIONS))}."
        )
    if sp.issparse(X) and not isinstance(X, sp.csr_matrix | sp.csr_array):
        X = sp.csr_matrix(X)
    n_obs, n_vars = X.shape
    # wide data: fewer rows per block, so a dense (float64 statistics) block stays small
    chunk = max(64, min(chunk, BLOCK_VALUES // (8 * n_vars)))
    libsize = check_counts_blocks(X, func=func, chunk=chunk)
    if target_sum is None:
        positive = libsize[libsize > 0]
        target_sum = float(np.median(positive)) if positive.size else 1.0
    scale = np.divide(target_sum, libsize, out=np.zeros_like(libsize), where=libsize > 0)
    if batches is None:
        codes, n_groups = np.zeros(n_obs, dtype=np.int64), 1
    else:
        codes, uniques = pd.factorize(np.asarray(batches))
        n_groups = len(uniques)

    if genes is not None:
        genes = np.asarray(genes, dtype=bool)
        if genes.shape != (n_vars,):
            raise ScdeepclustInputError(
                f"expression_pcs: genes is a mask of {genes.shape} entries; expected one per "
                f"gene ({n_vars})."
            )
    views = []  # the counts are checked and their library sizes summed once for all views
    for view in normalization.split("+"):
        if view == "pearson":
            hvg, normalized, mean, std = _pearson_transform(
                X, libsize, codes, n_groups, n_top_genes, genes, chunk
            )
        else:
            batched = batches is not None
            hvg, normalized, mean, std = _log_transform(
                X, scale, codes, n_groups, n_top_genes, (gene_selection, batched), genes, chunk
            )
        views.append(_view_pcs(hvg, normalized, mean, std, codes, n_comps, random_state, chunk))
    return side_by_side(views)


def _view_pcs(hvg, normalized, mean, std, codes, n_comps: int, random_state: int, chunk: int):
    """PCs of one view: its per-sample z-scores, a PCA fitted on at most :data:`FIT_OBS` rows
    (fewer for wide gene sets, :data:`FIT_ENTRIES`) and applied to every row block."""
    from ..nn._distributed import allreduce_sum, my_blocks

    if not hvg.any() or not (std > 0).any():
        raise ScdeepclustInputError(
            "expression_pcs: no gene varies across observations (the counts are all zero or "
            "every gene is constant), so there is nothing to cluster; check that X holds counts."
        )

    def standardized(rows):
        return _standardize_block(normalized(rows), codes[rows], mean, std)

    n_obs, n_genes = len(codes), int(hvg.sum())
    fit = fit_subsample(n_obs, random_state, max_rows=FIT_ENTRIES // n_genes)
    sample = np.zeros((fit.size, n_genes), dtype=np.float32)
    for rows in my_blocks(row_blocks(n_obs, chunk)):
        first, last = np.searchsorted(fit, [rows.start, rows.stop])
        if last > first:  # blocks without subsample rows are not read
            sample[first:last] = standardized(rows)[fit[first:last] - rows.start]
    sample = allreduce_sum(sample)
    pca = pca_model((n_obs, sample.shape[1]), n_comps, random_state=random_state)
    if pca.n_components < 1:
        raise ScdeepclustInputError(
            f"expression_pcs: too little data for PCA ({n_obs} x {sample.shape[1]})."
        )
    pca = pca_model(sample.shape, pca.n_components, random_state=random_state).fit(sample)
    del sample
    return rows_by_block(
        n_obs, pca.n_components_, chunk, lambda rows: pca.transform(standardized(rows))
    )


def _neighbour_product(operator: sp.csr_matrix, dense: np.ndarray, chunk: int) -> np.ndarray:
    """``operator @ dense`` in float32; under ``torch.distributed`` each rank multiplies its
    share of the row blocks (:func:`rows_by_block`)."""
    from ..nn._distributed import is_distributed

    if not is_distributed():
        return np.asarray(operator @ dense, dtype=np.float32)
    return rows_by_block(dense.shape[0], dense.shape[1], chunk, lambda rows: operator[rows] @ dense)


def reduced_spatial_features(
    pcs: np.ndarray,
    graph: sp.spmatrix | None,
    *,
    lam: float,
    hops: int,
    n_comps: int,
    hop_weighting: str = "equal",
    expression_weight: float = 0.0,
    coords: np.ndarray | None = None,
    anisotropy: float = 0.0,
    random_state: int = 0,
    chunk: int = CHUNK_ROWS,
) -> np.ndarray:
    """:func:`spatial_embedding` then its PCA to ``n_comps``, one hop at a time.

    The ``n_obs x (hops + 1) n_pcs`` matrix is never formed, nor are the hops kept side by
    side: the PCA is fitted on at most :data:`FIT_OBS` rows of the concatenation, and since
    the projection is linear it is the sum over hops of each hop's block of the PCA axes,
    added up while the hops are made (two passes of neighbour products, about
    ``2 n_obs x n_pcs`` values held at a time). Scaled so the first component has unit
    variance; float32. Under ``torch.distributed`` each rank makes the neighbour products
    and projections of its share of the row blocks.
    """
    n_obs = pcs.shape[0]
    pcs = np.asarray(pcs, dtype=np.float32)
    if graph is None:
        weights, operator = [1.0], None
    else:
        weights = hop_weights(lam, hops, hop_weighting)
        operator = averaging_operator(
            graph, pcs, expression_weight, coords=coords, anisotropy=anisotropy
        )

    def weighted_hops():
        """``(h, weight_h x average over h hops)`` for h = 0..hops, one at a time."""
        current = pcs
        for h, weight in enumerate(weights):
            if h:
                current = _neighbour_product(operator, current, chunk)
            yield h, np.float32(weight) * current

    width = pcs.shape[1]
    n_features = width * len(weights)
    pca = pca_model((n_obs, n_features), n_comps, random_state=random_state)
    if pca.n_components >= n_features:  # nothing to reduce (tiny inputs)
        out = np.hstack([part for _, part in weighted_hops()]).astype(np.float32)
    else:
        fit = fit_subsample(n_obs, random_state)
        sample = np.hstack([part[fit] for _, part in weighted_hops()])
        pca = pca_model(sample.shape, pca.n_components, random_state=random_state).fit(sample)
        del sample
        axes = pca.components_.astype(np.float32)
        centre = pca.mean_.astype(np.float32)
        out = np.zeros((n_obs, pca.n_components_), dtype=np.float32)
        for h, part in weighted_hops():
            cols = slice(h * width, (h + 1) * width)
            out += rows_by_block(
                n_obs,
                pca.n_components_,
                chunk,
                lambda rows, part=part, cols=cols: (part[rows] - centre[cols]) @ axes[:, cols].T,
            )
    scale = float(out[:, 0].std(dtype=np.float64)) or 1.0
    out /= np.float32(scale)
    return out
