"""Tests for scdeepclust.io: the real samples in ../shared/data and malformed files."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

from scdeepclust.io import SpcaFormatError, read_spca, read_spca_dir

DATA = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()
DLPFC = DATA / "dlpfc"
OSMFISH = DATA / "osmfish" / "osmFISH_cortex.h5"

LAYERS = {f"Layer{i}" for i in range(1, 7)} | {"WM"}
# sample: (spots, genes, labels, converted from Visium array indices, has names)
DLPFC_TABLE = {
    "151507": (4226, 1159, LAYERS, True, False),
    "151508": (4384, 1140, LAYERS, True, False),
    "151669": (3661, 1375, {"Layer3", "Layer4", "Layer5", "Layer6", "WM"}, True, False),
    "151673": (3639, 5000, LAYERS, False, True),
    "151674": (3673, 5000, LAYERS, False, True),
}


def _need_data(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


@pytest.fixture(scope="module", params=sorted(DLPFC_TABLE))
def dlpfc(request):
    sample = request.param
    return sample, read_spca(_need_data(DLPFC / f"sample_{sample}.h5"))


@pytest.fixture(scope="module")
def osmfish():
    return read_spca(_need_data(OSMFISH))


# --------------------------------------------------------------------------- real data


def test_dlpfc_sample(dlpfc):
    sample, adata = dlpfc
    n_obs, n_vars, labels, converted, named = DLPFC_TABLE[sample]
    assert adata.shape == (n_obs, n_vars)
    assert adata.X.dtype == np.float32
    assert sp.isspmatrix_csr(adata.X)  # > 50% zeros in every DLPFC slice
    truth = adata.obs["truth"]
    assert isinstance(truth.dtype, pd.CategoricalDtype)
    assert set(truth.cat.categories) == labels
    assert "NA" not in truth.cat.categories
    assert truth.isna().any()  # NA spots are kept, as missing values
    assert adata.obsm["spatial"].shape == (n_obs, 2)
    assert adata.obsm["spatial"].dtype == np.float64
    rec = adata.uns["spca"]
    assert rec["sample"] == sample
    assert rec["coordinate_key"] == "pos" and rec["label_key"] == "Y"
    assert rec["path"] == f"sample_{sample}.h5"  # the file name only, no directories
    xy = adata.obsm["spatial"]
    if converted:
        assert rec["coordinates"] == "visium_array_to_um"
        assert xy[:, 0].min() >= 0 and 6000 <= xy[:, 0].max() <= 6350
        assert xy[:, 1].min() >= 0 and xy[:, 1].max() <= 77 * 50 * np.sqrt(3) + 1e-6
        # on the physical grid the 6 hexagonal neighbours are equidistant (pitch 100 um)
        counts = cKDTree(xy).query_ball_point(xy, r=100.0 + 1e-6, return_length=True) - 1
        assert counts.max() == 6 and np.median(counts) == 6
    else:
        assert rec["coordinates"] == "as_stored"
        assert xy.min() >= 0 and xy.max() < 1000
    if named:
        assert adata.var_names[0].startswith("ENSG")
        assert adata.obs_names[0].endswith("-1")
    else:
        assert adata.var_names[0] == "gene_0"
        assert adata.obs_names[0] == f"{sample}_0"
    assert adata.obs_names.is_unique and adata.var_names.is_unique


def test_visium_array_false_keeps_raw_indices():
    adata = read_spca(_need_data(DLPFC / "sample_151507.h5"), visium_array=False)
    xy = adata.obsm["spatial"]
    assert adata.uns["spca"]["coordinates"] == "as_stored"
    assert xy[:, 0].max() == 77 and xy[:, 1].max() == 127
    assert np.all((xy[:, 0] + xy[:, 1]) % 2 == 0)


def test_osmfish(osmfish):
    adata = osmfish
    assert adata.shape == (4839, 33)
    assert isinstance(adata.X, np.ndarray) and adata.X.dtype == np.float32  # ~31% zeros
    assert len(adata.obs["truth"].cat.categories) == 11
    assert adata.obs["truth"].notna().all()
    assert "Layer 6" in adata.obs["truth"].cat.categories
    assert adata.obsm["spatial"].shape == (4839, 2)
    assert {"Gad2", "Slc32a1"} <= set(adata.var_names)
    assert adata.uns["spca"]["sample"] == "osmFISH_cortex"
    assert adata.uns["spca"]["coordinate_key"] == "Pos"
    assert adata.uns["spca"]["label_key"] == "Region"


def test_file_is_opened_read_only(tmp_path, monkeypatch):
    src = tmp_path / "osm.h5"
    src.write_bytes(_need_data(OSMFISH).read_bytes())
    os.utime(src, ns=(10**18, 10**18))  # an old mtime, so any write would show
    before = (hashlib.sha256(src.read_bytes()).hexdigest(), src.stat().st_mtime_ns)
    modes = []
    real_file = h5py.File

    def spy(name, mode="r", *args, **kwargs):
        modes.append(mode)
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    read_spca(src)
    assert modes == ["r"]
    after = (hashlib.sha256(src.read_bytes()).hexdigest(), src.stat().st_mtime_ns)
    assert after == before


def test_read_spca_dir_named_dlpfc():
    paths = [_need_data(DLPFC / f"sample_{s}.h5") for s in ("151673", "151674")]
    adata = read_spca_dir(paths)
    assert list(adata.obs["sample"].cat.categories) == ["151673", "151674"]
    assert adata.n_obs == 3639 + 3673
    assert adata.n_vars == 2340
    assert adata.obsm["spatial"].shape == (adata.n_obs, 2)
    assert set(adata.obs["truth"].cat.categories) == LAYERS
    assert adata.obs_names.is_unique
    assert adata.obs_names[0].startswith("151673_")
    assert list(adata.uns["spca"]["samples"]) == ["151673", "151674"]


def test_read_spca_dir_unnamed_panels_differ():
    paths = [_need_data(DLPFC / f"sample_{s}.h5") for s in ("151507", "151508")]
    with pytest.raises(SpcaFormatError, match="gene names") as err:
        read_spca_dir(paths)
    assert "sample_151507.h5" in str(err.value) and "sample_151508.h5" in str(err.value)


# --------------------------------------------------------------------------- synthetic files


def _write(path: Path, **datasets) -> Path:
    """An spca file: a valid 5 spots x 4 genes sample, overridden by ``datasets`` (None drops)."""
    rng = np.random.default_rng(0)
    content = {
        "X": rng.poisson(2.0, size=(5, 4)).astype(np.float64),
        "Y": np.array([b"A", b"B", b"NA", b"A", b"B"]),
        "pos": rng.uniform(0, 100, size=(2, 5)),
    }
    content.update(datasets)
    with h5py.File(path, "w") as h5:
        for key, value in content.items():
            if value is not None:
                h5.create_dataset(key, data=value)
    return path


def _raises(path: Path, key: str, what: str = ""):
    pattern = f"{re.escape(str(path.resolve()))}: key {re.escape(repr(key))}.*{what}"
    return pytest.raises(SpcaFormatError, match=pattern)


def test_small_valid_file(tmp_path):
    f = _write(
        tmp_path / "sample_toy.h5",
        genes=np.array([b"g1", b"g2", b"g3", b"g4"]),
        barcodes=np.array([b"a", b"b", b"c", b"d", b"e"]),
    )
    adata = read_spca(f)
    assert adata.shape == (5, 4)
    assert list(adata.var_names) == ["g1", "g2", "g3", "g4"]
    assert list(adata.obs_names) == list("abcde")
    assert list(adata.obs["truth"].cat.categories) == ["A", "B"]
    assert adata.obs["truth"].isna().sum() == 1
    assert adata.uns["spca"]["sample"] == "toy"
    assert read_spca(f, sample="mine").uns["spca"]["sample"] == "mine"


def test_no_labels_no_truth(tmp_path):
    adata = read_spca(_write(tmp_path / "s.h5", Y=None))
    assert "truth" not in adata.obs
    assert adata.uns["spca"]["label_key"] is None


@pytest.mark.parametrize(
    ("y", "expected", "n_missing"),
    [
        (np.array([3.0, 12.0, np.nan, 3.0, 2.0]), ["2", "3", "12"], 1),
        (np.array([1, 2, 2, 1, 10]), ["1", "2", "10"], 0),
        (np.array(["a", "", "nan", "NaN", "NA"], dtype=object), ["a"], 4),
    ],
)
def test_label_types(tmp_path, y, expected, n_missing):
    if y.dtype == object:
        y = y.astype(h5py.string_dtype())
    adata = read_spca(_write(tmp_path / "s.h5", Y=y))
    assert list(adata.obs["truth"].cat.categories) == expected
    assert adata.obs["truth"].isna().sum() == n_missing


@pytest.mark.parametrize("key", ["pos", "Pos"])
@pytest.mark.parametrize("transpose", [False, True])
def test_coordinate_orientation(tmp_path, key, transpose):
    xy = np.arange(10, dtype=np.float64).reshape(5, 2) * 1.5
    coords = {"pos": None, key: xy.T if transpose else xy}
    adata = read_spca(_write(tmp_path / "s.h5", **coords))
    np.testing.assert_array_equal(adata.obsm["spatial"], xy)
    assert adata.uns["spca"]["coordinate_key"] == key


def test_dense_when_few_zeros(tmp_path):
    adata = read_spca(_write(tmp_path / "s.h5", X=np.ones((5, 4), dtype=np.int32)))
    assert isinstance(adata.X, np.ndarray) and adata.X.dtype == np.float32


def test_duplicate_genes_warn(tmp_path):
    f = _write(tmp_path / "s.h5", genes=np.array([b"g", b"g", b"h", b"i"]))
    with pytest.warns(UserWarning, match="duplicate gene names"):
        adata = read_spca(f)
    assert adata.var_names.is_unique


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_spca(tmp_path / "nope.h5")


def test_missing_x(tmp_path):
    f = _write(tmp_path / "s.h5", X=None)
    with _raises(f, "X", "no such key"):
        read_spca(f)


def test_missing_pos(tmp_path):
    f = _write(tmp_path / "s.h5", pos=None)
    with _raises(f, "pos", "neither key"):
        read_spca(f)


def test_label_length_mismatch(tmp_path):
    f = _write(tmp_path / "s.h5", Y=np.array([b"A", b"B", b"A", b"B"]))
    with _raises(f, "Y", r"5 labels.*shape \(4,\)"):
        read_spca(f)


def test_coordinate_length_mismatch(tmp_path):
    f = _write(tmp_path / "s.h5", pos=np.zeros((2, 4)))
    with _raises(f, "pos", r"shape \(2, 4\)"):
        read_spca(f)


@pytest.mark.parametrize(
    ("value", "what"), [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (-1.0, "negative")]
)
def test_bad_counts(tmp_path, value, what):
    X = np.ones((5, 4))
    X[2, 3] = value
    f = _write(tmp_path / "s.h5", X=X)
    with _raises(f, "X", what):
        read_spca(f)


def test_string_counts(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.full((5, 4), b"1"))
    with _raises(f, "X", "numeric"):
        read_spca(f)


def test_x_not_2d(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.ones(5))
    with _raises(f, "X", "2-D"):
        read_spca(f)


def test_zero_spots(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.zeros((0, 4)), Y=None, pos=np.zeros((2, 0)))
    with _raises(f, "X", "zero spots"):
        read_spca(f)


def test_zero_genes(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.zeros((5, 0)))
    with _raises(f, "X", "zero spots or genes"):
        read_spca(f)


def test_duplicate_barcodes(tmp_path):
    f = _write(tmp_path / "s.h5", barcodes=np.array([b"a", b"b", b"a", b"c", b"d"]))
    with _raises(f, "barcodes", "unique"):
        read_spca(f)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (5,), (2, 5, 1)])
def test_coordinates_not_2d(tmp_path, shape):
    f = _write(tmp_path / "s.h5", pos=np.zeros(shape))
    with _raises(f, "pos", "2 x 5 or 5 x 2"):
        read_spca(f)


def test_coordinates_ambiguous_2x2(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.ones((2, 4)), Y=None, pos=np.zeros((2, 2)))
    with _raises(f, "pos", "ambiguous"):
        read_spca(f)


def test_coordinates_nan(tmp_path):
    pos = np.zeros((2, 5))
    pos[1, 1] = np.nan
    f = _write(tmp_path / "s.h5", pos=pos)
    with _raises(f, "pos", "NaN"):
        read_spca(f)


def test_visium_true_requires_array_indices(tmp_path):
    f = _write(tmp_path / "s.h5", pos=np.full((2, 5), 0.5))
    with _raises(f, "pos", "Visium"):
        read_spca(f, visium_array=True)


def test_not_hdf5(tmp_path):
    f = tmp_path / "notes.h5"
    f.write_text("this is not an HDF5 file\n")
    with _raises(f, "/", "HDF5"):
        read_spca(f)


def test_truncated_hdf5(tmp_path):
    f = _write(tmp_path / "s.h5", X=np.ones((200, 50)))
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with _raises(f, "/", "HDF5"):
        read_spca(f)


# --------------------------------------------------------------------------- read_spca_dir


def _named(path: Path, genes: list[str], n: int = 5) -> Path:
    rng = np.random.default_rng(len(genes))
    return _write(
        path,
        X=rng.poisson(1.0, size=(n, len(genes))).astype(np.float64),
        Y=np.array([b"A", b"B"] * (n // 2) + [b"C"] * (n % 2)),
        pos=rng.uniform(0, 10, size=(2, n)),
        genes=np.array([g.encode() for g in genes]),
        barcodes=np.array([f"bc{i}".encode() for i in range(n)]),
    )


def test_read_spca_dir_directory(tmp_path):
    _named(tmp_path / "sample_b.h5", ["g1", "g2", "g3"])
    _named(tmp_path / "sample_a.h5", ["g2", "g3", "g4", "g5"])
    (tmp_path / "notes.txt").write_text("ignored")
    adata = read_spca_dir(tmp_path)
    assert list(adata.obs["sample"].cat.categories) == ["a", "b"]
    assert sorted(adata.var_names) == ["g2", "g3"]
    assert adata.obs_names[0] == "a_bc0" and adata.obs_names.is_unique
    assert set(adata.obs["truth"].cat.categories) == {"A", "B", "C"}
    outer = read_spca_dir(tmp_path, join="outer")
    assert outer.n_vars == 5
    dense = outer.X.toarray() if sp.issparse(outer.X) else outer.X
    assert np.isfinite(dense).all()


def test_read_spca_dir_no_shared_genes(tmp_path):
    a = _named(tmp_path / "a.h5", ["g1", "g2"])
    b = _named(tmp_path / "b.h5", ["g3", "g4"])
    with pytest.raises(SpcaFormatError, match="0 shared gene names") as err:
        read_spca_dir([a, b])
    assert "a.h5" in str(err.value) and "b.h5" in str(err.value)


def test_read_spca_dir_unnamed_same_size(tmp_path):
    a = _write(tmp_path / "a.h5")
    b = _write(tmp_path / "b.h5")
    with pytest.warns(UserWarning, match="aligned by position"):
        adata = read_spca_dir([a, b])
    assert adata.shape == (10, 4)
    assert adata.obs_names.is_unique
