import numpy as np
import pytest

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError


@pytest.mark.parametrize(
    "tool, key",
    [
        (sdc.tl.kmeans, "kmeans"),
        (sdc.tl.pca_kmeans, "pca_kmeans"),
        (sdc.tl.pca_louvain, "pca_louvain"),
        (sdc.tl.pca_leiden, "pca_leiden"),
    ],
)
def test_baseline_writes_labels_and_record(small_adata, tool, key):
    tool(small_adata, 3)
    labels = small_adata.obs[key]
    assert labels.dtype.name == "category"
    assert labels.nunique() == 3  # resolution search hits the requested number
    record = small_adata.uns[key]
    assert record["n_clusters"] == 3 and record["method"] == key
    assert record["params"]["n_clusters"] == 3 and record["params"]["random_state"] == 0
    assert "adata" not in record["params"] and "copy" not in record["params"]


def test_pca_kmeans_finds_structure(small_adata):
    sdc.tl.pca_kmeans(small_adata, 3)
    assert sdc.metrics.score(small_adata, "pca_kmeans")["nmi"] > 0.05


def test_leiden_without_target_uses_resolution(small_adata):
    sdc.tl.pca_leiden(small_adata, resolution=0.5)
    assert small_adata.uns["pca_leiden"]["resolution"] == 0.5


def test_baseline_copy_and_overwrite_warning(small_adata):
    out = sdc.tl.pca_kmeans(small_adata, 3, copy=True)
    assert "pca_kmeans" not in small_adata.obs and "pca_kmeans" in out.obs
    sdc.tl.pca_kmeans(small_adata, 3)
    with pytest.warns(UserWarning, match="pca_kmeans"):
        sdc.tl.pca_kmeans(small_adata, 3)


def test_baseline_bad_n_clusters(small_adata):
    with pytest.raises(ScdeepclustInputError, match="n_clusters must be between 2"):
        sdc.tl.kmeans(small_adata, 1)


def test_baselines_deterministic(small_adata):
    a = sdc.tl.pca_leiden(small_adata, 3, copy=True).obs["pca_leiden"]
    b = sdc.tl.pca_leiden(small_adata, 3, copy=True).obs["pca_leiden"]
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def test_pca_leiden_above_scanpy_exact_knn_limit():
    """Above 4,096 cells Scanpy's default neighbors path (pynndescent) builds the graph."""
    adata = sdc.datasets.synthetic(n_obs=4500, n_vars=60, n_domains=3, random_state=1)
    sdc.tl.pca_leiden(adata, 3, n_comps=10, n_top_genes=30)
    assert adata.obs["pca_leiden"].nunique() == 3
    assert sdc.metrics.score(adata, "pca_leiden")["nmi"] > 0.05
