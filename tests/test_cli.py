"""Tests of the ``scdeepclust`` command line and the atomic writers behind it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

import scdeepclust as sdc
from scdeepclust import cli
from scdeepclust._io_write import (
    sanitize_uns,
    save_figure_atomic,
    write_h5ad_atomic,
    write_text_atomic,
)
from scdeepclust.datasets import synthetic


def _write_spca(path: Path, n_obs: int = 600, n_vars: int = 150, *, truth: bool = True) -> Path:
    """A small sample in the spca layout: X dense, Y as bytes, pos as 2 x n."""
    adata = synthetic(n_obs, n_vars, 4, random_state=1)
    with h5py.File(path, "w") as f:
        f["X"] = adata.X.toarray()
        if truth:
            f["Y"] = np.array([s.encode() for s in adata.obs["truth"].astype(str)])
        f["pos"] = adata.obsm["spatial"].T
    return path


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP/torch thread: on a busy shared machine, spinning threads of tiny
    problems cost seconds each (the behaviour under test does not depend on threads)."""
    n_torch = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n_torch)


@pytest.fixture
def short_training(monkeypatch):
    """deep_cluster with few epochs: these tests check the command, not the model."""
    deep_cluster = sdc.tl.deep_cluster

    def quick(*args, **kwargs):
        kwargs.update(epochs=30, refine_epochs=5)
        return deep_cluster(*args, **kwargs)

    monkeypatch.setattr(sdc.tl, "deep_cluster", quick)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spca")
    _write_spca(folder / "sample_s1.h5")
    _write_spca(folder / "nolabels.h5", truth=False)
    return folder


def _one_error_line(err: str) -> str:
    """The stderr of a failed --quiet run: exactly one line 'scdeepclust: error: ...'."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("scdeepclust: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- help, version


def test_help_and_version(run):
    code, out, _ = run("--help")
    assert code == 0
    assert all(c in out for c in ("cluster", "bench", "demo"))
    for command, option in [("cluster", "--n-clusters"), ("bench", "--seeds"), ("demo", "--n-obs")]:
        code, out, _ = run(command, "--help")
        assert code == 0
        assert option in out and "--overwrite" in out
    code, out, _ = run("--version")
    assert code == 0 and out.strip().startswith("scdeepclust ")


def test_entry_point_reports_missing_file(tmp_path):
    exe = shutil.which("scdeepclust", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the scdeepclust entry point is not installed (pip install -e .)")
    proc = subprocess.run(
        [exe, "cluster", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "scdeepclust: error: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_command(run):
    code, _, err = run()
    assert code == 2
    _one_error_line(err)


# ----------------------------------------------------------------------------- cluster


def test_cluster_pca_kmeans(run, data_dir, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run(
        "cluster", data_dir / "sample_s1.h5", "--out", out, "--method", "pca_kmeans", "--threads", 1
    )
    assert code == 0, err
    assert "s1: reading" in err  # progress on stderr
    assert "ARI" in stdout
    names = {p.name for p in out.iterdir()}
    assert names == {"s1.h5ad", "s1.png", "s1_scores.json", "s1_scores.csv"}
    adata = ad.read_h5ad(out / "s1.h5ad")
    assert adata.obs["pca_kmeans"].nunique() == 4  # K = number of truth classes
    assert adata.uns["scdeepclust_cli"]["method"] == "pca_kmeans"
    scores = json.loads((out / "s1_scores.json").read_text())
    assert scores["sample"] == "s1" and 0 <= scores["nmi"] <= 1 and -1 <= scores["ari"] <= 1
    table = pd.read_csv(out / "s1_scores.csv")
    assert len(table) == 1 and table.loc[0, "ari"] == pytest.approx(scores["ari"])
    assert (out / "s1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cluster_refuses_to_overwrite(run, data_dir, tmp_path):
    args = ["cluster", data_dir / "sample_s1.h5", "--out", tmp_path, "-m", "pca_kmeans", "-q"]
    assert run(*args)[0] == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    code, _, err = run(*args)
    assert code == 2
    line = _one_error_line(err)
    assert "already exists" in line and "--overwrite" in line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    code, _, err = run(*args, "--overwrite")
    assert code == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_cluster_without_truth_needs_k(run, data_dir, tmp_path):
    path = data_dir / "nolabels.h5"
    code, _, err = run("cluster", path, "--out", tmp_path, "-m", "pca_kmeans", "-q")
    assert code == 2
    assert "--n-clusters" in _one_error_line(err)
    code, stdout, err = run("cluster", path, "--out", tmp_path, "-m", "pca_kmeans", "-k", 3, "-q")
    assert code == 0, err
    assert err == ""
    assert {p.name for p in tmp_path.iterdir()} == {"nolabels.h5ad", "nolabels.png"}
    assert ad.read_h5ad(tmp_path / "nolabels.h5ad").obs["pca_kmeans"].nunique() == 3


def test_cluster_bad_files(run, data_dir, tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    code, _, err = run("cluster", garbage, "--out", tmp_path / "o", "-m", "pca_kmeans", "-q")
    assert code == 2
    assert "garbage.h5" in _one_error_line(err)

    no_pos = tmp_path / "no_pos.h5"
    with h5py.File(no_pos, "w") as f:
        f["X"] = np.ones((30, 5), dtype=np.float32)
    code, _, err = run("cluster", no_pos, "--out", tmp_path / "o", "-m", "pca_kmeans", "-q")
    assert code == 2
    line = _one_error_line(err)
    assert "no_pos.h5" in line and "'pos'" in line

    # one bad file does not stop the good one
    code, _, err = run(
        "cluster",
        garbage,
        data_dir / "sample_s1.h5",
        "--out",
        tmp_path / "o",
        "-m",
        "pca_kmeans",
        "-q",
    )
    assert code == 2
    _one_error_line(err)
    assert (tmp_path / "o" / "s1.h5ad").exists()

    code, _, err = run("cluster", garbage, "--out", tmp_path / "o2", "-m", "pca_kmeans", "--debug")
    assert code == 2
    assert "Traceback" in err and "scdeepclust: error:" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cluster", "{missing}", "--out", "{out}", "-m", "pca_kmeans"], "no such file"),
        (["cluster", "{file}", "--out", "{out}", "--method", "magic"], "invalid choice"),
        (["cluster", "{file}", "--out", "{out}", "-m", "pca_kmeans", "-k", "1"], "at least 2"),
        (["cluster", "{file}", "--out", "{out}", "-m", "kmeans", "-k", "x"], "expected an integer"),
        (["cluster", "{file}", "--out", "{out}", "-m", "pca_kmeans", "-k", "100000"], "n_obs"),
        (["cluster", "{file}", "{copy}", "--out", "{out}", "-m", "kmeans"], "same sample name"),
        (["cluster", "{file}", "-m", "pca_kmeans"], "--out"),
        (["bench", "{file}", "--out", "{out}", "--seeds", "x"], "expected an integer"),
        (["demo", "--out", "{out}", "--n-obs", "10"], "at least 50"),
    ],
)
def test_bad_input_is_one_line(run, data_dir, tmp_path, argv, expected):
    names = {
        "missing": tmp_path / "missing.h5",
        "out": tmp_path / "o",
        "file": data_dir / "sample_s1.h5",
        "copy": tmp_path / "s1.h5",  # same sample name as sample_s1.h5
    }
    shutil.copy(names["file"], names["copy"])
    code, _, err = run(*[a.format(**names) for a in argv], "-q")
    assert code == 2
    assert expected in _one_error_line(err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cluster_deep(run, tmp_path, short_training):
    path = _write_spca(tmp_path / "small.h5", n_obs=300, n_vars=100)
    code, stdout, err = run("cluster", path, "--out", tmp_path / "o", "--device", "cpu")
    assert code == 0, err
    adata = ad.read_h5ad(tmp_path / "o" / "small.h5ad")
    assert adata.obs["deep_cluster"].nunique() == 4
    assert "X_deep_cluster" in adata.obsm
    assert "deep_cluster" in stdout
    scores = json.loads((tmp_path / "o" / "small_scores.json").read_text())
    assert scores["method"] == "deep" and scores["obs_key"] == "deep_cluster"


def test_cluster_deep_without_truth_estimates_k_and_draws_the_evidence(
    run, tmp_path, short_training
):
    path = _write_spca(tmp_path / "nolab.h5", n_obs=300, n_vars=100, truth=False)
    code, _, err = run("cluster", path, "--out", tmp_path / "o", "--device", "cpu")
    assert code == 0, err
    adata = ad.read_h5ad(tmp_path / "o" / "nolab.h5ad")
    assert adata.uns["deep_cluster"]["n_clusters_source"].startswith("stability")
    assert adata.uns["scdeepclust_cli"]["n_clusters_source"] == "estimated"
    figure = tmp_path / "o" / "nolab_k_stability.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second run refuses to overwrite it, as every other output
    code, _, err = run("cluster", path, "--out", tmp_path / "o", "--device", "cpu")
    assert code != 0 and "exist" in err


# ----------------------------------------------------------------------------- bench


def test_bench(run, data_dir, tmp_path):
    args = [
        "bench",
        data_dir,
        "--out",
        tmp_path,
        "--methods",
        "pca_kmeans",
        "kmeans",
        "--seeds",
        0,
        1,
    ]
    code, stdout, err = run(*args)
    assert code == 0, err
    assert "nolabels: skipped" in err
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table.columns) == cli.BENCH_COLUMNS
    assert len(table) == 4  # 1 sample with truth x 2 methods x 2 seeds
    assert set(table["method"]) == {"pca_kmeans", "kmeans"}
    assert (table["seconds"] > 0).all()
    md = (tmp_path / "bench.md").read_text()
    assert "| sample | method | seed | ari | nmi | seconds |" in md
    assert "| method |" in stdout
    assert (tmp_path / "bench.png").stat().st_size > 0
    code, _, err = run(*args, "-q")
    assert code == 2
    assert "already exists" in _one_error_line(err)


def test_bench_needs_truth(run, data_dir, tmp_path):
    code, _, err = run("bench", data_dir / "nolabels.h5", "--out", tmp_path, "-q")
    assert code == 2
    assert "truth" in _one_error_line(err)
    assert not (tmp_path / "bench.csv").exists()


# ----------------------------------------------------------------------------- demo


def test_demo(run, tmp_path, short_training):
    out = tmp_path / "demo"
    code, stdout, err = run("demo", "--out", out, "--n-obs", 300, "--device", "cpu", "-q")
    assert code == 0, err
    for name in cli.DEMO_OUTPUTS:
        assert (out / name).exists(), name
    assert "deep_cluster" in stdout and "pca_kmeans" in stdout
    scores = pd.read_csv(out / "demo_scores.csv")
    assert list(scores["method"]) == ["deep_cluster", "pca_kmeans"]
    # re-running into the demo's own folder replaces its outputs (make demo twice)
    code, _, err = run("demo", "--out", out, "--n-obs", 300, "--device", "cpu", "-q")
    assert code == 0, err
    # ... but files the demo did not write are kept unless --overwrite
    other = tmp_path / "other"
    other.mkdir()
    (other / "demo.png").write_text("mine")
    code, _, err = run("demo", "--out", other, "--n-obs", 300, "-q")
    assert code == 2
    assert "--overwrite" in _one_error_line(err)
    assert (other / "demo.png").read_text() == "mine"


# ----------------------------------------------------------------------------- writers


def test_write_text_atomic(tmp_path):
    path = tmp_path / "a.txt"
    write_text_atomic("one", path)
    with pytest.raises(FileExistsError, match="a.txt") as info:
        write_text_atomic("two", path)
    assert info.value.filename == str(path)
    assert path.read_text() == "one"
    write_text_atomic("two", path, overwrite=True)
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(FileNotFoundError):
        write_text_atomic("x", tmp_path / "missing" / "b.txt")


def test_save_figure_atomic(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    path = save_figure_atomic(fig, tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError):
        save_figure_atomic(fig, path)


def test_write_h5ad_atomic_sanitises_a_copy(tmp_path):
    adata = ad.AnnData(np.ones((4, 3), dtype=np.float32))
    events = [{"stage": "refine", "reasons": ["empty cluster"]}]
    adata.uns["rec"] = {"events": events, "shape": (2, 3), "ok": [1.0, 2.0], 3: "int key"}
    write_h5ad_atomic(adata, tmp_path / "a.h5ad")
    assert adata.uns["rec"]["events"] is events  # the user's object is untouched
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    event = back.uns["rec"]["events"]["0"]  # lists of records become dicts keyed "0", "1", ...
    assert event["stage"] == "refine" and list(event["reasons"]) == ["empty cluster"]
    assert list(back.uns["rec"]["shape"]) == [2, 3]
    assert back.uns["rec"]["3"] == "int key"
    with pytest.raises(FileExistsError):
        write_h5ad_atomic(adata, tmp_path / "a.h5ad")
    _, changed = sanitize_uns({"a": 1, "b": {"c": [1, 2]}, "d": "x"})
    assert not changed
