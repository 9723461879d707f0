"""Reliability: property-based tests of the reader and the metrics (hypothesis).

Reader: random shapes, count dtypes (int8..int64, uint, float16..float64), label encodings
(bytes, str, int, float with NaN), coordinate orientation and key, corrupted bytes and
truncated files. Every file either reads correctly (shapes and values checked) or raises
:class:`SpcaFormatError`: never another exception and never a hang (pytest-timeout).

Metrics: ``score`` equals scikit-learn's ARI/NMI on random labellings (also with missing
labels), ``clustering_accuracy`` lies in [0, 1] and is 1 for permuted labels.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from scdeepclust import metrics
from scdeepclust.io import SpcaFormatError, read_spca

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="sdc_props_") as d:
        yield Path(d)


def _write(path: Path, datasets: dict) -> Path:
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            h5.create_dataset(key, data=value)
    return path


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _read_or_format_error(path: Path, **kwargs) -> AnnData | None:
    """``read_spca``; None on SpcaFormatError, which is the only exception allowed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_spca(path, **kwargs)
    except SpcaFormatError as err:
        assert str(path.resolve()) in str(err)  # the message names the file
        return None


def _consistent(adata: AnnData) -> None:
    """What any successfully read file satisfies, whatever its content."""
    X = _dense(adata.X)
    assert X.dtype == np.float32 and X.ndim == 2 and X.shape[0] >= 1 and X.shape[1] >= 1
    assert np.isfinite(X).all() and (X >= 0).all()
    coords = adata.obsm["spatial"]
    assert coords.shape == (adata.n_obs, 2) and np.isfinite(coords).all()
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    if "truth" in adata.obs:
        assert len(adata.obs["truth"]) == adata.n_obs


# --------------------------------------------------------------------------- reader


@st.composite
def spca_files(draw):
    """Contents of an spca file and what reading it should give (None: a format error)."""
    n = draw(st.integers(1, 12))
    g = draw(st.integers(1, 6))
    dtype = np.dtype(draw(st.sampled_from(INT_DTYPES + FLOAT_DTYPES)))
    X = np.array(
        draw(st.lists(st.integers(0, 100), min_size=n * g, max_size=n * g)), dtype=dtype
    ).reshape(n, g)
    bad = draw(st.sampled_from([None] * 6 + ["negative", "nan", "inf"]))
    if bad == "negative" and dtype.kind in "if":
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, g - 1))] = -3
    elif bad in ("nan", "inf") and dtype.kind == "f":
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, g - 1))] = getattr(np, bad)
    else:
        bad = None
    content = {"X": X}

    coords = np.array(
        draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=2 * n, max_size=2 * n)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
    ).reshape(n, 2)
    transposed = draw(st.booleans())
    content[draw(st.sampled_from(["pos", "Pos"]))] = coords.T if transposed else coords

    encoding = draw(st.sampled_from(["none", "bytes", "str", "int", "float", "column"]))
    names = draw(
        st.lists(st.sampled_from(["A", "B", "Layer2", "Layer10", "NA", ""]), min_size=n, max_size=n)
    )
    expected_labels = None
    if encoding in ("bytes", "str"):
        values = np.array(names, dtype=object)
        content["Y"] = (
            np.array([v.encode() for v in names])
            if encoding == "bytes"
            else values.astype(h5py.string_dtype())
        )
        expected_labels = [None if v in ("NA", "") else v for v in names]
    elif encoding in ("int", "column"):
        ints = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
        content["Y"] = ints[:, None] if encoding == "column" else ints
        expected_labels = [str(v) for v in ints]
    elif encoding == "float":
        floats = np.array(
            draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, np.nan]), min_size=n, max_size=n))
        )
        content["Y"] = floats
        expected_labels = [None if np.isnan(v) else f"{v:g}" for v in floats]
    if draw(st.booleans()):
        content["genes"] = np.array([f"g{j}".encode() for j in range(g)])

    ok = bad is None and n != 2  # two spots: a 2 x 2 pos has no telling orientation
    return content, (
        X.astype(np.float32),
        coords.astype(np.float64),
        expected_labels,
    ) if ok else None


@SETTINGS
@given(case=spca_files())
def test_reader_random_files(workdir, case):
    content, expected = case
    path = _write(workdir / "sample_prop.h5", content)
    adata = _read_or_format_error(path, visium_array=False)
    if expected is None:
        assert adata is None, "a malformed file was read without error"
        return
    assert adata is not None, "a well-formed file was rejected"
    X, coords, labels = expected
    _consistent(adata)
    assert adata.shape == X.shape
    np.testing.assert_array_equal(_dense(adata.X), X)
    np.testing.assert_array_equal(adata.obsm["spatial"], coords)
    if labels is None:
        assert "truth" not in adata.obs
    else:
        got = [None if pd.isna(v) else v for v in adata.obs["truth"].astype(object)]
        assert got == labels
        assert set(adata.obs["truth"].cat.categories) == {v for v in labels if v is not None}
    if "genes" in content:
        assert list(adata.var_names) == [f"g{j}" for j in range(X.shape[1])]


@pytest.fixture(scope="module")
def valid_bytes(workdir) -> bytes:
    rng = np.random.default_rng(0)
    path = _write(
        workdir / "valid.h5",
        {
            "X": rng.poisson(2.0, size=(30, 12)).astype(np.int32),
            "Y": np.array([b"A", b"B", b"NA"] * 10),
            "pos": rng.uniform(0, 100, size=(2, 30)),
            "genes": np.array([f"g{i}".encode() for i in range(12)]),
            "barcodes": np.array([f"bc{i}".encode() for i in range(30)]),
        },
    )
    return path.read_bytes()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["flips", "burst"]))
def test_reader_corrupted_bytes(workdir, valid_bytes, seed, mode):
    """Each example corrupts the file 10 ways (random bytes past the superblock, where the
    object headers, links and heaps are) and reads every variant."""
    rng = np.random.default_rng(seed)
    for variant in range(10):
        data = bytearray(valid_bytes)
        if mode == "burst":  # overwrite one contiguous run of bytes
            start, length = int(rng.integers(48, len(data))), int(rng.integers(1, 64))
            data[start : start + length] = rng.bytes(len(data[start : start + length]))
        else:
            for where in rng.integers(48, len(data), size=int(rng.integers(1, 20))):
                data[where] = int(rng.integers(256))
        path = workdir / f"corrupt_{variant}.h5"
        path.write_bytes(bytes(data))
        adata = _read_or_format_error(path)
        if adata is not None:
            _consistent(adata)


@SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_reader_truncated_file(workdir, valid_bytes, fraction):
    path = workdir / "truncated.h5"
    path.write_bytes(valid_bytes[: int(fraction * len(valid_bytes))])
    adata = _read_or_format_error(path)
    if adata is not None:
        _consistent(adata)


def test_reader_opens_read_only_and_releases_the_file(tmp_path, monkeypatch, valid_bytes):
    """Good and bad files alike: opened with mode "r", unchanged, and closed afterwards."""
    good = tmp_path / "good.h5"
    good.write_bytes(valid_bytes)
    bad = tmp_path / "bad.h5"
    _write(bad, {"X": np.ones((4, 3)), "pos": np.zeros((3, 3))})
    bad.chmod(0o444)
    good.chmod(0o444)  # a read-only file (e.g. shared data) reads fine
    modes = []
    real_file = h5py.File

    def spy(name, mode="r", *args, **kwargs):
        modes.append(mode)
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, bad)}
    assert read_spca(good).n_obs == 30
    with pytest.raises(SpcaFormatError, match="key 'pos'"):
        read_spca(bad)
    from scdeepclust.io import read_spca_dir

    assert read_spca_dir([good]).n_obs == 30
    assert set(modes) == {"r"} and len(modes) == 3
    monkeypatch.undo()
    for p, state in before.items():
        assert (p.read_bytes(), p.stat().st_mtime_ns) == state
        p.chmod(0o644)
        with h5py.File(p, "a"):  # no handle left open by the reader (HDF5 would refuse)
            pass


# --------------------------------------------------------------------------- metrics


def _labels(n: int, max_classes: int):
    return st.lists(st.integers(0, max_classes - 1), min_size=n, max_size=n)


@st.composite
def labellings(draw):
    n = draw(st.integers(2, 80))
    truth = draw(_labels(n, draw(st.integers(1, 6))))
    pred = draw(_labels(n, draw(st.integers(1, 8))))
    encoding = draw(st.sampled_from(["int", "str", "categorical", "float"]))
    missing = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if draw(st.booleans()) or all(missing):
        missing = [False] * n
    return truth, pred, encoding, np.array(missing)


def _encode(values, encoding, missing):
    if encoding == "int":
        return np.array(values)  # ints cannot be missing
    if encoding == "float":
        out = np.array(values, dtype=float)
        out[missing] = np.nan
        return out
    out = np.array([f"c{v}" for v in values], dtype=object)
    out[missing] = None if encoding == "categorical" else "NA"
    return pd.Categorical(out) if encoding == "categorical" else out


@SETTINGS
@given(case=labellings())
def test_score_equals_sklearn(case):
    truth, pred, encoding, missing = case
    if encoding == "int":
        missing = np.zeros(len(truth), dtype=bool)
    adata = AnnData(np.zeros((len(truth), 1), dtype=np.float32))
    adata.obs["truth"] = _encode(truth, encoding, missing)
    adata.obs["pred"] = _encode(pred, "str", np.zeros(len(pred), dtype=bool))
    res = metrics.score(adata, "pred")
    keep = ~missing
    t, p = np.array(truth)[keep], np.array(pred)[keep]
    assert res["n_scored"] == keep.sum()
    assert res["ari"] == pytest.approx(skm.adjusted_rand_score(t, p), abs=1e-12)
    assert res["nmi"] == pytest.approx(skm.normalized_mutual_info_score(t, p), abs=1e-12)
    assert 0.0 <= res["acc"] <= 1.0
    assert res["n_clusters"] == len(np.unique(p))


@SETTINGS
@given(case=labellings(), seed=st.integers(0, 2**32 - 1))
def test_clustering_accuracy_bounds_and_permutation(case, seed):
    truth, pred, _, _ = case
    acc = metrics.clustering_accuracy(truth, pred)
    assert 0.0 <= acc <= 1.0
    # at least the largest overlap of any single cluster with any single class
    table = pd.crosstab(np.array(pred), np.array(truth)).to_numpy()
    assert acc >= table.max() / len(truth) - 1e-12
    classes = np.unique(truth)
    perm = np.random.default_rng(seed).permutation(len(classes))
    renamed = {c: f"x{perm[i]}" for i, c in enumerate(classes)}
    permuted = [renamed[t] for t in truth]
    assert metrics.clustering_accuracy(truth, permuted) == 1.0
    mapping = metrics.match_labels(truth, permuted)
    assert all(mapping[renamed[c]] == c for c in classes)
    assert metrics.clustering_accuracy(truth, truth) == 1.0
