"""Scanpy/squidpy conventions: counts from a layer, the user's highly variable genes, and
the spatial graph in ``obsp`` (key, direction, samples)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError, counts_of


def _scanpy_layout(adata):
    """Counts in layers["counts"], log-normalised values in X (Scanpy users' habit)."""
    adata.layers["counts"] = adata.X.copy()
    adata.X = sdc.pp.log_normalize(adata.X, 1e4)
    return adata


def _user_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


def test_missing_layer_names_it_and_the_available_ones(small_adata):
    small_adata.layers["raw"] = small_adata.X.copy()
    with pytest.raises(KeyError, match=r"layer 'counts' not found.*available layers: 'raw'"):
        sdc.tl.pca_kmeans(small_adata, 3, layer="counts")
    with pytest.raises(KeyError, match=r"available layers: none"):
        counts_of(sdc.datasets.synthetic(60, 20, 2), "counts", func="f")


def test_layer_reads_the_counts_and_log_normalised_x_only_warns(small_adata):
    plain = sdc.tl.pca_kmeans(small_adata, 3, copy=True).obs["pca_kmeans"]
    _scanpy_layout(small_adata)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sdc.tl.pca_kmeans(small_adata, 3, layer="counts")
    assert _user_warnings(record) == []  # integer counts: no warning
    assert np.array_equal(small_adata.obs["pca_kmeans"].to_numpy(), plain.to_numpy())
    assert small_adata.uns["pca_kmeans"]["params"]["layer"] == "counts"

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sdc.tl.pca_kmeans(small_adata, 3, key_added="on_x")  # runs, with one warning
    messages = [m for m in _user_warnings(record) if "raw counts" in m]
    assert len(messages) == 1
    assert "adata.X looks log-normalised" in messages[0] and "'counts'" in messages[0]
    assert "on_x" in small_adata.obs


@pytest.mark.parametrize(
    "tool",
    [
        lambda a, **kw: sdc.pp.normalize(a, n_top_genes=30, **kw),
        lambda a, **kw: sdc.tl.kmeans(a, 3, **kw),
        lambda a, **kw: sdc.tl.pca_leiden(a, 3, n_comps=10, **kw),
        lambda a, **kw: sdc.tl.spatial_gmm(a, 3, **kw),
    ],
    ids=["normalize", "kmeans", "pca_leiden", "spatial_gmm"],
)
def test_every_counts_tool_takes_layer(small_adata, tool):
    _scanpy_layout(small_adata)
    x_before = small_adata.X.copy()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tool(small_adata, layer="counts")
    assert not [m for m in _user_warnings(record) if "raw counts" in m]
    assert (small_adata.X != x_before).nnz == 0  # the user's X is untouched
    with pytest.raises(KeyError, match="layer 'missing' not found"):
        tool(small_adata, layer="missing")


def test_non_integer_counts_warn_not_fail(small_adata):
    small_adata.X = small_adata.X * 1.5  # e.g. ambient-corrected or scaled values
    with pytest.warns(UserWarning, match=r"adata.X does not look like raw counts"):
        sdc.tl.kmeans(small_adata, 3)
    assert small_adata.obs["kmeans"].nunique() == 3


def test_user_highly_variable_genes_are_used_and_recorded(small_adata):
    mask = np.zeros(small_adata.n_vars, dtype=bool)
    mask[::3] = True
    small_adata.var["highly_variable"] = mask
    sdc.tl.pca_kmeans(small_adata, 3)
    genes = small_adata.uns["pca_kmeans"]["genes"]
    assert genes["source"] == "var['highly_variable']" and genes["n_genes"] == mask.sum()
    assert list(genes["names"]) == list(small_adata.var_names[mask])

    sdc.tl.pca_kmeans(small_adata, 3, use_highly_variable=False, key_added="own")
    assert small_adata.uns["own"]["genes"]["source"] == "selected by the tool"

    sdc.tl.spatial_gmm(small_adata, 3)  # the feature option of the deep tools
    assert small_adata.uns["spatial_gmm"]["genes"]["n_genes"] == mask.sum()
    assert small_adata.uns["spatial_gmm"]["params"]["features"]["use_highly_variable"] is None

    del small_adata.var["highly_variable"]
    with pytest.raises(KeyError, match="no 'highly_variable' column"):
        sdc.tl.pca_leiden(small_adata, 3, use_highly_variable=True)
    with pytest.raises(KeyError, match="no 'highly_variable' column"):
        sdc.tl.spatial_gmm(small_adata, 3, features={"use_highly_variable": True})


def test_built_graph_is_recorded(small_adata):
    sdc.tl.spatial_gmm(small_adata, 3, features={"n_neighs": 8})
    graph = small_adata.uns["spatial_gmm"]["graph"]
    assert graph["source"] == "built" and graph["n_neighs"] == 8 and graph["key"] is None
    assert "spatial_connectivities" not in small_adata.obsp  # nothing stored


def test_stored_graph_is_reused_under_any_key(small_adata):
    sdc.pp.spatial_neighbors(small_adata, key_added="hex")
    with pytest.raises(ScdeepclustInputError, match=r"obsp\['squidpy_graph'\] is missing"):
        sdc.tl.spatial_gmm(small_adata, 3, connectivities_key="squidpy_graph")
    sdc.tl.spatial_gmm(small_adata, 3, connectivities_key="hex_connectivities")
    graph = small_adata.uns["spatial_gmm"]["graph"]
    assert graph["source"] == "obsp" and graph["key"] == "hex_connectivities"
    assert graph["n_neighs"] is None and "n_neighs=6 ignored" in graph["note"]
    assert graph["symmetrised"] is False or graph["symmetrised"] == 0
    # default key absent: a graph is built, as before
    sdc.tl.spatial_gmm(small_adata, 3, key_added="built")
    assert small_adata.uns["built"]["graph"]["source"] == "built"


def test_directed_graph_is_symmetrised(small_adata):
    sdc.pp.spatial_neighbors(small_adata)
    symmetric = small_adata.obsp["spatial_connectivities"].copy()
    sdc.tl.spatial_gmm(small_adata, 3, key_added="sym")
    directed = sp.triu(symmetric, format="csr")  # keep one direction of every edge
    small_adata.obsp["spatial_connectivities"] = directed
    sdc.tl.spatial_gmm(small_adata, 3, key_added="dir")
    assert small_adata.uns["dir"]["graph"]["symmetrised"]
    assert not small_adata.uns["sym"]["graph"]["symmetrised"]
    assert np.array_equal(small_adata.obs["dir"].to_numpy(), small_adata.obs["sym"].to_numpy())
    assert (small_adata.obsp["spatial_connectivities"] != directed).nnz == 0  # not modified


def test_graph_across_samples_is_refused(small_adata):
    x = small_adata.obsm["spatial"][:, 0]
    small_adata.obs["sample"] = np.where(x > np.median(x), "a", "b")
    sdc.pp.spatial_neighbors(small_adata)  # across samples
    with pytest.raises(ScdeepclustInputError, match=r"has \d+ edge\(s\) between spots of"):
        sdc.tl.spatial_gmm(small_adata, 3, batch_key="sample")
    with pytest.raises(ScdeepclustInputError, match="batch_key 'sample'"):
        sdc.pp.neighbor_features(small_adata, batch_key="sample")
    sdc.pp.spatial_neighbors(small_adata, library_key="sample")
    sdc.tl.spatial_gmm(small_adata, 3, batch_key="sample")
    assert small_adata.uns["spatial_gmm"]["graph"]["batch_key"] == "sample"
