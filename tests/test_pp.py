import numpy as np
import pytest
import scipy.sparse as sp

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError


def test_spatial_neighbors_writes_squidpy_keys(small_adata):
    sdc.pp.spatial_neighbors(small_adata, n_neighs=6)
    conn = small_adata.obsp["spatial_connectivities"]
    dist = small_adata.obsp["spatial_distances"]
    assert sp.issparse(conn) and conn.shape == (900, 900)
    assert (conn != conn.T).nnz == 0, "graph must be symmetric"
    assert conn.diagonal().sum() == 0
    degree = np.diff(conn.tocsr().indptr)
    assert degree.min() >= 6
    assert set(np.unique(conn.data)) == {1.0}
    assert dist.nnz == conn.nnz and dist.data.min() > 0
    info = small_adata.uns["spatial_neighbors"]
    assert info["connectivities_key"] == "spatial_connectivities"
    assert info["params"]["n_neighbors"] == 6


def test_spatial_neighbors_radius_and_copy(small_adata):
    out = sdc.pp.spatial_neighbors(small_adata, radius=110.0, copy=True)
    assert "spatial_connectivities" not in small_adata.obsp
    degree = np.diff(out.obsp["spatial_connectivities"].tocsr().indptr)
    assert 4 <= np.median(degree) <= 6  # hexagonal grid with 100 um pitch and jitter


def test_spatial_neighbors_never_crosses_samples(small_adata):
    small_adata.obs["sample"] = np.where(small_adata.obsm["spatial"][:, 0] < 1500, "a", "b")
    sdc.pp.spatial_neighbors(small_adata, library_key="sample")
    conn = small_adata.obsp["spatial_connectivities"].tocoo()
    samples = small_adata.obs["sample"].to_numpy()
    assert (samples[conn.row] == samples[conn.col]).all()


def test_spatial_neighbors_missing_coordinates(small_adata):
    del small_adata.obsm["spatial"]
    with pytest.raises(ScdeepclustInputError, match=r"obsm\['spatial'\] is missing"):
        sdc.pp.spatial_neighbors(small_adata)


def test_normalize_keeps_counts_and_flags_genes(small_adata):
    counts = small_adata.X.copy()
    sdc.pp.normalize(small_adata, n_top_genes=50)
    assert (small_adata.X != counts).nnz == 0
    lognorm = small_adata.layers["lognorm"]
    totals = np.expm1(lognorm.toarray()).sum(axis=1)
    assert np.allclose(totals, np.median(np.asarray(counts.sum(axis=1)).ravel()), rtol=1e-3)
    assert small_adata.var["highly_variable"].sum() == 50


def test_minmax_scale_range(small_adata):
    sdc.pp.minmax_scale(small_adata)
    scaled = small_adata.layers["minmax"]
    assert scaled.min() == 0.0 and np.isclose(scaled.max(), 1.0)
    assert np.allclose(scaled.max(axis=0)[scaled.max(axis=0) > 0], 1.0)


def test_neighbor_features_smooth_and_shape(small_adata):
    sdc.pp.spatial_neighbors(small_adata)
    sdc.pp.neighbor_features(small_adata, n_comps=10, lam=0.8, hops=2)
    features = small_adata.obsm["X_spatial"]
    assert features.shape == (900, 30)
    own, hop1 = features[:, :10], features[:, 10:20]
    assert hop1.var(axis=0).sum() < own.var(axis=0).sum()  # averaging reduces variance


def test_neighbor_average_is_sparse_mean():
    graph = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    values = np.array([[0.0], [3.0], [6.0]], dtype=np.float32)
    out = sdc.pp.neighbor_average(values, graph)
    assert np.allclose(out.ravel(), [1.5, 3.0, 4.5])


def test_averaging_operator_down_weights_dissimilar_neighbours():
    # a path 0 - 1 - 2: node 1 looks like node 0 and unlike node 2
    graph = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    features = np.array([[0.0], [0.1], [5.0]], dtype=np.float32)
    uniform = sdc.pp.averaging_operator(graph)
    assert np.allclose(uniform.toarray(), sdc.pp.row_normalized(graph).toarray())
    for share in (0.5, 1.0):
        mixed = sdc.pp.averaging_operator(graph, features, share).toarray()
        assert np.allclose(mixed.sum(axis=1), 1.0, atol=1e-6)  # still an average
        assert mixed[1, 2] < uniform[1, 1 + 1] and mixed[1, 0] > uniform[1, 0]
        assert (mixed > 0).sum() == (uniform.toarray() > 0).sum()  # same neighbours
    weighted = sdc.pp.expression_weighted(graph, features).toarray()
    # the kernel's width is the median squared distance over the edges (0.01 and 24.01)
    width = np.median([0.01, 0.01, 24.01, 24.01])
    assert np.isclose(weighted[0, 1], np.exp(-0.01 / width), rtol=1e-5)
    with pytest.raises(ValueError, match="needs the features"):
        sdc.pp.averaging_operator(graph, None, 0.5)


def test_spatial_embedding_without_expression_weight_is_the_plain_average():
    rng = np.random.default_rng(1)
    own = rng.normal(size=(50, 4)).astype(np.float32)
    graph = sdc.pp.knn_graph(rng.uniform(size=(50, 2)), 4)
    out = sdc.pp.spatial_embedding(own, graph, lam=0.5, hops=2, expression_weight=0.0)
    hop2 = sdc.pp.neighbor_average(own, graph, hops=2)
    assert np.allclose(out[:, -4:], np.sqrt(0.25) * hop2, atol=1e-6)
    weighted = sdc.pp.spatial_embedding(own, graph, lam=0.5, hops=2, expression_weight=0.5)
    assert weighted.shape == out.shape and not np.allclose(weighted, out)


def test_louvain_runs_in_this_environment(small_adata):
    """The louvain package needs pkg_resources (setuptools<81): keep this working."""
    import scanpy as sc

    sc.pp.pca(small_adata, n_comps=10)
    sc.pp.neighbors(small_adata, n_neighbors=10)
    sc.tl.louvain(small_adata)
    assert small_adata.obs["louvain"].nunique() >= 2
