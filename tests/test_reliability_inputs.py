"""Reliability: every public function rejects bad input with a clear, specific error.

Bad inputs covered: not an AnnData, missing/malformed ``obsm["spatial"]``, NaN/inf/negative
counts (dense and sparse), bad ``n_clusters`` (too small, too large for the observations,
wrong type, missing), unknown model/init/layout/device/join names (the message lists the
valid ones), single-class labels in the metrics, all-zero spots and genes, and bad CLI
arguments (``main([...])`` returns non-zero and prints one error line).

All-zero data, as decided here:

- all-zero spots (rows) and all-zero genes (columns) are *handled*: every function runs and
  its outputs hold no NaN/inf;
- an entirely zero (or constant) ``X`` has nothing to cluster: ``pp.normalize`` and
  ``pp.minmax_scale`` still run (no NaN, no gene flagged variable), every clustering or
  embedding tool raises :class:`ScdeepclustInputError` saying so.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import scdeepclust as sdc
from scdeepclust import metrics, pl, pp, tl
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.io import SpcaFormatError

N_OBS = 400


@pytest.fixture(scope="module")
def _base():
    adata = sdc.datasets.synthetic(n_obs=N_OBS, n_vars=60, n_domains=3)
    adata.obs["pred"] = adata.obs["truth"].cat.rename_categories(["a", "b", "c"])
    return adata


@pytest.fixture
def adata(_base):
    return _base.copy()


def _with_graph(adata):
    pp.spatial_neighbors(adata)
    return adata


# Every public function that takes an AnnData, called with valid minimal arguments.
ANNDATA_FUNCS = {
    "pp.spatial_neighbors": lambda a, p: pp.spatial_neighbors(a),
    "pp.normalize": lambda a, p: pp.normalize(a, n_top_genes=30),
    "pp.minmax_scale": lambda a, p: pp.minmax_scale(a),
    "pp.neighbor_features": lambda a, p: pp.neighbor_features(a, n_comps=8, n_top_genes=30),
    "tl.kmeans": lambda a, p: tl.kmeans(a, 3),
    "tl.pca_kmeans": lambda a, p: tl.pca_kmeans(a, 3, n_comps=8, n_top_genes=30),
    "tl.pca_louvain": lambda a, p: tl.pca_louvain(a, n_comps=8, n_top_genes=30),
    "tl.pca_leiden": lambda a, p: tl.pca_leiden(a, n_comps=8, n_top_genes=30),
    "tl.ae_embed": lambda a, p: tl.ae_embed(a, **p.ae),
    "tl.deep_cluster": lambda a, p: tl.deep_cluster(a, 3, **p.dc),
    "metrics.annotated_pairs": lambda a, p: metrics.annotated_pairs(a, "pred"),
    "metrics.score": lambda a, p: metrics.score(a, "pred"),
    "metrics.classification_report": lambda a, p: metrics.classification_report(a, "pred"),
    "pl.spatial_compare": lambda a, p: pl.spatial_compare(a, ["truth", "pred"]),
    "pl.history": lambda a, p: pl.history(a, "deep_cluster"),
}
# Functions that read the counts in X (and must reject NaN/inf/negative values).
COUNT_FUNCS = [
    "pp.normalize",
    "pp.neighbor_features",
    "tl.kmeans",
    "tl.pca_kmeans",
    "tl.pca_louvain",
    "tl.pca_leiden",
    "tl.ae_embed",
    "tl.deep_cluster",
]
# Functions with an n_clusters argument, called with a given value.
N_CLUSTER_FUNCS = {
    "tl.kmeans": lambda a, k, p: tl.kmeans(a, k),
    "tl.pca_kmeans": lambda a, k, p: tl.pca_kmeans(a, k, n_top_genes=30),
    "tl.pca_louvain": lambda a, k, p: tl.pca_louvain(a, k, n_top_genes=30),
    "tl.pca_leiden": lambda a, k, p: tl.pca_leiden(a, k, n_top_genes=30),
    "tl.deep_cluster": lambda a, k, p: tl.deep_cluster(a, k, **p.dc),
}


def _needs_graph(name: str) -> bool:
    return name == "pp.neighbor_features"


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize("name", sorted(ANNDATA_FUNCS))
@pytest.mark.parametrize(
    "bad", [np.ones((10, 5)), pd.DataFrame(np.ones((10, 5))), None], ids=["array", "df", "none"]
)
def test_not_an_anndata_is_a_type_error(name, bad, tiny):
    with pytest.raises(TypeError, match="expected an AnnData, got"):
        ANNDATA_FUNCS[name](bad, tiny)


def test_scores_needs_a_dataframe():
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        pl.scores(np.ones((3, 3)))
    with pytest.raises(KeyError, match="available columns"):
        pl.scores(pd.DataFrame({"sample": ["a"], "method": ["m"]}))


@pytest.mark.parametrize("name", ["tl.kmeans", "pp.normalize", "metrics.score"])
def test_empty_anndata(name, tiny):
    with pytest.raises(ScdeepclustInputError, match="the AnnData is empty"):
        ANNDATA_FUNCS[name](AnnData(np.zeros((0, 5), dtype=np.float32)), tiny)


# --------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(
    "name", ["pp.spatial_neighbors", "tl.ae_embed", "tl.deep_cluster", "pl.spatial_compare"]
)
def test_missing_spatial_says_how_to_add_it(adata, name, tiny):
    del adata.obsm["spatial"]
    pattern = r"adata\.obsm\['spatial'\] is missing.*adata\.obsm\['spatial'\] = coords"
    with pytest.raises(ScdeepclustInputError, match=pattern):
        ANNDATA_FUNCS[name](adata, tiny)


def test_missing_graph_says_how_to_build_it(adata):
    with pytest.raises(ScdeepclustInputError, match=r"sdc\.pp\.spatial_neighbors\(adata\)"):
        pp.neighbor_features(adata)


@pytest.mark.parametrize("name", ["pp.spatial_neighbors", "tl.deep_cluster", "pl.spatial_compare"])
@pytest.mark.parametrize("bad", ["1-column", "nan", "inf"])
def test_malformed_spatial(adata, name, bad, tiny):
    coords = adata.obsm["spatial"].copy()
    if bad == "1-column":
        coords = coords[:, :1]
        match = r"must be n_obs x 2"
    else:
        coords[3, 1] = np.nan if bad == "nan" else np.inf
        match = "NaN or inf"
    adata.obsm["spatial"] = coords
    with pytest.raises(ScdeepclustInputError, match=match):
        ANNDATA_FUNCS[name](adata, tiny)


@pytest.mark.parametrize("n_neighs", [0, -1, 2.5, True])
def test_spatial_neighbors_bad_n_neighs(adata, n_neighs):
    with pytest.raises(ScdeepclustInputError, match="n_neighs must be a positive integer"):
        pp.spatial_neighbors(adata, n_neighs=n_neighs)


def test_spatial_neighbors_bad_radius_and_library_key(adata):
    with pytest.raises(ScdeepclustInputError, match="radius must be positive"):
        pp.spatial_neighbors(adata, radius=0.0)
    with pytest.raises(KeyError, match="library_key 'nope'"):
        pp.spatial_neighbors(adata, library_key="nope")


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize("name", COUNT_FUNCS)
@pytest.mark.parametrize("bad", ["nan", "inf", "negative"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_bad_counts_rejected(adata, name, bad, sparse, tiny):
    if _needs_graph(name):
        _with_graph(adata)
    X = adata.X.toarray()
    X[5, 7] = {"nan": np.nan, "inf": np.inf, "negative": -1.0}[bad]
    adata.X = sp.csr_matrix(X) if sparse else X
    match = "negative values" if bad == "negative" else "NaN or inf"
    with pytest.raises(
        ScdeepclustInputError, match=rf"{re.escape(name)}: adata\.X contains {match}"
    ):
        ANNDATA_FUNCS[name](adata, tiny)


@pytest.mark.parametrize("func", [pp.log_normalize, pp.expression_pcs])
@pytest.mark.parametrize("bad", [np.nan, -2.0])
def test_array_functions_reject_bad_counts(func, bad):
    X = np.random.default_rng(0).poisson(3.0, size=(20, 6)).astype(np.float32)
    X[1, 1] = bad
    with pytest.raises(ScdeepclustInputError, match="NaN or inf|negative values"):
        func(X)


def test_minmax_scale_rejects_nan_but_scales_negative_values(adata):
    """minmax_scale is a scaling of any layer (not counts): negative values are allowed."""
    X = adata.X.toarray()
    X[0, 0] = -5.0
    adata.X = X
    pp.minmax_scale(adata)
    scaled = adata.layers["minmax"]
    assert np.isfinite(scaled).all() and scaled.min() == 0.0 and scaled.max() == 1.0
    X[0, 0] = np.nan
    with pytest.raises(ScdeepclustInputError, match="NaN or inf"):
        pp.minmax_scale(adata)
    with pytest.raises(KeyError, match="layer 'nope' not found"):
        pp.minmax_scale(adata, layer="nope")


# --------------------------------------------------------------------------- n_clusters


@pytest.mark.parametrize("name", sorted(N_CLUSTER_FUNCS))
@pytest.mark.parametrize("k", [-3, 0, 1, N_OBS + 1])
def test_n_clusters_out_of_range(adata, name, k, tiny):
    with pytest.raises(ScdeepclustInputError, match=f"between 2 and n_obs={N_OBS}, got {k}"):
        N_CLUSTER_FUNCS[name](adata, k, tiny)


@pytest.mark.parametrize("name", sorted(N_CLUSTER_FUNCS))
@pytest.mark.parametrize("k", [2.5, 3.0, "3", True])
def test_n_clusters_wrong_type(adata, name, k, tiny):
    with pytest.raises(TypeError, match="n_clusters must be an integer"):
        N_CLUSTER_FUNCS[name](adata, k, tiny)


@pytest.mark.parametrize("name", ["tl.kmeans", "tl.pca_kmeans"])
def test_n_clusters_required_for_kmeans(adata, name, tiny):
    with pytest.raises(TypeError, match="n_clusters is required"):
        N_CLUSTER_FUNCS[name](adata, None, tiny)


@pytest.mark.parametrize("name", sorted(N_CLUSTER_FUNCS))
def test_too_few_observations_for_the_clusters(adata, name, tiny):
    small = adata[:4].copy()
    with pytest.raises(ScdeepclustInputError, match="between 2 and n_obs=4, got 5"):
        N_CLUSTER_FUNCS[name](small, 5, tiny)


def test_as_many_clusters_as_observations_is_allowed(adata):
    small = adata[:6].copy()
    tl.kmeans(small, 6)
    assert small.obs["kmeans"].nunique() == 6


# --------------------------------------------------------------------------- names


def test_unknown_model_init_layout_device_and_join(adata, tiny):
    with pytest.raises(
        ScdeepclustInputError, match="unknown model 'gan'.*'ae', 'vae', 'zinb', 'nb'"
    ):
        tl.ae_embed(adata, **tiny.merge(tiny.ae, model={"kind": "gan"}))
    with pytest.raises(
        ScdeepclustInputError, match="unknown model 'gan'.*'ae', 'vae', 'zinb', 'nb'"
    ):
        tl.deep_cluster(adata, 3, **tiny.merge(tiny.dc, model={"kind": "gan"}))
    with pytest.raises(ScdeepclustInputError, match="unknown init 'spectral'.*'gmm', 'kmeans'"):
        tl.deep_cluster(adata, 3, **tiny.merge(tiny.dc, refine={"init": "spectral"}))
    with pytest.raises(ScdeepclustInputError, match="unknown layout 'rings'.*'layers', 'blobs'"):
        sdc.datasets.synthetic(100, 20, 2, layout="rings")
    with pytest.raises(ValueError, match="unknown device 'gpu'.*'auto', 'cpu', 'cuda'"):
        tl.ae_embed(adata, **tiny.merge(tiny.ae, device="gpu"))
    with pytest.raises(ValueError, match="join must be 'inner' or 'outer', got 'left'"):
        sdc.read_spca_dir(["a.h5"], join="left")
    with pytest.raises(ValueError, match="visium_array must be True, False or 'auto'"):
        sdc.read_spca(__file__, visium_array="yes")


@pytest.mark.parametrize("kwargs", [{"lam": 1.5}, {"lam": -0.1}, {"hops": -1}, {"hops": 1.5}])
def test_bad_feature_parameters(adata, kwargs):
    _with_graph(adata)
    with pytest.raises(ScdeepclustInputError, match="lam must be in|hops must be"):
        pp.neighbor_features(adata, n_top_genes=30, n_comps=8, **kwargs)


def test_neighbor_average_shape_mismatch():
    graph = sp.identity(5, format="csr")
    with pytest.raises(ScdeepclustInputError, match=r"graph has shape \(5, 5\).*6 rows"):
        pp.neighbor_average(np.ones((6, 2)), graph)


def test_missing_keys_are_named(adata, tiny):
    with pytest.raises(KeyError, match="batch_key 'nope'"):
        pp.normalize(adata, batch_key="nope")
    with pytest.raises(KeyError, match="batch_key 'nope'"):
        tl.deep_cluster(adata, 3, batch_key="nope", **tiny.dc)
    with pytest.raises(KeyError, match=r"adata\.obs\['nope'\] not found; available columns"):
        metrics.score(adata, "nope")
    with pytest.raises(KeyError, match="no column 'nope'; available columns"):
        pl.spatial_compare(adata, ["truth", "nope"])
    with pytest.raises(KeyError, match=r"adata\.uns\['deep_cluster'\] not found"):
        pl.history(adata)


# --------------------------------------------------------------------------- labels


def test_classification_report_single_class(adata):
    adata.obs["one"] = "x"
    with pytest.raises(ScdeepclustInputError, match=r"obs\['one'\] has a single class \('x'\)"):
        metrics.classification_report(adata, "pred", truth_key="one")


def test_classification_report_single_predicted_class_warns(adata):
    adata.obs["one"] = "a"
    with pytest.warns(UserWarning, match="predictions collapsed"):
        report = metrics.classification_report(adata, "one", truth_key="pred")
    assert report["n_predicted_classes"] == 1


def test_score_single_class_is_defined(adata):
    adata.obs["one"] = "x"
    res = metrics.score(adata, "one")
    assert res["n_clusters"] == 1 and res["ari"] == 0.0 and 0.0 <= res["acc"] <= 1.0


def test_no_annotated_observation(adata):
    adata.obs["missing"] = pd.Categorical([np.nan] * adata.n_obs, categories=["a"])
    with pytest.raises(ScdeepclustInputError, match="no observation has both"):
        metrics.score(adata, "pred", truth_key="missing")


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [
        ([1, 2, 3], [1, 2], r"differ in length \(3 vs 2\)"),
        ([], [], "are empty"),
        ([[1, 2]], [[1, 2]], "must be 1-D"),
        ([np.nan, np.nan], [0, 1], "no observation has both labels"),
    ],
)
def test_label_sequence_errors(truth, pred, match):
    with pytest.raises(ScdeepclustInputError, match=match):
        metrics.clustering_accuracy(truth, pred)
    if "both labels" not in match:
        with pytest.raises(ScdeepclustInputError, match=match):
            metrics.match_labels(truth, pred)


# --------------------------------------------------------------------------- all-zero data


def _zero_some(adata) -> AnnData:
    X = adata.X.toarray()
    X[:20] = 0.0  # 20 empty spots
    X[:, :5] = 0.0  # 5 genes never detected
    adata.X = sp.csr_matrix(X)
    return adata


def _finite_outputs(before: AnnData, after: AnnData) -> None:
    for key in set(after.obsm) - set(before.obsm):
        assert np.isfinite(np.asarray(after.obsm[key])).all(), key
    for key in set(after.layers) - set(before.layers):
        layer = after.layers[key]
        assert np.isfinite(layer.data if sp.issparse(layer) else layer).all(), key
    for key in set(after.obs) - set(before.obs):
        assert after.obs[key].notna().all(), key


@pytest.mark.parametrize(
    "name", [n for n in ANNDATA_FUNCS if n.startswith(("pp.", "tl.")) and "deep" not in n]
)
def test_zero_spots_and_genes_are_handled(adata, name, tiny):
    """All-zero spots and genes: no crash and no NaN (deep models: test_reliability_numerics)."""
    _zero_some(adata)
    if _needs_graph(name):
        _with_graph(adata)
    before = adata.copy()
    ANNDATA_FUNCS[name](adata, tiny)
    _finite_outputs(before, adata)
    if name == "pp.normalize":
        assert not adata.var["highly_variable"].iloc[:5].any()


def test_zero_spots_with_batches(adata):
    """A sample made only of empty spots does not break per-sample gene selection."""
    _zero_some(adata)
    adata.obs["sample"] = np.where(np.arange(adata.n_obs) < 20, "empty", "full")
    pp.normalize(adata, n_top_genes=30, batch_key="sample")
    assert adata.var["highly_variable"].sum() == 30
    assert np.isfinite(adata.layers["lognorm"].data).all()
    pp.spatial_neighbors(adata, library_key="sample")
    pp.neighbor_features(adata, n_comps=8, n_top_genes=30, batch_key="sample")
    assert np.isfinite(adata.obsm["X_spatial"]).all()


@pytest.mark.parametrize("value", [0.0, 3.0], ids=["zeros", "constant"])
def test_all_zero_or_constant_x(adata, value, tiny):
    adata.X = np.full(adata.shape, value, dtype=np.float32)
    pp.normalize(adata, n_top_genes=30)
    assert np.isfinite(adata.layers["lognorm"]).all()
    assert not adata.var["highly_variable"].any()
    for name in ["tl.pca_kmeans", "tl.ae_embed"]:  # the user's (empty) gene selection
        with pytest.raises(ScdeepclustInputError, match=r"flags 0 gene\(s\)"):
            ANNDATA_FUNCS[name](adata, tiny)
    del adata.var["highly_variable"]  # the tools' own selection finds nothing either
    pp.minmax_scale(adata)
    assert (adata.layers["minmax"] == 0).all()
    _with_graph(adata)
    for name in ["pp.neighbor_features", "tl.pca_kmeans", "tl.pca_leiden", "tl.ae_embed"]:
        with pytest.raises(ScdeepclustInputError, match="nothing to cluster"):
            ANNDATA_FUNCS[name](adata, tiny)
    with pytest.raises(ScdeepclustInputError, match="nothing to cluster"):
        tl.deep_cluster(adata, 3, **tiny.dc)
    state = "all zeros" if value == 0 else "constant in every column"
    with pytest.raises(ScdeepclustInputError, match=f"tl.kmeans: adata.X is {state}"):
        tl.kmeans(adata, 3)


# --------------------------------------------------------------------------- CLI


def _spca(path, n=8, **override):
    rng = np.random.default_rng(0)
    content = {
        "X": rng.poisson(3.0, size=(n, 6)).astype(np.float64),
        "Y": np.array([b"A", b"B"] * (n // 2)),
        "pos": rng.uniform(0, 100, size=(2, n)),
    }
    content.update(override)
    with h5py.File(path, "w") as h5:
        for key, value in content.items():
            if value is not None:
                h5.create_dataset(key, data=value)
    return path


def _cli(capsys, argv):
    from scdeepclust.cli import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("scdeepclust: error")]


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing file", "no such file"),
        ("not hdf5", "is not an HDF5 file; expected an .h5ad file"),
        ("no coordinates", "'pos'"),
        ("nan counts", "finite counts"),
        ("bad method", r"invalid choice: 'bogus'.*'deep'.*'kmeans'"),
        ("one cluster", "must be at least 2"),
        ("too many clusters", "between 2 and n_obs=8, got 9"),
        ("no labels no k", "needs --n-clusters"),
    ],
)
def test_cli_bad_input_one_line_error(tmp_path, capsys, case, match):
    pytest.importorskip("scdeepclust.cli")
    good = _spca(tmp_path / "good.h5")
    args = ["cluster", good, "--out", tmp_path / "out", "--method", "kmeans", "-q"]
    if case == "missing file":
        args[1] = tmp_path / "nope.h5"
    elif case == "not hdf5":
        (tmp_path / "bad.h5").write_text("not an hdf5 file\n")
        args[1] = tmp_path / "bad.h5"
    elif case == "no coordinates":
        args[1] = _spca(tmp_path / "nopos.h5", pos=None)
    elif case == "nan counts":
        X = np.ones((8, 6))
        X[0, 0] = np.nan
        args[1] = _spca(tmp_path / "nan.h5", X=X)
    elif case == "bad method":
        args[5] = "bogus"
    elif case == "one cluster":
        args += ["--n-clusters", "1"]
    elif case == "too many clusters":
        args += ["--n-clusters", "9"]
    elif case == "no labels no k":
        args[1] = _spca(tmp_path / "nolab.h5", Y=None)
    code, lines = _cli(capsys, args)
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("scdeepclust: error: ")
    assert re.search(match, lines[0]), lines[0]


def test_reader_errors_are_format_errors(tmp_path):
    f = _spca(tmp_path / "s.h5", pos=np.zeros((3, 8)))
    with pytest.raises(SpcaFormatError, match="key 'pos'"):
        sdc.read_spca(f)
