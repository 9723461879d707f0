"""Reliability: hostile and odd inputs to the reader and the AnnData-facing functions.

Crafted HDF5 files (external raw storage, external/soft links, virtual datasets, huge
declared shapes, FIFOs, non-UTF-8 names, extreme values and coordinates) are built here in
``tmp_path``. Cases that hang or exhaust memory when the protection is missing run in a
subprocess with a timeout, so that a regression fails the test instead of the suite.
Cases 1-9 and 13 of issue 13; the command line's cases are in test_reliability_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scdeepclust as sdc
from scdeepclust import pp, tl
from scdeepclust._uns import h5ad_writable
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.io import MAX_BYTES_ENV, SpcaFormatError, read_spca

ROOT = Path(__file__).resolve().parents[1]
N_OBS, N_VARS = 60, 12
TINY = {
    "features": {"n_top_genes": 10, "n_pcs": 5, "n_comps": 4},
    "model": {"n_latent": 3, "hidden": (8,), "n_members": 1},
    "train": {"epochs": 3},
    "verbose": False,
    "device": "cpu",
}


def _counts(n_obs: int = N_OBS, n_vars: int = N_VARS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(3.0, (n_obs, n_vars)).astype(np.float64)


def _pos(n_obs: int = N_OBS) -> np.ndarray:
    return np.stack([np.arange(n_obs) % 10, np.arange(n_obs) // 10]).astype(np.float64) * 3.0


def _spca(path: Path, **keys) -> Path:
    """A valid small spca file; ``keys`` replace or add datasets (None removes one)."""
    data = {"X": _counts(), "pos": _pos()}
    data.update(keys)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if value is not None:
                f[key] = value
    return path


def _run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this checkout importable; a hang fails."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the subprocess hung for more than {timeout} s")


# ----------------------------------------------------------------------------- 1, 2: other files


def test_1_external_raw_storage_is_refused(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_bytes(np.arange(N_OBS * N_VARS, dtype=np.float64).tobytes())
    path = tmp_path / "evil.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "X", shape=(N_OBS, N_VARS), dtype="f8", external=[(str(secret), 0, h5py.h5f.UNLIMITED)]
        )
        f["pos"] = _pos()
    with pytest.raises(SpcaFormatError, match="external raw storage") as info:
        read_spca(path)
    assert info.value.key == "X" and str(path) in str(info.value) and "id_rsa" in str(info.value)


@pytest.mark.parametrize("key", ["X", "pos", "barcodes"])
def test_2_external_link_is_refused_without_opening_the_target(tmp_path, key):
    target = tmp_path / "fifo.h5"
    os.mkfifo(target)  # opening it would block forever
    path = _spca(tmp_path / "evil.h5", **{key: None})
    with h5py.File(path, "a") as f:
        f[key] = h5py.ExternalLink(str(target), "/X")
    result = _run_python(
        f"""
        from scdeepclust.io import read_spca, SpcaFormatError
        try:
            read_spca({str(path)!r})
        except SpcaFormatError as err:
            print("refused:", err.key, err)
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"refused: {key} " in result.stdout and "external link" in result.stdout


def test_2_soft_link_to_an_external_link_is_refused(tmp_path):
    path = _spca(tmp_path / "evil.h5", X=None)
    with h5py.File(path, "a") as f:
        f["hidden"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/X")
        f["X"] = h5py.SoftLink("/hidden")
    with pytest.raises(SpcaFormatError, match="external link"):
        read_spca(path)


def test_2_soft_link_inside_the_file_is_followed(tmp_path):
    path = _spca(tmp_path / "ok.h5", X=None, counts=_counts())
    with h5py.File(path, "a") as f:
        f["X"] = h5py.SoftLink("/counts")
    assert read_spca(path).shape == (N_OBS, N_VARS)


def test_2_virtual_dataset_is_refused(tmp_path):
    path = _spca(tmp_path / "evil.h5", X=None)
    layout = h5py.VirtualLayout(shape=(N_OBS, N_VARS), dtype="f8")
    layout[:] = h5py.VirtualSource(str(tmp_path / "missing.h5"), "X", shape=(N_OBS, N_VARS))
    with h5py.File(path, "a") as f:
        f.create_virtual_dataset("X", layout, fillvalue=0)
    with pytest.raises(SpcaFormatError, match="virtual dataset") as info:
        read_spca(path)
    assert info.value.key == "X"


# ----------------------------------------------------------------------------- 3: size limit


def test_3_huge_declared_shape_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:  # 224 GiB declared, a few KB on disk
        f.create_dataset("X", shape=(250_000, 120_000), dtype="f8", chunks=(1000, 1000))
        f["pos"] = np.zeros((2, 10))  # X is refused before pos is looked at
    assert path.stat().st_size < 100_000
    result = _run_python(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
        from scdeepclust.io import read_spca, SpcaFormatError
        try:
            read_spca({str(path)!r})
        except SpcaFormatError as err:
            print("refused:", err)
        """
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "refused:" in out and "'X'" in out and "223.5 GiB" in out
    assert "max_bytes=" in out and MAX_BYTES_ENV in out and "damaged" not in out


def test_3_size_limit_can_be_raised(tmp_path, monkeypatch):
    path = _spca(tmp_path / "small.h5")
    with pytest.raises(SpcaFormatError, match="max_bytes="):
        read_spca(path, max_bytes=1000)
    assert read_spca(path, max_bytes=10**6).shape == (N_OBS, N_VARS)
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(SpcaFormatError, match="size limit"):
        read_spca(path)
    monkeypatch.setenv(MAX_BYTES_ENV, "1e6")
    assert read_spca(path).shape == (N_OBS, N_VARS)


# ----------------------------------------------------------------------------- 4: FIFO input


def test_4_fifo_input_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "sample.h5"
    os.mkfifo(fifo)
    result = _run_python(
        f"""
        from scdeepclust.io import read_spca, SpcaFormatError
        try:
            read_spca({str(fifo)!r})
        except SpcaFormatError as err:
            print("refused:", err)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "FIFO" in result.stdout


# ----------------------------------------------------------------------------- 5: float32 range


def test_5_reader_reports_values_beyond_float32_not_nan(tmp_path):
    X = _counts()
    X[3, 4] = 1e300
    with pytest.raises(SpcaFormatError, match="float32's range") as info:
        read_spca(_spca(tmp_path / "big.h5", X=X))
    assert "NaN" not in str(info.value) and "1e+300" in str(info.value)


def test_5_reader_still_reports_real_nan(tmp_path):
    X = _counts()
    X[0, 0] = np.nan
    with pytest.raises(SpcaFormatError, match="1 NaN or inf"):
        read_spca(_spca(tmp_path / "nan.h5", X=X))


@pytest.mark.parametrize(
    "func",
    [
        lambda a: pp.normalize(a, n_top_genes=10),
        lambda a: tl.pca_kmeans(a, 3, n_comps=4, n_top_genes=10),
        lambda a: tl.deep_cluster(a, 3, **TINY),
    ],
    ids=["normalize", "pca_kmeans", "deep_cluster"],
)
def test_5_anndata_values_beyond_float32_are_named(func):
    adata = ad.AnnData(_counts())
    adata.X[5, 2] = 1e39
    adata.obsm["spatial"] = _pos().T
    with pytest.raises(ScdeepclustInputError, match="beyond float32's range") as info:
        func(adata)
    assert "NaN" not in str(info.value) and "no gene varies" not in str(info.value)


def test_5_large_float32_rows_normalise_without_overflow():
    X = np.full((4, 3), 2e38, dtype=np.float32)
    X[0] = [1, 2, 3]
    out = pp.log_normalize(X)
    assert np.isfinite(out).all() and out.dtype == np.float32


# ----------------------------------------------------------------------------- 6: names


def test_6_latin1_names_are_decoded_not_collapsed(tmp_path):
    barcodes = np.array([f"spot_{i}_caf\xe9".encode("latin-1") for i in range(N_OBS)])
    genes = np.array([f"g{j}\xe9".encode("latin-1") for j in range(N_VARS)])
    path = _spca(tmp_path / "latin1.h5", barcodes=barcodes, genes=genes)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        adata = read_spca(path)
    assert not [w for w in record if "duplicate" in str(w.message)]
    assert adata.obs_names[1] == "spot_1_caf\xe9"
    assert list(adata.var_names[:2]) == ["g0\xe9", "g1\xe9"]


def test_6_utf8_names_and_mixed_encodings_stay_distinct(tmp_path):
    utf8 = np.array([f"g{j}\u00e9".encode() for j in range(N_VARS)])
    assert read_spca(_spca(tmp_path / "utf8.h5", genes=utf8)).var_names[0] == "g0\u00e9"
    # the UTF-8 and the Latin-1 encodings of the same name are two different byte strings
    mixed = np.array([b"\xc3\xa9", b"\xe9"] + [f"b{i}".encode() for i in range(N_OBS - 2)])
    adata = read_spca(_spca(tmp_path / "mixed.h5", barcodes=mixed))
    assert adata.obs_names.is_unique and adata.obs_names[0] != adata.obs_names[1]


# ----------------------------------------------------------------------------- 7: backed


@pytest.fixture
def backed_files(tmp_path):
    adata = ad.AnnData(_counts())
    adata.obsm["spatial"] = _pos().T
    adata.write_h5ad(tmp_path / "dense.h5ad")
    adata.X = sp.csr_matrix(adata.X)
    adata.write_h5ad(tmp_path / "sparse.h5ad")
    return tmp_path


@pytest.mark.parametrize(
    "func",
    [
        lambda a: pp.normalize(a, n_top_genes=10),
        lambda a: pp.minmax_scale(a),
        lambda a: tl.pca_kmeans(a, 3, n_comps=4, n_top_genes=10),
        lambda a: tl.deep_cluster(a, 3, **{**TINY, "model": {**TINY["model"], "kind": "zinb"}}),
    ],
    ids=["normalize", "minmax_scale", "pca_kmeans", "deep_cluster_zinb"],
)
def test_7_backed_sparse_anndata_gets_a_clear_error(backed_files, func):
    adata = ad.read_h5ad(backed_files / "sparse.h5ad", backed="r")
    with pytest.raises(ScdeepclustInputError, match=r"to_memory\(\)") as info:
        func(adata)
    assert "backed" in str(info.value) and "dtype object" not in str(info.value)
    adata.file.close()


def test_7_backed_sparse_anndata_streams_in_deep_cluster(backed_files):
    adata = ad.read_h5ad(backed_files / "sparse.h5ad", backed="r")
    # read in row blocks (issue 15), with the log-normalised and the default features
    tl.deep_cluster(adata, 3, **{**TINY, "features": {**TINY["features"], "normalization": "log"}})
    tl.deep_cluster(adata, 3, **TINY, key_added="default_features")
    for key in ("deep_cluster", "default_features"):
        labels = adata.obs[key]
        assert labels.notna().all() and labels.nunique() >= 2  # 60 spots: a merge is reported
    adata.file.close()


def test_7_backed_dense_anndata_still_works(backed_files):
    adata = ad.read_h5ad(backed_files / "dense.h5ad", backed="r")
    tl.pca_kmeans(adata, 3, n_comps=4, n_top_genes=10)
    assert adata.obs["pca_kmeans"].nunique() == 3
    adata.file.close()


# ----------------------------------------------------------------------------- 8: missing keys


@pytest.fixture
def two_samples():
    adata = sdc.datasets.synthetic(n_obs=120, n_vars=30, n_domains=3)
    sample = np.where(np.arange(adata.n_obs) < 60, "a", "b").astype(object)
    sample[[3, 70]] = None
    sample[5] = np.nan
    adata.obs["sample"] = sample
    return adata


@pytest.mark.parametrize(
    "func",
    [
        lambda a: pp.spatial_neighbors(a, library_key="sample"),
        lambda a: pp.normalize(a, n_top_genes=10, batch_key="sample"),
        lambda a: pp.neighbor_features(
            pp.spatial_neighbors(a, copy=True), n_comps=4, n_top_genes=10, batch_key="sample"
        ),
        lambda a: tl.deep_cluster(a, 3, batch_key="sample", **TINY),
    ],
    ids=["spatial_neighbors", "normalize", "neighbor_features", "deep_cluster"],
)
def test_8_missing_sample_labels_are_an_error(two_samples, func):
    with pytest.raises(ScdeepclustInputError, match="3 of 120 spots") as info:
        func(two_samples)
    assert "'sample'" in str(info.value)


@pytest.mark.parametrize(
    "func",
    [
        lambda a, groups: pp.knn_graph(a.obsm["spatial"], groups=groups),
        lambda a, groups: pp.standardize(a.X, groups),
    ],
    ids=["knn_graph", "standardize"],
)
def test_8_missing_sample_labels_in_the_array_functions(two_samples, func):
    with pytest.raises(ScdeepclustInputError, match="3 of 120 spots"):
        func(two_samples, two_samples.obs["sample"].to_numpy())


# ----------------------------------------------------------------------------- 9: coordinates


def test_9_reader_refuses_coordinates_too_large_for_distances(tmp_path):
    pos = _pos()
    pos[0, 1] = -1e306
    with pytest.raises(SpcaFormatError, match="magnitude") as info:
        read_spca(_spca(tmp_path / "far.h5", pos=pos))
    assert info.value.key == "pos"


@pytest.mark.parametrize(
    "func",
    [
        lambda a: pp.spatial_neighbors(a),
        lambda a: tl.deep_cluster(a, 3, **TINY),
        lambda a: sdc.pl.spatial_compare(a, ["truth"]),
    ],
    ids=["spatial_neighbors", "deep_cluster", "spatial_compare"],
)
def test_9_huge_coordinates_are_refused(func):
    adata = sdc.datasets.synthetic(n_obs=100, n_vars=30, n_domains=3)
    adata.obsm["spatial"] = adata.obsm["spatial"] * 1e305
    with pytest.raises(ScdeepclustInputError, match="magnitude"):
        func(adata)


def test_9_third_coordinate_column_is_reported(tmp_path):
    adata = sdc.datasets.synthetic(n_obs=100, n_vars=30, n_domains=3)
    z = np.arange(adata.n_obs, dtype=float)[:, None]
    adata.obsm["spatial"] = np.hstack([adata.obsm["spatial"], z])
    with pytest.warns(UserWarning, match="only the first two"):
        pp.spatial_neighbors(adata)
    path = _spca(tmp_path / "xyz.h5", pos=np.vstack([_pos(), np.ones(N_OBS)]))
    with pytest.raises(SpcaFormatError, match="3 coordinates per spot"):
        read_spca(path)


# ----------------------------------------------------------------------------- 13: uns


def test_13_uns_after_a_forced_collapse_is_writable(tmp_path, rewrite_refined_labels):
    rewrite_refined_labels(torch.zeros_like)
    adata = sdc.datasets.synthetic(n_obs=150, n_vars=30, n_domains=3)
    with pytest.warns(UserWarning, match="collapsed"):
        tl.deep_cluster(adata, 3, refine={"epochs": 2}, **TINY)
    adata.write_h5ad(tmp_path / "collapsed.h5ad")  # plain anndata, no sanitising writer
    back = ad.read_h5ad(tmp_path / "collapsed.h5ad")
    events = back.uns["deep_cluster"]["collapse"]["events"]
    assert [events[k]["action"] for k in sorted(events)] == [
        "re-initialised refinement",
        "kept the initial clustering",
    ]
    assert bool(back.uns["deep_cluster"]["collapse"]["detected"]) is True


def test_13_h5ad_writable_rules(tmp_path):
    value = {
        "records": [{"a": 1}, {"b": ("x", "y")}],
        "tuple": (1, 2),
        "mixed": [1, "a", None],
        "none": None,
        3: "int key",
    }
    out = h5ad_writable(value)
    assert list(out["records"]) == ["0", "1"] and out["records"]["0"] == {"a": 1}
    assert out["records"]["1"]["b"].tolist() == ["x", "y"]  # arrays, as read back
    assert out["tuple"].tolist() == [1, 2] and out["3"] == "int key"
    assert out["mixed"] == '[1, "a", null]'  # JSON: types survive (json.loads)
    assert value["tuple"] == (1, 2)  # not modified
    adata = ad.AnnData(np.zeros((2, 2)))
    adata.uns["rec"] = out
    adata.write_h5ad(tmp_path / "u.h5ad")
    twelve = h5ad_writable([{"i": i} for i in range(12)])
    assert list(twelve) == [f"{i:02d}" for i in range(12)]
