"""Reliability: public functions never damage the AnnData they are given.

For every public function: everything but its documented outputs stays byte-for-byte
identical (``X``, ``layers``, ``raw``, ``obsm``, ``obsp``, ``uns``, ``obs``, ``var``); an
existing output key is replaced only with a UserWarning naming it; ``copy=True`` leaves the
input wholly unchanged; an exception (or KeyboardInterrupt) during the work leaves the
AnnData exactly as it was, and the global RNG states untouched.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Mapping

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData

import scdeepclust as sdc
import scdeepclust.nn as snn
from scdeepclust import metrics, pl, pp, tl

DC_OUT = {
    "obs": {"deep_cluster"},
    "uns": {"deep_cluster"},
    "obsm": {"X_deep_cluster", "deep_cluster_proba"},
}

# name: (call, documented outputs, accepts copy=)
CASES = {
    "pp.spatial_neighbors": (
        lambda a, p, **kw: pp.spatial_neighbors(a, key_added="sn", **kw),
        {"obsp": {"sn_connectivities", "sn_distances"}, "uns": {"sn_neighbors"}},
        True,
    ),
    "pp.normalize": (
        lambda a, p, **kw: pp.normalize(a, n_top_genes=30, **kw),
        {"layers": {"lognorm"}, "var": {"highly_variable"}, "uns": {"normalize"}},
        True,
    ),
    "pp.minmax_scale": (
        lambda a, p, **kw: pp.minmax_scale(a, **kw),
        {"layers": {"minmax"}},
        True,
    ),
    "pp.neighbor_features": (
        lambda a, p, **kw: pp.neighbor_features(a, n_comps=8, n_top_genes=30, **kw),
        {"obsm": {"X_spatial"}},
        True,
    ),
    "tl.kmeans": (
        lambda a, p, **kw: tl.kmeans(a, 3, **kw),
        {"obs": {"kmeans"}, "uns": {"kmeans"}},
        True,
    ),
    "tl.pca_kmeans": (
        lambda a, p, **kw: tl.pca_kmeans(a, 3, n_comps=8, n_top_genes=30, **kw),
        {"obs": {"pca_kmeans"}, "uns": {"pca_kmeans"}},
        True,
    ),
    "tl.pca_louvain": (
        lambda a, p, **kw: tl.pca_louvain(a, n_comps=8, n_top_genes=30, **kw),
        {"obs": {"pca_louvain"}, "uns": {"pca_louvain"}},
        True,
    ),
    "tl.pca_leiden": (
        lambda a, p, **kw: tl.pca_leiden(a, n_comps=8, n_top_genes=30, **kw),
        {"obs": {"pca_leiden"}, "uns": {"pca_leiden"}},
        True,
    ),
    "tl.ae_embed": (
        lambda a, p, **kw: tl.ae_embed(a, **p.ae, **kw),
        {"obsm": {"X_ae"}, "uns": {"ae"}},
        True,
    ),
    "tl.deep_cluster": (lambda a, p, **kw: tl.deep_cluster(a, 3, **p.dc, **kw), DC_OUT, True),
    "tl.label_transfer": (
        lambda a, p, **kw: tl.label_transfer(_reference(a), a, **p.transfer, **kw),
        {
            "obs": {"transferred", "transferred_confidence"},
            "obsm": {"transferred_proba", "X_transferred"},
            "uns": {"transferred"},
        },
        True,
    ),
    "metrics.annotated_pairs": (lambda a, p: metrics.annotated_pairs(a, "pred"), {}, False),
    "metrics.score": (lambda a, p: metrics.score(a, "pred"), {}, False),
    "metrics.classification_report": (
        lambda a, p: metrics.classification_report(a, "pred"),
        {},
        False,
    ),
    # Scanpy's convention: the colours of categorical keys go to uns[f"{key}_colors"]
    "pl.spatial_compare": (
        lambda a, p: pl.spatial_compare(a, ["truth", "pred", "pred_nan"]),
        {"uns": {"truth_colors", "pred_colors"}},
        False,
    ),
    "pl.history": (lambda a, p: pl.history(a, "old_run"), {}, False),
}


def _reference(query: AnnData) -> AnnData:
    """An annotated reference slice for the query (a copy: the reference is never written)."""
    return query.copy()


# Plots rewrite the matched palettes as Scanpy's plots do (tested in test_pl.py): not writers.
WRITERS = sorted(
    name for name, (_, outputs, _) in CASES.items() if outputs and not name.startswith("pl.")
)
ATTRS = ("obs", "var", "obsm", "obsp", "layers", "uns")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def _rich():
    """Synthetic data with something in every slot a function could touch."""
    adata = sdc.datasets.synthetic(n_obs=400, n_vars=60, n_domains=3, random_state=2)
    rng = np.random.default_rng(0)
    adata.raw = adata.copy()
    adata.layers["counts"] = adata.X.copy()
    adata.layers["dense"] = rng.random(adata.shape, dtype=np.float32)
    pp.spatial_neighbors(adata)  # an input of neighbor_features, never to be replaced
    adata.obsm["user"] = rng.normal(size=(adata.n_obs, 3))
    adata.obsp["user"] = sp.random(adata.n_obs, adata.n_obs, density=0.01, format="csr")
    adata.uns["user"] = {"nested": {"array": np.arange(5), "text": "keep"}, "list": [1, 2.5]}
    adata.obs["pred"] = adata.obs["truth"].cat.rename_categories(["a", "b", "c"])
    pred_nan = adata.obs["pred"].astype(object)
    pred_nan.iloc[::9] = np.nan
    adata.obs["pred_nan"] = pred_nan
    adata.obs["score"] = rng.random(adata.n_obs)
    adata.var["user"] = rng.random(adata.n_vars)
    adata.uns["old_run"] = {
        "history": {"pretrain_loss": [3.0, 2.0, 1.5], "label_change": [0.2, 0.01]},
        "params": {"tol": 0.05},
    }
    return adata


@pytest.fixture
def adata(_rich):
    return _rich.copy()


# --------------------------------------------------------------------------- comparison


def _same_array(a, b, where: str) -> None:
    assert type(a) is type(b), f"{where}: type {type(a).__name__} -> {type(b).__name__}"
    if sp.issparse(a):
        assert a.format == b.format and a.shape == b.shape, where
        a, b = a.tocsr(), b.tocsr()
        for part in ("data", "indices", "indptr"):
            _same_array(getattr(a, part), getattr(b, part), f"{where}.{part}")
        return
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{where}: {a.dtype}{a.shape} -> {b.dtype}{b.shape}"
    )
    if a.dtype == object:
        assert all(x == y or (x != x and y != y) for x, y in zip(a.ravel(), b.ravel())), where
    else:
        assert a.tobytes() == b.tobytes(), f"{where}: values changed"


def _same_value(a, b, where: str) -> None:
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), f"{where}: keys {set(a)} -> {set(b)}"
        for key in a:
            _same_value(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray | pd.DataFrame) or sp.issparse(a):
        _same_array(a, b, where)
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), f"{where}: {a!r} -> {b!r}"


def assert_unchanged(before: AnnData, after: AnnData, outputs: Mapping[str, set] | None = None):
    """``after`` equals ``before`` except for the ``outputs`` keys (which must be present)."""
    outputs = outputs or {}
    _same_array(before.X, after.X, "X")
    assert list(before.obs_names) == list(after.obs_names)
    assert list(before.var_names) == list(after.var_names)
    assert (before.raw is None) == (after.raw is None), "raw"
    if before.raw is not None:
        _same_array(before.raw.X, after.raw.X, "raw.X")
        pd.testing.assert_frame_equal(before.raw.var, after.raw.var, obj="raw.var")
    for attr in ATTRS:
        old, new = getattr(before, attr), getattr(after, attr)
        allowed = set(outputs.get(attr, set()))
        old_keys = set(old.columns if attr in ("obs", "var") else old.keys())
        new_keys = set(new.columns if attr in ("obs", "var") else new.keys())
        assert new_keys - old_keys <= allowed, f"{attr}: unexpected new keys {new_keys - old_keys}"
        assert allowed <= new_keys, f"{attr}: outputs {allowed - new_keys} not written"
        assert old_keys <= new_keys, f"{attr}: keys {old_keys - new_keys} removed"
        for key in old_keys - allowed:
            if attr in ("obs", "var"):
                pd.testing.assert_series_equal(
                    old[key], new[key], check_exact=True, obj=f"{attr}.{key}"
                )
            else:
                _same_value(old[key], new[key], f"{attr}[{key!r}]")


def _rng_states():
    # the legacy global state is what the tools promise not to touch
    return torch.random.get_rng_state().clone(), copy.deepcopy(np.random.get_state())  # noqa: NPY002


def _same_rng(a, b) -> None:
    assert torch.equal(a[0], b[0]), "torch global RNG state changed"
    assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1])), "numpy global RNG changed"


def _overwrite_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "overwriting" in str(w.message)]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", sorted(CASES))
def test_only_documented_outputs_change(adata, name, tiny):
    call, outputs, _ = CASES[name]
    before = copy.deepcopy(adata)
    rng = _rng_states()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call(adata, tiny)
    assert not _overwrite_warnings(record), "no key existed: nothing should be overwritten"
    assert_unchanged(before, adata, outputs)
    _same_rng(rng, _rng_states())


@pytest.mark.parametrize("name", WRITERS)
def test_existing_outputs_replaced_only_with_a_warning(adata, name, tiny):
    call, outputs, _ = CASES[name]
    for attr, keys in outputs.items():
        for key in keys:
            if attr in ("obs", "var"):
                getattr(adata, attr)[key] = "old"
            elif attr == "obsm":
                adata.obsm[key] = np.zeros((adata.n_obs, 1))
            elif attr == "obsp":
                adata.obsp[key] = sp.csr_matrix((adata.n_obs, adata.n_obs))
            elif attr == "layers":
                adata.layers[key] = np.zeros(adata.shape, dtype=np.float32)
            else:
                adata.uns[key] = "old"
    before = copy.deepcopy(adata)
    with pytest.warns(UserWarning, match="overwriting existing") as record:
        call(adata, tiny)
    messages = _overwrite_warnings(record)
    for attr, keys in outputs.items():
        for key in keys:
            named = re.escape(f"adata.{attr}[{key!r}]")
            assert any(re.search(named, m) for m in messages), f"no warning names {attr}[{key!r}]"
            assert not (attr in ("obs", "var") and (getattr(adata, attr)[key] == "old").any())
    assert len(messages) == sum(len(k) for k in outputs.values())
    assert_unchanged(before, adata, outputs)


@pytest.mark.parametrize("name", sorted(n for n, (_, _, has_copy) in CASES.items() if has_copy))
def test_copy_leaves_input_wholly_unchanged(adata, name, tiny):
    call, outputs, _ = CASES[name]
    before = copy.deepcopy(adata)
    result = call(adata, tiny, copy=True)
    assert_unchanged(before, adata)
    assert isinstance(result, AnnData) and result is not adata
    assert_unchanged(before, result, outputs)


def _raiser(exc):
    def boom(*args, **kwargs):
        raise exc

    return boom


@pytest.mark.parametrize(
    ("name", "target", "exc"),
    [
        ("tl.deep_cluster", "run_dec", RuntimeError("boom in refinement")),
        ("tl.deep_cluster", "run_dec", KeyboardInterrupt()),
        ("tl.deep_cluster", "dec_refine", RuntimeError("boom in refinement")),
        ("tl.deep_cluster", "pretrain", KeyboardInterrupt()),
        ("tl.deep_cluster", "initial_clusters", RuntimeError("boom in init")),
        ("tl.ae_embed", "pretrain", RuntimeError("boom in pretraining")),
        ("tl.ae_embed", "pretrain", KeyboardInterrupt()),
        ("tl.pca_leiden", "community_labels", KeyboardInterrupt()),
    ],
)
def test_failure_during_work_leaves_anndata_as_it_was(adata, monkeypatch, tiny, name, target, exc):
    import scdeepclust.engine._dec as dc_mod
    import scdeepclust.tl._baselines as baselines_mod

    where = {
        "run_dec": dc_mod,
        "initial_clusters": dc_mod,
        "dec_refine": snn,
        "pretrain": snn,
        "community_labels": baselines_mod,
    }[target]
    monkeypatch.setattr(where, target, _raiser(exc))
    adata.obs["deep_cluster"] = "old"  # an existing output must survive a failed run too
    before = copy.deepcopy(adata)
    rng = _rng_states()
    with pytest.raises(type(exc)):
        CASES[name][0](adata, tiny)
    assert_unchanged(before, adata)
    _same_rng(rng, _rng_states())


def test_nonfinite_loss_leaves_anndata_as_it_was(adata, tiny):
    before = copy.deepcopy(adata)
    with pytest.raises(snn.NonFiniteLossError):
        tl.deep_cluster(adata, 3, **tiny.merge(tiny.dc, train={"lr": 1e10}))
    assert_unchanged(before, adata)


def test_metrics_and_plots_do_not_touch_categories(adata):
    """Reading labels must not reorder or drop categories (a common pandas side effect)."""
    cats = list(adata.obs["truth"].cat.categories)
    adata.obs["truth"] = adata.obs["truth"].cat.add_categories(["unused"])
    metrics.score(adata, "pred")
    pl.spatial_compare(adata, ["truth", "pred"])
    assert list(adata.obs["truth"].cat.categories) == [*cats, "unused"]


@pytest.mark.parametrize("name", WRITERS)
def test_outputs_write_to_h5ad(adata, name, tiny, tmp_path):
    """What a tool writes (uns records included) can be saved with anndata.write_h5ad."""
    call, outputs, _ = CASES[name]
    del adata.uns["user"]  # nested user data is the user's business
    call(adata, tiny)
    adata.write_h5ad(tmp_path / "out.h5ad")
    back = anndata.read_h5ad(tmp_path / "out.h5ad")
    for attr, keys in outputs.items():
        present = (
            back.obs.columns
            if attr == "obs"
            else back.var.columns
            if attr == "var"
            else getattr(back, attr)
        )
        assert set(keys) <= set(present), (attr, keys)
