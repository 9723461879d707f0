"""Pearson-residual normalisation of the expression PCs (``normalization=`` option)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.pp import expression_pcs
from scdeepclust.pp._chunked import expression_pcs_chunked
from scdeepclust.pp._pearson import PEARSON_THETA, pearson_residuals, sample_residuals


def _direct_residuals(counts: np.ndarray) -> np.ndarray:
    """Lause et al.'s analytic residuals, written out for one sample."""
    lib = counts.sum(axis=1, keepdims=True)
    share = counts.sum(axis=0, keepdims=True) / counts.sum()
    mu = lib * share
    residual = (counts - mu) / np.sqrt(mu + mu**2 / PEARSON_THETA)
    bound = np.sqrt(counts.shape[0])
    return np.clip(residual, -bound, bound)


def test_residuals_follow_the_formula_and_are_clipped():
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.gamma(1.0, 2.0, size=(40, 12))).astype(float)
    counts[0, 0] = 500.0  # far beyond sqrt(40): clipped
    lib = counts.sum(axis=1)
    share = counts.sum(axis=0) / counts.sum()
    got = pearson_residuals(sp.csr_matrix(counts), lib, share, clip=np.sqrt(40))
    np.testing.assert_allclose(got, _direct_residuals(counts), rtol=1e-5, atol=1e-5)
    assert got[0, 0] == pytest.approx(np.sqrt(40))


def test_sample_residuals_of_some_genes_use_every_gene_for_depth_and_shares():
    import scanpy as sc

    rng = np.random.default_rng(1)
    counts = rng.poisson(rng.gamma(1.0, 2.0, size=(50, 16))).astype(np.float32)
    genes = np.zeros(16, dtype=bool)
    genes[[1, 4, 5, 11]] = True
    got = sample_residuals(sp.csr_matrix(counts), genes)
    assert got.shape == (50, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, _direct_residuals(counts)[:, genes], rtol=1e-5, atol=1e-5)
    # Scanpy's own analytic residuals (theta 100, clip sqrt(n)) of the whole matrix
    scanpy = sc.experimental.pp.normalize_pearson_residuals(
        sc.AnnData(counts), theta=PEARSON_THETA, inplace=False
    )["X"]
    np.testing.assert_allclose(sample_residuals(counts), scanpy, rtol=1e-4, atol=1e-4)


def test_undetected_genes_have_zero_residuals():
    counts = np.array([[1.0, 0.0], [3.0, 0.0]])
    got = pearson_residuals(counts, counts.sum(axis=1), np.array([1.0, 0.0]), clip=10.0)
    assert np.all(got[:, 1] == 0) and np.isfinite(got).all()


def test_pearson_pcs_do_not_depend_on_the_row_blocks():
    adata = sdc.datasets.synthetic(n_obs=600, n_vars=90, n_domains=3, random_state=2)
    whole = expression_pcs(adata.X, n_comps=8, n_top_genes=40, normalization="pearson")
    blocked = expression_pcs_chunked(
        adata.X, n_comps=8, n_top_genes=40, normalization="pearson", chunk=37
    )
    assert whole.shape == (600, 8) and whole.dtype == np.float32
    # same subspace up to sign: compare absolute column correlations
    corr = np.abs([np.corrcoef(whole[:, j], blocked[:, j])[0, 1] for j in range(3)])
    assert corr.min() > 0.999


def test_pearson_genes_are_ranked_by_residual_variance():
    rng = np.random.default_rng(1)
    n = 400
    flat = rng.poisson(5.0, size=(n, 30))  # Poisson noise only: residual variance ~ 1
    domain = np.repeat([0, 1], n // 2)
    marker = rng.poisson(np.where(domain == 0, 1.0, 30.0)[:, None], size=(n, 3))
    counts = np.hstack([flat, marker]).astype(np.float32)
    pcs = expression_pcs(counts, n_comps=2, n_top_genes=3, normalization="pearson")
    # only the three markers are kept, so the first PC separates the two domains exactly
    assert adjusted_rand_score(domain, pcs[:, 0] > np.median(pcs[:, 0])) == 1.0


def test_both_views_side_by_side_at_equal_weight():
    adata = sdc.datasets.synthetic(n_obs=500, n_vars=60, n_domains=3, random_state=4)
    both = expression_pcs(adata.X, n_comps=10, n_top_genes=60, normalization="log+pearson")
    assert both.shape == (500, 20)
    for half in (both[:, :10], both[:, 10:]):
        assert np.mean(np.sum(half.astype(np.float64) ** 2, axis=1)) == pytest.approx(1.0, 1e-4)


def test_unknown_normalization_is_refused_with_the_choices():
    X = np.ones((5, 3))
    with pytest.raises(ScdeepclustInputError, match="normalization 'sct'.*'log', 'pearson'"):
        expression_pcs(X, normalization="sct")
    with pytest.raises(ScdeepclustInputError, match="unknown normalization 'sct'"):
        sdc.tl.spatial_gmm(
            sdc.datasets.synthetic(n_obs=100, n_vars=20, random_state=0),
            3,
            features={"normalization": "sct"},
        )


@pytest.mark.parametrize("normalization", ["pearson", "log+pearson"])
def test_domains_are_found_with_pearson_features(normalization):
    adata = sdc.datasets.synthetic(n_obs=900, n_vars=120, n_domains=3, random_state=1)
    batches = np.where(np.arange(adata.n_obs) % 2, "a", "b")
    adata.obs["sample"] = batches
    sdc.tl.spatial_gmm(adata, 3, features={"normalization": normalization})
    assert adjusted_rand_score(adata.obs["truth"], adata.obs["spatial_gmm"]) > 0.8
    pcs = expression_pcs(adata.X, n_comps=5, normalization="pearson", batches=batches)
    for b in ("a", "b"):  # residuals standardised within each sample
        assert np.abs(pcs[batches == b].mean(axis=0)).max() < 0.5
    record = adata.uns["spatial_gmm"]["params"]["features"]
    assert record["normalization"] == normalization


def test_row_blocks_use_the_users_genes(monkeypatch):
    import scdeepclust.pp._chunked as chunked
    from scdeepclust.engine import FeatureOptions, ModelInputs
    from scdeepclust.pp._spatial_neighbors import spatial_graph

    adata = sdc.datasets.synthetic(n_obs=800, n_vars=80, n_domains=3, random_state=5)
    graph, _ = spatial_graph(adata, n_neighs=6, func="test")
    genes = np.zeros(adata.n_vars, dtype=bool)
    genes[:25] = True
    options = FeatureOptions(n_pcs=10, n_comps=6, normalization="log")
    memory = ModelInputs.build(adata.X, graph, options=options, genes=genes).features
    monkeypatch.setattr(chunked, "CHUNKED_MIN_OBS", 0)
    streamed = ModelInputs.build(adata.X, graph, options=options, genes=genes).features
    ignored = ModelInputs.build(adata.X, graph, options=options).features
    corr = [abs(np.corrcoef(memory[:, j], streamed[:, j])[0, 1]) for j in range(3)]
    assert min(corr) > 0.999
    assert abs(np.corrcoef(memory[:, 2], ignored[:, 2])[0, 1]) < 0.999  # the mask mattered
