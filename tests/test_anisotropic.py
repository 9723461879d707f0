"""Anisotropic neighbourhoods (``pp.gradient_directions``, ``pp.anisotropic_weighted``)."""

import numpy as np
import pytest
import scipy.sparse as sp

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.pp import anisotropic_weighted, gradient_directions, knn_graph


def _layered_grid(n_side: int = 40, noise: float = 0.01, seed: int = 0):
    """A square grid whose features change across x (bands of 8 columns, on a slow ramp)."""
    rng = np.random.default_rng(seed)
    coords = np.array([(i, j) for i in range(n_side) for j in range(n_side)], dtype=float)
    band = np.floor(coords[:, 0] / 8) + coords[:, 0] / 16
    features = np.column_stack([band, -band, noise * rng.normal(size=len(coords))])
    return coords, features.astype(np.float32)


def test_directions_point_across_the_layers():
    coords, features = _layered_grid()
    graph = knn_graph(coords, 6)
    direction, coherence = gradient_directions(graph, coords, features)
    assert direction.shape == (len(coords), 2) and coherence.shape == (len(coords),)
    assert np.allclose(np.linalg.norm(direction, axis=1), 1.0)
    assert np.abs(direction[:, 0]).mean() > 0.9  # across the bands is along x
    assert np.median(coherence) > 0.8


def test_no_coherent_direction_in_noise():
    rng = np.random.default_rng(1)
    coords = rng.uniform(0, 40, size=(1600, 2))
    features = rng.normal(size=(1600, 10)).astype(np.float32)
    _, coherence = gradient_directions(knn_graph(coords, 6), coords, features)
    assert 0.0 <= coherence.min() and coherence.max() <= 1.0
    assert np.median(coherence) < 0.35


def test_edges_across_a_layer_lose_weight_and_along_it_keep_it():
    coords, features = _layered_grid()
    graph = knn_graph(coords, 4)
    graph.data[:] = 1.0
    weighted = anisotropic_weighted(graph, coords, features, 4.0).tocoo()
    along_y = np.abs(coords[weighted.col, 0] - coords[weighted.row, 0]) == 0
    assert np.quantile(weighted.data[along_y], 0.05) > 0.95  # the grid's corners aside
    assert weighted.data[~along_y].mean() < 0.1  # exp(-4 x coherence) for coherence near 1
    assert weighted.nnz == graph.nnz  # the same edges, reweighted
    assert anisotropic_weighted(graph, coords, features, 0.0).nnz == graph.nnz
    assert np.array_equal(
        anisotropic_weighted(graph, coords, features, 0.0).toarray(), graph.toarray()
    )
    for bad in (-1.0, float("inf")):
        with pytest.raises(ValueError, match="strength must be a finite number >= 0"):
            anisotropic_weighted(graph, coords, features, bad)


def test_directions_never_mix_samples_the_graph_keeps_apart():
    coords, features = _layered_grid(20)
    # two samples on the same coordinates: layers across x in one, across y in the other
    flipped = np.column_stack([coords[:, 1], coords[:, 0]])
    _, flipped_features = _layered_grid(20)  # the features of spot (y, x) at spot (x, y)
    position = {tuple(p): i for i, p in enumerate(flipped)}
    both = np.vstack([coords, coords])
    feats = np.vstack([features, flipped_features[[position[tuple(p)] for p in coords]]])
    groups = np.repeat(["a", "b"], len(coords))
    graph = knn_graph(both, 6, groups=groups)
    direction, _ = gradient_directions(graph, both, feats)
    first, second = direction[: len(coords)], direction[len(coords) :]
    assert np.abs(first[:, 0]).mean() > 0.9 and np.abs(second[:, 1]).mean() > 0.9


def test_blocks_give_the_same_directions():
    coords, features = _layered_grid(30, noise=0.5)
    graph = knn_graph(coords, 6)
    whole = gradient_directions(graph, coords, features)
    blocked = gradient_directions(graph, coords, features, block=97)
    assert np.allclose(whole[1], blocked[1]) and np.allclose(np.abs(whole[0]), np.abs(blocked[0]))


def test_averaging_operator_with_anisotropy_is_still_an_average():
    coords, features = _layered_grid(20)
    graph = knn_graph(coords, 6)
    operator = sdc.pp.averaging_operator(graph, features, 0.5, coords=coords, anisotropy=4.0)
    assert np.allclose(np.asarray(operator.sum(axis=1)).ravel(), 1.0, atol=1e-5)
    isotropic = sdc.pp.averaging_operator(graph, features, 0.5)
    assert not np.allclose(operator.toarray(), isotropic.toarray())
    with pytest.raises(ValueError, match="needs the features and coords"):
        sdc.pp.averaging_operator(graph, features, 0.5, anisotropy=4.0)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), "strong"])
def test_anisotropy_must_be_finite_and_non_negative(bad):
    with pytest.raises(ScdeepclustInputError, match="anisotropy must be a finite number >= 0"):
        sdc.engine.FeatureOptions(anisotropy=bad)


def test_degenerate_neighbourhoods_give_no_direction():
    # a line of spots: every offset is collinear, so no 2-D gradient is defined
    coords = np.column_stack([np.arange(30.0), np.zeros(30)])
    features = np.arange(30.0)[:, None].astype(np.float32)
    graph = sp.csr_matrix(knn_graph(coords, 2))
    direction, coherence = gradient_directions(graph, coords, features)
    assert np.isfinite(direction).all() and np.isfinite(coherence).all()
    weighted = anisotropic_weighted(graph, coords, features, 4.0)
    assert np.isfinite(weighted.data).all()


def test_tools_record_the_anisotropy_and_warn_without_coordinates(small_adata):
    sdc.tl.spatial_gmm(small_adata, 3, features={"anisotropy": 4.0})
    assert small_adata.uns["spatial_gmm"]["graph"]["anisotropy"] == 4.0
    sdc.pp.spatial_neighbors(small_adata)  # a graph in obsp, then no coordinates
    del small_adata.obsm["spatial"]
    with pytest.warns(UserWarning, match=r"obsm\['spatial'\] is missing, so the neighbourhood"):
        sdc.tl.spatial_gmm(
            small_adata, 3, features={"anisotropy": 4.0}, vote_window=0, key_added="no_xy"
        )
    assert small_adata.uns["no_xy"]["graph"]["anisotropy"] == 0.0
