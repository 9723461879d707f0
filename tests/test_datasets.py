"""Tests of the synthetic spatial data set."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.datasets import LAYOUTS, synthetic


@pytest.fixture(scope="module", params=LAYOUTS)
def small(request):
    return synthetic(600, 60, 4, layout=request.param, random_state=3)


def test_shapes_and_types(small):
    assert small.shape == (600, 60)
    assert sp.isspmatrix_csr(small.X) or isinstance(small.X, sp.csr_array)
    assert small.X.dtype == np.float32
    data = small.X.data
    assert (data > 0).all() and np.array_equal(data, np.round(data))
    assert list(small.obs_names[:2]) == ["spot_0", "spot_1"]
    assert list(small.var_names[:2]) == ["gene_0", "gene_1"]
    coords = small.obsm["spatial"]
    assert coords.shape == (600, 2) and coords.dtype == np.float64
    assert np.isfinite(coords).all()


def test_truth_labels(small):
    truth = small.obs["truth"]
    assert truth.dtype == "category"
    assert list(truth.cat.categories) == [f"domain_{i}" for i in range(4)]
    assert not truth.isna().any()
    assert truth.value_counts().min() >= 10


def test_metadata_and_library_size(small):
    meta = small.uns["synthetic"]
    assert meta["n_obs"] == 600 and meta["n_domains"] == 4 and meta["random_state"] == 3
    assert set(meta["markers"]) == {f"domain_{i}" for i in range(4)}
    libsize = np.asarray(small.X.sum(axis=1)).ravel()
    assert 0.8 * meta["mean_counts"] < libsize.mean() < 1.2 * meta["mean_counts"]
    assert libsize.std() > 0.1 * libsize.mean()  # size factors vary


def test_spot_pitch():
    adata = synthetic(400, 20, 2, random_state=0)
    nn = NearestNeighbors(n_neighbors=2).fit(adata.obsm["spatial"])
    dist = nn.kneighbors(return_distance=True)[0][:, 0]
    assert 70 < np.median(dist) < 130


def test_deterministic():
    a = synthetic(300, 30, 3, random_state=7)
    b = synthetic(300, 30, 3, random_state=7)
    c = synthetic(300, 30, 3, random_state=8)
    assert (a.X != b.X).nnz == 0
    assert np.array_equal(a.obsm["spatial"], b.obsm["spatial"])
    assert a.obs["truth"].equals(b.obs["truth"])
    assert (a.X != c.X).nnz > 0


def test_global_rng_untouched():
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    synthetic(200, 20, 2, random_state=None)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_domains": 1}, "n_domains"),
        ({"n_obs": 50, "n_domains": 6}, "n_obs"),
        ({"n_vars": 5, "n_domains": 4}, "n_vars"),
        ({"layout": "spiral"}, "'layers', 'blobs'"),
        ({"dropout": 1.0}, "dropout"),
        ({"marker_fold": 0.5}, "marker_fold"),
        ({"mean_counts": -1}, "mean_counts"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"n_obs": 200, "n_vars": 20, "n_domains": 2, **kwargs}
    with pytest.raises(ScdeepclustInputError, match=match):
        synthetic(**args)


def test_bad_types():
    with pytest.raises(TypeError, match="n_obs"):
        synthetic(200.5, 20, 2)
    with pytest.raises(TypeError, match="random_state"):
        synthetic(200, 20, 2, random_state="seed")


def _kmeans_aris(adata, k):
    counts = adata.X.toarray()
    logn = np.log1p(counts / counts.sum(axis=1, keepdims=True) * np.median(counts.sum(axis=1)))
    pcs = PCA(30, random_state=0).fit_transform(logn)
    idx = NearestNeighbors(n_neighbors=6).fit(adata.obsm["spatial"]).kneighbors()[1]
    smoothed = (pcs + pcs[idx].sum(axis=1)) / 7.0  # each spot and its 6 nearest neighbours
    truth = adata.obs["truth"].to_numpy()
    raw = adjusted_rand_score(truth, KMeans(k, n_init=4, random_state=0).fit_predict(pcs))
    smooth = adjusted_rand_score(truth, KMeans(k, n_init=4, random_state=0).fit_predict(smoothed))
    return raw, smooth


@pytest.mark.parametrize("layout", LAYOUTS)
def test_spatial_smoothing_helps(layout):
    adata = synthetic(1500, 300, 5, layout=layout, random_state=0)
    raw, smooth = _kmeans_aris(adata, 5)
    assert smooth > 0.7
    assert smooth > raw + 0.2, (raw, smooth)
