"""Analytic Pearson residuals of counts (Lause, Berens & Kobak 2021), in row blocks.

Under a negative binomial with overdispersion ``theta`` and mean ``mu = n_c * p_g`` (the
spot's library size times the gene's share of all counts in its sample), a count ``x``
becomes ``(x - mu) / sqrt(mu + mu^2 / theta)``, clipped at +-sqrt(n_obs) as in Scanpy's
``normalize_pearson_residuals``. Genes are ranked by the variance of their residuals (Scanpy's
``flavor="pearson_residuals"``). Everything here works on row blocks of ``X`` so the same
code serves the in-memory and the bounded-memory (backed, sharded) paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Overdispersion of the negative binomial (Scanpy's default).
PEARSON_THETA = 100.0


def pearson_residuals(
    counts, libsize: np.ndarray, shares: np.ndarray, clip: float, theta: float = PEARSON_THETA
) -> np.ndarray:
    """Dense float32 Pearson residuals of a block of counts.

    Parameters
    ----------
    counts
        ``n x g`` counts (dense or sparse).
    libsize
        The ``n`` library sizes.
    shares
        ``n x g`` (or ``g``) share of each gene in the counts of the row's sample; genes
        never detected have share 0 and residual 0.
    clip
        Residuals are clipped at +-``clip``.
    theta
        Negative-binomial overdispersion.
    """
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    mu = np.asarray(libsize, dtype=np.float64)[:, None] * shares
    denom = np.sqrt(mu + mu**2 / theta)
    residual = np.divide(counts - mu, denom, out=np.zeros(mu.shape), where=denom > 0)
    return np.clip(residual, -clip, clip).astype(np.float32)


def sample_residuals(counts, genes: np.ndarray | None = None) -> np.ndarray:
    """Dense float32 Pearson residuals of one sample's counts, in one block.

    The expected counts are each row's library size times each gene's share of the
    sample's counts (every gene counts for both); residuals are clipped at
    +-sqrt(n_obs).

    Parameters
    ----------
    counts
        ``n x g`` counts of one sample (dense or sparse; never modified).
    genes
        Boolean mask of the ``g`` genes whose residuals are returned (``None``: all).
    """
    libsize = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    gene_sums = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    total = gene_sums.sum()
    shares = gene_sums / total if total > 0 else np.zeros_like(gene_sums)
    if genes is not None:
        genes = np.asarray(genes, dtype=bool)
        counts, shares = counts[:, genes], shares[genes]
    return pearson_residuals(counts, libsize, shares, clip=float(np.sqrt(libsize.shape[0])))


@dataclass
class ResidualStatistics:
    """Per-sample gene shares and residual moments, summed over row blocks.

    Attributes
    ----------
    shares
        ``n_groups x n_vars`` share of each gene in its sample's counts.
    n
        Observations per sample.
    first, second
        ``n_groups x n_vars`` sums of the residuals and of their squares.
    clip
        The clipping bound used (sqrt of the number of observations).
    """

    shares: np.ndarray
    n: np.ndarray
    first: np.ndarray
    second: np.ndarray
    clip: float

    def mean_std(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample mean and standard deviation of the residuals of ``genes`` (float32)."""
        n = np.maximum(self.n, 1)[:, None]
        mean = self.first[:, genes] / n
        std = np.sqrt(np.maximum(self.second[:, genes] / n - mean**2, 0.0))
        return mean.astype(np.float32), std.astype(np.float32)

    def top_genes(self, n_top_genes: int) -> np.ndarray:
        """Mask of the ``n_top_genes`` genes of highest residual variance (pooled within
        samples, so a shift between samples is not variation)."""
        n = np.maximum(self.n, 1)[:, None]
        mean = self.first / n
        pooled = (self.second - n * mean**2).sum(axis=0)
        mask = np.zeros(self.shares.shape[1], dtype=bool)
        order = np.argsort(-pooled, kind="stable")
        mask[order[: min(n_top_genes, int((pooled > 0).sum()))]] = True
        return mask


def residual_statistics(
    read, blocks, n_vars: int, libsize: np.ndarray, codes: np.ndarray, n_groups: int, reduce
) -> ResidualStatistics:
    """Two passes over the row ``blocks``: gene shares per sample, then residual moments.

    Parameters
    ----------
    read
        ``read(rows)`` returns the counts of a row slice.
    blocks
        A callable returning a fresh iterator over this process's row slices.
    n_vars
        Number of genes.
    libsize, codes, n_groups
        Library sizes, per-row sample codes and number of samples (all rows).
    reduce
        Sums an array over processes, in place, and returns it (identity when alone).
    """
    n_obs = libsize.shape[0]
    onehot = group_indicator(codes, n_groups)
    gene_sums = None
    for rows in blocks():
        part = onehot[:, rows] @ read(rows)
        part = np.asarray(part.todense() if sp.issparse(part) else part, dtype=np.float64)
        gene_sums = part if gene_sums is None else gene_sums + part
    if gene_sums is None:  # this process read no block
        gene_sums = np.zeros((n_groups, n_vars))
    gene_sums = reduce(gene_sums)
    totals = gene_sums.sum(axis=1, keepdims=True)
    shares = np.divide(gene_sums, totals, out=np.zeros_like(gene_sums), where=totals > 0)
    clip = float(np.sqrt(n_obs))
    moments = np.zeros((2, n_groups, shares.shape[1]))
    for rows in blocks():
        residual = pearson_residuals(read(rows), libsize[rows], shares[codes[rows]], clip)
        residual = residual.astype(np.float64)
        moments[0] += onehot[:, rows] @ residual
        moments[1] += onehot[:, rows] @ (residual**2)
    moments = reduce(moments)
    n = np.bincount(codes, minlength=n_groups).astype(np.float64)
    return ResidualStatistics(shares, n, moments[0], moments[1], clip)


def group_indicator(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """``n_groups x n_obs`` indicator of each row's sample."""
    return sp.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes))
    )
